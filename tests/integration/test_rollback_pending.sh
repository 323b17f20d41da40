# SPDX-License-Identifier: Apache-2.0
# A rollback that cannot run yet is retried, not forgotten (issue 12, part 4), with the exec
# module tests/modules/logging-module: its ArtifactRollback exits 21 ("try again later", the
# code Mender's state scripts use) while $CTL/fail_ArtifactRollback holds 21.
#  - standalone: `molt rollback` -> exit 1 "rollback pending (attempt 1)", status
#    "rollback-pending" with the reason (JSON and text), no ArtifactFailure or Cleanup called, the deployment
#    and the module's tree kept; 30 resumes (more than max_state_loops) keep it pending without
#    tripping the loop guard; `molt rollback` retries too; once the module succeeds, the resume
#    rolls back: base-1, idle, ArtifactFailure and Cleanup once;
#  - any other exit code of ArtifactRollback still ends _INCONSISTENT at once (unchanged);
#  - the daemon: a server deployment whose install fails and whose rollback exits 21 is retried
#    with backoff (retry_poll_interval 1 s) with no final status sent; after a restart of the
#    daemon with the cause gone, it rolls back and the server gets "failure".
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

seq_setup

# ---- standalone ------------------------------------------------------------------------------------
seq_start Yes No ""
molt_dev install "$T/new-1.mender"
expect_rc 0 "install new-1 (awaiting commit)"
printf '21' >"$CTL/fail_ArtifactRollback"
: >"$CALLS"
molt_dev rollback
expect_rc 1 "rollback that cannot run yet"
assert_match "rollback pending \(attempt 1\): ArtifactRollback: update module .* exited with code 21 \(try again later\); the deployment stays recorded: run \`molt resume\`" \
    "$(cat "$RUN_ERR")" "the rollback says it is pending and what to do"
assert_eq rollback-pending "$(dev_state)" "status after the rollback exited 21"
assert_match "exited with code 21" "$(json_get "$T/.status.json" deployment rollback_error)" "status names why"
assert_eq ArtifactRollback "$(json_get "$T/.status.json" deployment state)" "the recorded state"
molt_dev status
expect_rc 0 "molt status"
assert_match "state: +rollback-pending" "$(cat "$RUN_OUT")" "molt status shows the pending rollback"
assert_match "rollback: +pending, run molt resume once this has passed: ArtifactRollback: update module .* exited with code 21" \
    "$(cat "$RUN_OUT")" "molt status says why the rollback waits and what to do"
! grep -qE '^(ArtifactFailure|Cleanup) ' "$CALLS" || fail "ArtifactFailure or Cleanup ran while the rollback is pending"
[ -d "$DEV_DATA/modules/v3/payloads/0000/tree" ] || fail "the module's tree was removed while the rollback is pending"
for ((i = 2; i <= 31; i++)); do
    molt_dev resume
    expect_rc 1 "resume $i with the rollback still failing with 21"
    assert_match "rollback pending \(attempt $i\)" "$(cat "$RUN_ERR")" "resume $i says the rollback stays pending"
done
assert_eq rollback-pending "$(dev_state)" "status after 30 retries (the loop guard does not count them)"
molt_dev commit
expect_rc 1 "commit while the rollback is pending"
molt_dev rollback
expect_rc 1 "molt rollback retries the pending rollback"
assert_match "rollback pending \(attempt 32\)" "$(cat "$RUN_ERR")" "molt rollback retried it"
! grep -qE '^(ArtifactFailure|Cleanup) ' "$CALLS" || fail "ArtifactFailure or Cleanup ran while the rollback is pending"
rm -f "$CTL/fail_ArtifactRollback"
molt_dev resume
expect_rc 0 "resume once the rollback can run"
assert_eq idle "$(dev_state)" "state after the pending rollback ran"
assert_eq base-1 "$(dev_artifact)" "artifact after the pending rollback ran"
assert_eq "1 1" "$(grep -c '^ArtifactFailure ' "$CALLS") $(grep -c '^Cleanup ' "$CALLS")" \
    "ArtifactFailure and Cleanup once, after the rollback"
pass "exit 21 in ArtifactRollback: pending, kept, retried by resume and rollback past the loop guard, then rolled back"

seq_start Yes No ""
molt_dev install "$T/new-1.mender"
expect_rc 0 "install new-1 (awaiting commit)"
printf '3' >"$CTL/fail_ArtifactRollback"
molt_dev rollback
expect_rc 1 "rollback failing with exit 3"
assert_eq idle "$(dev_state)" "a rollback failing for good ends the deployment"
assert_eq new-1_INCONSISTENT "$(dev_artifact)" "a rollback failing for good: _INCONSISTENT"
pass "any other failure of ArtifactRollback still ends _INCONSISTENT"

# ---- the daemon --------------------------------------------------------------------------------------
. "$(dirname "$0")/fleet.sh"
fleet_device
device_add_module test-logger "$MOLT_SRC_DIR/tests/modules/logging-module"
CTL="$DEV_MODULES/test-logger.d"
mkdir -p "$CTL"
printf 'Yes' >"$CTL/answer_SupportsRollback"
: >"$CTL/fail_ArtifactInstall"
printf '21' >"$CTL/fail_ArtifactRollback"
head -c 1000 /dev/urandom >"$T/payload.bin"
make_artifact "$T/www/r1.mender" r1 test-logger -f "$T/payload.bin"
fleet_server_start --auto-accept
mctl '{"deployment": {"id": "d1", "artifact_name": "r1", "file": "r1.mender", "device_types": ["dev-a"]}}'
daemon_start
end=$(guard_deadline)
while [ "$SECONDS" -lt "$end" ]; do
    [ "$(grep -c '^ArtifactRollback ' "$CTL/log" 2>/dev/null)" -ge 3 ] && break
    kill -0 "$MOLT_BG_PID" 2>/dev/null || break
    sleep 0.1
done
[ "$(grep -c '^ArtifactRollback ' "$CTL/log" 2>/dev/null)" -ge 3 ] ||
    { tail -n 30 "$T/daemon.out.err" >&2; fail "the daemon did not retry the pending rollback"; }
grep -q "the deployment is not concluded yet: trying again in 1 s" "$T/daemon.out.err" ||
    fail "the daemon does not say it retries after the backoff"
! grep -qE '^(ArtifactFailure|Cleanup) ' "$CTL/log" || fail "the daemon ran ArtifactFailure or Cleanup while the rollback is pending"
assert_eq "None" "$(mq "dd('d1')['finished']")" "no final status while the rollback is pending"
daemon_stop
assert_eq rollback-pending "$(dev_state)" "status after the daemon stopped"
rm -f "$CTL/fail_ArtifactRollback"
daemon_start
wait_mq "dd('d1')['finished'] is not None" 60
daemon_stop
assert_eq "downloading installing failure" "$(dd_statuses)" "statuses of d1"
assert_eq idle "$(dev_state)" "state after the daemon's restart"
assert_eq "1 1" "$(grep -c '^ArtifactFailure ' "$CTL/log") $(grep -c '^Cleanup ' "$CTL/log")" \
    "ArtifactFailure and Cleanup once, after the rollback"
pass "the daemon retries a pending rollback with backoff, and at its next start; then reports failure"
