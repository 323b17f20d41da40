# SPDX-License-Identifier: Apache-2.0
# The daemon under systemd: support/molt.service passes `systemd-analyze verify` (with the built
# molt as ExecStart); READY=1, WATCHDOG=1 (with WATCHDOG_USEC) and STOPPING=1 arrive on
# NOTIFY_SOCKET (read by a datagram listener here); without server.url the daemon refuses to
# start and says why, and `molt daemon --check` (the unit's ExecCondition) exits 1 so systemd
# skips the unit; `molt check-update` without a daemon exits 2.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/fleet.sh"

UNIT="$MOLT_SRC_DIR/support/molt.service"
[ -f "$UNIT" ] || fail "missing $UNIT"
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$T/unit"
    grep -qx "ExecCondition=/usr/bin/molt daemon --check" "$UNIT" ||
        fail "molt.service: no ExecCondition: the unit would start (and fail) without a server"
    sed "s|^\(Exec[A-Za-z]*\)=/usr/bin/molt|\1=$MOLT|" "$UNIT" >"$T/unit/molt.service"
    systemd-analyze verify "$T/unit/molt.service" >"$T/verify.out" 2>&1 ||
        { cat "$T/verify.out" >&2; fail "systemd-analyze verify molt.service"; }
    [ ! -s "$T/verify.out" ] || { cat "$T/verify.out" >&2; fail "systemd-analyze verify: warnings"; }
    pass "molt.service verifies"
else
    echo "note: systemd-analyze not installed: unit check skipped"
fi

fleet_device
sed -i 's|url: .*|url: null|' "$DEV_CONF"
molt_dev daemon --check
expect_rc 1 "daemon --check without server.url"
assert_match "server.url is not set" "$(cat "$RUN_ERR")" "daemon --check without server.url: message"
molt_dev daemon
expect_rc 1 "daemon without server.url"
assert_match "server.url is not set" "$(cat "$RUN_ERR")" "daemon without server.url: message"
[ ! -e "$DEV_DATA/device-key.pem" ] || fail "no server.url: a key was made anyway"
sed -i 's|url: null|url: ftp://example|' "$DEV_CONF"
molt_dev daemon
expect_rc 1 "daemon with an ftp url"
assert_match 'server.url "ftp://example": expected an https://' "$(cat "$RUN_ERR")" "ftp url: message"
molt_dev daemon --check
expect_rc 1 "daemon --check with an ftp url"
sed -i 's|url: ftp://example|url: https://example|' "$DEV_CONF"
molt_dev daemon --check
expect_rc 0 "daemon --check with an https url"
[ ! -e "$DEV_DATA/device-key.pem" ] || fail "daemon --check made a key: it must start nothing"
molt_dev status --check
expect_rc 1 "--check with status"
assert_match "--check is an option of daemon" "$(cat "$RUN_ERR")" "--check with status: message"
pass "no server.url, or not http(s): refused; daemon --check says so"

molt_dev check-update
expect_rc 2 "check-update without a daemon"
assert_match "cannot reach the molt daemon" "$(cat "$RUN_ERR")" "check-update without a daemon: message"
pass "check-update without a daemon: exit 2"

fleet_server_start
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
open(sys.argv[1] + ".ready", "w").close()
s.settimeout(int(sys.argv[3]))   # a guard: the test ends it at STOPPING=1
with open(sys.argv[2], "a", buffering=1) as out:
    while True:
        try:
            msg = s.recv(4096).decode()
        except socket.timeout:
            break
        out.write(msg + "\n")
        if msg == "STOPPING=1":
            break
' "$T/notify.sock" "$T/notify.log" "$MOLT_TEST_GUARD" &
LISTENER=$!
trap 'kill "$LISTENER" 2>/dev/null || true; fleet_cleanup' EXIT
end=$(guard_deadline)
until [ -f "$T/notify.sock.ready" ]; do
    [ "$SECONDS" -lt "$end" ] && kill -0 "$LISTENER" 2>/dev/null || fail "the notify listener did not start"
    sleep 0.05
done
export NOTIFY_SOCKET="$T/notify.sock" WATCHDOG_USEC=1000000
daemon_start
unset NOTIFY_SOCKET WATCHDOG_USEC
wait_for_line "$T/notify.log" '^READY=1$'
# Three pings (one every WATCHDOG_USEC/2), however long a busy machine takes to send them: the
# test waits for them (bounded by the guard only) instead of counting what 2.5 s brought.
end=$(guard_deadline)
while [ "$(grep -c '^WATCHDOG=1$' "$T/notify.log")" -lt 3 ] && [ "$SECONDS" -lt "$end" ]; do
    kill -0 "$MOLT_BG_PID" 2>/dev/null || fail "the daemon exited: $(tail -n 20 "$T/daemon.out.err")"
    sleep 0.05
done
[ "$(grep -c '^WATCHDOG=1$' "$T/notify.log")" -ge 3 ] || fail "watchdog pings: $(cat "$T/notify.log")"
daemon_stop
wait "$LISTENER" || true
grep -qx 'STOPPING=1' "$T/notify.log" || fail "no STOPPING=1: $(cat "$T/notify.log")"
pass "sd_notify: READY, WATCHDOG, STOPPING"
