# SPDX-License-Identifier: Apache-2.0
# Bad rootfs-image artifacts never switch the boot partition: a truncated artifact, a payload
# byte flipped (checksum mismatch), an image larger than the partition (refused before a byte
# is written: partition B unchanged), a write error inside the image, a GRUB block that is not one, a stale trial left armed in
# the environment (Download settles it on the running partition before writing), and settings
# the module cannot work with. After each: exit 1, the store idle on the old artifact, the
# environment booting A without a trial, A running after a reboot.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rootfs_lib.sh"

rf_device bad --redundant
rf_image good
rf_artifact mender "$T/good.mender" good "$T/good.img"
rf_molt install "$T/good.mender"; expect_rc 4 "install good"
rf_boot; expect_rc 0 "boot good"
rf_molt commit; expect_rc 0 "commit good"
rf_molt install "$T/good.mender"; expect_rc 4 "install good again (onto A)"
rf_boot; expect_rc 0 "boot A"
rf_molt commit; expect_rc 0 "commit good on A"
rf_settled good A "start"

# A truncated artifact (uncompressed, cut inside the image).
rf_image trunc
rf_artifact mender "$T/trunc-full.mender" trunc "$T/trunc.img" --compression none
head -c $(( $(stat -c %s "$T/trunc-full.mender") / 2 )) "$T/trunc-full.mender" >"$T/trunc.mender"
rf_molt install "$T/trunc.mender"
expect_rc 1 "truncated artifact"
rf_settled good A "after a truncated artifact"
pass "truncated artifact: refused, boot partition unchanged"

# One payload byte flipped: the checksum fails at the end of the image.
rf_image flip
rf_artifact mender "$T/flip.mender" flip "$T/flip.img" --compression none
python3 - "$T/flip.mender" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, 'rb').read())
i = b.index(b'SIM-ROOTFS bootable name=flip') + 300000
b[i] ^= 0xff
open(p, 'wb').write(b)
PY
rf_molt install "$T/flip.mender"
expect_rc 1 "flipped payload byte"
grep -qi checksum "$RUN_ERR" || fail "no checksum error: $(cat "$RUN_ERR")"
rf_settled good A "after a checksum mismatch"
pass "checksum mismatch: refused, boot partition unchanged"

# An image larger than the partition: nothing written.
sha_b=$(sha256sum <"$D/part-b.img")
IMG_SIZE=1048577 rf_image big
rf_artifact molt "$T/big.mender" big "$T/big.img"
rf_molt install "$T/big.mender"
expect_rc 1 "oversize image"
grep -q "the rootfs image (1048577 bytes) is larger than partition $D/part-b.img (1048576 bytes): nothing written" \
    "$RUN_ERR" || fail "oversize message: $(cat "$RUN_ERR")"
assert_eq "$sha_b" "$(sha256sum <"$D/part-b.img")" "partition B after the oversize image"
rf_settled good A "after an oversize image"
pass "oversize image: refused before writing, partition B untouched"

# A write error in the middle of the image (the partition write runs as the host's payload
# sink, on its hashing thread): molt with a 256 KiB file size limit and SIGXFSZ ignored, so the
# write at 256 KiB fails with EFBIG. Download fails with the module's message.
printf '#!/bin/sh\ntrap "" XFSZ\nulimit -f 256\nexec "%s" "$@"\n' "$MOLT" >"$T/molt-fsize"
chmod 755 "$T/molt-fsize"
MOLT="$T/molt-fsize" rf_molt install "$T/good.mender"
expect_rc 1 "a write error inside the image"
grep -q "Download failed: cannot write $D/part-b.img: File too large" "$RUN_ERR" \
    || fail "write error message: $(cat "$RUN_ERR")"
rf_settled good A "after a write error"
pass "a write error inside the image: Download fails with it, boot partition unchanged"

# A stale trial armed towards B (as a crashed foreign tool might leave it) and a truncated
# artifact: Download first settles the environment on A.
printf 'mender_boot_part=3\nmender_boot_part_hex=3\nupgrade_available=1\n' >"$T/stale.txt"
fw_setenv -c "$D/fw_env.config" -s "$T/stale.txt" || fail "fw_setenv stale trial"
rf_molt install "$T/trunc.mender"
expect_rc 1 "truncated artifact over a stale trial"
grep -q "did not boot the running partition A without a trial" "$RUN_ERR" \
    || fail "no warning on the stale trial: $(cat "$RUN_ERR")"
rf_settled good A "after a stale trial and a truncated artifact"
pass "a stale trial is settled on the running partition before writing"

# A GRUB environment block that is not one (torn, foreign): refused before writing.
rf_device grubbad --grub
sha_b=$(sha256sum <"$D/part-b.img")
printf 'mender_boot_part=2\n' >"$D/grubenv"
rf_molt install "$T/good.mender"
expect_rc 1 "install over a broken grubenv"
grep -q "GRUB environment $D/grubenv: expected 1024 bytes, got 19" "$RUN_ERR" \
    || fail "grubenv message: $(cat "$RUN_ERR")"
assert_eq "$sha_b" "$(sha256sum <"$D/part-b.img")" "partition B after a broken grubenv"
assert_eq "mender_boot_part=2" "$(cat "$D/grubenv")" "the broken grubenv is left alone"
pass "a broken GRUB environment block: refused before writing"

# Settings the module cannot work with: refused with the setting's name, nothing written.
rf_device badcfg
sha_b=$(sha256sum <"$D/part-b.img")
cp "$D/molt.yaml" "$T/molt.yaml.good"
grep -v 'partition_b:' "$T/molt.yaml.good" >"$D/molt.yaml"
rf_molt install "$T/good.mender"
expect_rc 1 "install without partition_b"
grep -q "modules.rootfs-image: partition_a and partition_b must both be set" "$RUN_ERR" \
    || fail "missing partition_b message: $(cat "$RUN_ERR")"
sed 's/bootloader: uboot/bootloader: barebox/' "$T/molt.yaml.good" >"$D/molt.yaml"
rf_molt install "$T/good.mender"
expect_rc 1 "install with an unknown bootloader"
grep -q 'modules.rootfs-image.bootloader: expected uboot or grub, got "barebox"' "$RUN_ERR" \
    || fail "bootloader message: $(cat "$RUN_ERR")"
sed 's|cmdline_file: .*|cmdline_file: '"$T"'/cmdline-elsewhere|' "$T/molt.yaml.good" >"$D/molt.yaml"
echo "console=ttyS0 root=/dev/sda9" >"$T/cmdline-elsewhere"
rf_molt install "$T/good.mender"
expect_rc 1 "install when neither partition runs"
grep -q "the running root /dev/sda9 (from $T/cmdline-elsewhere) is neither partition A" "$RUN_ERR" \
    || fail "unknown running partition message: $(cat "$RUN_ERR")"
assert_eq "$sha_b" "$(sha256sum <"$D/part-b.img")" "partition B after refused settings"
cp "$T/molt.yaml.good" "$D/molt.yaml"
rf_settled - A "after refused settings"
pass "missing or wrong settings, an unknown running partition: refused, nothing written"
