# SPDX-License-Identifier: Apache-2.0
# ctest-labels: slow
# Native modules through the real `molt` program, on artifacts written by mender-artifact:
#  - `molt modules` lists native modules (name, version) before exec modules, and a refused one
#    with its exact message;
#  - install + commit of a native-copy artifact: the module receives the exact payload bytes through
#    the host's read API and installs them; its calls are Download, ArtifactInstall,
#    ArtifactCommit, Cleanup;
#  - the deployment values (dep_set, ABI 1.2): what each call of the copy module saw, a value
#    set in one call is seen by the next, dropped when the deployment ended, lost when molt
#    died before saving it (a crash in ArtifactCommit: the rollback does not see its value);
#  - a native module that dies of SIGSEGV in ArtifactInstall kills molt (in-process); the store
#    says ArtifactInstall, and `molt resume` takes the rollback path: ArtifactRollback,
#    ArtifactFailure, Cleanup, the old file back, the deployment recorded as failed;
#  - the same for a crash in Download, ArtifactCommit and Cleanup (each recovers by its own path);
#  - the same module listed in native_isolated_modules: the crash fails the call in the child,
#    molt itself rolls back in the same run.
# The modules are tests/modules/native/*.c, built by tests/CMakeLists.txt.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

NATIVE_BUILT="$MOLT_BUILD_DIR/tests/modules/native"
[ -f "$NATIVE_BUILT/native_copy.so" ] || fail "test modules not built in $NATIVE_BUILT"

# A device whose native module dir holds copies of the given built modules.
native_device() {  # NAME MODULE...
    device_new "$1" dev-a
    shift
    DEV_NATIVE="$DEV/native"
    mkdir -p "$DEV_NATIVE"
    for m in "$@"; do cp "$NATIVE_BUILT/$m.so" "$DEV_NATIVE/$m.so"; done
    device_config "native_module_dir: $DEV_NATIVE"
}

# An artifact of TYPE named NAME: payload.bin (random) and notes.txt, meta-data
# {"dest": DEV_DEST, EXTRA}.
native_artifact() {  # OUT NAME TYPE [EXTRA-JSON]
    mkdir -p "$T/src"
    head -c 1000003 /dev/urandom >"$T/src/payload.bin"
    printf 'notes of %s\n' "$2" >"$T/src/notes.txt"
    printf '{"dest": "%s"%s}' "$DEV_DEST" "${4:+, $4}" >"$T/src/meta.json"
    make_artifact "$1" "$2" "$3" -f "$T/src/payload.bin" -f "$T/src/notes.txt" -m "$T/src/meta.json"
}

calls_of() {  # MODULE-NAME
    cat "$DEV_DATA/native/$1/work/calls"
}

# ---- molt modules -------------------------------------------------------------------------------
native_device list native_copy probe_major2
printf '#!/bin/sh\n' >"$DEV_MODULES/native-copy"
printf '#!/bin/sh\n' >"$DEV_MODULES/exec-only"
chmod 755 "$DEV_MODULES/native-copy" "$DEV_MODULES/exec-only"
molt_dev modules
expect_rc 0 "molt modules"
out=$(cat "$RUN_OUT")
assert_match "native-copy +native +$DEV_NATIVE/native_copy.so \\(copy 1\\.0\\.0\\)" "$out" "native module listed"
grep -E '^- +native ' <<<"$out" | grep -qF "$DEV_NATIVE/probe_major2.so (refused: module $DEV_NATIVE/probe_major2.so: ABI 2.0 is not supported by this molt (ABI 1.2): rebuild it against molt-sdk 1)" \
    || fail "refused module not listed with its message: $out"
assert_match "exec-only +exec +$DEV_MODULES/exec-only" "$out" "exec module listed"
! grep -q "exec +$DEV_MODULES/native-copy" <<<"$out" || fail "the exec native-copy is hidden by the native one: $out"
pass "molt modules lists native and exec modules, and the refused one with its message"

# ---- install and commit: the exact bytes -------------------------------------------------------
native_device copy native_copy
printf 'factory notes\n' >"$DEV_DEST/notes.txt"
native_artifact "$T/copy-1.mender" copy-1 native-copy
molt_dev install "$T/copy-1.mender"
expect_rc 0 "install copy-1"
grep -q "with $DEV_NATIVE/native_copy.so" "$RUN_ERR" || fail "install did not use the native module: $(cat "$RUN_ERR")"
cmp "$T/src/payload.bin" "$DEV_DEST/payload.bin" || fail "payload.bin differs from the artifact's"
assert_eq "notes of copy-1" "$(cat "$DEV_DEST/notes.txt")" "notes.txt installed"
molt_dev commit
expect_rc 0 "commit copy-1"
assert_eq "copy-1" "$(dev_artifact)" "artifact name after commit"
assert_eq "Download ArtifactInstall ArtifactCommit Cleanup" "$(calls_of copy | tr '\n' ' ' | sed 's/ $//')" "calls of the copy module"
assert_eq idle "$(dev_state)" "state after commit"
pass "a native module installs an artifact written by mender-artifact, byte for byte"

values_of() {  # MODULE-NAME
    tr '\n' ' ' <"$DEV_DATA/native/$1/work/values" | sed 's/ $//'
}
assert_eq "Download: - big: -8 ArtifactInstall: Download, ArtifactCommit: Download,ArtifactInstall, Cleanup: Download,ArtifactInstall,ArtifactCommit," \
    "$(values_of copy)" "the deployment values each call saw"
native_artifact "$T/copy-2.mender" copy-2 native-copy
molt_dev install "$T/copy-2.mender"
expect_rc 0 "install copy-2"
assert_match "Cleanup: Download,ArtifactInstall,ArtifactCommit, Download: - big" "$(values_of copy)" \
    "the next deployment starts without values"
molt_dev commit
expect_rc 0 "commit copy-2"
pass "deployment values: set in one call, seen by the next, dropped when the deployment ends"

# ---- a crash in ArtifactInstall kills molt; resume rolls back ------------------------------------
native_device crash native_crash
printf 'factory notes\n' >"$DEV_DEST/notes.txt"
native_artifact "$T/crash-1.mender" crash-1 native-crash
rc=0
timeout -k 5 "$MOLT_TIMEOUT" "$MOLT" --config "$DEV_CONF" install "$T/crash-1.mender" >"$T/crash.out" 2>"$T/crash.err" || rc=$?
assert_eq 139 "$rc" "molt killed by the module's SIGSEGV (128 + 11)"
dev_status_json >"$T/crash-status.json"
assert_eq ArtifactInstall "$(json_get "$T/crash-status.json" deployment state)" "state recorded before the crash"
molt_dev resume
expect_rc 1 "resume after the crash (the deployment fails)"
assert_eq "Download ArtifactInstall ArtifactRollback ArtifactFailure Cleanup" \
    "$(calls_of crash | tr '\n' ' ' | sed 's/ $//')" "calls of the crashing module"
assert_eq "factory notes" "$(cat "$DEV_DEST/notes.txt")" "notes.txt rolled back"
[ ! -e "$DEV_DEST/payload.bin" ] || fail "payload.bin left after the rollback"
assert_eq idle "$(dev_state)" "state after resume"
dev_status_json >"$T/after-status.json"
assert_eq failure "$(json_get "$T/after-status.json" last_deployment result)" "last deployment result"
pass "a module crashing in ArtifactInstall kills molt; molt resume rolls back"

# ---- a crash in every state of the happy path, in-process: molt dies, resume recovers ---------------
# COMMAND the crash happens in, then the module's calls, the target's notes.txt and the result.
crash_case() {  # STATE COMMAND CALLS NOTES RESULT
    local st=$1 cmd=$2 calls=$3 notes=$4 result=$5
    native_device "crash-$st" native_copy
    printf 'factory notes\n' >"$DEV_DEST/notes.txt"
    native_artifact "$T/crash-$st.mender" "crash-$st" native-copy "\"crash\": \"$st\""
    if [ "$cmd" = commit ]; then
        molt_dev install "$T/crash-$st.mender"
        expect_rc 0 "install before the crash in $st"
    fi
    rc=0
    if [ "$cmd" = commit ]; then
        timeout -k 5 "$MOLT_TIMEOUT" "$MOLT" --config "$DEV_CONF" commit >"$T/c.out" 2>"$T/c.err" || rc=$?
    else
        timeout -k 5 "$MOLT_TIMEOUT" "$MOLT" --config "$DEV_CONF" install "$T/crash-$st.mender" >"$T/c.out" 2>"$T/c.err" || rc=$?
    fi
    assert_eq 139 "$rc" "molt killed by the crash in $st"
    dev_status_json >"$T/c.json"
    assert_eq "$st" "$(json_get "$T/c.json" deployment state)" "state recorded before the crash in $st"
    molt_dev resume
    [ "$RUN_RC" = 0 ] || [ "$RUN_RC" = 1 ] || expect_rc 0 "resume after the crash in $st"
    assert_eq "$calls" "$(calls_of copy | tr '\n' ' ' | sed 's/ $//')" "calls around a crash in $st"
    assert_eq "$notes" "$(cat "$DEV_DEST/notes.txt")" "notes.txt after a crash in $st"
    assert_eq idle "$(dev_state)" "state after resuming from a crash in $st"
    dev_status_json >"$T/c.json"
    assert_eq "$result" "$(json_get "$T/c.json" last_deployment result)" "result after a crash in $st"
    [ -z "${6:-}" ] || assert_eq "$6" "$(values_of copy)" "deployment values around a crash in $st"
    pass "crash in $st, then molt resume: $result"
}
crash_case Download install "Download Cleanup" "factory notes" failure
crash_case ArtifactInstall install "Download ArtifactInstall ArtifactRollback ArtifactFailure Cleanup" "factory notes" failure
# The value ArtifactCommit set died with molt: the rollback and Cleanup do not see it.
crash_case ArtifactCommit commit "Download ArtifactInstall ArtifactCommit ArtifactRollback ArtifactFailure Cleanup" "factory notes" failure \
    "Download: - big: -8 ArtifactInstall: Download, ArtifactCommit: Download,ArtifactInstall, ArtifactRollback: Download,ArtifactInstall, ArtifactFailure: Download,ArtifactInstall,ArtifactRollback, Cleanup: Download,ArtifactInstall,ArtifactRollback,ArtifactFailure,"
crash_case Cleanup commit "Download ArtifactInstall ArtifactCommit Cleanup Cleanup" "notes of crash-Cleanup" success

# ---- the same crash, isolated in a forked child ----------------------------------------------------
native_device isolated native_crash
device_config "native_isolated_modules:" "  - $DEV_NATIVE/native_crash.so"
printf 'factory notes\n' >"$DEV_DEST/notes.txt"
molt_dev install "$T/crash-1.mender"
expect_rc 1 "install with an isolated crashing module"
grep -qF "module crash ($DEV_NATIVE/native_crash.so): ArtifactInstall crashed: killed by signal 11 (Segmentation fault)" "$RUN_ERR" \
    || fail "no crash message: $(cat "$RUN_ERR")"
assert_eq "Download ArtifactInstall ArtifactRollback ArtifactFailure Cleanup" \
    "$(calls_of crash | tr '\n' ' ' | sed 's/ $//')" "calls of the isolated crashing module"
assert_eq "factory notes" "$(cat "$DEV_DEST/notes.txt")" "notes.txt rolled back (isolated)"
assert_eq idle "$(dev_state)" "state after the isolated crash"
molt_dev modules
assert_match "native-crash +native +$DEV_NATIVE/native_crash.so \\(crash 1\\.0\\.0, isolated\\)" "$(cat "$RUN_OUT")" "isolated module listed"
pass "an isolated module's crash fails the call; molt rolls back in the same run"
