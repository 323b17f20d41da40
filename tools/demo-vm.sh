#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# molt on a real (virtual) device: a molt-image disk booted in QEMU, managed from molt's Mender
# test server on the host's loopback, over HTTPS (QEMU's user network: the guest's 10.0.2.2 is
# the host's 127.0.0.1; nothing leaves the machine). Installs what is missing (Debian 12, as
# root), builds, then:
#   1. v1 boots (GRUB, Debian's cloud kernel, busybox, molt resume, molt daemon);
#   2. the server offers v2: the device downloads it, writes partition B, reboots for real into
#      v2 and commits; the server sees "success";
#   3. the server offers v3, whose init fails: the kernel panics, GRUB falls back to v2, and
#      molt reports the failure to the server.
# The serial console is shown as it happens. KVM when /dev/kvm is usable, TCG otherwise
# (MOLT_VM_ACCEL=tcg|kvm forces one). Everything lives below $MOLT_DEMO_DIR (build/demo-vm).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

"$top/tools/deps.sh"
cmake -S "$top" -B "$top/build/release" -DMOLT_BUILD_TESTS=OFF >/dev/null
cmake --build "$top/build/release" -j "$(nproc)" >/dev/null
bin="$top/build/release"

demo=${MOLT_DEMO_DIR:-$top/build/demo-vm}
rm -rf "$demo"
mkdir -p "$demo/www"
cd "$demo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
die() { echo "demo-vm: $*" >&2; exit 1; }
QEMU_PID= SRV_PID= TAIL_PID=
cleanup() {
    for p in $TAIL_PID $QEMU_PID $SRV_PID; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

accel=${MOLT_VM_ACCEL:-}
if [ -z "$accel" ]; then   # KVM when /dev/kvm is there and a machine really runs on it for 3 s
    accel=tcg rc=0
    [ -w /dev/kvm ] && { timeout 3 qemu-system-x86_64 -machine pc,accel=kvm -cpu host -m 64 \
        -nodefaults -display none -monitor none -serial none >/dev/null 2>&1 || rc=$?; } &&
        [ $rc = 124 ] && accel=kvm
fi
cpu=qemu64
[ $accel = tcg ] || cpu=host

step "The test server (Mender device API, HTTPS) on 127.0.0.1"
bash "$top/tests/server/make_test_ca.sh" ca "molt demo" IP:10.0.2.2 >/dev/null
python3 "$top/tests/server/mender_api.py" --port-file port --tls-cert ca/server.crt \
    --tls-key ca/server.key --files www --state server-state.json --log server.log \
    --auto-accept 2>server.err &
SRV_PID=$!
for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
[ -s port ] || die "the test server did not start: $(cat server.err)"
PORT=$(cat port)
URL="https://127.0.0.1:$PORT"
echo "server: $URL (the guest reaches it as https://10.0.2.2:$PORT)"
mctl() { curl -sS --fail --cacert ca/ca.crt -X PUT --data "$1" "$URL/_control/mender" -o /dev/null; }
mq() {  # a Python expression over the server's state s
    curl -sS --fail --cacert ca/ca.crt "$URL/_control/mender" |
        python3 -c "import json,sys; s=json.load(sys.stdin); print($1)"
}
statuses() {  # DEPLOYMENT-ID: the statuses the device reported
    mq "' '.join(st for dd in s['device_deployments'].values() if dd.get('deployment_id', dd.get('id')) == '$1' for st in dd.get('statuses', []))" 2>/dev/null || true
}

step "molt-image: the disk (v1) and two releases (v2, and v3 whose init fails)"
mi=("$top/sdk/image/molt-image" --molt-build "$bin" --server "https://10.0.2.2:$PORT"
    --server-ca ca/ca.crt --poll 3)
"${mi[@]}" --name v1 -o disk.img
"${mi[@]}" --name v2 --rootfs-only -O v2.ext4
"${mi[@]}" --name v3 --broken-init --rootfs-only -O v3.ext4
for v in v2 v3; do
    "$bin/sdk/artifact/molt-artifact" write rootfs-image -f $v.ext4 -n $v -t qemu-x86-64 \
        --compression zstd -o www/$v.mender
done
ls -la disk.img www/

step "1. v1 boots (QEMU, $accel; the serial console follows)"
qemu-img create -q -f qcow2 -F raw -b disk.img device.qcow2
: > console.log
qemu-system-x86_64 -machine "pc,accel=$accel" -cpu $cpu -m 256 -nodefaults -no-user-config -display none \
    -monitor none -drive file=device.qcow2,if=virtio,format=qcow2 \
    -netdev user,id=n0 -device virtio-net-pci,netdev=n0,romfile= -device virtio-rng-pci \
    -chardev file,id=con,path=console.log -serial chardev:con 2>qemu.err &
QEMU_PID=$!
tail -n +1 -F console.log 2>/dev/null | sed -u 's/^/  | /' &
TAIL_PID=$!
wait_for() {  # WHAT SECONDS PYTHON-EXPR-OR-CONSOLE-REGEX KIND
    local i
    for ((i = 0; i < $2 * 2; i++)); do
        if [ "$4" = console ]; then
            grep -qaE "$3" console.log && return 0
        else
            [ "$(mq "$3" 2>/dev/null)" = True ] && return 0
        fi
        kill -0 $QEMU_PID 2>/dev/null || die "QEMU exited: $(cat qemu.err)"
        sleep 0.5
    done
    die "timed out waiting for: $1"
}
wait_for "v1 to boot" 600 'molt-vm: resume done' console
wait_for "the device to authenticate" 300 'len(s["inventory"]) >= 1' server
echo "demo-vm: the device is accepted and sent its inventory"

step "2. The server offers v2: download, write partition B, reboot for real, commit"
mctl '{"deployment": {"id": "d-v2", "artifact_name": "v2", "file": "v2.mender", "device_types": ["qemu-x86-64"]}}'
wait_for "v2 to succeed" 900 '"success" in [st for dd in s["device_deployments"].values() for st in dd.get("statuses", [])]' server
grep -qa 'molt-vm: up: release v2 on /dev/vda3' console.log || die "v2 did not boot from partition B"
echo "demo-vm: v2 runs from partition B and the server has its success"

step "3. The server offers v3, whose init fails: GRUB falls back to v2, molt reports failure"
mctl '{"deployment": {"id": "d-v3", "artifact_name": "v3", "file": "v3.mender", "device_types": ["qemu-x86-64"]}}'
wait_for "v3 to fail" 900 '"failure" in [st for dd in s["device_deployments"].values() for st in dd.get("statuses", [])]' server
grep -qa 'molt-grub: trial boot of partition 2 failed: falling back' console.log ||
    die "GRUB did not fall back"
grep -qa 'molt-vm: up: release v2 on /dev/vda3' console.log || die "v2 is not running"
kill $TAIL_PID 2>/dev/null || true
step "Done"
echo "v1 booted, v2 installed over the air and committed after a real reboot, v3 panicked and"
echo "GRUB fell back to v2; the server holds both outcomes. Console: $demo/console.log,"
echo "server log: $demo/server.log. Figures: docs/vm.md."
