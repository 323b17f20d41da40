# SPDX-License-Identifier: Apache-2.0
# The deployment log is made durable (fdatasync) only when its deployment failed or was rolled
# back, the log the server is sent (core/state/machine.c, molt_machine_free; core/util/log.h):
# `molt install` of an update that waits for its commit syncs no deployment log, nor does the
# `molt commit` that ends it with a success; `molt rollback` syncs it once, and so does an
# install that fails. The syncs are read with strace (-y names each descriptor's file).
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
assert_eq 0 "$(syncs_of_log "$T/commit.trace")" "deployment-log syncs of the commit that ends the deployment with a success"
grep -q 'store.slots' "$T/commit.trace" || fail "the commit's trace shows no store save"

# Rolled back by the user: the log is synced once.
motd_artifact "$T/two.mender" release-two 'release two'
molt_dev install "$T/two.mender"
expect_rc 0 "install release-two"
run_prog "$(command -v strace)" -f -y -e trace=fdatasync,fsync -o "$T/rollback.trace" \
    "$MOLT" --config "$DEV_CONF" rollback
expect_rc 0 "roll back release-two under strace"
assert_eq idle "$(dev_state)" "state after the rollback"
assert_eq 1 "$(syncs_of_log "$T/rollback.trace")" "deployment-log syncs of a rollback"

# A module that fails ArtifactInstall: the deployment fails, and its log is synced once.
cat >"$T/failing" <<'SH'
#!/bin/sh
case "$1" in
    ArtifactInstall) echo "failing on purpose" >&2; exit 1 ;;
    SupportsRollback) echo Yes ;;
esac
exit 0
SH
device_add_module failing "$T/failing"
printf 'x\n' >"$T/x"
make_artifact "$T/bad.mender" release-bad failing -f "$T/x"
run_prog "$(command -v strace)" -f -y -e trace=fdatasync,fsync -o "$T/fail.trace" \
    "$MOLT" --config "$DEV_CONF" install "$T/bad.mender"
[ "$RUN_RC" != 0 ] || fail "the install with a failing ArtifactInstall succeeded"
assert_eq idle "$(dev_state)" "state after the failed install"
dev_status_json >"$T/status.json"
assert_eq failure "$(json_get "$T/status.json" last_deployment result)" "the failed install's result"
assert_eq 1 "$(syncs_of_log "$T/fail.trace")" "deployment-log syncs of a failed install"
pass "the deployment log is synced when its deployment failed or was rolled back, not after a success or while it waits"
