# SPDX-License-Identifier: Apache-2.0
# A refused tree is always cleaned up (issue 12, part 5b). `directory` artifacts whose update.tar
# goes past the file module's limits (docs/file-module.md "Limits"):
#  - a chain of folders whose paths grow past PATH_MAX (the entries before the limit are written
#    first, so there is a staged tree deeper than PATH_MAX to remove);
#  - an entry more than 256 levels deep (short names);
# each is refused with the reason (the limit, not "absolute or with '..'"), nothing is left
# (no .NAME.molt-* sibling, no staged tree, no plan in the module's store), the destination is
# unchanged, and the next update to the same destination installs.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

FILE_SO="$MOLT_BUILD_DIR/modules/native/file.so"
[ -f "$FILE_SO" ] || fail "file module not built: $FILE_SO"
ROOT="$T/root"
mkdir -p "$ROOT/app" "$T/src"
printf 'version 1\n' >"$ROOT/app/v.txt"

device_new dev dev-a
device_add_file_module "$DEV/native"
device_config "native_module_dir: $DEV/native" "modules:" "  file:" "    allowed_roots:" \
    "      - $ROOT"
printf '%s' "$ROOT/app" >"$T/src/dest_dir"

# A tar of the given entry names (folders end in "/"), written by Python's tarfile (GNU long
# names), so that no such tree has to exist here first.
deep_tar() {  # OUT NAME...
    python3 - "$@" <<'PY'
import io, sys, tarfile
with tarfile.open(sys.argv[1], "w:", format=tarfile.GNU_FORMAT) as t:
    for name in sys.argv[2:]:
        info = tarfile.TarInfo(name.rstrip("/"))
        if name.endswith("/"):
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            t.addfile(info)
        else:
            info.size, info.mode = 3, 0o644
            t.addfile(info, io.BytesIO(b"hi\n"))
PY
}

digest() {
    (cd "$ROOT" && find . -printf '%p %y %m %u %g %s %l\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}

refused_and_clean() {  # TAR WHAT REGEX
    cp "$1" "$T/src/update.tar"
    make_artifact "$T/bad.mender" bad directory -f "$T/src/dest_dir" -f "$T/src/update.tar"
    digest >"$T/before"
    molt_dev install "$T/bad.mender"
    expect_rc 1 "$2: install"
    grep -qE "$3" "$RUN_ERR" || fail "$2: the refusal does not give the reason /$3/: $(grep -i refused "$RUN_ERR" | head -c 800)"
    digest >"$T/after"
    diff "$T/before" "$T/after" >&2 || fail "$2: the destination's folder changed (or something is left in it)"
    left=$(find "$DEV_DATA" -path '*file*' -name plan 2>/dev/null)
    [ -z "$left" ] || fail "$2: the module's plan is left: $left"
    assert_eq idle "$(dev_state)" "$2: state after the refusal"
    # The next update to the same destination installs.
    tar -C "$T/good" -cf "$T/src/update.tar" .
    make_artifact "$T/good.mender" good directory -f "$T/src/dest_dir" -f "$T/src/update.tar"
    molt_dev install "$T/good.mender"
    expect_rc 0 "$2: the next install to $ROOT/app"
    assert_eq "version 2" "$(cat "$ROOT/app/v.txt")" "$2: the next install's content"
    molt_dev rollback
    expect_rc 0 "$2: rollback of the next install"
    assert_eq "version 1" "$(cat "$ROOT/app/v.txt")" "$2: rolled back"
    pass "$2: refused with the reason, nothing left, the next update installs"
}
mkdir -p "$T/good"
printf 'version 2\n' >"$T/good/v.txt"

# 1. Longer than PATH_MAX: 40 levels of a 120-byte name (4840 bytes); the entries before the
#    limit are extracted, then the one past it is refused.
names=()
p=
long=$(printf 'd%.0s' $(seq 120))
for ((i = 0; i < 40; i++)); do
    p="${p}${long}/"
    names+=("$p")
done
names+=("${p}f")
deep_tar "$T/long.tar" "${names[@]}"
refused_and_clean "$T/long.tar" "a tree longer than PATH_MAX" \
    "its path in the tree would be [0-9]+ bytes or more, the limit is [0-9]+ \\(PATH_MAX 4096"

# 2. Deeper than 256 levels, each name short: a/a/.../f (300 levels, 601 bytes).
p=
names=()
for ((i = 0; i < 300; i++)); do p="${p}a/"; done
deep_tar "$T/deep.tar" "v.txt" "${p}f"
refused_and_clean "$T/deep.tar" "a tree deeper than 256 levels" "more than 256 levels deep: refused"

# 3. An entry libarchive cannot write (a folder below a file: x, then x/y): the message names the
#    entry as the tar gives it (the name was once read after libarchive's pathname was replaced
#    by the staging path, and printed as '').
deep_tar "$T/clash.tar" "x" "x/y"
refused_and_clean "$T/clash.tar" "an entry below a file" "tar entry 'x/y': "
