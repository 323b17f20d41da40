# SPDX-License-Identifier: Apache-2.0
# ctest-labels: root
# The test server's device API against Mender's own Go client (mender 3.4, `mender daemon`), so
# that what molt is tested against behaves as a Mender server does for a real client: the Go
# client authenticates (pending until accepted; its RSA signature verified by openssl), takes the
# deployment through v2 -> v1 POST, downloads from the presigned URL, installs with the
# single-file module, reports success (Go 3.4 reports "downloading" in each of its three download
# states), sends its inventory (chunked bodies); its requests and the server's answers pass the
# OpenAPI check. The Go client runs in a private mount namespace (device.sh) with its
# own /etc/mender and /usr/share/mender (identity script, modules).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/fleet.sh"

command -v mender >/dev/null || fail "Mender's Go client (mender) is not installed"
fleet_server_start
go_device_new go dev-a
mkdir -p "$GO_SB/data/identity" "$GO_SB/data/inventory" "$GO_SB/data/modules/v3" "$GO_SB/dest"
printf '#!/bin/sh\necho mac=02:00:00:00:00:01\n' >"$GO_SB/data/identity/mender-device-identity"
printf '#!/bin/sh\necho go_inventory=yes\n' >"$GO_SB/data/inventory/mender-inventory-test"
chmod 755 "$GO_SB/data/identity/mender-device-identity" "$GO_SB/data/inventory/mender-inventory-test"
cp /usr/share/mender/modules/v3/single-file "$GO_SB/data/modules/v3/"
cat >"$GO_CONF" <<JSON
{"ServerURL": "$URL", "ServerCertificate": "$T/ca/ca.crt", "UpdatePollIntervalSeconds": 1,
 "InventoryPollIntervalSeconds": 2, "RetryPollIntervalSeconds": 1}
JSON
DEV_TYPE=dev-a
mkdir -p "$T/src"
head -c 300000 /dev/urandom >"$T/src/blob.bin"
printf '%s' "$GO_SB/dest" >"$T/src/dest_dir"
printf 'blob.bin' >"$T/src/filename"
make_artifact "$T/www/g1.mender" g1 single-file -f "$T/src/blob.bin" -f "$T/src/dest_dir" -f "$T/src/filename"

GO_PID=
stop_go() {
    [ -z "$GO_PID" ] || { kill -9 -- "-$GO_PID" 2>/dev/null || true; kill -9 "$GO_PID" 2>/dev/null || true; wait "$GO_PID" 2>/dev/null || true; }
    GO_PID=
}
trap 'stop_go; fleet_cleanup' EXIT
env MENDER_CONF_DIR="$GO_SB/conf" MENDER_DATA_DIR="$GO_SB/data" MENDER_DATASTORE_DIR="$GO_STORE" \
    GO_SB="$GO_SB" setsid unshare -m sh -c '
        mount --bind "$GO_SB/etc-mender" /etc/mender && mount --bind "$GO_SB/data" /usr/share/mender || exit 3
        exec mender --no-syslog -c "$0" -d "$1" daemon' "$GO_CONF" "$GO_STORE" >"$T/go.out" 2>&1 &
GO_PID=$!

wait_mq 'any(d["status"] == "pending" for d in s["devices"].values())' 30
assert_eq True "$(mq 'all(e.get("signature") == "ok" for e in api("auth_requests"))')" "Go client's signatures"
mctl '{"accept": true}'
wait_mq 'len(s["inventory"]) == 1' 30
mctl '{"deployment": {"id": "d1", "artifact_name": "g1", "file": "g1.mender", "device_types": ["dev-a"]}}'
wait_mq 'dd()["finished"] is not None' 60
stop_go
assert_eq success "$(mq 'dd()["finished"]')" "Go client: final status"
assert_match "^(downloading )+installing .*success$" "$(dd_statuses)" "Go client: status order"
cmp -s "$GO_SB/dest/blob.bin" "$T/src/blob.bin" || fail "Go client: installed file differs"
assert_eq True "$(mq 'all(not e["authorization"] for e in api("/_artifacts/"))')" "Go client: download without a token"
assert_eq yes "$(mq 'list(s["inventory"].values())[0].get("go_inventory")')" "Go client: inventory"
python3 "$MOLT_SRC_DIR/tests/server/openapi_check.py" "$MOLT_SRC_DIR/tests/server/openapi" \
    "$T/server.log" >/dev/null || fail "Go client: requests or answers differ from the OpenAPI documents"
pass "Mender's Go client completes a deployment against the test server ($(dd_statuses))"
