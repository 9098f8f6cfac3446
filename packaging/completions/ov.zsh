#compdef ov
# SPDX-License-Identifier: Apache-2.0
# zsh completion for ov(1). Commands and flags are read from `ov --help` and `ov COMMAND --help`, so the
# completion always matches the installed binary.

_ov() {
  local -a path_words cmds flags
  local i w prev
  for (( i = 2; i < CURRENT; i++ )); do
    w=${words[i]}
    if [[ $w == -- ]]; then
      shift $i words; (( CURRENT -= i )); _normal; return
    fi
    prev=${words[i-1]}
    [[ $w == -* || $prev == --(server|config|app|env|password-file|machine-key|out|secrets|user|format|email|emergency-kit) ]] || path_words+=($w)
  done
  case ${words[CURRENT-1]} in
    --password-file|--machine-key|--out|--config|--emergency-kit) _files; return ;;
    --format) compadd dotenv systemd docker json; return ;;
    --user) _users; return ;;
    --server|--app|--env|--email|--secrets) return ;;
  esac
  if [[ ${words[CURRENT]} == -* ]]; then
    flags=(${(u)${(f)"$(ov $path_words --help 2>/dev/null | grep -oE -- '--[a-z][a-z0-9-]*')"}})
    compadd -- $flags
    return
  fi
  local n=${#path_words} line
  local -a p
  for line in ${(f)"$(ov --help 2>/dev/null | sed -n '/^Commands:/,/^$/{s/^  \([a-z][a-z-]*\( [a-z][a-z-]*\)*\)  .*/\1/p}')"}; do
    p=(${=line})
    (( ${#p} > n )) || continue
    [[ "${(j: :)p[1,n]}" == "${(j: :)path_words}" ]] && cmds+=(${p[n+1]})
  done
  if (( ${#cmds} )); then compadd -- ${(u)cmds}; else _files; fi
}

_ov "$@"
