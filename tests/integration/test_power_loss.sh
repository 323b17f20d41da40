# SPDX-License-Identifier: Apache-2.0
# Power loss in every state, enumerated: the logging module (or a logging state script) sleeps
# inside the state; once it is running, `kill -9` hits molt's process group and the module's (or
# script's) process group, and anything else that molt run started. Then `molt status --json`
# must parse and show the deployment, and `molt resume` (and the commands a user would run
# next) must take the path of docs/reference §2.8 "Spontaneous reboot": killed in the Download stage
# -> Cleanup, failure, provides unchanged; in ArtifactInstall or ArtifactCommit (or their
# scripts, or ArtifactVerifyReboot) -> the rollback path; in ArtifactReboot -> ArtifactVerifyReboot;
# in ArtifactRollback -> the rollback again; in a rollback-reboot state ->
# ArtifactVerifyRollbackReboot; after the commit (ArtifactCommit_Leave) -> its Leave scripts
# again; in ArtifactFailure -> it again; in Cleanup -> Cleanup again. The whole sequence,
# killed run included, and the provides afterwards are compared with
# tests/integration/expected/power-<case>.txt; the store must end idle.
# Each case is a scenario (lib.sh): `bash test_power_loss.sh ArtifactCommit` runs that one.
# ctest: scenarios
# ctest-labels: slow
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

# run_power NAME ROLLBACK REBOOT "FAILS" STEP...   (STEP: COMMAND, or COMMAND@TARGET = killed)
run_power() {
    local name=$1 step
    scenario "$name" || return 0
    once seq_setup
    seq_start "$2" "$3" "$4"
    shift 4
    for step in "$@"; do
        if [[ $step == *@* ]]; then
            seq_killed "${step%%@*}" "${step#*@}"
            # The store after the cut: readable, the deployment still there.
            local state
            state=$(dev_state)
            [ "$state" != idle ] || fail "power-$name: no deployment in the store after the cut"
        else
            seq_cmd "$step"
        fi
    done
    seq_check "power-$name"
    pass "power loss: $name"
}

# Download stage.
run_power Download_Enter Yes No "" install@Download_Enter_01 resume
run_power Download Yes No "" install@Download resume
run_power Download_Leave Yes No "" install@Download_Leave_01 resume
run_power Download_Error Yes No "Download" install@Download_Error_01 resume
# ArtifactInstall stage (the queries after it included).
run_power ArtifactInstall_Enter Yes No "" install@ArtifactInstall_Enter_01 resume
run_power ArtifactInstall-rollback Yes No "" install@ArtifactInstall resume
run_power ArtifactInstall-norollback No No "" install@ArtifactInstall resume
run_power ArtifactInstall_Leave Yes No "" install@ArtifactInstall_Leave_01 resume
run_power SupportsRollback Yes No "" install@SupportsRollback resume
run_power ArtifactInstall_Error Yes No "ArtifactInstall" install@ArtifactInstall_Error_01 resume
# Reboot states.
run_power ArtifactReboot Yes Yes "" install@ArtifactReboot resume commit
run_power ArtifactReboot_Enter Yes Automatic "" install@ArtifactReboot_Enter_01 resume commit
run_power ArtifactReboot-pending Yes Automatic "" install resume commit
run_power ArtifactVerifyReboot Yes Automatic "" install resume@ArtifactVerifyReboot resume resume
run_power ArtifactReboot_Leave Yes Automatic "" install resume@ArtifactReboot_Leave_01 resume resume
run_power ArtifactReboot_Error Yes Yes "ArtifactVerifyReboot" install@ArtifactReboot_Error_01 resume
# Commit.
run_power ArtifactCommit_Enter Yes No "" install commit@ArtifactCommit_Enter_01 resume
run_power ArtifactCommit Yes No "" install commit@ArtifactCommit resume
run_power ArtifactCommit_Error Yes No "ArtifactCommit" install commit@ArtifactCommit_Error_01 resume
run_power ArtifactCommit_Leave Yes No "" install commit@ArtifactCommit_Leave_01 resume
# Rollback.
run_power ArtifactRollback_Enter Yes No "ArtifactInstall" install@ArtifactRollback_Enter_01 resume
run_power ArtifactRollback Yes No "ArtifactInstall" install@ArtifactRollback resume
run_power ArtifactRollback_Leave Yes No "ArtifactInstall" install@ArtifactRollback_Leave_01 resume
# Rollback reboot.
run_power ArtifactRollbackReboot_Enter Yes Yes "ArtifactVerifyReboot" install@ArtifactRollbackReboot_Enter_01 resume
run_power ArtifactRollbackReboot Yes Yes "ArtifactVerifyReboot" install@ArtifactRollbackReboot resume
run_power ArtifactVerifyRollbackReboot Yes Yes "ArtifactVerifyReboot" install@ArtifactVerifyRollbackReboot resume
run_power ArtifactRollbackReboot_Leave Yes Yes "ArtifactVerifyReboot" install@ArtifactRollbackReboot_Leave_01 resume
# ArtifactFailure.
run_power ArtifactFailure_Enter No No "ArtifactInstall" install@ArtifactFailure_Enter_01 resume
run_power ArtifactFailure No No "ArtifactInstall" install@ArtifactFailure resume
run_power ArtifactFailure_Leave No No "ArtifactInstall" install@ArtifactFailure_Leave_01 resume
# Cleanup.
run_power Cleanup-success No No "" install@Cleanup resume
run_power Cleanup-failure Yes No "ArtifactInstall" install@Cleanup resume
scenarios_end
