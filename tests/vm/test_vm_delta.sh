# SPDX-License-Identifier: Apache-2.0
# The VM tier, case 6: a delta update (docs/delta.md) with a real reboot on the QEMU device.
# The base is partition A of the v1 disk exactly as molt-image wrote it (the guest mounts its
# root read-only, so the running partition stays bit-identical); the target is the v2 rootfs
# image. `molt-artifact write rootfs-delta` makes the delta on the host, the guest installs it
# from the loopback server (the rootfs-image module checks the base, rebuilds v2 into B, checks
# its SHA-256), a real reboot: GRUB boots B on trial, `molt resume` verifies, `molt commit`;
# then partition B's SHA-256, read in the guest, is the v2 image's and the provides are v2's.
. "$(dirname "$0")/../integration/lib.sh"
. "$(dirname "$0")/vmlib.sh"
vm_prereqs
vm_images

# the base: partition 2 (rootfs A) of disk.img, byte for byte
read -r start sectors < <(sfdisk -d "$VMI/disk.img" |
    sed -n 's/.*img2 : start= *\([0-9]*\), size= *\([0-9]*\).*/\1 \2/p')
[ -n "$start" ] || fail "no partition 2 in $VMI/disk.img: $(sfdisk -d "$VMI/disk.img")"
dd if="$VMI/disk.img" of="$T/base.ext4" bs=512 skip="$start" count="$sectors" status=none
mkdir -p "$T/srv"
# level 3: the device's side is the same at any level, and 19 costs minutes on 2 busy cores
"$MOLT_ARTIFACT" write rootfs-delta --base "$T/base.ext4" --target "$VMI/good.ext4" -n v2d \
    -t qemu-x86-64 --level 3 -o "$T/srv/v2d.mender" >/dev/null || fail "molt-artifact write rootfs-delta"
"$MOLT_ARTIFACT" read "$T/srv/v2d.mender" | grep -q 'Type: *rootfs-delta' ||
    fail "the delta artifact does not read as a rootfs-delta: $("$MOLT_ARTIFACT" read "$T/srv/v2d.mender")"
# the v1 disk records no rootfs-image.checksum (molt-image writes no provides; a full update
# would): a bootstrap artifact records the base's, as on a device provisioned that way
"$MOLT_ARTIFACT" write bootstrap-artifact -n v1 -t qemu-x86-64 -o "$T/srv/boot.mender" \
    -p "rootfs-image.checksum:$(sha256sum "$T/base.ext4" | cut -d' ' -f1)" >/dev/null ||
    fail "molt-artifact write bootstrap-artifact"
want=$(sha256sum "$VMI/good.ext4" | cut -d' ' -f1)
size=$(stat -c %s "$VMI/good.ext4")
echo "vm: delta of $(stat -c %s "$T/srv/v2d.mender") bytes for a $size-byte image" >&2
vm_serve --files "$T/srv"

vm_start delta
vm_boot
assert_eq "v1 /dev/vda2" "$VM_RELEASE $VM_ROOT" "first boot"
vm_ok "molt install $SRV/boot.mender"
vm_install_reboot v2d
assert_eq "v2 /dev/vda3" "$VM_RELEASE $VM_ROOT" "after the delta update's reboot"
assert_eq 0 "$VM_RESUME_RC" "molt resume after the reboot into the rebuilt image"
assert_eq awaiting-commit "$(vm_state)" "state before the commit"
vm_ok "molt commit"
assert_eq v2d "$(vm_artifact)" "artifact after the commit"
vm_ok "head -c $size /dev/vda3 | sha256sum"
assert_eq "$want" "$(cut -d' ' -f1 "$VM_OUT")" "SHA-256 of partition B (vda3) against the v2 image"
vm_ok "molt show-provides"
grep -qx "rootfs-image.checksum=$want" "$VM_OUT" ||
    { cat "$VM_OUT" >&2; fail "the provides after the delta are not the v2 image's checksum"; }
vm_cut
pass "delta v1->v2: base checked, v2 rebuilt into B, real reboot, committed, B = the v2 image"
