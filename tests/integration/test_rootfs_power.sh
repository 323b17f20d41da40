# SPDX-License-Identifier: Apache-2.0
# Power loss at every state of a rootfs-image update, and inside the partition write, on the
# simulated A/B device. A state script (in the artifact for Artifact* states, in scripts_dir for
# Download) kills molt with SIGKILL at the chosen point, once; the test-only knob
# MOLT_ROOTFS_TEST_KILL_AFTER kills it after N bytes of the partition write. Then the device
# "loses power": the simulated bootloader boots (counting trial boots, falling back after the
# boot limit) and runs molt resume; the deployment is driven on as a device would (reboot when
# asked, commit when waiting). Every case must end with the device booting a good system that
# the store agrees with (artifact name <-> running partition <-> environment), and the expected
# one: the new system only where the cut came after the verified reboot.
# Each case is a scenario (lib.sh): `bash test_rootfs_power.sh write-300000` runs that one.
# ctest: scenarios
# ctest-labels: slow
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rootfs_lib.sh"

rootfs_power_setup() {
mkdir -p "$T/cutscripts"
cut_script() {  # NAME
    cat >"$T/cutscripts/$1" <<'SH'
#!/bin/sh
me=$(basename "$0"); me=${me%_[0-9][0-9]*}
if [ "${ROOTFS_CUT_AT:-}" = "$me" ] && [ ! -e "$ROOTFS_CUT_MARK" ]; then
    echo "$me" >"$ROOTFS_CUT_MARK"
    kill -9 "$PPID"
fi
exit 0
SH
    chmod 755 "$T/cutscripts/$1"
}
script_args=()
for st in ArtifactInstall ArtifactReboot ArtifactCommit ArtifactRollback ArtifactRollbackReboot ArtifactFailure; do
    for when in Enter Leave; do
        cut_script "${st}_${when}_00_cut"
        script_args+=(-s "$T/cutscripts/${st}_${when}_00_cut")
    done
done
cut_script Download_Enter_00_cut
cut_script Download_Leave_00_cut
rf_image new
mender-artifact write rootfs-image -f "$T/new.img" -n new -t sim-ab -o "$T/new.mender" \
    "${script_args[@]}" >/dev/null 2>&1 || fail "mender-artifact write with scripts"
}

# A molt command as the device runs it: killed runs are expected, so no crash check here.
dev_cmd() {
    local rc=0
    ROOTFS_CUT_AT=$CUT ROOTFS_CUT_MARK="$D/cut.mark" timeout -k 5 "$MOLT_TEST_GUARD" \
        "$MOLT" --config "$D/molt.yaml" "$@" --reboot-exit-code >>"$D/run.out" 2>&1 || rc=$?
    echo "molt $1 exited $rc" >>"$D/boot.log"
    echo "$rc"
}
dev_boot() {
    local rc=0
    ROOTFS_CUT_AT=$CUT ROOTFS_CUT_MARK="$D/cut.mark" timeout -k 5 "$MOLT_TEST_GUARD" \
        "$SIM" boot "$D" >>"$D/run.out" 2>&1 || rc=$?
    [ "$rc" != 70 ] || { cat "$D/boot.log" >&2; fail "$CUT: the device is bricked"; }
}

# run_case CUT FAIL_HEALTH(yes|no) WANT(new|old) [KILL_AFTER]
run_case() {
    CUT=$1
    local health=$2 want=$3 kill_after=${4:-} name=$1 rc state i
    [ -n "$kill_after" ] && name="write@$kill_after"
    scenario "${name/@/-}" || return 0
    once rootfs_power_setup
    rf_device "p-$name"
    mkdir -p "$D/scripts"
    cp "$T/cutscripts/Download_Enter_00_cut" "$T/cutscripts/Download_Leave_00_cut" "$D/scripts/"
    if [ "$health" = yes ]; then
        printf '    health_commands: [false]\n    health_deadline: 1\n' >>"$D/molt.yaml"
    fi
    rc=$(MOLT_ROOTFS_TEST_KILL_AFTER=$kill_after dev_cmd install "$T/new.mender")
    if [ -n "$kill_after" ]; then
        assert_eq 137 "$rc" "$name: install killed inside the write"
        echo killed >"$D/cut.mark"
    fi
    for ((i = 0; i < 12; i++)); do
        state=$(rf_state)
        case $state in
            idle) break ;;
            awaiting-commit) rc=$(dev_cmd commit) ;;
            *) dev_boot ;;   # a reboot, asked for or after the power cut
        esac
    done
    [ -e "$D/cut.mark" ] || fail "$name: the cut never happened"
    ! grep -E "ERROR: (Address|Leak)Sanitizer|runtime error:" "$D/run.out" >&2 \
        || fail "$name: sanitizer report"
    grep -q "exited 137" "$D/boot.log" || fail "$name: molt was never killed: $(cat "$D/boot.log")"
    assert_eq idle "$(rf_state)" "$name: store state at the end"
    if [ "$want" = new ]; then
        rf_settled new B "$name"
    else
        rf_settled - A "$name"
        [ "$(rf_name)" != new ] || fail "$name: store says new but A runs"
    fi
    pass "power cut at $name: device on the $want system, store and environment agree"
}

CUT=""
run_case Download_Enter no old
run_case write no old 1
run_case write no old 300000
run_case write no old "$IMG_SIZE"
run_case Download_Leave no old
run_case ArtifactInstall_Enter no old
run_case ArtifactInstall_Leave no old
run_case ArtifactReboot_Enter no new
run_case ArtifactReboot_Leave no old
run_case ArtifactCommit_Enter no old
run_case ArtifactCommit_Leave no new
# the rollback path (the health check fails on B)
run_case ArtifactRollback_Enter yes old
run_case ArtifactRollback_Leave yes old
run_case ArtifactRollbackReboot_Enter yes old
run_case ArtifactRollbackReboot_Leave yes old
run_case ArtifactFailure_Enter yes old
run_case ArtifactFailure_Leave yes old
scenarios_end
