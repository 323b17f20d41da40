# SPDX-License-Identifier: Apache-2.0
# The exact sequence of update-module calls and state scripts molt runs, for the happy path and
# for a failure in every state and script, with and without rollback support, with and without
# reboot (NeedsArtifactReboot Yes/Automatic/No, driven with install then resume as a rebooted
# device would), compared with the sequences of docs/reference §2.3/§2.8/§2.9 kept in
# tests/integration/expected/<case>.txt (diff shows the difference). Each expected file also
# ends with the provides afterwards: unchanged after a rollback, <name>_INCONSISTENT after a
# failure without (successful) rollback. Then streaming: a module that reads stream-next gets
# the exact bytes, one that does not gets files/, one that stops reading midway fails the
# deployment cleanly.
#
# The module is tests/modules/logging-module installed as payload type "test-logger"; logging
# state scripts (<State>_<Action>_01) are in the artifact (Artifact*) and in the rootfs scripts
# dir (Download, and Idle/Sync ones that standalone mode must never run). Module and scripts
# append to one log, so their relative order is checked.
# Each case is a scenario (lib.sh): `bash test_call_sequence.sh happy-rollback` runs that one;
# ctest has one entry per case (integration/test_call_sequence/<case>).
# ctest: scenarios
# ctest-labels: slow
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

run_case() {  # NAME ROLLBACK REBOOT "FAILS" COMMAND...
    local name=$1 cmd
    scenario "$name" || return 0
    once seq_setup
    seq_start "$2" "$3" "$4"
    shift 4
    for cmd in "$@"; do seq_cmd "$cmd"; done
    seq_check "$name"
    pass "sequence $name"
}

# --- no reboot -------------------------------------------------------------------------------
run_case happy-rollback Yes No "" install commit
run_case happy-norollback No No "" install commit rollback
run_case user-rollback Yes No "" install rollback commit
run_case fail-Download_Enter Yes No "Download_Enter_01" install
run_case fail-Download Yes No "Download" install
run_case fail-Download_Leave Yes No "Download_Leave_01" install
for rb in rollback norollback; do
    answer=Yes
    [ $rb = rollback ] || answer=No
    run_case fail-ArtifactInstall_Enter-$rb $answer No "ArtifactInstall_Enter_01" install
    run_case fail-ArtifactInstall-$rb $answer No "ArtifactInstall" install
    run_case fail-ArtifactInstall_Leave-$rb $answer No "ArtifactInstall_Leave_01" install
done
run_case fail-ArtifactCommit_Enter-rollback Yes No "ArtifactCommit_Enter_01" install commit
run_case fail-ArtifactCommit-rollback Yes No "ArtifactCommit" install commit
run_case fail-ArtifactCommit_Leave-rollback Yes No "ArtifactCommit_Leave_01" install commit
run_case fail-ArtifactCommit_Enter-norollback No No "ArtifactCommit_Enter_01" install
run_case fail-ArtifactCommit-norollback No No "ArtifactCommit" install
run_case fail-ArtifactCommit_Leave-norollback No No "ArtifactCommit_Leave_01" install
# The rollback/failure path itself (ArtifactInstall fails first).
run_case fail-ArtifactRollback Yes No "ArtifactInstall ArtifactRollback" install
run_case fail-ArtifactRollback_Enter Yes No "ArtifactInstall ArtifactRollback_Enter_01" install
run_case fail-ArtifactFailure Yes No "ArtifactInstall ArtifactFailure" install
run_case fail-ArtifactFailure_Leave Yes No "ArtifactInstall ArtifactFailure_Leave_01" install
run_case fail-ArtifactInstall_Error-ignored Yes No "ArtifactInstall ArtifactInstall_Error_01" install
run_case fail-Cleanup No No "Cleanup" install
# A query answer outside the protocol (answers are exact words) fails the install stage; the
# second NeedsArtifactReboot on the rollback path fails too, so the device is inconsistent.
run_case bad-answer-NeedsArtifactReboot Yes yes "" install
# A state script exiting 21 (retry later) runs again after state_script_retry_interval.
run_case retry-later Yes No "retry_ArtifactInstall_Enter_01=" install commit

# --- reboot ----------------------------------------------------------------------------------
run_case reboot-yes-rollback Yes Yes "" install commit
run_case reboot-yes-norollback No Yes "" install
run_case reboot-automatic-rollback Yes Automatic "" install resume commit
run_case reboot-automatic-norollback No Automatic "" install resume resume
run_case fail-ArtifactVerifyReboot-automatic Yes Automatic "ArtifactVerifyReboot" install resume resume
run_case fail-ArtifactVerifyReboot-yes Yes Yes "ArtifactVerifyReboot" install
run_case fail-ArtifactReboot Yes Yes "ArtifactReboot" install
run_case fail-ArtifactReboot_Enter Yes Yes "ArtifactReboot_Enter_01" install
run_case fail-ArtifactReboot_Leave-norollback No Automatic "ArtifactReboot_Leave_01" install resume
run_case fail-ArtifactRollbackReboot-ignored Yes Yes "ArtifactVerifyReboot ArtifactRollbackReboot" install
run_case fail-ArtifactRollbackReboot_Leave Yes Yes "ArtifactVerifyReboot ArtifactRollbackReboot_Leave_01" install
run_case fail-ArtifactVerifyRollbackReboot-once Yes Automatic "ArtifactVerifyReboot" \
    install resume resume+ArtifactVerifyRollbackReboot resume
run_case user-rollback-automatic Yes Automatic "" install rollback resume

# The loop guard (docs/reference §2.8): ArtifactVerifyRollbackReboot failing for ever, with the
# module rebooting by itself (Yes), would loop ArtifactRollbackReboot/ArtifactVerifyRollbackReboot
# without end; the guard stops the deployment: failure, <name>_INCONSISTENT, Cleanup last, idle.
# (How many rounds fit under max_state_loops is the implementation's business.)
if scenario loop-guard; then
once seq_setup
seq_start Yes Yes "ArtifactVerifyReboot ArtifactVerifyRollbackReboot"
molt_dev install "$T/new-1.mender"
expect_rc 1 "install looping in the rollback reboot"
rounds=$(grep -c '^ArtifactVerifyRollbackReboot ' "$CALLS" || true)
[ "$rounds" -ge 2 ] && [ "$rounds" -le 28 ] ||
    fail "loop guard: ArtifactVerifyRollbackReboot ran $rounds times, expected 2..28"
assert_eq Cleanup "$(tail -n 1 "$CALLS" | cut -d' ' -f1)" "loop guard: last call"
assert_eq "new-1_INCONSISTENT" "$(dev_artifact)" "loop guard: artifact name"
assert_eq idle "$(dev_state)" "loop guard: state afterwards"
pass "loop guard: $rounds rounds of ArtifactVerifyRollbackReboot, then inconsistent"
fi

# --- streaming -------------------------------------------------------------------------------
sha() { sha256sum <"$1" | cut -d' ' -f1; }
# A module that reads stream-next gets the exact bytes, in artifact order, through streams/.
if scenario stream-exact-bytes; then
once seq_setup
seq_start Yes No ""
: >"$CTL/stream"
molt_dev install "$T/new-1.mender"
expect_rc 0 "streaming install"
printf 'streams/payload.bin\nstreams/file2.txt\n' >"$T/want-lines"
cmp -s "$T/want-lines" "$CTL/stream-next.log" ||
    fail "stream-next lines: expected $(od -c "$T/want-lines" | head -3), got $(od -c "$CTL/stream-next.log" | head -3)"
assert_eq "$(sha "$T/src/payload.bin")" "$(sha "$CTL/streamed/payload.bin")" "streamed payload.bin (sha256)"
assert_eq "$(sha "$T/src/file2.txt")" "$(sha "$CTL/streamed/file2.txt")" "streamed file2.txt (sha256)"
[ ! -e "$CTL/files" ] || fail "a streaming module also got files/: $(ls "$CTL/files")"
molt_dev commit
expect_rc 0 "commit after streaming install"
pass "streaming module: exact bytes through stream-next/streams"
fi

# With ProvidePayloadFileSizes = Yes: DownloadWithFileSizes, and the sizes on stream-next.
if scenario stream-file-sizes; then
once seq_setup
seq_start Yes No ""
: >"$CTL/stream"
printf 'Yes\n' >"$CTL/answer_ProvidePayloadFileSizes"
molt_dev install "$T/new-1.mender"
expect_rc 0 "streaming install with file sizes"
printf 'streams/payload.bin 100000\nstreams/file2.txt 6\n' >"$T/want-lines"
cmp -s "$T/want-lines" "$CTL/stream-next.log" ||
    fail "stream-next lines with sizes: got $(od -c "$CTL/stream-next.log" | head -4)"
assert_eq "ProvidePayloadFileSizes DownloadWithFileSizes" \
    "$(head -n 3 "$CALLS" | cut -d' ' -f1 | grep -v _01 | tr '\n' ' ' | sed 's/ $//')" "calls with file sizes"
assert_eq "$(sha "$T/src/payload.bin")" "$(sha "$CTL/streamed/payload.bin")" "streamed payload.bin with sizes"
pass "ProvidePayloadFileSizes Yes: DownloadWithFileSizes with sizes"
fi

# A module that does not read stream-next gets files/ (ArtifactInstall copies them out).
if scenario files-dir; then
once seq_setup
seq_start Yes No ""
molt_dev install "$T/new-1.mender"
expect_rc 0 "files/ install"
assert_eq "$(sha "$T/src/payload.bin")" "$(sha "$CTL/files/payload.bin")" "files/payload.bin (sha256)"
assert_eq "$(sha "$T/src/file2.txt")" "$(sha "$CTL/files/file2.txt")" "files/file2.txt (sha256)"
molt_dev commit
expect_rc 0 "commit after files/ install"
pass "non-streaming module: files/ with exact bytes"
fi

# A module that stops reading midway: the deployment fails cleanly (exit 1, Cleanup, idle,
# provides unchanged, no work tree left). Four ways: exits 0 after 1000 bytes, exits 3 after
# 1000 bytes, keeps the stream open for a while then exits, and skips the end marker.
stop_case() {  # NAME WHAT KNOB=VALUE...
    scenario "$1" || return 0
    once seq_setup
    local what=$2 kv
    shift 2
    seq_start Yes No ""
    dev_provides >"$T/provides.before"
    : >"$CALLS"
    : >"$CTL/stream"
    for kv in "$@"; do printf '%s' "${kv#*=}" >"$CTL/${kv%%=*}"; done
    molt_dev install "$T/new-1.mender"
    expect_rc 1 "module stopping midway ($what)"
    assert_eq Cleanup "$(tail -n 1 "$CALLS" | cut -d' ' -f1)" "$what: last call"
    ! grep -q '^ArtifactInstall ' "$CALLS" || fail "$what: ArtifactInstall ran after a failed download"
    assert_eq idle "$(dev_state)" "$what: state afterwards"
    dev_provides >"$T/provides.after"
    diff "$T/provides.before" "$T/provides.after" >&2 || fail "$what: provides changed"
    [ -z "$(find "$DEV_DATA" -type d -name tree)" ] || fail "$what: the module work tree is left"
    pass "module stopping midway ($what): clean failure"
}
stop_case stop-exit0 "exit 0 after 1000 bytes" stream_stop=1000
stop_case stop-exit3 "exit 3 after 1000 bytes" stream_stop=1000 stream_stop_exit=3
stop_case stop-held-open "stream held open, then exit" stream_stop=1000 stream_stop_sleep=1
if scenario stop-end-marker; then
once seq_setup
make_artifact "$T/one-file.mender" one-file test-logger -f "$T/src/payload.bin"
seq_start Yes No ""
: >"$CTL/stream"
: >"$CTL/stream_skip_end"
molt_dev install "$T/one-file.mender"
expect_rc 1 "module never reading the end marker"
assert_eq Cleanup "$(tail -n 1 "$CALLS" | cut -d' ' -f1)" "end marker never read: last call"
assert_eq idle "$(dev_state)" "end marker never read: state afterwards"
pass "module skipping the end marker: clean failure"
fi
scenarios_end
