# SPDX-License-Identifier: Apache-2.0
# Helpers of the VM tier (tests/vm/test_*.sh): molt-image disks booted in QEMU with real GRUB,
# real reboots, and SIGKILL of QEMU as the power cut. Source after tests/integration/lib.sh.
# See docs/vm.md.
#
# A failed test leaves its serial consoles in $MOLT_BUILD_DIR/vm-logs.
#
#   vm_prereqs                 exit 77 (ctest: skipped) with the reason in the ASan build, or when
#                              qemu-system-x86_64 cannot start
#   vm_images                  build (once per molt build, shared by the tests, under a lock) the
#                              images in $VMI: disk.img (release v1), rootfs images and artifacts
#                              ($VMI/*.mender, listed in vm_images below)
#   vm_serve [OPTIONS]         a loopback file server (molt_test_server.py OPTIONS) on $VMI's
#                              artifacts; $SRV = the URL the guest uses (10.0.2.2 = the host)
#   vm_start NAME              boot machine NAME (a copy-on-write overlay of disk.img, kept across
#                              power cuts); the console goes to $T/NAME.console
#   vm_boot [TIMEOUT]          wait for the next completed boot ("molt-vm: resume done"); sets
#                              VM_RELEASE, VM_ROOT (/dev/vda2|/dev/vda3) and VM_RESUME_RC
#   vm_boot_settled            vm_boot until molt resume asks for no more reboot (exit not 4)
#   vm_wait REGEX COUNT [TIMEOUT]  wait until the console holds COUNT lines matching REGEX
#   vm_sh CMD [TIMEOUT]        run CMD in the guest's control shell: $VM_OUT (file), $VM_RC
#   vm_ok CMD [TIMEOUT]        vm_sh, failing the test unless it exits 0
#   vm_cut                     the power cut: SIGKILL of QEMU (and wait for it)
#   vm_artifact                the guest's installed artifact name (molt show-artifact)
#   vm_status EXPR             a Python expression over the guest's `molt status --json` (j)
#   vm_state, vm_last_result   its "state" (idle, awaiting-commit...), last_deployment.result
VM_DIR="$MOLT_SRC_DIR/tests/vm"
VMI=${MOLT_VM_IMAGES:-$MOLT_BUILD_DIR/vm-images}
VM_PID= VM_NAME= VM_BOOTS=0 SRV_PIDS=()

vm_cleanup() {
    local rc=$?
    if [ $rc != 0 ] && [ $rc != 77 ]; then   # keep the consoles of a failed test
        mkdir -p "$MOLT_BUILD_DIR/vm-logs"
        cp "$T"/*.console "$MOLT_BUILD_DIR/vm-logs/" 2>/dev/null || true
        echo "vm: consoles kept in $MOLT_BUILD_DIR/vm-logs" >&2
    fi
    [ -z "$VM_PID" ] || { kill -9 "$VM_PID" 2>/dev/null || true; wait "$VM_PID" 2>/dev/null || true; }
    local p
    for p in ${SRV_PIDS[@]+"${SRV_PIDS[@]}"}; do
        kill "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$T"
}
trap vm_cleanup EXIT

vm_prereqs() {
    if [ "$MOLT_SANITIZE" = ON ]; then
        echo "SKIP: the vm tier runs in the gcc pass only: the guest runs the unsanitized molt"
        exit 77
    fi
    command -v qemu-system-x86_64 >/dev/null || {
        echo "SKIP: qemu-system-x86_64 is not installed (tools/deps.sh installs qemu-system-x86)"
        exit 77
    }
    if ! echo quit | timeout 60 qemu-system-x86_64 -M none -nodefaults -display none \
            -monitor stdio >/dev/null 2>"$T/qemu-probe.err"; then
        echo "SKIP: qemu-system-x86_64 cannot start: $(head -c 300 "$T/qemu-probe.err")"
        exit 77
    fi
    VM_ACCEL=${MOLT_VM_ACCEL:-}
    if [ -z "$VM_ACCEL" ]; then
        VM_ACCEL=tcg
        vm_kvm_works && VM_ACCEL=kvm
    fi
    VM_CPU=qemu64
    [ "$VM_ACCEL" = tcg ] || VM_CPU=host
    echo "vm: QEMU with $VM_ACCEL" >&2
}

# KVM is used when /dev/kvm is writable AND a machine runs on it for 3 s (a nested /dev/kvm can
# exist and still fail at the first vCPU reset).
vm_kvm_works() {
    [ -w /dev/kvm ] || return 1
    local rc=0
    timeout 3 qemu-system-x86_64 -machine pc,accel=kvm -cpu host -m 64 -nodefaults \
        -display none -monitor none -serial none >/dev/null 2>&1 || rc=$?
    [ $rc = 124 ]
}

# The images every VM test uses, built once per molt build (a stamp of the inputs) under a lock.
vm_images() {
    mkdir -p "$VMI"
    exec 9>"$VMI/.lock"
    flock 9
    local stamp
    stamp=$(cat "$MOLT" "$MOLT_BUILD_DIR"/modules/native/*.so \
            $(find "$MOLT_BUILD_DIR/modules/native" -mindepth 2 -name '*.so' | sort) \
            "$MOLT_SRC_DIR/sdk/image/molt-image" \
            "$VM_DIR/vmlib.sh" | sha256sum | cut -c1-16)
    if [ "$(cat "$VMI/.stamp" 2>/dev/null)" != "$stamp" ]; then
        echo "vm: building the images in $VMI" >&2
        rm -f "$VMI"/*.img "$VMI"/*.ext4 "$VMI"/*.mender
        local MI="$MOLT_SRC_DIR/sdk/image/molt-image" c=(--molt-build "$MOLT_BUILD_DIR"
              --cache "${MOLT_IMAGE_CACHE:-$HOME/.cache/molt-image}" --health-deadline 10
              --control-shell)
        "$MI" "${c[@]}" --name v1 -o "$VMI/disk.img" >&2 || fail "molt-image v1"
        "$MI" "${c[@]}" --name v2 --rootfs-only -O "$VMI/good.ext4" >&2 || fail "molt-image v2"
        "$MI" "${c[@]}" --name broken --broken-init --rootfs-only -O "$VMI/broken.ext4" >&2 \
            || fail "molt-image broken"
        "$MI" "${c[@]}" --name unhealthy --health-command "test -e /data/no-such-file" \
            --health-deadline 3 --rootfs-only -O "$VMI/unhealthy.ext4" >&2 \
            || fail "molt-image unhealthy"
        # one rootfs, several artifact names: each installs as a new release
        local n
        for n in v2 v3 v4 v5 v6 v7 v8 v9; do
            vm_mkartifact "$n" "$VMI/good.ext4"
        done
        vm_mkartifact broken "$VMI/broken.ext4"
        vm_mkartifact unhealthy "$VMI/unhealthy.ext4"
        # a release whose ArtifactInstall_Enter script says so on the console, then waits (the
        # power is cut there: between the partition write and the environment switch)
        printf '#!/bin/sh\necho "molt-vm: ArtifactInstall_Enter: paused" > /dev/console\nsleep 100000\n' \
            > "$VMI/ArtifactInstall_Enter_00"
        vm_mkartifact pause-install "$VMI/good.ext4" -s "$VMI/ArtifactInstall_Enter_00"
        # a module-image for the file module: /data/app/motd
        mkdir -p "$VMI/file"
        echo "motd of release 2" > "$VMI/file/motd"
        printf /data/app > "$VMI/file/dest_dir"
        printf motd > "$VMI/file/filename"
        "$MOLT_ARTIFACT" write module-image -T single-file -n motd-2 -t qemu-x86-64 \
            -f "$VMI/file/motd" -f "$VMI/file/dest_dir" -f "$VMI/file/filename" \
            -o "$VMI/motd-2.mender" >/dev/null || fail "molt-artifact motd-2"
        echo "$stamp" > "$VMI/.stamp"
    fi
    flock -u 9
    exec 9>&-
}

vm_mkartifact() {  # NAME ROOTFS [molt-artifact options]
    local n=$1 img=$2
    shift 2
    "$MOLT_ARTIFACT" write rootfs-image -f "$img" -n "$n" -t qemu-x86-64 --compression zstd \
        -o "$VMI/$n.mender" "$@" >/dev/null || fail "molt-artifact write rootfs-image $n"
}

vm_serve() {  # [SERVER OPTIONS]: sets SRV (the URL the guest uses)
    local n=${#SRV_PIDS[@]}
    rm -f "$T/srv$n.port"
    python3 "$MOLT_SRC_DIR/tests/server/molt_test_server.py" --port-file "$T/srv$n.port" \
        --files "$VMI" --log "$T/srv$n.log" "$@" 2>>"$T/srv$n.err" &
    SRV_PIDS+=("$!")
    local end
    end=$(guard_deadline)
    while [ "$SECONDS" -lt "$end" ]; do
        [ -s "$T/srv$n.port" ] && break
        sleep 0.05
    done
    [ -s "$T/srv$n.port" ] || fail "the file server did not start: $(cat "$T/srv$n.err")"
    SRV="http://10.0.2.2:$(cat "$T/srv$n.port")"
}

vm_start() {  # NAME
    VM_NAME=$1
    local disk="$T/$1.qcow2"
    [ -f "$disk" ] || qemu-img create -q -f qcow2 -F raw -b "$VMI/disk.img" "$disk" ||
        fail "qemu-img create"
    touch "$T/$1.console"
    VM_BOOTS=$(vm_count 'molt-vm: resume done')
    VM_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    qemu-system-x86_64 -machine "pc,accel=$VM_ACCEL" -cpu "$VM_CPU" -m 256 -smp 1 -nodefaults -no-user-config \
        -display none -monitor none \
        -drive "file=$disk,if=virtio,format=qcow2,cache=writeback" \
        -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$VM_PORT-:7777" \
        -device virtio-net-pci,netdev=n0,romfile= -device virtio-rng-pci \
        -chardev "file,id=con,path=$T/$1.console,append=on" -serial chardev:con \
        2>>"$T/$1.qemu.err" &
    VM_PID=$!
}

vm_count() {  # REGEX: matching console lines so far
    grep -c -E "$1" "$T/$VM_NAME.console" 2>/dev/null || true
}

vm_console_tail() {
    echo "---- console of $VM_NAME (last 40 lines)" >&2
    tail -n 40 "$T/$VM_NAME.console" | tr -d '\r' >&2
    cat "$T/$VM_NAME.qemu.err" >&2 2>/dev/null || true
}

vm_wait() {  # REGEX COUNT [TIMEOUT]
    # A guard against a hang, never a window: a boot under TCG on a loaded machine took 492 s
    # (load 30), so at least MOLT_VM_GUARD (default 3 x MOLT_TEST_GUARD) seconds.
    local deadline
    deadline=$(MOLT_TEST_GUARD=${MOLT_VM_GUARD:-$((MOLT_TEST_GUARD * 3))} guard_deadline "${3:-}")
    while [ "$(vm_count "$1")" -lt "$2" ]; do
        if ! kill -0 "$VM_PID" 2>/dev/null; then
            vm_console_tail
            fail "QEMU exited while waiting for /$1/ x$2"
        fi
        if [ $SECONDS -ge "$deadline" ]; then
            vm_console_tail
            fail "no /$1/ x$2 on the console before the guard (MOLT_VM_GUARD)"
        fi
        sleep 0.2
    done
}

vm_boot() {  # [TIMEOUT]
    VM_BOOTS=$((VM_BOOTS + 1))
    vm_wait 'molt-vm: resume done' "$VM_BOOTS" "${1:-300}"
    local up done_line
    up=$(grep -a 'molt-vm: up: release' "$T/$VM_NAME.console" | tail -n 1 | tr -d '\r')
    done_line=$(grep -a 'molt-vm: resume done' "$T/$VM_NAME.console" | tail -n 1 | tr -d '\r')
    VM_RELEASE=$(sed -n 's/.*release \([^ ]*\) on.*/\1/p' <<<"$up")
    VM_ROOT=$(sed -n 's/.* on \(.*\)$/\1/p' <<<"$up")
    VM_RESUME_RC=$(sed -n 's/.*rc=\([0-9]*\).*/\1/p' <<<"$done_line")
    echo "vm: [${SECONDS}s] booted release $VM_RELEASE on $VM_ROOT, molt resume exited $VM_RESUME_RC" >&2
}

vm_boot_settled() {
    vm_boot
    local n=0
    while [ "$VM_RESUME_RC" = 4 ]; do
        n=$((n + 1))
        [ $n -le 3 ] || fail "molt resume asked for a reboot after 4 boots in a row"
        vm_boot
    done
}

vm_sh() {  # CMD [TIMEOUT]
    VM_OUT="$T/vm.out"
    VM_RC=0
    python3 "$VM_DIR/vmctl.py" "$VM_PORT" "${2:-300}" "$1" >"$VM_OUT" || VM_RC=$?
    [ "$VM_RC" != 255 ] || { vm_console_tail; fail "the guest's control shell did not answer: $1"; }
    tr -d '\r' <"$VM_OUT" >"$VM_OUT.tmp" && mv "$VM_OUT.tmp" "$VM_OUT"
}

vm_ok() {  # CMD [TIMEOUT]
    vm_sh "$@"
    [ "$VM_RC" = 0 ] || { cat "$VM_OUT" >&2; fail "in the guest: '$1' exited $VM_RC"; }
}

vm_cut() {
    kill -9 "$VM_PID" 2>/dev/null || true
    wait "$VM_PID" 2>/dev/null || true
    VM_PID=
    echo "vm: power cut" >&2
}

vm_artifact() { vm_ok "molt show-artifact"; tr -d '\n' <"$VM_OUT"; }

vm_status() {  # PYTHON-EXPRESSION over `molt status --json` (j)
    vm_sh "molt status --json"
    python3 -c "import json,sys; j=json.load(open(sys.argv[1])); v=$1; print('' if v is None else v)" \
        "$VM_OUT" || { head -c 600 "$VM_OUT" >&2; fail "molt status --json in the guest"; }
}
vm_state() { vm_status 'j["state"]'; }
vm_last_result() { vm_status '(j.get("last_deployment") or {}).get("result")'; }

# Install artifact NAME from the file server and reboot for real; then the next boot is waited for.
vm_install_reboot() {  # NAME
    vm_sh "molt --reboot-exit-code install $SRV/$1.mender" 600
    [ "$VM_RC" = 4 ] || { cat "$VM_OUT" >&2; fail "install $1: expected exit 4 (reboot), got $VM_RC"; }
    echo "vm: [${SECONDS}s] installed $1, rebooting" >&2
    vm_sh "sync; (sleep 0.2; reboot -f) >/dev/null 2>&1 &" 30
    vm_boot
}
