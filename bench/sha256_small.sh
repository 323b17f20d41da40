#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: where MOLT_SHA256_SMALL_MAX (core/util/sha256.h) comes from. Prints, next to each
# other in one run:
#   - the in-tree SHA-256 (core/util/sha256.c, compiled as the build compiles it: -O2) against
#     libcrypto's SHA256_Update (SHA-NI where the CPU has it), MB/s and microseconds per digest,
#     for 64 B to 1 MiB (the best of 5 rounds of enough digests for ~40 MB each);
#   - libcrypto's load: the wall time of dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL), as
#     core/util/crypto_lib.c does it, in a fresh process (median of 101 processes);
#   - the line where the in-tree code's extra time equals that load.
# Not part of ctest. Usage: bench/sha256_small.sh   (needs cc and libssl-dev)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
mkdir -p "$out"
echo '*' >"$out/.gitignore"

cat >"$out/sha256_small.c" <<'C'
#define OPENSSL_SUPPRESS_DEPRECATED
#include <dlfcn.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "util/sha256.h"
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}
#ifdef LOAD_ONLY   /* microseconds of libcrypto's dlopen, in a program that does not link it */
int main(void)
{
    double t0 = now();
    if (!dlopen("libcrypto.so.3", RTLD_NOW | RTLD_LOCAL))
        return 1;
    printf("%.0f\n", (now() - t0) * 1e6);
    return 0;
}
#else
int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    size_t n = strtoul(argv[1], NULL, 0);
    int reps = (int)(40000000 / n) + 1;
    unsigned char *b = malloc(n), a[32], z[32];
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(i * 7 + 1);
    double best_tree = 1e9, best_ssl = 1e9;
    for (int round = 0; round < 5; round++) {
        double t = now();
        for (int r = 0; r < reps; r++) {
            molt_sha256_ctx c;
            molt_sha256_init(&c);
            molt_sha256_update(&c, b, n);
            molt_sha256_final(&c, a);
        }
        if ((t = now() - t) < best_tree)
            best_tree = t;
        t = now();
        for (int r = 0; r < reps; r++) {
            SHA256_CTX c;
            SHA256_Init(&c);
            SHA256_Update(&c, b, n);
            SHA256_Final(z, &c);
        }
        if ((t = now() - t) < best_ssl)
            best_ssl = t;
    }
    if (memcmp(a, z, 32) != 0)
        return 2;
    printf("%zu %.0f %.2f %.0f %.2f\n", n, n * reps / best_tree / 1e6, best_tree / reps * 1e6,
           n * reps / best_ssl / 1e6, best_ssl / reps * 1e6);
    return 0;
}
#endif
C
cc -O2 -Wall -Werror -I"$top/core" -o "$out/sha256_small" "$out/sha256_small.c" "$top/core/util/sha256.c" \
    -lcrypto
cc -O2 -Wall -Werror -DLOAD_ONLY -I"$top/core" -o "$out/sha256_load" "$out/sha256_small.c" -ldl

printf '%10s %14s %12s %14s %12s\n' bytes "in-tree MB/s" "us/digest" "libcrypto MB/s" "us/digest"
for n in 64 1024 16384 65536 1048576; do
    printf '%10s %14s %12s %14s %12s\n' $("$out/sha256_small" "$n")
done
load=$(for i in $(seq 101); do "$out/sha256_load"; done | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }')
echo "libcrypto.so.3 dlopen in a fresh process: $load us (median of 101)"
set -- $("$out/sha256_small" 65536)
awk -v t="$3" -v s="$5" -v l="$load" 'BEGIN {
    x = (t - s) / 65536   # extra microseconds per byte, in-tree against libcrypto
    printf "in-tree extra per 64 KiB: %.0f us; it equals the load at %.0f KiB\n", t - s, l / x / 1024 }'
