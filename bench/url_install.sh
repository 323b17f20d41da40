#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: `molt install URL` (HTTP on loopback) against `molt install FILE` of the same 512 MiB
# gzip single-file artifact, same run, file module. The download, the decompression, the hashing
# and the write overlap in the URL install (one streaming pass: nothing is staged), so it should
# run at the file install's speed. Prints the median wall time and MiB/s (payload MiB / wall) of
# each and the URL install's ratio to the file install. Not part of ctest.
#
# Usage: bench/url_install.sh     (RUNS=5; SIZE_MIB=512; MOLT_BUILD_DIR to reuse a build;
#        BASELINE_BUILD_DIR: a second build whose URL install runs in the same loop, for a
#        before/after comparison in one run)
# Peak RSS (/usr/bin/time's maximum resident set size) is printed next to each median.
# The server is a small Python http.server that sends the file with sendfile(2) (no copy through
# Python), bound to 127.0.0.1 on a free port, started and stopped by this script (by its pid).
# Both installs replace an existing file of the same size in a scratch folder; the installed file
# is compared with the payload after every run.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
runs=${RUNS:-5}
size_mib=${SIZE_MIB:-512}
mkdir -p "$out"
echo '*' >"$out/.gitignore"

"$top/tools/deps.sh"

. "$top/bench/lib.sh"
bench_build_file

sb=$(mktemp -d "${TMPDIR:-/tmp}/molt-bench-url.XXXXXX")
target=/tmp/molt-bench-url-target
server_pid=
cleanup() {
    [ -z "$server_pid" ] || kill "$server_pid" 2>/dev/null || true
    rm -rf "$sb" "$target"
}
trap cleanup EXIT

# --- payload and artifact (random data as base64: gzip has real work to do) -------------------
payload="$out/file-$size_mib.bin"
if [ ! -f "$payload" ]; then
    echo "making a ${size_mib} MiB payload (once)..."
    (set +o pipefail; head -c $((size_mib * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 76 |
        head -c $((size_mib * 1024 * 1024)) >"$payload.tmp")
    mv "$payload.tmp" "$payload"
fi
art="$out/url-$size_mib.mender"
if [ ! -f "$art" ] || [ "$art" -ot "$0" ] || [ "$art" -ot "$payload" ]; then
    echo "writing $art..."
    mkdir -p "$out/url-src"
    printf '%s\n' "$target" >"$out/url-src/dest_dir"
    printf 'app.bin\n' >"$out/url-src/filename"
    printf '0644\n' >"$out/url-src/permissions"
    ln -f "$payload" "$out/url-src/app.bin"
    (cd "$out/url-src" && "$molt_artifact" write module-image -T single-file -n url-1 -t dev-a \
        --compression gzip -o "$art" -f dest_dir -f filename -f permissions -f app.bin >/dev/null)
    rm -rf "$out/url-src"
fi
old="$out/file-$size_mib.old"
[ -f "$old" ] || head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$old"

# --- the server ----------------------------------------------------------------------------------
cat >"$sb/serve.py" <<'EOF'
import http.server, os, socket, sys
root = sys.argv[1]
class H(http.server.SimpleHTTPRequestHandler):
    def __init__(self, *a, **kw):
        super().__init__(*a, directory=root, **kw)
    def copyfile(self, src, dst):
        self.connection.sendfile(src)   # sendfile(2): the bytes never pass through Python
    def log_message(self, *a):
        pass
s = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(s.server_address[1], flush=True)
s.serve_forever()
EOF
mkdir -p "$sb/www"
ln "$art" "$sb/www/a.mender" 2>/dev/null || cp "$art" "$sb/www/a.mender"
python3 "$sb/serve.py" "$sb/www" >"$sb/port" &
server_pid=$!
for _ in $(seq 100); do [ -s "$sb/port" ] && break; sleep 0.1; done
port=$(cat "$sb/port")
[ -n "$port" ] || { echo "the HTTP server did not start" >&2; exit 1; }
url="http://127.0.0.1:$port/a.mender"

# --- the device ------------------------------------------------------------------------------
bench_molt_device "$sb/dev"
export MOLT_FILE_ALLOWED_ROOTS=$target

base_molt=
if [ -n "${BASELINE_BUILD_DIR:-}" ]; then
    base_molt=$(cd "$BASELINE_BUILD_DIR" && pwd)/core/molt
    [ -x "$base_molt" ] || { echo "no molt in $BASELINE_BUILD_DIR" >&2; exit 1; }
    # its own device (data dir) with its own file.so: two releases never share a store
    (file_so="$BASELINE_BUILD_DIR/modules/native/file.so"; bench_molt_device "$sb/base")
fi

run_one() {  # SOURCE [MOLT DEVICE_DIR]: prints the wall time in seconds and the peak RSS in KiB
    local prog=${2:-$molt} dev=${3:-$sb/dev}
    rm -rf "$target"
    mkdir -p "$target"
    cp "$old" "$target/app.bin"
    sync
    local t0=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$sb/rss" "$prog" --config "$dev/molt.yaml" install "$1" \
        >/dev/null 2>"$sb/err" || { cat "$sb/err" >&2; echo "molt install $1 failed" >&2; exit 1; }
    local t1=$EPOCHREALTIME
    "$prog" --config "$dev/molt.yaml" commit >/dev/null 2>>"$sb/err" ||
        { cat "$sb/err" >&2; echo "molt commit failed" >&2; exit 1; }
    cmp -s "$payload" "$target/app.bin" || { echo "molt installed a different file" >&2; exit 1; }
    awk -v a="$t0" -v b="$t1" -v r="$(tail -n 1 "$sb/rss")" 'BEGIN { printf "%.3f %d\n", b - a, r }'
}

run_one "$art" >/dev/null   # the registry cache, as on a device after its first install
[ -z "$base_molt" ] || run_one "$art" "$base_molt" "$sb/base" >/dev/null
: >"$sb/file.s"; : >"$sb/url.s"; : >"$sb/base.s"
for ((i = 1; i <= runs; i++)); do
    run_one "$art" >>"$sb/file.s"
    run_one "$url" >>"$sb/url.s"
    [ -z "$base_molt" ] || run_one "$url" "$base_molt" "$sb/base" >>"$sb/base.s"
done

art_mib=$(du -m "$art" | cut -f1)
echo "install of one ${size_mib} MiB file (artifact: ${art_mib} MiB, gzip) from a file and from"
echo "HTTP on loopback; medians of $runs runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %10s %12s\n' source "wall s" "MiB/s" "peak RSS"
row() {  # LABEL FILE: prints the row, sets med to the median wall time
    med=$(cut -d' ' -f1 <"$2" | median)
    local rss
    rss=$(cut -d' ' -f2 <"$2" | median)
    printf '%-34s %10s %10.1f %8.1f MiB\n' "$1" "$med" \
        "$(awk -v s="$size_mib" -v w="$med" 'BEGIN { print s / w }')" \
        "$(awk -v r="$rss" 'BEGIN { print r / 1024 }')"
}
row "file" "$sb/file.s"; f=$med
row "http://127.0.0.1 (sendfile)" "$sb/url.s"; u=$med
pct() { awk -v f="$1" -v u="$2" 'BEGIN { printf "%.0f", 100 * f / u }'; }
if [ -n "$base_molt" ]; then
    row "http://127.0.0.1, baseline build" "$sb/base.s"; b=$med
    printf 'baseline URL install speed / file install speed: %s%%\n' "$(pct "$f" "$b")"
fi
printf 'URL install speed / file install speed: %s%%\n' "$(pct "$f" "$u")"
