# SPDX-License-Identifier: Apache-2.0
# The conformance kit (molt-module-test) on the rootfs-image module WITHOUT a reboot hook:
# active_source: bootenv (the partition the U-Boot environment boots counts as the running one)
# on two image files and an environment file, for harnesses that cannot boot anything.
# (test_conformance.sh runs the kit with the simulated bootloader as its --reboot-hook.) No check
# may fail; kill-ArtifactVerifyRollbackReboot is a SKIP here: with the environment as the only
# witness, the old system "runs" as soon as ArtifactRollback points back at it, so the module
# asks for no rollback reboot.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rootfs_lib.sh"
KIT="$MOLT_BUILD_DIR/sdk/tester/molt-module-test"
[ -x "$KIT" ] || { echo "skip: the conformance kit is not built ($KIT)"; exit 0; }

truncate -s 2M "$T/a.img" "$T/b.img"
head -c 16384 /dev/zero >"$T/uboot.env"
echo "$T/uboot.env 0x0 0x4000" >"$T/fw_env.config"
printf '%s\n' mender_boot_part=2 mender_boot_part_hex=2 upgrade_available=0 bootcount=0 bootlimit=1 >"$T/def"
fw_setenv -c "$T/fw_env.config" -f "$T/def" bootcount 0 2>/dev/null || fail "fw_setenv"
rf_image kit-1
rf_artifact mender "$T/kit.mender" kit-1 "$T/kit-1.img"
cat >"$T/kit.yaml" <<YAML
modules:
  rootfs-image:
    partition_a: $T/a.img
    partition_b: $T/b.img
    fw_env_config: $T/fw_env.config
    active_source: bootenv
YAML
run_prog "$KIT" --config "$T/kit.yaml" --manifest "$MOLT_SRC_DIR/modules/rootfs-image/module.yaml" \
    "$MOLT_BUILD_DIR/modules/native/rootfs-image.so" "$T/kit.mender"
cat "$RUN_OUT"
for check in happy-path manifest download-streaming rollback fail-Download fail-ArtifactInstall \
    fail-ArtifactVerifyReboot fail-ArtifactCommit fail-ArtifactRollback kill-Download \
    kill-ArtifactInstall kill-ArtifactVerifyReboot kill-ArtifactCommit kill-ArtifactRollback \
    Cleanup-twice ArtifactRollback-twice; do
    grep -qx "PASS $check" "$RUN_OUT" || fail "kit check $check did not pass"
done
expect_rc 0 "the kit on rootfs-image (active_source: bootenv)"
! grep '^FAIL' "$RUN_OUT" || fail "kit failures"
pass "the conformance kit passes on rootfs-image with active_source: bootenv"

# As an older molt drives it (--host-minor): on ABI 1.1 "downloaded" goes to the kv store (no
# deployment values), on 1.0 the partition is written from the read loop (no set_sink). The
# same checks pass: ArtifactInstall refuses a partition it does not find marked downloaded, so
# a broken fallback fails the happy path.
for minor in 1 0; do
    run_prog "$KIT" --host-minor "$minor" --config "$T/kit.yaml" \
        --manifest "$MOLT_SRC_DIR/modules/rootfs-image/module.yaml" \
        "$MOLT_BUILD_DIR/modules/native/rootfs-image.so" "$T/kit.mender"
    cat "$RUN_OUT"
    grep -q "^# host: molt as a host of ABI 1.$minor" "$RUN_OUT" || fail "1.$minor: no host line"
    for check in happy-path download-streaming rollback fail-ArtifactInstall kill-Download \
        kill-ArtifactInstall kill-ArtifactCommit Cleanup-twice ArtifactRollback-twice; do
        grep -qx "PASS $check" "$RUN_OUT" || fail "host 1.$minor: kit check $check did not pass"
    done
    expect_rc 0 "the kit on rootfs-image as a host of ABI 1.$minor"
    ! grep '^FAIL' "$RUN_OUT" || fail "host 1.$minor: kit failures"
    pass "the conformance kit passes on rootfs-image as driven by a host of ABI 1.$minor"
done
