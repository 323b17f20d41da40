#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs the install/commit/rollback session of README.md exactly as written (the ```sh block after
# the <!-- readme-session --> marker) with this build's molt, and checks what its comments promise.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

block=$(awk '/<!-- readme-session -->/ {f = 1; next}
             f && /^```sh/ {g = 1; next}
             g && /^```/ {exit}
             g' "$MOLT_SRC_DIR/README.md")
[ -n "$block" ] || fail "README.md has no session block after <!-- readme-session -->"
# The one line that depends on where the build is.
grep -q '^MOLT=\$PWD/build/release/core/molt$' <<<"$block" || fail "README session: unexpected MOLT= line"
block=$(sed "s|^MOLT=.*|MOLT=$MOLT|" <<<"$block")

out=$(cd "$T" && TMPDIR="$T" bash -c "$block" 2>&1) || fail "README session failed:
$out"
assert_eq 2 "$(grep -cx 'release 1' <<<"$out")" "'release 1' after commit and again after rollback"
assert_eq 1 "$(grep -cx 'release 2' <<<"$out")" "'release 2' after the second install"
grep -qx 'artifact_name=release-1' <<<"$out" || fail "show-provides lacks artifact_name=release-1"
grep -qx 'release-1' <<<"$out" || fail "show-artifact is not release-1 after the rollback"
grep -qF "molt install: downgrade refused: artifact 'release-0' has app.version '0.9.0', older than the device's '1.0.0' (semver scheme)" <<<"$out" ||
    fail "the downgrade to release-0 was not refused"
assert_eq 3 "$(grep -c 'unsigned artifacts are accepted' <<<"$out")" "one unsigned warning per install"
assert_eq 2 "$(tail -n 1 <<<"$out")" "exit code of commit with nothing in progress"
pass "README session"
