# SPDX-License-Identifier: Apache-2.0
# `molt install https://...` from the loopback test server (tests/server/molt_test_server.py)
# with a throw-away test CA (tests/server/make_test_ca.sh) configured as http.ca_file:
#  - plain download: installed and committed, the file on the device is bit-identical;
#  - the connection dropped mid-file: resumed with a Range request (206 in the server's log),
#    result bit-identical;
#  - a server that ignores Range, dropped mid-file: downloaded again from the start (200) and
#    the already-parsed bytes skipped, result bit-identical;
#  - a server certificate from another CA: refused before the module runs, nothing changed.
# The module is Mender's community single-file module behind a wrapper that logs every call.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

SERVER="$MOLT_SRC_DIR/tests/server/molt_test_server.py"
MAKE_CA="$MOLT_SRC_DIR/tests/server/make_test_ca.sh"
[ -f "$SERVER" ] || fail "test server missing: $SERVER"
[ -f "$MAKE_CA" ] || fail "test CA script missing: $MAKE_CA"

bash "$MAKE_CA" "$T/ca" "molt url test" || fail "make_test_ca.sh"
bash "$MAKE_CA" "$T/ca-other" "molt other" || fail "make_test_ca.sh (other CA)"

device_new dev dev-a
LOG="$T/calls.log"
device_add_logged_module single-file /usr/share/mender/modules/v3/single-file "$LOG"
device_config "http:" "  ca_file: $T/ca/ca.crt" "  retry_download_count: 5" "  retry_max_interval: 1" \
    "  connect_timeout: 10" "  low_speed_time: 10"

# A payload big enough to be cut in the middle (random: gzip cannot shrink it).
mkdir -p "$T/src" "$T/www"
head -c $((3 * 1024 * 1024 + 12345)) /dev/urandom >"$T/src/blob.bin"
printf '%s' "$DEV_DEST" >"$T/src/dest_dir"
printf 'blob.bin' >"$T/src/filename"
want_sha=$(sha256sum <"$T/src/blob.bin" | cut -d' ' -f1)
for n in 1 2 3 4; do
    make_artifact "$T/www/r$n.mender" "url-$n" single-file -f "$T/src/blob.bin" \
        -f "$T/src/dest_dir" -f "$T/src/filename"
done
size=$(stat -c %s "$T/www/r1.mender")

# The server: TLS with the test CA's certificate, port chosen by the kernel.
SERVER_PID=
stop_server() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
        SERVER_PID=
    fi
}
trap 'stop_server; rm -rf "$T"' EXIT
python3 "$SERVER" --port-file "$T/port" --tls-cert "$T/ca/server.crt" --tls-key "$T/ca/server.key" \
    --files "$T/www" --log "$T/server.log" 2>"$T/server.err" &
SERVER_PID=$!
end=$(guard_deadline)
while [ "$SECONDS" -lt "$end" ]; do
    [ -s "$T/port" ] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$T/server.err" >&2; fail "the test server died"; }
    sleep 0.05
done
[ -s "$T/port" ] || fail "the test server did not write its port"
URL="https://127.0.0.1:$(cat "$T/port")"

faults() {  # JSON
    curl -sf --cacert "$T/ca/ca.crt" -X PUT -H 'Content-Type: application/json' -d "$1" \
        "$URL/_control/faults" >/dev/null || fail "setting server faults $1"
}

# The server's log lines for one file, as "status range" lines.
requests_for() {  # NAME
    python3 - "$T/server.log" "/$1" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    e = json.loads(line)
    if e.get("path") == sys.argv[2]:
        print(e.get("status"), e.get("range") or "-")
PY
}

install_url() {  # NAME ARTIFACT_NAME
    : >"$LOG"
    molt_dev install "$URL/$1"
    expect_rc 0 "install $URL/$1"
    molt_dev commit
    expect_rc 0 "commit $2"
    assert_eq "$want_sha" "$(sha256sum <"$DEV_DEST/blob.bin" | cut -d' ' -f1)" "$1: installed file (sha256)"
    assert_eq "$2" "$(dev_artifact)" "$1: artifact name"
    rm -f "$DEV_DEST/blob.bin"
}

# 1. Plain.
install_url r1.mender url-1
assert_eq "200 -" "$(requests_for r1.mender)" "r1: one plain GET"
pass "plain HTTPS install, bit-identical"

# 2. Dropped mid-file: resumed with Range.
cut_at=$((size / 2))
faults "{\"drop_after\": $cut_at}"
install_url r2.mender url-2
requests_for r2.mender >"$T/r2.req"
assert_eq "200 -" "$(head -n 1 "$T/r2.req")" "r2: first request"
grep -qE "^206 bytes=[0-9]+-$((size - 1))\$" "$T/r2.req" ||
    fail "r2: no resumed Range request answered 206: $(tr '\n' ';' <"$T/r2.req")"
start=$(grep -m1 '^206' "$T/r2.req" | sed -E 's/^206 bytes=([0-9]+)-.*/\1/')
[ "$start" -gt 0 ] && [ "$start" -le "$cut_at" ] ||
    fail "r2: resumed at byte $start, expected within (0, $cut_at]"
pass "connection dropped at byte $cut_at of $size: resumed at $start with Range, bit-identical"

# 3. No Range support, dropped mid-file: downloaded again, the consumed bytes skipped.
faults "{\"drop_after\": $cut_at, \"no_range\": true}"
install_url r3.mender url-3
requests_for r3.mender >"$T/r3.req"
assert_eq 2 "$(grep -c '^200' "$T/r3.req")" "r3: two full GETs (the server ignores Range): $(tr '\n' ';' <"$T/r3.req")"
! grep -q '^206' "$T/r3.req" || fail "r3: a 206 from a server without Range support"
pass "server without Range support: restarted from the start, bit-identical"
faults '{"drop_after": null, "no_range": false}'

# 4. A certificate from another CA: refused before any module call, nothing changed.
snap() { { ls -A "$DEV_DEST"; dev_provides; dev_artifact; } >"$1"; }
snap "$T/before"
sed -i "s|ca_file: $T/ca/ca.crt|ca_file: $T/ca-other/ca.crt|" "$DEV_CONF"
: >"$LOG"
molt_dev install "$URL/r4.mender"
expect_rc 1 "install with the wrong CA"
grep -qiE 'certificate|tls|ssl|verif' "$RUN_ERR" "$RUN_OUT" ||
    fail "wrong CA: the message does not say why: $(head -c 600 "$RUN_ERR")"
[ ! -s "$LOG" ] || fail "wrong CA: the module ran: $(tr '\n' ' ' <"$LOG")"
snap "$T/after"
diff "$T/before" "$T/after" >&2 || fail "wrong CA: the device changed"
assert_eq idle "$(dev_state)" "wrong CA: state afterwards"
pass "server certificate from another CA refused before any module call"

# 5. A presigned URL's query carries credentials: installed, but the secret is in no log line,
#    no store, no deployment log and no message.
sed -i "s|ca_file: $T/ca-other/ca.crt|ca_file: $T/ca/ca.crt|" "$DEV_CONF"
secret="X-Amz-Signature=c0ffee5ecret"
no_secret() {  # WHAT: fail if the secret is in the data dir or the last command's output
    if grep -rq "c0ffee5ecret" "$DEV_DATA" "$RUN_OUT" "$RUN_ERR"; then
        fail "$1: the presigned URL's secret leaked: $(grep -rl c0ffee5ecret "$DEV_DATA" "$RUN_OUT" "$RUN_ERR")"
    fi
}
molt_dev install "$URL/r1.mender?$secret&X-Amz-Expires=900"
expect_rc 0 "install from a presigned URL"
no_secret install
molt_dev status --json
no_secret status
molt_dev commit
expect_rc 0 "commit of the presigned-URL install"
no_secret commit
pass "presigned URL: installed, its query redacted everywhere"
