# SPDX-License-Identifier: Apache-2.0
# The SDK's ABI is exactly its headers:
#  - the functions declared in the installed headers (gcc -aux-info over <molt/sdk.h>; without
#    molt_module_entry, which modules define) are exactly those libmolt-sdk exports (nm -D) and
#    those its version script libmolt-sdk.sym lists: nothing declared is missing (a module calling
#    it would fail at dlopen), nothing internal leaks;
#  - the test module sdk_all (tests/modules/native/sdk_all.c) calls every one of them (nm -u),
#    and molt loads and runs it: the file it writes shows each function's result;
#  - every built-in and test module exports molt_module_entry alone (molt_sdk_add_module);
#  - the built-in modules (and the file module's file-tar.so) link the SDK's archive, so none
#    needs libmolt-sdk.so (modules/CMakeLists.txt); the test module sdk_all needs it, as a module
#    of another project does;
#  - the error codes run without a gap from -1 to one above MOLT_E_END, each described by
#    molt_strerror, and MOLT_E_END is not a code.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

INC="$MOLT_SRC_DIR/sdk/include"
LIB="$MOLT_BUILD_DIR/sdk/lib/libmolt-sdk.so"
SYM="$MOLT_SRC_DIR/sdk/lib/libmolt-sdk.sym"
[ -f "$LIB" ] || fail "libmolt-sdk not built: $LIB"

printf '#include <molt/sdk.h>\n' >"$T/all.c"
gcc -std=c99 -I"$INC" -aux-info "$T/aux.txt" -c "$T/all.c" -o "$T/all.o" || fail "gcc -aux-info"
grep -F "$INC/molt/" "$T/aux.txt" | sed -E 's/^.*\*\/ *//; s/ *\(.*//; s/.*[ *]//' |
    grep -vx molt_module_entry | sort -u >"$T/declared"
[ "$(wc -l <"$T/declared")" -ge 15 ] || fail "too few declarations found: $(cat "$T/declared")"
nm -D --defined-only "$LIB" | awk '$2 == "T" {print $3}' | sed 's/@.*//' | sort -u >"$T/exported"
sed -n '/global:/,/local:/p' "$SYM" | grep -oE '^ +[a-z_]+;' | tr -d ' ;' | sort -u >"$T/listed"
diff -u "$T/declared" "$T/exported" >&2 || fail "the headers' functions and libmolt-sdk's exports differ (- declared only, + exported only)"
diff -u "$T/declared" "$T/listed" >&2 || fail "the headers' functions and libmolt-sdk.sym differ"
! nm -D --defined-only "$LIB" | awk '$2 != "T" && $2 != "A"' | grep . || fail "libmolt-sdk exports data or other symbols"
pass "libmolt-sdk exports exactly the $(wc -l <"$T/declared") functions of its headers (and libmolt-sdk.sym lists them)"

NATIVE_BUILT="$MOLT_BUILD_DIR/tests/modules/native"
SDK_ALL="$NATIVE_BUILT/sdk_all.so"
[ -f "$SDK_ALL" ] || fail "test module not built: $SDK_ALL"
nm -D --undefined-only "$SDK_ALL" | awk '{print $2}' | sed 's/@.*//' | grep '^molt_' | sort -u >"$T/used"
diff -u "$T/declared" "$T/used" >&2 || fail "sdk_all.so does not call every public function (- not called)"
pass "the test module sdk_all calls every public function"

device_new sdkall
mkdir -p "$DEV/native" "$T/dest" "$T/src"
cp "$SDK_ALL" "$DEV/native/"
device_config "native_module_dir: $DEV/native"
head -c 300000 /dev/urandom >"$T/src/payload.bin"
printf '{"dest": "%s", "number": 42, "flag": true, "list": [1, "two"]}' "$T/dest" >"$T/src/meta.json"
printf 'notes\n' >"$T/src/notes.txt"
make_artifact "$T/all.mender" sdk-all-1 sdk-all -f "$T/src/payload.bin" -f "$T/src/notes.txt" -m "$T/src/meta.json"
molt_dev install "$T/all.mender"
expect_rc 0 "molt install with the sdk_all module"
cmp "$T/src/payload.bin" "$T/dest/payload.bin" || fail "the payload was not copied exactly"
assert_eq "version: 1.2
strerror: checksum mismatch
json: 42 1 [1,\"two\"] 2
sink: used" "$(cat "$T/dest/sdk-all.txt")" "what sdk_all wrote"
printf '{"dest": "%s", "number": 1, "flag": true, "list": [], "fail": true}' "$T/dest" >"$T/src/meta.json"
make_artifact "$T/fail.mender" sdk-all-2 sdk-all -f "$T/src/payload.bin" -m "$T/src/meta.json"
molt_dev install "$T/fail.mender"
[ "$RUN_RC" != 0 ] || fail "the failing install succeeded"
grep -q "asked to fail by the meta-data" "$RUN_ERR" || fail "molt_sdk_fail's message not in molt's error: $(cat "$RUN_ERR")"
pass "molt loads sdk_all and runs every SDK function (set_sink used: this host has it)"

for so in "$MOLT_BUILD_DIR"/modules/native/*.so "$NATIVE_BUILT"/*.so; do
    syms=$(nm -D --defined-only "$so" | awk '$2 != "A" {print $3}' | tr '\n' ' ')
    assert_eq "molt_module_entry " "$syms" "the symbols $(basename "$so") exports"
done
pass "every built-in and test module exports molt_module_entry alone"

needs_sdk() {  # FILE: whether its DT_NEEDED names libmolt-sdk.so.<major>
    readelf -d "$1" | grep -q '(NEEDED).*\[libmolt-sdk\.so\.'
}
for so in "$MOLT_BUILD_DIR"/modules/native/*.so "$MOLT_BUILD_DIR"/modules/native/*/*.so; do
    [ -f "$so" ] || continue
    ! needs_sdk "$so" || fail "$(basename "$so") needs libmolt-sdk.so (a built-in module links molt-sdk-static)"
done
needs_sdk "$SDK_ALL" || fail "the test module sdk_all does not need libmolt-sdk.so"
pass "the built-in modules carry the SDK (no libmolt-sdk.so needed); the test module sdk_all needs libmolt-sdk.so"

cat >"$T/codes.c" <<'C'
#include <molt/error.h>
#include <stdio.h>
#include <string.h>
int main(void)
{
    for (int c = -1; c > MOLT_E_END; c--)
        if (strcmp(molt_strerror(c), "unknown error") == 0) {
            printf("code %d has no description\n", c);
            return 1;
        }
    if (strcmp(molt_strerror(MOLT_E_END), "unknown error") != 0) {
        printf("MOLT_E_END (%d) is a code (\"%s\"): move it below the new code\n", MOLT_E_END,
               molt_strerror(MOLT_E_END));
        return 1;
    }
    return 0;
}
C
CC=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$MOLT_BUILD_DIR/CMakeCache.txt")
SAN=()
[ "$MOLT_SANITIZE" = ON ] && SAN=(-fsanitize=address,undefined)
"${CC:-gcc}" -std=c99 "${SAN[@]}" -I"$INC" "$T/codes.c" -o "$T/codes" -L"$(dirname "$LIB")" -lmolt-sdk \
    -Wl,-rpath,"$(dirname "$LIB")" || fail "building the error code check against libmolt-sdk"
run_prog "$T/codes"
expect_rc 0 "the error codes: $(cat "$RUN_OUT")"
pass "error codes -1..MOLT_E_END+1 all described by libmolt-sdk's molt_strerror; MOLT_E_END is not a code"
