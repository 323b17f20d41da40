# SPDX-License-Identifier: Apache-2.0
# ctest-labels: root
# molt-image (sdk/image/molt-image) without booting anything (the VM tier boots its disks):
#  - a whole disk built as an unprivileged user (nobody): no loop devices, mounts or root;
#    the MBR holds GRUB's boot.img and a partition table of four partitions with the sizes
#    asked for (sfdisk --dump), GRUB's core.img sits from sector 1; the boot partition holds the
#    kernel, the initramfs (with the virtio modules and their dependencies), grub.cfg and two
#    GRUB environment copies numbered 1 (grub-editenv list); rootfs A is the rootfs image;
#  - bring your own rootfs, from a folder and from a tarball: molt, its modules and libraries,
#    /etc/molt and molt-init are added; the tree's /sbin/init is kept as /sbin/init.orig; its
#    own files stay;
#  - bad input (an unknown option, a missing rootfs, a bad name) fails with a message naming
#    the problem and writes nothing.
. "$(dirname "$0")/lib.sh"
MI="$MOLT_SRC_DIR/sdk/image/molt-image"
for t in sfdisk grub-mkimage debugfs cpio; do
    command -v $t >/dev/null || fail "$t is not installed (tools/deps.sh)"
done
[ -f /usr/lib/grub/i386-pc/boot.img ] || fail "grub-pc-bin is not installed (tools/deps.sh)"
[ "$MOLT_SANITIZE" != ON ] || { echo "SKIP: molt-image copies the unsanitized molt of a gcc build"; exit 0; }

in_img() {  # IMAGE PATH: whether PATH exists inside an ext4 image
    debugfs -R "stat $2" "$1" 2>/dev/null | grep -q 'Inode:'
}
cat_img() {  # IMAGE PATH
    debugfs -R "cat $2" "$1" 2>/dev/null
}

# The kernel package: the tier's cache, or one apt-get download into it.
cache=${MOLT_IMAGE_CACHE:-$HOME/.cache/molt-image}
deb=$(ls "$cache"/linux-image-*-cloud-amd64_*.deb 2>/dev/null | head -n 1 || true)
if [ -z "$deb" ]; then
    pkg=$(apt-cache depends linux-image-cloud-amd64 | sed -n 's/^ *Depends: \(linux-image-.*\)$/\1/p' | head -n 1)
    mkdir -p "$cache" && (cd "$cache" && apt-get download -q "$pkg" >/dev/null 2>&1) || fail "apt-get download $pkg"
    deb=$(ls "$cache"/linux-image-*-cloud-amd64_*.deb | head -n 1)
fi

# ---- a whole disk, as nobody ---------------------------------------------------------------
mkdir -p "$T/out" "$T/bld"
cp -r "$MOLT_BUILD_DIR/core" "$T/bld/" 2>/dev/null || true
mkdir -p "$T/bld/modules" && cp -r "$MOLT_BUILD_DIR/modules/native" "$T/bld/modules/"
cp "$deb" "$T/out/kernel.deb"
chmod -R a+rX "$T"
chown nobody "$T/out"
run_prog "$(command -v setpriv)" --reuid=65534 --regid=65534 --clear-groups env HOME="$T/out" TMPDIR="$T/out" \
    "$MI" --molt-build "$T/bld" --kernel-deb "$T/out/kernel.deb" --name rel-1 \
    --rootfs-size 40 --data-size 20 -o "$T/out/disk.img" -O "$T/out/rootfs.ext4"
expect_rc 0 "molt-image as nobody"
grep -q "wrote $T/out/disk.img (125 MiB: boot 24, rootfs A/B 40 each, data 20" "$RUN_ERR" \
    || fail "molt-image's summary: $(cat "$RUN_ERR")"
sfdisk --dump "$T/out/disk.img" >"$T/dump" || fail "sfdisk --dump"
for want in "disk.img1 : start=        2048, size=       49152, type=83, bootable" \
            "disk.img2 : start=       51200, size=       81920, type=83" \
            "disk.img3 : start=      133120, size=       81920, type=83" \
            "disk.img4 : start=      215040, size=       40960, type=83"; do
    grep -q "${want}" "$T/dump" || fail "partition table lacks '$want': $(cat "$T/dump")"
done
cmp -n 440 /usr/lib/grub/i386-pc/boot.img "$T/out/disk.img" || fail "boot.img is not in the MBR"
# core.img starts with diskboot.img (whose block list at its end grub-mkimage patches)
dd if="$T/out/disk.img" bs=512 skip=1 count=1 status=none | head -c 64 |
    cmp -s - <(head -c 64 /usr/lib/grub/i386-pc/diskboot.img) || fail "core.img is not at sector 1"
dd if="$T/out/disk.img" of="$T/boot.ext4" bs=512 skip=2048 count=49152 status=none
for f in vmlinuz initrd.img grub/grub.cfg grub/grubenv grub/grubenv2; do
    in_img "$T/boot.ext4" "/$f" || fail "boot partition lacks /$f"
done
for e in grubenv grubenv2; do
    cat_img "$T/boot.ext4" /grub/$e >"$T/$e"
    assert_eq 1024 "$(stat -c %s "$T/$e")" "$e size"
    grub-editenv "$T/$e" list >"$T/$e.txt" || fail "grub-editenv list $e"
    for kv in molt_env_seq=1 mender_boot_part=2 mender_boot_part_hex=2 upgrade_available=0 \
              bootcount=0 bootlimit=1; do
        grep -qx "$kv" "$T/$e.txt" || fail "$e lacks $kv: $(cat "$T/$e.txt")"
    done
done
cat_img "$T/boot.ext4" /initrd.img | gzip -dc | cpio -t --quiet >"$T/initrd.list" 2>/dev/null ||
    fail "the initramfs is not a gzip'd cpio archive"
for m in virtio_blk virtio_net virtio_pci virtio_ring virtio net_failover failover; do
    grep -qx "lib/modules/$m.ko" "$T/initrd.list" || fail "the initramfs lacks $m.ko"
done
grep -qx init "$T/initrd.list" || fail "the initramfs has no /init"
dd if="$T/out/disk.img" of="$T/a.ext4" bs=512 skip=51200 count=81920 status=none
cmp "$T/a.ext4" "$T/out/rootfs.ext4" || fail "rootfs A is not the -O rootfs image"
assert_eq rel-1 "$(cat_img "$T/out/rootfs.ext4" /etc/molt/release)" "release name"
cat_img "$T/out/rootfs.ext4" /etc/molt/molt.yaml | grep -q 'grubenv_redundant: /boot/grub/grubenv2' \
    || fail "molt.yaml lacks the second GRUB copy"
pass "a whole disk built by nobody: MBR with GRUB, four partitions, kernel + initramfs + two GRUB copies"

# ---- bring your own rootfs: a folder and a tarball -------------------------------------------
mkdir -p "$T/byo/sbin" "$T/byo/etc" "$T/byo/bin"
printf '#!/bin/sh\necho own init\n' >"$T/byo/sbin/init"
chmod 755 "$T/byo/sbin/init"
echo "my distribution" >"$T/byo/etc/issue"
cp /bin/busybox "$T/byo/bin/busybox"
ln -s busybox "$T/byo/bin/sh"
tar -C "$T/byo" -czf "$T/byo.tar.gz" .
for src in "$T/byo" "$T/byo.tar.gz"; do
    run_prog "$MI" --molt-build "$MOLT_BUILD_DIR" --rootfs "$src" --name own --rootfs-only \
        -O "$T/own.ext4"
    expect_rc 0 "molt-image --rootfs $src"
    assert_eq "my distribution" "$(cat_img "$T/own.ext4" /etc/issue)" "$src: the tree's own file"
    assert_eq "$(printf '#!/bin/sh\necho own init')" "$(cat_img "$T/own.ext4" /sbin/init.orig)" \
        "$src: its init kept as init.orig"
    debugfs -R "stat /sbin/init" "$T/own.ext4" 2>/dev/null | grep -q 'Fast link dest: "molt-init"' \
        || fail "$src: /sbin/init is not molt-init"
    own=() own_img=()   # the modules' own objects (the file module's tar support), when built
    for f in "$MOLT_BUILD_DIR"/modules/native/*/*.so; do
        [ -f "$f" ] || continue
        own+=("$f")
        own_img+=("/usr/lib/molt/modules/${f#"$MOLT_BUILD_DIR"/modules/native/}")
    done
    for f in /usr/bin/molt /usr/lib/molt/modules/rootfs-image.so /etc/molt/molt.yaml \
             /etc/molt/device_type /sbin/molt-init "${own_img[@]}"; do
        in_img "$T/own.ext4" "$f" || fail "$src: $f missing"
    done
    # every library molt, the rootfs module and the modules' own objects load came along (a
    # build tree's own, such as libmolt-sdk, into /usr/lib/x86_64-linux-gnu, which the loader
    # searches by default)
    for l in $(for f in "$MOLT" "$MOLT_BUILD_DIR/modules/native/rootfs-image.so" "${own[@]}"; do ldd "$f"; done | grep -o '/[^ ]*' | sort -u); do
        case $l in /lib/*|/lib64/*|/usr/lib/*|/usr/lib64/*) ;; *) l=/usr/lib/x86_64-linux-gnu/${l##*/} ;; esac
        in_img "$T/own.ext4" "$l" || fail "$src: $l missing"
    done
done
pass "bring your own rootfs (folder and tarball): molt, its libraries and molt-init added, the tree kept"

# ---- bad input --------------------------------------------------------------------------------
run_prog "$MI" --molt-build "$MOLT_BUILD_DIR" --rootfs "$T/nope" --rootfs-only -O "$T/bad.ext4"
expect_rc 1 "a missing rootfs"
grep -q "molt-image: --rootfs: no folder or tarball $T/nope" "$RUN_ERR" || fail "message: $(cat "$RUN_ERR")"
[ ! -e "$T/bad.ext4" ] || fail "an output was written for a missing rootfs"
run_prog "$MI" --frobnicate
expect_rc 1 "an unknown option"
grep -q "molt-image: unknown option: --frobnicate" "$RUN_ERR" || fail "message: $(cat "$RUN_ERR")"
run_prog "$MI" --molt-build "$MOLT_BUILD_DIR" --name 'a b' --rootfs-only -O "$T/bad.ext4"
expect_rc 1 "a bad name"
grep -q "molt-image: --name: letters, digits" "$RUN_ERR" || fail "message: $(cat "$RUN_ERR")"
run_prog "$MI" --molt-build "$MOLT_BUILD_DIR" --rootfs-size 1 --rootfs-only -O "$T/bad.ext4"
expect_rc 1 "a rootfs too small"
grep -q "mkfs.ext4 -d .* failed (too small" "$RUN_ERR" || fail "message: $(cat "$RUN_ERR")"
[ ! -e "$T/bad.ext4" ] || fail "an output was written for a failed build"
pass "bad input: a clear message, nothing written"
