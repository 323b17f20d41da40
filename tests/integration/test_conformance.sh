# SPDX-License-Identifier: Apache-2.0
# ctest-labels: slow
# The conformance kit (molt-module-test) on real modules:
#  1. the kit catches broken modules: an exec module answering "yes" to SupportsRollback fails
#     answer-SupportsRollback with the bad answer; one whose Cleanup fails when called again fails
#     Cleanup-twice; the logging test module and the native copy test module pass; with an
#     effect probe (--probe), a native module whose ArtifactInstall writes nothing fails
#     effect-install, one whose ArtifactRollback restores nothing fails effect-rollback, one that
#     drops its backups in ArtifactCommit fails effect-kill-ArtifactCommit, a shell module whose
#     ArtifactRollback exits 0 restoring nothing fails effect-rollback (and passes without a
#     probe, with one SKIP effects line); --expect-state is checked; a pause inside the kit's
#     power cut (MOLT_KIT_TEST_CUT_PAUSE_MS) changes no kill check of the logging test module;
#  2. every built-in module built in this tree (modules/native/*.so) with a recipe below passes
#     (file: single-file and directory artifacts; rootfs-image: on the simulated A/B device,
#     its reboots done by the simulated bootloader through the kit's --reboot-hook), with its
#     effects verified through the probe of its manifest;
#  3. the community modules of Debian's mender-client (/usr/share/mender/modules/v3) that can run
#     without touching this machine (single-file, directory, script), each with a probe of what
#     it installs (the dest_dir tree, the file the script writes): their reports are printed
#     and kept in $MOLT_BUILD_DIR/conformance/; a failing check there is a finding, not a test
#     failure. deb, rpm and docker need the real package manager or engine: skipped, with why.
. "$(dirname "$0")/lib.sh"

KIT="$MOLT_BUILD_DIR/sdk/tester/molt-module-test"
REPORTS="$MOLT_BUILD_DIR/conformance"
COMMUNITY=/usr/share/mender/modules/v3
mkdir -p "$REPORTS" "$T/src" "$T/dest"
RUN_TIMEOUT=$((MOLT_TEST_GUARD * 2))   # a guard against a hang

# kit NAME MODULE ARTIFACT [KIT OPTIONS...]: run the kit, keep the report as $REPORTS/NAME.txt,
# print it.
kit() {
    run_prog "$KIT" --report "$REPORTS/$1.txt" "${@:4}" "$2" "$3"
    echo "---- conformance report: $1 ($2)"
    cat "$RUN_OUT"
    [ "$RUN_RC" = 0 ] || [ "$RUN_RC" = 1 ] || { cat "$RUN_ERR" >&2; fail "$1: the kit could not run (exit $RUN_RC)"; }
    cmp -s "$RUN_OUT" "$REPORTS/$1.txt" || fail "$1: the report file differs from the printed report"
}

artifact() {  # OUT NAME TYPE [mender-artifact args...]
    local out=$1 name=$2 type=$3
    shift 3
    mender-artifact write module-image -T "$type" -n "$name" -t kit-device -o "$out" "$@" \
        >"$T/.ma.log" 2>&1 || { cat "$T/.ma.log" >&2; fail "mender-artifact write $name"; }
}

# ---- 1. the kit itself ----------------------------------------------------------------------------
head -c 50000 /dev/urandom >"$T/src/payload.bin"
cat >"$T/bad-answer" <<'SH'
#!/bin/sh
case $1 in
SupportsRollback) echo yes ;;
esac
exit 0
SH
cat >"$T/bad-cleanup" <<'SH'
#!/bin/sh
# Cleanup leaves a mark in the tree and fails when it finds it: not idempotent.
case $1 in
Cleanup) [ -e tmp/cleaned ] && exit 1; : >tmp/cleaned ;;
esac
exit 0
SH
chmod 755 "$T/bad-answer" "$T/bad-cleanup"
artifact "$T/bad.mender" bad-1 kit-bad -f "$T/src/payload.bin"
kit bad-answer "$T/bad-answer" "$T/bad.mender"
expect_rc 1 "the kit on a module answering 'yes'"
grep -qx 'FAIL answer-SupportsRollback: answered "yes\\n", expected exactly one line: Yes, No or nothing' "$RUN_OUT" ||
    fail "the kit does not name the bad answer"
grep -qx 'PASS unknown-call' "$RUN_OUT" || fail "bad-answer: unknown-call should pass"
pass "the kit fails a module answering outside the protocol, naming the answer"
kit bad-cleanup "$T/bad-cleanup" "$T/bad.mender"
expect_rc 1 "the kit on a module whose Cleanup is not idempotent"
grep -qx 'FAIL Cleanup-twice: Cleanup failed when called again after a kill inside it' "$RUN_OUT" ||
    fail "the kit does not catch a Cleanup that fails the second time"
grep -qx 'PASS happy-path' "$RUN_OUT" || fail "bad-cleanup: the happy path should pass"
pass "the kit fails a module whose Cleanup fails when called again"

artifact "$T/logger.mender" logger-1 test-logger -f "$T/src/payload.bin"
kit logging-module "$MOLT_SRC_DIR/tests/modules/logging-module" "$T/logger.mender"
expect_rc 0 "the kit on the logging test module"
grep -qx 'PASS kill-ArtifactInstall' "$RUN_OUT" || fail "logging-module: no kill-ArtifactInstall check"
pass "the logging test module passes"
# The same module with rollback and each reboot answer: the reboot states are checked too, the
# reboots simulated (ArtifactReboot is never run for real).
mkdir -p "$T/logger-ctl"
export LOGGING_MODULE_DIR="$T/logger-ctl"
printf 'Yes\n' >"$T/logger-ctl/answer_SupportsRollback"
for answer in Yes Automatic; do
    printf '%s\n' "$answer" >"$T/logger-ctl/answer_NeedsArtifactReboot"
    kit "logging-module-reboot-$answer" "$MOLT_SRC_DIR/tests/modules/logging-module" "$T/logger.mender"
    expect_rc 0 "the kit on the logging test module answering $answer"
    for c in kill-ArtifactVerifyReboot kill-ArtifactVerifyRollbackReboot ArtifactRollback-twice rollback; do
        grep -qx "PASS $c" "$RUN_OUT" || fail "logging-module ($answer): no passing $c"
    done
    [ "$answer" = Automatic ] || grep -q 'ArtifactReboot(simulated)' "$RUN_OUT" ||
        fail "logging-module (Yes): ArtifactReboot not simulated"
done
# The kit's power cut holds when the kit is slow between its two kills (preempted there under
# load: the test switch makes the pause): molt is gone before its module dies, so it never sees
# the module's death and never records the cut call as failed. With the module killed first,
# kill-ArtifactFailure ended logger-1_INCONSISTENT and kill-Cleanup in a finished deployment.
export MOLT_KIT_TEST_CUT_PAUSE_MS=200
kit logging-module-cut-pause "$MOLT_SRC_DIR/tests/modules/logging-module" "$T/logger.mender"
unset MOLT_KIT_TEST_CUT_PAUSE_MS
expect_rc 0 "the kit with a pause inside its power cuts"
for c in kill-ArtifactRollback kill-ArtifactFailure kill-Cleanup ArtifactRollback-twice Cleanup-twice; do
    grep -qx "PASS $c" "$RUN_OUT" || fail "a pause inside the power cut: no passing $c: $(grep "$c" "$RUN_OUT")"
done
pass "a pause inside the kit's power cut: every kill still lands in its call"
# A manifest that does not match: it says no rollback.
printf 'name: lg\nversion: 1\ncapabilities:\n  streaming: false\n  rollback: false\n  reboot: true\n' >"$T/lg.yaml"
run_prog "$KIT" --manifest "$T/lg.yaml" "$MOLT_SRC_DIR/tests/modules/logging-module" "$T/logger.mender"
expect_rc 1 "the kit with a manifest that does not match the module"
grep -qx "FAIL manifest: capabilities.rollback is false but the module's answers and download say true" "$RUN_OUT" ||
    fail "manifest mismatch not reported: $(grep manifest "$RUN_OUT")"
unset LOGGING_MODULE_DIR
pass "the logging test module with rollback and reboots passes; a wrong manifest fails"

NATIVE_TEST="$MOLT_BUILD_DIR/tests/modules/native"
if [ -f "$NATIVE_TEST/native_copy.so" ]; then
    printf '{"dest": "%s"}' "$T/dest" >"$T/src/meta.json"
    artifact "$T/copy.mender" copy-1 native-copy -f "$T/src/payload.bin" -m "$T/src/meta.json"
    kit native-copy "$NATIVE_TEST/native_copy.so" "$T/copy.mender"
    expect_rc 0 "the kit on the native copy test module"
    grep -qx 'PASS ArtifactRollback-twice' "$RUN_OUT" || fail "native-copy: rollback idempotency not checked"
    kit native-copy-isolated "$NATIVE_TEST/native_copy.so" "$T/copy.mender" --isolated
    expect_rc 0 "the kit on the native copy test module, isolated"
    pass "the native copy test module passes, in-process and isolated"
fi

# ---- 1b. effects: the kit fails modules that do not do what they say ----------------------------
# A probe listing a folder's tree (paths, types, modes, SHA-256 of each file), as a module author
# would write one (docs/modules.md); the folder is the payload file dest_dir, else $PROBE_DIR.
TREE_PROBE='d=$(cat "$MOLT_KIT_PAYLOAD_DIR/dest_dir" 2>/dev/null || echo "$PROBE_DIR"); [ -d "$d" ] || exit 0; cd "$d" && find . -printf "%p %y %m %l\n" | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum'
# broken NAME MODULE ARTIFACT EXPECTED-FAIL-LINE (a grep -E pattern): the kit exits 1 with it.
broken() {
    rm -rf "$T/dest" && mkdir -p "$T/dest"
    kit "$1" "$2" "$3" --probe "$TREE_PROBE"
    expect_rc 1 "the kit on $1"
    grep -Eq "^$4" "$RUN_OUT" || fail "$1: no line '$4...' in the report"
    pass "the kit fails $1: $(grep -Em1 "^$4" "$RUN_OUT" | cut -c1-100)..."
}
export PROBE_DIR="$T/dest"
if [ -f "$NATIVE_TEST/broken_install.so" ]; then
    broken broken-install "$NATIVE_TEST/broken_install.so" "$T/copy.mender" \
        "FAIL effect-install: ArtifactInstall succeeded but the state did not change"
    broken broken-rollback "$NATIVE_TEST/broken_rollback.so" "$T/copy.mender" \
        'FAIL effect-rollback: after ArtifactRollback succeeded, the state is not the one before the install .*first difference: before "", after "\./payload\.bin f 644 "'
    broken broken-commit "$NATIVE_TEST/broken_commit.so" "$T/copy.mender" \
        'FAIL effect-kill-ArtifactCommit: after a power cut right after ArtifactCommit returned and `molt resume` \(molt rolls back: backups may be dropped only in Cleanup\), the state is not the one before the install'
    broken broken-lazy "$NATIVE_TEST/broken_lazy.so" "$T/copy.mender" \
        'FAIL effect-lazy-download-lost: after a power cut during Download that lost molt.s record of it, the state is not the one before the install'
    broken broken-lazy-commit "$NATIVE_TEST/broken_lazy_commit.so" "$T/copy.mender" \
        'FAIL effect-lazy-commit-lost: after a power cut right after ArtifactCommit returned that lost molt.s record of it, the state is not the one the install made'
    # The correct module passes with its effects verified.
    rm -rf "$T/dest" && mkdir -p "$T/dest"
    kit native-copy-effects "$NATIVE_TEST/native_copy.so" "$T/copy.mender" --probe "$TREE_PROBE"
    expect_rc 0 "the kit on the native copy module with a probe"
    for c in effect-install effect-rollback effect-commit effect-kill-ArtifactCommit checksum-end effect-checksum-end; do
        grep -qx "PASS $c" "$RUN_OUT" || fail "native-copy with a probe: no passing $c"
    done
    ! grep -q '^SKIP effect' "$RUN_OUT" || fail "native-copy with a probe: an effect check skipped"
    pass "the native copy module passes with its effects verified"
    # A module declaring MOLT_CAP_LAZY_COMMIT without an artifact_commit: no call to cut after,
    # so the kit says it skips lazy-commit-lost (and does not wait for a kill that never comes).
    rm -rf "$T/dest" && mkdir -p "$T/dest"
    kit lazy-no-commit "$NATIVE_TEST/lazy_no_commit.so" "$T/copy.mender" --probe "$TREE_PROBE"
    expect_rc 0 "the kit on a lazy-commit module without artifact_commit"
    grep -q '^SKIP lazy-commit-lost: ArtifactCommit is not implemented' "$RUN_OUT" ||
        fail "lazy-no-commit: lazy-commit-lost not skipped: $(grep lazy-commit "$RUN_OUT")"
    pass "the kit skips lazy-commit-lost, and says why, for a module without artifact_commit"
    # --expect-state: the digest the author expects after the install.
    mkdir -p "$T/expect" && cp "$T/src/payload.bin" "$T/expect/"
    want=$(PROBE_DIR="$T/expect" MOLT_KIT_PAYLOAD_DIR=/nonexistent sh -c "$TREE_PROBE" | sha256sum | cut -d' ' -f1)
    rm -rf "$T/dest" && mkdir -p "$T/dest"
    kit native-copy-expect "$NATIVE_TEST/native_copy.so" "$T/copy.mender" --probe "$TREE_PROBE" --expect-state "$want"
    expect_rc 0 "the kit with the right --expect-state"
    rm -rf "$T/dest" && mkdir -p "$T/dest"
    kit native-copy-expect-wrong "$NATIVE_TEST/native_copy.so" "$T/copy.mender" --probe "$TREE_PROBE" \
        --expect-state "$(printf x | sha256sum | cut -d' ' -f1)"
    expect_rc 1 "the kit with a wrong --expect-state"
    grep -q "^FAIL effect-install: ArtifactInstall succeeded but the state is not the expected one (probe digest $want" "$RUN_OUT" ||
        fail "a wrong --expect-state is not reported"
    pass "--expect-state: the right digest passes, a wrong one fails naming both"
fi
# A shell module whose ArtifactRollback exits 0 and restores nothing (SupportsRollback: Yes).
mkdir -p "$T/src/br"
printf '%s' "$T/dest/br" >"$T/src/br/dest_dir"
cp "$T/src/payload.bin" "$T/src/br/"
artifact "$T/br.mender" br-1 broken-rollback -f "$T/src/br/payload.bin" -f "$T/src/br/dest_dir"
broken broken-shell-rollback "$MOLT_SRC_DIR/tests/modules/broken-rollback" "$T/br.mender" \
    "FAIL effect-rollback: after ArtifactRollback succeeded, the state is not the one before the install"
# Without a probe the same module passes, with one loud SKIP: effects are not verified.
rm -rf "$T/dest" && mkdir -p "$T/dest"
kit broken-shell-rollback-noprobe "$MOLT_SRC_DIR/tests/modules/broken-rollback" "$T/br.mender"
expect_rc 0 "the kit on the broken shell module without a probe"
[ "$(grep -c '^SKIP effects: EFFECTS NOT VERIFIED' "$RUN_OUT")" = 1 ] || fail "no single SKIP effects line without a probe"
! grep -q '^PASS effect-' "$RUN_OUT" || fail "effect checks ran without a probe"
pass "without a probe: one SKIP line, effects not verified"
unset PROBE_DIR

# ---- 2. built-in modules ------------------------------------------------------------------------
# single-file and directory artifacts (Mender's layout: dest_dir, filename, update.tar) into $T/dest.
mkdir -p "$T/src/sf" "$T/src/dir/tree/sub" "$T/dest/sf" "$T/dest/dir"
printf 'kit release\n' >"$T/src/sf/motd"
printf '%s' "$T/dest/sf" >"$T/src/sf/dest_dir"
printf 'motd' >"$T/src/sf/filename"
artifact "$T/single-file.mender" sf-1 single-file -f "$T/src/sf/motd" -f "$T/src/sf/dest_dir" -f "$T/src/sf/filename"
printf 'a\n' >"$T/src/dir/tree/a.txt"
printf 'b\n' >"$T/src/dir/tree/sub/b.txt"
tar -C "$T/src/dir/tree" -cf "$T/src/dir/update.tar" .
printf '%s' "$T/dest/dir" >"$T/src/dir/dest_dir"
artifact "$T/directory.mender" dir-1 directory -f "$T/src/dir/update.tar" -f "$T/src/dir/dest_dir"

# Recipes: module file -> the artifacts it is tested with; its settings (kit --config) in
# $T/<module>.config. The file module writes only below its allowed roots.
printf 'modules:\n  file:\n    allowed_roots:\n      - %s\n' "$T/dest" >"$T/file.config"
recipe() {
    case $1 in
    file) echo "single-file directory" ;;
    rootfs-image) if [ -n "${ROOTFS_HOOK:-}" ]; then echo "rootfs-image"; fi ;;
    *) echo "" ;;
    esac
}
# rootfs-image on the simulated A/B device (tests/sim-bootloader): file partitions and a U-Boot
# environment file; a reboot is the simulated bootloader's boot (without its molt resume: the kit
# runs resume), so the kit's reboots and power cuts boot the partition the environment says.
SIM="$MOLT_SRC_DIR/tests/sim-bootloader/sim-bootloader"
rootfs_recipe() {
    "$SIM" create "$T/sim" --molt-build "$MOLT_BUILD_DIR" --redundant >/dev/null
    "$SIM" image "$T/rootfs-1.img" rootfs-1 >/dev/null
    mender-artifact write rootfs-image -f "$T/rootfs-1.img" -n rootfs-1 -t kit-device \
        -o "$T/rootfs-image.mender" >"$T/.ma.log" 2>&1 || { cat "$T/.ma.log" >&2; fail "rootfs artifact"; }
    sed -n '/^modules:/,$p' "$T/sim/molt.yaml" >"$T/rootfs-image.config"
    ROOTFS_HOOK="$SIM boot $T/sim --no-resume"
}
if [ -x "$SIM" ]; then rootfs_recipe; fi
no_recipe() {
    local own
    own=$(grep -l 'molt-module-test' "$MOLT_SRC_DIR"/tests/integration/test_*"$1"*.sh 2>/dev/null | head -n 1)
    if [ -n "$own" ]; then
        echo "the kit runs on it in $(basename "$own") (it needs a scratch root or engine set up there)"
    else
        echo "no conformance recipe in test_conformance.sh yet"
    fi
}
shopt -s nullglob
for so in "$MOLT_BUILD_DIR"/modules/native/*.so; do
    name=$(basename "$so" .so)
    arts=$(recipe "$name")
    if [ -z "$arts" ]; then
        echo "skip: built-in module $name: $(no_recipe "$name")"
        continue
    fi
    for a in $arts; do
        opts=()
        [ ! -f "$T/$name.config" ] || opts+=(--config "$T/$name.config")
        [ "$name" != rootfs-image ] || opts+=(--reboot-hook "$ROOTFS_HOOK")
        # The manifest installed beside the module (<name>.yaml) is checked when it is there.
        kit "builtin-$name-$a" "$so" "$T/$a.mender" "${opts[@]}"
        expect_rc 0 "built-in module $name with a $a artifact: a conformance check failed"
        grep -qx 'PASS manifest' "$RUN_OUT" || fail "built-in module $name: its manifest ($name.yaml beside it) was not checked"
        # Its manifest's probe: effects verified.
        ! grep -q '^SKIP effects' "$RUN_OUT" || fail "built-in module $name: effects not verified (no probe in $name.yaml)"
        for c in effect-install effect-commit effect-kill-ArtifactCommit effect-checksum-end; do
            grep -qx "PASS $c" "$RUN_OUT" || fail "built-in module $name with $a: no passing $c"
        done
        pass "built-in module $name passes the kit with a $a artifact"
    done
done

# ---- 3. community modules ---------------------------------------------------------------------------
cat >"$T/src/setup.sh" <<SH
#!/bin/sh
echo ran >>"$T/dest/script.out"
SH
artifact "$T/script.mender" script-1 script -f "$T/src/setup.sh"
findings=0
for m in single-file directory script deb rpm docker; do
    case $m in
    deb | rpm | docker)
        echo "skip: community module $m: it runs the real $([ $m = docker ] && echo 'Docker engine' || echo "$m package manager") and would change this machine"
        continue ;;
    esac
    [ -x "$COMMUNITY/$m" ] || { echo "skip: community module $m: not installed in $COMMUNITY"; continue; }
    # The probe a module author would write: the destination tree (dest_dir), or the file the
    # script writes.
    probe=$TREE_PROBE
    [ "$m" != script ] || probe="cat '$T/dest/script.out' 2>/dev/null || true"
    rm -rf "$T/dest" && mkdir -p "$T/dest/sf" "$T/dest/dir"
    kit "community-$m" "$COMMUNITY/$m" "$T/$m.mender" --probe "$probe"
    if [ "$RUN_RC" != 0 ]; then
        findings=$((findings + 1))
        echo "finding: community module $m fails $(grep -c '^FAIL' "$RUN_OUT") check(s); report kept in $REPORTS/community-$m.txt"
        grep '^FAIL' "$RUN_OUT" | sed "s/^/finding: $m: /"
    fi
    grep -qx 'PASS happy-path' "$RUN_OUT" || echo "finding: community module $m: no happy path"
done
pass "community modules checked ($findings with findings; reports in $REPORTS)"
