# SPDX-License-Identifier: Apache-2.0
# ctest-labels: root slow
# `molt daemon` against the test server's Mender device API (tests/server/mender_api.py), end to
# end over HTTPS with a throw-away CA:
#  - a new device: Ed25519 key made 0600, identity as docs/reference §3.1 encodes it, the signature
#    verified by openssl, pending (401) until accepted, then authenticated;
#  - a deployment through Mender's community single-file module (exec): v2 next answered 404,
#    v1 GET used; the artifact fetched without the token; the statuses downloading, installing,
#    installing, success in that order; the file bit-identical; the inventory sent again with
#    the new provides, and not sent when nothing changed;
#  - `molt check-update` / `molt send-inventory` through the control socket (0600; a non-root
#    peer is refused by its uid);
#  - the same through the built-in native file module, and with the v2 next route;
#  - RSA-3072 and ECDSA P-256 device keys authenticate too (signatures verified by openssl);
#  - every request and answer checked against the OpenAPI documents (openapi_check.py).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/fleet.sh"

fleet_device
fleet_artifact r1
fleet_server_start
daemon_start

wait_mq 'any(d["status"] == "pending" for d in s["devices"].values())' 20
[ "$(stat -c %a "$DEV_DATA/device-key.pem")" = 600 ] || fail "device key mode $(stat -c %a "$DEV_DATA/device-key.pem")"
grep -q 'BEGIN PRIVATE KEY' "$DEV_DATA/device-key.pem" || fail "device key is not PEM"
openssl pkey -in "$DEV_DATA/device-key.pem" -noout -text | head -1 | grep -q ED25519 ||
    fail "default device key is not Ed25519"
assert_eq '{"mac":["52:54:00:12:34:56","52:54:00:ab:cd:ef"],"serial":"SN-0001"}' \
    "$(mq 'list(s["devices"].values())[0]["id_data"]')" "id_data"
assert_eq True "$(mq 'all(e.get("signature") == "ok" for e in api("auth_requests"))')" "signatures verified"
assert_eq "$(openssl pkey -in "$DEV_DATA/device-key.pem" -pubout)" \
    "$(mq 'list(s["devices"].values())[0]["pubkey"].rstrip()')" "pubkey sent"
wait_mq 'len(api("auth_requests")) >= 2'
assert_eq True "$(mq 'all(e["status"] == 401 for e in api("auth_requests"))')" "pending: 401, retried"
pass "pending device retries authentication"

mctl '{"accept": true}'
wait_mq 'len(s["inventory"]) == 1' 20
assert_eq True "$(mq 'any(e["status"] == 200 for e in api("auth_requests"))')" "accepted"
pass "accepted device authenticated and sent its inventory"

mctl '{"deployment": {"id": "d1", "artifact_name": "r1", "file": "r1.mender", "device_types": ["dev-a"]}}'
wait_mq 'dd()["finished"] is not None' 60
assert_eq "downloading installing installing success" "$(dd_statuses)" "status sequence"
cmp -s "$DEV_DEST/blob.bin" "$T/src-r1/blob.bin" || fail "installed file differs"
assert_eq r1 "$(dev_artifact)" "artifact name"
assert_eq True "$(mq 'all(not e["authorization"] for e in api("/_artifacts/"))')" "download without a token"
assert_eq True "$(mq 'any(e["status"] == 404 for e in api("/api/devices/v2/")) and any(e["method"] == "GET" and e["status"] == 200 for e in api("/v1/deployments/device/deployments/next"))')" \
    "v2 404 then v1 GET"
assert_eq True "$(mq 'all(e["authorization"] for e in api("/api/devices/v1/deployments") + api("/inventory"))')" \
    "token on device calls"
assert_eq "r1|dev-a|r1|test-kernel|['10.0.0.2/24', '10.0.0.3/24']" \
    "$(mq '"|".join(str(list(s["inventory"].values())[0].get(k)) for k in ("artifact_name", "device_type", "rootfs-image.single-file.version", "kernel", "ipv4"))')" \
    "inventory after the deployment"
pass "deployment installed, reported, inventory updated"

# Control socket: root only, 0600; check-update and send-inventory reach the daemon.
[ "$(stat -c %a "$DEV/run/molt.sock")" = 600 ] || fail "control socket mode $(stat -c %a "$DEV/run/molt.sock")"
puts=$(mq 'sum(s["inventory_puts"].values())')
molt_dev send-inventory
expect_rc 0 "molt send-inventory"
wait_mq "sum(s['inventory_puts'].values()) == $puts + 1" 10
n=$(mq 'len(api("deployments/next"))')
molt_dev check-update
expect_rc 0 "molt check-update"
wait_mq "len(api('deployments/next')) > $n" 10
chmod o+x "$T" "$DEV" "$DEV/run"
chmod 0666 "$DEV/run/molt.sock"
out=$(setpriv --reuid=65534 --regid=65534 --clear-groups /usr/bin/python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"check-update\n")
print(s.recv(100).decode().strip())' "$DEV/run/molt.sock") || fail "non-root client could not connect"
assert_match "^error only root" "$out" "non-root peer refused"
chmod 0600 "$DEV/run/molt.sock"
pass "control socket"

# Unchanged inventory is not sent again on its interval.
puts=$(mq 'sum(s["inventory_puts"].values())')
daemon_stop
sed -i 's/inventory_poll_interval: .*/inventory_poll_interval: 1/' "$DEV_CONF"
# The daemon says (at debug level) when it skips an unchanged inventory: wait for two of those.
echo "log_level: debug" >>"$DEV_CONF"
daemon_start
end=$(guard_deadline)
while [ "$(grep -c 'inventory unchanged: not sent' "$T/daemon.out.err")" -lt 2 ]; do
    [ "$SECONDS" -lt "$end" ] && kill -0 "$MOLT_BG_PID" 2>/dev/null ||
        fail "no unchanged inventory skipped: $(tail -n 20 "$T/daemon.out.err")"
    sleep 0.05
done
daemon_stop
sed -i '/^log_level: debug$/d' "$DEV_CONF"
assert_eq "$((puts + 1))" "$(mq 'sum(s["inventory_puts"].values())')" "inventory PUTs: one at start, none when unchanged"
pass "unchanged inventory skipped"

# The built-in native file module, and the v2 next route.
FILE_SO="$MOLT_BUILD_DIR/modules/native/file.so"
if [ -f "$FILE_SO" ]; then
    fleet_server_stop
    fleet_server_start --v2
    device_add_file_module "$DEV/native"
    sed -i "s|native_module_dir: .*|native_module_dir: $DEV/native|" "$DEV_CONF"
    device_config "modules:" "  file:" "    allowed_roots: [$DEV_DEST]"
    fleet_artifact r2
    mctl '{"deployment": {"id": "d2", "artifact_name": "r2", "file": "r2.mender", "device_types": ["dev-a"]}}'
    daemon_start
    wait_mq 'dd("d2")["finished"] is not None' 60
    daemon_stop
    assert_eq "downloading installing installing success" "$(mq '" ".join(dd("d2")["statuses"])')" "native: statuses"
    cmp -s "$DEV_DEST/blob.bin" "$T/src-r2/blob.bin" || fail "native: installed file differs"
    grep -q "native\|file.so" "$T/daemon.out.err" || fail "native: the native module was not used"
    assert_eq True "$(mq 'any(e["method"] == "POST" and e["status"] == 200 for e in api("/api/devices/v2/"))')" "v2 next used"
    assert_eq r2 "$(mq 'list(s["inventory"].values())[0].get("artifact_name")')" "native: inventory"
    pass "deployment through the native file module (v2 next)"
else
    echo "note: $FILE_SO not built: native module case skipped"
fi

# RSA and ECDSA device keys.
for kt in rsa3072 ecdsa-p256; do
    rm -f "$DEV_DATA/device-key.pem"
    sed -i "s/device_key_type: .*/device_key_type: $kt/" "$DEV_CONF"
    mctl '{"auto_accept": true}'
    n=$(mq 'len([e for e in api("auth_requests") if e["status"] == 200])')
    daemon_start
    wait_mq "len([e for e in api('auth_requests') if e['status'] == 200]) > $n" 30
    daemon_stop
    [ "$(stat -c %a "$DEV_DATA/device-key.pem")" = 600 ] || fail "$kt key mode"
    assert_eq True "$(mq 'all(e.get("signature") == "ok" for e in api("auth_requests"))')" "$kt signature"
    pass "$kt device key authenticates"
done
openssl pkey -in "$DEV_DATA/device-key.pem" -noout -text | grep -q 'prime256v1\|P-256' || fail "ECDSA key curve"

python3 "$MOLT_SRC_DIR/tests/server/openapi_check.py" "$MOLT_SRC_DIR/tests/server/openapi" \
    "$T/server.log" || fail "requests or answers differ from the OpenAPI documents"
pass "requests and answers match the OpenAPI documents"
