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
#   wait_for_line FILE REGEX [SECONDS]   wait until a line of FILE matches REGEX (default 30 s)
#   kill_group PID         kill -9 the process group PID leads (and PID itself)
#   make_artifact OUT NAME TYPE [mender-artifact args...]   mender-artifact write module-image
#                          for the current device's type (-t $DEV_TYPE) with the given extra args
#   go_device_new NAME [DEVICE_TYPE] [ORIGINAL_NAME]   a scratch device for Mender's Go client
#                          (reference §2.11): GO_SB, GO_CONF, GO_STORE
#   go_mender ARGS...      run `mender --no-syslog -c GO_CONF -d GO_STORE ARGS` (RUN_RC...). Go 3.4
#                          reads the first artifact name from the hard-coded /etc/mender/artifact_info,
#                          so the call runs in a private mount namespace (unshare -m) where a scratch
#                          folder is bind-mounted over /etc/mender; the real /etc is never touched.
#                          If GO_TARGET is set (a folder), $GO_SB/target is bind-mounted over it in
#                          that namespace: artifacts naming paths below GO_TARGET install into the
#                          Go device's own copy, so both clients run the very same artifacts.

MOLT_TIMEOUT=${MOLT_TIMEOUT:-60}
[ "$MOLT_SANITIZE" = ON ] && MOLT_TIMEOUT=$((MOLT_TIMEOUT * 2))

device_new() {  # NAME [DEVICE_TYPE]
    DEV="$T/$1"
    DEV_TYPE=${2:-dev-a}
    DEV_CONF="$DEV/molt.yaml"
    DEV_DATA="$DEV/data"
    DEV_MODULES="$DEV/modules"
    DEV_SCRIPTS="$DEV/scripts"
    DEV_DEST="$DEV/dest"
    DEV_STORE="$DEV_DATA/store"
    mkdir -p "$DEV_DATA" "$DEV_MODULES" "$DEV_SCRIPTS" "$DEV_DEST"
    printf 'device_type=%s\n' "$DEV_TYPE" >"$DEV_DATA/device_type"
    cat >"$DEV_CONF" <<YAML
data_dir: $DEV_DATA
device_type_file: $DEV_DATA/device_type
module_dirs:
  - $DEV_MODULES
  - /usr/share/mender/modules/v3
scripts_dir: $DEV_SCRIPTS
module_timeout: 60
YAML
}

device_config() {  # LINE...
    printf '%s\n' "$@" >>"$DEV_CONF"
}

device_add_module() {  # NAME FILE
    cp "$2" "$DEV_MODULES/$1"
    chmod 0755 "$DEV_MODULES/$1"
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

dev_state() {
    dev_status_json >"$T/.status.json"
    local s
    s=$(json_get "$T/.status.json" state)
    [ -n "$s" ] || fail "molt status --json has no \"state\": $(cat "$T/.status.json")"
    echo "$s"
}

wait_for_line() {  # FILE REGEX [SECONDS]
    local i n=$((${3:-30} * 20))
    for ((i = 0; i < n; i++)); do
        if [ -f "$1" ] && grep -qE "$2" "$1"; then
            return 0
        fi
        sleep 0.05
    done
    fail "timed out waiting for /$2/ in $1"
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
        GO_TARGET="${GO_TARGET:-}" GO_SB="$GO_SB" timeout -k 5 60 unshare -m sh -c '
            mount --bind "$GO_SB/etc-mender" /etc/mender || exit 3
            if [ -n "$GO_TARGET" ]; then mount --bind "$GO_SB/target" "$GO_TARGET" || exit 3; fi
            exec "$@"' go-mender mender --no-syslog -c "$GO_CONF" -d "$GO_STORE" "$@"
    [ "$RUN_RC" != 124 ] || { cat "$RUN_ERR" >&2; fail "mender $*: still running after 60 s"; }
}
