# SPDX-License-Identifier: Apache-2.0
# What `molt status --json` and `molt resume` say is what happened (issue 12, part 7):
#  - last_deployment.result is "success" after a commit, "rolled-back" after `molt rollback`
#    and "failure" after a failed deployment, with rolled_back saying whether the device is on
#    its previous software;
#  - `molt resume` prints one line on stdout: "Nothing to do: no update in progress." (exit 2),
#    "Committed NAME." (a deployment waiting for its commit) and "Rolled back to NAME." (a
#    deployment interrupted in ArtifactInstall: molt killed with SIGKILL while the module ran).
# The module is a small exec module (in this script) that supports rollback and, when told to,
# records its pid and waits in ArtifactInstall so the test can kill molt there; the test then
# ends that module process itself (by its recorded pid) before resuming.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

device_new dev dev-a
CTL="$T/ctl"
mkdir -p "$CTL"
cat >"$T/truth-module" <<SH
#!/bin/sh
echo "\$1" >>"$CTL/calls"
case "\$1" in
SupportsRollback) echo Yes ;;
NeedsArtifactReboot) echo No ;;
ArtifactInstall)
    if [ -e "$CTL/hang" ]; then
        echo \$\$ >"$CTL/module.pid"
        exec sleep 600
    fi
    cp "\$2/header/artifact_name" "$DEV_DEST/installed" ;;
ArtifactRollback) rm -f "$DEV_DEST/installed.new" ;;
esac
exit 0
SH
device_add_module truth "$T/truth-module"
echo data >"$T/payload"
make_artifact "$T/a1.mender" a1 truth -f "$T/payload"
make_artifact "$T/a2.mender" a2 truth -f "$T/payload"
make_artifact "$T/a3.mender" a3 truth -f "$T/payload"

result() {  # the last deployment's result and rolled_back, e.g. "success false"
    dev_status_json >"$T/st.json"
    echo "$(json_get "$T/st.json" last_deployment result) $(json_get "$T/st.json" last_deployment rolled_back)"
}

molt_dev resume
expect_rc 2 "resume with nothing in progress"
assert_eq "Nothing to do: no update in progress." "$(cat "$RUN_OUT")" "resume: nothing to do"
pass "resume with nothing to do says so on stdout (exit 2)"

molt_dev install "$T/a1.mender"
expect_rc 0 "install a1"
molt_dev commit
expect_rc 0 "commit a1"
assert_eq "success false" "$(result)" "a1 committed"
pass "result success after a commit"

molt_dev install "$T/a2.mender"
expect_rc 0 "install a2"
molt_dev rollback
expect_rc 0 "rollback a2"
assert_eq "rolled-back true" "$(result)" "a2 rolled back"
assert_eq a2 "$(json_get "$T/st.json" last_deployment artifact_name)" "a2: the deployment's artifact"
assert_eq a1 "$(dev_artifact)" "a2 rolled back: the device is on a1"
pass "result rolled-back after molt rollback"

molt_dev install "$T/a2.mender"
expect_rc 0 "install a2 again"
molt_dev resume
expect_rc 0 "resume of a2 awaiting commit"
assert_eq "Committed a2." "$(cat "$RUN_OUT")" "resume: committed"
assert_eq "success false" "$(result)" "a2 committed by resume"
assert_eq a2 "$(dev_artifact)" "a2 committed: artifact name"
pass "resume commits a deployment waiting for its commit and says so"

# Interrupted in ArtifactInstall: SIGKILL to molt while the module waits.
touch "$CTL/hang"
molt_bg "$T/bg" install "$T/a3.mender"
end=$(guard_deadline)
while [ "$SECONDS" -lt "$end" ]; do
    [ -s "$CTL/module.pid" ] && break
    kill -0 "$MOLT_BG_PID" 2>/dev/null || { cat "$T/bg.err" >&2; fail "molt install a3 exited early"; }
    sleep 0.1
done
[ -s "$CTL/module.pid" ] || fail "the module never reached ArtifactInstall"
kill_group "$MOLT_BG_PID"
wait "$MOLT_BG_PID" 2>/dev/null || true
MOLT_BG_PID=
kill -9 "$(cat "$CTL/module.pid")" 2>/dev/null || true
rm -f "$CTL/hang"
molt_dev resume
expect_rc 1 "resume of a3 interrupted in ArtifactInstall (the deployment failed)"
assert_eq "Rolled back to a2." "$(cat "$RUN_OUT")" "resume: rolled back"
assert_match "interrupted in state ArtifactInstall" "$(cat "$RUN_ERR")" "resume: the error says why"
assert_eq "failure true" "$(result)" "a3 failed, rolled back"
assert_eq a2 "$(dev_artifact)" "a3 rolled back: artifact name"
grep -qx ArtifactRollback "$CTL/calls" || fail "a3: no ArtifactRollback"
pass "resume rolls back an interrupted deployment and says so"
