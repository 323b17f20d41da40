# SPDX-License-Identifier: Apache-2.0
# The installed SDK: `cmake --install --component sdk` into a scratch prefix puts the headers in include/molt,
# libmolt-sdk.so.<ABI major> (SONAME), molt-sdk.pc and the CMake package there; a native module
# outside the tree then builds against it with pkg-config and with find_package(molt-sdk), and
# molt loads both builds (`molt modules` lists them, a refusal would show).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

PREFIX="$T/prefix"
cmake --install "$MOLT_BUILD_DIR" --component sdk --prefix "$PREFIX" >"$T/install.log" 2>&1 \
    || { cat "$T/install.log" >&2; fail "cmake --install"; }
LIBDIR=$(dirname "$(find "$PREFIX" -name 'libmolt-sdk.so.1' | head -n 1)")
[ -n "$LIBDIR" ] && [ "$LIBDIR" != . ] || fail "libmolt-sdk.so.1 not installed: $(find "$PREFIX" | head -50)"
for h in module.h sdk.h fileops.h json.h error.h; do
    [ -f "$PREFIX/include/molt/$h" ] || fail "include/molt/$h not installed"
done
assert_eq "libmolt-sdk.so.1" "$(objdump -p "$LIBDIR/libmolt-sdk.so" | awk '/SONAME/ {print $2}')" "SONAME"
[ -f "$LIBDIR/pkgconfig/molt-sdk.pc" ] || fail "molt-sdk.pc not installed"
[ -f "$LIBDIR/cmake/molt-sdk/molt-sdk-config.cmake" ] || fail "CMake package not installed"
pass "installed: headers, libmolt-sdk.so.1, molt-sdk.pc, the CMake package"

# A module of its own, outside the tree.
mkdir -p "$T/mod"
cat >"$T/mod/outside.c" <<'C'
#include <molt/sdk.h>

static int init(const struct molt_host_api *host, void **ret_state)
{
    *ret_state = NULL;
    return 0;
}

static int step(void *state)
{
    return 0;
}

static const char *const types[] = {"outside-type", NULL};
static const struct molt_module_desc desc = {
    MOLT_MODULE_V1,
    .name = "outside",
    .version = "0.0.1",
    .payload_types = types,
    .init = init,
    .download = step,
    .artifact_install = step,
};

const struct molt_module_desc *molt_module_entry(void)
{
    (void)molt_sdk_version;
    return &desc;
}
C
# The build's own compiler: sanitizer runtimes of gcc and clang do not mix in one process.
CC=$(sed -n 's/^CMAKE_C_COMPILER:[A-Z]*=//p' "$MOLT_BUILD_DIR/CMakeCache.txt")
CC=${CC:-gcc}
SAN=()
[ "$MOLT_SANITIZE" = ON ] && SAN=(-fsanitize=address,undefined)

# pkg-config
export PKG_CONFIG_PATH="$LIBDIR/pkgconfig"
cflags=$(pkg-config --cflags molt-sdk) || fail "pkg-config --cflags molt-sdk"
libs=$(pkg-config --libs molt-sdk) || fail "pkg-config --libs molt-sdk"
mkdir -p "$T/native"
# shellcheck disable=SC2086
"$CC" -std=c99 -Wall -Wextra -Werror -Wno-unused-parameter -fPIC -shared "${SAN[@]}" $cflags \
    "$T/mod/outside.c" -o "$T/native/outside-pc.so" $libs -Wl,-rpath,"$LIBDIR" 2>"$T/err" \
    || { cat "$T/err" >&2; fail "building with pkg-config"; }
pass "a module builds with pkg-config molt-sdk"
# Without libjansson-dev: pkg-config sees only the SDK's .pc file (PKG_CONFIG_LIBDIR), as on a
# machine without jansson.pc; libmolt-sdk's use of jansson is its own, not the module's.
PKG_CONFIG_LIBDIR="$LIBDIR/pkgconfig" pkg-config --cflags --libs molt-sdk >"$T/pc.out" 2>&1 ||
    fail "pkg-config molt-sdk needs more than the SDK: $(cat "$T/pc.out")"
pass "pkg-config molt-sdk works without jansson.pc (no libjansson-dev needed)"

# molt_sdk_add_module() of the installed CMake package: the module exports molt_module_entry
# alone, and an undefined symbol fails at link time (-Wl,--no-undefined), not at dlopen.
mkdir -p "$T/helper"
cp "$T/mod/outside.c" "$T/helper/"
cat >"$T/helper/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(helper C)
find_package(molt-sdk 1 REQUIRED)
molt_sdk_add_module(outside-helper outside.c)
CM
cmake -S "$T/helper" -B "$T/helper/build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_C_COMPILER="$CC" \
    -DCMAKE_C_FLAGS="${SAN[*]}" -DCMAKE_MODULE_LINKER_FLAGS="${SAN[*]}" >"$T/helper.log" 2>&1 \
    && cmake --build "$T/helper/build" >>"$T/helper.log" 2>&1 \
    || { cat "$T/helper.log" >&2; fail "building with molt_sdk_add_module()"; }
[ -f "$T/helper/build/outside-helper.so" ] || fail "molt_sdk_add_module made no outside-helper.so"
assert_eq "molt_module_entry" "$(nm -D --defined-only "$T/helper/build/outside-helper.so" | awk '{print $3}')" \
    "the symbols a module built with molt_sdk_add_module exports"
if [ "$MOLT_SANITIZE" != ON ]; then
    printf 'int molt_sdk_no_such_function(void);\nint use_it(void) { return molt_sdk_no_such_function(); }\n' >"$T/helper/missing.c"
    sed -i 's/outside.c)/outside.c missing.c)/' "$T/helper/CMakeLists.txt"
    cmake -S "$T/helper" -B "$T/helper/build" >>"$T/helper.log" 2>&1
    ! cmake --build "$T/helper/build" >"$T/helper2.log" 2>&1 || fail "a module using an undefined function linked"
    grep -q "undefined reference to .molt_sdk_no_such_function" "$T/helper2.log" ||
        fail "no link error naming the undefined function: $(tail -5 "$T/helper2.log")"
fi
pass "molt_sdk_add_module: molt_module_entry alone exported, undefined symbols fail the link"

# find_package(molt-sdk)
cat >"$T/mod/CMakeLists.txt" <<'CM'
cmake_minimum_required(VERSION 3.20)
project(outside C)
find_package(molt-sdk 1 REQUIRED)
add_library(outside MODULE outside.c)
target_link_libraries(outside PRIVATE molt::molt-sdk)
set_target_properties(outside PROPERTIES PREFIX "" OUTPUT_NAME outside-cmake)
CM
cmake -S "$T/mod" -B "$T/mod/build" -DCMAKE_PREFIX_PATH="$PREFIX" -DCMAKE_C_COMPILER="$CC" \
    -DCMAKE_C_FLAGS="${SAN[*]}" -DCMAKE_MODULE_LINKER_FLAGS="${SAN[*]}" \
    -DCMAKE_INSTALL_RPATH="$LIBDIR" -DCMAKE_BUILD_WITH_INSTALL_RPATH=ON >"$T/cmake.log" 2>&1 \
    && cmake --build "$T/mod/build" >>"$T/cmake.log" 2>&1 \
    || { cat "$T/cmake.log" >&2; fail "building with find_package(molt-sdk)"; }
cp "$T/mod/build/outside-cmake.so" "$T/native/"
pass "a module builds with find_package(molt-sdk)"

# molt loads them: one claims the type, the other is refused for claiming it again.
device_new dev
device_config "native_module_dir: $T/native"
molt_dev modules
expect_rc 0 "molt modules"
assert_match "outside-type +native +$T/native/outside-cmake.so \\(outside 0\\.0\\.1\\)" "$(cat "$RUN_OUT")" "module built with CMake loads"
grep -qF "$T/native/outside-pc.so (refused: module $T/native/outside-pc.so: payload type outside-type is already claimed by module $T/native/outside-cmake.so)" "$RUN_OUT" \
    || fail "the pkg-config build was not loaded and checked: $(cat "$RUN_OUT")"
pass "molt loads modules built against the installed SDK"
