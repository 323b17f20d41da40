# SPDX-License-Identifier: Apache-2.0
# ctest-labels: slow
# kill -9 of `molt daemon` in each state of a server deployment, then a restart: the deployment
# finishes or fails on the path of docs/reference §2.8 and the server receives a final status (and the
# log of a failure). The module is tests/modules/logging-module (rollback Yes, reboot Yes: the
# module "reboots" itself), sleeping in the target call until the power cut. Last, a cut while
# the final status cannot reach the server: it is sent after the restart.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/fleet.sh"

fleet_device
device_add_module test-logger "$MOLT_SRC_DIR/tests/modules/logging-module"
CTL="$DEV_MODULES/test-logger.d"
mkdir -p "$CTL" "$T/src"
printf 'Yes' >"$CTL/answer_SupportsRollback"
printf 'Yes' >"$CTL/answer_NeedsArtifactReboot"
head -c 300000 /dev/urandom >"$T/src/payload.bin"
for n in 1 2 3 4 5 6; do
    make_artifact "$T/www/n$n.mender" "n$n" test-logger -f "$T/src/payload.bin"
done
fleet_server_start --auto-accept

# A deployment killed in TARGET; then restarted: WANT_STATUSES, WANT_ARTIFACT afterwards.
cut_in() {  # N TARGET WANT_STATUSES WANT_ARTIFACT
    local n=$1 target=$2 pid i
    rm -f "$CTL/pid"
    printf 'echo $$ >"$CTL/pid"\n' >"$CTL/hook_$target"
    printf '3600' >"$CTL/sleep_$target"   # until the cut, however late it comes
    mctl "{\"deployment\": {\"id\": \"d$n\", \"artifact_name\": \"n$n\", \"file\": \"n$n.mender\", \"device_types\": [\"dev-a\"]}}"
    daemon_start
    local end
    end=$(guard_deadline)
    while [ "$SECONDS" -lt "$end" ]; do
        [ -s "$CTL/pid" ] && break
        kill -0 "$MOLT_BG_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ -s "$CTL/pid" ] || { tail -n 20 "$T/daemon.out.err" >&2; fail "$target: never reached"; }
    pid=$(cat "$CTL/pid")
    daemon_kill
    kill -9 -- "-$pid" 2>/dev/null || true
    rm -f "$CTL/hook_$target" "$CTL/sleep_$target"
    daemon_start
    wait_mq "dd('d$n')['finished'] is not None" 60
    daemon_stop
    assert_eq "$3" "$(mq "' '.join(dd('d$n')['statuses'])")" "cut in $target: statuses"
    assert_eq "$4" "$(dev_artifact)" "cut in $target: artifact afterwards"
    assert_eq idle "$(dev_state)" "cut in $target: state afterwards"
    if [[ $3 == *failure ]]; then
        assert_eq True "$(mq "any(k.endswith('/d$n') and v for k, v in s['logs'].items())")" \
            "cut in $target: the log of the failure was uploaded"
    fi
    pass "kill -9 in $target, restart: $3"
}

cut_in 1 Download "downloading failure" unknown
cut_in 2 ArtifactInstall "downloading installing failure" unknown
cut_in 3 ArtifactReboot "downloading installing rebooting installing success" n3
cut_in 4 ArtifactVerifyReboot "downloading installing rebooting failure" n3
cut_in 5 ArtifactCommit "downloading installing rebooting installing failure" n3

# A cut while the final status cannot be delivered: delivered after the restart.
mctl '{"rules": [{"method": "PUT", "path": "/d6/status$", "body_contains": "success", "drop": true, "count": -1}]}'
mctl '{"deployment": {"id": "d6", "artifact_name": "n6", "file": "n6.mender", "device_types": ["dev-a"]}}'
daemon_start
wait_mq 'any(e.get("request_body") == {"status": "success"} for e in api("/d6/status"))' 60
daemon_kill
assert_eq n6 "$(dev_artifact)" "final status cut: installed"
[ -f "$DEV_DATA/server-deployment.json" ] || fail "final status cut: the report is not recorded"
mctl '{"rules": []}'
daemon_start
wait_mq 'dd("d6")["finished"] is not None' 30
daemon_stop
assert_eq "downloading installing rebooting installing success" "$(mq "' '.join(dd('d6')['statuses'])")" \
    "final status cut: statuses"
[ ! -f "$DEV_DATA/server-deployment.json" ] || fail "final status cut: the record stays after the report"
pass "kill -9 before the final status arrived: reported after the restart"

# SIGTERM in the middle of ArtifactInstall: the call finishes, the daemon exits 0 before the next
# state (no "rebooting" status, no ArtifactReboot); after the restart the interrupted install
# takes the rollback path and the server gets "failure".
for n in 7; do
    make_artifact "$T/www/n$n.mender" "n$n" test-logger -f "$T/src/payload.bin"
done
rm -f "$CTL/pid" "$CTL/go"
# ArtifactInstall says it is inside, then waits for the test's go (after the SIGTERM): a handshake
# both ways, so the signal always lands inside the step, however slow the machine.
printf 'echo $$ >"$CTL/pid"; while [ ! -e "$CTL/go" ]; do sleep 0.05; done\n' >"$CTL/hook_ArtifactInstall"
: >"$CTL/log"
mctl '{"deployment": {"id": "d7", "artifact_name": "n7", "file": "n7.mender", "device_types": ["dev-a"]}}'
daemon_start
wait_handshake "$CTL/pid" "$T/daemon.out" "SIGTERM: ArtifactInstall never reached"
kill -TERM "$MOLT_BG_PID"
: >"$CTL/go"
end=$(guard_deadline)
while [ "$SECONDS" -lt "$end" ]; do kill -0 "$MOLT_BG_PID" 2>/dev/null || break; sleep 0.05; done
kill -0 "$MOLT_BG_PID" 2>/dev/null && fail "SIGTERM: the daemon did not stop"
rc=0; wait "$MOLT_BG_PID" || rc=$?
MOLT_BG_PID=
assert_eq 0 "$rc" "SIGTERM: exit code"
grep -q "stopping before ArtifactReboot" "$T/daemon.out.err" || fail "SIGTERM: did not stop between the steps"
grep -q "^ArtifactReboot " "$CTL/log" && fail "SIGTERM: ArtifactReboot ran"
assert_eq "downloading installing" "$(mq "' '.join(dd('d7')['statuses'])")" "SIGTERM: statuses before the restart"
rm -f "$CTL/hook_ArtifactInstall" "$CTL/go"
daemon_start
wait_mq "dd('d7')['finished'] is not None" 60
daemon_stop
assert_eq "downloading installing failure" "$(mq "' '.join(dd('d7')['statuses'])")" "SIGTERM: statuses"
assert_eq n6 "$(dev_artifact)" "SIGTERM: rolled back"
grep -q "^ArtifactRollback " "$CTL/log" || fail "SIGTERM: no rollback after the restart"
pass "SIGTERM during ArtifactInstall: the step finished, the deployment stayed recorded, then failed cleanly"

# A failure with a deployment log over the upload limit (the module prints ~1.5 MB): the upload
# is capped at 1 000 000 - 256 bytes, the oldest entries dropped and a warning entry first.
make_artifact "$T/www/n8.mender" n8 test-logger -f "$T/src/payload.bin"
printf 'i=0; while [ $i -lt 15000 ]; do echo "noise line $i: ................................................................................"; i=$((i+1)); done\n' \
    >"$CTL/hook_ArtifactInstall"
: >"$CTL/fail_ArtifactInstall"
mctl '{"deployment": {"id": "d8", "artifact_name": "n8", "file": "n8.mender", "device_types": ["dev-a"]}}'
daemon_start
wait_mq 'any(k.endswith("/d8") for k in s["logs"])' 60
daemon_stop
rm -f "$CTL/hook_ArtifactInstall" "$CTL/fail_ArtifactInstall"
assert_eq "downloading installing failure" "$(mq "' '.join(dd('d8')['statuses'])")" "big log: statuses"
len=$(mq 'max(e["request_length"] for e in api("/d8/log"))')
[ "$len" -le 999744 ] && [ "$len" -gt 900000 ] || fail "big log: upload of $len bytes, expected at most 999744 (and near it)"
assert_match "TRUNCATED" "$(mq '[v for k, v in s["logs"].items() if k.endswith("/d8")][0][0]["message"]')" \
    "big log: the first entry says the log was truncated"
assert_match "noise line 14999" "$(mq '[v for k, v in s["logs"].items() if k.endswith("/d8")][0][-40:]')" \
    "big log: the newest entries are kept"
pass "deployment log over the limit: capped upload with a truncation note"

# NeedsArtifactReboot "Automatic": the daemon runs server.reboot_command and waits; "the device
# reboots" (the daemon is killed), and at the next start the reboot is verified and committed.
make_artifact "$T/www/n9.mender" n9 test-logger -f "$T/src/payload.bin"
printf 'Automatic' >"$CTL/answer_NeedsArtifactReboot"
sed -i "s|reboot_command: .*|reboot_command: touch $T/rebooted|" "$DEV_CONF"
: >"$CTL/log"
mctl '{"deployment": {"id": "d9", "artifact_name": "n9", "file": "n9.mender", "device_types": ["dev-a"]}}'
daemon_start
wait_for_line "$T/daemon.out.err" "rebooting the device: touch"
end=$(guard_deadline)
while [ "$SECONDS" -lt "$end" ]; do [ -e "$T/rebooted" ] && break; sleep 0.05; done
[ -e "$T/rebooted" ] || fail "automatic reboot: the reboot command did not run"
sleep 0.5
kill -0 "$MOLT_BG_PID" 2>/dev/null || fail "automatic reboot: the daemon did not wait for the reboot"
daemon_kill
assert_eq "downloading installing rebooting" "$(mq "' '.join(dd('d9')['statuses'])")" "automatic reboot: before"
grep -q "^ArtifactReboot " "$CTL/log" && fail "automatic reboot: ArtifactReboot must not be called for Automatic"
daemon_start
wait_mq "dd('d9')['finished'] is not None" 60
daemon_stop
assert_eq "downloading installing rebooting installing success" "$(mq "' '.join(dd('d9')['statuses'])")" \
    "automatic reboot: statuses"
grep -q "^ArtifactVerifyReboot " "$CTL/log" || fail "automatic reboot: not verified after the restart"
assert_eq n9 "$(dev_artifact)" "automatic reboot: artifact"
pass "automatic reboot: reboot command, then verified and committed after the restart"
