# SPDX-License-Identifier: Apache-2.0
# molt stopped by a signal (SIGTERM, SIGINT, SIGHUP) while a module call runs takes the module
# with it: the module's process group (a grandchild it started included) is killed before molt
# dies of the signal, as a power cut would stop both; an isolated native module's child too.
# Without this the module would go on changing the device while the next `molt resume`
# recovers the same deployment. After the stop, `molt resume` takes the power-cut path of that
# state (docs/reference §2.8): in Download -> Cleanup, failure; in ArtifactInstall -> the rollback
# path; the store ends idle with the old artifact.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

seq_setup

# molt in the background as molt_bg starts it, marked with MARK, with SIGINT and SIGQUIT at
# their default action (a background job of a non-interactive shell starts with them ignored,
# and molt leaves an ignored signal ignored, as nohup expects). Sets MOLT_BG_PID.
molt_marked() {  # MARK ARGS...
    local mark=$1
    shift
    MOLT_TEST_MARK=$mark setsid env --default-signal=INT,QUIT "$MOLT" --config "$DEV_CONF" "$@" \
        >"$T/stop.out" 2>"$T/stop.out.err" &
    MOLT_BG_PID=$!
}

# molt_marked, then wait until $CTL/pid exists.
start_marked() {  # MARK ARGS...
    local mark=$1 i
    rm -f "$CTL/pid"
    molt_marked "$@"
    local end
    end=$(guard_deadline)
    while [ "$SECONDS" -lt "$end" ]; do
        [ -s "$CTL/pid" ] && return 0
        kill -0 "$MOLT_BG_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill_group "$MOLT_BG_PID"
    cat "$T/stop.out.err" >&2
    fail "the module call never started"
}

# Send SIG to molt alone; molt must die of it and nothing it started may be left.
stop_and_check() {  # SIG MARK WHAT
    local sig=$1 mark=$2 what=$3 rc=0 i
    kill -s "$sig" "$MOLT_BG_PID"
    wait "$MOLT_BG_PID" || rc=$?
    assert_eq "$((128 + $(kill -l "$sig")))" "$rc" "$what: molt's exit status (died of SIG$sig)"
    local end
    end=$(guard_deadline 5)   # (their deaths were sent before molt died: a moment, not a window)
    while [ "$SECONDS" -lt "$end" ]; do
        [ -z "$(seq_marked_pids "$mark")" ] && break
        sleep 0.05
    done
    local left
    left=$(seq_marked_pids "$mark")
    if [ -n "$left" ]; then
        ps -o pid,pgid,args -p "$(echo $left | tr ' ' ,)" >&2 || true
        kill -9 $left 2>/dev/null || true
        fail "$what: processes of the stopped run are still running"
    fi
}

# ---- exec modules: the logging module sleeping in TARGET, with a grandchild ------------------
for c in TERM:Download INT:ArtifactInstall HUP:ArtifactInstall; do
    sig=${c%%:*}
    target=${c#*:}
    mark="$T/mark-$sig-$target"
    seq_start Yes No ""
    printf '3600' >"$CTL/sleep_$target"
    printf 'sleep 3600 & echo $$ >"$CTL/pid"\n' >"$CTL/hook_$target"
    start_marked "$mark" install "$T/new-1.mender" --reboot-exit-code
    stop_and_check "$sig" "$mark" "SIG$sig in $target"
    rm -f "$CTL/sleep_$target" "$CTL/hook_$target"
    [ "$(dev_state)" != idle ] || fail "SIG$sig in $target: no deployment in the store"
    molt_dev resume --reboot-exit-code
    expect_rc 1 "resume after SIG$sig in $target"
    assert_eq idle "$(dev_state)" "state after resume (SIG$sig in $target)"
    assert_eq "base-1" "$(dev_artifact)" "artifact after resume (SIG$sig in $target)"
    case $target in
        Download) grep -q '^Cleanup' "$CALLS" || fail "no Cleanup after the stop in Download" ;;
        ArtifactInstall) grep -q '^ArtifactRollback' "$CALLS" || fail "no rollback after the stop in ArtifactInstall" ;;
    esac
    pass "SIG$sig while the module runs $target: the module's group dies with molt; resume recovers"
done

# ---- an isolated native module: its forked child dies with molt -------------------------------
NATIVE_BUILT="$MOLT_BUILD_DIR/tests/modules/native"
[ -f "$NATIVE_BUILT/native_copy.so" ] || fail "test modules not built in $NATIVE_BUILT"
device_new iso dev-a
mkdir -p "$DEV/native"
cp "$NATIVE_BUILT/native_copy.so" "$DEV/native/"
device_config "native_module_dir: $DEV/native" "native_isolated_modules:" \
    "  - $DEV/native/native_copy.so"
head -c 100000 /dev/urandom >"$T/iso-payload.bin"
printf '{"dest": "%s", "hang": "ArtifactInstall"}' "$DEV_DEST" >"$T/iso-meta.json"
make_artifact "$T/iso.mender" iso-1 native-copy -f "$T/iso-payload.bin" -m "$T/iso-meta.json"
mark="$T/mark-iso"
molt_marked "$mark" install "$T/iso.mender"
calls="$DEV_DATA/native/copy/work/calls"
end=$(guard_deadline)
while [ "$SECONDS" -lt "$end" ]; do
    grep -q ArtifactInstall "$calls" 2>/dev/null && break
    kill -0 "$MOLT_BG_PID" 2>/dev/null || break
    sleep 0.05
done
grep -q ArtifactInstall "$calls" || { kill_group "$MOLT_BG_PID"; fail "the isolated call never started"; }
[ "$(seq_marked_pids "$mark" | wc -l)" -ge 2 ] || fail "no isolated child next to molt"
stop_and_check TERM "$mark" "SIGTERM in an isolated ArtifactInstall"
pass "SIGTERM during an isolated native call: its child dies with molt"
