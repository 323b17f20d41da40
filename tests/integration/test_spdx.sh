# SPDX-License-Identifier: Apache-2.0
# Every source file carries an SPDX line at its top (tools/spdx.sh decides what is source and
# where the line goes), and the LICENSE it names is the root's LICENSE.
. "$(dirname "$0")/lib.sh"

[ -f "$MOLT_SRC_DIR/LICENSE" ] || fail "no LICENSE at the root of the tree"
grep -q "Apache License" "$MOLT_SRC_DIR/LICENSE" && grep -q "Version 2.0, January 2004" "$MOLT_SRC_DIR/LICENSE" ||
    fail "LICENSE is not the Apache License 2.0 that the SPDX lines name"
n=$("$MOLT_SRC_DIR/tools/spdx.sh" --list | wc -l)
[ "$n" -gt 150 ] || fail "tools/spdx.sh --list finds only $n source files: the selection is broken"
out=$("$MOLT_SRC_DIR/tools/spdx.sh" --check 2>&1) || fail "source files without SPDX line:
$out"
# Lines that name another license would contradict LICENSE (openapi/ keeps its own notice).
other=$("$MOLT_SRC_DIR/tools/spdx.sh" --list | (cd "$MOLT_SRC_DIR" && xargs grep -l 'SPDX-License-Identifier:' |
    xargs grep -L 'SPDX-License-Identifier: Apache-2.0') || true)
[ -z "$other" ] || fail "SPDX lines naming another license: $other"
pass "$n source files, each with its SPDX line"
