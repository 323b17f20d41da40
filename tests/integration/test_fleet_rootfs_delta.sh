# SPDX-License-Identifier: Apache-2.0
# A delta deploys like a full artifact through `molt daemon` and the test server's Mender device
# API (tests/server/mender_api.py): the simulated A/B device (tests/sim-bootloader) with the
# native rootfs-image module gets the full v1, then the delta v1->v2 (payload type
# rootfs-delta, same artifact name as the full v2 would have); for each: downloading,
# installing, rebooting (server.reboot_command: a file the test waits for; the daemon is then
# killed as a reboot would, the simulated bootloader boots the new partition and the daemon
# starts again), installing, success; the partition equals the full image byte for byte and
# the inventory carries the new rootfs-image.checksum and rootfs-image.version.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/rootfs_lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/fleet.sh"

rf_device dev
DEV=$D DEV_CONF=$D/molt.yaml DEV_DATA=$D/data DEV_TYPE=sim-ab
cat >>"$DEV_CONF" <<YAML
http:
  ca_file: $T/ca/ca.crt
  retry_download_count: 5
  retry_max_interval: 1
server:
  url: \${URL}
  update_poll_interval: 1
  inventory_poll_interval: 3600
  retry_poll_interval: 1
  device_key_type: ed25519
  control_socket: $D/molt.sock
  reboot_command: touch $D/reboot-asked
YAML
mkdir -p "$D/identity"
printf '#!/bin/sh\necho "mac=52:54:00:12:34:99"\n' >"$D/identity/id"
chmod 0755 "$D/identity/id"
printf '  identity_scripts: [%s]\n' "$D/identity/id" >>"$DEV_CONF"

rf_image v1
python3 - "$T/v1.img" "$T/v2.img" <<'PY'
import os, sys
data = bytearray(open(sys.argv[1], "rb").read())
data[:len(b"SIM-ROOTFS bootable name=v1")] = b"SIM-ROOTFS bootable name=v2"
data[300000:308192] = os.urandom(8192)
data[100000:100000] = os.urandom(1000)              # what follows moves
open(sys.argv[2], "wb").write(bytes(data[:len(data) - 1000]))
PY
"$MOLT_ARTIFACT" write rootfs-image -f "$T/v1.img" -n v1 -t sim-ab -o "$T/www/v1.mender" \
    --compression zstd >/dev/null || fail "write v1"
"$MOLT_ARTIFACT" write rootfs-image -f "$T/v2.img" -n v2 -t sim-ab -o "$T/v2.mender" >/dev/null \
    || fail "write v2"
"$MOLT_ARTIFACT" write rootfs-delta --base "$T/www/v1.mender" --target "$T/v2.mender" \
    -o "$T/www/d12.mender" >/dev/null || fail "write rootfs-delta"

fleet_server_start
daemon_start
wait_mq 'any(d["status"] == "pending" for d in s["devices"].values())' 30
mctl '{"accept": true}'
wait_mq 'len(s["inventory"]) == 1' 30

# deploy ID NAME FILE PART IMAGE: one deployment through the reboot to success
deploy() {
    local id=$1 name=$2 file=$3 part=$4 img=$5 i
    rm -f "$D/reboot-asked"
    mctl "{\"deployment\": {\"id\": \"$id\", \"artifact_name\": \"$name\", \"file\": \"$file\", \"device_types\": [\"sim-ab\"]}}"
    local end
    end=$(guard_deadline)
    while [ "$SECONDS" -lt "$end" ]; do
        [ -e "$D/reboot-asked" ] && break
        kill -0 "$MOLT_BG_PID" 2>/dev/null || { cat "$T/daemon.out.err" >&2; fail "$id: the daemon exited"; }
        sleep 0.05
    done
    [ -e "$D/reboot-asked" ] || { tail -n 30 "$T/daemon.out.err" >&2; fail "$id: no reboot asked"; }
    daemon_kill                                    # the reboot
    run_prog "$SIM" boot "$D" --no-resume
    expect_rc 0 "$id: the simulated bootloader"
    assert_eq "$part" "$(rf_running)" "$id: booted partition"
    daemon_start
    wait_mq "dd('$id')['finished'] is not None" 60
    assert_eq "downloading installing rebooting installing success" \
        "$(mq "' '.join(dd('$id')['statuses'])")" "$id: statuses"
    cmp -n "$(stat -c %s "$img")" "$img" "$D/part-$(tr AB ab <<<"$part").img" \
        || fail "$id: partition $part differs from $img"
    wait_mq "list(s['inventory'].values())[0].get('rootfs-image.checksum') == '$(sha256sum "$img" | cut -d' ' -f1)'" 30
    assert_eq "$name" "$(mq "list(s['inventory'].values())[0].get('rootfs-image.version')")" \
        "$id: inventory rootfs-image.version"
    assert_eq "$name" "$(mq "list(s['inventory'].values())[0].get('artifact_name')")" \
        "$id: inventory artifact_name"
}
deploy d1 v1 v1.mender B "$T/v1.img"
pass "full v1 through the server: installed, rebooted, committed"
deploy d2 v2 d12.mender A "$T/v2.img"
daemon_stop
assert_eq 0 "$(rf_env upgrade_available)" "committed: upgrade_available"
pass "delta v1->v2 through the server deploys like a full artifact (statuses, partition, inventory)"
