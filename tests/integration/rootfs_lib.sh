# SPDX-License-Identifier: Apache-2.0
# Helpers of the rootfs-image tests (test_rootfs_*.sh): a simulated A/B device
# (tests/sim-bootloader/sim-bootloader) driven through the real molt, libubootenv tools and
# grub-editenv. Source after lib.sh.
#   rf_device NAME [create options]  new device in $T/NAME -> $D
#   rf_molt ARGS...                  run_prog molt --config $D/molt.yaml ARGS (--reboot-exit-code
#                                    added to install/commit/rollback/resume)
#   rf_boot                          a reboot: the simulated bootloader, then molt resume
#   rf_image NAME [image options]    $T/NAME.img, a bootable (or --unbootable) image
#   rf_artifact TOOL OUT NAME IMAGE [options]   TOOL = mender | molt
#   rf_env VAR, rf_running, rf_state, rf_name
#   rf_settled NAME PART             (NAME - : not checked) the device is idle on artifact NAME, running PART (A|B), the
#                                    environment boots PART without a trial, and a further reboot
#                                    (no molt) stays on PART
SIM="$MOLT_SRC_DIR/tests/sim-bootloader/sim-bootloader"
IMG_SIZE=${IMG_SIZE:-700000}

rf_device() {  # NAME [create options]
    D="$T/$1"
    shift
    "$SIM" create "$D" --molt-build "$MOLT_BUILD_DIR" --part-size 1048576 "$@" \
        || fail "sim-bootloader create failed"
}

rf_molt() {
    case $1 in
        install|commit|rollback|resume) run_prog "$MOLT" --config "$D/molt.yaml" "$@" --reboot-exit-code ;;
        *) run_prog "$MOLT" --config "$D/molt.yaml" "$@" ;;
    esac
}

rf_boot() {
    run_prog "$SIM" boot "$D"
    [ "$RUN_RC" != 70 ] || { cat "$D/boot.log" >&2; fail "the device is bricked"; }
}

rf_image() {  # NAME [options]
    local n=$1
    shift
    "$SIM" image "$T/$n.img" "$n" --size "$IMG_SIZE" "$@"
}

rf_artifact() {  # mender|molt OUT NAME IMAGE [options]
    local tool=$1 out=$2 name=$3 img=$4
    shift 4
    if [ "$tool" = mender ]; then
        mender-artifact write rootfs-image -f "$img" -n "$name" -t sim-ab -o "$out" "$@" \
            >/dev/null 2>&1 || fail "mender-artifact write rootfs-image $name"
    else
        "$MOLT_ARTIFACT" write rootfs-image -f "$img" -n "$name" -t sim-ab -o "$out" "$@" \
            >/dev/null || fail "molt-artifact write rootfs-image $name"
    fi
}

rf_env() { "$SIM" env "$D" "$1"; }
rf_running() { cat "$D/running"; }

rf_status_field() {  # PYTHON-EXPRESSION over the status JSON j
    "$MOLT" --config "$D/molt.yaml" status --json 2>/dev/null |
        python3 -c "import json,sys; j=json.load(sys.stdin); v=$1; print('' if v is None else v)"
}
rf_state() { rf_status_field 'j["state"]'; }
rf_name() { rf_status_field 'j["artifact_name"]'; }

rf_settled() {  # NAME PART [WHAT]
    local what=${3:-device} num
    [ "$2" = A ] && num=2 || num=3
    assert_eq idle "$(rf_state)" "$what: store state"
    [ "$1" = - ] || assert_eq "$1" "$(rf_name)" "$what: installed artifact"
    assert_eq "$2" "$(rf_running)" "$what: running partition"
    assert_eq "$num" "$(rf_env mender_boot_part)" "$what: env mender_boot_part"
    assert_eq "$num" "$(rf_env mender_boot_part_hex)" "$what: env mender_boot_part_hex"
    assert_eq 0 "$(rf_env upgrade_available)" "$what: env upgrade_available"
    "$SIM" boot "$D" --no-resume || fail "$what: reboot"
    assert_eq "$2" "$(rf_running)" "$what: running partition after one more reboot"
    grep -q "^SIM-ROOTFS bootable name=$1\$" <(head -n 1 "$D/part-$(tr AB ab <<<"$2").img") \
        || [ "$1" = - ] || fail "$what: partition $2 does not hold $1"
}
