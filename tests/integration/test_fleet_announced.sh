# SPDX-License-Identifier: Apache-2.0
# `molt daemon` installs what the server announced, and never an older release (issue 12,
# part 2), with signed artifacts (ECDSA P-256, artifact_verify_keys set) and the downgrade policy
# on (downgrade: policy refuse, key app.version, scheme semver):
#  - a deployment announcing rel-3 whose download is a correctly signed rel-1: refused after the
#    header is read, before any module call; the deployment ends "failure", the log the server
#    gets names both artifacts; nothing installed, the store and the provides unchanged;
#  - a deployment of an older signed release (app.version 0.9.0 after 2.0.0): refused the same
#    way, the log naming both versions and the scheme; the server cannot override the policy
#    (a daemon has no --allow-downgrade);
#  - a deployment whose device_types_compatible does not list the device (the test server's
#    announce_device_types) is refused the same way;
#  - a newer release still installs (the policy lets upgrades through).
# The module is Mender's single-file behind a logging wrapper, so "no module call" is seen.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/fleet.sh"

openssl ecparam -name prime256v1 -genkey -noout -out "$T/sign.key" 2>/dev/null || fail "openssl ecparam"
openssl pkey -in "$T/sign.key" -pubout -out "$T/sign.pub" 2>/dev/null || fail "openssl pkey"

fleet_device
CALLS="$T/calls.log"
: >"$CALLS"
device_add_logged_module single-file /usr/share/mender/modules/v3/single-file "$CALLS"
device_config "artifact_verify_keys: [$T/sign.pub]" \
    "downgrade:" "  policy: refuse" "  key: app.version" "  scheme: semver"

# NAME VERSION: the signed single-file artifact $T/www/NAME.mender providing app.version VERSION.
signed_artifact() {
    mkdir -p "$T/src-$1"
    head -c 100000 /dev/urandom >"$T/src-$1/blob.bin"
    printf '%s' "$DEV_DEST" >"$T/src-$1/dest_dir"
    printf 'blob.bin' >"$T/src-$1/filename"
    make_artifact "$T/www/$1.mender" "$1" single-file -f "$T/src-$1/blob.bin" \
        -f "$T/src-$1/dest_dir" -f "$T/src-$1/filename" --provides "app.version:$2" \
        -k "$T/sign.key"
}
signed_artifact rel-1 1.0.0
signed_artifact rel-2 2.0.0
signed_artifact rel-3 3.0.0
signed_artifact rel-0 0.9.0

deploy() {  # ID ANNOUNCED_NAME FILE_NAME
    mctl "{\"deployment\": {\"id\": \"$1\", \"artifact_name\": \"$2\", \"file\": \"$3.mender\", \"device_types\": [\"dev-a\"]}}"
}
log_of() {  # ID: the messages of the deployment log the server got, one a line
    mq "'\\n'.join(m['message'] for k, v in s['logs'].items() if k.endswith('/$1') for m in v)"
}
snapshot() {  # FILE: what must not change: the store minus the last result, provides, file
    {
        dev_store_json | python3 -c 'import json, sys
d = json.load(sys.stdin)
for k in ("last_error", "last_deployment"): d.pop(k, None)
print(json.dumps(d, sort_keys=True))'
        dev_provides
        sha256sum <"$DEV_DEST/blob.bin"
    } >"$1"
}

fleet_server_start --auto-accept
daemon_start
wait_mq 'len(s["inventory"]) == 1' 20

# The base release.
deploy d1 rel-2 rel-2
wait_mq 'dd("d1")["finished"] is not None' 60
assert_eq "downloading installing installing success" "$(dd_statuses)" "rel-2: statuses"
cmp -s "$DEV_DEST/blob.bin" "$T/src-rel-2/blob.bin" || fail "rel-2: installed file differs"
assert_eq rel-2 "$(dev_artifact)" "rel-2: artifact name"
grep -q "^ArtifactInstall$" "$CALLS" || fail "rel-2: the logging module saw no ArtifactInstall"
pass "signed rel-2 installed by the daemon"

# Announced rel-3, served a correctly signed rel-1.
snapshot "$T/before.txt"
: >"$CALLS"
deploy d2 rel-3 rel-1
wait_mq 'dd("d2")["finished"] is not None' 60
assert_eq "downloading failure" "$(mq "' '.join(dd('d2')['statuses'])")" "mismatch: statuses"
wait_mq 'any(k.endswith("/d2") for k in s["logs"])' 20
assert_match "announced artifact 'rel-3', but the downloaded artifact is 'rel-1'" "$(log_of d2)" \
    "mismatch: the uploaded log says why"
[ -s "$CALLS" ] && fail "mismatch: the module was called: $(tr '\n' ' ' <"$CALLS")"
snapshot "$T/after.txt"
diff "$T/before.txt" "$T/after.txt" >&2 || fail "mismatch: the device changed"
pass "announced rel-3, served signed rel-1: refused before any module ran, failure with the reason"

# A deployment whose device_types_compatible does not list this device (a faulty server offering
# it anyway): refused before any module ran.
: >"$CALLS"
mctl '{"deployment": {"id": "d5", "artifact_name": "rel-3", "file": "rel-3.mender", "device_types": ["dev-a"], "announce_device_types": ["dev-b", "dev-c"]}}'
wait_mq 'dd("d5")["finished"] is not None' 60
assert_eq "downloading failure" "$(mq "' '.join(dd('d5')['statuses'])")" "device types: statuses"
wait_mq 'any(k.endswith("/d5") for k in s["logs"])' 20
assert_match "the deployment is for device types \[\"dev-b\",\"dev-c\"\], this device is 'dev-a': refused" \
    "$(log_of d5)" "device types: the uploaded log says why"
[ -s "$CALLS" ] && fail "device types: the module was called: $(tr '\n' ' ' <"$CALLS")"
snapshot "$T/after.txt"
diff "$T/before.txt" "$T/after.txt" >&2 || fail "device types: the device changed"
pass "a deployment announced for other device types: refused before any module ran"

# An older signed release, announced under its own name: the downgrade policy refuses it.
: >"$CALLS"
deploy d3 rel-0 rel-0
wait_mq 'dd("d3")["finished"] is not None' 60
assert_eq "downloading failure" "$(mq "' '.join(dd('d3')['statuses'])")" "downgrade: statuses"
wait_mq 'any(k.endswith("/d3") for k in s["logs"])' 20
assert_match "downgrade refused: artifact 'rel-0' has app.version '0.9.0', older than the device's '2.0.0' \(semver scheme\)" \
    "$(log_of d3)" "downgrade: the uploaded log names both versions and the scheme"
[ -s "$CALLS" ] && fail "downgrade: the module was called: $(tr '\n' ' ' <"$CALLS")"
snapshot "$T/after.txt"
diff "$T/before.txt" "$T/after.txt" >&2 || fail "downgrade: the device changed"
pass "older signed release refused by the daemon before any module ran"

# A newer release goes through.
deploy d4 rel-3 rel-3
wait_mq 'dd("d4")["finished"] is not None' 60
assert_eq "downloading installing installing success" "$(mq "' '.join(dd('d4')['statuses'])")" "rel-3: statuses"
cmp -s "$DEV_DEST/blob.bin" "$T/src-rel-3/blob.bin" || fail "rel-3: installed file differs"
assert_match "app.version=3.0.0" "$(dev_provides)" "rel-3: provides"
pass "newer release installed under the policy"
daemon_stop
