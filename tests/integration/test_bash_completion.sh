# SPDX-License-Identifier: Apache-2.0
# The bash completion (support/bash-completion/molt, installed as molt and molt-artifact), run
# in bash as the shell runs them (COMP_WORDS/COMP_CWORD, the function, COMPREPLY) against the
# built programs, in a folder with an artifact, another file, a key and a sub-folder:
#  - molt: the commands, the options (global and the command's), the artifact files for install
#    (*.mender and folders, not other files), any file after --config;
#  - molt-artifact: the commands, the kinds of write, each command's options, the values of
#    --compression, any file after -k, artifact files for read, validate and sign;
#  - drift: every option of every --help text is offered.
. "$(dirname "$0")/lib.sh"

BIN="$T/bin"
mkdir -p "$BIN" "$T/work/sub"
ln -s "$MOLT_BUILD_DIR/core/molt" "$BIN/molt"
ln -s "$MOLT_BUILD_DIR/sdk/artifact/molt-artifact" "$BIN/molt-artifact"
touch "$T/work/a.mender" "$T/work/b.txt" "$T/work/release.key"

# complete WORD...: what the completion offers for the command line WORD... (the last word is
# the one being completed), sorted, on one line.
complete_line() {
    (
        cd "$T/work" || exit 1
        PATH="$BIN:$PATH"
        export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0}
        # shellcheck disable=SC1091
        . "$MOLT_SRC_DIR/support/bash-completion/molt"
        COMP_WORDS=("$@")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMPREPLY=()
        f=$(complete -p "$1" | sed 's/.*-F \([^ ]*\) .*/\1/')
        "$f"
        printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort -u | tr '\n' ' ' | sed 's/ $//'
    )
}
expect() {  # WANT WORD...
    local want=$1 got
    shift
    got=$(complete_line "$@")
    assert_eq "$want" "$got" "completion of '$*'"
}
offers() {  # WORD WORD...: the completion of WORD... offers WORD
    local w=$1 got
    shift
    got=" $(complete_line "$@") "
    [[ $got == *" $w "* ]] || fail "completion of '$*' does not offer $w (offers:$got)"
}

expect "check-update commit daemon help install modules resume rollback send-inventory show-artifact show-provides status version" molt ""
expect "install" molt in
expect "a.mender sub" molt install ""
expect "a.mender sub" molt --config x.yaml -v install ""
expect "" molt install a.mender ""
expect "a.mender b.txt release.key sub" molt --config ""
expect "--json" molt status --j
expect "--check" molt daemon --ch
expect "--reboot-exit-code" molt install --reb
pass "molt: commands, options, artifact files"

expect "read sign validate write" molt-artifact ""
expect "bootstrap-artifact module-image rootfs-delta rootfs-image" molt-artifact write ""
expect "gzip lzma none xz zstd" molt-artifact --compression ""
expect "zstd" molt-artifact write module-image --compression z
expect "a.mender b.txt release.key sub" molt-artifact write module-image -k ""
expect "a.mender b.txt release.key sub" molt-artifact sign --key ""
for c in read validate sign; do
    expect "a.mender sub" molt-artifact "$c" ""
done
expect "a.mender sub" molt-artifact validate -k release.key ""
expect "--json" molt-artifact read --js
pass "molt-artifact: commands, kinds, options, option values, artifact files"

# Drift: the options of every --help are offered.
options_of() {
    grep -oE '(^|[ [|,(])--?[a-zA-Z][a-zA-Z0-9-]*' | sed 's/^[ [|,(]//' | sort -u
}
n=0
for o in $("$BIN/molt" --help | sed -n '/^Options:/,/^$/p' | options_of); do
    offers "$o" molt -
    n=$((n + 1))
done
while IFS= read -r line; do
    cmd=${line%% *}
    for o in $(grep -oE -- '--[a-z][a-z-]*' <<<"$line"); do
        offers "$o" molt "$cmd" -
        n=$((n + 1))
    done
done < <("$BIN/molt" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z].*\)/\1/p')
for args in "read" "validate" "sign" "write module-image" "write rootfs-image" "write bootstrap-artifact"; do
    # shellcheck disable=SC2086
    for o in $("$BIN/molt-artifact" $args --help | sed -n '/^Options:/,$p' | options_of); do
        # shellcheck disable=SC2086
        offers "$o" molt-artifact $args -
        n=$((n + 1))
    done
done
[ "$n" -ge 40 ] || fail "only $n options checked: the --help parsing here is broken"
pass "$n options of the --help texts, each offered"
