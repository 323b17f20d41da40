# SPDX-License-Identifier: Apache-2.0
# The rootfs-image module on the simulated A/B device (tests/sim-bootloader), through the real
# molt, libubootenv (fw_printenv/fw_setenv on an environment file, with a redundant copy) and
# grub-editenv:
#  - A->B with a mender-artifact rootfs-image (type-info "type":""): install stops for the reboot
#    (exit 4) with the trial armed (mender_boot_part=3, upgrade_available=1, bootcount=0, read
#    back with fw_printenv -c); the bootloader boots B, molt resume verifies, commit disarms;
#  - the data dir copied with cp -a after the commit: still idle on rel-1 (the store's newest
#    record, not the reboot's handover in the legacy file);
#  - B->A with a molt-artifact zstd artifact, verify_write and a passing health check;
#  - a failing health check (a systemd unit not active) -> rollback, rollback reboot, back on A, deployment failed;
#  - an image that does not boot -> the bootloader falls back by itself (bootcount > bootlimit),
#    verify sees the old partition, the deployment fails, the old system runs;
#  - molt rollback while waiting for the commit -> rollback reboot into the old system;
#  - A->B->A with two GRUB environment blocks (grubenv_redundant): rewritten in place (same
#    inodes), identical after each write, molt_env_seq counted, a torn copy 1 read around and healed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rootfs_lib.sh"
command -v fw_printenv >/dev/null || fail "fw_printenv (libubootenv-tool) is not installed"
command -v grub-editenv >/dev/null || fail "grub-editenv (grub-common) is not installed"

# ---- A -> B, U-Boot with a redundant environment, mender-artifact ---------------------------
rf_device uboot --redundant
rf_settled - A "fresh device"
rf_image rel-1
rf_artifact mender "$T/rel-1.mender" rel-1 "$T/rel-1.img"
rf_molt install "$T/rel-1.mender"
expect_rc 4 "install rel-1 (reboot required)"
fw_printenv -c "$D/fw_env.config" >"$T/env.txt" 2>/dev/null || fail "fw_printenv -c"
for kv in mender_boot_part=3 mender_boot_part_hex=3 upgrade_available=1 bootcount=0 bootlimit=1; do
    grep -qx "$kv" "$T/env.txt" || fail "fw_printenv after install lacks $kv: $(cat "$T/env.txt")"
done
assert_eq A "$(rf_running)" "still on A before the reboot"
cmp -n "$(stat -c %s "$T/rel-1.img")" "$T/rel-1.img" "$D/part-b.img" || fail "partition B != rel-1 image"
cmp -s "$D/uboot.env" "$D/uboot-redund.env" && fail "the redundant copies are identical (no flip)"
rf_boot
expect_rc 0 "reboot into B + molt resume"
assert_eq B "$(rf_running)" "running after the reboot"
assert_eq awaiting-commit "$(rf_state)" "state after resume"
assert_eq 1 "$(rf_env bootcount)" "bootcount counted by the bootloader"
rf_molt commit
expect_rc 0 "commit rel-1"
rf_settled rel-1 B "after commit rel-1"
rf_molt show-provides
grep -qx "rootfs-image.version=rel-1" "$RUN_OUT" || fail "provides: $(cat "$RUN_OUT")"
grep -qx "rootfs-image.checksum=$(sha256sum "$T/rel-1.img" | cut -d' ' -f1)" "$RUN_OUT" \
    || fail "checksum provide: $(cat "$RUN_OUT")"
pass "A->B with mender-artifact on U-Boot (redundant env): trial armed, booted, verified, committed"

# ---- the data dir copied (cp -a: a backup restored, a data partition moved or numbered
# otherwise at boot): new inodes, the same bytes. The legacy file still holds the reboot's
# handover; the newest record (the commit) must stay the device's state.
grep -q '"state":"ArtifactReboot"' "$D/data/store" || fail "the legacy file does not hold the reboot's handover: $(head -c 400 "$D/data/store")"
cp -a "$D/data" "$D/data.copy" && rm -rf "$D/data" && mv "$D/data.copy" "$D/data" || fail "copying the data dir"
rf_settled rel-1 B "after the data dir was copied"
rf_molt resume
expect_rc 2 "resume after the data dir was copied (nothing in progress)"
pass "a data dir copied with cp -a keeps its newest record (idle on rel-1), not the legacy file's reboot handover"

# ---- B -> A, molt-artifact zstd, a passing health check ------------------------------------
cat >>"$D/molt.yaml" <<YAML
    health_commands:
      - test -e $D/healthy
      - true
    health_units: [app.service]
    systemctl: $D/fake-systemctl
    health_deadline: 2
    verify_write: true
YAML
touch "$D/healthy"
# systemctl is-active --quiet UNIT: active when $D/units/UNIT exists
mkdir -p "$D/units"
touch "$D/units/app.service"
printf '#!/bin/sh
[ "$1 $2" = "is-active --quiet" ] && [ -e "%s/units/$3" ]
' "$D" >"$D/fake-systemctl"
chmod 755 "$D/fake-systemctl"
rf_image rel-2
rf_artifact molt "$T/rel-2.mender" rel-2 "$T/rel-2.img" --compression zstd
rf_molt install "$T/rel-2.mender"
expect_rc 4 "install rel-2"
grep -q "partition $D/part-a.img: read back $IMG_SIZE bytes, identical to those written" "$RUN_ERR" \
    || fail "no read-back verification: $(cat "$RUN_ERR")"
assert_eq 2 "$(rf_env mender_boot_part)" "rel-2 armed on A"
rf_boot
expect_rc 0 "reboot into A"
rf_molt commit
expect_rc 0 "commit rel-2"
rf_settled rel-2 A "after commit rel-2"
pass "B->A with molt-artifact (zstd), read-back verification and a passing health check"

# ---- a failing health check: rollback with its reboot ---------------------------------------
rm "$D/units/app.service"
rf_image rel-3
rf_artifact mender "$T/rel-3.mender" rel-3 "$T/rel-3.img"
rf_molt install "$T/rel-3.mender"
expect_rc 4 "install rel-3"
rf_boot
expect_rc 4 "resume on B: health check fails, rollback needs a reboot"
grep -q "health check failed within the 2 s deadline: unit app.service is not active ($D/fake-systemctl is-active: exit 1)" \
    "$RUN_ERR" || fail "health failure not reported: $(cat "$RUN_ERR")"
assert_eq 2 "$(rf_env mender_boot_part)" "rolled back env"
rf_boot
expect_rc 1 "reboot into A after the rollback: the deployment ends failed"
assert_eq failure "$(rf_status_field 'j["last_deployment"]["result"]')" "rel-3 result"
rf_settled rel-2 A "after the failed health check"
touch "$D/units/app.service"
pass "failing health check: rolled back to A with a rollback reboot, deployment failed"

# ---- an image that does not boot: the bootloader falls back ---------------------------------
rf_image rel-4 --unbootable
rf_artifact mender "$T/rel-4.mender" rel-4 "$T/rel-4.img"
rf_molt install "$T/rel-4.mender"
expect_rc 4 "install rel-4"
rf_boot
expect_rc 1 "resume after the fallback: deployment failed"
grep -q "falling back to partition 2" "$D/boot.log" || fail "no fallback in the boot log"
grep -q "running partition A .*expected B: the new system did not boot" "$RUN_ERR" \
    || fail "verify message: $(cat "$RUN_ERR")"
assert_eq failure "$(rf_status_field 'j["last_deployment"]["result"]')" "rel-4 result"
rf_settled rel-2 A "after the bootloader fallback"
pass "an image that does not boot: bootloader fallback, deployment failed, A runs"

# ---- molt rollback while waiting for the commit ----------------------------------------------
rf_image rel-5
rf_artifact molt "$T/rel-5.mender" rel-5 "$T/rel-5.img"
rf_molt install "$T/rel-5.mender"
expect_rc 4 "install rel-5"
rf_boot
expect_rc 0 "boot rel-5"
assert_eq B "$(rf_running)" "rel-5 runs"
rf_molt rollback
expect_rc 4 "rollback from B needs a reboot"
rf_boot
expect_rc 0 "reboot after the rollback (a requested rollback ends with exit 0)"
rf_settled rel-2 A "after molt rollback"
pass "molt rollback from the trial system: rollback reboot into A"

# ---- GRUB environment block, two copies -------------------------------------------------------
rf_device grub --grub --redundant
rf_settled - A "fresh GRUB device"
ino1=$(stat -c %i "$D/grubenv") ino2=$(stat -c %i "$D/grubenv2")
seq0=$(grub-editenv "$D/grubenv" list | sed -n 's/^molt_env_seq=//p')
rf_image g-1
rf_artifact mender "$T/g-1.mender" g-1 "$T/g-1.img" --compression lzma
rf_molt install "$T/g-1.mender"
expect_rc 4 "install g-1 (GRUB)"
for f in grubenv grubenv2; do
    assert_eq 1024 "$(stat -c %s "$D/$f")" "$f size"
    head -c 25 "$D/$f" | grep -q '^# GRUB Environment Block$' || fail "$f header"
done
# rewritten in place (GRUB does not replay the ext4 journal: a renamed file would be invisible)
assert_eq "$ino1 $ino2" "$(stat -c %i "$D/grubenv") $(stat -c %i "$D/grubenv2")" "grubenv inodes"
cmp "$D/grubenv" "$D/grubenv2" || fail "the two GRUB copies differ after install"
grub-editenv "$D/grubenv" list >"$T/grub.txt" || fail "grub-editenv list"
for kv in mender_boot_part=3 mender_boot_part_hex=3 upgrade_available=1 bootcount=0 bootlimit=1 \
          "molt_env_seq=$((seq0 + 1))"; do
    grep -qx "$kv" "$T/grub.txt" || fail "grub-editenv list lacks $kv: $(cat "$T/grub.txt")"
done
rf_boot
expect_rc 0 "GRUB: reboot into B"
assert_eq B "$(rf_running)" "GRUB: running after the reboot"
rf_molt commit
expect_rc 0 "GRUB: commit"
rf_settled g-1 B "GRUB after commit"
grub-editenv "$D/grubenv" list | grep -qx upgrade_available=0 || fail "grub: upgrade_available"
cmp "$D/grubenv" "$D/grubenv2" || fail "the two GRUB copies differ after commit"
assert_eq "$ino1 $ino2" "$(stat -c %i "$D/grubenv") $(stat -c %i "$D/grubenv2")" "grubenv inodes"

# A torn copy 1: the bootloader and molt both read copy 2; the next update rewrites both.
printf 'torn' | dd of="$D/grubenv" conv=notrunc status=none
rf_image g-2
rf_artifact molt "$T/g-2.mender" g-2 "$T/g-2.img"
rf_molt install "$T/g-2.mender"
expect_rc 4 "install g-2 over a torn copy 1"
cmp "$D/grubenv" "$D/grubenv2" || fail "copy 1 not healed by the install"
rf_boot
expect_rc 0 "GRUB: reboot into A"
assert_eq A "$(rf_running)" "GRUB: g-2 runs on A"
rf_molt commit
expect_rc 0 "GRUB: commit g-2"
rf_settled g-2 A "GRUB after commit g-2"
pass "A->B->A on two GRUB environment copies, rewritten in place (read back with grub-editenv list), a torn copy healed"

# ---- the syncs of an install on a device at rest ---------------------------------------------
# One install to "reboot required" on a device whose data dir has been through an update (store,
# logs, state-script folder, module folders there): the fsync-family calls in order, by file.
# Each is argued in docs/performance.md ("fsyncs per install", rootfs-image). The write-back
# calls of the partition (sync_file_range) are not counted: their number grows with the image.
command -v strace >/dev/null || fail "strace is not installed (tools/deps.sh installs it)"
# LeakSanitizer cannot stop the world of a traced process (as in test_footprint.sh).
[ "${MOLT_SANITIZE:-}" != ON ] || export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0"
rf_device uboot
rf_image s-1
rf_artifact molt "$T/s-1.mender" s-1 "$T/s-1.img"
rf_molt install "$T/s-1.mender"
expect_rc 4 "install s-1"
rf_boot
expect_rc 0 "reboot into B"
rf_molt commit
expect_rc 0 "commit s-1"
rf_settled s-1 B "after commit s-1"
rf_image s-2
rf_artifact molt "$T/s-2.mender" s-2 "$T/s-2.img"
run_prog "$(command -v strace)" -f -y -e trace=fsync,fdatasync,syncfs -o "$T/s-2.trace" \
    "$MOLT" --config "$D/molt.yaml" install "$T/s-2.mender" --reboot-exit-code
expect_rc 4 "install s-2 under strace"
sed -nE 's/^[0-9]+ +(fsync|fdatasync|syncfs)\([0-9]+<([^>]*)>\).*/\1 \2/p' "$T/s-2.trace" |
    sed -E "s|$D/||; s|\.tmp-[0-9a-f]+$|.tmp|" >"$T/s-2.syncs"
cat >"$T/s-2.want" <<TXT
fdatasync data/store.slots
fsync data/native/rootfs-image/kv/.old.tmp
fsync data/native/rootfs-image/kv
fsync data/native/rootfs-image/kv/.new.tmp
fsync data/native/rootfs-image/kv
fsync part-a.img
fdatasync data/store.slots
fsync uboot.env
fsync data/.store.tmp
fsync data
fdatasync data/store.slots
TXT
diff "$T/s-2.want" "$T/s-2.syncs" >&2 || fail "the syncs of a rootfs-image install (diff above)"
pass "a rootfs-image install on a device at rest: 11 syncs (the plan, the partition, two records, the environment, the legacy file, the reboot's record)"
