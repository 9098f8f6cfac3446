# SPDX-License-Identifier: Apache-2.0
# bash completion for ov(1). Commands and flags are read from `ov --help` and `ov COMMAND --help`, so the
# completion always matches the installed binary.

# _ov_commands: every command path ("auth login", "run", ...), one per line.
_ov_commands() {
  ov --help 2>/dev/null | sed -n '/^Commands:/,/^$/{s/^  \([a-z][a-z-]*\( [a-z][a-z-]*\)*\)  .*/\1/p}'
}

_ov() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
  local i w path=() cmds
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    if [ "$w" = -- ]; then
      # After `ov run ... --`: complete the program and its arguments.
      if declare -F _command_offset >/dev/null; then _command_offset $((i + 1)); fi
      return
    fi
    case $w in -*) ;; *) [[ ${COMP_WORDS[i-1]} == --@(server|config|app|env|password-file|machine-key|out|secrets|user|format|email|emergency-kit) ]] || path+=("$w") ;; esac
  done
  case $prev in
    --password-file | --machine-key | --out | --config | --emergency-kit)
      compopt -o filenames 2>/dev/null
      mapfile -t COMPREPLY < <(compgen -f -- "$cur")
      return ;;
    --format)
      mapfile -t COMPREPLY < <(compgen -W 'dotenv systemd docker json' -- "$cur")
      return ;;
    --user)
      mapfile -t COMPREPLY < <(compgen -u -- "$cur")
      return ;;
    --server | --app | --env | --email | --secrets) return ;;
  esac
  if [[ $cur == -* ]]; then
    mapfile -t COMPREPLY < <(compgen -W "$(ov "${path[@]}" --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)" -- "$cur")
    return
  fi
  # The next word of a command path that starts with what is typed.
  cmds=$(_ov_commands | awk -v typed="${path[*]}" -v n=${#path[@]} '
    { k = split($0, p, " "); if (k <= n) next; pre = ""; for (j = 1; j <= n; j++) pre = pre (j > 1 ? " " : "") p[j]
      if (pre == typed) print p[n + 1] }' | sort -u)
  if [ -n "$cmds" ]; then
    mapfile -t COMPREPLY < <(compgen -W "$cmds" -- "$cur")
  else
    compopt -o default 2>/dev/null
    COMPREPLY=()
  fi
}
complete -F _ov ov
