# SPDX-License-Identifier: Apache-2.0
# ctest-labels: root slow
# The deb module (modules/deb, native) through the real `molt` program and real dpkg, into a
# scratch root (never this machine's package database):
#  - the scratch root: an admindir (status, available, info, updates, triggers) and a static
#    busybox as /bin/sh, so dpkg chroots into it and runs the maintainer scripts there;
#  - packages built here with `dpkg-deb --build`, with postinst scripts leaving marks, shipped in
#    artifacts written by `mender-artifact write module-image -T deb` (Mender's deb layout);
#  - install of base (libfoo 1.0, app 1.0, oldtool 1.0) and commit; an update (newtool, which
#    Conflicts+Replaces oldtool so dpkg removes it; libfoo 2.0 whose postinst fails; app 2.0; a new
#    package extra) -> rollback: `dpkg-query -W` and the files of the root equal what they were
#    before (oldtool is back), extra and newtool are purged, `dpkg --audit` is clean; the same
#    update with a working postinst -> commit: the new versions, the repacked copies are gone;
#  - unmet dependencies (a package depending on a missing one; an update breaking an installed
#    package's versioned dependency) are refused before anything changes, with the dependency in
#    the message;
#  - the conformance kit (molt-module-test) on the module, with MOLT_DEB_ROOT naming a scratch root
#    (the kit writes its own configuration): happy path, a failure in each state, a kill -9 in
#    every state followed by recovery, rollback and cleanup twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/deb_lib.sh"

DEB_SO="$MOLT_BUILD_DIR/modules/native/deb.so"
KIT="$MOLT_BUILD_DIR/sdk/tester/molt-module-test"
[ -f "$DEB_SO" ] || fail "deb module not built: $DEB_SO"
for c in dpkg dpkg-deb dpkg-query dpkg-repack busybox mender-artifact; do
    command -v "$c" >/dev/null || fail "$c not installed (tools/deps.sh)"
done

# deb_artifact OUT NAME DEB...: a Mender deb artifact (module-image -T deb, one -f per package).
deb_artifact() {
    local out=$1 name=$2 args=() f
    shift 2
    for f in "$@"; do args+=(-f "$T/debs/$f.deb"); done
    make_artifact "$out" "$name" deb "${args[@]}"
}

state_of() {  # ROOT: what must come back after a rollback
    dpkg-query --admindir="$1/var/lib/dpkg" -W
    echo "--- files"
    (cd "$1" && find usr etc ! -path etc/marks -printf '%p %y %m %s\n' 2>/dev/null | sort)
    echo "--- marks"
    cat "$1/etc/marks" 2>/dev/null || true
}

audit_clean() {  # ROOT WHAT
    local out
    out=$(dpkg --root="$1" --admindir="$1/var/lib/dpkg" --audit 2>&1) || fail "$2: dpkg --audit failed: $out"
    [ -z "$out" ] || fail "$2: dpkg --audit is not clean: $out"
}

versions() {  # ROOT
    dpkg-query --admindir="$1/var/lib/dpkg" -W -f '${Package}=${Version}=${db:Status-Abbrev}\n' | tr '\n' ','
}

ROOT="$T/root"
new_root "$ROOT"
pkg libfoo 1.0 ""
pkg app 1.0 "libfoo (>= 1.0)"
pkg libfoo 2.0 "" 1             # postinst fails
pkg libfoo 2.0 ""
pkg app 2.0 "libfoo (>= 2.0)"
pkg extra 1.0 "busybox-sh | libfoo"
pkg broken 1.0 "libmissing (>= 3)"
pkg libfoo 0.5 ""               # would break app 1.0's "libfoo (>= 1.0)"
pkg oldtool 1.0 ""
pkg newtool 1.0 "" 0 "Conflicts: oldtool
Replaces: oldtool"              # dpkg removes oldtool in its favour

device_new deb dev-a
mkdir -p "$DEV/native"
cp "$DEB_SO" "$DEV/native/deb.so"
device_config "native_module_dir: $DEV/native" "modules:" "  deb:" "    root: $ROOT"

deb_artifact "$T/base.mender" base-1 libfoo_1.0-0 app_1.0-0 oldtool_1.0-0
deb_artifact "$T/bad.mender" update-bad newtool_1.0-0 libfoo_2.0-1 app_2.0-0 extra_1.0-0
deb_artifact "$T/good.mender" update-2 app_2.0-0 libfoo_2.0-0 extra_1.0-0 newtool_1.0-0
deb_artifact "$T/unmet.mender" unmet-1 broken_1.0-0 extra_1.0-0
deb_artifact "$T/breaks.mender" breaks-1 libfoo_0.5-0

# ---- base install + commit --------------------------------------------------------------------------
molt_dev install "$T/base.mender"
expect_rc 0 "install base-1"
molt_dev commit
expect_rc 0 "commit base-1"
assert_eq "app=1.0=ii ,libfoo=1.0=ii ,oldtool=1.0=ii ," "$(versions "$ROOT")" "packages after base-1"
assert_eq "app 1.0" "$(cat "$ROOT/usr/share/app/version")" "app's file after base-1"
grep -qx "libfoo 1.0 configure" "$ROOT/etc/marks" || fail "libfoo's postinst did not run in the root"
audit_clean "$ROOT" "after base-1"
[ ! -e "$DEV_DATA/native/deb/work/previous" ] || [ -z "$(ls -A "$DEV_DATA/native/deb/work/previous")" ] ||
    fail "repacked copies left after commit"
pass "base-1 (libfoo 1.0, app 1.0, oldtool 1.0) installs into the scratch root with its maintainer scripts"

# ---- a failing postinst in the middle of an update -> rollback to exactly the previous state --------
state_of "$ROOT" >"$T/before.txt"
molt_dev install "$T/bad.mender"
[ "$RUN_RC" != 0 ] || fail "update-bad with a failing postinst installed"
grep -q "dpkg --install in .* exited with" "$RUN_ERR" "$RUN_OUT" || { cat "$RUN_ERR"; fail "no dpkg failure message"; }
grep -q "libfoo 2.0 configure" "$ROOT/etc/marks" || fail "libfoo 2.0's postinst never ran"
audit_clean "$ROOT" "after the rollback of update-bad"
# The marks file shows the scripts that ran; the rest of the state must be exactly as before.
diff <(sed '/^--- marks/,$d' "$T/before.txt") <(state_of "$ROOT" | sed '/^--- marks/,$d') >&2 ||
    fail "the root after the rollback differs from before update-bad"
assert_eq "app 1.0" "$(cat "$ROOT/usr/share/app/version")" "app's file after the rollback"
[ ! -e "$ROOT/usr/share/extra" ] || fail "the new package extra was not purged"
grep -qx "extra 1.0 postrm purge" "$ROOT/etc/marks" || fail "extra was not purged with dpkg --purge"
grep -q "oldtool 1.0 postrm remove" "$ROOT/etc/marks" || fail "dpkg did not remove oldtool in favour of newtool"
assert_eq "oldtool 1.0" "$(cat "$ROOT/usr/share/oldtool/version")" "oldtool (removed by newtool) after the rollback"
grep -qx "libfoo 1.0 configure" <(tail -n 5 "$ROOT/etc/marks") ||
    fail "the repacked libfoo 1.0 was not reinstalled (its postinst did not run again)"
dev_state | grep -qx idle || fail "molt is not idle after the rollback"
pass "a failing postinst in the middle of an update rolls back: dpkg-query -W and the files as before, oldtool (removed by newtool) back, extra purged, audit clean"

# ---- unmet dependencies: refused before anything changes -------------------------------------------
for a in unmet breaks; do
    state_of "$ROOT" >"$T/before.txt"
    cp "$ROOT/var/lib/dpkg/status" "$T/status.before"
    molt_dev install "$T/$a.mender"
    [ "$RUN_RC" != 0 ] || fail "$a: installed despite unmet dependencies"
    grep -q "unmet dependencies, nothing was changed" "$RUN_ERR" || { cat "$RUN_ERR"; fail "$a: no unmet-dependency message"; }
    case $a in
    unmet) grep -q "package broken 1.0 Depends: libmissing (>= 3)" "$RUN_ERR" || fail "unmet: the dependency is not named" ;;
    breaks) grep -q "installed package app 1.0 Depends: libfoo (>= 1.0)" "$RUN_ERR" || fail "breaks: the broken dependency is not named" ;;
    esac
    diff "$T/before.txt" <(state_of "$ROOT") >&2 || fail "$a: the root changed"
    cmp -s "$T/status.before" "$ROOT/var/lib/dpkg/status" || fail "$a: dpkg's status file changed"
    audit_clean "$ROOT" "after $a"
done
pass "unmet dependencies (a missing package, a broken installed dependency) are refused before dpkg runs"

# ---- the working update: commit ---------------------------------------------------------------------
molt_dev install "$T/good.mender"
expect_rc 0 "install update-2"
ls "$DEV_DATA/native/deb/work/previous/libfoo/"libfoo_1.0_all.deb >/dev/null 2>&1 ||
    fail "no repacked libfoo 1.0 kept before commit"
molt_dev commit
expect_rc 0 "commit update-2"
assert_eq "app=2.0=ii ,extra=1.0=ii ,libfoo=2.0=ii ,newtool=1.0=ii ,oldtool=1.0=ic ," "$(versions "$ROOT")" "packages after update-2 (oldtool removed in favour of newtool, as dpkg leaves it)"
audit_clean "$ROOT" "after update-2"
[ -z "$(ls -A "$DEV_DATA/native/deb/work/previous" 2>/dev/null)" ] || fail "repacked copies left after commit"
pass "update-2 upgrades app and libfoo and adds extra; commit drops the repacked copies"

# ---- the conformance kit: a kill in every state, recovery, idempotency --------------------------------
if [ -x "$KIT" ]; then
    KROOT="$T/kitroot"
    new_root "$KROOT"
    mender-artifact write module-image -T deb -n kit-deb-1 -t kit-device -o "$T/kit.mender" \
        -f "$T/debs/libfoo_1.0-0.deb" -f "$T/debs/app_1.0-0.deb" >/dev/null || fail "kit artifact"
    RUN_TIMEOUT=600 MOLT_DEB_ROOT="$KROOT" run_prog "$KIT" "$DEB_SO" "$T/kit.mender"
    cat "$RUN_OUT"
    expect_rc 0 "the conformance kit on the deb module"
    grep -qx 'PASS kill-ArtifactInstall' "$RUN_OUT" || fail "the kit did not kill in ArtifactInstall"
    grep -qx 'PASS ArtifactRollback-twice' "$RUN_OUT" || fail "the kit did not check rollback twice"
    # Effects, through the probe of deb.yaml beside the module: a cut right after ArtifactCommit
    # rolls back, so the previous versions must still be there (they go in Cleanup).
    for c in effect-install effect-rollback effect-commit effect-kill-ArtifactCommit effect-fail-ArtifactCommit effect-checksum-end; do
        grep -qx "PASS $c" "$RUN_OUT" || fail "the kit: no passing $c"
    done
    audit_clean "$KROOT" "after the kit"
    pass "the deb module passes the conformance kit (kill -9 in every state, then recovery)"
else
    fail "the conformance kit is not built: $KIT"
fi
