# SPDX-License-Identifier: Apache-2.0
# ctest-labels: slow
# Power loss with the file module (modules/file): molt dies of SIGKILL (the module's test-only knob
# MOLT_FILE_TEST_KILL, see docs/file-module.md) after N payload bytes for several N, and at every
# named point inside the activation, the swap, the rollback, the commit and the cleanup. Right
# after the kill each destination must already be exactly its old or exactly its new content (a
# reader never sees a mix; the documented non-atomic fallback for file systems without
# RENAME_EXCHANGE is the one exception, checked as such; the file type activates its entries one
# after the other, so right after a cut some may be new and others old); then `molt resume` must
# leave all of them exactly old (a cut before the commit: rollback) or exactly new (a cut after),
# nothing of the module's siblings (.NAME.molt-*) behind, and molt idle; also when the cut lost
# the module tree's name (LOSE_TREE=1: a native module's tree is made without fsyncs), and when
# it lost the store's record of state Download, which the host writes without fdatasync for the
# file module (MOLT_CAP_LAZY_DOWNLOAD) until the module names something (LOSE_RECORD=lazy: the
# record was still lazy at the cut, so the cut may lose it: the store is put back as before the
# install, and the device must be as before, molt idle; LOSE_RECORD=durable: the module named
# something in Download, so the record must have been made durable), and when it lost the
# store's record of state ArtifactCommit (MOLT_CAP_LAZY_COMMIT, lost_commit below: the update
# awaits its commit again, the device as the install left it).
# Artifacts: single-file (control files first: streamed into an unnamed file next to the
# destination, kept open and unnamed, its plan in the deployment values, linked as its sibling
# in ArtifactInstall, exchanged with it by RENAME_EXCHANGE; data first: staged, then moved), directory (tar streamed into a sibling tree, swapped with RENAME_EXCHANGE), and the
# file type with a file and a tree.
# The cases of one artifact are a scenario (lib.sh; each builds its reference content first):
# `bash test_file_module_power.sh dir` runs the cuts of the directory artifact; "fallback" those of
# a file system without RENAME_EXCHANGE and O_TMPFILE (NO_EXCHANGE=1: link and rename for a file,
# two renames for a tree, a named staged file).
# ctest: scenarios
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

FILE_SO="$MOLT_BUILD_DIR/modules/native/file.so"
ROOT="$T/root"
DEST="$ROOT/dest"

factory() {
    rm -rf "$DEST"
    mkdir -p "$DEST/tree/sub"
    cp "$T/factory-app.bin" "$DEST/app.bin"
    printf 'old tree\n' >"$DEST/tree/sub/old.txt"
    printf 'old top\n' >"$DEST/tree/top.txt"
}

# Entries of a tree (type, mode, size, link target); SKIP=1 leaves out the module's siblings.
listing() {  # DIR
    (cd "$1" && find . -printf '%p %y %m %s %l\n' | { if [ "${SKIP:-0}" = 1 ]; then grep -v '/\.[^/]*\.molt-[a-z]*[ /]'; else cat; fi; } | sort)
}

is_same() {  # A B
    local x=()
    [ "${SKIP:-0}" = 1 ] && x=(-x '.*.molt-*')
    diff -r --no-dereference "${x[@]}" "$1" "$2" >/dev/null 2>&1 && diff <(listing "$1") <(listing "$2") >/dev/null
}

# A file (content and mode) or a tree (is_same, siblings aside).
same_path() {  # A B
    if [ -d "$1" ] && [ ! -L "$1" ]; then
        [ -d "$2" ] && SKIP=1 is_same "$1" "$2"
    else
        [ -f "$2" ] && cmp -s "$1" "$2" && [ "$(stat -c %a "$1")" = "$(stat -c %a "$2")" ]
    fi
}

# ---- artifacts -----------------------------------------------------------------------------------
file_power_setup() {
[ -f "$FILE_SO" ] || fail "file module not built: $FILE_SO"
mkdir -p "$ROOT" "$T/sf" "$T/sfd" "$T/dir" "$T/ft"
head -c 200000 /dev/urandom >"$T/factory-app.bin"
export MOLT_FILE_ALLOWED_ROOTS="$ROOT"
device_new native dev-a
device_add_file_module "$DEV/native"
device_config "native_module_dir: $DEV/native"
head -c 300000 /dev/urandom >"$T/sf/app.bin"
printf '%s\n' "$DEST" >"$T/sf/dest_dir"
printf 'app.bin\n' >"$T/sf/filename"
printf '0600\n' >"$T/sf/permissions"
cp "$T/sf/"* "$T/sfd/"
(cd "$T/sf" && make_artifact "$T/sf.mender" sf-1 single-file -f dest_dir -f filename -f permissions -f app.bin)
(cd "$T/sfd" && make_artifact "$T/sfd.mender" sfd-1 single-file -f app.bin -f dest_dir -f filename)
mkdir -p "$T/newtree/bin" "$T/newtree/etc"
head -c 250000 /dev/urandom >"$T/newtree/bin/tool"
printf 'new\n' >"$T/newtree/etc/conf"
ln -s ../bin/tool "$T/newtree/etc/tool"
tar -cf "$T/dir/update.tar" -C "$T/newtree" .
printf '%s\n' "$DEST/tree" >"$T/dir/dest_dir"
(cd "$T/dir" && make_artifact "$T/dir.mender" dir-1 directory -f dest_dir -f update.tar)
cp "$T/sf/app.bin" "$T/ft/one.bin"
cp "$T/dir/update.tar" "$T/ft/tree.tar"
printf '{"entries": [{"path": "%s/app.bin", "file": "one.bin", "mode": "0640"},
                     {"path": "%s/tree", "tree": "tree.tar"}]}' "$DEST" "$DEST" >"$T/ft/meta.json"
(cd "$T/ft" && make_artifact "$T/ft.mender" ft-1 file -f one.bin -f tree.tar -m meta.json)

factory
snapshot_old="$T/old"
rm -rf "$snapshot_old" && cp -a "$DEST" "$snapshot_old"
}

# The new content of artifact A ($T/new-A): installed and committed without a cut (once).
reference() {  # A
    local a=$1
    [ ! -d "$T/new-$a" ] || return 0
    factory
    molt_dev install "$T/$a.mender"
    expect_rc 0 "install $a (reference run)"
    molt_dev commit
    expect_rc 0 "commit $a (reference run)"
    rm -rf "$T/new-$a" && cp -a "$DEST" "$T/new-$a"
    is_same "$snapshot_old" "$T/new-$a" && fail "$a: the update changes nothing"
    return 0
}

# The sync mark of the store's newest record: l (lazy: written without fdatasync) or d.
newest_mark() {  # STORE
    python3 - "$1" <<'PY'
import sys
b = open(sys.argv[1], 'rb').read()
half = len(b) // 2
best = None
for i in (0, 1):
    h = b[i * half:i * half + 64].split()
    if len(h) >= 5 and h[0] == b'molt-slots' and (best is None or int(h[2], 16) > best[0]):
        best = (int(h[2], 16), h[4].decode())
print(best[1] if best else '-')
PY
}

# The end of a case: the destinations exactly REF (WANT names it), no sibling (.NAME.molt-*)
# left, molt idle.
expect_end() {  # WHAT REF WANT
    if ! is_same "$2" "$DEST"; then
        diff <(listing "$2") <(listing "$DEST") >&2 || true
        cat "$RUN_ERR" >&2
        fail "$1: the destination is not exactly $3"
    fi
    local left
    left=$(find "$ROOT" -name '.*.molt-*')
    [ -z "$left" ] || fail "$1: left behind: $left"
    assert_eq idle "$(dev_state)" "$1: state"
}

# power CASE ARTIFACT WANT STEP...   STEP: install | commit | rollback, or COMMAND@KNOB where the
# run is cut by MOLT_FILE_TEST_KILL=KNOB; then `molt resume`; WANT: old | new.
# NO_EXCHANGE=1 in the environment of the call forces the rename fallback.
power() {
    local name=$1 art=$2 want=$3 step cmd knob rc cut=0 lost=0
    shift 3
    scenario "$([ "${NO_EXCHANGE:-0}" = 1 ] && echo fallback || echo "$art")" || return 0
    once file_power_setup
    reference "$art"
    factory
    for step in "$@"; do
        cmd=${step%%@*}
        args=("$cmd")
        [ "$cmd" = install ] && args+=("$T/$art.mender")
        if [[ $step == *@* ]]; then
            knob=${step#*@}
            cut=1
            rc=0
            [ -z "${LOSE_RECORD:-}" ] || cp "$DEV_STORE" "$T/store.before"
            # (through sh, so that bash does not print "Killed")
            MOLT_FILE_TEST_KILL=$knob MOLT_FILE_TEST_NO_EXCHANGE=${NO_EXCHANGE:-0} \
                sh -c '"$@"; exit $?' sh timeout -k 5 "$MOLT_TIMEOUT" "$MOLT" --config "$DEV_CONF" \
                "${args[@]}" >"$T/cut.out" 2>"$T/cut.err" || rc=$?
            if [ "$rc" != 137 ]; then
                cat "$T/cut.err" >&2
                fail "power $name: $cmd with $knob: exit $rc, expected a SIGKILL (137)"
            fi
            if [ -n "${LOSE_RECORD:-}" ]; then
                local mark
                mark=$(newest_mark "$DEV_STORE")
                case "$LOSE_RECORD/$mark" in
                lazy/l)  # the cut loses the record: the store as before the install
                    cp "$T/store.before" "$DEV_STORE"
                    lost=1
                    assert_eq idle "$(dev_state)" "power $name: state after losing the lazy record" ;;
                durable/d) ;;
                *) fail "power $name: the store's newest record is '$mark', expected $LOSE_RECORD" ;;
                esac
            fi
            # At the instant of the cut: old or new, never a mix, never missing (the staged
            # siblings .NAME.molt-* next to the destination aside).
            # Each destination on its own: the file type activates its entries one by one.
            for d in app.bin tree; do
                if ! same_path "$snapshot_old/$d" "$DEST/$d" && ! same_path "$T/new-$art/$d" "$DEST/$d"; then
                    if [ "${NO_EXCHANGE:-0}" = 1 ] && [ "$d" = tree ] && [ ! -e "$DEST/tree" ]; then
                        : # the documented window of the rename fallback
                    else
                        SKIP=1 listing "$DEST" >&2
                        fail "power $name: right after the cut $d is neither old nor new"
                    fi
                fi
            done
        else
            MOLT_FILE_TEST_NO_EXCHANGE=${NO_EXCHANGE:-0} molt_dev "${args[@]}"
            expect_rc 0 "power $name: $cmd"
        fi
    done
    if [ "$cut" = 1 ]; then
        # LOSE_TREE=1: the cut also lost the module tree's name, which a native module's tree
        # does not make durable (core/host/worktree.h): Cleanup must run all the same.
        [ "${LOSE_TREE:-0}" = 1 ] && rm -rf "$DEV_DATA/modules/v3/payloads/0000/tree"
        molt_dev resume
        if [ "$lost" = 1 ]; then   # the deployment never was
            expect_rc 2 "power $name: resume after the record was lost"
            grep -q "no update in progress" "$RUN_OUT" ||
                { cat "$RUN_OUT" "$RUN_ERR" >&2; fail "power $name: resume found a deployment"; }
        fi
        [ "$RUN_RC" = 0 ] || [ "$RUN_RC" = 1 ] || [ "$lost" = 1 ] ||
            { cat "$RUN_ERR" >&2; fail "power $name: resume exit $RUN_RC"; }
    fi
    local ref="$snapshot_old"
    [ "$want" = new ] && ref="$T/new-$art"
    expect_end "power $name, after resume" "$ref" "the $want content"
    pass "power loss: $name -> $want content"
}

# Cuts inside the write (Download), for several N.
for n in 1 65536 150001 299999; do
    power "sf bytes=$n" sf old install@bytes=$n
    power "sf data-first bytes=$n" sfd old install@bytes=$n
done
for n in 1 10240 200000; do
    power "dir bytes=$n" dir old install@bytes=$n
    power "file type bytes=$n" ft old install@bytes=$n
done
# The record of state Download, lazy for the file module, lost by the cut: the deployment never
# was (nothing named: the file unnamed, its plan in the deployment values). Where the module
# names things in Download (data first, a tree, the fallback), its first kv_set or tmp_dir()
# made the record durable first.
LOSE_RECORD=lazy power "sf bytes=65536, Download record lost" sf old install@bytes=65536
LOSE_RECORD=lazy power "sf planned-dep, Download record lost" sf old install@at=planned-dep
LOSE_RECORD=lazy power "sf staged, Download record lost" sf old install@at=staged
LOSE_RECORD=lazy power "sf next update staged, Download record lost" sf new install commit install@at=staged
LOSE_RECORD=durable power "sf data-first staged, Download record durable" sfd old install@at=staged
LOSE_RECORD=durable power "dir staged, Download record durable" dir old install@at=staged
LOSE_RECORD=durable power "file type staged, Download record durable" ft old install@at=staged
LOSE_RECORD=durable NO_EXCHANGE=1 power "sf fallback staged, Download record durable" sf old install@at=staged
# The same with the module tree's name lost by the cut.
LOSE_TREE=1 power "sf bytes=65536, tree lost" sf old install@bytes=65536
LOSE_TREE=1 power "dir bytes=10240, tree lost" dir old install@bytes=10240
power "sf staged" sf old install@at=staged
power "sf data-first staged" sfd old install@at=staged
# The plan saved with the unnamed file's inode, the file not linked yet: nothing to remove. A
# single file: the plan in the deployment values (lost with the process), the file unnamed until
# ArtifactInstall; cut when ArtifactInstall began (recorded, the file gone with the process:
# the rollback path finds nothing changed), and right after the link.
power "sf planned-dep" sf old install@at=planned-dep
power "file type planned-unnamed" ft old install@at=planned-unnamed
power "sf install-begin" sf old install@at=install-begin
power "sf linked-staged" sf old install@at=linked-staged
# Cuts inside the activation and the swap.
power "sf exchanged" sf old install@at=exchanged
power "sf data-first exchanged" sfd old install@at=exchanged
power "sf installed" sf old install@at=installed-one
power "dir exchanged" dir old install@at=exchanged
power "dir installed" dir old install@at=installed-one
power "file type after the first entry" ft old install@at=installed-one
power "file type tree exchanged" ft old install@at=exchanged
# Rollback cut in the middle of its own swap, and repeated by resume.
power "dir rollback exchanged" dir old install rollback@at=rollback-exchanged
power "ft rollback exchanged" ft old install rollback@at=rollback-exchanged
power "sf rollback then cleanup cut" sf old install rollback@at=cleanup
power "sf rollback then cleanup-begin cut" sf old install rollback@at=cleanup-begin
# Commit: marked, then the backup deleted by Cleanup.
power "sf committed" sf old install commit@at=committed
power "dir committed" dir old install commit@at=committed
power "ft committed" ft old install commit@at=committed
power "sf cleanup-begin" sf new install commit@at=cleanup-begin
power "sf cleanup" sf new install commit@at=cleanup
power "dir cleanup-begin" dir new install commit@at=cleanup-begin
power "dir cleanup-trashed" dir new install commit@at=cleanup-trashed
power "ft cleanup-begin" ft new install commit@at=cleanup-begin
power "ft cleanup" ft new install commit@at=cleanup
# The next update cut in its Download, while the kv store still holds the committed plan.
power "sf next update cut, bytes=65536" sf new install commit install@bytes=65536
power "ft next update cut, bytes=10240" ft new install commit install@bytes=10240
power "dir next update cut, staged" dir new install commit install@at=staged
# Without RENAME_EXCHANGE and O_TMPFILE: the staged file named before it is written, the backup
# of a file a hard link, a tree moved aside (cut between its two renames).
NO_EXCHANGE=1 power "sf fallback bytes=65536" sf old install@bytes=65536
NO_EXCHANGE=1 power "sf fallback staged" sf old install@at=staged
NO_EXCHANGE=1 power "sf fallback linked" sf old install@at=linked
NO_EXCHANGE=1 power "sf fallback installed" sf old install@at=installed-one
NO_EXCHANGE=1 power "sf fallback rollback" sf old install rollback
NO_EXCHANGE=1 power "sf fallback committed" sf old install commit@at=committed
NO_EXCHANGE=1 power "sf fallback cleanup-begin" sf new install commit@at=cleanup-begin
NO_EXCHANGE=1 power "sf fallback commit" sf new install commit
NO_EXCHANGE=1 power "sf fallback next update cut" sf new install commit install@bytes=65536
NO_EXCHANGE=1 power "dir fallback cut" dir old install@at=fallback-aside
NO_EXCHANGE=1 power "dir fallback rollback cut" dir old install rollback@at=fallback-aside
NO_EXCHANGE=1 power "dir fallback commit" dir new install commit
NO_EXCHANGE=1 power "ft fallback staged" ft old install@at=staged
NO_EXCHANGE=1 power "ft fallback cleanup-begin" ft new install commit@at=cleanup-begin
# The fallback says so in the log.
if scenario fallback; then
once file_power_setup
reference dir
factory
MOLT_FILE_TEST_NO_EXCHANGE=1 molt_dev install "$T/dir.mender"
expect_rc 0 "install dir with the rename fallback"
grep -q "has no renameat2(RENAME_EXCHANGE) .*NOT ATOMIC" "$RUN_ERR" ||
    { cat "$RUN_ERR" >&2; fail "the rename fallback is not logged"; }
molt_dev commit
expect_rc 0 "commit dir after the rename fallback"
is_same "$T/new-dir" "$DEST" || fail "the rename fallback did not install the new tree"
pass "the rename fallback warns in the log (NOT ATOMIC) and installs"
fi
# The record of state ArtifactCommit, lazy for the file module (MOLT_CAP_LAZY_COMMIT: its
# ArtifactCommit only sets a deployment value, whatever the plan), lost by a cut right after the
# module's commit mark (the knob "committed"): the store is put back as the install left it. The
# update awaits its commit again (`molt status`), the destinations exactly as the install left
# them (the new content and its backups), and a commit, a rollback or a resume (which commits an
# update awaiting its commit) ends it. A cut that keeps the record rolls back ("sf committed"
# above).
# lost_commit CASE ARTIFACT END   END: commit | rollback | resume; NO_EXCHANGE=1 as for power.
lost_commit() {
    local name=$1 art=$2 end=$3 rc=0 ref="$T/new-$2"
    scenario "$([ "${NO_EXCHANGE:-0}" = 1 ] && echo fallback || echo "$art")" || return 0
    once file_power_setup
    reference "$art"
    factory
    [ "$end" = rollback ] && ref="$snapshot_old"
    MOLT_FILE_TEST_NO_EXCHANGE=${NO_EXCHANGE:-0} molt_dev install "$T/$art.mender"
    expect_rc 0 "lost commit record, $name: install"
    rm -rf "$T/installed" && cp -a "$DEST" "$T/installed"
    cp "$DEV_STORE" "$T/store.before"
    MOLT_FILE_TEST_KILL=at=committed sh -c '"$@"; exit $?' sh timeout -k 5 "$MOLT_TIMEOUT" \
        "$MOLT" --config "$DEV_CONF" commit >"$T/cut.out" 2>"$T/cut.err" || rc=$?
    [ "$rc" = 137 ] ||
        { cat "$T/cut.err" >&2; fail "lost commit record, $name: commit exit $rc, expected a SIGKILL (137)"; }
    assert_eq l "$(newest_mark "$DEV_STORE")" "lost commit record, $name: the newest record's mark"
    cp "$T/store.before" "$DEV_STORE"
    assert_eq awaiting-commit "$(dev_state)" "lost commit record, $name: state"
    if ! is_same "$T/installed" "$DEST"; then
        diff <(listing "$T/installed") <(listing "$DEST") >&2 || true
        fail "lost commit record, $name: the destinations are not as the install left them"
    fi
    molt_dev "$end"
    expect_rc 0 "lost commit record, $name: $end"
    expect_end "lost commit record, $name, after $end" "$ref" "the $([ "$end" = rollback ] && echo old || echo new) content"
    pass "power loss: $name: the record of state ArtifactCommit lost, then $end"
}
lost_commit "sf, then commit" sf commit
lost_commit "sf, then rollback" sf rollback
lost_commit "sf, then resume" sf resume
lost_commit "sf data-first, then commit" sfd commit
lost_commit "dir, then commit" dir commit
lost_commit "dir, then rollback" dir rollback
lost_commit "ft, then resume" ft resume
lost_commit "ft, then rollback" ft rollback
NO_EXCHANGE=1 lost_commit "sf fallback, then commit" sf commit
NO_EXCHANGE=1 lost_commit "sf fallback, then rollback" sf rollback
# The commit mark is a deployment value: saved with the record of state Cleanup (no file in
# tmp_dir()), so a cut in Cleanup finds it (the backup removed by the resumed Cleanup, "sf
# cleanup-begin" above) and a cut before finds neither ("sf committed").
if scenario sf; then
once file_power_setup
reference sf
factory
molt_dev install "$T/sf.mender"
expect_rc 0 "install sf (commit mark)"
MOLT_FILE_TEST_KILL=at=cleanup-begin sh -c '"$@"; exit $?' sh timeout -k 5 "$MOLT_TIMEOUT" \
    "$MOLT" --config "$DEV_CONF" commit >"$T/cut.out" 2>"$T/cut.err" || true
[ ! -e "$DEV_DATA/modules/v3/payloads/0000/tree/tmp/committed" ] || fail "a commit mark file in tmp_dir()"
grep -aq '"module_values":{[^}]*"committed":"31"' "$DEV_STORE" ||
    fail "commit mark: not in the store's record of state Cleanup: $(grep -a module_values "$DEV_STORE")"
molt_dev resume
expect_rc 0 "resume (commit mark in the record)"
[ ! -e "$DEST/.app.bin.molt-new" ] || fail "commit mark in the record: the backup was kept"
cmp -s "$DEST/app.bin" "$T/new-sf/app.bin" || fail "commit mark in the record: the new file is not in place"
pass "the commit mark is saved with the record of state Cleanup, not in tmp_dir()"
fi
# A deployment begun with the plan in the kv store (an isolated module: the file named in
# Download, as the module did before the deployment values), finished by the in-process module
# (molt upgraded, or the configuration changed, in the middle): the kv plan is honoured, by the
# commit and by the rollback.
if scenario sf; then
once file_power_setup
reference sf
conf=$DEV_CONF
cp "$conf" "$T/iso.yaml"
printf '%s\n' "native_isolated_modules:" "  - $DEV/native/file.so" >>"$T/iso.yaml"
for end in commit rollback; do
    factory
    DEV_CONF=$T/iso.yaml molt_dev install "$T/sf.mender"
    expect_rc 0 "install sf isolated (kv plan)"
    [ -e "$DEV_DATA/native/file/kv/plan" ] || fail "kv plan: an isolated install did not use the kv store"
    [ -e "$DEST/.app.bin.molt-new" ] || fail "kv plan: no backup after the isolated install"
    molt_dev "$end"
    expect_rc 0 "$end in-process after an isolated install"
    want="$T/new-sf"
    [ "$end" = rollback ] && want="$snapshot_old"
    is_same "$want" "$DEST" || fail "kv plan: $end in-process did not leave the expected content"
    assert_eq idle "$(dev_state)" "kv plan: state after $end"
done
DEV_CONF=$conf
pass "a deployment with its plan in the kv store is finished by the in-process module (commit, rollback)"
fi
scenarios_end
