# SPDX-License-Identifier: Apache-2.0
# The hardening of MOLT_HARDENING (on by default; docs/packaging.md) on every ELF file that
# `cmake --install` puts in a scratch prefix: the programs, libmolt-sdk.so, the native modules (and
# the file module's tar support, file.d/file-tar.so) and the kit's shim.
#  - full RELRO: a GNU_RELRO segment and BIND_NOW (DT_FLAGS BIND_NOW or DT_FLAGS_1 NOW);
#  - PIE: every program is ET_DYN with DT_FLAGS_1 PIE (a shared object is ET_DYN);
#  - stack protector: __stack_chk_fail imported (every file has functions with local arrays);
#  - _FORTIFY_SOURCE: some __*_chk function imported (every file calls snprintf, memcpy or read).
#    Not in a sanitizer build (the build leaves fortify out: ASan intercepts the unchecked
#    functions) nor in a Debug build (fortify needs optimization).
# A build configured with -DMOLT_HARDENING=OFF skips (77).
. "$(dirname "$0")/lib.sh"

cache="$MOLT_BUILD_DIR/CMakeCache.txt"
[ -f "$cache" ] || fail "no CMakeCache.txt in $MOLT_BUILD_DIR"
cached() { sed -n "s/^$1:[A-Z]*=//p" "$cache"; }
if [ "$(cached MOLT_HARDENING)" = OFF ]; then
    echo "skip: MOLT_HARDENING=OFF in this build"
    exit 77
fi
fortify=yes
if [ "$(cached MOLT_SANITIZE)" = ON ] || [ "$(cached MOLT_FUZZ)" = ON ]; then
    fortify="no (sanitizer build)"
elif [ "$(cached CMAKE_BUILD_TYPE)" = Debug ]; then
    fortify="no (Debug build, no optimization)"
fi

P="$T/prefix"
cmake --install "$MOLT_BUILD_DIR" --prefix "$P" >"$T/install.log" 2>&1 ||
    { cat "$T/install.log" >&2; fail "cmake --install"; }

elves=()
while IFS= read -r f; do
    [ "$(head -c 4 "$f" | od -An -c | tr -d ' ')" = '177ELF' ] && elves+=("$f")
done < <(find "$P" -type f | sort)
names=$(for f in "${elves[@]}"; do basename "$f"; done | tr '\n' ' ')
for want in molt molt-artifact molt-module-test libmolt-sdk.so file.so file-tar.so rootfs-image.so \
    deb.so; do
    [[ " $names" == *" $want"* ]] || fail "$want is not among the installed ELF files: $names"
done

bad=0
flaw() { echo "FAIL: $1: $2" >&2; bad=1; }
for f in "${elves[@]}"; do
    rel=${f#"$P"/}
    header=$(readelf -hW "$f")
    dynamic=$(readelf -dW "$f")
    grep -q 'GNU_RELRO' <(readelf -lW "$f") || flaw "$rel" "no GNU_RELRO segment (no -z relro)"
    grep -Eq '\(FLAGS\).*BIND_NOW|\(FLAGS_1\).*NOW' <<<"$dynamic" ||
        flaw "$rel" "no BIND_NOW (no -z now: RELRO is partial)"
    grep -Eq 'Type: +DYN' <<<"$header" || flaw "$rel" "not ET_DYN: $(grep 'Type:' <<<"$header")"
    if grep -q '(INTERP)\|\.interp' <(readelf -lW "$f"); then   # a program
        grep -Eq '\(FLAGS_1\).*PIE' <<<"$dynamic" || flaw "$rel" "a program without DT_FLAGS_1 PIE"
    fi
    imports=$(readelf --dyn-syms -W "$f" | awk '$7 == "UND" { print $8 }' | sed 's/@.*//')
    grep -qx '__stack_chk_fail' <<<"$imports" ||
        flaw "$rel" "does not import __stack_chk_fail (no -fstack-protector-strong)"
    if [ "$fortify" = yes ]; then
        grep -Eqx '__[a-z0-9_]+_chk' <<<"$imports" ||
            flaw "$rel" "imports no __*_chk function (no _FORTIFY_SOURCE)"
    fi
done
[ "$bad" = 0 ] || fail "hardening missing (above)"
pass "${#elves[@]} ELF files: full RELRO, BIND_NOW, PIE programs, stack protector; fortify: $fortify"
