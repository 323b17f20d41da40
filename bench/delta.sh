#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: delta updates of a full system image (docs/delta.md). Builds two ext4 rootfs images
# (mkfs.ext4 -d, fixed UUID, hash seed and timestamps) of a Debian userland unpacked from real
# .debs (apt-get download + dpkg-deb -x), the pair chosen by BENCH_PAIR:
#   kernel   (default) the issue's reference pair: the kernel package 6.1.192-2 -> 6.1.192-3
#            (linux-image-6.1.0-56 -> -57-cloud-amd64: every module rebuilt, in a new folder);
#   upgrade  that kernel upgrade, 18 packages at their bookworm-security/updates versions
#            (libc6, openssl, systemd, curl, python3.11, perl-base, tzdata, ...) and two folders
#            moved (/usr/share/doc, /usr/share/zoneinfo);
#   jump     as upgrade, but from kernel 6.1.176-1 (linux-image-6.1.0-50): 16 stable releases.
# Then prints, in one run:
#   - sizes: the full zstd artifact of the new image; molt's delta artifact; the deltas of
#     `zstd -19 --patch-from --long`, `xdelta3 -9` and (BENCH_BSDIFF=1) bsdiff on the same pair;
#   - generation: wall time, peak RSS (VmHWM) and peak anonymous RSS of each;
#   - apply: molt installing the delta on a simulated A/B device (tests/sim-bootloader) whose
#     partitions are files of the image size (base check + rebuild + SHA-256 + fsync + arming
#     the bootloader), against `zstd -d --patch-from` and `xdelta3 -d` (no checks, no fsync),
#     and molt installing the full zstd artifact; wall time (median of RUNS), peak RSS and
#     peak anonymous RSS (/proc/<pid>/status RssAnon sampled every 2 ms), and the partitions'
#     pages in the page cache after molt's apply (fincore).
# Every apply starts with the partitions and inputs dropped from the page cache (fadvise).
# Not part of ctest. Needs root (mkfs.ext4 -d keeps owners) and Debian's apt mirror.
#
# Usage: bench/delta.sh    (BENCH_PAIR=kernel|upgrade|jump; RUNS=3; BENCH_IMG_MIB=256;
#                           BENCH_CACHE=folder for the downloaded .debs, default
#                           ~/.cache/molt-bench-delta; MOLT_BUILD_DIR to reuse a build;
#                           BENCH_BSDIFF=1 adds bsdiff, minutes and GiBs; BENCH_REUSE=1 keeps
#                           the deltas of an earlier run and reprints its generation figures)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
pair=${BENCH_PAIR:-kernel}
out="$top/bench/out/delta-$pair"
runs=${RUNS:-3}
mib=${BENCH_IMG_MIB:-256}
cache=${BENCH_CACHE:-$HOME/.cache/molt-bench-delta}
mkdir -p "$out" "$cache"
echo '*' >"$top/bench/out/.gitignore"
exec > >(tee "$out/report.txt")
"$top/tools/deps.sh"
. "$top/bench/lib.sh"

bench_build rootfs-image
sim="$top/tests/sim-bootloader/sim-bootloader"

# --- the packages -----------------------------------------------------------------------------
# In both images: a small Debian userland.
same=(bash coreutils dash libacl1 libattr1 libaudit1 libblkid1 libbz2-1.0 libcap2 libcrypt1
      libgcc-s1 libgmp10 liblzma5 libmount1 libpcre2-8-0 libselinux1 libstdc++6 libtinfo6
      libzstd1 zlib1g busybox iproute2 vim-tiny libsqlite3-0 libffi8 libreadline8 dbus
      libdbus-1-3 libncursesw6 findutils grep sed tar gzip diffutils)
# Packages with a bookworm-security/updates version: the old one (bookworm) and the newest.
pkgs_old=(libc6=2.36-9+deb12u7 libssl3=3.0.17-1~deb12u2 openssl=3.0.17-1~deb12u2
     systemd=252.38-1~deb12u1 libsystemd0=252.38-1~deb12u1 libudev1=252.38-1~deb12u1
     udev=252.38-1~deb12u1 curl=7.88.1-10+deb12u5 libcurl4=7.88.1-10+deb12u5
     python3.11-minimal=3.11.2-6+deb12u8 libpython3.11-minimal=3.11.2-6+deb12u8
     libpython3.11-stdlib=3.11.2-6+deb12u8 perl-base=5.36.0-7+deb12u3
     libxml2=2.9.14+dfsg-1.3~deb12u4 tzdata=2025b-0+deb12u1 util-linux=2.38.1-5+deb12u1
     libexpat1=2.5.0-1+deb12u2 libglib2.0-0=2.74.6-2+deb12u2)
pkgs_new=(libc6 libssl3 openssl systemd libsystemd0 libudev1 udev curl libcurl4
     python3.11-minimal libpython3.11-minimal libpython3.11-stdlib perl-base libxml2 tzdata
     util-linux libexpat1 libglib2.0-0)
kernel_new=linux-image-6.1.0-57-cloud-amd64   # 6.1.192-3
case $pair in
    kernel) same+=("${pkgs_new[@]}"); old=(linux-image-6.1.0-56-cloud-amd64); new=("$kernel_new")
            move=no ;;
    upgrade) old=(linux-image-6.1.0-56-cloud-amd64 "${pkgs_old[@]}"); new=("$kernel_new" "${pkgs_new[@]}")
             move=yes ;;
    jump) old=(linux-image-6.1.0-50-cloud-amd64 "${pkgs_old[@]}"); new=("$kernel_new" "${pkgs_new[@]}")
          move=yes ;;
    *) echo "BENCH_PAIR: kernel, upgrade or jump, not $pair" >&2; exit 2 ;;
esac

# download NAME[=VERSION]... into $cache (kept between runs); prints the .deb paths
download() {
    local spec name ver f
    for spec in "$@"; do
        name=${spec%%=*}
        ver=$([ "$spec" != "$name" ] && echo "${spec#*=}" ||
              apt-cache policy "$name" | awk '/Candidate:/ {print $2}')
        f=$(ls "$cache/${name}_${ver//:/%3a}_"*.deb 2>/dev/null | head -n 1 || true)
        if [ -z "$f" ]; then
            (cd "$cache" && apt-get download -q=2 "$name=$ver" >/dev/null 2>&1) ||
                { echo "apt-get download $name=$ver failed" >&2; exit 1; }
            f=$(ls "$cache/${name}_${ver//:/%3a}_"*.deb | head -n 1)
        fi
        echo "$f"
    done
}

epoch=1700000000
# mkimage TREE IMG: a reproducible ext4 image of TREE
mkimage() {
    find "$1" -exec touch -h -d "@$epoch" {} +
    rm -f "$2"
    truncate -s "${mib}M" "$2"
    E2FSPROGS_FAKE_TIME=$epoch SOURCE_DATE_EPOCH=$epoch mkfs.ext4 -q -F -b 4096 \
        -U 6b7a1f2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b \
        -E hash_seed=1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9,root_owner=0:0 \
        -d "$1" "$2" >/dev/null
}

if [ ! -s "$out/v1.img" ] || [ ! -s "$out/v2.img" ] || [ "$(stat -c %s "$out/v1.img")" != $((mib << 20)) ]; then
    echo "downloading/unpacking the packages (cache: $cache)" >&2
    apt-get update -qq >/dev/null 2>&1 || true
    mapfile -t debs_same < <(download "${same[@]}")
    mapfile -t debs_old < <(download "${old[@]}")
    mapfile -t debs_new < <(download "${new[@]}")
    for v in 1 2; do
        rm -rf "$out/tree$v"
        mkdir -p "$out/tree$v"
        if [ $v = 1 ]; then list=("${debs_same[@]}" "${debs_old[@]}"); else list=("${debs_same[@]}" "${debs_new[@]}"); fi
        for d in "${list[@]}"; do dpkg-deb -x "$d" "$out/tree$v"; done
        # as an image built with dpkg path-exclude for translations and manual pages
        rm -rf "$out/tree$v/usr/share/locale" "$out/tree$v/usr/share/man"
        mkdir -p "$out/tree$v"/{etc,var/lib,home,root,tmp,proc,sys,dev,run}
        echo "release $v" >"$out/tree$v/etc/release"
    done
    if [ "$move" = yes ]; then   # some files moved in the new release
        mv "$out/tree2/usr/share/doc" "$out/tree2/usr/share/documentation"
        mkdir -p "$out/tree2/opt"
        mv "$out/tree2/usr/share/zoneinfo" "$out/tree2/opt/zoneinfo"
        ln -s /opt/zoneinfo "$out/tree2/usr/share/zoneinfo"
    fi
    echo "tree sizes: $(du -sm "$out/tree1" | cut -f1) MiB, $(du -sm "$out/tree2" | cut -f1) MiB" >&2
    mkimage "$out/tree1" "$out/v1.img"
    mkimage "$out/tree2" "$out/v2.img"
    rm -rf "$out/tree1" "$out/tree2"
fi
img_bytes=$(stat -c %s "$out/v2.img")

# measure OUTFILE CMD...: wall seconds, VmHWM KiB, peak RssAnon KiB (sampled every 2 ms) of CMD
measure() {
    local res=$1
    shift
    python3 - "$res" "$@" <<'PY'
import os, subprocess, sys, time
res, cmd = sys.argv[1], sys.argv[2:]
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(res + ".err", "w"))
anon = hwm = 0
while p.poll() is None:
    try:
        with open(f"/proc/{p.pid}/status") as f:
            for line in f:
                k, _, v = line.partition(":")
                if k == "RssAnon": anon = max(anon, int(v.split()[0]))
                elif k == "VmHWM": hwm = max(hwm, int(v.split()[0]))
    except (FileNotFoundError, ProcessLookupError, ValueError):
        pass
    time.sleep(0.002)
wall = time.monotonic() - t0
open(res, "w").write(f"{wall:.3f} {hwm} {anon} {p.returncode}\n")
PY
}
# evict FILE...: drop their pages from the page cache
evict() {
    sync
    python3 -c '
import os, sys
for p in sys.argv[1:]:
    fd = os.open(p, os.O_RDONLY); os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED); os.close(fd)' "$@"
}
mb() { awk -v b="$1" 'BEGIN {printf "%.2f MB", b / 1e6}'; }

# --- artifacts and deltas ---------------------------------------------------------------------
"$molt_artifact" write rootfs-image -f "$out/v1.img" -n v1 -t bench -o "$out/v1.mender" \
    --compression zstd
"$molt_artifact" write rootfs-image -f "$out/v2.img" -n v2 -t bench -o "$out/v2.mender" \
    --compression zstd
full=$(stat -c %s "$out/v2.mender")
wlog=$(python3 -c "import math,sys; print(math.ceil(math.log2($(stat -c %s "$out/v1.img") + $img_bytes)))")

printf '\n== pair %s: generation (%d MiB images; %s CPUs, load %s) ==\n' "$pair" "$mib" "$(nproc)" \
    "$(cut -d' ' -f1 /proc/loadavg)"
printf '%-34s %12s %9s %10s %12s %12s\n' tool "size" "% full" "time s" "peak RSS" "peak anon"
gen() {  # NAME OUTPUT CMD...
    local name=$1 o=$2
    shift 2
    if [ "${BENCH_REUSE:-0}" = 1 ] && [ -s "$o" ] && [ -s "$o.gen" ]; then
        read -r wall hwm anon rc <"$o.gen"   # BENCH_REUSE=1: the figures of the run that made it
    else
        rm -f "$o"
        measure "$out/gen.res" "$@"
        read -r wall hwm anon rc <"$out/gen.res"
        cp "$out/gen.res" "$o.gen"
    fi
    [ "$rc" = 0 ] || { cat "$out/gen.res.err" >&2; echo "$name failed" >&2; exit 1; }
    local size
    size=$(stat -c %s "$o")
    printf '%-34s %12s %8.2f%% %10s %9d MiB %9d MiB\n' "$name" "$(mb "$size")" \
        "$(awk -v a="$size" -v b="$full" 'BEGIN {print 100 * a / b}')" "$wall" \
        $((hwm / 1024)) $((anon / 1024))
    echo "$size" >"$o.size"
}
printf '%-34s %12s %8.2f%%\n' "full zstd artifact (molt-artifact)" "$(mb "$full")" 100
gen "molt-artifact write rootfs-delta" "$out/d12.mender" \
    "$molt_artifact" write rootfs-delta --base "$out/v1.mender" --target "$out/v2.mender" \
    -o "$out/d12.mender"
gen "zstd -19 --patch-from --long=$wlog" "$out/d12.zst" \
    zstd -q -f -19 --long="$wlog" --patch-from="$out/v1.img" "$out/v2.img" -o "$out/d12.zst"
gen "xdelta3 -9" "$out/d12.vcdiff" xdelta3 -f -9 -e -s "$out/v1.img" "$out/v2.img" "$out/d12.vcdiff"
if [ "${BENCH_BSDIFF:-0}" = 1 ]; then
    gen "bsdiff" "$out/d12.bsdiff" bsdiff "$out/v1.img" "$out/v2.img" "$out/d12.bsdiff"
fi
ours=$(cat "$out/d12.mender.size")
best=$(cat "$out/d12.zst.size" "$out/d12.vcdiff.size" | sort -n | head -n 1)
printf 'goal: delta <= 10%% of the full zstd artifact: %.2f%%; <= 1.1x the best CLI tool: %.3fx\n' \
    "$(awk -v a="$ours" -v b="$full" 'BEGIN {print 100 * a / b}')" \
    "$(awk -v a="$ours" -v b="$best" 'BEGIN {print a / b}')"

# --- apply on the simulated device -------------------------------------------------------------
D="$out/dev"
rm -rf "$D"
"$sim" create "$D" --molt-build "$build" --part-size "$img_bytes" >/dev/null
printf 'device_type=bench\n' >"$D/data/device_type"   # the artifacts' device type
# The device runs v1 on A: an ext4 image does not "boot" in the simulator (it looks for its
# SIM-ROOTFS line), so v1 is put on A and its provides recorded with a bootstrap artifact.
dd if="$out/v1.img" of="$D/part-a.img" conv=notrunc status=none
"$molt_artifact" write bootstrap-artifact -n v1 -t bench -o "$out/boot.mender" \
    -p "rootfs-image.checksum:$(sha256sum "$out/v1.img" | cut -d' ' -f1)"
"$molt" --config "$D/molt.yaml" install "$out/boot.mender" >/dev/null 2>&1
"$molt" --config "$D/molt.yaml" show-provides 2>/dev/null | grep -q "^rootfs-image.checksum=" ||
    { echo "the simulated device did not record v1's provides" >&2; exit 1; }
tar -C "$D" --exclude='part-*.img' -cf "$out/dev-state.tar" .

printf '\n== apply (median of %d; caches dropped before each run) ==\n' "$runs"
printf '%-44s %9s %12s %12s\n' what "time s" "peak RSS" "peak anon"
apply() {  # NAME CHECK CMD...   (CHECK: a command run after, must succeed)
    local name=$1 check=$2 i walls=() hwm=0 anon=0
    shift 2
    for ((i = 0; i < runs; i++)); do
        tar -C "$D" -xf "$out/dev-state.tar"
        evict "$D/part-a.img" "$D/part-b.img" "$out"/d12* "$out"/v*.img "$out"/*.mender
        measure "$out/apply.res" "$@"
        read -r wall h a rc <"$out/apply.res"
        eval "$check" || { cat "$out/apply.res.err" >&2; echo "$name: failed (exit $rc)" >&2; exit 1; }
        walls+=("$wall")
        [ "$h" -gt "$hwm" ] && hwm=$h
        [ "$a" -gt "$anon" ] && anon=$a
    done
    local med
    med=$(printf '%s\n' "${walls[@]}" | median)
    printf '%-44s %9s %9d MiB %9d MiB\n' "$name" "$med" $((hwm / 1024)) $((anon / 1024))
    echo "$med" >"$out/apply-$(echo "$name" | tr -c 'a-z0-9' _).med"
    APPLY_MED=$med
}
# after molt's delta apply: which pages of the partitions the page cache holds (before cmp reads)
cached_b() {
    [ -n "${cached:-}" ] || cached=$(fincore -b -n -o RES "$D/part-a.img" "$D/part-b.img" | paste -sd' ')
    cmp -s -n "$img_bytes" "$out/v2.img" "$D/part-b.img"
}
cmp_b() { cmp -s -n "$img_bytes" "$out/v2.img" "$D/part-b.img"; }
apply "molt install (delta, all checks)" cached_b \
    "$molt" --config "$D/molt.yaml" install "$out/d12.mender" --reboot-exit-code
molt_med=$APPLY_MED
apply "molt install (full zstd artifact)" cmp_b \
    "$molt" --config "$D/molt.yaml" install "$out/v2.mender" --reboot-exit-code
apply "zstd -d --patch-from --long=$wlog" "cmp -s $out/v2.img $out/apply.out" \
    zstd -q -f -d --long="$wlog" --patch-from="$D/part-a.img" "$out/d12.zst" -o "$out/apply.out"
zstd_med=$APPLY_MED
apply "xdelta3 -d" "cmp -s $out/v2.img $out/apply.out" \
    xdelta3 -f -d -s "$D/part-a.img" "$out/d12.vcdiff" "$out/apply.out"
rm -f "$out/apply.out"
printf 'goal: molt apply faster than zstd --patch-from apply: %s s vs %s s (%.2fx)\n' \
    "$molt_med" "$zstd_med" "$(awk -v a="$molt_med" -v b="$zstd_med" 'BEGIN {print b / a}')"
printf 'page cache after molt'"'"'s delta apply (A read, B written), bytes resident (A B): %s\n' \
    "${cached:-fincore unavailable}"
