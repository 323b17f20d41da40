# SPDX-License-Identifier: Apache-2.0
# The daemon runs each job (poll, inventory, a deployment) in a short-lived child
# (docs/performance.md, "The idle daemon"). Checked here, each by handshake with the test server
# (a "hold" rule keeps the device's poll waiting until the test releases it):
#  - structure: the long-lived process never maps libcurl, libssl or OpenSSL's providers, neither
#    between polls nor while its child is inside a request; the child does map libcurl;
#  - a child never outlives the daemon: SIGKILL of the daemon alone (not its group) while its
#    child is inside a poll ends the child too (PR_SET_PDEATHSIG);
#  - SIGTERM to the daemon alone while its child is inside a poll: passed on to the child, which
#    finishes its request; then both exit, the daemon with 0;
#  - SIGTERM during a deployment's download (held by the server's --hold-after): the download
#    finishes, the state hook stops the machine before ArtifactInstall without exiting the
#    process (the daemon leaves through its loop: "molt daemon: stopping", exit 0), the store
#    keeps the deployment in Download, and the next start fails it cleanly (Cleanup, "failure").
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/fleet.sh"

NETLIBS='libcurl|libssl|libnghttp|libgnutls|libp11-kit|libffi|ossl-modules|libkrb5|libldap'

# A live process (a zombie waiting for its reaper does not count).
alive() {  # PID
    local st
    st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$st" ] && [ "$st" != Z ]
}

# Wait until PID is gone; the deadline is a hang guard only (guard_deadline). 1 if it still runs.
wait_gone() {  # PID
    local end
    end=$(guard_deadline)
    while alive "$1"; do
        [ "$SECONDS" -lt "$end" ] || return 1
        sleep 0.05
    done
}


release() {
    curl -sS --fail --cacert "$T/ca/ca.crt" -X PUT "$URL/_control/release" -o /dev/null ||
        fail "cannot release the held request"
}

# Hold the next poll; wait until the server holds it; set CHILD to the daemon's child inside it.
hold_poll() {
    local n
    n=$(grep -c '"event": "held"' "$T/server.log" 2>/dev/null || true)
    mctl '{"rules": [{"path": "/deployments/next", "hold": true}]}'
    molt_dev check-update
    expect_rc 0 "check-update"
    local end
    end=$(guard_deadline)
    while [ "$(grep -c '"event": "held"' "$T/server.log" 2>/dev/null || true)" -le "${n:-0}" ] &&
        [ "$SECONDS" -lt "$end" ]; do
        sleep 0.05
    done
    [ "$(grep -c '"event": "held"' "$T/server.log")" -gt "${n:-0}" ] || fail "the poll was never held"
    CHILD=$(pgrep -P "$MOLT_BG_PID" || true)
    [ -n "$CHILD" ] && [ "$(echo "$CHILD" | wc -l)" = 1 ] ||
        fail "expected one child of the daemon inside the held poll, got: ${CHILD:-none}"
}

fleet_device
# A held request must not time out on the device's side (5 s in fleet.sh): the child then stays
# inside it until the test releases it, whatever the load.
sed -i 's|low_speed_time: .*|low_speed_time: 600|' "$DEV_CONF"
fleet_server_start
daemon_start
wait_mq 'any(d["status"] == "pending" for d in s["devices"].values())' 60
mctl '{"accept": true}'
wait_mq 'len(s["inventory"]) == 1' 60
wait_mq 'len([e for e in api("/deployments/next") if e.get("status") in (200, 204)]) >= 2' 60

# ---- structure: the parent maps none of the network libraries --------------------------------
grep -qE "$NETLIBS" "/proc/$MOLT_BG_PID/maps" &&
    fail "between polls the daemon maps: $(grep -oE "[^/]*($NETLIBS)[^ ]*" "/proc/$MOLT_BG_PID/maps" | sort -u | tr '\n' ' ')"
pass "between polls the daemon maps no libcurl, libssl or OpenSSL provider"

hold_poll
child=$CHILD
grep -q libcurl "/proc/$child/maps" || fail "the child inside the poll does not map libcurl"
grep -qE "$NETLIBS" "/proc/$MOLT_BG_PID/maps" && fail "while its child polls, the daemon maps a network library"
pass "while its child is inside a request, the daemon still maps none of them (the child maps libcurl)"

# ---- SIGKILL of the daemon alone: its child dies with it --------------------------------------
kill -KILL "$MOLT_BG_PID"
wait "$MOLT_BG_PID" 2>/dev/null || true
MOLT_BG_PID=
if ! wait_gone "$child"; then
    ps -o pid,ppid,args -p "$child" >&2 || true
    kill -9 "$child" 2>/dev/null || true
    release
    fail "the daemon's child (pid $child) outlived the daemon killed with SIGKILL"
fi
release
mctl '{"rules": []}'
pass "SIGKILL of the daemon while its child is inside a poll: the child ends too"

# ---- SIGTERM of the daemon alone: passed on, the child finishes its request, both exit ------
daemon_start
wait_mq 'len([e for e in api("/deployments/next") if e.get("status") in (200, 204)]) >= 3' 60
hold_poll
child=$CHILD
kill -TERM "$MOLT_BG_PID"
wait_for_line "$T/daemon.out.err" "stopping: waiting for the running job \\(pid $child\\)" 30
alive "$MOLT_BG_PID" || fail "SIGTERM: the daemon exited while its child still worked"
release
wait_gone "$MOLT_BG_PID" || fail "SIGTERM: the daemon did not stop after its child's request"
rc=0
wait "$MOLT_BG_PID" || rc=$?
MOLT_BG_PID=
assert_eq 0 "$rc" "SIGTERM: the daemon's exit code"
alive "$child" && fail "SIGTERM: the child is still running"
grep -q "molt daemon: stopping" "$T/daemon.out.err" || fail "SIGTERM: the daemon did not stop through its loop"
pass "SIGTERM while the child polls: passed on, the request finished, both exited (0)"

# ---- SIGTERM during a deployment's download: stopped before ArtifactInstall, recorded ---------
fleet_artifact r1 300000
fleet_server_stop
fleet_server_start --hold-after 100000
daemon_start
mctl '{"deployment": {"id": "d1", "artifact_name": "r1", "file": "r1.mender", "device_types": ["dev-a"]}}'
wait_for_line "$T/server.log" '"event": "held", "path": "/_artifacts/r1.mender' 60
hold_child=$(pgrep -P "$MOLT_BG_PID" || true)
[ -n "$hold_child" ] || fail "download: no child of the daemon inside the held download"
kill -TERM "$MOLT_BG_PID"
wait_for_line "$T/daemon.out.err" "stopping: waiting for the running job \\(pid $hold_child\\)" 30
release
wait_gone "$MOLT_BG_PID" || fail "download: the daemon did not stop"
rc=0
wait "$MOLT_BG_PID" || rc=$?
MOLT_BG_PID=
assert_eq 0 "$rc" "download: the daemon's exit code"
grep -q "stopping before ArtifactInstall: the deployment stays recorded" "$T/daemon.out.err" ||
    fail "download: the daemon did not stop before ArtifactInstall"
grep -a -A1000 "stopping before ArtifactInstall" "$T/daemon.out.err" | grep -aq "molt daemon: stopping" ||
    fail "download: the daemon did not leave through its loop after the hook stopped the machine"
grep -aq "ended without an answer\|was killed by signal" "$T/daemon.out.err" &&
    fail "download: the child did not return from the stopped machine and answer (it exited)"
alive "$hold_child" && fail "download: the child is still running"
assert_eq Download "$(dev_state)" "download: the store keeps the deployment in Download"
assert_eq downloading "$(dd_statuses)" "download: statuses before the restart"
[ ! -e "$DEV_DEST/blob.bin" ] || fail "download: the file was installed"
daemon_start
wait_mq 'dd()["finished"] is not None' 60
daemon_stop
assert_eq "downloading failure" "$(dd_statuses)" "download: statuses after the restart"
assert_eq idle "$(dev_state)" "download: the store after the restart"
[ ! -e "$DEV_DEST/blob.bin" ] || fail "download: the file was installed after the restart"
pass "SIGTERM during a deployment's download: stopped before ArtifactInstall, recorded, failed cleanly at the next start"
