# SPDX-License-Identifier: Apache-2.0
# The VM tier, cases 1, 2, 4 and 5: a real A->B update and a broken release, on a molt-image disk in QEMU
# (real GRUB, real kernel, real reboots):
#  - v1 boots from partition A; `molt install` of v2 from the loopback server writes partition B
#    and arms the trial (exit 4); a real reboot: GRUB boots B on trial, `molt resume` verifies,
#    `molt commit` exits 0; GRUB's environment (both copies, read in the guest) points at B;
#  - the power is cut at once after the commit: the machine boots v2 (the defect of the renamed
#    grubenv: GRUB read the old block from the unreplayed ext4 journal and booted v1);
#  - a broken release (its init exits: kernel panic, panic=3 resets) is installed: GRUB's boot
#    count falls back to B, molt resume reports the failure, v2 still runs; then v3 installs;
#  - case 4: a release whose health check fails boots on trial, molt rolls back and reboots for
#    real into the old partition, the deployment is failed;
#  - case 5: a file-module (single-file) update in the running guest, rolled back, then
#    installed and committed.
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
pass "the next good update installs"

# case 4: a release whose health check fails rolls back across a real reboot
vm_install_reboot unhealthy
assert_eq "unhealthy /dev/vda3" "$VM_RELEASE $VM_ROOT" "the unhealthy release boots on trial"
assert_eq 4 "$VM_RESUME_RC" "molt resume after the failed health check (rollback reboot)"
vm_boot
assert_eq "v2 /dev/vda2" "$VM_RELEASE $VM_ROOT" "after the rollback reboot"
assert_eq 1 "$VM_RESUME_RC" "molt resume finishing the rollback (deployment failed)"
assert_eq v3 "$(vm_artifact)" "artifact after the health-check rollback"
assert_eq failure "$(vm_last_result)" "the unhealthy release's deployment"
vm_ok "grep -h '^upgrade_available=' /boot/grub/grubenv /boot/grub/grubenv2 | sort -u"
assert_eq upgrade_available=0 "$(cat "$VM_OUT")" "GRUB environment after the rollback"
pass "a failing health check rolls back across a real reboot"

# case 5: a file-module update inside the running guest, and its rollback
vm_ok "mkdir -p /data/app && echo 'motd of release 1' > /data/app/motd"
vm_sh "molt install $SRV/motd-2.mender"
[ "$VM_RC" = 0 ] || { cat "$VM_OUT" >&2; fail "install motd-2: exit $VM_RC"; }
vm_ok "cat /data/app/motd"
assert_eq "motd of release 2" "$(cat "$VM_OUT")" "motd after the install"
assert_eq awaiting-commit "$(vm_state)" "file module: waits for the commit"
vm_ok "molt rollback"
vm_ok "cat /data/app/motd"
assert_eq "motd of release 1" "$(cat "$VM_OUT")" "motd after the rollback"
assert_eq v3 "$(vm_artifact)" "artifact after the file rollback"
vm_ok "molt install $SRV/motd-2.mender && molt commit && cat /data/app/motd"
assert_eq "motd of release 2" "$(tail -n 1 "$VM_OUT")" "motd after install + commit"
assert_eq motd-2 "$(vm_artifact)" "artifact after the file update"
vm_cut
pass "a file-module update in the running guest, its rollback, then its commit"
