# SPDX-License-Identifier: Apache-2.0
# The deployment log is made durable (fdatasync) when a deployment ends in the run, not when the
# run leaves it waiting (core/util/log.h, molt_log_close_deployment): `molt install` of an
# update that waits for its commit syncs no deployment log, `molt commit` syncs it once. The
# syncs are read with strace (-y names each descriptor's file).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

command -v strace >/dev/null || fail "strace is not installed (tools/deps.sh installs it)"
# LeakSanitizer cannot stop the world of a traced process: the leak check of the ASan build
# runs in every other test, not under strace.
[ "${MOLT_SANITIZE:-}" != ON ] || export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
device_new dev dev-a
motd_artifact "$T/one.mender" release-one 'release one'

# syncs_of_log TRACE: the fdatasync/fsync calls on a deployment log in an strace -f -y output
syncs_of_log() {
    grep -cE '(fdatasync|fsync)\([0-9]+<[^>]*/logs/deployment\.[^>]*>\) = 0' "$1" || true
}

run_prog "$(command -v strace)" -f -y -e trace=fdatasync,fsync -o "$T/install.trace" \
    "$MOLT" --config "$DEV_CONF" install "$T/one.mender"
expect_rc 0 "install release-one under strace"
assert_eq awaiting-commit "$(dev_state)" "state after install"
grep -q 'store.slots' "$T/install.trace" || fail "the trace shows no store save: $(head -c 400 "$T/install.trace")"
assert_eq 0 "$(syncs_of_log "$T/install.trace")" "deployment-log syncs of an install that waits for its commit"
[ -s "$(ls "$DEV_DATA"/logs/deployment.*.log | head -n 1)" ] || fail "no deployment log written"

run_prog "$(command -v strace)" -f -y -e trace=fdatasync,fsync -o "$T/commit.trace" \
    "$MOLT" --config "$DEV_CONF" commit
expect_rc 0 "commit release-one under strace"
assert_eq idle "$(dev_state)" "state after commit"
assert_eq 1 "$(syncs_of_log "$T/commit.trace")" "deployment-log syncs of the commit that ends the deployment"
pass "the deployment log is synced when the deployment ends, not while it waits for a commit"
