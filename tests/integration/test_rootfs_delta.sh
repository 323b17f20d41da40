# SPDX-License-Identifier: Apache-2.0
# ctest-labels: root
# Delta updates (payload type rootfs-delta, docs/delta.md) on the simulated A/B device
# (tests/sim-bootloader), through the real molt, molt-artifact and mender-artifact:
#  - full v1 -> delta v1->v2 (made from two artifacts) -> delta v2->v3 (made from two images),
#    each booted and committed; the written partition equals the full image byte for byte and
#    the provides are those of a full update (rootfs-image.checksum, rootfs-image.version);
#  - mender-artifact read/validate accept the delta artifact, signed, and molt-artifact read
#    shows its base and target;
#  - a delta for another base is refused before any write (the inactive partition's digest and
#    the environment unchanged), and so is the right delta when one byte of the running
#    partition differs from the base (the module's own check of the data it reads);
#  - a delta whose rebuilt image does not have the provided checksum (made with the zstd CLI
#    and a wrong rootfs-image.checksum) is refused with the environment untouched;
#  - Mender's Go client refuses the delta artifact cleanly (no module for rootfs-delta), and
#    molt-artifact refuses bad inputs (equal images, a base that is not a rootfs-image);
#  - a power cut (SIGKILL by the test knob MOLT_ROOTFS_TEST_KILL_AFTER) inside the delta write,
#    then the reboot and molt resume: the device stays on the old system, and the next delta
#    installs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rootfs_lib.sh"
. "$(dirname "$0")/device.sh"
command -v mender-artifact >/dev/null || fail "mender-artifact is not installed"
command -v zstd >/dev/null || fail "zstd (the CLI) is not installed"

# next_image OLD NEW NAME: NEW is OLD with its name line changed, some blocks rewritten, a run of
# bytes inserted (what follows moves), and a block moved elsewhere: an update's shape.
next_image() {
    python3 - "$1" "$2" "$3" <<'PY'
import os, random, sys
old, new, name = sys.argv[1:]
data = bytearray(open(old, "rb").read())
size = len(data)
data = data[data.index(b"\n") + 1:]
rnd = random.Random(name)
for _ in range(6):
    at = rnd.randrange(0, len(data) - 4096)
    data[at:at + 4096] = os.urandom(4096)
at = rnd.randrange(0, len(data) // 2)
data[at:at] = os.urandom(3000)                      # inserted: the rest moves by 3000 bytes
a, b = rnd.randrange(0, len(data) - 20000), rnd.randrange(0, len(data) - 20000)
data[b:b + 20000] = data[a:a + 20000]               # a block copied elsewhere
out = (b"SIM-ROOTFS bootable name=%s\n" % name.encode()) + data
open(new, "wb").write(out[:size])
PY
}
sha() { sha256sum "$1" | cut -d' ' -f1; }
part() { echo "$D/part-$(tr AB ab <<<"$1").img"; }

# ---- the releases and their artifacts ------------------------------------------------------
rf_image v1
next_image "$T/v1.img" "$T/v2.img" v2
next_image "$T/v2.img" "$T/v3.img" v3
next_image "$T/v3.img" "$T/v4.img" v4
for v in v1 v2; do rf_artifact molt "$T/$v.mender" "$v" "$T/$v.img"; done
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$T/key.pem" 2>/dev/null
openssl pkey -in "$T/key.pem" -pubout -out "$T/key.pub" 2>/dev/null
run_molt_artifact write rootfs-delta --base "$T/v1.mender" --target "$T/v2.mender" \
    -o "$T/d12.mender" -k "$T/key.pem"
expect_rc 0 "write rootfs-delta from two artifacts"
run_molt_artifact write rootfs-delta --base "$T/v2.img" --target "$T/v3.img" -n v3 -t sim-ab \
    -o "$T/d23.mender"
expect_rc 0 "write rootfs-delta from two images"
run_molt_artifact write rootfs-delta --base "$T/v3.img" --target "$T/v4.img" -n v4 -t sim-ab \
    -o "$T/d34.mender"
expect_rc 0 "write rootfs-delta v3->v4"
full=$(stat -c %s "$T/v2.img")
[ "$(stat -c %s "$T/d12.mender")" -lt $((full / 4)) ] \
    || fail "the delta artifact ($(stat -c %s "$T/d12.mender") bytes) is not small against $full"

# ---- interop and what read shows -----------------------------------------------------------
mender-artifact validate -k "$T/key.pub" "$T/d12.mender" >"$T/ma.out" 2>&1 \
    || fail "mender-artifact validate -k of the delta: $(cat "$T/ma.out")"
mender-artifact read "$T/d12.mender" >"$T/ma.out" 2>&1 || fail "mender-artifact read: $(cat "$T/ma.out")"
grep -q "Type: *rootfs-delta" "$T/ma.out" || fail "mender-artifact read: no rootfs-delta type: $(cat "$T/ma.out")"
grep -q "rootfs-image.checksum: *$(sha "$T/v1.img")" "$T/ma.out" \
    || fail "mender-artifact read: the depends lack the base checksum: $(cat "$T/ma.out")"
run_molt_artifact read "$T/d12.mender"
expect_rc 0 "molt-artifact read of the delta"
grep -q "Delta: *zstd-patch-from" "$RUN_OUT" || fail "read: no delta line: $(cat "$RUN_OUT")"
grep -q "base: *$(sha "$T/v1.img") ($(stat -c %s "$T/v1.img") bytes)" "$RUN_OUT" \
    || fail "read: base: $(cat "$RUN_OUT")"
grep -q "target: *$(sha "$T/v2.img") ($(stat -c %s "$T/v2.img") bytes), rootfs-image.version v2" \
    "$RUN_OUT" || fail "read: target: $(cat "$RUN_OUT")"
run_molt_artifact write rootfs-delta --base "$T/v1.img" --target "$T/v1.img" -n x -t sim-ab \
    -o "$T/same.mender"
expect_rc 1 "a delta between equal images"
grep -q "are the same image" "$RUN_ERR" || fail "equal images: $(cat "$RUN_ERR")"
[ ! -e "$T/same.mender" ] || fail "equal images: an artifact was written"
run_molt_artifact write rootfs-delta --target "$T/v2.img" -n x -t sim-ab -o "$T/x.mender"
expect_rc 2 "no --base"
run_molt_artifact write rootfs-delta --base "$T/d12.mender" --target "$T/v2.mender" -o "$T/x.mender"
expect_rc 1 "a delta artifact as the base"
grep -q "payload type is rootfs-delta, expected rootfs-image" "$RUN_ERR" || fail "delta as base: $(cat "$RUN_ERR")"
pass "delta artifacts: signed, accepted by mender-artifact validate/read, base and target shown"

# Mender's own client has no rootfs-delta module: it refuses before writing anything
go_device_new mgo sim-ab v1
go_mender install "$T/d12.mender"
[ "$RUN_RC" != 0 ] || fail "Mender's client installed a rootfs-delta artifact"
grep -q "Payload type 'rootfs-delta' is not supported" "$RUN_ERR" \
    || fail "Mender's client: $(tail -n 5 "$RUN_ERR")"
pass "Mender's client refuses the delta artifact cleanly (payload type not supported)"

# ---- full v1, then delta v1->v2 and v2->v3, each committed ---------------------------------
rf_device dev
printf '    verify_write: true\n' >>"$D/molt.yaml"
install_commit() {  # ARTIFACT NAME PART IMAGE
    rf_molt install "$1"
    expect_rc 4 "install $2 (reboot required)"
    rf_boot
    expect_rc 0 "reboot into $3 + resume ($2)"
    rf_molt commit
    expect_rc 0 "commit $2"
    rf_settled "$2" "$3" "after $2"
    cmp -n "$(stat -c %s "$4")" "$4" "$(part "$3")" || fail "$2: partition $3 differs from $4"
    rf_molt show-provides
    grep -qx "rootfs-image.checksum=$(sha "$4")" "$RUN_OUT" || fail "$2: provides: $(cat "$RUN_OUT")"
    grep -qx "rootfs-image.version=$2" "$RUN_OUT" || fail "$2: provides: $(cat "$RUN_OUT")"
}
install_commit "$T/v1.mender" v1 B "$T/v1.img"
install_commit "$T/d12.mender" v2 A "$T/v2.img"
grep -q "is the delta's base" "$D/data/molt.log" 2>/dev/null || grep -rq "is the delta's base" "$D/data" \
    || fail "the log does not show the base check"
install_commit "$T/d23.mender" v3 B "$T/v3.img"
pass "full v1 -> delta v1->v2 -> delta v2->v3: each committed, partitions equal the full images"

# ---- refusals before any write ------------------------------------------------------------
# expect_untouched WHAT: the install failed, the device idles on v3 (B), partition A and the
# environment are byte for byte what they were
snapshot() { echo "$(sha "$(part A)") $(sha "$D/uboot.env")"; }
expect_untouched() {
    [ "$RUN_RC" != 0 ] && [ "$RUN_RC" != 4 ] || fail "$1: install did not fail (exit $RUN_RC)"
    assert_eq "$before" "$(snapshot)" "$1: partition A and the environment (digests)"
    rf_settled v3 B "$1"
}
before=$(snapshot)
rf_molt install "$T/d12.mender"
expect_untouched "a delta for another base (v1)"
grep -q "rootfs-image.checksum" "$RUN_ERR" || fail "another base: $(cat "$RUN_ERR")"

# one byte of the running partition (inside the base image) differs: the module's own check
printf 'X' | dd of="$(part B)" bs=1 seek=400000 conv=notrunc status=none
before=$(snapshot)
rf_molt install "$T/d34.mender"
expect_untouched "a base partition altered by one byte"
grep -q "is not the delta's base" "$RUN_ERR" || fail "altered base: $(cat "$RUN_ERR")"
dd if="$T/v3.img" of="$(part B)" bs=1 skip=400000 seek=400000 count=1 conv=notrunc status=none
cmp -n "$(stat -c %s "$T/v3.img")" "$T/v3.img" "$(part B)" || fail "restoring the byte"

# the rebuilt image is not the provided one (the zstd CLI's delta, a wrong checksum)
zstd -q -19 --long=21 --patch-from="$T/v3.img" "$T/v4.img" -o "$T/rootfs.delta" \
    || fail "zstd --patch-from"
printf '{"rootfs-delta": {"format": "zstd-patch-from", "base_size": %d, "target_size": %d}}' \
    "$(stat -c %s "$T/v3.img")" "$(stat -c %s "$T/v4.img")" >"$T/meta.json"
run_molt_artifact write module-image -T rootfs-delta -n v4-bad -t sim-ab -f "$T/rootfs.delta" \
    -m "$T/meta.json" -d "rootfs-image.checksum:$(sha "$T/v3.img")" \
    -p "rootfs-image.checksum:$(sha "$T/v2.img")" -o "$T/bad.mender"
expect_rc 0 "write the delta with a wrong target checksum"
before=$(snapshot | cut -d' ' -f2)
rf_molt install "$T/bad.mender"
[ "$RUN_RC" != 0 ] && [ "$RUN_RC" != 4 ] || fail "wrong target checksum: installed"
grep -q "the artifact provides $(sha "$T/v2.img")" "$RUN_ERR" || fail "wrong target: $(cat "$RUN_ERR")"
assert_eq "$before" "$(sha "$D/uboot.env")" "wrong target checksum: the environment"
rf_settled v3 B "a rebuilt image with the wrong checksum"
pass "refused: another base, a base altered by one byte (before any write), a wrong result"

# ---- a power cut inside the delta write, then the next delta ----------------------------------
MOLT_ROOTFS_TEST_KILL_AFTER=300000 "$MOLT" --config "$D/molt.yaml" install "$T/d34.mender" \
    --reboot-exit-code >"$T/cut.out" 2>&1 && rc=0 || rc=$?
assert_eq 137 "$rc" "install killed inside the delta write"
rf_boot
rf_settled v3 B "after the power cut"
[ "$(rf_name)" = v3 ] || fail "after the cut the store says $(rf_name)"
install_commit "$T/d34.mender" v4 A "$T/v4.img"
pass "power cut inside the delta write: the device stays on v3; the next delta installs v4"
