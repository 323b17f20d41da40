#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: install a 512 MiB rootfs image (gzip and zstd artifacts) into a file-backed
# partition with molt's rootfs-image module, next to, in the same run:
#   - the limit: bench/rootfs_limit.c doing the same work with nothing else (decompress +
#     SHA-256 + write + one fsync, decompression overlapped with hashing/writing in two threads,
#     the write-back started every 2 MiB as molt's module does);
#   - the Mender Go client (3.4, Debian's mender-client) installing the same gzip artifact (it
#     cannot read zstd) with its built-in dual-rootfs installer.
# Prints per run kind the median wall time in milliseconds (bash's $EPOCHREALTIME around the run,
# microsecond resolution), throughput (image bytes / wall), peak RSS and the ratio of the
# throughput to the limit's, computed from the unrounded medians. The runs of an image alternate
# between the kinds (limit, molt's two, the baseline), the order reversed every other run.
# Not part of ctest.
# molt runs twice per image: a first install (fresh data dir: the native-module registry cache is
# rebuilt: every native module is loaded once, in a child process) and an install with the data
# dir kept as a device keeps it between updates (its store, logs, state-script folder, module
# folders and registry cache; until 2026-12-03 this run wiped all but the registry cache, so it
# paid the making of the store and of the state-script folder, 5 fsyncs, at every run).
#
# Usage: bench/rootfs_install.sh     (RUNS=3; BENCH_MIB=512; MOLT_BUILD_DIR to reuse a build;
#                                     NO_MENDER=1 skips the Mender client;
#                                     WARM_TARGET=1: no page cache drop of partition B;
#                                     BASELINE_BUILD_DIR=another build of molt and its modules,
#                                     e.g. of main, adds its data-dir-kept install per image,
#                                     in the same run with its own data dir)
#
# What is measured: `molt install --reboot-exit-code` from the artifact file (page cache warm) up
# to "reboot required": artifact read, manifest/checksums, Download (the partition write with its
# fsync), ArtifactInstall (a U-Boot environment file through libubootenv). The partition is a
# preallocated file; partition A is a small file named by the simulated kernel command line.
# Before every run (the limit's and molt's alike) partition B's pages are dropped from the page
# cache, as on a device, where nothing reads the inactive partition between updates: writing into
# pages already cached is cheaper than into new ones (64 MiB zstd: the limit 67 ms into cached
# pages, 75 ms into new ones), and molt drops most of what it writes while the limit program
# keeps it all, so without the drop each of the limit's runs but the first started warm and
# molt's runs (mostly) cold.
# WARM_TARGET=1 leaves the cache alone (the figures before 2026-12-02 afternoon).
#
# How the Mender client is pointed at files, never at a disk: it finds the running partition by
# comparing the device of "/" with RootfsPartA/B and refuses to install when neither matches, so
# it runs chrooted into a small ext4 image mounted from a loop device (RootfsPartA = that loop
# device), with RootfsPartB = a second loop device over a 513 MiB file; /usr, /proc, /dev, /sys
# and this folder are bind-mounted in, /etc is a copy whose fw_env.config names a U-Boot
# environment file here. All of it happens inside `unshare -m` (a private mount namespace: the
# mounts vanish with it); the two loop devices are detached on exit. Needs root.
# The payload is random data written as base64 text, so the decompressors do real work.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
runs=${RUNS:-3}
mib=${BENCH_MIB:-512}
mkdir -p "$out"
echo '*' >"$out/.gitignore"

"$top/tools/deps.sh"
. "$top/bench/lib.sh"

# --- programs ------------------------------------------------------------------------------
# every native module, as on a device with all of them installed (a first install probes each)
bench_build rootfs-image file deb docker
[ -f "$build/modules/native/rootfs-image.so" ] || { echo "no rootfs-image.so in $build" >&2; exit 1; }
cc -O2 -Wall -Werror -o "$out/rootfs_limit" "$top/bench/rootfs_limit.c" -lz -lzstd -lcrypto -lpthread

# --- inputs --------------------------------------------------------------------------------
img="$out/rootfs-$mib.img"
bytes=$((mib << 20))
if [ ! -s "$img" ] || [ "$(stat -c %s "$img")" != "$bytes" ]; then
    echo "generating $img" >&2
    { printf 'SIM-ROOTFS bootable name=bench\n'; head -c $((bytes * 3 / 4)) /dev/urandom | base64 -w 0; } |
        head -c "$bytes" >"$img.tmp"
    mv "$img.tmp" "$img"
fi
for c in gzip zstd; do
    a="$out/rootfs-$mib-$c.mender"
    if [ ! -s "$a" ] || [ "$img" -nt "$a" ]; then
        echo "writing $a" >&2
        "$molt_artifact" write rootfs-image -f "$img" -n bench-1 -t bench --compression "$c" \
            -o "$a.tmp" >/dev/null
        mv "$a.tmp" "$a"
    fi
done

# --- the device for molt -------------------------------------------------------------------
dev="$out/rootfs-dev"
rm -rf "$dev"
mkdir -p "$dev"
truncate -s 1M "$dev/part-a.img"
fallocate -l $((bytes + (1 << 20))) "$dev/part-b.img"
head -c 16384 /dev/zero >"$dev/uboot.env"
echo "$dev/uboot.env 0x0 0x4000" >"$dev/fw_env.config"
echo "console=ttyS0 root=$dev/part-a.img" >"$dev/cmdline"
cat >"$dev/molt.yaml" <<YAML
data_dir: $dev/data
native_module_dir: $build/modules/native
module_dirs: []
scripts_dir: $dev/scripts
log_level: warning
modules:
  rootfs-image:
    partition_a: $dev/part-a.img
    partition_b: $dev/part-b.img
    fw_env_config: $dev/fw_env.config
    cmdline_file: $dev/cmdline
YAML
base=${BASELINE_BUILD_DIR:-}
if [ -n "$base" ]; then   # the baseline build's device: its modules, its own data dir
    base=$(cd "$base" && pwd)
    [ -f "$base/modules/native/rootfs-image.so" ] || { echo "no rootfs-image.so in $base" >&2; exit 1; }
    sed -e "s|^data_dir: .*|data_dir: $dev/data-base|" \
        -e "s|^native_module_dir: .*|native_module_dir: $base/modules/native|" \
        "$dev/molt.yaml" >"$dev/molt-base.yaml"
fi
printf '%s\n' mender_boot_part=2 mender_boot_part_hex=2 upgrade_available=0 bootcount=0 >"$dev/env.txt"
# molt_reset_cold: a fresh data dir (the first install after the native modules changed: molt
# loads every native module once, in a child process, to rebuild
# <data_dir>/native/registry.cache).
# molt_reset_warm: the data dir as a device keeps it between updates (every later install): the
# previous run's install rolled back with `molt rollback` (not timed), which leaves the store, the
# deployment logs, the state-script folder, the modules' folders and registry.cache in place.
# (A copy of a data dir would not do: the store tells a legacy file that an earlier release
# wrote from its own by the file's identity, inode included.)
molt_reset_cold() {
    rm -rf "$dev/data"
    molt_reset_env
}
molt_reset_warm() {  # [MOLT CONFIG DATA_DIR]
    local m=${1:-$molt} c=${2:-$dev/molt.yaml} d=${3:-$dev/data}
    "$m" --config "$c" rollback >/dev/null 2>&1 ||
        { echo "$m: molt rollback of the previous run failed" >&2; exit 1; }
    molt_reset_env "$d"
}
# molt_reset_base: molt_reset_warm for the baseline build's data dir.
molt_reset_base() { molt_reset_warm "$base/core/molt" "$dev/molt-base.yaml" "$dev/data-base"; }
# molt_pending MOLT CONFIG DATA_DIR: a fresh data dir and one install, left awaiting its reboot
# as every run leaves it, for the first molt_reset_warm to roll back.
molt_pending() {
    local rc=0
    rm -rf "$3"
    molt_reset_env "$3"
    "$1" --config "$2" install --reboot-exit-code "$out/rootfs-$mib-gzip.mender" >/dev/null 2>&1 ||
        rc=$?
    [ $rc = 4 ] || { echo "$1: the first install: exit $rc" >&2; exit 1; }
}
molt_reset_env() {
    local d=${1:-$dev/data}
    mkdir -p "$d"
    printf 'device_type=bench\n' >"$d/device_type"
    head -c 16384 /dev/zero >"$dev/uboot.env"
    fw_setenv -c "$dev/fw_env.config" -f "$dev/env.txt" bootcount 0 2>/dev/null
}

molt_pending "$molt" "$dev/molt.yaml" "$dev/data"
[ -z "$base" ] || molt_pending "$base/core/molt" "$dev/molt-base.yaml" "$dev/data-base"

# --- measure -------------------------------------------------------------------------------
declare -A wall_of   # "LABEL KIND" -> median wall, seconds, unrounded
cat <<'TXT'

molt, first install: fresh data dir, so molt rebuilds <data_dir>/native/registry.cache (loads
  every native module once in a child process, whose peak counts in GNU time's; a device pays
  this only after its native modules changed).
molt, data dir kept: the data dir as a device keeps it between updates (every later install):
  the previous run's install rolled back (not timed) before each run.
TXT
printf '\n%-6s %-40s %8s %9s %13s %9s\n' image "run (median of $runs)" "wall ms" "MB/s" "peak RSS MiB" "of limit"
# one LABEL KIND PREPARE-FN OK-RCS CMD...: one run of CMD after PREPARE-FN, its wall time from
# $EPOCHREALTIME (microseconds) and its peak RSS from GNU time appended to KIND's lists.
declare -A walls_of rsss_of
one() {
    local label=$1 kind=$2 prep=$3 okrcs=$4 rc=0 t0 t1
    shift 4
    $prep
    cat "$out/rootfs-$mib-$label.mender" >/dev/null   # page cache warm
    [ -n "${WARM_TARGET:-}" ] || drop_target
    t0=$EPOCHREALTIME
    /usr/bin/time -o "$out/.time" -f '%M' "$@" >"$out/.out" 2>"$out/.err" || rc=$?
    t1=$EPOCHREALTIME
    if [[ " $okrcs " != *" $rc "* ]]; then
        cat "$out/.err" >&2
        echo "$kind: exit $rc" >&2
        exit 1
    fi
    walls_of["$label $kind"]+="$((${t1/./} - ${t0/./}))"$'\n'
    rsss_of["$label $kind"]+="$(tail -n 1 "$out/.time")"$'\n'
}
# report LABEL KIND: the medians of KIND's runs, and their throughput against the limit's.
report() {
    local label=$1 kind=$2 w r
    w=$(printf '%s' "${walls_of["$label $kind"]}" | median)
    w=$(awk -v u="$w" 'BEGIN { printf "%.6f", u / 1e6 }')
    r=$(printf '%s' "${rsss_of["$label $kind"]}" | median)
    wall_of["$label $kind"]=$w
    local lim=${wall_of["$label limit"]:-$w}
    awk -v l="$label" -v k="$kind" -v w="$w" -v b="$bytes" -v r="$r" -v lim="$lim" 'BEGIN {
        printf "%-6s %-40s %8.1f %9.1f %13.1f %8.1f%%\n", l, k, 1000 * w, b / w / 1e6, r / 1024,
            100 * lim / w }'
}
nothing() { :; }
drop_target() {  # partition B out of the page cache (clean pages: nothing is lost)
    dd if="$dev/part-b.img" iflag=nocache count=0 status=none
}
check_written() {  # the partition holds the image
    cmp -n "$bytes" "$img" "$dev/part-b.img" >/dev/null || { echo "partition B != image" >&2; exit 1; }
}

# The kinds of run of an image, alternated run by run (the order reversed every other run), so
# that what drifts over a minute (the disk, the host) falls on all of them alike.
kinds=(limit cold warm)
[ -z "$base" ] || kinds+=(base)
what_of() {
    case $1 in
    limit) echo limit ;;
    cold) echo "molt install, first install" ;;
    warm) echo "molt install, data dir kept" ;;
    base) echo "baseline, data dir kept" ;;
    esac
}
run_kind() {  # COMPRESSION KIND
    local art="$out/rootfs-$mib-$1.mender" what
    what=$(what_of "$2")
    case $2 in
    limit) one "$1" "$what" nothing 0 "$out/rootfs_limit" "$art" "$dev/part-b.img" ;;
    cold | warm) one "$1" "$what" "molt_reset_$2" 4 \
        "$molt" --config "$dev/molt.yaml" install --reboot-exit-code "$art" ;;
    base) one "$1" "$what" molt_reset_base 4 \
        "$base/core/molt" --config "$dev/molt-base.yaml" install --reboot-exit-code "$art" ;;
    esac
}
check_kind() {  # KIND: after its last run, the partition holds the image; molt armed B
    check_written
    case $1 in
    cold | warm)
        [ "$(fw_printenv -c "$dev/fw_env.config" -n mender_boot_part 2>/dev/null)" = 3 ] ||
            { echo "molt did not arm partition B" >&2; exit 1; } ;;
    esac
}
for c in gzip zstd; do
    for ((i = 0; i < runs; i++)); do
        order=("${kinds[@]}")
        if ((i % 2)); then
            order=()
            for ((k = ${#kinds[@]} - 1; k >= 0; k--)); do order+=("${kinds[k]}"); done
        fi
        for k in "${order[@]}"; do
            run_kind "$c" "$k"
            ((i < runs - 1)) || check_kind "$k"
        done
    done
    for k in "${kinds[@]}"; do report "$c" "$(what_of "$k")"; done
done
[ -z "$base" ] || echo "baseline: $base"

# --- the Mender Go client ---------------------------------------------------------------------
if [ -n "${NO_MENDER:-}" ]; then
    exit 0
fi
if [ "$(id -u)" != 0 ] || ! command -v mender >/dev/null; then
    echo "(Mender client skipped: needs root and Debian's mender-client)"
    exit 0
fi
sb="$out/mender-sb"
rm -rf "$sb"
mkdir -p "$sb/root"
truncate -s 64M "$sb/ma.img"
mkfs.ext4 -q -F "$sb/ma.img"
fallocate -l $((bytes + (1 << 20))) "$sb/mb.img"
cat >"$sb/run.sh" <<SH
# Runs inside unshare -m: the loop devices, mounts and chroot of the Mender client run.
set -eu
la=\$(losetup -f --show "$sb/ma.img")
lb=\$(losetup -f --show "$sb/mb.img")
trap 'umount -R "$sb/root" 2>/dev/null || true; losetup -d "\$la" "\$lb"' EXIT
mount "\$la" "$sb/root"
r="$sb/root"
mkdir -p "\$r/usr" "\$r/proc" "\$r/dev" "\$r/sys" "\$r/etc" "\$r/var/lib" "\$r/run" "\$r/tmp" "\$r$out"
for l in bin sbin lib lib64; do [ -e "\$r/\$l" ] || ln -s "usr/\$l" "\$r/\$l"; done
mount --bind /usr "\$r/usr"; mount --bind /proc "\$r/proc"; mount --bind /dev "\$r/dev"
mount --bind /sys "\$r/sys"; mount --bind "$out" "\$r$out"
cp -a /etc/. "\$r/etc/" 2>/dev/null || true
echo "$sb/uboot.env 0x0 0x4000" >"\$r/etc/fw_env.config"
mkdir -p "\$r/etc/mender" "$sb/conf" "$sb/data" "$sb/store"
echo artifact_name=base >"\$r/etc/mender/artifact_info"
printf '{"RootfsPartA": "%s", "RootfsPartB": "%s"}\n' "\$la" "\$lb" >"$sb/conf/mender.conf"
printf 'device_type=bench\n' >"$sb/store/device_type"
for i in \$(seq 1 $runs); do
    rm -rf "$sb/store/mender-store" "$sb/data"/*
    head -c 16384 /dev/zero >"$sb/uboot.env"
    fw_setenv -c "\$r/etc/fw_env.config" -f "$dev/env.txt" bootcount 0 2>/dev/null
    cat "$out/rootfs-$mib-gzip.mender" >/dev/null
    rc=0
    chroot "\$r" /usr/bin/time -a -o "$out/.mtime" -f '%e %M' env MENDER_CONF_DIR="$sb/conf" \
        MENDER_DATA_DIR="$sb/data" MENDER_DATASTORE_DIR="$sb/store" mender --no-syslog \
        -c "$sb/conf/mender.conf" -d "$sb/store" install "$out/rootfs-$mib-gzip.mender" \
        >"$out/.mout" 2>&1 || rc=\$?
    [ \$rc = 0 ] || { tail -n 20 "$out/.mout" >&2; echo "mender install: exit \$rc" >&2; exit 1; }
    cmp -n $bytes "$img" "\$lb" >/dev/null || { echo "mender: partition B != image" >&2; exit 1; }
    [ "\$(fw_printenv -c "\$r/etc/fw_env.config" -n upgrade_available 2>/dev/null)" = 1 ] ||
        { echo "mender did not arm the trial boot" >&2; exit 1; }
done
SH
: >"$out/.mtime"
unshare -m --propagation private bash "$sb/run.sh"
w=$(awk '{ print $1 }' "$out/.mtime" | median)
r=$(awk '{ print $2 }' "$out/.mtime" | median)
awk -v w="$w" -v b="$bytes" -v r="$r" -v lim="${wall_of["gzip limit"]}" 'BEGIN {
    printf "%-6s %-40s %8.0f %9.1f %13.1f %8.1f%%\n", "gzip", "Mender Go client (mender install)",
        1000 * w, b / w / 1e6, r / 1024, 100 * lim / w }'
rm -rf "$sb"
