#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: read (stream, decompress, hash, verify) a 64 MiB and a 1 GiB artifact, gzip and
# zstd, with `molt-artifact read` and `mender-artifact read`, next to the physical limit of the
# same work measured in the same run. Prints wall time, MB/s and peak RSS per run (medians), and
# checks that molt's peak RSS stays flat from 64 MiB to 1 GiB. Not part of ctest.
#
# Usage: bench/artifact_read.sh            (RUNS=3 by default; MOLT_BUILD_DIR to reuse a build)
# Artifacts and payloads are kept in bench/out/ (ignored by git) and reused by later runs.
#
# The payload is random data written as base64 text: it compresses to about 3/4 (gzip) so the
# decompressors do real work, unlike raw /dev/urandom that they would just copy.
# mender-artifact 3.9 cannot read zstd (added in 3.10): for zstd, molt is compared with the
# limit only.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
runs=${RUNS:-3}
mkdir -p "$out"
echo '*' >"$out/.gitignore"

"$top/tools/deps.sh"  # GNU time, zstd, mender-artifact, compilers

# --- programs ------------------------------------------------------------------------------
build=${MOLT_BUILD_DIR:-$top/build/bench}
if [ -z "${MOLT_BUILD_DIR:-}" ]; then
    cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMOLT_BUILD_TESTS=OFF \
        -DMOLT_SANITIZE=OFF -DMOLT_LIBARCHIVE=static >/dev/null
    cmake --build "$build" -j "$(nproc)" --target molt-artifact >/dev/null
fi
molt_artifact="$build/sdk/artifact/molt-artifact"
[ -x "$molt_artifact" ] || { echo "no molt-artifact in $build" >&2; exit 1; }

# The limit: one process, one thread, no tar library and no pipes: find the data member in the
# outer tar, decompress it with zlib or libzstd and SHA-256 every decompressed byte (OpenSSL EVP,
# the same primitives molt uses). Everything molt does beyond this is overhead.
cat >"$out/limit.c" <<'EOF'
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>
#define CHUNK (1 << 20)
static unsigned char in[CHUNK], outb[CHUNK];
static EVP_MD_CTX *md;
static unsigned long long total;
static void hash(const void *p, size_t n) { EVP_DigestUpdate(md, p, n); total += n; }
static size_t fill(int fd, size_t want) {
    size_t got = 0;
    while (got < want) { ssize_t n = read(fd, in + got, want - got); if (n <= 0) break; got += (size_t)n; }
    return got;
}
int main(int argc, char **argv) {
    int fd = open(argv[1], O_RDONLY);
    unsigned char h[512];
    if (fd < 0) { perror(argv[1]); return 1; }
    md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    for (;;) {  /* outer ustar headers: find data/0000.tar.* */
        if (read(fd, h, 512) != 512 || !h[0]) { fprintf(stderr, "no data member\n"); return 1; }
        unsigned long long size = strtoull((char *)h + 124, NULL, 8);
        if (!strncmp((char *)h, "data/0000.tar", 13)) {
            const char *name = (char *)h;
            if (strstr(name, ".gz")) {
                z_stream z = {0};
                inflateInit2(&z, 15 + 16);
                int rc = Z_OK;
                while (size && rc != Z_STREAM_END) {
                    size_t n = fill(fd, size < CHUNK ? size : CHUNK);
                    if (!n) return 1;
                    size -= n;
                    z.next_in = in; z.avail_in = (uInt)n;
                    do {
                        z.next_out = outb; z.avail_out = CHUNK;
                        rc = inflate(&z, Z_NO_FLUSH);
                        if (rc == Z_BUF_ERROR) break;  /* needs more input */
                        if (rc != Z_OK && rc != Z_STREAM_END) { fprintf(stderr, "inflate %d\n", rc); return 1; }
                        hash(outb, CHUNK - z.avail_out);
                    } while (z.avail_out == 0 || (z.avail_in && rc != Z_STREAM_END));
                }
            } else if (strstr(name, ".zst")) {
                ZSTD_DStream *d = ZSTD_createDStream();
                while (size) {
                    size_t n = fill(fd, size < CHUNK ? size : CHUNK);
                    if (!n) return 1;
                    size -= n;
                    ZSTD_inBuffer ib = {in, n, 0};
                    while (ib.pos < ib.size) {
                        ZSTD_outBuffer ob = {outb, CHUNK, 0};
                        size_t r = ZSTD_decompressStream(d, &ob, &ib);
                        if (ZSTD_isError(r)) { fprintf(stderr, "zstd: %s\n", ZSTD_getErrorName(r)); return 1; }
                        hash(outb, ob.pos);
                    }
                }
            } else {
                fprintf(stderr, "%s: only .gz and .zst are measured\n", name);
                return 1;
            }
            unsigned char dg[32];
            EVP_DigestFinal_ex(md, dg, NULL);
            printf("%llu bytes, sha256 %02x%02x%02x%02x...\n", total, dg[0], dg[1], dg[2], dg[3]);
            return 0;
        }
        lseek(fd, (off_t)((size + 511) / 512 * 512), SEEK_CUR);
    }
}
EOF
cc -O2 -Wall -Werror -o "$out/limit" "$out/limit.c" -lz -lzstd -lcrypto

# --- inputs --------------------------------------------------------------------------------
make_payload() {  # NAME MIB
    local f="$out/payload-$1.bin"
    if [ ! -s "$f" ] || [ "$(stat -c %s "$f")" != $(($2 << 20)) ]; then
        echo "generating $f" >&2
        head -c $((($2 << 20) * 3 / 4)) /dev/urandom | base64 -w 0 >"$f.tmp"
        mv "$f.tmp" "$f"
    fi
}
make_artifact() {  # NAME COMPRESSION
    local a="$out/art-$1-$2.mender" p="$out/payload-$1.bin"
    [ -s "$a" ] && [ "$a" -nt "$p" ] && [ "$a" -nt "$0" ] && return
    echo "writing $a" >&2
    # Written by molt-artifact (the interop test shows mender-artifact reads its gzip output):
    # mender-artifact 3.9's gzip stores this payload nearly uncompressed (ratio 0.998 against
    # gzip -6's 0.76), which would leave the decompressor next to nothing to do.
    "$molt_artifact" write module-image -T bench -n "bench-$1" -t bench -f "$p" \
        --compression "$2" -o "$a.tmp" >/dev/null
    mv "$a.tmp" "$a"
}
for s in 64M:64 1G:1024; do
    make_payload "${s%%:*}" "${s##*:}"
    for c in gzip zstd; do make_artifact "${s%%:*}" "$c"; done
done

# --- measure -------------------------------------------------------------------------------
# One run: wall seconds and peak RSS (KiB) from GNU time into $out/.time; output discarded.
measure() {  # CMD...
    /usr/bin/time -o "$out/.time" -f '%e %M' "$@" >/dev/null 2>"$out/.err" ||
        { cat "$out/.err" >&2; echo "failed: $*" >&2; exit 1; }
}
median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }

declare -A rss_of
printf '\n%-10s %-44s %8s %9s %13s\n' artifact "tool (median of $runs)" "wall s" "MB/s" "peak RSS MiB"
row() {  # LABEL SIZE-BYTES TOOL-LABEL CMD...
    local label=$1 bytes=$2 tool=$3 i walls="" rsss=""
    shift 3
    for ((i = 0; i < runs; i++)); do
        measure "$@"
        read -r w r <"$out/.time"
        walls+="$w"$'\n'
        rsss+="$r"$'\n'
    done
    local w r
    w=$(printf '%s' "$walls" | median)
    r=$(printf '%s' "$rsss" | median)
    rss_of["$label $tool"]=$r
    awk -v l="$label" -v t="$tool" -v w="$w" -v b="$bytes" -v r="$r" 'BEGIN {
        printf "%-10s %-44s %8.2f %9.1f %13.1f\n", l, t, w, (w > 0 ? b / w / 1e6 : 0), r / 1024 }'
}

for s in 64M 1G; do
    p="$out/payload-$s.bin"
    bytes=$(stat -c %s "$p")
    for c in gzip zstd; do
        a="$out/art-$s-$c.mender"
        cat "$a" >/dev/null  # warm the page cache so every tool reads from memory
        row "$s $c" "$bytes" "molt-artifact read" "$molt_artifact" read "$a"
        if [ "$c" = gzip ]; then
            row "$s $c" "$bytes" "mender-artifact read (3.9)" mender-artifact read "$a"
        fi
        row "$s $c" "$bytes" "limit: 1 thread ${c/gzip/zlib} + sha256 (C)" "$out/limit" "$a"
        if [ "$c" = gzip ]; then
            row "$s $c" "$bytes" "pipes: tar xO | gzip -dc | sha256sum" \
                sh -c "tar -xOf '$a' data/0000.tar.gz | gzip -dc | sha256sum"
        else
            row "$s $c" "$bytes" "pipes: tar xO | zstd -dc | sha256sum" \
                sh -c "tar -xOf '$a' data/0000.tar.zst | zstd -dc | sha256sum"
        fi
    done
done

cat <<NOTE

MB/s: uncompressed payload bytes (10^6) per wall second. Peak RSS: GNU time's maximum resident
set (for the pipes, of the largest single process). limit: one thread doing nothing but
decompressing the data member and SHA-256 over every byte; a tool that overlaps the two in
threads can pass it. This machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)
(on a shared machine single figures are noisy: compare rows of the same run).
NOTE
echo
status=0
for c in gzip zstd; do
    small=${rss_of["64M $c molt-artifact read"]} big=${rss_of["1G $c molt-artifact read"]}
    # Flat: the 16x larger artifact may not cost more than 25% (and 4 MiB) more memory.
    if [ "$big" -le $((small * 5 / 4 + 4096)) ]; then
        echo "molt peak RSS, $c: 64 MiB -> $((small / 1024)) MiB, 1 GiB -> $((big / 1024)) MiB: flat"
    else
        echo "molt peak RSS, $c: 64 MiB -> $((small / 1024)) MiB, 1 GiB -> $((big / 1024)) MiB: NOT flat"
        status=1
    fi
done
exit $status
