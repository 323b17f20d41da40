# SPDX-License-Identifier: Apache-2.0
# TLS options of `molt daemon`: a server that requires a client certificate (mutual TLS) refuses
# the device without server.client_cert and accepts it with one; server.proxy sends the API
# calls and the artifact download through an HTTP CONNECT proxy (a small loopback proxy here that
# logs what it tunnels); the tenant token is sent in the auth request; Retry-After as an HTTP date.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/fleet.sh"

fleet_device
fleet_artifact r1

# A client certificate signed by its own CA.
mkdir -p "$T/client"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj "/CN=client CA" \
    -keyout "$T/client/ca.key" -out "$T/client/ca.crt" 2>/dev/null || fail "client CA"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=device" \
    -keyout "$T/client/dev.key" -out "$T/client/dev.csr" 2>/dev/null || fail "client csr"
openssl x509 -req -in "$T/client/dev.csr" -CA "$T/client/ca.crt" -CAkey "$T/client/ca.key" \
    -CAcreateserial -days 2 -out "$T/client/dev.crt" 2>/dev/null || fail "client cert"
chmod 600 "$T/client/dev.key"

fleet_server_start --auto-accept --client-ca "$T/client/ca.crt"
daemon_start
wait_for_line "$T/server.log" 'tls-handshake-failed'
daemon_stop
grep -q "tls-handshake-failed" "$T/server.log" || fail "mTLS: the server saw no failed handshake"
grep -q '"method"' "$T/server.log" && fail "mTLS: a request got through without a client certificate"
pass "mTLS: no client certificate, refused"

device_config "  client_cert: $T/client/dev.crt" "  client_key: $T/client/dev.key"
MCURL_OPTS="--cert $T/client/dev.crt --key $T/client/dev.key"
sed -i '/^  tenant_token:/d' "$DEV_CONF"
device_config "  tenant_token: tenant-XYZ"
daemon_start
wait_mq 'len(s["inventory"]) == 1' 20
daemon_stop
assert_eq tenant-XYZ "$(mq 'list(s["devices"].values())[0]["tenant_token"]')" "tenant token sent"
pass "mTLS: with server.client_cert, authenticated (tenant token sent)"

# A CONNECT proxy on loopback. The artifact store of a real server (S3) asks for no client
# certificate, and molt presents none there: the server runs without --client-ca from here.
fleet_server_stop
fleet_server_start --auto-accept
MCURL_OPTS=
python3 -c '
import select, socket, sys, threading
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 0)); srv.listen(16)
open(sys.argv[1], "w").write(str(srv.getsockname()[1]))
log = open(sys.argv[2], "a", buffering=1)
def pipe(a, b):
    try:
        while True:
            r, _, _ = select.select([a, b], [], [], 30)
            if not r: return
            for s in r:
                data = s.recv(65536)
                if not data: return
                (b if s is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close(); b.close()
def handle(c):
    req = b""
    while b"\r\n\r\n" not in req:
        d = c.recv(4096)
        if not d: return c.close()
        req += d
    line = req.split(b"\r\n")[0].decode()
    log.write(line + "\n")
    method, target, _ = line.split(" ", 2)
    if method != "CONNECT" or not target.startswith("127.0.0.1:"):
        c.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n"); return c.close()
    host, port = target.rsplit(":", 1)
    up = socket.create_connection((host, int(port)))
    c.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
    pipe(c, up)
srv.settimeout(int(sys.argv[3]))   # a guard: the test kills the proxy at its end
while True:
    try:
        c, _ = srv.accept()
    except socket.timeout:
        break
    threading.Thread(target=handle, args=(c,), daemon=True).start()
' "$T/proxy.port" "$T/proxy.log" "$MOLT_TEST_GUARD" &
PROXY_PID=$!
trap 'kill $PROXY_PID 2>/dev/null || true; fleet_cleanup' EXIT
wait_for_line "$T/proxy.port" '^[0-9]+$'
device_config "  proxy: http://127.0.0.1:$(cat "$T/proxy.port")"
mctl "{\"deployment\": {\"id\": \"d1\", \"artifact_name\": \"r1\", \"file\": \"r1.mender\", \"device_types\": [\"dev-a\"]},
       \"rules\": [{\"method\": \"GET\", \"path\": \"deployments/next\$\", \"status\": 503,
                   \"retry_after_in\": 8}]}"
daemon_start
wait_mq 'dd()["finished"] is not None' 60
daemon_stop
assert_eq "downloading installing installing success" "$(dd_statuses)" "proxy: statuses"
cmp -s "$DEV_DEST/blob.bin" "$T/src-r1/blob.bin" || fail "proxy: installed file differs"
grep -q "^CONNECT 127.0.0.1:$PORT " "$T/proxy.log" || fail "proxy: no CONNECT seen: $(cat "$T/proxy.log")"
[ "$(grep -c CONNECT "$T/proxy.log")" -ge 2 ] || fail "proxy: the download did not use the proxy"
pass "server.proxy: API calls and the download tunnelled"
assert_eq True "$(mq '(lambda t: min(e["time"] for e in api("/v1/deployments/device/deployments/next") if e["time"] > t) - t)(max(e["time"] for e in api("deployments/next") if e["status"] == 503)) >= 3')" \
    "Retry-After as an HTTP date"
pass "Retry-After as an HTTP date honoured"
