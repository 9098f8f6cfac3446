# SPDX-License-Identifier: Apache-2.0
# fish completion for ov(1). Commands and flags are read from `ov --help` and `ov COMMAND --help`, so the
# completion always matches the installed binary.

function __ov_path --description 'the command words typed so far'
    set -l words (commandline -opc)
    set -e words[1]
    set -l out
    set -l skip 0
    for w in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case -- '--'
                return 1
            case --server --config --app --env --password-file --machine-key --out --secrets --user --format --email --emergency-kit
                set skip 1
            case '-*'
            case '*'
                set out $out $w
        end
    end
    test (count $out) -gt 0; and printf '%s\n' $out
    return 0
end

function __ov_next --description 'the next command word'
    set -l words (__ov_path)
    or return   # after "--": the program's own arguments
    set -l typed (string join ' ' -- $words)
    set -l n (count $words)
    ov --help 2>/dev/null | sed -n '/^Commands:/,/^$/{s/^  \([a-z][a-z-]*\( [a-z][a-z-]*\)*\)  .*/\1/p}' | while read -l line
        set -l p (string split ' ' -- $line)
        test (count $p) -gt $n; or continue
        if test $n -eq 0; or test (string join ' ' -- $p[1..$n]) = "$typed"
            echo $p[(math $n + 1)]
        end
    end | sort -u
end

function __ov_flags --description 'the flags of the command typed so far'
    ov (__ov_path) --help 2>/dev/null | string match -r -a -- '--[a-z][a-z0-9-]*' | sort -u
end

complete -c ov -f
# After `ov run ... --`: the program and its arguments.
complete -c ov -n '__fish_seen_subcommand_from --' -a '(__fish_complete_subcommand --fcs-skip=(math (contains -i -- -- (commandline -opc)) - 2))'
complete -c ov -n 'not __fish_seen_subcommand_from --' -a '(__ov_next)'
complete -c ov -n 'string match -q -- "-*" (commandline -ct)' -a '(__ov_flags)'
complete -c ov -l format -x -a 'dotenv systemd docker json'
complete -c ov -l user -x -a '(__fish_complete_users)'
complete -c ov -l password-file -r -F
complete -c ov -l machine-key -r -F
complete -c ov -l out -r -F
complete -c ov -l config -r -F
