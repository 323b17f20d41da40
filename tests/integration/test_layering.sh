# SPDX-License-Identifier: Apache-2.0
# The include arrows of core/ follow the design (docs/layout.md "Layering"; tools/layering.sh
# checks them): the tree passes, and copies of core/ with a planted wrong arrow fail, the
# message naming the file, the line and the include (so the check can fail).
. "$(dirname "$0")/lib.sh"

check="$MOLT_SRC_DIR/tools/layering.sh"
out=$("$check" "$MOLT_SRC_DIR" 2>&1) || fail "the include arrows of core/ break the layering rule:
$out"
n=$(sed -nE 's/^layering: ([0-9]+) files of core\/, ([0-9]+) includes across units.*/\1 \2/p' <<<"$out")
[ -n "$n" ] || fail "no summary from tools/layering.sh: $out"
read -r files arrows <<<"$n"
# A check that reads nothing passes anything.
[ "$files" -gt 60 ] && [ "$arrows" -gt 80 ] || fail "tools/layering.sh read only $files files, $arrows arrows"
pass "core/: $files files, $arrows includes across units, all along the design's arrows"

# plant FILE LINE_TEXT: a copy of core/ with LINE_TEXT added after the first line of FILE.
plant() {
    rm -rf "$T/tree"
    mkdir -p "$T/tree"
    cp -r "$MOLT_SRC_DIR/core" "$T/tree/"
    sed -i "1a $2" "$T/tree/core/$1"
}

# expect_refused FILE INCLUDE MESSAGE: the planted include is reported as MESSAGE, exit 1.
expect_refused() {
    plant "$1" "#include \"$2\""
    set +e
    got=$("$check" "$T/tree" 2>&1)
    rc=$?
    set -e
    assert_eq 1 "$rc" "$1 including $2: exit code"
    grep -qxF "core/$1:2: #include \"$2\": $3" <<<"$got" ||
        fail "$1 including $2: expected the line 'core/$1:2: #include \"$2\": $3', got: $got"
}

# Upward, sideways and around config: each a different rule.
expect_refused util/err.c state/machine.h \
    "util → state is not an arrow of the design (util may include: nothing but itself)"
expect_refused trust/signature.c artifact/artifact.h \
    "trust → artifact is not an arrow of the design (trust may include: util)"
expect_refused server/attributes.c host/registry.h \
    "server → host is not an arrow of the design (server may include: transport artifact trust util)"
expect_refused transport/http_source.c server/client.h \
    "transport → server is not an arrow of the design (transport may include: artifact trust util)"
expect_refused host/exec_host.c state/store.h \
    "host → state is not an arrow of the design (host may include: config artifact trust util)"
expect_refused config/config.c host/module.h \
    "config → host is not an arrow of the design (config may include: util)"
expect_refused artifact/reader.c config/config.h \
    "artifact → config is not an arrow of the design (artifact may include: trust util)"
expect_refused state/store.c cli/fleet.h \
    "state → cli is not an arrow of the design (state may include: host server transport config artifact trust util)"
expect_refused host/module.h "vendor/x.h" "vendor is not a unit of core/"
pass "planted wrong arrows are refused, each named by file, line and include"

# Angle brackets and spaces after '#' are includes too; system headers are not ours.
plant util/log.c '#  include <state/machine.h>'
set +e; got=$("$check" "$T/tree" 2>&1); rc=$?; set -e
assert_eq 1 "$rc" "<state/machine.h> in util: exit code"
grep -qF 'core/util/log.c:2: #include "state/machine.h": util → state' <<<"$got" ||
    fail "<state/machine.h> in util not reported: $got"
plant util/log.c '#include <sys/stat.h>'
"$check" "$T/tree" >/dev/null || fail "a system header counted as an arrow"
pass "angle brackets are checked, system headers left alone"

# A new folder of core/ needs its place in the rule.
plant util/log.c '/* no include */'
mkdir -p "$T/tree/core/newunit"
echo '#include "util/err.h"' >"$T/tree/core/newunit/x.c"
set +e; got=$("$check" "$T/tree" 2>&1); rc=$?; set -e
assert_eq 1 "$rc" "an unknown unit: exit code"
grep -qF 'core/newunit: a unit the layering rule does not know' <<<"$got" ||
    fail "an unknown unit not reported: $got"
pass "a folder of core/ without a rule fails"
