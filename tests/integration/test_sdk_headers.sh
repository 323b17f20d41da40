# SPDX-License-Identifier: Apache-2.0
# The public SDK headers (sdk/include/molt/*.h) are self-contained C99 and C++: each one compiles
# alone as the first include of a file with -std=c99 -pedantic -Wall -Wextra -Werror (gcc, and
# clang when installed), and as C++11 with g++ under the same flags; a module using every public
# declaration (module.h's descriptor with MOLT_MODULE_V1 and host table, sdk.h's macros)
# compiles both ways too.
. "$(dirname "$0")/lib.sh"

INC="$MOLT_SRC_DIR/sdk/include"
command -v g++ >/dev/null || fail "g++ is not installed (tools/deps.sh lists build-essential)"
compilers=(gcc)
command -v clang >/dev/null && compilers+=(clang)
FLAGS=(-Wall -Wextra -pedantic -Werror -Wstrict-prototypes -Wmissing-prototypes -Wshadow -Wundef)
CXXFLAGS=(-Wall -Wextra -pedantic -Werror -Wshadow -Wundef)

n=0
for h in "$INC"/molt/*.h; do
    name=$(basename "$h")
    printf '#include <molt/%s>\n#include <molt/%s>\nint molt_header_test_dummy;\n' "$name" "$name" >"$T/alone.c"
    for cc in "${compilers[@]}"; do
        "$cc" -std=c99 "${FLAGS[@]}" -I"$INC" -c "$T/alone.c" -o "$T/alone.o" 2>"$T/err" \
            || { cat "$T/err" >&2; fail "$name does not compile alone as C99 with $cc"; }
    done
    cp "$T/alone.c" "$T/alone.cc"
    g++ -std=c++11 "${CXXFLAGS[@]}" -I"$INC" -c "$T/alone.cc" -o "$T/alone.o" 2>"$T/err" \
        || { cat "$T/err" >&2; fail "$name does not compile alone as C++ with g++"; }
    n=$((n + 1))
done
[ "$n" -ge 5 ] || fail "expected at least 5 public headers, found $n"
pass "$n headers compile alone as C99 (${compilers[*]}) and C++11 (g++)"

# Every public declaration used once, from C and from C++.
cat >"$T/use.c" <<'C'
#include <molt/sdk.h>
#include <stdlib.h>

static int init(const struct molt_host_api *host, void **ret_state)
{
    struct molt_sdk_error err = {0};
    char *s = NULL, *p = NULL;
    int64_t i = 0;
    int b = 0;
    size_t n = 0;
    molt_sdk_log_info(host, "ABI %u.%u sdk %s", host->abi_major, host->abi_minor,
                      molt_sdk_version());
    if (MOLT_HOST_HAS(host, config_get) && host->config_get(host, "x") == NULL)
        molt_sdk_log_debug(host, "no config");
    if (molt_sdk_json_string(host->meta_data(host), "/a", &s, &err) == 0 &&
        molt_sdk_json_int(host->type_info(host), "/b", &i, &err) == 0 &&
        molt_sdk_json_bool(host->header_info(host), "/c", &b, &err) == 0 &&
        molt_sdk_json_count(host->meta_data(host), "", &n, &err) == 0 &&
        molt_sdk_path_join(host->work_dir(host), "f", &p, &err) == 0)
        molt_sdk_write_file_atomic(p, "x", 1, 0644, &err);
    free(s);
    free(p);
    *ret_state = NULL;
    return err.code ? molt_sdk_fail(host, &err) : 0;
}

static int download(void *state)
{
    return MOLT_OK;
}

static const char *const types[] = {"t", NULL};
static const struct molt_module_desc desc = {
    MOLT_MODULE_V1, "use", "1",
    types, MOLT_CAP_STREAMING, init, NULL, download, download,
    NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {NULL}
};

MOLT_MODULE_EXPORT const struct molt_module_desc *molt_module_entry(void)
{
    return &desc;
}
C
cp "$T/use.c" "$T/use.cc"
for cc in "${compilers[@]}"; do
    "$cc" -std=c99 "${FLAGS[@]}" -Wno-unused-parameter -I"$INC" -c "$T/use.c" -o "$T/use.o" 2>"$T/err" \
        || { cat "$T/err" >&2; fail "a module using every declaration does not compile as C99 with $cc"; }
done
g++ -std=c++11 "${CXXFLAGS[@]}" -Wno-unused-parameter -Wno-missing-field-initializers -I"$INC" \
    -c "$T/use.cc" -o "$T/use.o" 2>"$T/err" \
    || { cat "$T/err" >&2; fail "a module using every declaration does not compile as C++"; }
nm "$T/use.o" | grep -q " T molt_module_entry$" || fail "molt_module_entry is mangled or missing in C++"
pass "a module using the whole public API compiles as C99 and as C++ (entry symbol unmangled)"
