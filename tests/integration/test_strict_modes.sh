# SPDX-License-Identifier: Apache-2.0
# Strict modes (issue 12, part 6; docs/configuration.md "Strict modes"): the files that decide
# what molt runs as root are refused when another user could write them, as sshd's StrictModes:
#  - a group-writable configuration (it sets reboot_command, module_dirs, native_module_dir);
#  - a world-writable exec module; a world-writable native module;
#  - a state script in a world-writable folder that is not sticky;
# each refused with the file and its mode in the message, and nothing ran (the module's call
# log and the script's marker stay empty). Controls: the same files with safe modes, and a
# script in a world-writable *sticky* folder (as /tmp), install and run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

device_new dev dev-a
LOG="$T/calls.log"
cat >"$DEV_MODULES/strict-test" <<SH
#!/bin/sh
echo "\$1" >>"$LOG"
case "\$1" in
    SupportsRollback) echo Yes ;;
    NeedsArtifactReboot) echo No ;;
esac
exit 0
SH
chmod 0755 "$DEV_MODULES/strict-test"
cat >"$DEV_SCRIPTS/Download_Enter_01" <<SH
#!/bin/sh
echo ran >>"$T/script.ran"
SH
chmod 0755 "$DEV_SCRIPTS/Download_Enter_01"
mkdir -p "$T/src"
printf 'payload\n' >"$T/src/p.txt"
make_artifact "$T/a.mender" strict-1 strict-test -f "$T/src/p.txt"

# The refused file did not run: the module's call log is empty and, where the refused file is
# the state script (or the configuration, before anything), the script left no marker.
refused() {  # WHAT REGEX SCRIPT_MAY_RUN
    rm -f "$LOG" "$T/script.ran"
    molt_dev install "$T/a.mender"
    [ "$RUN_RC" != 0 ] || fail "$1: installed"
    grep -qE "$2" "$RUN_ERR" || fail "$1: the message does not match /$2/: $(head -c 1500 "$RUN_ERR")"
    # (a refused Download_Enter script fails the deployment, and molt calls the module's Cleanup)
    ! grep -qvx Cleanup "$LOG" 2>/dev/null || fail "$1: the module ran: $(tr '\n' ' ' <"$LOG")"
    [ -n "${3:-}" ] || [ ! -e "$T/script.ran" ] || fail "$1: the state script ran"
    pass "$1: refused, with the file and its mode; nothing ran"
}

# 1. A group-writable configuration.
chmod 0664 "$DEV_CONF"
refused "group-writable configuration" \
    "configuration $DEV_CONF is group-writable \\(mode 0664, owner uid 0\\): refused"
chmod 0644 "$DEV_CONF"

# 2. A world-writable exec module.
chmod 0777 "$DEV_MODULES/strict-test"
refused "world-writable exec module" \
    "update module $DEV_MODULES/strict-test is world-writable \\(mode 0777, owner uid 0\\): refused" \
    script-may-run
molt_dev modules
grep -q "world-writable" "$RUN_OUT" "$RUN_ERR" || fail "molt modules does not show the refusal: $(cat "$RUN_OUT")"
chmod 0755 "$DEV_MODULES/strict-test"

# 3. A state script in a world-writable folder that is not sticky.
chmod 0777 "$DEV_SCRIPTS"
refused "state script in a world-writable folder" \
    "state script $DEV_SCRIPTS/Download_Enter_01: its folder $DEV_SCRIPTS is world-writable and not sticky \\(mode 0777, owner uid 0\\): refused"
assert_eq idle "$(dev_state)" "state after the refused script"

# Controls: a sticky world-writable folder (as /tmp) is fine; so is everything once safe.
chmod 1777 "$DEV_SCRIPTS"
rm -f "$LOG" "$T/script.ran"
molt_dev install "$T/a.mender"
expect_rc 0 "install with the scripts folder sticky"
[ -s "$T/script.ran" ] || fail "the state script in a sticky folder did not run"
grep -qx ArtifactInstall "$LOG" || fail "the module did not install: $(tr '\n' ' ' <"$LOG")"
molt_dev commit
expect_rc 0 "commit"
pass "controls: a sticky world-writable folder and safe modes install"

# 4. A world-writable native module is not even probed (loaded), and never runs.
NATIVE_SO="$MOLT_BUILD_DIR/tests/modules/native/native_copy.so"
if [ -f "$NATIVE_SO" ]; then
    mkdir -p "$DEV/native"
    cp "$NATIVE_SO" "$DEV/native/native_copy.so"
    chmod 0666 "$DEV/native/native_copy.so"
    device_config "native_module_dir: $DEV/native"
    molt_dev modules
    grep -q "native module $DEV/native/native_copy.so is world-writable (mode 0666, owner uid 0): refused" \
        "$RUN_OUT" "$RUN_ERR" || fail "world-writable native module: not refused: $(cat "$RUN_OUT" "$RUN_ERR" | head -c 1500)"
    pass "world-writable native module: refused before it is loaded"
else
    fail "test native module not built: $NATIVE_SO"
fi
