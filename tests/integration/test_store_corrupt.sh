# SPDX-License-Identifier: Apache-2.0
# A torn or corrupt store (<data_dir>/store.slots: two slots, each record with a CRC-32) is
# detected and reported, never silently trusted:
# - damage that leaves no valid record (the file truncated to half or to nothing, both slots
#   with a flipped byte, an edit that keeps the JSON valid so only the CRC can catch it): `molt
#   status`, `show-provides`, `install`, `commit` and `resume` exit 1 with a message naming the
#   store file, no module runs, the target is untouched and the file is left as it was (for a
#   person to look at);
# - the newest slot failing its check beside a valid one (what a save cut by a power loss
#   leaves): the record before it is read, with a warning naming the slot, and molt carries on
#   from there (here: state Cleanup, which `molt resume` finishes).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

device_new dev dev-a

# A real store: one committed single-file install.
motd_artifact "$T/one.mender" release-one 'release one'
molt_dev install "$T/one.mender"
expect_rc 0 "install release-one"
molt_dev commit
expect_rc 0 "commit release-one"
[ -s "$DEV_STORE" ] || fail "no store at $DEV_STORE after a committed install"
assert_eq "release-one" "$(dev_artifact)" "artifact name before corrupting"
cp "$DEV_STORE" "$T/store.good"
grep -q 'release-one' "$T/store.good" || fail "the store does not hold the artifact name as text: $(head -c 300 "$T/store.good")"

# A save cut by a power loss: the newest slot (the deployment's last, lazy record) fails its
# check; the slot before holds state Cleanup.
python3 - "$DEV_STORE" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
half = len(b) // 2
newest = max((0, half), key=lambda o: int(b[o + 13:o + 29], 16))
b[newest + 70] ^= 0x01
open(p, "wb").write(b)
PY
molt_dev status
expect_rc 0 "status with the newest slot damaged"
grep -q "store $DEV_DATA/store.slots: slot [01] fails its check (CRC-32" "$RUN_ERR" ||
    fail "no warning naming the damaged slot: $(head -c 600 "$RUN_ERR")"
assert_eq Cleanup "$(dev_state)" "state read from the slot before the damaged one"
molt_dev resume
expect_rc 0 "resume from state Cleanup"
assert_eq idle "$(dev_state)" "state after resuming Cleanup"
assert_eq "release-one" "$(dev_artifact)" "artifact name after resuming Cleanup"
assert_eq "release one" "$(cat "$DEV_DEST/motd")" "target after resuming Cleanup"
cp "$DEV_STORE" "$T/store.good"
pass "a damaged newest slot: the record before it is read, with a warning, and finished"

motd_artifact "$T/two.mender" release-two 'release two'

# The command must fail with exit 1, name the store file, and change nothing.
expect_refused() {  # KIND ARGS...
    local kind=$1
    shift
    cp "$DEV_STORE" "$T/store.before"
    molt_dev "$@"
    expect_rc 1 "molt $1 with a store $kind"
    grep -qF "$DEV_STORE" "$RUN_ERR" "$RUN_OUT" ||
        fail "molt $1 with a store $kind: the message does not name $DEV_STORE: $(head -c 600 "$RUN_ERR")"
    cmp -s "$T/store.before" "$DEV_STORE" || fail "molt $1 rewrote the $kind store"
    assert_eq "release one" "$(cat "$DEV_DEST/motd")" "target after molt $1 with a store $kind"
}

corrupt() {  # KIND
    cp "$T/store.good" "$DEV_STORE"
    local size
    size=$(stat -c %s "$DEV_STORE")
    case $1 in
    truncated) truncate -s $((size / 2)) "$DEV_STORE" ;;
    empty) : >"$DEV_STORE" ;;
    flipped)   # a byte of each slot's record
        python3 - "$DEV_STORE" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[70] ^= 0x01
b[len(b) // 2 + 70] ^= 0x01
open(p, "wb").write(b)
PY
        ;;
    edited) sed -i 's/release-one/release-eve/g' "$DEV_STORE" ;;   # both slots name it
    esac
    cmp -s "$T/store.good" "$DEV_STORE" && fail "corrupt $1: the store did not change"
    return 0
}

for kind in truncated empty flipped edited; do
    corrupt "$kind"
    expect_refused "$kind" status
    expect_refused "$kind" status --json
    expect_refused "$kind" show-provides
    expect_refused "$kind" show-artifact
    expect_refused "$kind" install "$T/two.mender"
    expect_refused "$kind" commit
    expect_refused "$kind" resume
    pass "store $kind: detected and reported by every command"
done

# The good store still works (the checks above are about the damage, not about the file's age).
# Both slots hold release-one by now (the save after the damaged one and the last commit).
cp "$T/store.good" "$DEV_STORE"
assert_eq "release-one" "$(dev_artifact)" "artifact name with the store restored"
molt_dev install "$T/two.mender"
expect_rc 0 "install release-two with the store restored"
molt_dev commit
expect_rc 0 "commit release-two"
assert_eq "release two" "$(cat "$DEV_DEST/motd")" "target after release-two"
pass "restored store: install works again"
