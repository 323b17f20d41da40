# SPDX-License-Identifier: Apache-2.0
# ctest-labels: root
# Mender's community update modules, as Debian's mender-client ships them in
# /usr/share/mender/modules/v3 (single-file, directory, script, deb), install artifacts made with
# mender-artifact through molt into a simulated device; Mender's own Go client (3.4.0, same
# package) installs the very same artifacts on a second simulated device, and both must leave the
# same files (content and modes), the same provides and the same artifact name, also after a
# rollback. The artifacts name paths below $T/target; the Go client runs in a private mount
# namespace where its own copy is mounted over $T/target (device.sh go_mender), so the artifacts
# are byte-identical for both clients. The deb module runs `dpkg -i`: a `dpkg` wrapper first on
# PATH points dpkg at a scratch root below $T/target, so the machine's dpkg database is never used.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

for m in single-file directory script deb; do
    [ -x "/usr/share/mender/modules/v3/$m" ] || fail "community module $m not installed (mender-client)"
done
command -v dpkg-deb >/dev/null || fail "dpkg-deb is needed to build the test package"

TARGET="$T/target"
GO_TARGET="$TARGET"
mkdir -p "$TARGET" "$T/src" "$T/bin"
device_new molt-dev dev-a
go_device_new go-dev dev-a factory-1
GO_T="$GO_SB/target"

# What a device has before any update, identical on both.
for root in "$TARGET" "$GO_T"; do
    mkdir -p "$root/sf" "$root/dir/old-sub" "$root/dpkg/var/lib/dpkg/info" "$root/dpkg/var/lib/dpkg/updates"
    printf 'factory\n' >"$root/sf/motd"
    printf 'old\n' >"$root/dir/old-sub/old.txt"
    : >"$root/dpkg/var/lib/dpkg/status"
done

# dpkg, pointed at the scratch root (the deb module calls plain `dpkg -i files/*.deb`).
cat >"$T/bin/dpkg" <<SH
#!/bin/sh
exec /usr/bin/dpkg --root="$TARGET/dpkg" --log=/dev/null --force-not-root "\$@"
SH
chmod 0755 "$T/bin/dpkg"
export PATH="$T/bin:$PATH"

# Both clients, one artifact: install, then commit when the client waits for it (rc of commit:
# 0 when it committed, 2 when install had committed already because the module has no rollback).
install_both() {  # ARTIFACT NAME COMMIT_RC
    molt_dev install "$1"
    expect_rc 0 "molt install $2"
    go_mender install "$1"
    expect_rc 0 "mender install $2"
    molt_dev commit
    expect_rc "$3" "molt commit after installing $2"
    go_mender commit
    expect_rc "$3" "mender commit after installing $2"
}

# Same files (content, type, mode, symlink targets) below both targets; same provides; same name.
compare_both() {  # WHAT
    diff -r --no-dereference "$TARGET" "$GO_T" >"$T/diff.out" 2>&1 ||
        { cat "$T/diff.out" >&2; fail "$1: molt and mender left different files"; }
    (cd "$TARGET" && find . -printf '%p %y %m %l\n' | sort) >"$T/modes.molt"
    (cd "$GO_T" && find . -printf '%p %y %m %l\n' | sort) >"$T/modes.go"
    diff "$T/modes.molt" "$T/modes.go" >&2 || fail "$1: file types or modes differ (< molt, > mender)"
    molt_dev show-provides
    expect_rc 0 "molt show-provides ($1)"
    sort "$RUN_OUT" >"$T/provides.molt"
    go_mender show-provides
    expect_rc 0 "mender show-provides ($1)"
    sort "$RUN_OUT" >"$T/provides.go"
    diff "$T/provides.molt" "$T/provides.go" >&2 || fail "$1: provides differ (< molt, > mender)"
    molt_dev show-artifact
    expect_rc 0 "molt show-artifact ($1)"
    local molt_name go_name
    molt_name=$(cat "$RUN_OUT")
    go_mender show-artifact
    expect_rc 0 "mender show-artifact ($1)"
    go_name=$(cat "$RUN_OUT")
    assert_eq "$go_name" "$molt_name" "$1: artifact name (molt vs mender)"
}

# 1. single-file: one file with its mode into an existing folder (rollback Yes: waits for commit).
mkdir -p "$T/src/sf"
printf 'Welcome to release sf-1\n' >"$T/src/sf/motd"
printf '%s' "$TARGET/sf" >"$T/src/sf/dest_dir"
printf 'motd' >"$T/src/sf/filename"
printf '640' >"$T/src/sf/permissions"
make_artifact "$T/sf-1.mender" sf-1 single-file -f "$T/src/sf/motd" -f "$T/src/sf/dest_dir" \
    -f "$T/src/sf/filename" -f "$T/src/sf/permissions"
install_both "$T/sf-1.mender" sf-1 0
assert_eq "Welcome to release sf-1" "$(cat "$TARGET/sf/motd")" "single-file content"
assert_eq 640 "$(stat -c %a "$TARGET/sf/motd")" "single-file mode"
assert_eq "sf-1" "$(dev_artifact)" "artifact name after single-file"
grep -qx 'rootfs-image.single-file.version=sf-1' <<<"$(dev_provides)" ||
    fail "provides after sf-1 lack rootfs-image.single-file.version=sf-1: $(dev_provides)"
compare_both "single-file sf-1"
pass "single-file: molt and mender agree"

# 2. directory: a tree (modes, a symlink, a subfolder) replaces the folder (rollback Yes).
make_dir_artifact() {  # NAME CONTENT
    rm -rf "$T/src/dir" && mkdir -p "$T/src/dir/tree/sub"
    printf '%s\n' "$2" >"$T/src/dir/tree/a.txt"
    printf '#!/bin/sh\necho %s\n' "$1" >"$T/src/dir/tree/sub/run.sh"
    chmod 0750 "$T/src/dir/tree/sub/run.sh"
    chmod 0604 "$T/src/dir/tree/a.txt"
    ln -s sub/run.sh "$T/src/dir/tree/link"
    tar -C "$T/src/dir/tree" --owner=0 --group=0 -cf "$T/src/dir/update.tar" .
    printf '%s' "$TARGET/dir" >"$T/src/dir/dest_dir"
    make_artifact "$T/$1.mender" "$1" directory -f "$T/src/dir/update.tar" -f "$T/src/dir/dest_dir"
}
make_dir_artifact dir-1 "release one"
install_both "$T/dir-1.mender" dir-1 0
[ ! -e "$TARGET/dir/old-sub" ] || fail "directory: the old tree was not replaced"
assert_eq "release one" "$(cat "$TARGET/dir/a.txt")" "directory content"
assert_eq 750 "$(stat -c %a "$TARGET/dir/sub/run.sh")" "directory mode"
compare_both "directory dir-1"
pass "directory: molt and mender agree"

# 2b. directory again, rolled back by both: the tree of dir-1 and the provides of dir-1 come back.
make_dir_artifact dir-2 "release two"
molt_dev install "$T/dir-2.mender"
expect_rc 0 "molt install dir-2"
assert_eq "release two" "$(cat "$TARGET/dir/a.txt")" "directory dir-2 installed before rollback"
molt_dev rollback
expect_rc 0 "molt rollback dir-2"
go_mender install "$T/dir-2.mender"
expect_rc 0 "mender install dir-2"
go_mender rollback
expect_rc 0 "mender rollback dir-2"
assert_eq "release one" "$(cat "$TARGET/dir/a.txt")" "directory content after rollback"
assert_eq "dir-1" "$(dev_artifact)" "artifact name after rollback"
compare_both "directory dir-2 rolled back"
pass "directory rollback: molt and mender agree"

# 3. script: the module runs the payload (no rollback: install commits at once, commit says 2).
# The script records which dpkg it sees, so we know the deb step below uses the scratch root.
mkdir -p "$T/src/script"
cat >"$T/src/script/setup.sh" <<SH
#!/bin/sh
mkdir -p "$TARGET/script"
if [ -f version ] && [ -d header ]; then echo "ran in the module tree"; else echo "ran elsewhere"; fi >"$TARGET/script/out.txt"
command -v dpkg >"$TARGET/script/dpkg-path"
SH
make_artifact "$T/script-1.mender" script-1 script -f "$T/src/script/setup.sh"
install_both "$T/script-1.mender" script-1 2
assert_eq "ran in the module tree" "$(cat "$TARGET/script/out.txt")" "script module ran the payload (cwd = tree)"
compare_both "script script-1"
pass "script: molt and mender agree"

# 4. deb: dpkg -i into the scratch root, only if the module really sees the wrapper.
if [ "$(cat "$TARGET/script/dpkg-path")" != "$T/bin/dpkg" ]; then
    fail "modules run by molt do not see the caller's PATH (dpkg is $(cat "$TARGET/script/dpkg-path")); deb step not run to keep the machine's dpkg database untouched"
fi
mkdir -p "$T/src/deb/pkg/DEBIAN" "$T/src/deb/pkg/opt/molt-test"
printf 'Package: molt-test-hello\nVersion: 1.0\nArchitecture: all\nMaintainer: molt tests <tests@example.invalid>\nDescription: molt integration test package\n' \
    >"$T/src/deb/pkg/DEBIAN/control"
printf 'hello from a deb\n' >"$T/src/deb/pkg/opt/molt-test/hello"
chmod 0600 "$T/src/deb/pkg/opt/molt-test/hello"
dpkg-deb --root-owner-group -Zgzip --build "$T/src/deb/pkg" "$T/src/deb/molt-test-hello_1.0_all.deb" >/dev/null
make_artifact "$T/deb-1.mender" deb-1 deb -f "$T/src/deb/molt-test-hello_1.0_all.deb"
install_both "$T/deb-1.mender" deb-1 2
assert_eq "hello from a deb" "$(cat "$TARGET/dpkg/opt/molt-test/hello")" "deb content"
/usr/bin/dpkg --root="$TARGET/dpkg" -s molt-test-hello 2>/dev/null | grep -qx 'Status: install ok installed' ||
    fail "deb: molt-test-hello is not installed in the scratch dpkg root"
compare_both "deb deb-1"
pass "deb: molt and mender agree"
