#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: the fixed cost of an update. `molt install` + `molt commit` of a 1 KiB single-file
# artifact (mender-artifact's single-file layout, gzip) with molt's native file module, next to,
# in the same run:
#   - the limit: a minimal C program doing the power-safe replace of that file (write a
#     temporary sibling, fsync it, rename it over the file, fsync the folder), run as a process
#     like molt;
#   - the floor of molt's design: a C program doing, in two processes linked as molt is, only
#     what molt's install and commit cannot leave out (the module loaded, the store read, the
#     file staged unnamed and exchanged, molt's 4 + 1 syncs; no parsing, no log): what molt
#     would take if its own code cost nothing (the program is described where it is written);
#   - Mender's Go client (3.4, Debian's mender-client) with the community single-file module:
#     `mender install` + `mender commit` of the same artifact, standalone (as bench/file_install.sh).
# Each run replaces an existing file in a scratch folder and checks the installed content.
# Prints the median wall time of each (milliseconds), molt's ratio to the limit (and the floor's,
# and molt's to the floor) and Mender's ratio to molt, and the fsync-family calls of one molt
# install + commit (strace -f -c -e trace=fsync,fdatasync,sync_file_range,syncfs). Not part of
# ctest.
#
# Usage: bench/small_update.sh      (RUNS=5; MOLT_BUILD_DIR to reuse a build; NO_MENDER=1;
#                                   BASELINE_BUILD_DIR=another build of molt and file.so, e.g.
#                                   of an older commit, measured in the same runs as "baseline")
# Times are taken inside the private mount namespace with bash's $EPOCHREALTIME, around the
# commands only (the namespace's setup is not counted, for any of them); install and commit (and
# the floor's two) are started by the timing shell itself, as the limit program is.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
runs=${RUNS:-5}
mkdir -p "$out"
echo '*' >"$out/.gitignore"

"$top/tools/deps.sh"  # mender-artifact, mender-client, strace, compilers

. "$top/bench/lib.sh"
bench_build_file
no_mender=${NO_MENDER:-}
if [ -z "$no_mender" ] && ! command -v mender >/dev/null; then
    echo "Mender's Go client (mender) is not installed: NO_MENDER=1 to skip it" >&2
    exit 1
fi

# The limit: the power-safe replace and nothing else.
cat >"$out/small_limit.c" <<'EOF'
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void die(const char *w) { perror(w); exit(1); }
int main(int argc, char **argv)
{
    if (argc != 4) { fprintf(stderr, "usage: small_limit SRC DIR NAME\n"); return 2; }
    static char buf[1 << 16];
    int in = open(argv[1], O_RDONLY);
    ssize_t n = in < 0 ? -1 : read(in, buf, sizeof buf);
    if (n < 0) die(argv[1]);
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.new", argv[2], argv[3]);
    snprintf(dst, sizeof dst, "%s/%s", argv[2], argv[3]);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0 || write(fd, buf, (size_t)n) != n || fsync(fd) != 0 || close(fd) != 0) die(tmp);
    if (rename(tmp, dst) != 0) die("rename");
    int dfd = open(argv[2], O_RDONLY | O_DIRECTORY);
    if (dfd < 0 || fsync(dfd) != 0) die(argv[2]);
    return 0;
}
EOF
cc -O2 -Wall -Werror -o "$out/small_limit" "$out/small_limit.c"

# The floor of molt's design: what `molt install` + `molt commit` cannot do without, and nothing
# else. Two processes linked as molt is (jansson, libyaml and zlib, each shared or static as the
# build links them; PIE, BIND_NOW), each loading the file module (dlopen, RTLD_NOW) and the store
# (a 16 KiB slots file: read, records written in place); the install stages the file unnamed (O_TMPFILE, write, fchmod, fsync), records the
# state ArtifactInstall (fdatasync), links and exchanges it with the destination, fsyncs the
# folder and records the result (fdatasync); the commit records ArtifactCommit (lazy) and
# Cleanup (fdatasync), removes the old file and records the end (lazy): molt's 4 + 1 syncs in
# molt's order (docs/performance.md, "fsyncs per install"). No parsing, no configuration, no log,
# no checks.
cat >"$out/small_floor.c" <<'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <yaml.h>
#include <zlib.h>
static void die(const char *w) { perror(w); exit(1); }
static char rec[1536];
static void put(int fd, off_t at, int sync)
{
    if (pwrite(fd, rec, sizeof rec, at) != (ssize_t)sizeof rec || (sync && fdatasync(fd) != 0))
        die("store");
}
int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: small_floor install|commit STORE MODULE SRC DIR NAME\n");
        return 2;
    }
    /* molt's libraries, used as molt uses them at start (the versions keep them linked) */
    if (!yaml_get_version_string() || !jansson_version_str() || !zlibVersion()) return 1;
    if (!dlopen(argv[3], RTLD_NOW | RTLD_LOCAL)) { fprintf(stderr, "%s\n", dlerror()); return 1; }
    static char store[16384], buf[1 << 16];
    int st = open(argv[2], O_RDWR | O_CLOEXEC);
    if (st < 0 || read(st, store, sizeof store) != (ssize_t)sizeof store) die(argv[2]);
    memset(rec, 'r', sizeof rec);
    char dst[4096], new[4096];
    snprintf(dst, sizeof dst, "%s/%s", argv[5], argv[6]);
    snprintf(new, sizeof new, "%s/.%s.molt-new", argv[5], argv[6]);
    if (strcmp(argv[1], "install") == 0) {
        put(st, 8192, 0);   /* Download (lazy) */
        int in = open(argv[4], O_RDONLY);
        ssize_t n = in < 0 ? -1 : read(in, buf, sizeof buf);
        int fd = open(argv[5], O_WRONLY | O_TMPFILE | O_CLOEXEC, 0600);
        if (n < 0 || fd < 0 || write(fd, buf, (size_t)n) != n || fchmod(fd, 0644) != 0 ||
            fsync(fd) != 0)
            die("stage");
        put(st, 0, 1);   /* ArtifactInstall */
        char proc[64];
        snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
        if (linkat(AT_FDCWD, proc, AT_FDCWD, new, AT_SYMLINK_FOLLOW) != 0) die("link");
        if (renameat2(AT_FDCWD, new, AT_FDCWD, dst, RENAME_EXCHANGE) != 0) die("exchange");
        int dfd = open(argv[5], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) != 0) die(argv[5]);
        put(st, 8192, 1);   /* pending commit */
    } else {
        put(st, 0, 0);   /* ArtifactCommit (lazy) */
        put(st, 8192, 1);   /* Cleanup */
        if (unlink(new) != 0) die(new);   /* the old file */
        put(st, 0, 0);   /* the end (lazy) */
    }
    return 0;
}
EOF
# libyaml and zlib as the build links them into molt (MOLT_LIBYAML, MOLT_ZLIB: its CMakeCache).
floor_libs=(-ljansson)
for lib in LIBYAML:-lyaml ZLIB:-lz; do
    a=
    if [ "$(sed -n "s/^MOLT_${lib%%:*}_LINKED:INTERNAL=//p" "$build/CMakeCache.txt")" = static ]; then
        a=$(sed -n "s/^MOLT_${lib%%:*}_A:FILEPATH=//p" "$build/CMakeCache.txt")
    fi
    floor_libs+=("${a:-${lib#*:}}")
done
cc -O2 -Wall -Werror -fPIE -pie -Wl,-z,relro,-z,now -Wl,--no-as-needed -o "$out/small_floor" "$out/small_floor.c" \
    "${floor_libs[@]}" -ldl

sb=$(mktemp -d "${TMPDIR:-/tmp}/molt-bench-small.XXXXXX")
fixed=/tmp/molt-bench-small-target
trap 'rm -rf "$sb"; rmdir "$fixed" 2>/dev/null || true' EXIT
mkdir -p "$fixed"

# --- the artifact: dest_dir, filename, permissions, then the 1 KiB file ----------------------
bench_small_artifact "$fixed"
dest="$sb/target/opt/app/app.conf"

# Run "$@" in a private mount namespace with the scratch target over $fixed and a scratch
# /etc/mender (the Go client reads /etc/mender/artifact_info); prints what the script prints.
in_ns() {
    SB="$sb" FIXED="$fixed" unshare -m bash -c '
        mount --bind "$SB/target" "$FIXED" || exit 3
        mount --bind "$SB/etc-mender" /etc/mender || exit 3
        exec bash -c "$0" timed "$@"' "$@"
}

fresh_target() {
    rm -rf "$sb/target" "$sb/etc-mender"
    mkdir -p "$sb/target/opt/app" "$sb/etc-mender"
    printf 'artifact_name=factory-1\n' >"$sb/etc-mender/artifact_info"
    head -c 1024 /dev/zero >"$dest"
    sync
}

# molt's device: the data dir and its registry cache are kept between runs, as on a device.
bench_molt_device "$sb/dev"
base=${BASELINE_BUILD_DIR:-}
if [ -n "$base" ]; then   # a second device for the baseline build, with its own file.so
    (file_so="$base/modules/native/file.so"; bench_molt_device "$sb/base")
fi
export MOLT_FILE_ALLOWED_ROOTS=$fixed

timed='t0=$EPOCHREALTIME; "$@" >/dev/null 2>>"$ERR" || exit 1; t1=$EPOCHREALTIME
       echo $(( (${t1/./} - ${t0/./}) ))'   # microseconds
# Two commands, install then commit, each started straight from the timing shell as the limit
# program is (no sh -c in between, whose own start would be counted): CMD ARGS... -- ARGS...
# runs "CMD ARGS..." then "CMD ARGS2...".
timed2='a=(); while [ "$1" != -- ]; do a+=("$1"); shift; done; shift
       t0=$EPOCHREALTIME; "${a[@]}" >/dev/null 2>>"$ERR" && "${a[0]}" "$@" >/dev/null 2>>"$ERR" ||
       exit 1; t1=$EPOCHREALTIME
       echo $(( (${t1/./} - ${t0/./}) ))'   # microseconds

run_molt() {  # [MOLT DEVICE_DIR]
    fresh_target
    local m=${1:-$molt} conf=${2:-$sb/dev}/molt.yaml
    ERR="$sb/err" in_ns "$timed2" "$m" --config "$conf" install "$art" -- --config "$conf" commit ||
        { cat "$sb/err" >&2; echo "molt failed" >&2; exit 1; }
    cmp -s "$payload" "$dest" || { echo "molt installed a different file" >&2; exit 1; }
}

run_limit() {
    fresh_target
    ERR="$sb/err" in_ns "$timed" "$out/small_limit" "$payload" "$fixed/opt/app" app.conf ||
        { cat "$sb/err" >&2; exit 1; }
    cmp -s "$payload" "$dest" || { echo "the limit program wrote a different file" >&2; exit 1; }
}

run_floor() {
    fresh_target
    local a=("$sb/floor.slots" "$sb/dev/native/file.so" "$payload" "$fixed/opt/app" app.conf)
    ERR="$sb/err" in_ns "$timed2" "$out/small_floor" install "${a[@]}" -- commit "${a[@]}" ||
        { cat "$sb/err" >&2; exit 1; }
    cmp -s "$payload" "$dest" || { echo "the floor program wrote a different file" >&2; exit 1; }
}

run_go() {
    fresh_target
    rm -rf "$sb/go"
    mkdir -p "$sb/go/conf" "$sb/go/data" "$sb/go/store"
    echo '{}' >"$sb/go/conf/mender.conf"
    printf 'device_type=dev-a\n' >"$sb/go/store/device_type"
    MENDER_CONF_DIR="$sb/go/conf" MENDER_DATA_DIR="$sb/go/data" MENDER_DATASTORE_DIR="$sb/go/store" \
        ERR="$sb/err" in_ns "$timed2" mender --no-syslog -c "$sb/go/conf/mender.conf" -d "$sb/go/store" \
            install "$art" -- --no-syslog -c "$sb/go/conf/mender.conf" -d "$sb/go/store" commit ||
        { cat "$sb/err" >&2; echo "mender failed" >&2; exit 1; }
    cmp -s "$payload" "$dest" || { echo "mender installed a different file" >&2; exit 1; }
}

run_molt >/dev/null   # the first install builds the registry cache (once per device)
[ -z "$base" ] || run_molt "$base/core/molt" "$sb/base" >/dev/null
head -c 16384 /dev/zero >"$sb/floor.slots"
: >"$sb/molt.us"; : >"$sb/limit.us"; : >"$sb/floor.us"; : >"$sb/go.us"; : >"$sb/base.us"
for ((i = 1; i <= runs; i++)); do
    run_molt >>"$sb/molt.us"
    [ -z "$base" ] || run_molt "$base/core/molt" "$sb/base" >>"$sb/base.us"
    run_limit >>"$sb/limit.us"
    run_floor >>"$sb/floor.us"
    [ -n "$no_mender" ] || run_go >>"$sb/go.us"
done

# The fsyncs of one install + commit (the registry cache is already there).
fresh_target
fsyncs=$(in_ns 'strace -f -c -e trace=fsync,fdatasync,sync_file_range,syncfs -o "$1.i" "$2" --config "$3" install "$4" >/dev/null 2>&1 &&
               strace -f -c -e trace=fsync,fdatasync,sync_file_range,syncfs -o "$1.c" "$2" --config "$3" commit >/dev/null 2>&1 &&
               echo $(( $(awk "/total/ { print \$4 }" "$1.i") + 0 )) $(( $(awk "/total/ { print \$4 }" "$1.c") + 0 ))' \
               "$sb/strace" "$molt" "$sb/dev/molt.yaml" "$art")

ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
m=$(median <"$sb/molt.us"); l=$(median <"$sb/limit.us"); f=$(median <"$sb/floor.us")
echo "install + commit of a 1 KiB single-file artifact, replacing a 1 KiB file;"
echo "medians of $runs runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-48s %10s\n' "" "wall ms"
printf '%-48s %10s\n' "limit (write, fsync, rename, fsync folder)" "$(ms "$l")"
printf '%-48s %10s\n' "floor of molt's design (2 processes, 4+1 syncs)" "$(ms "$f")"
printf '%-48s %10s\n' "molt + file module (native)" "$(ms "$m")"
[ -z "$base" ] || printf '%-48s %10s\n' "baseline: $base" "$(ms "$(median <"$sb/base.us")")"
if [ -z "$no_mender" ]; then
    g=$(median <"$sb/go.us")
    printf '%-48s %10s\n' "mender 3.4.0 + single-file module" "$(ms "$g")"
fi
printf 'molt / limit: %.2fx (the floor: %.2fx; molt / floor: %.2fx)\n' \
    "$(awk -v m="$m" -v l="$l" 'BEGIN { print m / l }')" \
    "$(awk -v f="$f" -v l="$l" 'BEGIN { print f / l }')" "$(awk -v m="$m" -v f="$f" 'BEGIN { print m / f }')"
[ -n "$no_mender" ] || printf 'mender / molt: %.1fx\n' "$(awk -v m="$m" -v g="$g" 'BEGIN { print g / m }')"
set -- $fsyncs
echo "fsync-family calls: molt install $1, molt commit $2 (limit: 2)"
