# The VM tier, case 1 and 2: a real A->B update and a broken release, on a molt-image disk in QEMU
# (real GRUB, real kernel, real reboots):
#  - v1 boots from partition A; `molt install` of v2 from the loopback server writes partition B
#    and arms the trial (exit 4); a real reboot: GRUB boots B on trial, `molt resume` verifies,
#    `molt commit` exits 0; GRUB's environment (both copies, read in the guest) points at B;
#  - the power is cut at once after the commit: the machine boots v2 (the defect of the renamed
#    grubenv: GRUB read the old block from the unreplayed ext4 journal and booted v1);
#  - a broken release (its init exits: kernel panic, panic=3 resets) is installed: GRUB's boot
#    count falls back to B, molt resume reports the failure, v2 still runs; then v3 installs.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/vmlib.sh"
vm_prereqs
vm_images
vm_serve

vm_start upd
vm_boot
assert_eq "v1 /dev/vda2" "$VM_RELEASE $VM_ROOT" "first boot"
assert_eq 2 "$VM_RESUME_RC" "molt resume on a fresh device (nothing to resume)"

vm_install_reboot v2
assert_eq "v2 /dev/vda3" "$VM_RELEASE $VM_ROOT" "after the update's reboot"
assert_eq 0 "$VM_RESUME_RC" "molt resume after the reboot into v2"
grep -q 'molt-grub: trial boot 1 of partition 3' "$T/upd.console" || fail "GRUB did not count a trial boot"
assert_eq awaiting-commit "$(vm_state)" "state before the commit"
vm_ok "molt commit"
vm_cut
pass "A->B: v2 installed, booted for real on trial, verified and committed"

vm_start upd
vm_boot
assert_eq "v2 /dev/vda3" "$VM_RELEASE $VM_ROOT" "boot after a power cut right after the commit"
assert_eq v2 "$(vm_artifact)" "molt's record after the cut"
assert_eq idle "$(vm_state)" "nothing pending after the committed update"
vm_ok "grep -h -e '^mender_boot_part=' -e '^upgrade_available=' /boot/grub/grubenv /boot/grub/grubenv2 | sort | uniq -c"
assert_eq "2 mender_boot_part=3|2 upgrade_available=0" "$(awk '{print $1" "$2}' "$VM_OUT" | paste -sd'|')" \
    "both GRUB copies after the commit"
pass "a power cut at once after molt commit: GRUB boots v2"

vm_install_reboot broken
# the broken init panics; GRUB's second boot of the trial falls back; molt resume on B fails it
assert_eq "v2 /dev/vda3" "$VM_RELEASE $VM_ROOT" "after the broken release"
grep -q 'molt-vm: broken release broken: init exits' "$T/upd.console" || fail "the broken init never ran"
grep -q 'molt-grub: trial boot of partition 2 failed: falling back' "$T/upd.console" \
    || fail "GRUB did not fall back"
assert_eq v2 "$(vm_artifact)" "artifact after the fallback"
assert_eq failure "$(vm_last_result)" "the broken release's deployment"
assert_eq idle "$(vm_state)" "nothing pending after the fallback"
pass "a broken release (init exits, kernel panic): GRUB falls back, molt reports failure"

vm_install_reboot v3
assert_eq "v2 /dev/vda2" "$VM_RELEASE $VM_ROOT" "v3 (same rootfs as v2) on A"
vm_ok "molt commit"
assert_eq v3 "$(vm_artifact)" "after the next good update"
vm_cut
pass "the next good update installs"
