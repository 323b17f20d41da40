# SPDX-License-Identifier: Apache-2.0
# The manual pages (docs/man/<page>.md headers, each rendered by pandoc with docs/man/man.lua
# around a docs/*.md page):
#  - every header has its page in the build, and the page is what pandoc makes of today's
#    sources (rendered again here and compared);
#  - `man -l` renders each without a warning (at 60, 80 and 120 columns, and as lintian runs it);
#  - the page carries its documentation page: every heading of the body is in the rendered text;
#  - options drift: every option and command in the program's --help (and each command's
#    --help for molt-artifact) is in its page, and every key of examples/molt.yaml in molt.yaml(5).
# Skipped (77) when the build has no pages (no pandoc: MOLT_MAN=AUTO); tools/deps.sh installs it.
. "$(dirname "$0")/lib.sh"

MAN_DIR="$MOLT_BUILD_DIR/docs/man"
SRC="$MOLT_SRC_DIR/docs/man"
if [ ! -f "$MAN_DIR/molt.1" ]; then
    command -v pandoc >/dev/null && fail "pandoc is installed but the build has no manual pages"
    echo "skip: no pandoc, no manual pages in this build"
    exit 77
fi
command -v man >/dev/null || fail "man not installed (man-db)"

text_of() {  # PAGE: the rendered text, one paragraph a line (no line breaks to hyphenate)
    MANWIDTH=2000 man -l "$1" 2>/dev/null | sed 's/‐//g'
}

pages=0
for src in "$SRC"/*.[1-8].md; do
    page=$(basename "$src" .md)
    out="$MAN_DIR/$page"
    [ -f "$out" ] || fail "$page: not built from $src"
    pandoc -s -f markdown-smart -t man --lua-filter "$SRC/man.lua" -V adjusting=l \
        -M footer="molt $(sed -n 's/^project(molt VERSION \([0-9.]*\).*/\1/p' "$MOLT_SRC_DIR/CMakeLists.txt")" \
        "$src" -o "$T/$page" || fail "$page: pandoc failed"
    cmp -s "$T/$page" "$out" || fail "$page: the built page differs from its sources (rebuild: cmake --build . --target man)"
    for w in 60 80 120; do
        err=$(MANWIDTH=$w man -l "$out" 2>&1 >/dev/null)
        [ -z "$err" ] || fail "$page: man -l at $w columns warns: $err"
    done
    err=$(LC_ALL=C.UTF-8 MANROFFSEQ='' MANWIDTH=80 man --warnings -E UTF-8 -l -Tutf8 -Z "$out" 2>&1 >/dev/null)
    [ -z "$err" ] || fail "$page: man --warnings (as lintian runs it) warns: $err"
    text=$(text_of "$out")
    body=$(sed -n 's/^man-body: *//p' "$src")
    [ -n "$body" ] || fail "$src: no man-body"
    n=0
    while IFS= read -r h; do
        h=$(printf '%s' "$h" | sed 's/^#* *//; s/`//g; s/\*//g; s/\[\([^]]*\)\]([^)]*)/\1/g')
        grep -qiF -- "$h" <<<"$text" || fail "$page: the heading \"$h\" of $body is not in the page"
        n=$((n + 1))
    done < <(sed '/^```/,/^```/d' "$SRC/$body" | grep -E '^#{2,} ')
    [ "$n" -gt 0 ] || fail "$page: no heading of $body found to compare"
    pages=$((pages + 1))
done
[ "$pages" -ge 4 ] || fail "only $pages manual pages"
pass "$pages pages: built from today's sources, no warning from man, every heading of their docs"

# Options drift: each --help word (--long, -s) and command is in the page.
options_of() {  # HELP TEXT on stdin: the options, one per line
    grep -oE '(^|[ [|,(])--?[a-zA-Z][a-zA-Z0-9-]*' | sed 's/^[ [|,(]//' | sort -u
}
check_in_page() {  # PAGE WHAT WORD...
    local page=$1 what=$2 text w
    shift 2
    text=$(text_of "$MAN_DIR/$page")
    for w in "$@"; do
        grep -qF -- "$w" <<<"$text" || fail "$page: $what \"$w\" is not in the manual page"
    done
}
MOLT="$MOLT_BUILD_DIR/core/molt"
MA="$MOLT_BUILD_DIR/sdk/artifact/molt-artifact"
KIT="$MOLT_BUILD_DIR/sdk/tester/molt-module-test"
INDEX="$MOLT_BUILD_DIR/sdk/tester/molt-module-index"

help=$("$MOLT" --help) || fail "molt --help"
mapfile -t opts < <(options_of <<<"$help")
mapfile -t cmds < <(sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\).*/\1/p' <<<"$help")
[ "${#opts[@]}" -ge 5 ] && [ "${#cmds[@]}" -ge 10 ] || fail "molt --help: parsed ${#opts[@]} options, ${#cmds[@]} commands"
check_in_page molt.1 "option of molt --help" "${opts[@]}"
check_in_page molt.1 "command of molt --help" "${cmds[@]}"

all=()
for args in "" "read" "validate" "sign" "write module-image" "write rootfs-image" "write bootstrap-artifact"; do
    # shellcheck disable=SC2086
    h=$("$MA" $args --help) || fail "molt-artifact $args --help"
    mapfile -t o < <(options_of <<<"$h")
    all+=("${o[@]}")
done
[ "${#all[@]}" -ge 20 ] || fail "molt-artifact --help: parsed only ${#all[@]} options"
check_in_page molt-artifact.1 "option of molt-artifact --help" "${all[@]}"

h=$("$KIT" --help) || fail "molt-module-test --help"
mapfile -t o < <(options_of <<<"$h")
[ "${#o[@]}" -ge 6 ] || fail "molt-module-test --help: parsed only ${#o[@]} options"
check_in_page molt-module-test.1 "option of molt-module-test --help" "${o[@]}"
h=$("$INDEX" --help 2>&1) || true
mapfile -t o < <(options_of <<<"$h")
[ "${#o[@]}" -ge 2 ] || fail "molt-module-index --help: parsed only ${#o[@]} options"
check_in_page molt-module-test.1 "option of molt-module-index --help" "${o[@]}"

h=$("$MOLT_SRC_DIR/sdk/image/molt-image" --help) || fail "molt-image --help"
mapfile -t o < <(options_of <<<"$h")
[ "${#o[@]}" -ge 20 ] || fail "molt-image --help: parsed only ${#o[@]} options"
check_in_page molt-image.1 "option of molt-image --help" "${o[@]}"

mapfile -t keys < <(sed -n 's/^ *\([a-z_][a-z_0-9]*\):.*/\1/p' "$MOLT_SRC_DIR/examples/molt.yaml" | sort -u)
[ "${#keys[@]}" -ge 20 ] || fail "examples/molt.yaml: parsed only ${#keys[@]} keys"
check_in_page molt.yaml.5 "key of examples/molt.yaml" "${keys[@]}"
pass "every option and command of the --help texts, every configuration key, in the pages"
