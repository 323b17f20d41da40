# SPDX-License-Identifier: Apache-2.0
# `molt --help` lists each command's options on the command's line ("commit [--reboot-exit-code]")
# exactly as the argument parser accepts them: for every such option, the parser's refusal on a
# command that does not take it ("--reboot-exit-code is an option of install, resume, commit,
# rollback") names the commands, and those are the commands whose --help line shows it. (molt
# --help once left --reboot-exit-code off commit and rollback, which take it.) The refusal itself
# is checked too: exit 1, nothing run.
. "$(dirname "$0")/lib.sh"

run_prog "$MOLT" --help
expect_rc 0 "molt --help"
help=$(cat "$RUN_OUT")
commands=$(sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\).*/\1/p' <<<"$help")
[ "$(wc -l <<<"$commands")" -ge 10 ] || fail "no command list in molt --help:
$help"
# The options shown on command lines, e.g. [--reboot-exit-code].
opts=$(sed -n '/^Commands:/,/^$/p' <<<"$help" | grep -oE '\[--[a-z-]+\]' | tr -d '[]' | sort -u)
[ -n "$opts" ] || fail "no command option in molt --help"

n=0
for opt in $opts; do
    # `version` takes no option: the parser's refusal names the commands that take opt.
    run_prog "$MOLT" -c "$T/none.yaml" version "$opt"
    expect_rc 1 "molt version $opt"
    said=$(sed -n "s/^molt: $opt is an option of //p" "$RUN_ERR")
    [ -n "$said" ] || fail "molt version $opt: no \"$opt is an option of ...\" in: $(cat "$RUN_ERR")"
    want=$(tr ',' '\n' <<<"$said" | tr -d ' ' | sort)
    shown=$(for c in $commands; do
        if sed -n '/^Commands:/,/^$/p' <<<"$help" | grep -qE "^  $c .*\\[$opt\\]"; then
            echo "$c"
        fi
    done | sort)
    assert_eq "$want" "$shown" "the commands taking $opt (the parser) vs those showing it (--help)"
    n=$((n + 1))
done
pass "$n command options, each shown in molt --help on the lines of exactly the commands that take it"
