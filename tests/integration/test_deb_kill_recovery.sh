# SPDX-License-Identifier: Apache-2.0
# ctest-labels: root
# The deb module killed with molt (issue 12, part 3): molt gets SIGKILL alone while dpkg runs
# libfoo's postinst (it sleeps after a handshake file in the scratch root), and `molt resume`
# starts at once. dpkg dies with molt (PR_SET_PDEATHSIG); the postinst dpkg had started is ended
# by the resume (it carries the dead molt's MOLT_OWNER token) before the module's rollback runs,
# so the rollback does not meet dpkg's lock, and repairs the half-configured package. Two cases:
# killed in ArtifactInstall (libfoo 2.0 half-configured, app 2.0 unpacked), and killed in
# ArtifactRollback (the rollback's reinstall of libfoo 1.0). Afterwards: the packages per
# dpkg-query are exactly those of base-1, as molt records, `dpkg --audit` is clean, nothing of
# the killed run is left. Fails without the fix: dpkg and the postinst still run after the
# resume, whose rollback fails on dpkg's lock.
# Last (issue 12, part 4): another process holds dpkg's lock (an fcntl lock on lock-frontend, as
# apt takes it) while `molt rollback` runs: the rollback stays pending (exit 1, status
# rollback-pending, the update's packages untouched); once the lock is free `molt resume` rolls
# back to base-1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/deb_lib.sh"

DEB_SO="$MOLT_BUILD_DIR/modules/native/deb.so"
[ -f "$DEB_SO" ] || fail "deb module not built: $DEB_SO"
for c in dpkg dpkg-deb dpkg-query dpkg-repack busybox mender-artifact; do
    command -v "$c" >/dev/null || fail "$c not installed (tools/deps.sh)"
done

ROOT="$T/root"
new_root "$ROOT"
# libfoo's postinst (both versions): while /etc/hold exists, say so and sleep
HOLD='if [ -f /etc/hold ]; then echo $$ >/etc/inside; sleep 3600; fi
'
PKG_POSTINST_EXTRA=$HOLD pkg libfoo 1.0 ""
pkg app 1.0 "libfoo (>= 1.0)"
pkg app 2.0 "libfoo (>= 2.0)"
PKG_POSTINST_EXTRA=$HOLD pkg libfoo 2.0 ""

device_new deb dev-a
mkdir -p "$DEV/native"
cp "$DEB_SO" "$DEV/native/deb.so"
device_config "native_module_dir: $DEV/native" "modules:" "  deb:" "    root: $ROOT"
make_artifact "$T/base.mender" base-1 deb -f "$T/debs/libfoo_1.0-0.deb" -f "$T/debs/app_1.0-0.deb"
make_artifact "$T/update.mender" update-2 deb -f "$T/debs/libfoo_2.0-0.deb" -f "$T/debs/app_2.0-0.deb"

versions() {
    dpkg-query --admindir="$ROOT/var/lib/dpkg" -W -f '${Package}=${Version}=${db:Status-Abbrev}\n' | tr '\n' ','
}

molt_dev install "$T/base.mender"
expect_rc 0 "install base-1"
molt_dev commit
expect_rc 0 "commit base-1"
before=$(versions)
assert_eq "app=1.0=ii ,libfoo=1.0=ii ," "$before" "packages of base-1"

# kill_in NAME COMMAND...: hold libfoo's postinst, run molt COMMAND in the background, kill -9
# molt alone once the postinst is inside, resume at once; then check the device.
kill_in() {
    local name=$1 mark="$T/mark-$1" audit
    shift
    rm -f "$ROOT/etc/inside"
    : >"$ROOT/etc/hold"
    MOLT_TEST_MARK=$mark molt_bg "$T/$name.out" "$@"
    disown "$MOLT_BG_PID"
    wait_handshake "$ROOT/etc/inside" "$T/$name.out" "$name: libfoo's postinst never ran"
    kill -9 "$MOLT_BG_PID"
    rm -f "$ROOT/etc/hold"
    molt_dev resume
    assert_none_marked "$mark" "$name: processes of the killed molt (dpkg, its postinst) still run after the resume"
    assert_match "ending process [0-9]+ \((sleep|postinst|sh)\), left running by a molt that died" \
        "$(cat "$RUN_ERR")" "$name: the resume says it ended the postinst's leftovers"
    grep -q "locked by another process" "$RUN_ERR" "$RUN_OUT" && fail "$name: the rollback met dpkg's lock"
    grep -q "dpkg was interrupted during the update; the rollback repairs" "$RUN_ERR" ||
        fail "$name: the rollback did not find the half-configured package"
    assert_eq idle "$(dev_state)" "$name: state after the resume"
    assert_eq base-1 "$(dev_artifact)" "$name: artifact molt records after the resume"
    assert_eq "$before" "$(versions)" "$name: packages per dpkg-query = those of base-1, as molt records"
    audit=$(dpkg --root="$ROOT" --admindir="$ROOT/var/lib/dpkg" --audit 2>&1) || fail "$name: dpkg --audit: $audit"
    [ -z "$audit" ] || fail "$name: dpkg --audit is not clean after the resume: $audit"
    assert_eq "app 1.0" "$(cat "$ROOT/usr/share/app/version")" "$name: app's file after the resume"
    pass "$name: kill -9 of molt while dpkg runs a postinst, resume at once: leftovers ended, rollback to base-1, dpkg-query = molt's record, audit clean"
}

# in ArtifactInstall: libfoo 2.0 half-configured, app 2.0 unpacked
kill_in install install "$T/update.mender"
# in ArtifactRollback: the update installed (awaiting commit), the rollback's dpkg reinstalling
# libfoo 1.0 is killed in its postinst; the resume runs the rollback again
molt_dev install "$T/update.mender"
expect_rc 0 "install update-2 (awaiting commit)"
assert_eq "app=2.0=ii ,libfoo=2.0=ii ," "$(versions)" "packages of update-2"
kill_in rollback rollback

# ---- dpkg's lock held by another process during the rollback: pending, then retried (part 4) -------
molt_dev install "$T/update.mender"
expect_rc 0 "install update-2 (awaiting commit)"
rm -f "$T/locked"
# the lock dpkg (and apt) take: an fcntl record lock on lock-frontend
python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "w")
fcntl.lockf(f, fcntl.LOCK_EX)
open(sys.argv[2], "w").write("1")
time.sleep(3600)' "$ROOT/var/lib/dpkg/lock-frontend" "$T/locked" &
LOCKER=$!
trap 'kill "$LOCKER" 2>/dev/null || true; rm -rf "$T"' EXIT   # lib.sh's trap, and the lock holder
end=$(guard_deadline)
while [ "$SECONDS" -lt "$end" ] && kill -0 "$LOCKER" 2>/dev/null; do [ -s "$T/locked" ] && break; sleep 0.05; done
[ -s "$T/locked" ] || { kill "$LOCKER"; fail "the lock holder did not start"; }
molt_dev rollback
expect_rc 1 "rollback while another process holds dpkg's lock"
assert_match "rollback pending \(attempt 1\): .*locked by another process" "$(cat "$RUN_ERR")" \
    "the rollback says it is pending because of dpkg's lock"
assert_eq rollback-pending "$(dev_state)" "status while dpkg's lock is held"
assert_eq "app=2.0=ii ,libfoo=2.0=ii ," "$(versions)" "packages while the rollback is pending"
kill "$LOCKER"
wait "$LOCKER" 2>/dev/null || true
molt_dev resume
expect_rc 0 "resume once dpkg's lock is free"
assert_eq idle "$(dev_state)" "state after the pending rollback ran"
assert_eq base-1 "$(dev_artifact)" "artifact after the pending rollback ran"
assert_eq "$before" "$(versions)" "packages after the pending rollback ran"
pass "dpkg's lock held by another process: the rollback stays pending, and runs once the lock is free"
