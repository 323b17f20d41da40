# SPDX-License-Identifier: Apache-2.0
# molt killed with SIGKILL alone (not its process group: kill -9, a crash, the OOM killer), then
# `molt resume` at once: nothing the dead molt started may still run when the resume calls its
# first module, and afterwards the device is on the state molt records (issue 12, part 3).
#
# The exec module (tests/modules/logging-module) sleeps in one state per case while it holds an
# flock on $CTL/busy (its `sleep` child inherits the lock); a handshake file says it is inside.
# Then only molt's pid gets SIGKILL and `molt resume` starts. Every call of the resume first
# tries that lock (`flock -n`): an old module process still alive is an overlap, recorded. The
# module's effect on the "device" ($CTL/device) is written by ArtifactInstall (new-1) and
# ArtifactRollback (base-1) only once they finish, so a killed call changes nothing.
# Checked after each resume: no overlap, no process of the killed run left (its MOLT_TEST_MARK),
# the resume logged that it ended the leftovers, the store is idle and the device equals the
# artifact molt records, and <data_dir>/running held the killed run's token until the resume blanked
# it at its normal end. A state script sleeping in ArtifactInstall_Enter is a case too.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

command -v flock >/dev/null || fail "flock (util-linux) not installed"
seq_setup

CALLNAMES="ProvidePayloadFileSizes Download DownloadWithFileSizes ArtifactInstall NeedsArtifactReboot
ArtifactReboot ArtifactVerifyReboot ArtifactCommit SupportsRollback ArtifactRollback
ArtifactRollbackReboot ArtifactVerifyRollbackReboot ArtifactFailure Cleanup"

# The hook of every call: the overlap check, then the call's effect on the device.
check_hooks() {
    local c effect
    for c in $CALLNAMES; do
        case $c in
            ArtifactInstall) effect='[ -f "$CTL/fail_$CALL" ] || echo new-1 >"$CTL/device"' ;;
            ArtifactRollback) effect='echo base-1 >"$CTL/device"' ;;
            *) effect=: ;;
        esac
        printf '%s\n' \
            'flock -n "$CTL/busy" true || echo "OVERLAP $CALL" >>"$CTL/overlap"' \
            "$effect" >"$CTL/hook_$c"
    done
}

# The sleeping hook of TARGET: lock, handshake, sleep (the effect would come after it).
sleep_hook() {  # TARGET
    local effect=:
    case $1 in
        ArtifactInstall) effect='echo new-1 >"$CTL/device"' ;;
        ArtifactRollback) effect='echo base-1 >"$CTL/device"' ;;
    esac
    printf '%s\n' 'exec 9>>"$CTL/busy"' 'flock 9' 'echo $$ >"$CTL/inside"' 'sleep 3600' \
        "$effect" >"$CTL/hook_$1"
}

# case NAME ROLLBACK REBOOT "KNOBS" TARGET "COMMANDS BEFORE" KILLED_COMMAND WANT_ARTIFACT
run_case() {
    local name=$1 rollback=$2 reboot=$3 knobs=$4 target=$5 before=$6 cmd=$7 want=$8
    local mark="$T/mark-$name" c hs
    seq_start "$rollback" "$reboot" "$knobs"
    echo base-1 >"$CTL/device"
    rm -f "$CTL/overlap" "$CTL/inside"
    check_hooks
    for c in $before; do
        molt_dev $c "$T/new-1.mender"
        [ "$RUN_RC" = 0 ] || { cat "$RUN_ERR" >&2; fail "$name: molt $c before the kill"; }
    done
    if [[ $target == *_* ]]; then
        printf '3600' >"$CTL/sleep_$target"           # a state script (seq_write_script)
    else
        sleep_hook "$target"
    fi
    rm -f "$CTL/pid"
    if [ "$cmd" = install ]; then set -- install "$T/new-1.mender"; else set -- "$cmd"; fi
    MOLT_TEST_MARK=$mark molt_bg "$T/$name.out" "$@"
    disown "$MOLT_BG_PID"
    if [[ $target == *_* ]]; then hs="$CTL/pid"; else hs="$CTL/inside"; fi
    wait_handshake "$hs" "$T/$name.out" "$name: molt never reached $target"
    # The hook or script writes its pid, then starts sleep: the leftover the resume must name.
    local end; end=$(guard_deadline)
    until pgrep -x -P "$(cat "$hs")" sleep >/dev/null; do
        [ $SECONDS -lt "$end" ] || fail "$name: $target never started its sleep"
        sleep 0.05
    done
    # SIGKILL to molt alone, then at once the resume (the hooks back to checks first).
    kill -9 "$MOLT_BG_PID"
    rm -f "$CTL/sleep_$target"
    grep -qE '^[0-9a-f-]{36}$' "$DEV_DATA/running" ||
        fail "$name: <data_dir>/running does not hold the killed molt's token: $(od -c "$DEV_DATA/running" | head -n 3)"
    check_hooks
    molt_dev resume
    assert_none_marked "$mark" "$name: processes of the killed molt still run after the resume"
    [ ! -s "$CTL/overlap" ] || fail "$name: the resume ran beside the killed run's module: $(cat "$CTL/overlap" | tr '\n' ' ')"
    assert_match "ending process [0-9]+ \(sleep\), left running by a molt that died" "$(cat "$RUN_ERR")" \
        "$name: the resume says which leftover it ended"
    assert_eq idle "$(dev_state)" "$name: state after the resume"
    [ -z "$(tr -d ' \n' <"$DEV_DATA/running")" ] ||
        fail "$name: <data_dir>/running still holds a token after the resume's normal end"
    assert_eq "$want" "$(dev_artifact)" "$name: artifact molt records"
    assert_eq "$want" "$(cat "$CTL/device")" "$name: the device is on what molt records"
    pass "$name: kill -9 of molt in $target, resume at once: the old run was gone first; device = $want"
}

run_case download Yes No "" Download "" install base-1
run_case install Yes No "" ArtifactInstall "" install base-1
run_case reboot No Yes "" ArtifactReboot "" install new-1
run_case commit Yes No "" ArtifactCommit "install" commit base-1
run_case rollback Yes No "" ArtifactRollback "install" rollback base-1
run_case failure Yes No "ArtifactInstall" ArtifactFailure "" install base-1
run_case cleanup No No "" Cleanup "" install new-1
run_case script Yes No "" ArtifactInstall_Enter_01 "" install base-1
