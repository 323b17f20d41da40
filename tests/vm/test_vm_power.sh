# SPDX-License-Identifier: Apache-2.0
# The VM tier, case 3: power cuts (SIGKILL of QEMU) of a molt-image machine in the middle of
# rootfs updates, each point reached by a handshake (a console marker, or molt's own progress),
# never by a time window. After every cut the machine boots a working system, molt's record
# agrees with the system that runs, and a following update succeeds:
#  a. during the partition write (MOLT_ROOTFS_TEST_KILL_AFTER kills molt after 6 MB of it, then
#     the power goes: the partition is half-written, its last pages not synced);
#  b. between the partition write and the environment switch (an ArtifactInstall_Enter script
#     says so on the console and waits);
#  c. during the GRUB environment write, between its two copies (MOLT_ROOTFS_TEST_PAUSE_ENV);
#  d. during the first boot of the new system (at GRUB's "trial boot" marker);
#  e. at once after the trial boot was armed (install exited 4): the new system boots on trial
#     or the old one does, and molt's record says the same;
#  f. 2 s after `molt commit` returned 0: the new system boots, committed;
#  g. a failing ArtifactCommit (/boot read-only): `molt commit` does not exit 0; the trial is
#     not committed, GRUB falls back at the next boot, and molt's record says v5_INCONSISTENT
#     (its rollback could not write the environment either), never v5;
#  h. a following update installs and commits.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/vmlib.sh"
vm_prereqs
vm_images
vm_serve

settled_on() {  # RELEASE-ARTIFACT ROOT WHAT: the machine runs ROOT, molt idle on the artifact
    assert_eq "$2" "$VM_ROOT" "$3: running partition"
    assert_eq "$1" "$(vm_artifact)" "$3: molt's installed artifact"
    assert_eq idle "$(vm_state)" "$3: molt's state"
}

vm_start pw
vm_boot
assert_eq "v1 /dev/vda2" "$VM_RELEASE $VM_ROOT" "first boot"

# a. during the partition write: molt's test switch kills it after 6 MB of the partition write
# (the write stops half-way, nothing synced), then the power goes
vm_ok "(MOLT_ROOTFS_TEST_KILL_AFTER=6000000 molt install $SRV/v2.mender; echo \"molt-vm: install ended: rc=\$?\") </dev/null >/dev/console 2>&1 &"
vm_wait 'molt-vm: install ended: rc=' 1
grep -q 'molt-vm: install ended: rc=137' "$T/pw.console" || fail "a. molt was not killed in the write"
assert_eq Download "$(vm_status 'j["state"]')" "a. state at the cut"
vm_cut
vm_start pw
vm_boot_settled
settled_on unknown /dev/vda2 "a. cut during the partition write"
pass "a. a cut during the partition write: v1 boots, nothing installed"

# b. between the partition write and the environment switch
vm_ok "molt install $SRV/pause-install.mender </dev/null >/dev/console 2>&1 &"
vm_wait 'molt-vm: ArtifactInstall_Enter: paused' 1
vm_cut
vm_start pw
vm_boot_settled
settled_on unknown /dev/vda2 "b. cut before the environment switch"
assert_eq failure "$(vm_last_result)" "b. the interrupted deployment"
pass "b. a cut between the partition write and the environment switch: v1 boots, failure recorded"

# c. during the GRUB environment write (one copy written, the other not)
vm_ok "MOLT_ROOTFS_TEST_PAUSE_ENV=1 molt install $SRV/v2.mender </dev/null >/dev/console 2>&1 &"
vm_wait 'molt-test: paused after writing GRUB environment copy' 1
vm_cut
vm_start pw
vm_boot_settled
settled_on unknown /dev/vda2 "c. cut between the two environment copies"
assert_eq failure "$(vm_last_result)" "c. the interrupted deployment"
pass "c. a cut during the GRUB environment write: a working system, rolled back, failure recorded"

# d. during the first boot of the new system
trials=$(vm_count 'molt-grub: trial boot 1 of partition 3')
vm_sh "molt --reboot-exit-code install $SRV/v3.mender" 600
assert_eq 4 "$VM_RC" "d. install v3"
vm_sh "sync; (sleep 0.2; reboot -f) >/dev/null 2>&1 &" 30
vm_wait 'molt-grub: trial boot 1 of partition 3' $((trials + 1))
vm_cut
vm_start pw
vm_boot_settled
grep -q 'molt-grub: trial boot of partition 3 failed: falling back' "$T/pw.console" \
    || fail "d. GRUB did not fall back after the cut trial boot"
settled_on unknown /dev/vda2 "d. cut during the first boot of v3"
assert_eq failure "$(vm_last_result)" "d. the deployment whose trial boot was cut"
pass "d. a cut during the first boot of the new system: GRUB falls back, failure recorded"

# e. at once after the trial boot was armed
vm_sh "molt --reboot-exit-code install $SRV/v4.mender" 600
assert_eq 4 "$VM_RC" "e. install v4"
vm_cut
vm_start pw
vm_boot_settled
if [ "$VM_ROOT" = /dev/vda3 ]; then
    assert_eq awaiting-commit "$(vm_state)" "e. new system on trial: molt waits for the commit"
    echo "e: the new system booted on trial" >&2
else
    assert_eq /dev/vda2 "$VM_ROOT" "e. the old system"
    assert_eq unknown "$(vm_artifact)" "e. old system: molt's record"
    assert_eq failure "$(vm_last_result)" "e. old system: the deployment failed"
    fail "e. the armed trial was lost by the cut (GRUB read the old environment)"
fi
pass "e. a cut at once after the trial was armed: v4 boots on trial, molt waits for the commit"

# f. 2 s after molt commit returned 0
vm_ok "molt commit"
sleep 2
vm_cut
vm_start pw
vm_boot_settled
settled_on v4 /dev/vda3 "f. cut 2 s after the commit"
pass "f. a cut 2 s after molt commit returned 0: v4 boots, committed"

# g. a failing ArtifactCommit never ends in molt commit exiting 0
vm_install_reboot v5
assert_eq /dev/vda2 "$VM_ROOT" "g. v5 on trial"
assert_eq awaiting-commit "$(vm_state)" "g. before the commit"
vm_ok "mount -o remount,ro /boot"
vm_sh "molt commit"
commit_rc=$VM_RC
[ "$commit_rc" != 0 ] || fail "g. molt commit exited 0 while the environment could not be written"
grep -q 'GRUB environment' "$VM_OUT" || fail "g. commit's error does not name the environment: $(cat "$VM_OUT")"
vm_ok "mount -o remount,rw /boot"
vm_sh "sync; (sleep 0.2; reboot -f) >/dev/null 2>&1 &" 30
vm_boot_settled
# the rollback inside the failed commit could not write the environment either: GRUB's boot
# count falls back to v4's partition, and molt's record says it does not know what runs
# (Mender's "_INCONSISTENT" suffix) instead of claiming v5
grep -q 'molt-grub: trial boot of partition 2 failed: falling back' "$T/pw.console" \
    || fail "g. GRUB did not fall back from the uncommitted v5"
assert_eq /dev/vda3 "$VM_ROOT" "g. after the reboot: v4's partition"
assert_eq v5_INCONSISTENT "$(vm_artifact)" "g. molt's record after a commit and a rollback that both failed"
assert_eq idle "$(vm_state)" "g. after the reboot"
pass "g. a failed ArtifactCommit: molt commit exits $commit_rc, GRUB falls back, molt records v5_INCONSISTENT"

# h. a following update succeeds
vm_install_reboot v6
[ "$VM_RELEASE" = v2 ] || fail "h. v6 did not boot"
vm_ok "molt commit"
assert_eq v6 "$(vm_artifact)" "h. after the commit"
vm_cut
pass "h. after all the cuts, an update installs and commits"
