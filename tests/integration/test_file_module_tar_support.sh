# SPDX-License-Identifier: Apache-2.0
# The file module's tar support is loaded only when a payload needs it (issue 18;
# docs/file-module.md "Where the tar support lives"):
#  - file.so needs no libarchive nor its libraries (DT_NEEDED), in any build, nor libmolt-sdk.so
#    (molt's own modules link the SDK's archive: modules/CMakeLists.txt); its tar support
#    file.d/file-tar.so exports its entry alone and needs no libmolt-sdk.so either;
#  - a single-file install + commit (LD_DEBUG=files of every process of molt) loads file.so but
#    not file-tar.so, nor, where libarchive is linked statically, libacl, liblz4 or libbz2;
#  - a directory install loads file-tar.so from file.d/ beside the file.so molt loaded, and
#    installs the tree;
#  - with file-tar.so missing, or not the file module's, a directory install fails with a message
#    naming the file, the destination is unchanged and nothing of the module is left; the same
#    update installs once the file is back.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

native="$MOLT_BUILD_DIR/modules/native"
[ -f "$native/file.so" ] && [ -f "$native/file.d/file-tar.so" ] ||
    fail "file module not built: $native/file.so, $native/file.d/file-tar.so"
cache="$MOLT_BUILD_DIR/CMakeCache.txt"
linked=$(sed -n 's/^MOLT_LIBARCHIVE_LINKED:INTERNAL=//p' "$cache")

needed() {  # FILE: its DT_NEEDED libraries, one a line
    readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'
}
libs=$(needed "$native/file.so")
grep -q '^libc\.so' <<<"$libs" || fail "no NEEDED entries read from file.so: $libs"
if grep -E '^lib(archive|acl|lz4|bz2|lzma|zstd|z|xml2)\.so' <<<"$libs"; then
    fail "file.so needs the libraries above (the tar support belongs in file.d/file-tar.so)"
fi
for so in "$native/file.so" "$native/file.d/file-tar.so"; do
    if needed "$so" | grep '^libmolt-sdk'; then
        fail "$so needs libmolt-sdk (molt's own modules link the SDK's archive)"
    fi
done
exported=$(nm -D --defined-only "$native/file.d/file-tar.so" | awk '{ print $3 }')
assert_eq molt_file_tar_entry "$exported" "the symbols file-tar.so exports"
pass "file.so needs no libarchive, its libraries or libmolt-sdk, file-tar.so no libmolt-sdk; file-tar.so exports molt_file_tar_entry alone"

ROOT="$T/root"
DEST="$ROOT/dest"
mkdir -p "$ROOT" "$T/sf" "$T/dir" "$T/tree"
device_new dev dev-a
device_add_file_module "$DEV/native"
device_config "native_module_dir: $DEV/native" "modules:" "  file:" "    allowed_roots:" \
    "      - $ROOT"

head -c 1024 /dev/urandom >"$T/sf/app.conf"
printf '%s\n' "$DEST/files" >"$T/sf/dest_dir"
printf 'app.conf\n' >"$T/sf/filename"
(cd "$T/sf" && make_artifact "$T/sf.mender" sf-1 single-file -f dest_dir -f filename -f app.conf)
mkdir -p "$T/tree/bin"
printf 'tool 2\n' >"$T/tree/bin/tool"
ln -s bin/tool "$T/tree/link"
tar -cf "$T/dir/update.tar" -C "$T/tree" .
printf '%s\n' "$DEST/tree" >"$T/dir/dest_dir"
(cd "$T/dir" && make_artifact "$T/dir.mender" dir-1 directory -f dest_dir -f update.tar)

# molt_dev with the dynamic linker's list of loaded files, of every process, in $T/ld.NAME.PID.
molt_ld() {  # NAME ARGS...
    local name=$1
    shift
    rm -f "$T/ld.$name".*
    LD_DEBUG=files LD_DEBUG_OUTPUT="$T/ld.$name" molt_dev "$@"
}
loaded() {  # NAME: the files the processes of the molt_ld run NAME loaded, one a line
    cat "$T/ld.$1".* | sed -n 's/.*file=\([^ ]*\) .*/\1/p' | sort -u
}

# ---- a single file: no tar support ---------------------------------------------------------
molt_ld sf-install install "$T/sf.mender"
expect_rc 0 "single-file install"
molt_ld sf-commit commit
expect_rc 0 "single-file commit"
cmp "$T/sf/app.conf" "$DEST/files/app.conf" || fail "single-file: content differs from the artifact's"
for run in sf-install sf-commit; do
    files=$(loaded "$run")
    grep -q "^$DEV/native/file\.so$" <<<"$files" || fail "$run: file.so was not loaded: $files"
    ! grep 'file-tar\.so' <<<"$files" || fail "$run: the tar support was loaded for a single file"
    if [ "$linked" = static ] && grep -E '^lib(acl|lz4|bz2)\.so' <<<"$files"; then
        fail "$run: libarchive's libraries (above) were loaded for a single file"
    fi
done
pass "single-file install + commit: file.so loaded, file-tar.so not (libarchive: $linked)"

# ---- a tree: the tar support beside file.so ------------------------------------------------------
molt_ld dir-install install "$T/dir.mender"
expect_rc 0 "directory install"
grep -qx "$DEV/native/file.d/file-tar.so" <(loaded dir-install) ||
    fail "directory install: $DEV/native/file.d/file-tar.so was not loaded: $(loaded dir-install)"
molt_dev commit
expect_rc 0 "directory commit"
diff -r --no-dereference "$T/tree" "$DEST/tree" >&2 || fail "directory: the tree differs from the tar's"
pass "directory install: file.d/file-tar.so loaded beside the file.so molt loaded; tree installed"

# ---- the tar support missing, or not the file module's ------------------------------------------
snapshot() {  # OUT: a listing of everything below ROOT, with contents
    (cd "$ROOT" && find . -printf '%p %y %m %s %l\n' | sort && find . -type f -exec md5sum {} + | sort) >"$1"
}
printf 'tool 3\n' >"$T/tree/bin/tool"
tar -cf "$T/dir/update.tar" -C "$T/tree" .
(cd "$T/dir" && make_artifact "$T/dir2.mender" dir-2 directory -f dest_dir -f update.tar)
snapshot "$T/before"
mv "$DEV/native/file.d/file-tar.so" "$T/file-tar.so"
for case in missing foreign; do
    # foreign: a shared object that is not the tar support (a copy of file.so itself)
    [ "$case" = missing ] || cp "$native/file.so" "$DEV/native/file.d/file-tar.so"
    molt_dev install "$T/dir2.mender"
    [ "$RUN_RC" != 0 ] || fail "$case tar support: the directory install succeeded"
    if [ "$case" = missing ]; then
        want="tar support $DEV/native/file.d/file-tar.so \\(for payload type directory and tree entries\\) cannot be loaded: .*No such file"
    else
        want="tar support $DEV/native/file.d/file-tar.so is not one: it has no molt_file_tar_entry"
    fi
    grep -qE "$want" "$RUN_ERR" || { cat "$RUN_ERR" >&2; fail "$case tar support: no message naming the file"; }
    snapshot "$T/after"
    diff "$T/before" "$T/after" >&2 || fail "$case tar support: the destination changed"
    pass "$case tar support: the directory install fails naming the file; nothing changed"
done
mv "$T/file-tar.so" "$DEV/native/file.d/file-tar.so"
molt_dev install "$T/dir2.mender"
expect_rc 0 "directory install once the tar support is back"
molt_dev commit
expect_rc 0 "directory commit once the tar support is back"
diff -r --no-dereference "$T/tree" "$DEST/tree" >&2 || fail "directory: the tree differs from the tar's"
pass "with the tar support back, the same update installs"
