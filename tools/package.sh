#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds molt's Debian packages and checks them, as root on Debian 12 (tools/deps.sh installs
# the build dependencies). The ctest integration/test_package runs it.
#   tools/package.sh [--out DIR] [--keep]   build and check (DIR: default build/package);
#                                           --keep leaves the build and the scratch root in DIR
#   tools/package.sh --out DIR --no-build   check the packages a --keep run left in DIR again
#   tools/package.sh --update-symbols       build, then rewrite debian/libmolt-sdk1.symbols
#                                           from what libmolt-sdk.so.1 exports
# Exit codes: 0 all checks passed, 1 a check failed, 77 build dependencies missing.
#
# 1. A copy of the tree (git's files, or everything outside build/) is built with
#    `dpkg-buildpackage -us -uc -b` (DEB_BUILD_OPTIONS="nocheck parallel=2 noautodbgsym"), with
#    dpkg-gensymbols strict: any difference from debian/libmolt-sdk1.symbols fails.
# 2. lintian on the .changes: no error and no warning (overrides carry their reason).
# 3. dpkg-shlibdeps found every runtime dependency: each library an ELF file of a package needs
#    (DT_NEEDED) belongs to a package its Depends names, molt depends on libcurl4 at the
#    version libcurl's symbols file gives for the functions molt loads with dlopen, and on the
#    package of libcrypto.so.3, which it loads with dlopen too.
# 4. A scratch root: a static busybox as /bin/sh, the host's shared libraries that the packages
#    need, and a dpkg database whose status is a copy of the host's (so dpkg checks the
#    Depends for real against Debian 12's packages; the files of those packages are not in the
#    root, only their libraries). `dpkg --root` installs into it and runs the maintainer
#    scripts chrooted into it; our own commands run chrooted with a /proc of their own. systemd cannot run here: deb-systemd-helper, deb-systemd-invoke
#    and systemctl are stubs that log their arguments, and /run/systemd/system exists so the
#    scripts behave as on a booted systemd. In it:
#    - `molt version`, `molt-artifact --help`, `molt modules` (the four built-in modules load);
#    - the C template from libmolt-sdk-dev, built outside the tree with find_package(molt-sdk)
#      and with pkg-config against the root's SDK, loads in the root's molt and passes the root's
#      molt-module-test;
#    - the unit is enabled and not started while no server is configured;
#    - upgrades from a previous version (the same molt package with a lower version, built here
#      with dpkg-deb): an unchanged conffile is replaced without a prompt; a local change (a
#      server) survives an upgrade that keeps the conffile, without a prompt, and the daemon is
#      then restarted; when both changed, dpkg asks, and --force-confold keeps the local file
#      (the new one beside it as .dpkg-dist);
#    - purge removes /etc/molt/molt.yaml and /var/lib/molt.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
OUT="$top/build/package"
KEEP=0
UPDATE_SYMBOLS=0
BUILD=1
while [ $# -gt 0 ]; do
    case $1 in
        --out) OUT=$2 && shift ;;
        --keep) KEEP=1 ;;
        --update-symbols) UPDATE_SYMBOLS=1 ;;
        --no-build) BUILD=0 ;;
        -h | --help) sed -n '3,9s/^# \{0,1\}//p' "$0" && exit 0 ;;
        *) echo "package.sh: unknown argument $1" >&2 && exit 2 ;;
    esac
    shift
done

fail() {
    echo "package.sh: FAIL: $*" >&2
    exit 1
}
ok() {
    echo "package.sh: ok: $* [${SECONDS}s]"
}

for c in dpkg-buildpackage dpkg-checkbuilddeps lintian dpkg-deb busybox chroot unshare objdump cmake cc; do
    command -v "$c" >/dev/null || { echo "package.sh: $c not installed (tools/deps.sh)" >&2; exit 77; }
done
if ! missing=$(cd "$top" && dpkg-checkbuilddeps 2>&1); then
    echo "package.sh: build dependencies missing (tools/deps.sh): $missing" >&2
    exit 77
fi
[ "$(id -u)" = 0 ] || fail "needs root (dpkg --root chroots into the scratch root)"

version=$(cd "$top" && dpkg-parsechangelog -S Version)
upstream=${version%-*}
cmake_version=$(sed -n 's/^project(molt VERSION \([0-9.]*\).*/\1/p' "$top/CMakeLists.txt")
[ "$upstream" = "$cmake_version" ] ||
    fail "debian/changelog says $upstream, CMakeLists.txt's project() says $cmake_version"
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
multiarch=$(dpkg-architecture -qDEB_HOST_MULTIARCH)

case $(realpath -m "$OUT") in
    / | "$top" | "$(realpath -m "$top/..")") fail "--out $OUT: not a folder of its own" ;;
esac
[ "$BUILD" = 0 ] || rm -rf "$OUT"
rm -rf "$OUT/root" "$OUT/work"
mkdir -p "$OUT"
[ "$KEEP" = 1 ] || trap 'rm -rf "$OUT/src" "$OUT/root" "$OUT/work"' EXIT
SRC="$OUT/src/molt-$upstream"

# ---- 1. build ----------------------------------------------------------------------------------
copy_tree() {  # the tree into $SRC: git's files (tracked and new, not ignored), else all but build/
    mkdir -p "$SRC"
    if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        (cd "$top" && git ls-files -co --exclude-standard -z | while IFS= read -r -d '' f; do
            [ -e "$f" ] && printf '%s\0' "$f"; done | tar -c --null -T - -f -) | tar -x -C "$SRC"
    else
        tar -C "$top" --exclude=./build --exclude=./.git --exclude='./obj-*' -c . | tar -x -C "$SRC"
    fi
}
build() {
    local level=4 start=$SECONDS
    [ "$UPDATE_SYMBOLS" = 0 ] || level=0
    copy_tree
    echo "package.sh: building $version in $SRC (log: $OUT/build.log)"
    if ! (cd "$SRC" && DEB_BUILD_OPTIONS="nocheck parallel=2 noautodbgsym" DPKG_GENSYMBOLS_CHECK_LEVEL=$level \
        dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1; then
        tail -n 40 "$OUT/build.log" >&2
        if grep -q "dpkg-gensymbols: error" "$OUT/build.log"; then
            echo "package.sh: libmolt-sdk's exports differ from debian/libmolt-sdk1.symbols;" \
                "if the change is meant, run tools/package.sh --update-symbols and commit the file" >&2
        fi
        fail "dpkg-buildpackage failed"
    fi
    ok "dpkg-buildpackage -us -uc -b: $((SECONDS - start)) s"
}
[ "$BUILD" = 0 ] || build
if [ "$UPDATE_SYMBOLS" = 1 ]; then
    (cd "$SRC" && dpkg-gensymbols -q -plibmolt-sdk1 -Pdebian/libmolt-sdk1 -v"$upstream" -c0 \
        -O"$top/debian/libmolt-sdk1.symbols")
    ok "debian/libmolt-sdk1.symbols written ($(grep -c '^ ' "$top/debian/libmolt-sdk1.symbols") symbols)"
    exit 0
fi
PKGS=(molt molt-artifact libmolt-sdk1 libmolt-sdk-dev molt-module-test)
declare -A DEB
for p in "${PKGS[@]}"; do
    DEB[$p]="$OUT/src/${p}_${version}_${arch}.deb"
    [ -f "${DEB[$p]}" ] || fail "$p was not built: ${DEB[$p]}"
done
CHANGES="$OUT/src/molt_${version}_${arch}.changes"

# ---- 2. lintian --------------------------------------------------------------------------------
if ! lintian --fail-on error,warning "$CHANGES" >"$OUT/lintian.log" 2>&1; then
    cat "$OUT/lintian.log" >&2
    fail "lintian: errors or warnings"
fi
ok "lintian: no error, no warning"

# ---- 3. every runtime dependency ---------------------------------------------------------------
mkdir -p "$OUT/work"
ldcache=$(ldconfig -p)
declare -A OWNER=([libmolt-sdk.so.1]=libmolt-sdk1)
for p in "${PKGS[@]}"; do
    x="$OUT/work/x-$p"
    dpkg-deb -x "${DEB[$p]}" "$x"
    depends=", $(dpkg-deb -f "${DEB[$p]}" Depends), "
    while IFS= read -r f; do
        [[ $(file -b "$f") == ELF* ]] || continue
        for lib in $(objdump -p "$f" | awk '/NEEDED/ {print $2}'); do
            if [ -z "${OWNER[$lib]:-}" ]; then
                path=$(awk -v l="$lib" '$1 == l && !found++ {print $NF}' <<<"$ldcache")
                [ -n "$path" ] || fail "${f#"$x"} ($p) needs $lib, which is not on this system"
                owner=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null || dpkg -S "$path" 2>/dev/null) ||
                    fail "$lib ($path): no package owns it"
                OWNER[$lib]=$(awk -F: 'NR == 1 {print $1}' <<<"$owner")
            fi
            owner=${OWNER[$lib]}
            [[ $depends == *", $owner "* || $depends == *", $owner,"* ]] ||
                fail "${f#"$x"} ($p) needs $lib of $owner, but $p's Depends do not name it:$depends"
        done
    done < <(find "$x" -type f \( -perm -u+x -o -name '*.so*' \))
done
# libcurl: loaded with dlopen, so no NEEDED names it in molt; the version must cover every
# function core/transport/curl_lib.c resolves (libcurl's symbols file gives each one's).
symbols=
for f in /var/lib/dpkg/info/libcurl4.symbols /var/lib/dpkg/info/libcurl4:*.symbols; do
    [ -f "$f" ] && symbols=$f && break
done
[ -f "$symbols" ] || fail "no symbols file of libcurl4 on this system"
need=$(sed -n 's/^ *FN([a-z_]*, "\(curl_[a-z_]*\)"),$/\1/p' "$top/core/transport/curl_lib.c" |
    while read -r fn; do awk -v s="$fn" '$1 ~ "^" s "@" {print $2}' "$symbols"; done |
    sort -V | tail -n 1)
[ -n "$need" ] || fail "no libcurl function of core/transport/curl_lib.c in $symbols"
molt_depends=$(dpkg-deb -f "${DEB[molt]}" Depends)
[[ ", $molt_depends," == *", libcurl4 (>= $need),"* ]] ||
    fail "molt must depend on libcurl4 (>= $need) (the newest function it loads), Depends: $molt_depends"
# libcrypto: loaded with dlopen too (core/util/crypto_lib.c), so no NEEDED names it in molt; the
# rootfs-image module of the molt package links it, and molt's Depends must name its package.
crypto=${OWNER[libcrypto.so.3]:-}
[ -n "$crypto" ] || fail "no ELF file of the packages needs libcrypto.so.3, which molt loads with dlopen: its package must be in molt's Depends (docs/packaging.md)"
[[ ", $molt_depends," == *", $crypto "* || ", $molt_depends," == *", $crypto,"* ]] ||
    fail "molt loads libcrypto.so.3 ($crypto) with dlopen, but its Depends do not name $crypto: $molt_depends"
# liblzma and libzstd: loaded with dlopen by molt and molt-artifact (core/util/compress_lib.c)
# for xz and zstd tars; with libarchive shared (as Debian builds it) libarchive13 needs them too,
# but molt's own use is named in debian/control.
for p in molt molt-artifact; do
    for lib in liblzma5 libzstd1; do
        deps=", $(dpkg-deb -f "${DEB[$p]}" Depends),"
        [[ $deps == *", $lib,"* || $deps == *", $lib ("* ]] ||
            fail "$p loads ${lib%[0-9]} with dlopen, but its Depends do not name $lib"
    done
done
ok "every library the packages' programs and modules need is in their Depends; molt: libcurl4 (>= $need), $crypto; molt and molt-artifact: liblzma5, libzstd1"

# ---- 4. the scratch root -----------------------------------------------------------------------
R="$OUT/root"
mkdir -p "$R"/{bin,etc,tmp,dev,usr/bin,var/lib/dpkg/info,var/lib/dpkg/updates,var/lib/dpkg/triggers,var/log,run/systemd/system}
chmod 1777 "$R/tmp"
cp "$(command -v busybox)" "$R/bin/busybox"
for a in $(busybox --list); do
    [ -e "$R/bin/$a" ] || ln -s busybox "$R/bin/$a"
done
mknod -m 666 "$R/dev/null" c 1 3
cp /var/lib/dpkg/status "$R/var/lib/dpkg/status"
: >"$R/var/lib/dpkg/available"
dpkg-query -W -f '${binary:Package}\n' | while read -r p; do : >"$R/var/lib/dpkg/info/$p.list"; done
for s in deb-systemd-helper deb-systemd-invoke systemctl; do
    printf '#!/bin/sh\necho "%s $*" >>/var/log/systemd-stubs.log\nexit 0\n' "$s" >"$R/usr/bin/$s"
    chmod 0755 "$R/usr/bin/$s"
done
# The host's libraries the packages' ELF files need (and libcurl, which molt loads itself).
libs=$(for p in "${PKGS[@]}"; do
    find "$OUT/work/x-$p" -type f \( -perm -u+x -o -name '*.so*' \) -exec sh -c \
        'case $(file -b "$1") in ELF*) LD_LIBRARY_PATH='"$OUT/work/x-libmolt-sdk1/usr/lib/$multiarch"' ldd "$1";; esac' _ {} \;
done; ldd "/usr/lib/$multiarch/libcurl.so.4"; echo "x => /usr/lib/$multiarch/libcurl.so.4 (0)")
for l in $(awk '/=> \// {print $3} /^\t\/[^ ]* \(/ {print $1}' <<<"$libs" | sort -u); do
    case $l in "$OUT"/*) continue ;; esac
    mkdir -p "$R$(dirname "$l")"
    cp -L "$l" "$R$l"
done
printf '/lib/%s\n/usr/lib/%s\n' "$multiarch" "$multiarch" >"$R/etc/ld.so.conf"
[ -e "$R/lib64" ] || ln -s lib "$R/lib64" 2>/dev/null || true

# The root gets its own /proc, mounted in a private mount namespace that ends with the command:
# molt reads /proc (a molt that died leaves processes to end; the kit kills molt), as on a device.
mkdir -p "$R/proc"
in_root() {  # COMMAND...: run in the scratch root
    unshare -m --propagation private sh -c 'mount -t proc proc "$0/proc" && exec chroot "$0" "$@"' \
        "$R" /bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp TMPDIR=/tmp "$@"
}
rdpkg() {  # dpkg into the scratch root, never reading a terminal
    dpkg --root="$R" --admindir="$R/var/lib/dpkg" "$@" </dev/null
}

# The previous versions of molt: the same package, version lowered; in "changed" the shipped
# configuration differs from this version's (a comment line).
prev_deb() {  # NAME VERSION CHANGED(0|1)
    local d="$OUT/work/prev-$1"
    rm -rf "$d"
    dpkg-deb -R "${DEB[molt]}" "$d"
    sed -i "s/^Version: .*/Version: $2/" "$d/DEBIAN/control"
    if [ "$3" = 1 ]; then
        sed -i '1s/^/# (the previous release of this file)\n/' "$d/etc/molt/molt.yaml"
        (cd "$d" && find . -path ./DEBIAN -prune -o -path ./etc -prune -o -type f -printf '%P\0' |
            xargs -0 md5sum >DEBIAN/md5sums)
    fi
    dpkg-deb --root-owner-group -b "$d" "$OUT/work/molt_$2_$1.deb" >/dev/null
    echo "$OUT/work/molt_$2_$1.deb"
}
PREV_CHANGED=$(prev_deb changed "${upstream}-0~prev1" 1)
PREV_SAME=$(prev_deb same "${upstream}-0~prev2" 0)
NEW_CONF="$OUT/work/x-molt/etc/molt/molt.yaml"
CONF="$R/etc/molt/molt.yaml"
STUBS="$R/var/log/systemd-stubs.log"
stubs() { cat "$STUBS" 2>/dev/null || true; }

rdpkg -i "${DEB[libmolt-sdk1]}" "${DEB[libmolt-sdk-dev]}" "${DEB[molt-artifact]}" \
    "${DEB[molt-module-test]}" "$PREV_CHANGED" >"$OUT/dpkg-1.log" 2>&1 ||
    { cat "$OUT/dpkg-1.log" >&2; fail "dpkg -i into the scratch root"; }
chroot "$R" /bin/ldconfig 2>/dev/null || ldconfig -r "$R"
grep -q "^deb-systemd-helper enable molt.service" "$STUBS" || fail "postinst did not enable molt.service: $(stubs)"
! grep -q "^deb-systemd-invoke \(start\|restart\)" "$STUBS" ||
    fail "postinst started molt.service without a configured server: $(stubs)"
[ -d "$R/var/lib/molt" ] || fail "/var/lib/molt not created"
for f in /etc/molt/molt.yaml /lib/systemd/system/molt.service /usr/share/bash-completion/completions/molt \
    /usr/share/bash-completion/completions/molt-artifact /usr/share/man/man5/molt.yaml.5.gz; do
    [ -f "$R$f" ] || fail "$f not installed"
done
grep -qx /etc/molt/molt.yaml "$R/var/lib/dpkg/info/molt.conffiles" || fail "/etc/molt/molt.yaml is not a conffile"
ok "installed into the scratch root; molt.service enabled, not started (no server)"

got=$(in_root molt version) || fail "molt version in the scratch root"
[ "$got" = "molt $upstream" ] || fail "molt version: '$got'"
in_root molt-artifact --help >/dev/null || fail "molt-artifact --help in the scratch root"
in_root molt-module-test --help >/dev/null || fail "molt-module-test --help in the scratch root"
mods=$(in_root molt modules 2>&1) || fail "molt modules: $mods"
for m in file rootfs-image deb docker; do
    grep -q "^[a-z-]* *native /usr/lib/molt/modules/$m.so ($m " <<<"$mods" ||
        fail "molt modules does not load /usr/lib/molt/modules/$m.so: $mods"
done
! grep -q "(refused: " <<<"$mods" || fail "molt modules refuses a module: $mods"
# The file module's tar support, loaded by file.so on the first tree: installed beside it, in a
# folder the registry does not take for modules.
[ -f "$R/usr/lib/molt/modules/file.d/file-tar.so" ] ||
    fail "/usr/lib/molt/modules/file.d/file-tar.so (the file module's tar support) not installed"
! grep -q "file-tar" <<<"$mods" || fail "molt modules takes file-tar.so for a module: $mods"
ok "from the root: molt version ($got), molt-artifact --help, molt modules (file, rootfs-image, deb, docker; file.d/file-tar.so installed, not a module)"

# The docs that the manual pages and the unit name by path are there.
refs=$(for m in "$R"/usr/share/man/man*/*.gz; do zcat "$m"; done | sed 's/\\-/-/g' |
    grep -oE '/usr/share/doc/[a-z0-9-]+/[A-Za-z0-9._-]+\.md' | sort -u)
refs+=$'\n'$(sed -n 's|^Documentation=file://||p' "$R/lib/systemd/system/molt.service")
n=0
for d in $refs; do
    [ -f "$R$d" ] || fail "$d is named by a manual page or molt.service but not installed"
    n=$((n + 1))
done
[ "$n" -ge 5 ] || fail "only $n documentation paths found in the manual pages"
ok "the $n documentation files the manual pages and molt.service name are installed"

# An out-of-tree module against the installed SDK: the template, with CMake and with pkg-config.
W="$OUT/work/mod"
mkdir -p "$W"
cp -r "$R/usr/share/molt/templates/c-module" "$W/my-module"
sed -i 's/c-template/my-module/g' "$W/my-module/CMakeLists.txt" "$W/my-module/c_template.c" "$W/my-module/module.yaml"
cmake -S "$W/my-module" -B "$W/build" -DCMAKE_PREFIX_PATH="$R/usr" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF \
    >"$W/cmake.log" 2>&1 && cmake --build "$W/build" >>"$W/cmake.log" 2>&1 ||
    { cat "$W/cmake.log" >&2; fail "building the template with find_package(molt-sdk) from the root"; }
grep -q "$R/usr/lib/$multiarch/cmake/molt-sdk" "$W/build/CMakeCache.txt" ||
    fail "find_package(molt-sdk) did not find the root's SDK"
mkdir -p "$W/pc"
PKG_CONFIG_LIBDIR="$R/usr/lib/$multiarch/pkgconfig:/usr/lib/$multiarch/pkgconfig:/usr/share/pkgconfig" \
    sh -c 'cc -Wall -Wextra -Werror -fPIC -shared -o "$1/pc/my-module.so" "$1/my-module/c_template.c" $(pkg-config --cflags --libs molt-sdk)' \
    _ "$W" 2>"$W/pc.log" || { cat "$W/pc.log" >&2; fail "building the template with pkg-config molt-sdk from the root"; }
mkdir -p "$R/tmp/mods" "$R/tmp/pcmods" "$R/tmp/target"
cp "$W/build/my-module.so" "$R/tmp/mods/"
cp "$W/my-module/module.yaml" "$R/tmp/mods/my-module.yaml"
cp "$W/pc/my-module.so" "$R/tmp/pcmods/"
for d in mods pcmods; do
    printf 'native_module_dir: /tmp/%s\ndata_dir: /tmp/data-%s\n' "$d" "$d" >"$R/tmp/$d.yaml"
    got=$(in_root molt --config "/tmp/$d.yaml" modules 2>&1) || fail "molt modules with the template: $got"
    grep -q "^my-module *native /tmp/$d/my-module.so (my-module " <<<"$got" ||
        fail "the root's molt does not load the template module ($d): $got"
done
echo "hello" >"$R/tmp/hello.txt"
printf '{"dest": "/tmp/target"}' >"$R/tmp/meta.json"
in_root molt-artifact write module-image -T my-module -n my-module-1 -t my-device -f /tmp/hello.txt \
    -m /tmp/meta.json -o /tmp/my-module-1.mender || fail "molt-artifact write in the root"
if ! in_root molt-module-test --manifest /tmp/mods/my-module.yaml /tmp/mods/my-module.so \
    /tmp/my-module-1.mender >"$W/kit.log" 2>&1; then
    cat "$W/kit.log" >&2
    fail "the root's molt-module-test on the template module"
fi
ok "the C template built against the root's libmolt-sdk-dev (CMake and pkg-config) loads in the root's molt; the root's molt-module-test: $(tail -n 1 "$W/kit.log")"

# Upgrades. First: the shipped configuration changed, the local copy did not: no prompt.
rdpkg -i "${DEB[molt]}" >"$OUT/dpkg-2.log" 2>&1 || { cat "$OUT/dpkg-2.log" >&2; fail "upgrade with an unchanged conffile"; }
! grep -q "Configuration file" "$OUT/dpkg-2.log" || fail "conffile prompt for an unchanged file: $(cat "$OUT/dpkg-2.log")"
cmp -s "$CONF" "$NEW_CONF" || fail "unchanged conffile not replaced by the new one"
[ -z "$(find "$R/etc/molt" -name '*.dpkg-*')" ] || fail "leftovers: $(find "$R/etc/molt")"
ok "upgrade, shipped configuration changed, local copy not: replaced, no prompt"

# A local change (a server) and an upgrade that keeps the conffile: no prompt, the change stays,
# and now that a server is configured the postinst restarts the daemon.
mkdir -p "$R/var/lib/molt" && echo keep >"$R/var/lib/molt/marker"
rdpkg --purge molt >"$OUT/dpkg-3.log" 2>&1 || { cat "$OUT/dpkg-3.log" >&2; fail "purge"; }
[ ! -e "$CONF" ] || fail "purge left $CONF"
[ ! -e "$R/var/lib/molt" ] || fail "purge left /var/lib/molt"
grep -q "^deb-systemd-helper purge molt.service" "$STUBS" || fail "postrm purge did not purge the unit's state: $(stubs)"
ok "purge: /etc/molt/molt.yaml, /var/lib/molt and the unit's state removed"
rdpkg -i "$PREV_SAME" >"$OUT/dpkg-4.log" 2>&1 || { cat "$OUT/dpkg-4.log" >&2; fail "install $PREV_SAME"; }
sed -i 's|^  url: null|  url: https://mender.example.com|' "$CONF"
grep -q "url: https://mender.example.com" "$CONF" || fail "could not set server.url in $CONF"
cp "$CONF" "$OUT/work/local.yaml"
: >"$STUBS"
rdpkg -i "${DEB[molt]}" >"$OUT/dpkg-5.log" 2>&1 || { cat "$OUT/dpkg-5.log" >&2; fail "upgrade with a local change"; }
! grep -q "Configuration file" "$OUT/dpkg-5.log" || fail "conffile prompt though the shipped file did not change"
cmp -s "$CONF" "$OUT/work/local.yaml" || fail "the local change to molt.yaml did not survive the upgrade"
grep -q "^deb-systemd-invoke restart molt.service" "$STUBS" ||
    fail "server configured, but the postinst did not restart molt.service: $(stubs)"
ok "upgrade, local change (server.url): kept without a prompt; daemon restarted once configured"

# Both changed: dpkg must ask; with --force-confold the local file stays.
rdpkg --purge molt >/dev/null 2>&1 || fail "purge"
rdpkg -i "$PREV_CHANGED" >/dev/null 2>&1 || fail "install $PREV_CHANGED"
sed -i 's|^  url: null|  url: https://mender.example.com|' "$CONF"
cp "$CONF" "$OUT/work/local.yaml"
if rdpkg -i "${DEB[molt]}" >"$OUT/dpkg-6.log" 2>&1; then
    fail "upgrade with both the shipped and the local file changed did not ask: $(cat "$OUT/dpkg-6.log")"
fi
grep -q "Configuration file '/etc/molt/molt.yaml'" "$OUT/dpkg-6.log" || fail "no conffile prompt: $(cat "$OUT/dpkg-6.log")"
rdpkg --force-confold --configure molt >"$OUT/dpkg-7.log" 2>&1 || { cat "$OUT/dpkg-7.log" >&2; fail "configure --force-confold"; }
cmp -s "$CONF" "$OUT/work/local.yaml" || fail "--force-confold: the local file was not kept"
cmp -s "$CONF.dpkg-dist" "$NEW_CONF" || fail "--force-confold: the new file is not beside it as .dpkg-dist"
ok "upgrade, both changed: dpkg asks; --force-confold keeps the local file, the new one is molt.yaml.dpkg-dist"
ok "all checks passed (packages in $OUT/src)"
