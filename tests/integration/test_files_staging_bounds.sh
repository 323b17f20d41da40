# SPDX-License-Identifier: Apache-2.0
# Payload files staged for file-taking modules are bounded by what the artifact declares (issue
# 12, part 5a): a payload file whose tar header declares 77 GiB (followed by 1 MiB, then the
# stream ends) is refused before anything is written, with a message naming the declared size
# and the free space, for an exec module in files/ mode (Mender's community single-file module).
# Before, molt wrote what arrived into files/ (on a real stream: until the disk was full). The
# other bound, more bytes than declared, cannot pass the artifact reader (it ends each file at its
# declared size): tests/unit/test_stage.c feeds it to the staging code directly.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

TAMPER="$MOLT_SRC_DIR/tests/integration/tamper_payload.py"
[ -x /usr/share/mender/modules/v3/single-file ] || fail "community single-file module not installed"
device_new dev dev-a
mkdir -p "$T/src"
head -c $((1024 * 1024)) /dev/urandom >"$T/src/big.bin"
printf '%s' "$DEV_DEST" >"$T/src/dest_dir"
printf 'big.bin' >"$T/src/filename"
make_artifact "$T/small.mender" big-1 single-file --compression none -f "$T/src/dest_dir" \
    -f "$T/src/filename" -f "$T/src/big.bin"
huge=$((77 * 1024 * 1024 * 1024))
free=$(df --output=avail -B1 "$DEV_DATA" | tail -n 1)
[ "$free" -lt "$huge" ] || huge=$((free + 1024 * 1024 * 1024))   # a machine with more room
python3 "$TAMPER" --declare "$huge" "$T/small.mender" "$T/huge.mender" big.bin "$T/src/big.bin" ||
    fail "tamper_payload.py --declare"

molt_dev install "$T/huge.mender"
expect_rc 1 "install of a payload declaring 77 GiB"
assert_match "payload file big\\.bin declares $huge bytes, but [^ ]+/files has [0-9]+ bytes free: refused before writing" \
    "$(cat "$RUN_ERR")" "the refusal"
[ ! -e "$DEV_DEST/big.bin" ] || fail "the destination was written"
[ -z "$(find "$DEV_DATA" -name big.bin)" ] || fail "a staged big.bin is left: $(find "$DEV_DATA" -name big.bin)"
assert_eq idle "$(dev_state)" "state after the refusal"
pass "a payload declaring 77 GiB is refused before writing, with the size and the free space"

# The same artifact, honest: installs (the check does not stand in the way of what fits).
molt_dev install "$T/small.mender"
expect_rc 0 "install of the 1 MiB payload"
cmp "$T/src/big.bin" "$DEV_DEST/big.bin" || fail "installed file differs"
pass "a payload that fits installs"
