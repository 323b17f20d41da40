# SPDX-License-Identifier: Apache-2.0
# Helpers for the fleet tests (test_fleet_*.sh): a device (device.sh) that talks to the test
# server's Mender device API (tests/server/mender_api.py) over HTTPS with a throw-away CA.
# Source after lib.sh and device.sh.
#
#   fleet_device [KEY_TYPE]     make device "dev" (device_new) with an identity script, a molt
#                               inventory script, no native modules (exec modules only), and a
#                               server: section for $URL (short intervals), last in molt.yaml so
#                               device_config can add server keys
#   fleet_server_start [ARGS]   start mender_api.py (TLS, --files $T/www, --state $T/mstate.json,
#                               --log $T/server.log) on a new port, or on $PORT when set; sets URL
#   fleet_server_stop
#   mctl JSON                   PUT /_control/mender (accept, deployment, abort, rules ...);
#                               $MCURL_OPTS: more curl options (a client certificate)
#   mstate FILE                 GET /_control/mender into FILE
#   mq EXPR                     evaluate a Python expression over the state (`s`) and the server
#                               log entries (`log`); prints the result
#   wait_mq EXPR [SECONDS]      wait until mq EXPR prints True (guard: lib.sh MOLT_TEST_GUARD)
#   daemon_start / daemon_stop  `molt daemon` in the background (its output in $T/daemon.out.err)
#   dd_statuses                 the statuses the server got for deployment d1 (space separated)

SERVER_API="$MOLT_SRC_DIR/tests/server/mender_api.py"
MAKE_CA="$MOLT_SRC_DIR/tests/server/make_test_ca.sh"
SERVER_PID=
MOLT_BG_PID=
PORT=

fleet_cleanup() {
    [ -z "$MOLT_BG_PID" ] || kill_group "$MOLT_BG_PID"
    fleet_server_stop
    rm -rf "$T"
}
trap fleet_cleanup EXIT

[ -d "$T/ca" ] || bash "$MAKE_CA" "$T/ca" "molt fleet" >/dev/null || fail "make_test_ca.sh"
mkdir -p "$T/www"

fleet_server_start() {  # [ARGS...]
    rm -f "$T/port"
    python3 "$SERVER_API" --port-file "$T/port" --port "${PORT:-0}" \
        --tls-cert "${SERVER_CERT:-$T/ca/server.crt}" --tls-key "${SERVER_KEY:-$T/ca/server.key}" \
        --files "$T/www" --state "$T/mstate.json" --log "$T/server.log" "$@" \
        2>>"$T/server.err" &
    SERVER_PID=$!
    local end
    end=$(guard_deadline)
    while [ "$SECONDS" -lt "$end" ]; do
        [ -s "$T/port" ] && break
        kill -0 "$SERVER_PID" 2>/dev/null || { cat "$T/server.err" >&2; fail "the test server died"; }
        sleep 0.05
    done
    [ -s "$T/port" ] || fail "the test server did not write its port"
    PORT=$(cat "$T/port")
    URL="https://127.0.0.1:$PORT"
}

fleet_server_stop() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}

mctl() {  # JSON
    curl -sS --fail --cacert "$T/ca/ca.crt" ${MCURL_OPTS:-} -X PUT --data "$1" "$URL/_control/mender" \
        -o /dev/null || fail "control request failed: $1"
}

mstate() {  # FILE
    curl -sS --fail --cacert "$T/ca/ca.crt" ${MCURL_OPTS:-} "$URL/_control/mender" -o "$1" ||
        fail "cannot read the server's state"
}

mq() {  # EXPR
    mstate "$T/.mstate.json"
    python3 - "$T/.mstate.json" "$T/server.log" "$1" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
try:
    log = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
except FileNotFoundError:
    log = []
dd = lambda dep="d1": next((v for k, v in s["device_deployments"].items()
                            if k.endswith("/" + dep)), {"statuses": [], "finished": None})
api = lambda path: [e for e in log if path in e.get("path", "")]
print(eval(sys.argv[3]))
PY
}

wait_mq() {  # EXPR [SECONDS]
    local end
    end=$(guard_deadline "${2:-}")
    while [ "$SECONDS" -lt "$end" ]; do
        [ "$(mq "$1")" = True ] && return 0
        if [ -n "$MOLT_BG_PID" ] && ! kill -0 "$MOLT_BG_PID" 2>/dev/null; then
            cat "$T/daemon.out.err" >&2
            fail "molt daemon exited while waiting for: $1"
        fi
        sleep 0.1
    done
    echo "--- daemon:" >&2; tail -n 40 "$T/daemon.out.err" >&2
    echo "--- server state:" >&2; head -c 3000 "$T/.mstate.json" >&2
    fail "timed out waiting for: $1 (guard: $MOLT_TEST_GUARD s)"
}

dd_statuses() {
    mq '" ".join(dd()["statuses"])'
}

fleet_device() {  # [KEY_TYPE]
    device_new dev dev-a
    mkdir -p "$DEV/identity" "$DEV/inventory"
    cat >"$DEV/identity/id" <<'SH'
#!/bin/sh
echo "mac=52:54:00:12:34:56"
echo "serial=SN-0001"
echo "mac=52:54:00:ab:cd:ef"
SH
    cat >"$DEV/inventory/molt-inventory-test" <<'SH'
#!/bin/sh
echo "kernel=test-kernel"
echo "ipv4=10.0.0.2/24"
echo "ipv4=10.0.0.3/24"
SH
    chmod 0755 "$DEV/identity/id" "$DEV/inventory/molt-inventory-test"
    mkdir -p "$T/no-native"
    device_config "native_module_dir: $T/no-native" "http:" "  ca_file: $T/ca/ca.crt" "  retry_download_count: 5" \
        "  retry_max_interval: 1" "  connect_timeout: 5" "  low_speed_time: 5" \
        "server:" "  url: \${URL}" "  update_poll_interval: 1" "  inventory_poll_interval: 3600" \
        "  retry_poll_interval: 1" "  device_key_type: ${1:-ed25519}" \
        "  identity_scripts: [$DEV/identity/id]" "  inventory_dirs: [$DEV/inventory]" \
        "  control_socket: $DEV/run/molt.sock" "  reboot_command: null"
}

daemon_start() {
    sed -i "s|url: .*|url: $URL|" "$DEV_CONF"
    molt_bg "$T/daemon.out" daemon
}

daemon_stop() {  # SIGTERM, wait (bounded), check the exit code and sanitizer output
    [ -n "$MOLT_BG_PID" ] || return 0
    kill -TERM "$MOLT_BG_PID" 2>/dev/null || true
    local end rc=0
    end=$(guard_deadline)
    while [ "$SECONDS" -lt "$end" ]; do
        kill -0 "$MOLT_BG_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$MOLT_BG_PID" 2>/dev/null && { kill_group "$MOLT_BG_PID"; MOLT_BG_PID=; fail "molt daemon ignored SIGTERM"; }
    wait "$MOLT_BG_PID" || rc=$?
    MOLT_BG_PID=
    if grep -qE '(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:' "$T/daemon.out.err"; then
        cat "$T/daemon.out.err" >&2
        fail "molt daemon: sanitizer report"
    fi
    [ "$rc" = 0 ] || { tail -n 30 "$T/daemon.out.err" >&2; fail "molt daemon exited with $rc"; }
}

daemon_kill() {
    kill_group "$MOLT_BG_PID"
    MOLT_BG_PID=
}

# The single-file artifact $T/www/$1.mender named $1 that writes $DEV_DEST/blob.bin.
fleet_artifact() {  # NAME [SIZE]
    mkdir -p "$T/src-$1"
    head -c "${2:-200000}" /dev/urandom >"$T/src-$1/blob.bin"
    printf '%s' "$DEV_DEST" >"$T/src-$1/dest_dir"
    printf 'blob.bin' >"$T/src-$1/filename"
    make_artifact "$T/www/$1.mender" "$1" single-file -f "$T/src-$1/blob.bin" \
        -f "$T/src-$1/dest_dir" -f "$T/src-$1/filename"
}
