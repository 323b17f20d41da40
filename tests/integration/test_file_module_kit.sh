# SPDX-License-Identifier: Apache-2.0
# The conformance kit (molt-module-test, sdk/tester) on the file module, with its manifest
# (modules/file/module.yaml): every check must pass for each payload type it installs
# (single-file with the data before and after dest_dir/filename, and into a folder that exists,
# which is where a lost record of state Download is checked (MOLT_CAP_LAZY_DOWNLOAD), directory,
# and the file type
# with a file and a tree), including the kills in every state, a lost record of state
# ArtifactCommit (MOLT_CAP_LAZY_COMMIT, every artifact), Cleanup and ArtifactRollback
# twice, and the manifest against the descriptor, and the effects through the manifest's probe
# (the destination trees): install changes them, commit keeps them, every rollback, failure and
# kill before the commit and a checksum mismatch at the end of the payload leave them as before. test_conformance.sh runs the kit on the
# built-in modules too (single-file and directory, without the manifest); this adds the rest.
. "$(dirname "$0")/lib.sh"

KIT="$MOLT_BUILD_DIR/sdk/tester/molt-module-test"
FILE_SO="$MOLT_BUILD_DIR/modules/native/file.so"
[ -x "$KIT" ] || fail "the kit is not built: $KIT"
[ -f "$FILE_SO" ] || fail "file module not built: $FILE_SO"
RUN_TIMEOUT=$((MOLT_TEST_GUARD * 2))   # a guard against a hang
D="$T/dest"
mkdir -p "$D" "$T/sf" "$T/dir/tree/sub" "$T/ft"
export MOLT_FILE_ALLOWED_ROOTS="$D"

artifact() {  # OUT NAME TYPE [mender-artifact args...]
    local out=$1 name=$2 type=$3
    shift 3
    mender-artifact write module-image -T "$type" -n "$name" -t kit-device -o "$out" "$@" \
        >"$T/.ma.log" 2>&1 || { cat "$T/.ma.log" >&2; fail "mender-artifact write $name"; }
}

head -c 70000 /dev/urandom >"$T/sf/app.bin"
printf '%s\n' "$D/sf" >"$T/sf/dest_dir"
printf 'app.bin\n' >"$T/sf/filename"
printf '0640\n' >"$T/sf/permissions"
(cd "$T/sf" && artifact "$T/sf-data-first.mender" sf-1 single-file -f app.bin -f dest_dir -f filename -f permissions)
(cd "$T/sf" && artifact "$T/sf-meta-first.mender" sf-2 single-file -f dest_dir -f filename -f permissions -f app.bin)
printf 'a\n' >"$T/dir/tree/a.txt"
printf 'b\n' >"$T/dir/tree/sub/b.txt"
ln -s sub/b.txt "$T/dir/tree/link"
tar -C "$T/dir/tree" -cf "$T/dir/update.tar" .
printf '%s\n' "$D/dir" >"$T/dir/dest_dir"
(cd "$T/dir" && artifact "$T/directory.mender" dir-1 directory -f dest_dir -f update.tar)
cp "$T/sf/app.bin" "$T/ft/one.bin"
cp "$T/dir/update.tar" "$T/ft/tree.tar"
printf '{"entries": [{"path": "%s/ft/one.bin", "file": "one.bin", "mode": "0600"},
                     {"path": "%s/ft/tree", "tree": "tree.tar"}]}' "$D" "$D" >"$T/ft/meta.json"
(cd "$T/ft" && artifact "$T/file.mender" ft-1 file -f one.bin -f tree.tar -m meta.json)

cp "$T/sf-meta-first.mender" "$T/sf-folder-there.mender"
for a in sf-data-first sf-meta-first sf-folder-there directory file; do
    # Each run from empty destinations: an install of what is already there changes nothing,
    # and the kit's effect checks would say so. sf-folder-there: sf-meta-first into a folder
    # that exists (no folder made in Download).
    rm -rf "$D" && mkdir -p "$D"
    [ "$a" != sf-folder-there ] || mkdir "$D/sf"
    run_prog "$KIT" --manifest "$MOLT_SRC_DIR/modules/file/module.yaml" "$FILE_SO" "$T/$a.mender"
    echo "---- conformance report: file module, $a"
    cat "$RUN_OUT"
    expect_rc 0 "the kit on the file module with $a"
    for c in happy-path rollback manifest download-streaming answer-NeedsArtifactReboot \
        answer-SupportsRollback kill-Download kill-ArtifactInstall \
        kill-ArtifactCommit kill-ArtifactRollback kill-Cleanup ArtifactRollback-twice Cleanup-twice \
        checksum-end effect-checksum-end effect-install effect-rollback effect-happy-path-install \
        effect-commit effect-kill-ArtifactCommit effect-fail-ArtifactInstall effect-kill-Cleanup; do
        grep -qx "PASS $c" "$RUN_OUT" || fail "$a: no passing $c"
    done
    # MOLT_CAP_LAZY_DOWNLOAD: the record of state Download lost by a cut in Download leaves the
    # state before the install for a single file streamed after its control files into a folder
    # that exists (named nothing); the others name things in Download (a folder, a staged
    # payload, a tree: their kv plan), which made the record durable first.
    if [ "$a" = sf-folder-there ]; then
        for c in lazy-download-lost effect-lazy-download-lost; do
            grep -qx "PASS $c" "$RUN_OUT" || fail "$a: no passing $c"
        done
    else
        grep -q "^SKIP lazy-download-lost.*durable" "$RUN_OUT" || fail "$a: lazy-download-lost not skipped as durable"
    fi
    # MOLT_CAP_LAZY_COMMIT: whatever the plan, ArtifactCommit only sets a deployment value, so
    # the record of state ArtifactCommit is lazy for every artifact, and losing it leaves the
    # update awaiting its commit with the destinations as the install left them.
    for c in lazy-commit-lost effect-lazy-commit-lost; do
        grep -qx "PASS $c" "$RUN_OUT" || fail "$a: no passing $c"
    done
    ! grep -q '^FAIL' "$RUN_OUT" || fail "$a: a check failed"
    pass "the file module passes the kit with $a"
done

# On older hosts (--host-minor): ABI 1.1 has no deployment values and no keeps_state, so the
# single file is planned in the kv store and staged as a named sibling, and molt honours neither
# lazy record (its capability bits are 1.2's); 1.0 has no set_sink either. Every check passes
# but the lazy ones, which are skipped.
for minor in 1 0; do
    rm -rf "$D" && mkdir -p "$D" "$D/sf"
    run_prog "$KIT" --host-minor "$minor" --manifest "$MOLT_SRC_DIR/modules/file/module.yaml" \
        "$FILE_SO" "$T/sf-folder-there.mender"
    echo "---- conformance report: file module, sf-folder-there, host ABI 1.$minor"
    cat "$RUN_OUT"
    expect_rc 0 "the kit on the file module as a host of ABI 1.$minor"
    grep -q "^# host: molt as a host of ABI 1.$minor" "$RUN_OUT" || fail "1.$minor: no host line"
    for c in happy-path rollback kill-Download kill-ArtifactInstall kill-ArtifactCommit \
        checksum-end effect-install effect-rollback effect-kill-ArtifactCommit; do
        grep -qx "PASS $c" "$RUN_OUT" || fail "host 1.$minor: no passing $c"
    done
    for c in lazy-download-lost lazy-commit-lost; do
        grep -q "^SKIP $c: a host of ABI 1.$minor does not honour" "$RUN_OUT" ||
            fail "host 1.$minor: $c not skipped"
    done
    ! grep -q '^FAIL' "$RUN_OUT" || fail "host 1.$minor: a check failed"
    pass "the file module passes the kit as driven by a host of ABI 1.$minor"
done

# A minor the kit cannot play: usage error (2), named, nothing run.
run_prog "$KIT" --host-minor 99 "$FILE_SO" "$T/sf-folder-there.mender"
expect_rc 2 "--host-minor 99"
grep -Eq "host-minor: expected 0 to [0-9]+, got '99'" "$RUN_ERR" ||
    fail "--host-minor 99: no message naming the value"
! grep -q '^PASS\|^FAIL' "$RUN_OUT" || fail "--host-minor 99: checks ran"
pass "--host-minor 99 is refused with a message naming it"
