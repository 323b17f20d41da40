#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The rootfs-image part of the demo: a full A->B system update on the simulated A/B device
# (tests/sim-bootloader: two image files as partitions, a redundant U-Boot environment read and
# written with libubootenv, a bootloader doing what Mender's U-Boot script does), then a new
# image that does not boot: the bootloader falls back by itself and molt reports the failure
# with the old system running.
#   tools/demo-rootfs.sh [BUILD_DIR [DEMO_DIR]]
# BUILD_DIR holds a built molt (default build/release; built if missing), DEMO_DIR the device
# (default build/demo-rootfs; recreated). Nothing outside DEMO_DIR is touched.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$top/build/release}
demo=${2:-$top/build/demo-rootfs}
if [ ! -x "$bin/core/molt" ] || [ ! -f "$bin/modules/native/rootfs-image.so" ]; then
    cmake -S "$top" -B "$bin" -DMOLT_BUILD_TESTS=OFF >/dev/null
    cmake --build "$bin" -j "$(nproc)" >/dev/null
fi
bin=$(cd "$bin" && pwd)
sim="$top/tests/sim-bootloader/sim-bootloader"
rm -rf "$demo"
mkdir -p "$demo/release"
demo=$(cd "$demo" && pwd)
dev="$demo/device"
molt=("$bin/core/molt" --config "$dev/molt.yaml")
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }
rc_of() { local rc=0; "$@" || rc=$?; echo "(exit $rc)"; }
envshow() { fw_printenv -c "$dev/fw_env.config" 2>/dev/null | grep -E '^(mender_boot_part|upgrade_available|bootcount)=' | tr '\n' ' '; echo; }

step "rootfs 1. A simulated A/B device: partition A runs, U-Boot environment (redundant)"
show "$sim" create "$dev" --redundant --part-size 4194304 --molt-build "$bin"
echo "log_level: warning" >>"$dev/molt.yaml"   # the demo shows results, not molt's log
echo "running: $(cat "$dev/running")   $(cat "$dev/cmdline")"
printf 'environment: '; envshow

step "rootfs 2. Release engineer: a root file system image and its artifact"
show "$sim" image "$demo/release/rootfs-2.img" release-2 --size 3000000
show "$bin/sdk/artifact/molt-artifact" write rootfs-image -f "$demo/release/rootfs-2.img" \
    -n release-2 -t sim-ab --compression zstd -o "$demo/release/release-2.mender"

step "rootfs 3. Install: streamed into partition B, trial boot armed, reboot required (exit 4)"
printf '$ molt install --reboot-exit-code release-2.mender\n'
rc_of "${molt[@]}" install --reboot-exit-code "$demo/release/release-2.mender"
printf 'environment: '; envshow

step "rootfs 4. Reboot: the bootloader tries B, molt resume verifies it"
rc_of "$sim" boot "$dev"
echo "running: $(cat "$dev/running")"
tail -n 2 "$dev/boot.log"

step "rootfs 5. Commit"
show "${molt[@]}" commit
printf 'environment: '; envshow
show "${molt[@]}" show-provides

step "rootfs 6. A release whose image does not boot"
show "$sim" image "$demo/release/rootfs-3.img" release-3 --size 3000000 --unbootable
mender-artifact write rootfs-image -f "$demo/release/rootfs-3.img" -n release-3 -t sim-ab \
    -o "$demo/release/release-3.mender" >/dev/null 2>&1
echo "(written with mender-artifact write rootfs-image)"
printf '$ molt install --reboot-exit-code release-3.mender\n'
rc_of "${molt[@]}" install --reboot-exit-code "$demo/release/release-3.mender"
printf 'environment: '; envshow

step "rootfs 7. Reboot: A does not come up, the bootloader falls back to B, molt reports failure"
rc_of "$sim" boot "$dev"
tail -n 4 "$dev/boot.log"
echo "running: $(cat "$dev/running")"
printf 'environment: '; envshow
show "${molt[@]}" show-provides
