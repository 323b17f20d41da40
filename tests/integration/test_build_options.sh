# SPDX-License-Identifier: Apache-2.0
# The build's options as a packager meets them (docs/packaging.md), by configuring this source
# tree in scratch folders with cmake:
#  - the defaults: MOLT_WERROR off, MOLT_HARDENING on, MOLT_LIBARCHIVE, MOLT_LIBYAML and MOLT_ZLIB
#    static (libarchive.a, libyaml.a and libz.a linked);
#  - MOLT_LIBARCHIVE=static against a libarchive installed without libarchive.a (its pkg-config
#    file, copied with libdir pointing at a folder that holds only libarchive.so) fails, naming
#    the option and the folder; auto then links shared; with libarchive.a there, static links it;
#  - a value that is not static, shared or auto (the old ON) is refused;
#  - MOLT_LIBYAML and MOLT_ZLIB: shared on request (as debian/rules asks), ON refused.
. "$(dirname "$0")/lib.sh"

command -v pkg-config >/dev/null || { echo "skip: no pkg-config"; exit 77; }
libdir=$(pkg-config --variable=libdir libarchive)
so=$(ls "$libdir"/libarchive.so 2>/dev/null || true)
[ -n "$so" ] || fail "no libarchive.so in $libdir"

configure() {  # BUILD-DIR CMAKE-ARGS...: configure, output in $T/cmake.log, returns cmake's status
    local dir=$1
    shift
    PKG_CONFIG_PATH="$T/pc" cmake -S "$MOLT_SRC_DIR" -B "$dir" -DMOLT_BUILD_TESTS=OFF -DMOLT_MAN=OFF \
        "$@" >"$T/cmake.log" 2>&1
}
cached() { sed -n "s/^$2:[A-Z]*=//p" "$1/CMakeCache.txt"; }

# The defaults, against the host's libarchive (before the scratch one exists).
if [ -f "$libdir/libarchive.a" ]; then
    configure "$T/default" || { cat "$T/cmake.log" >&2; fail "configuring with the defaults"; }
    assert_eq static "$(cached "$T/default" MOLT_LIBARCHIVE_LINKED)" "libarchive linked by default"
else
    ! configure "$T/default" || fail "the default (static) configured without $libdir/libarchive.a"
fi
assert_eq OFF "$(cached "$T/default" MOLT_WERROR)" "MOLT_WERROR by default"
assert_eq ON "$(cached "$T/default" MOLT_HARDENING)" "MOLT_HARDENING by default"
assert_eq static "$(cached "$T/default" MOLT_LIBARCHIVE)" "MOLT_LIBARCHIVE by default"
for opt in MOLT_LIBYAML:yaml-0.1:libyaml MOLT_ZLIB:zlib:libz; do
    name=${opt%%:*} rest=${opt#*:}
    assert_eq static "$(cached "$T/default" "$name")" "$name by default"
    if [ -f "$(pkg-config --variable=libdir "${rest%%:*}")/${rest#*:}.a" ]; then
        assert_eq static "$(cached "$T/default" "${name}_LINKED")" "${name#MOLT_} linked by default"
    fi
done
pass "defaults: MOLT_WERROR=OFF, MOLT_HARDENING=ON, MOLT_LIBARCHIVE, MOLT_LIBYAML and MOLT_ZLIB static"

# _FORTIFY_SOURCE: ours (3 with Debian 12's gcc and glibc) by default; a distribution's value in
# CFLAGS (dpkg-buildflags) stands alone, without a second definition.
flags() { cat "$1/core/CMakeFiles/molt-core.dir/flags.make"; }
if [ -f "$T/default/CMakeCache.txt" ] && flags "$T/default" >/dev/null 2>&1; then
    assert_eq 1 "$(flags "$T/default" | grep -o -- '-D_FORTIFY_SOURCE=[0-9]' | wc -l)" \
        "_FORTIFY_SOURCE definitions by default"
    CFLAGS="-O2 -D_FORTIFY_SOURCE=2" configure "$T/distro" -DMOLT_LIBARCHIVE=shared ||
        { cat "$T/cmake.log" >&2; fail "configuring with CFLAGS=-D_FORTIFY_SOURCE=2"; }
    assert_eq "-D_FORTIFY_SOURCE=2" "$(flags "$T/distro" | grep -o -- '-D_FORTIFY_SOURCE=[0-9]' | sort -u)" \
        "_FORTIFY_SOURCE with the distribution's CFLAGS"
    assert_eq 1 "$(flags "$T/distro" | grep -o -- '-D_FORTIFY_SOURCE=[0-9]' | wc -l)" \
        "_FORTIFY_SOURCE definitions with the distribution's CFLAGS"
    pass "_FORTIFY_SOURCE defined once: ours by default, the distribution's when CFLAGS has it"
fi

# A libarchive without its static library: its .pc, libdir moved to a folder of ours.
mkdir -p "$T/pc" "$T/lib"
ln -s "$so" "$T/lib/libarchive.so"
pc=$(pkg-config --path libarchive)
sed "s|^libdir=.*|libdir=$T/lib|" "$pc" >"$T/pc/libarchive.pc"
[ "$(PKG_CONFIG_PATH="$T/pc" pkg-config --variable=libdir libarchive)" = "$T/lib" ] ||
    fail "the scratch libarchive.pc is not the one pkg-config finds"

B="$T/b"
if configure "$B" -DMOLT_LIBARCHIVE=static; then
    fail "MOLT_LIBARCHIVE=static configured without a libarchive.a"
fi
# cmake wraps its messages: compare with the lines joined.
tr -s '\n ' '  ' <"$T/cmake.log" | grep -q "MOLT_LIBARCHIVE=static: no libarchive.a in $T/lib (the" ||
    { cat "$T/cmake.log" >&2; fail "static without libarchive.a: not the expected message"; }
pass "MOLT_LIBARCHIVE=static without libarchive.a: configure fails and names $T/lib"

configure "$B" -DMOLT_LIBARCHIVE=auto || { cat "$T/cmake.log" >&2; fail "MOLT_LIBARCHIVE=auto"; }
grep -q 'libarchive: shared (MOLT_LIBARCHIVE=auto)' "$T/cmake.log" ||
    { cat "$T/cmake.log" >&2; fail "auto without libarchive.a did not say shared"; }
assert_eq shared "$(cached "$B" MOLT_LIBARCHIVE_LINKED)" "auto without libarchive.a"
pass "MOLT_LIBARCHIVE=auto without libarchive.a: shared"

if [ -f "$libdir/libarchive.a" ]; then
    ln -s "$libdir/libarchive.a" "$T/lib/libarchive.a"
    configure "$B" -DMOLT_LIBARCHIVE=static || { cat "$T/cmake.log" >&2; fail "static with libarchive.a"; }
    grep -q "libarchive: static ($T/lib/libarchive.a" "$T/cmake.log" ||
        { cat "$T/cmake.log" >&2; fail "static did not take $T/lib/libarchive.a"; }
    assert_eq static "$(cached "$B" MOLT_LIBARCHIVE_LINKED)" "static with libarchive.a"
    pass "MOLT_LIBARCHIVE=static with libarchive.a: linked from the same folder"
else
    echo "skip: no $libdir/libarchive.a on this host (Debian: libarchive-dev)"
fi

for bad in ON OFF yes; do
    if configure "$B" -DMOLT_LIBARCHIVE=$bad; then
        fail "MOLT_LIBARCHIVE=$bad was accepted"
    fi
    tr -s '\n ' '  ' <"$T/cmake.log" |
        grep -q "MOLT_LIBARCHIVE is \"$bad\": expected static, shared or auto" ||
        { cat "$T/cmake.log" >&2; fail "MOLT_LIBARCHIVE=$bad: not the expected message"; }
done
pass "MOLT_LIBARCHIVE=ON, OFF, yes: refused"

# libyaml and zlib: the same choice (one CMake function for the three), shared on request.
configure "$B" -DMOLT_LIBARCHIVE=shared -DMOLT_LIBYAML=shared -DMOLT_ZLIB=shared ||
    { cat "$T/cmake.log" >&2; fail "libarchive, libyaml and zlib shared"; }
for name in MOLT_LIBARCHIVE MOLT_LIBYAML MOLT_ZLIB; do
    assert_eq shared "$(cached "$B" "${name}_LINKED")" "$name=shared"
done
grep -q 'libyaml: shared (MOLT_LIBYAML=shared)' "$T/cmake.log" &&
    grep -q 'zlib: shared (MOLT_ZLIB=shared)' "$T/cmake.log" ||
    { cat "$T/cmake.log" >&2; fail "libyaml and zlib shared: not said"; }
for name in MOLT_LIBYAML MOLT_ZLIB; do
    if configure "$B" -D$name=ON; then
        fail "$name=ON was accepted"
    fi
    tr -s '\n ' '  ' <"$T/cmake.log" | grep -q "$name is \"ON\": expected static, shared or auto" ||
        { cat "$T/cmake.log" >&2; fail "$name=ON: not the expected message"; }
done
pass "MOLT_LIBYAML and MOLT_ZLIB: shared on request, ON refused"
