# SPDX-License-Identifier: Apache-2.0
# ctest-labels: slow
# `molt daemon` against faults of the test server's Mender device API (one daemon, one
# deployment per case, the faults set by rules before the deployment is offered):
#  - the connection dropped during the download: resumed with Range (206), file bit-identical;
#  - the server gone while the final status is reported (connection closed twice, then 503):
#    retried, reported later;
#  - 409 on the installing status (aborted during the download): Cleanup, nothing installed;
#  - 409 on the pre-commit installing status (aborted during the install): rolled back, the old
#    file is back;
#  - 401 in the middle of a deployment: authenticated again, the request replayed, success;
#  - 429 with Retry-After on deployments/next: the next poll waits that long;
#  - an expired download URL: failure reported and the deployment log uploaded;
#  - a server certificate from another CA: refused before any request reaches the server.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/fleet.sh"

fleet_device
for n in 1 2 3 4 5 6; do fleet_artifact r$n 700000; done
fleet_server_start --auto-accept
daemon_start
wait_mq 'len(s["inventory"]) == 1' 20

deploy() {  # ID ARTIFACT [EXPIRE_IN]
    mctl "{\"deployment\": {\"id\": \"$1\", \"artifact_name\": \"$2\", \"file\": \"$2.mender\", \"device_types\": [\"dev-a\"], \"expire_in\": ${3:-3600}}}"
}
statuses() {  # ID
    mq "' '.join(dd('$1')['statuses'])"
}
rejected() {  # ID
    mq "' '.join(dd('$1').get('rejected', []))"
}

# Connection dropped during the download.
curl -sS --fail --cacert "$T/ca/ca.crt" -X PUT --data '{"drop_after": 300000}' "$URL/_control/faults" >/dev/null
deploy d1 r1
wait_mq 'dd("d1")["finished"] is not None' 60
assert_eq "downloading installing installing success" "$(statuses d1)" "drop: statuses"
cmp -s "$DEV_DEST/blob.bin" "$T/src-r1/blob.bin" || fail "drop: installed file differs"
assert_eq True "$(mq 'any(e.get("dropped") for e in api("/_artifacts/")) and any(e["status"] == 206 for e in api("/_artifacts/"))')" \
    "drop: the download was cut and resumed with a Range request"
pass "download dropped mid-file: resumed, bit-identical"

# The server goes away while the final status is reported.
mctl '{"rules": [{"method": "PUT", "path": "/status$", "body_contains": "success", "drop": true, "count": 2},
                 {"method": "PUT", "path": "/status$", "body_contains": "success", "status": 503, "count": 1}]}'
deploy d2 r2
wait_mq 'dd("d2")["finished"] is not None' 60
assert_eq "downloading installing installing success" "$(statuses d2)" "server down: statuses"
assert_eq 4 "$(mq 'len([e for e in api("/d2/status") if e.get("request_body") == {"status": "success"}])')" \
    "server down: success status sent 4 times (2 dropped, 1 503, then accepted)"
cmp -s "$DEV_DEST/blob.bin" "$T/src-r2/blob.bin" || fail "server down: installed file differs"
pass "server down while reporting: retried, reported later"

# 409 while downloading: the deployment is aborted when the artifact is fetched.
mctl '{"rules": [{"method": "GET", "path": "^/_artifacts/r3", "abort": true}]}'
deploy d3 r3
wait_mq '"failure" in dd("d3").get("rejected", [])' 60
assert_eq "downloading" "$(statuses d3)" "409 download: accepted statuses"
assert_eq "installing failure" "$(rejected d3)" "409 download: rejected statuses"
cmp -s "$DEV_DEST/blob.bin" "$T/src-r2/blob.bin" || fail "409 download: the old file must stay"
assert_eq r2 "$(dev_artifact)" "409 download: artifact name"
grep -q "calling module single-file ArtifactInstall" <(sed -n '/deployment d3/,$p' "$T/daemon.out.err") &&
    fail "409 download: ArtifactInstall must not run"
pass "409 during the download: aborted before ArtifactInstall"

# 409 before the commit: the deployment is aborted while it installs.
mctl '{"rules": [{"method": "PUT", "path": "/d4/status$", "body_contains": "installing", "after": 1, "abort": true}]}'
deploy d4 r4
wait_mq '"failure" in dd("d4").get("rejected", [])' 60
assert_eq "downloading installing" "$(statuses d4)" "409 install: accepted statuses"
assert_eq "installing failure" "$(rejected d4)" "409 install: rejected statuses"
cmp -s "$DEV_DEST/blob.bin" "$T/src-r2/blob.bin" || fail "409 install: not rolled back to the old file"
assert_eq r2 "$(dev_artifact)" "409 install: artifact name"
sed -n '/deployment d4/,$p' "$T/daemon.out.err" | grep -q "calling module single-file ArtifactRollback" ||
    fail "409 install: no ArtifactRollback"
pass "409 during the install: rolled back"

# 401 in the middle: every token revoked at the first installing status.
n=$(mq 'len([e for e in api("auth_requests") if e["status"] == 200])')
mctl '{"rules": [{"method": "PUT", "path": "/d5/status$", "body_contains": "installing", "revoke": true}]}'
deploy d5 r5
wait_mq 'dd("d5")["finished"] is not None' 60
assert_eq "downloading installing installing success" "$(statuses d5)" "401: statuses"
assert_eq True "$(mq "len([e for e in api('auth_requests') if e['status'] == 200]) > $n")" "401: authenticated again"
assert_eq True "$(mq 'any(e["status"] == 401 for e in api("/d5/status"))')" "401: the server did answer 401"
cmp -s "$DEV_DEST/blob.bin" "$T/src-r5/blob.bin" || fail "401: installed file differs"
pass "401 mid-deployment: re-authenticated and replayed"

# A server that answers 401 even to the fresh token: one authentication and one replay per
# call, then the call fails and backs off (no loop).
n=$(mq 'len(api("auth_requests"))')
m=$(mq 'len(api("/v1/deployments/device/deployments/next"))')
mctl '{"rules": [{"method": "GET", "path": "deployments/next$", "revoke": true, "count": 2}]}'
# A regular poll may slip in between counting and installing the rule: the sequence that counts
# starts at the first 401.
from_401="(lambda s: s[s.index(401):] if 401 in s else [])([e['status'] for e in api('/v1/deployments/device/deployments/next')[$m:]])"
wait_mq "len($from_401) >= 3" 20
assert_eq "401 401 204" "$(mq "' '.join(str(x) for x in $from_401[:3])")" \
    "401 twice: the call replayed once, then a later poll"
assert_eq True "$(mq "len(api('auth_requests')) - $n <= 3")" "401 twice: authentications bounded"
grep -q "still 401 after authenticating again" "$T/daemon.out.err" || fail "401 twice: no error for the call"
pass "401 to a fresh token: replayed once, then given up"

# 429 with Retry-After on deployments/next.
mctl '{"rules": [{"method": "GET", "path": "deployments/next$", "status": 429, "retry_after": "3"}]}'
wait_mq 'any(e.get("status") == 429 for e in api("deployments/next"))' 20
wait_mq 'any(e.get("status") == 204 and e["time"] > max(x["time"] for x in api("deployments/next") if x["status"] == 429) for e in api("deployments/next"))' 20
assert_eq True "$(mq 'min(e["time"] for e in api("deployments/next") if e["time"] > max(x["time"] for x in api("deployments/next") if x["status"] == 429)) - max(x["time"] for x in api("deployments/next") if x["status"] == 429) >= 2.8')" \
    "429: the next poll waited Retry-After"
pass "429 Retry-After honoured"

# An expired download URL: failure, and the log reaches the server.
mctl '{"rules": []}'
deploy d6 r6 -10
wait_mq 'dd("d6")["finished"] is not None' 60
assert_eq "downloading failure" "$(statuses d6)" "expired: statuses"
wait_mq 'any(k.endswith("/d6") for k in s["logs"])' 20
assert_eq True "$(mq 'any("403" in m["message"] for k, v in s["logs"].items() if k.endswith("/d6") for m in v)')" \
    "expired: the uploaded log names the 403"
assert_eq r5 "$(dev_artifact)" "expired: artifact name"
pass "expired download URL: failure reported with the log"
daemon_stop
python3 "$MOLT_SRC_DIR/tests/server/openapi_check.py" "$MOLT_SRC_DIR/tests/server/openapi" \
    "$T/server.log" >/dev/null || fail "requests or answers differ from the OpenAPI documents"
pass "requests and answers under faults match the OpenAPI documents"

# A server certificate from another CA: refused, nothing reached the server.
bash "$MAKE_CA" "$T/ca-other" "molt other" >/dev/null || fail "make_test_ca.sh (other)"
fleet_server_stop
: >"$T/server.log"
SERVER_CERT="$T/ca-other/server.crt" SERVER_KEY="$T/ca-other/server.key" fleet_server_start --auto-accept
daemon_start
# Two refused handshakes: the daemon tried, and tried again after its retry interval.
end=$(guard_deadline)
until [ "$(grep -c tls-handshake-failed "$T/server.log" 2>/dev/null)" -ge 2 ]; do
    [ "$SECONDS" -lt "$end" ] && kill -0 "$MOLT_BG_PID" 2>/dev/null ||
        fail "wrong certificate: the server saw no second handshake: $(tail -n 20 "$T/daemon.out.err")"
    sleep 0.05
done
daemon_stop
grep -q "tls-handshake-failed" "$T/server.log" || fail "wrong certificate: no failed handshake seen by the server"
grep -q '"method"' "$T/server.log" && fail "wrong certificate: a request got through: $(grep '"method"' "$T/server.log" | head -3)"
grep -qiE "certificate|SSL|TLS" "$T/daemon.out.err" || fail "wrong certificate: the daemon does not say why"
cmp -s "$DEV_DEST/blob.bin" "$T/src-r5/blob.bin" || fail "wrong certificate: the device changed"
pass "wrong server certificate: refused before any request"

