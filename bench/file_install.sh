#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: install one 512 MiB file from a gzip artifact (mender-artifact write module-image
# -T single-file) with molt's native file module and with Mender's Go client (3.4.0) running the
# community single-file module, same artifact, same run. Both replace an existing 512 MiB file
# (the previous version) in a scratch destination folder. Prints wall time, throughput (payload
# MiB / wall s) and peak RSS (GNU time %M) of `install` for each, medians of RUNS runs
# (alternating), and checks the installed file is byte-identical after each run. Not part of
# ctest.
#
# Usage: bench/file_install.sh       (RUNS=3; SIZE_MIB=512; MOLT_BUILD_DIR to reuse a build;
#                                     ORDER=data-first puts the file before dest_dir & co.)
# The payload and the artifact are kept in bench/out/ (ignored by git) and reused.
#
# The Go client runs as in docs/reference §2.11 (MENDER_CONF_DIR/DATA_DIR/DATASTORE_DIR in a scratch
# folder, `mender --no-syslog -c ... -d ... install`), in a private mount namespace where a scratch
# folder is bind-mounted over /etc/mender (it reads the hard-coded /etc/mender/artifact_info);
# the real /etc is never touched. The payload file comes after dest_dir, filename and
# permissions in the artifact (`-f dest_dir -f filename -f permissions -f file`), so molt streams
# it straight next to its destination; the Go client writes it to files/ first and the module
# copies it (backup of the old file with cp -a + sync, then the new one with cp -a + sync).
# With ORDER=data-first (`-f file -f dest_dir -f filename -f permissions`) molt cannot know the
# destination when the data arrives: it stages the file in its data dir and copies it at the end
# of Download (the destination is another mount here), so it writes twice too.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
runs=${RUNS:-3}
size_mib=${SIZE_MIB:-512}
mkdir -p "$out"
echo '*' >"$out/.gitignore"

"$top/tools/deps.sh"  # GNU time, mender-artifact, mender-client, compilers

. "$top/bench/lib.sh"
bench_build_file
command -v mender >/dev/null || { echo "Mender's Go client (mender) is not installed" >&2; exit 1; }

sb=$(mktemp -d "${TMPDIR:-/tmp}/molt-bench-file.XXXXXX")
trap 'rm -rf "$sb"; rmdir /tmp/molt-bench-file-target 2>/dev/null || true' EXIT
dest="$sb/target/opt/app"

# --- payload and artifact (random data as base64: gzip has real work to do) -------------------
payload="$out/file-$size_mib.bin"
order=${ORDER:-meta-first}
art="$out/file-$size_mib-$order.mender"
if [ ! -f "$payload" ]; then
    echo "making a ${size_mib} MiB payload (once)..."
    (set +o pipefail; head -c $((size_mib * 1024 * 1024 * 3 / 4)) /dev/urandom | base64 -w 76 |
        head -c $((size_mib * 1024 * 1024)) >"$payload.tmp")
    mv "$payload.tmp" "$payload"
fi
if [ ! -f "$art" ] || [ "$art" -ot "$0" ] || [ "$art" -ot "$payload" ]; then
    echo "writing $art..."
    # The artifact names a fixed destination below a fixed scratch path, bind-mounted per run.
    mkdir -p "$out/art-src"
    printf '/tmp/molt-bench-file-target/opt/app\n' >"$out/art-src/dest_dir"
    printf 'app.bin\n' >"$out/art-src/filename"
    printf '0644\n' >"$out/art-src/permissions"
    ln -f "$payload" "$out/art-src/app.bin"
    files="-f dest_dir -f filename -f permissions -f app.bin"
    [ "$order" = data-first ] && files="-f app.bin -f dest_dir -f filename -f permissions"
    # Written by molt-artifact with gzip -6 (mender-artifact 3.9's gzip stores this payload
    # nearly uncompressed, ratio 0.998: no decompression work); both clients read it
    # (test_artifact_interop.sh). Same arguments as mender-artifact write module-image.
    (cd "$out/art-src" && "$molt_artifact" write module-image -T single-file -n bench-1 -t dev-a \
        --compression gzip -o "$art" $files >/dev/null)
    rm -rf "$out/art-src"
fi
old="$out/file-$size_mib.old"
[ -f "$old" ] || head -c $((size_mib * 1024 * 1024)) /dev/urandom >"$old"
# The artifact names /tmp/molt-bench-file-target: each run mounts its scratch target there.
mkdir -p /tmp/molt-bench-file-target

# One install in a private mount namespace: the scratch target over the fixed path, and (for the
# Go client) a scratch /etc/mender. Prints "wall_s peak_rss_kib".
run_ns() {  # TIMEFILE CMD...
    local tf=$1
    shift
    SB="$sb" unshare -m sh -c '
        mount --bind "$SB/target" /tmp/molt-bench-file-target || exit 3
        mount --bind "$SB/etc-mender" /etc/mender || exit 3
        exec "$@"' sh /usr/bin/time -o "$tf" -f '%e %M' "$@"
}

fresh_target() {
    rm -rf "$sb/target" "$sb/dev" "$sb/go"
    mkdir -p "$sb/target/opt/app" "$sb/etc-mender"
    printf 'artifact_name=factory-1\n' >"$sb/etc-mender/artifact_info"
    cp "$old" "$sb/target/opt/app/app.bin"
    sync
}

run_molt() {
    fresh_target
    mkdir -p "$sb/dev/data" "$sb/dev/native" "$sb/dev/none"
    bench_copy_file_module "$sb/dev/native"
    printf 'device_type=dev-a\n' >"$sb/dev/data/device_type"
    cat >"$sb/dev/molt.yaml" <<YAML
data_dir: $sb/dev/data
device_type_file: $sb/dev/data/device_type
module_dirs:
  - $sb/dev/none
native_module_dir: $sb/dev/native
YAML
    MOLT_FILE_ALLOWED_ROOTS=/tmp/molt-bench-file-target run_ns "$sb/time" \
        "$molt" --config "$sb/dev/molt.yaml" install "$art" >"$sb/out" 2>"$sb/err" ||
        { cat "$sb/err" >&2; echo "molt install failed" >&2; exit 1; }
    cmp "$payload" "$dest/app.bin" || { ls -la "$dest" >&2; cat "$sb/err" >&2; echo "molt installed a different file" >&2; exit 1; }
    cat "$sb/time"
}

run_go() {
    fresh_target
    mkdir -p "$sb/go/conf" "$sb/go/data" "$sb/go/store"
    echo '{}' >"$sb/go/conf/mender.conf"
    printf 'device_type=dev-a\n' >"$sb/go/store/device_type"
    MENDER_CONF_DIR="$sb/go/conf" MENDER_DATA_DIR="$sb/go/data" MENDER_DATASTORE_DIR="$sb/go/store" \
        run_ns "$sb/time" mender --no-syslog -c "$sb/go/conf/mender.conf" -d "$sb/go/store" \
        install "$art" >"$sb/out" 2>"$sb/err" ||
        { cat "$sb/err" >&2; echo "mender install failed" >&2; exit 1; }
    cmp "$payload" "$dest/app.bin" || { echo "mender installed a different file" >&2; exit 1; }
    cat "$sb/time"
}

: >"$sb/molt.times"
: >"$sb/go.times"
for ((i = 1; i <= runs; i++)); do
    run_molt >>"$sb/molt.times"
    run_go >>"$sb/go.times"
done

art_mib=$(du -m "$art" | cut -f1)
echo "install of one ${size_mib} MiB file (artifact: ${art_mib} MiB, gzip, $order), replacing a ${size_mib} MiB file;"
echo "medians of $runs runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-34s %10s %12s %14s\n' client "wall s" "MiB/s" "peak RSS KiB"
for who in molt go; do
    w=$(cut -d' ' -f1 "$sb/$who.times" | median)
    m=$(cut -d' ' -f2 "$sb/$who.times" | median)
    name="molt + file module (native)"
    [ $who = go ] && name="mender 3.4.0 + single-file module"
    printf '%-34s %10s %12.1f %14s\n' "$name" "$w" "$(awk -v s="$size_mib" -v w="$w" 'BEGIN { print s / w }')" "$m"
done
wm=$(cut -d' ' -f1 "$sb/molt.times" | median)
wg=$(cut -d' ' -f1 "$sb/go.times" | median)
printf 'speed-up (mender wall / molt wall): %.2fx\n' "$(awk -v g="$wg" -v m="$wm" 'BEGIN { print g / m }')"
