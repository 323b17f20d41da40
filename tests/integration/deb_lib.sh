# SPDX-License-Identifier: Apache-2.0
# Scratch roots and test packages for the deb module's tests (source after lib.sh):
#   new_root DIR   an empty root dpkg can install into, with busybox as its shell
#   pkg NAME VERSION DEPENDS POSTINST_EXIT [CONTROL_LINE]   build $T/debs/NAME_VERSION-EXIT.deb
# new_root DIR: an empty root dpkg can install into, with busybox as its shell.
new_root() {
    local r=$1 a
    mkdir -p "$r/var/lib/dpkg/info" "$r/var/lib/dpkg/updates" "$r/var/lib/dpkg/triggers" \
        "$r/bin" "$r/tmp" "$r/etc"
    : >"$r/var/lib/dpkg/status"
    : >"$r/var/lib/dpkg/available"
    cp "$(command -v busybox)" "$r/bin/busybox"
    for a in $(busybox --list); do
        [ -e "$r/bin/$a" ] || ln -s busybox "$r/bin/$a"
    done
}

# pkg NAME VERSION DEPENDS POSTINST_EXIT [CONTROL_LINE]: $T/debs/NAME_VERSION-EXIT.deb; its
# postinst appends "NAME VERSION configure" to /etc/marks in the root, runs $PKG_POSTINST_EXTRA
# (shell lines, if set) and exits POSTINST_EXIT.
pkg() {
    local name=$1 version=$2 depends=$3 rc=${4:-0} d="$T/pkgsrc/$1-$2-${4:-0}"
    mkdir -p "$d/DEBIAN" "$d/usr/share/$name" "$T/debs"
    printf '%s %s\n' "$name" "$version" >"$d/usr/share/$name/version"
    {
        printf 'Package: %s\nVersion: %s\nArchitecture: all\n' "$name" "$version"
        printf 'Maintainer: molt tests <t@example.com>\nDescription: molt test package %s\n' "$name"
        [ -z "$depends" ] || printf 'Depends: %s\n' "$depends"
        [ -z "${5:-}" ] || printf '%s\n' "$5"
    } >"$d/DEBIAN/control"
    printf '#!/bin/sh\necho "%s %s $1" >>/etc/marks\n%sexit %s\n' "$name" "$version" \
        "${PKG_POSTINST_EXTRA:-}" "$rc" >"$d/DEBIAN/postinst"
    printf '#!/bin/sh\necho "%s %s postrm $1" >>/etc/marks\nexit 0\n' "$name" "$version" >"$d/DEBIAN/postrm"
    chmod 0755 "$d/DEBIAN/postinst" "$d/DEBIAN/postrm"
    dpkg-deb --root-owner-group --build "$d" "$T/debs/${name}_${version}-${rc}.deb" >/dev/null ||
        fail "dpkg-deb --build $name $version"
}

