# SPDX-License-Identifier: Apache-2.0
# A simulated device for the integration tests of `molt`: a scratch root below $T (lib.sh) with a
# molt configuration, a data dir, a device_type file, a module dir, a scripts dir and a dest dir.
# Source it after lib.sh:   . "$(dirname "$0")/lib.sh"; . "$(dirname "$0")/device.sh"
#
# Functions:
#   device_new NAME [DEVICE_TYPE]   make the device $T/NAME (device type default "dev-a") and make it
#                          the current one: sets DEV (root), DEV_CONF (molt.yaml), DEV_DATA (data_dir),
#                          DEV_MODULES (first module dir), DEV_SCRIPTS (scripts_dir), DEV_DEST (a
#                          folder for modules to install into), DEV_STORE (the store file)
#   device_config LINE...  append YAML lines to the current device's molt.yaml
#   device_add_module NAME FILE   install FILE as the exec module NAME in DEV_MODULES (copied, 0755)
#   device_add_file_module DIR     copy the built native file module into the folder DIR (made if
#                          missing): file.so and its tar support file.d/file-tar.so, as installed
#   device_add_logged_module NAME REAL LOG   install an exec module NAME that appends its call
#                          (argv[1]) to LOG, then runs the module REAL with the same arguments (to
#                          see which calls a real module, e.g. a community one, gets)
#   molt_dev ARGS...       run `molt --config $DEV_CONF ARGS` under `timeout` through run_prog
#                          (lib.sh): $RUN_RC/$RUN_OUT/$RUN_ERR; a timeout or crash fails the test
#   molt_bg OUTFILE ARGS...   start `molt --config $DEV_CONF ARGS` in the background in its own
#                          process group (setsid); sets MOLT_BG_PID; output to OUTFILE(.err)
#   dev_provides           print `molt show-provides` (fails the test if it fails)
#   dev_artifact           print `molt show-artifact` (fails the test if it fails)
#   dev_status_json        print `molt status --json` after checking it parses as a JSON object
#   dev_state              print the state of `molt status --json` ("idle" when nothing is going on)
#   json_get FILE KEY...   print the value at a path of keys in a JSON file ("" when missing)
#   wait_for_line FILE REGEX [SECONDS]   wait until a line of FILE matches REGEX (a guard against
#                          a hang: at least MOLT_TEST_GUARD s, see lib.sh)
#   kill_group PID         kill -9 the process group PID leads (and PID itself)
#   make_artifact OUT NAME TYPE [mender-artifact args...]   mender-artifact write module-image
#                          for the current device's type (-t $DEV_TYPE) with the given extra args
#   go_device_new NAME [DEVICE_TYPE] [ORIGINAL_NAME]   a scratch device for Mender's Go client
#                          (docs/reference §2.11): GO_SB, GO_CONF, GO_STORE
#   go_mender ARGS...      run `mender --no-syslog -c GO_CONF -d GO_STORE ARGS` (RUN_RC...). Go 3.4
#                          reads the first artifact name from the hard-coded /etc/mender/artifact_info,
#                          so the call runs in a private mount namespace (unshare -m) where a scratch
#                          folder is bind-mounted over /etc/mender; the real /etc is never touched.
#                          If GO_TARGET is set (a folder), $GO_SB/target is bind-mounted over it in
#                          that namespace: artifacts naming paths below GO_TARGET install into the
#                          Go device's own copy, so both clients run the very same artifacts.
#
# The call-sequence machinery (test_call_sequence.sh, test_power_loss.sh): a device "seq" whose
# module is tests/modules/logging-module as payload type "test-logger" (knobs in $CTL, see the
# module's header) and logging state scripts (<State>_<Action>_01 in the artifact for the
# Artifact* states, in the rootfs scripts dir for Download and for Idle/Sync, which standalone
# mode must never run); module and scripts append to one log ($CALLS), so their order is seen.
#   seq_setup              make that device, the artifacts $T/base-1.mender and $T/new-1.mender
#                          (payload.bin 100000 random bytes + file2.txt, with every script),
#                          install base-1 and keep its data dir as the starting point of each case
#   seq_start ROLLBACK REBOOT "KNOBS"   back to base-1, knobs cleared; SupportsRollback and
#                          NeedsArtifactReboot answers; KNOBS: NAME = that call or script fails
#                          (fail_NAME), FILE=VALUE = the knob FILE holds VALUE (a line)
#   seq_cmd COMMAND[+NAME] run install (of new-1) | commit | rollback | resume with
#                          --reboot-exit-code, NAME failing for that command only; appends
#                          "$ COMMAND", the calls it made, "exit N" to $SEQ_ACTUAL
#   seq_killed COMMAND TARGET   run COMMAND in the background with TARGET (a call or script)
#                          sleeping; once TARGET is running, kill -9 molt's and TARGET's process
#                          groups (and anything else started by that molt); appends "$ COMMAND",
#                          the calls up to TARGET and "killed"
#   wait_handshake FILE OUTFILE WHAT   wait until FILE is not empty while molt_bg's molt runs
#   assert_none_marked MARK WHAT       fail when a process of the run marked MARK is alive
#   seq_check NAME         append "provides:" and the sorted provides, diff with
#                          expected/NAME.txt, check argv/cwd of the calls, that state is idle
#                          and that no module work tree is left

# A guard against a hung molt (lib.sh "Waiting"), not a time the run is expected to take.
MOLT_TIMEOUT=${MOLT_TIMEOUT:-$MOLT_TEST_GUARD}
[ "$MOLT_SANITIZE" = ON ] && MOLT_TIMEOUT=$((MOLT_TIMEOUT * 2))

device_new() {  # NAME [DEVICE_TYPE]
    DEV="$T/$1"
    DEV_TYPE=${2:-dev-a}
    DEV_CONF="$DEV/molt.yaml"
    DEV_DATA="$DEV/data"
    DEV_MODULES="$DEV/modules"
    DEV_SCRIPTS="$DEV/scripts"
    DEV_DEST="$DEV/dest"
    DEV_STORE="$DEV_DATA/store.slots"   # the store (core/state/store.h); "store" is the legacy file
    mkdir -p "$DEV_DATA" "$DEV_MODULES" "$DEV_SCRIPTS" "$DEV_DEST"
    printf 'device_type=%s\n' "$DEV_TYPE" >"$DEV_DATA/device_type"
    cat >"$DEV_CONF" <<YAML
data_dir: $DEV_DATA
device_type_file: $DEV_DATA/device_type
module_dirs:
  - $DEV_MODULES
  - /usr/share/mender/modules/v3
scripts_dir: $DEV_SCRIPTS
module_timeout: 600
YAML
}

device_config() {  # LINE...
    printf '%s\n' "$@" >>"$DEV_CONF"
}

device_add_module() {  # NAME FILE
    cp "$2" "$DEV_MODULES/$1"
    chmod 0755 "$DEV_MODULES/$1"
}

device_add_file_module() {  # DIR
    mkdir -p "$1/file.d"
    cp "$MOLT_BUILD_DIR/modules/native/file.so" "$1/file.so"
    cp "$MOLT_BUILD_DIR/modules/native/file.d/file-tar.so" "$1/file.d/file-tar.so"
}

device_add_logged_module() {  # NAME REAL LOG
    cat >"$DEV_MODULES/$1" <<SH
#!/bin/sh
echo "\$1" >>"$3"
exec "$2" "\$@"
SH
    chmod 0755 "$DEV_MODULES/$1"
}

molt_dev() {  # ARGS...
    [ -x "$MOLT" ] || fail "program not built: $MOLT"
    run_prog /usr/bin/timeout -k 5 "$MOLT_TIMEOUT" "$MOLT" --config "$DEV_CONF" "$@"
    [ "$RUN_RC" != 124 ] || { cat "$RUN_ERR" >&2; fail "molt $*: still running after ${MOLT_TIMEOUT} s"; }
}

molt_bg() {  # OUTFILE ARGS...
    [ -x "$MOLT" ] || fail "program not built: $MOLT"
    local out=$1
    shift
    setsid "$MOLT" --config "$DEV_CONF" "$@" >"$out" 2>"$out.err" &
    MOLT_BG_PID=$!
}

dev_provides() {
    molt_dev show-provides
    expect_rc 0 "molt show-provides"
    cat "$RUN_OUT"
}

# The store's JSON document as molt reads it: the newest slot of $DEV_STORE whose CRC-32
# checks (core/util/slots.h), after its "molt-store 2 legacy=..." line. A second reader of the
# format, on purpose: the tests check the file, not only what molt says of it.
dev_store_json() {
    python3 - "$DEV_STORE" <<'PY'
import sys, zlib
b = open(sys.argv[1], "rb").read()
half, best = len(b) // 2, None
for off in (0, half):
    h = b[off:off + 64]
    if not h.startswith(b"molt-slots 1 "):
        continue
    seq, n, crc = int(h[13:29], 16), int(h[30:38], 16), int(h[41:49], 16)
    data = b[off + 64:off + 64 + n]
    if zlib.crc32(h[:40] + data) == crc and (best is None or seq > best[0]):
        best = (seq, data)
if best is None:
    sys.exit("no valid slot in " + sys.argv[1])
sys.stdout.write(best[1].split(b"\n", 1)[1].decode())
PY
}

dev_artifact() {
    molt_dev show-artifact
    expect_rc 0 "molt show-artifact"
    cat "$RUN_OUT"
}

json_get() {  # FILE KEY...
    python3 - "$@" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]:
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else (v if isinstance(v, str) else json.dumps(v)))
PY
}

dev_status_json() {
    molt_dev status --json
    expect_rc 0 "molt status --json"
    python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert isinstance(d, dict)' \
        "$RUN_OUT" 2>/dev/null || fail "molt status --json is not a JSON object: $(head -c 500 "$RUN_OUT")"
    cat "$RUN_OUT"
}

dev_state() {  # (one python3 for the parse check and the field: its start-up is most of the cost)
    molt_dev status --json
    expect_rc 0 "molt status --json"
    cp "$RUN_OUT" "$T/.status.json"   # (tests read more fields from it)
    local s
    s=$(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d.get("state") or "") if isinstance(d, dict) else sys.exit(1)' \
        "$RUN_OUT" 2>/dev/null) || fail "molt status --json is not a JSON object: $(head -c 500 "$RUN_OUT")"
    [ -n "$s" ] || fail "molt status --json has no \"state\": $(head -c 500 "$RUN_OUT")"
    echo "$s"
}

wait_for_line() {  # FILE REGEX [SECONDS]
    local end
    end=$(guard_deadline "${3:-}")
    while [ "$SECONDS" -lt "$end" ]; do
        if [ -f "$1" ] && grep -qE "$2" "$1"; then
            return 0
        fi
        sleep 0.05
    done
    fail "timed out waiting for /$2/ in $1 (guard: $MOLT_TEST_GUARD s)"
}

kill_group() {  # PID
    kill -9 -- "-$1" 2>/dev/null || true
    kill -9 "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

make_artifact() {  # OUT NAME TYPE [mender-artifact args...]
    local out=$1 name=$2 type=$3
    shift 3
    mender-artifact write module-image -T "$type" -n "$name" -t "$DEV_TYPE" -o "$out" "$@" \
        >"$T/.mender-artifact.log" 2>&1 || { cat "$T/.mender-artifact.log" >&2; fail "mender-artifact write $name"; }
}

# A single-file artifact (Mender's single-file layout) that installs TEXT as $DEV_DEST/motd.
motd_artifact() {  # OUT NAME TEXT
    local src="$T/.motd-src"
    mkdir -p "$src"
    printf '%s\n' "$3" >"$src/motd"
    printf '%s' "$DEV_DEST" >"$src/dest_dir"
    printf 'motd' >"$src/filename"
    make_artifact "$1" "$2" single-file -f "$src/motd" -f "$src/dest_dir" -f "$src/filename"
}

go_device_new() {  # NAME [DEVICE_TYPE] [ORIGINAL_NAME]
    GO_SB="$T/$1"
    GO_CONF="$GO_SB/conf/mender.conf"
    GO_STORE="$GO_SB/store"
    mkdir -p "$GO_SB/conf" "$GO_SB/data" "$GO_STORE" "$GO_SB/etc-mender" "$GO_SB/target"
    echo '{}' >"$GO_CONF"
    printf 'device_type=%s\n' "${2:-dev-a}" >"$GO_STORE/device_type"
    printf 'artifact_name=%s\n' "${3:-unknown}" >"$GO_SB/etc-mender/artifact_info"
}

go_mender() {  # ARGS...
    command -v mender >/dev/null || fail "Mender's Go client (mender) is not installed"
    run_prog /usr/bin/env MENDER_CONF_DIR="$GO_SB/conf" MENDER_DATA_DIR="$GO_SB/data" \
        MENDER_DATASTORE_DIR="$GO_STORE" \
        GO_TARGET="${GO_TARGET:-}" GO_SB="$GO_SB" timeout -k 5 "$MOLT_TIMEOUT" unshare -m sh -c '
            mount --bind "$GO_SB/etc-mender" /etc/mender || exit 3
            if [ -n "$GO_TARGET" ]; then mount --bind "$GO_SB/target" "$GO_TARGET" || exit 3; fi
            exec "$@"' go-mender mender --no-syslog -c "$GO_CONF" -d "$GO_STORE" "$@"
    [ "$RUN_RC" != 124 ] || { cat "$RUN_ERR" >&2; fail "mender $*: still running after $MOLT_TIMEOUT s"; }
}

# ---- call sequences ---------------------------------------------------------------------------

SEQ_EXPECTED="$MOLT_SRC_DIR/tests/integration/expected"
SEQ_ACTUAL="$T/seq.actual"

# A logging state script: appends "<its name> script <argc>", then, on its knobs in $CTL,
# records its pid and sleeps (sleep_<name>), exits 21 = retry later once (retry_<name>, removed
# when used) or fails (fail_<name>), like the module.
seq_write_script() {  # PATH
    cat >"$1" <<SH
#!/bin/sh
n=\${0##*/}
echo "\$n script \$#" >>"$CALLS"
if [ -f "$CTL/sleep_\$n" ]; then echo \$\$ >"$CTL/pid"; sleep "\$(cat "$CTL/sleep_\$n")"; fi
if [ -f "$CTL/retry_\$n" ]; then rm -f "$CTL/retry_\$n"; exit 21; fi
[ -f "$CTL/fail_\$n" ] && exit 1
exit 0
SH
    chmod 0755 "$1"
}

seq_setup() {
    local logmod="$MOLT_SRC_DIR/tests/modules/logging-module" s
    [ -x "$logmod" ] || fail "logging test module missing: $logmod"
    device_new seq dev-a
    device_config "state_script_retry_interval: 1" "state_script_retry_timeout: 30"
    device_add_module test-logger "$logmod"
    CTL="$DEV_MODULES/test-logger.d"
    CALLS="$CTL/log"
    mkdir -p "$CTL" "$T/scripts" "$T/src"
    for s in Download_Enter_01 Download_Leave_01 Download_Error_01 Idle_Enter_01 Idle_Leave_01 \
        Sync_Enter_01 Sync_Leave_01 Sync_Error_01; do
        seq_write_script "$DEV_SCRIPTS/$s"
    done
    local script_args=()
    for s in ArtifactInstall_Enter_01 ArtifactInstall_Leave_01 ArtifactInstall_Error_01 \
        ArtifactReboot_Enter_01 ArtifactReboot_Leave_01 ArtifactReboot_Error_01 \
        ArtifactCommit_Enter_01 ArtifactCommit_Leave_01 ArtifactCommit_Error_01 \
        ArtifactRollback_Enter_01 ArtifactRollback_Leave_01 \
        ArtifactRollbackReboot_Enter_01 ArtifactRollbackReboot_Leave_01 ArtifactRollbackReboot_Error_01 \
        ArtifactFailure_Enter_01 ArtifactFailure_Leave_01; do
        seq_write_script "$T/scripts/$s"
        script_args+=(-s "$T/scripts/$s")
    done
    head -c 100000 /dev/urandom >"$T/src/payload.bin"
    printf 'hello\n' >"$T/src/file2.txt"
    make_artifact "$T/base-1.mender" base-1 test-logger -f "$T/src/payload.bin"
    make_artifact "$T/new-1.mender" new-1 test-logger -f "$T/src/payload.bin" -f "$T/src/file2.txt" \
        "${script_args[@]}"
    # base-1 with a module without rollback support: committed at once.
    molt_dev install "$T/base-1.mender"
    expect_rc 0 "install base-1"
    assert_eq "base-1" "$(dev_artifact)" "artifact name after installing base-1"
    cp -a "$DEV_DATA" "$T/base-data"
}

seq_start() {  # ROLLBACK REBOOT "FAILS"
    local k
    rm -rf "$DEV_DATA" "$CTL"
    cp -a "$T/base-data" "$DEV_DATA"
    mkdir -p "$CTL"
    printf '%s\n' "$1" >"$CTL/answer_SupportsRollback"
    printf '%s\n' "$2" >"$CTL/answer_NeedsArtifactReboot"
    for k in $3; do
        if [[ $k == *=* ]]; then printf '%s\n' "${k#*=}" >"$CTL/${k%%=*}"; else : >"$CTL/fail_$k"; fi
    done
    : >"$CALLS"
    : >"$SEQ_ACTUAL"
}

seq_cmd() {  # COMMAND[+NAME]
    local cmd=$1 extra= n_before
    if [[ $cmd == *+* ]]; then
        extra=${cmd#*+}
        cmd=${cmd%%+*}
        : >"$CTL/fail_$extra"
    fi
    n_before=$(wc -l <"$CALLS")
    echo "\$ $cmd" >>"$SEQ_ACTUAL"
    if [ "$cmd" = install ]; then
        molt_dev install "$T/new-1.mender" --reboot-exit-code
    else
        molt_dev "$cmd" --reboot-exit-code
    fi
    tail -n +$((n_before + 1)) "$CALLS" | cut -d' ' -f1 >>"$SEQ_ACTUAL"
    echo "exit $RUN_RC" >>"$SEQ_ACTUAL"
    cp "$RUN_ERR" "$T/seq.last.err"
    [ -z "$extra" ] || rm -f "$CTL/fail_$extra"
}

# Every process whose environment carries MOLT_TEST_MARK=$1 (started by one molt run).
seq_marked_pids() {  # MARK
    grep -lzxF "MOLT_TEST_MARK=$1" /proc/[0-9]*/environ 2>/dev/null | cut -d/ -f3 || true
}

# Wait until FILE is not empty (a handshake of a module inside a state) while molt_bg's molt
# (MOLT_BG_PID) runs; otherwise kill it, show its stderr (OUTFILE.err) and fail with WHAT.
wait_handshake() {  # FILE OUTFILE WHAT
    local end
    end=$(guard_deadline)
    while [ "$SECONDS" -lt "$end" ]; do
        [ -s "$1" ] && return 0
        kill -0 "$MOLT_BG_PID" 2>/dev/null || break
        sleep 0.05
    done
    [ -s "$1" ] && return 0
    kill_group "$MOLT_BG_PID"
    cat "$2.err" >&2
    fail "$3"
}

# Fail with WHAT when a process of the run marked MARK is still alive (they are killed first).
assert_none_marked() {  # MARK WHAT
    local left
    left=$(seq_marked_pids "$1")
    [ -z "$left" ] && return 0
    ps -o pid,pgid,args -p "$(echo $left | tr ' ' ,)" >&2 || true
    kill -9 $left 2>/dev/null || true
    fail "$2"
}

seq_killed() {  # COMMAND TARGET
    local cmd=$1 target=$2 n_before mark="$T/$RANDOM$RANDOM" pid i args
    n_before=$(wc -l <"$CALLS")
    # Sleeps until the cut (long: the cut comes at the handshake, however late, never the end).
    printf '3600' >"$CTL/sleep_$target"
    # The module records its pid when TARGET is a module call (scripts record theirs).
    printf 'echo $$ >"$CTL/pid"\n' >"$CTL/hook_$target"
    rm -f "$CTL/pid"
    echo "\$ $cmd" >>"$SEQ_ACTUAL"
    if [ "$cmd" = install ]; then args=(install "$T/new-1.mender"); else args=("$cmd"); fi
    MOLT_TEST_MARK=$mark molt_bg "$T/seq.bg.out" "${args[@]}" --reboot-exit-code
    local end
    end=$(guard_deadline)
    while [ "$SECONDS" -lt "$end" ]; do
        [ -s "$CTL/pid" ] && break
        kill -0 "$MOLT_BG_PID" 2>/dev/null || break
        sleep 0.05
    done
    if [ ! -s "$CTL/pid" ]; then
        kill_group "$MOLT_BG_PID"
        cat "$T/seq.bg.out.err" >&2
        fail "$cmd: never reached $target (calls: $(tail -n +$((n_before + 1)) "$CALLS" | cut -d' ' -f1 | tr '\n' ' '))"
    fi
    pid=$(cat "$CTL/pid")
    # Power cut: molt, the module's (or script's) process group, then anything left of that run.
    kill -9 -- "-$MOLT_BG_PID" 2>/dev/null || true
    kill -9 -- "-$pid" 2>/dev/null || true
    kill -9 "$pid" 2>/dev/null || true
    wait "$MOLT_BG_PID" 2>/dev/null || true
    end=$(guard_deadline)
    while [ "$SECONDS" -lt "$end" ]; do
        local left
        left=$(seq_marked_pids "$mark")
        [ -z "$left" ] && break
        kill -9 $left 2>/dev/null || true
        sleep 0.05
    done
    [ -z "$(seq_marked_pids "$mark")" ] || fail "$cmd: processes survive the power cut"
    rm -f "$CTL/sleep_$target" "$CTL/hook_$target" "$CTL/pid"
    tail -n +$((n_before + 1)) "$CALLS" | cut -d' ' -f1 >>"$SEQ_ACTUAL"
    echo "killed" >>"$SEQ_ACTUAL"
}

seq_check() {  # NAME
    local name=$1
    echo "provides:" >>"$SEQ_ACTUAL"
    dev_provides | sort >>"$SEQ_ACTUAL"
    if ! diff -u "$SEQ_EXPECTED/$name.txt" "$SEQ_ACTUAL" >"$T/seq.diff"; then
        cat "$T/seq.diff" >&2
        echo "--- molt's stderr of the last command:" >&2
        head -c 3000 "$T/seq.last.err" >&2 2>/dev/null || true
        fail "case $name differs from expected/$name.txt (- expected, + molt)"
    fi
    # Module calls: argv = [module, Call, tree], all in one folder; scripts: no arguments.
    awk '$2 != "script" && $2 != 2 { print "module call with argc " $2 ": " $0 }
         $2 == "script" && $3 != 0 { print "script with arguments: " $0 }' "$CALLS" >"$T/seq.bad"
    [ ! -s "$T/seq.bad" ] || fail "case $name: $(cat "$T/seq.bad")"
    [ "$(awk '$2 != "script" { print $3 }' "$CALLS" | sort -u | wc -l)" -le 1 ] ||
        fail "case $name: module calls ran in different folders"
    assert_eq idle "$(dev_state)" "case $name: state at the end"
    # Nothing half-done: the module's work tree is gone with the deployment (docs/reference §2.8).
    [ -z "$(find "$DEV_DATA" -type d -name tree)" ] ||
        fail "case $name: a module work tree is left: $(find "$DEV_DATA" -type d -name tree)"
}
