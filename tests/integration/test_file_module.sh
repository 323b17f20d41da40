# SPDX-License-Identifier: Apache-2.0
# ctest-labels: root
# The file module (modules/file, native) through the real `molt` program:
#  - artifacts written by `mender-artifact write module-image -T single-file` (files dest_dir,
#    filename, permissions; in both orders: data first, control files first) and `-T directory`
#    (update.tar + dest_dir) install with molt + the file module, and the destination equals what
#    Mender's community module leaves when molt runs it through the exec host from the same artifact
#    (diff -r, and type/mode/owner/symlink target of every entry); rollback gives back the exact
#    previous tree; nothing of the module (.NAME.molt-*) is left behind;
#  - the payload type `file`: several entries (files and a tree) with mode, owner and group in
#    meta-data; install + commit, and install + rollback;
#  - refusals, nothing written: destinations outside the allowed roots or with "..", no allowed
#    roots at all, tars with absolute names, "..", symlinks out of the tree, device nodes, fifos;
#    a payload that does not fit on the destination's file system (a 1 MiB tmpfs, in a private
#    mount namespace), with the numbers in the message;
#  - a file arriving before dest_dir, with a destination on another file system (that tmpfs):
#    staged in molt's data dir, then copied.
# Allowed roots come from molt.yaml (`modules: file: allowed_roots:`), or from
# MOLT_FILE_ALLOWED_ROOTS when that is not set (docs/file-module.md); both are used here.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

FILE_SO="$MOLT_BUILD_DIR/modules/native/file.so"
[ -f "$FILE_SO" ] || fail "file module not built: $FILE_SO"
for m in single-file directory; do
    [ -x "/usr/share/mender/modules/v3/$m" ] || fail "community module $m not installed (mender-client)"
done

ROOT="$T/root"            # the only allowed root
DEST="$ROOT/dest"
mkdir -p "$ROOT" "$T/src" "$T/empty-native"
unset MOLT_FILE_ALLOWED_ROOTS

# Two devices: "native" runs the file module; "exec" has no native module, so molt runs the
# community modules of /usr/share/mender/modules/v3 through its exec host.
device_new exec dev-a
device_config "native_module_dir: $T/empty-native"
EXEC_CONF=$DEV_CONF
device_new native dev-a
device_add_file_module "$DEV/native"
device_config "native_module_dir: $DEV/native" "modules:" "  file:" "    allowed_roots:" \
    "      - $T/does-not-exist" "      - $ROOT"
NATIVE_CONF=$DEV_CONF

use() {  # exec|native
    if [ "$1" = exec ]; then DEV_CONF=$EXEC_CONF; else DEV_CONF=$NATIVE_CONF; fi
    DEV_DATA="$(dirname "$DEV_CONF")/data"
}

# What the destination holds before an update.
factory() {
    rm -rf "$DEST"
    mkdir -p "$DEST/tree/sub" "$DEST/files"
    printf 'factory\n' >"$DEST/files/app.conf"
    chmod 0640 "$DEST/files/app.conf"
    printf 'old tree\n' >"$DEST/tree/sub/old.txt"
    ln -s sub/old.txt "$DEST/tree/link"
}

# A listing of a tree: every entry with type, mode, owner, group, size and symlink target.
listing() {  # DIR
    (cd "$1" && find . -printf '%p %y %m %u %g %s %l\n' | sort)
}

snapshot() {  # DIR OUT
    rm -rf "$2"
    cp -a "$1" "$2"
}

same_tree() {  # A B WHAT
    diff -r --no-dereference "$1" "$2" >"$T/diff.out" 2>&1 || { cat "$T/diff.out" >&2; fail "$3: contents differ"; }
    diff <(listing "$1") <(listing "$2") >&2 || fail "$3: types, modes or owners differ"
}

no_leftovers() {  # WHAT
    local left
    left=$(find "$ROOT" -name '.*.molt-*')
    [ -z "$left" ] || fail "$1: the module left $left"
}

# install + commit on one device; the destination afterwards in OUT.
install_commit() {  # exec|native ARTIFACT OUT
    use "$1"
    factory
    molt_dev install "$2"
    expect_rc 0 "$1: install $(basename "$2")"
    if [ "$1" = native ]; then
        grep -q "with $DEV/native/file.so" "$RUN_ERR" || fail "$2: molt did not use the native file module"
    else
        grep -q "with /usr/share/mender/modules/v3/" "$RUN_ERR" || fail "$2: molt did not use the community module"
    fi
    molt_dev commit
    expect_rc 0 "$1: commit $(basename "$2")"
    snapshot "$DEST" "$3"
}

compare_install() {  # ARTIFACT WHAT
    install_commit exec "$1" "$T/after.exec"
    install_commit native "$1" "$T/after.native"
    same_tree "$T/after.exec" "$T/after.native" "$2: molt's file module vs the community module"
    no_leftovers "$2"
    pass "$2: same result as the community module"
}

rollback_check() {  # ARTIFACT WHAT
    use native
    factory
    snapshot "$DEST" "$T/before"
    molt_dev install "$1"
    expect_rc 0 "install $(basename "$1") (for rollback)"
    ! diff -rq "$DEST" "$T/before" >/dev/null || fail "$2: install changed nothing"
    molt_dev rollback
    expect_rc 0 "rollback $(basename "$1")"
    same_tree "$T/before" "$DEST" "$2: after rollback"
    no_leftovers "$2 (rollback)"
    pass "$2: rollback gives back the exact previous content"
}

# ---- single-file ---------------------------------------------------------------------------------
head -c 1000003 /dev/urandom >"$T/src/app.conf"
printf '%s\n' "$DEST/files" >"$T/src/dest_dir"
printf 'app.conf\n' >"$T/src/filename"
printf '0755\n' >"$T/src/permissions"
(cd "$T/src" && make_artifact "$T/sf-data-first.mender" sf-1 single-file \
    -f app.conf -f dest_dir -f filename -f permissions)
(cd "$T/src" && make_artifact "$T/sf-meta-first.mender" sf-2 single-file \
    -f dest_dir -f filename -f permissions -f app.conf)
(cd "$T/src" && make_artifact "$T/sf-noperm.mender" sf-3 single-file -f dest_dir -f filename -f app.conf)
# a new file in a folder that does not exist yet
printf '%s\n' "$DEST/new/deeper" >"$T/src/dest_dir2"
mkdir -p "$T/src2" && cp "$T/src/app.conf" "$T/src2/app.conf" && cp "$T/src/dest_dir2" "$T/src2/dest_dir" &&
    cp "$T/src/filename" "$T/src2/filename"
(cd "$T/src2" && make_artifact "$T/sf-new.mender" sf-4 single-file -f dest_dir -f filename -f app.conf)

compare_install "$T/sf-data-first.mender" "single-file, data before dest_dir/filename/permissions"
cmp "$T/src/app.conf" "$DEST/files/app.conf" || fail "single-file: content differs from the artifact's"
assert_eq 755 "$(stat -c %a "$DEST/files/app.conf")" "single-file: permissions applied"
compare_install "$T/sf-meta-first.mender" "single-file, dest_dir/filename/permissions first (streamed)"
compare_install "$T/sf-noperm.mender" "single-file without permissions"
compare_install "$T/sf-new.mender" "single-file into a new folder"
rollback_check "$T/sf-meta-first.mender" "single-file"
rollback_check "$T/sf-new.mender" "single-file that did not exist before"

# ---- directory -----------------------------------------------------------------------------------
mk_tree() {  # DIR
    mkdir -p "$1/bin" "$1/etc/conf.d" "$1/empty"
    head -c 300000 /dev/urandom >"$1/bin/tool"
    chmod 0750 "$1/bin/tool"
    printf 'a=1\n' >"$1/etc/conf.d/a.conf"
    chmod 0600 "$1/etc/conf.d/a.conf"
    ln -s ../bin/tool "$1/etc/tool-link"
    ln "$1/etc/conf.d/a.conf" "$1/etc/hard.conf"
    chmod 0711 "$1/empty"
    chmod 0755 "$1"
}
mk_tree "$T/tree1"
mkdir -p "$T/dsrc"
tar -cf "$T/dsrc/update.tar" -C "$T/tree1" .
printf '%s\n' "$DEST/tree" >"$T/dsrc/dest_dir"
(cd "$T/dsrc" && make_artifact "$T/dir-tar-first.mender" dir-1 directory -f update.tar -f dest_dir)
(cd "$T/dsrc" && make_artifact "$T/dir-meta-first.mender" dir-2 directory -f dest_dir -f update.tar)
printf '%s\n' "$DEST/fresh-tree" >"$T/dsrc/dest_dir"
(cd "$T/dsrc" && make_artifact "$T/dir-new.mender" dir-3 directory -f dest_dir -f update.tar)

compare_install "$T/dir-tar-first.mender" "directory, update.tar before dest_dir"
same_tree "$T/tree1" "$DEST/tree" "directory: the tree equals the one that was packed"
compare_install "$T/dir-meta-first.mender" "directory, dest_dir first (streamed)"
compare_install "$T/dir-new.mender" "directory into a new folder"
rollback_check "$T/dir-meta-first.mender" "directory"
rollback_check "$T/dir-new.mender" "directory that did not exist before"

# ---- the file type: entries in meta-data ---------------------------------------------------------
mkdir -p "$T/fsrc"
head -c 200000 /dev/urandom >"$T/fsrc/one.bin"
printf 'two\n' >"$T/fsrc/two.txt"
tar -cf "$T/fsrc/tree.tar" -C "$T/tree1" .
cat >"$T/fsrc/meta.json" <<JSON
{"entries": [
  {"path": "$DEST/files/app.conf", "file": "one.bin", "mode": "0604", "owner": "nobody", "group": 0},
  {"path": "$DEST/files/./two.txt", "file": "two.txt", "mode": 416},
  {"path": "$DEST/tree", "tree": "tree.tar", "mode": "0700", "owner": "0", "group": "nogroup"}
]}
JSON
(cd "$T/fsrc" && make_artifact "$T/file-1.mender" file-1 file -f tree.tar -f one.bin -f two.txt -m meta.json)
use native
factory
molt_dev install "$T/file-1.mender"
expect_rc 0 "install file-1"
molt_dev commit
expect_rc 0 "commit file-1"
cmp "$T/fsrc/one.bin" "$DEST/files/app.conf" || fail "file type: one.bin not installed"
assert_eq "604 nobody root" "$(stat -c '%a %U %G' "$DEST/files/app.conf")" "file type: mode/owner of app.conf"
assert_eq "640 root root" "$(stat -c '%a %U %G' "$DEST/files/two.txt")" "file type: mode of two.txt"
assert_eq "700 root nogroup" "$(stat -c '%a %U %G' "$DEST/tree")" "file type: mode/owner of the tree"
diff -r --no-dereference "$T/tree1" "$DEST/tree" >&2 || fail "file type: tree content"
no_leftovers "file type"
pass "file type: files and a tree with mode, owner and group from meta-data"
rollback_check "$T/file-1.mender" "file type (three entries)"

# ---- refusals: nothing written ---------------------------------------------------------------------
refused() {  # ARTIFACT REGEX WHAT
    use native
    factory
    snapshot "$ROOT" "$T/root.before"
    molt_dev install "$1"
    expect_rc 1 "$3: install must fail"
    grep -qE "$2" "$RUN_ERR" || { cat "$RUN_ERR" >&2; fail "$3: no message matching /$2/"; }
    same_tree "$T/root.before" "$ROOT" "$3: the allowed root changed"
    no_leftovers "$3"
    pass "refused, nothing written: $3"
}

bad_sf() {  # OUT DEST_DIR
    mkdir -p "$T/bad" && printf 'x\n' >"$T/bad/f" && printf '%s\n' "$2" >"$T/bad/dest_dir" &&
        printf 'f\n' >"$T/bad/filename"
    (cd "$T/bad" && make_artifact "$1" bad single-file -f dest_dir -f filename -f f)
}
mkdir -p "$T/outside"
bad_sf "$T/bad-outside.mender" "$T/outside"
refused "$T/bad-outside.mender" "outside the allowed roots" "single-file outside the allowed roots"
[ -z "$(ls -A "$T/outside")" ] || fail "something was written outside the allowed roots"
bad_sf "$T/bad-dotdot.mender" "$DEST/../../outside"
refused "$T/bad-dotdot.mender" "'\\.\\.' component" "single-file dest_dir with '..'"
ln -s "$T/outside" "$ROOT/escape"
bad_sf "$T/bad-link.mender" "$ROOT/escape/x"
refused "$T/bad-link.mender" "outside the allowed roots" "single-file through a symlink leaving the root"
rm "$ROOT/escape"
bad_sf "$T/bad-rel.mender" "relative/dir"
refused "$T/bad-rel.mender" "not an absolute path" "single-file with a relative dest_dir"

# Malicious tars, made with Python's tarfile.
python3 - "$T/mal" <<'PY'
import io, os, sys, tarfile
out = sys.argv[1]
os.makedirs(out, exist_ok=True)
def tar(name, members):
    with tarfile.open(os.path.join(out, name), "w", format=tarfile.GNU_FORMAT) as t:
        for ti, data in members:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
def reg(n, data=b"x\n"):
    ti = tarfile.TarInfo(n); ti.size = len(data); ti.mode = 0o644; return (ti, data)
def special(n, kind, target=""):
    ti = tarfile.TarInfo(n); ti.type = kind; ti.linkname = target; ti.mode = 0o644; return (ti, None)
tar("abs.tar", [reg("ok.txt"), reg("/etc/molt-evil")])
tar("dotdot.tar", [reg("ok.txt"), reg("sub/../../evil")])
tar("symlink-abs.tar", [reg("ok.txt"), special("l", tarfile.SYMTYPE, "/etc/passwd")])
tar("symlink-up.tar", [reg("ok.txt"), special("sub/l", tarfile.SYMTYPE, "../../x")])
tar("symlink-chain.tar", [special("s", tarfile.SYMTYPE, "."), special("a", tarfile.SYMTYPE, "s/../x")])
tar("hardlink-up.tar", [reg("ok.txt"), special("h", tarfile.LNKTYPE, "../outside-file")])
tar("chardev.tar", [reg("ok.txt"), special("null", tarfile.CHRTYPE)])
tar("fifo.tar", [reg("ok.txt"), special("fifo", tarfile.FIFOTYPE)])
PY
for case in abs:"absolute or with" dotdot:"absolute or with" symlink-abs:"points outside" \
    symlink-up:"points outside" symlink-chain:"resolves outside" hardlink-up:"hard link" \
    chardev:"character device" fifo:"is a fifo"; do
    name=${case%%:*}
    mkdir -p "$T/mal/$name"
    cp "$T/mal/$name.tar" "$T/mal/$name/update.tar"
    printf '%s\n' "$DEST/tree" >"$T/mal/$name/dest_dir"
    (cd "$T/mal/$name" && make_artifact "$T/mal-$name.mender" "mal-$name" directory -f dest_dir -f update.tar)
    refused "$T/mal-$name.mender" "${case#*:}" "directory tar with $name"
done

# No allowed roots at all (nothing in molt.yaml, no MOLT_FILE_ALLOWED_ROOTS): refused. The
# environment variable alone works; an empty list in molt.yaml overrides it.
cp "$NATIVE_CONF" "$T/native-config.yaml"
grep -v -e '^modules:' -e '^  file:' -e 'allowed_roots:' -e "^      - " "$T/native-config.yaml" >"$NATIVE_CONF"
refused "$T/sf-meta-first.mender" "no allowed roots \\(MOLT_FILE_ALLOWED_ROOTS is empty or unset\\)" \
    "no allowed roots configured"
use native
factory
MOLT_FILE_ALLOWED_ROOTS="$T/nothing-here:$ROOT" molt_dev install "$T/sf-meta-first.mender"
expect_rc 0 "install with MOLT_FILE_ALLOWED_ROOTS only"
molt_dev rollback
expect_rc 0 "rollback with MOLT_FILE_ALLOWED_ROOTS only"
pass "MOLT_FILE_ALLOWED_ROOTS gives the allowed roots when molt.yaml has none"
printf 'modules:\n  file:\n    allowed_roots: []\n' >>"$NATIVE_CONF"
MOLT_FILE_ALLOWED_ROOTS="$ROOT" refused "$T/sf-meta-first.mender" \
    "no allowed roots \\(modules: file: allowed_roots is empty or unset\\)" "an empty allowed_roots list in molt.yaml"
cp "$T/native-config.yaml" "$NATIVE_CONF"

# A 1 MiB tmpfs as the allowed root, in a private mount namespace: a payload larger than its
# free space is refused with the numbers, nothing written; a payload file that arrives before
# dest_dir is staged in molt's data dir (another file system) and copied next to its destination
# at the end of Download.
if unshare -m true 2>/dev/null; then
    mkdir -p "$T/small" "$T/ssrc" "$T/ssrc2"
    head -c 2000000 /dev/zero >"$T/ssrc/app.conf"
    head -c 300000 /dev/urandom >"$T/ssrc2/app.conf"
    for d in ssrc ssrc2; do
        printf '%s\n' "$T/small/d" >"$T/$d/dest_dir"
        cp "$T/src/filename" "$T/$d/"
    done
    (cd "$T/ssrc" && make_artifact "$T/sf-big.mender" big single-file -f dest_dir -f filename -f app.conf)
    (cd "$T/ssrc2" && make_artifact "$T/sf-small.mender" small single-file -f app.conf -f dest_dir -f filename)
    device_new spacedev dev-a
    device_add_file_module "$DEV/native"
    device_config "native_module_dir: $DEV/native" "modules:" "  file:" "    allowed_roots: $T/small"
    rc=0
    timeout 120 unshare -m sh -c '
        mount -t tmpfs -o size=1m tmpfs "$1" || exit 99
        "$2" --config "$3" install "$4" >"$6.out" 2>"$6.err"; rc=$?
        find "$1" -mindepth 1 >"$6.left"
        "$2" --config "$3" install "$5" >"$6.small.out" 2>"$6.small.err" || exit 98
        "$2" --config "$3" commit >>"$6.small.out" 2>>"$6.small.err" || exit 97
        cp -a "$1/d" "$6.installed" || exit 96
        exit $rc' sh "$T/small" "$MOLT" "$DEV_CONF" "$T/sf-big.mender" "$T/sf-small.mender" "$T/space" || rc=$?
    if [ "$rc" = 99 ]; then
        echo "skip: no tmpfs mount here: the free-space refusal and the copy across file systems are not checked"
    else
        [ "$rc" -lt 96 ] || { cat "$T/space.small.err" >&2; fail "data-first single-file into a tmpfs (exit $rc)"; }
        assert_eq 1 "$rc" "install of 2000000 bytes into a 1 MiB tmpfs"
        grep -qE "not enough space in $T/small/d for .*: 2000000 bytes needed .*, [0-9]+ bytes available" "$T/space.err" ||
            { cat "$T/space.err" >&2; fail "no space message with the numbers"; }
        assert_eq "" "$(cat "$T/space.left")" "nothing left on the tmpfs (not even the folder made for it)"
        pass "refused, nothing written: a payload larger than the free space (numbers in the message)"
        cmp "$T/ssrc2/app.conf" "$T/space.installed/app.conf" || fail "data-first file copied across file systems differs"
        assert_eq "app.conf" "$(ls -A "$T/space.installed")" "only the file in the tmpfs destination"
        grep -q "staged in .*tmp/payload/app.conf" "$T/space.small.err" || fail "the data-first file was not staged first"
        pass "a file that arrives before its destination is staged, then copied to another file system"
    fi
fi
