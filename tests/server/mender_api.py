#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The Mender device API (docs/reference §3) on molt's loopback test server, Python stdlib only.

Run it like molt_test_server.py (same options: --port-file, --tls-cert, --files, --log ...)
plus:
  --auto-accept       accept every device at its first authentication request
  --v2                serve POST /api/devices/v2/.../next (the open-source server has no v2
                      route, so by default it answers 404 and the client falls back to v1)
  --state FILE        keep the server's state (devices, deployments, statuses, logs,
                      inventory) in FILE, so a test can stop and restart the server

Device API: POST auth_requests (the X-MEN-Signature is verified with `openssl`: Ed25519 with
`pkeyutl -verify -rawin`, RSA and ECDSA with `dgst -sha256 -verify`; unknown devices become
pending), v2 POST, v1 POST (Go client) and v1 GET deployments/next, PUT status (409 once the deployment is
aborted), PUT log, PUT/PATCH inventory attributes. Artifacts are served at presigned URLs
/_artifacts/<file>?expire=<unix time>: an expired URL is 403, a request with an
Authorization header is 400 (as S3 answers a presigned URL with a second credential).

Control (JSON, no authentication: loopback tests only):
  GET  /_control/mender          the whole state
  PUT  /_control/mender          {"accept": true} accept every known device;
                                 {"deployment": {"id", "artifact_name", "file",
                                   "device_types": [...], "expire_in": seconds,
                                   "announce_device_types": [...]}} add one (the last key,
                                   optional: what device_types_compatible says instead of
                                   device_types, as a faulty server would);
                                 {"abort": "<deployment id>"}; {"revoke_tokens": true};
                                 {"rules": [...]} fault rules (replacing the old ones)
A fault rule: {"method": "PUT", "path": "<regex on the path>", "body_contains": "...",
  "after": N (skip the first N matches), "count": N (then stop; default 1, -1 = always),
  and what to do: "status": CODE (with "retry_after": "2", or "retry_after_in": SECONDS for an
  HTTP date that many seconds after the answer), "drop": true (close the
  connection without an answer, as a server going down), "abort": true (abort the
  deployment, then answer normally), "revoke": true (revoke every token, then answer
  normally: a 401), "hold": true (log {"event": "held", "path": ...} and keep the request
  waiting until PUT /_control/release, then answer normally: a handshake, so a test acts while
  the device is inside that request)}.

Every API request is logged with "api": true, the request and response bodies (parsed JSON
where they are JSON), whether an Authorization header was sent, and "injected" when a rule
answered, so a test can check both sides against the OpenAPI documents (openapi_check.py).
"""

import argparse
import base64
import email.utils
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import molt_test_server as base  # noqa: E402

STATUSES = {"installing", "pause_before_installing", "downloading", "pause_before_rebooting",
            "rebooting", "pause_before_committing", "success", "failure", "already-installed"}
FINAL = {"success", "failure", "already-installed"}


class MenderState:
    def __init__(self, args):
        self.lock = threading.RLock()
        self.auto_accept = args.auto_accept
        self.v2 = args.v2
        self.path = args.state
        self.data = {"devices": {}, "tokens": {}, "deployments": [], "device_deployments": {},
                     "inventory": {}, "logs": {}}
        self.rules = []
        if self.path and os.path.exists(self.path):
            with open(self.path) as f:
                self.data = json.load(f)

    def save(self):
        if not self.path:
            return
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.data, f, sort_keys=True)
        os.replace(tmp, self.path)

    def dd(self, device_id, dep_id):
        """The per-device record of a deployment."""
        key = device_id + "/" + dep_id
        return self.data["device_deployments"].setdefault(
            key, {"statuses": [], "aborted": False, "finished": None})


def verify_signature(pubkey_pem, body, sig_b64):
    """True when sig_b64 is a valid signature of body by pubkey_pem (checked by openssl)."""
    try:
        sig = base64.b64decode(sig_b64, validate=True)
    except (ValueError, TypeError):
        return False
    with tempfile.TemporaryDirectory() as tmp:
        pub, data, sigf = (os.path.join(tmp, n) for n in ("pub.pem", "body", "sig"))
        with open(pub, "w") as f:
            f.write(pubkey_pem)
        with open(data, "wb") as f:
            f.write(body)
        with open(sigf, "wb") as f:
            f.write(sig)
        text = subprocess.run(["openssl", "pkey", "-pubin", "-in", pub, "-noout", "-text"],
                              capture_output=True, text=True)
        if text.returncode != 0:
            return False
        if text.stdout.startswith("ED25519"):
            cmd = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
                   "-in", data, "-sigfile", sigf]
        else:
            cmd = ["openssl", "dgst", "-sha256", "-verify", pub, "-signature", sigf, data]
        return subprocess.run(cmd, capture_output=True).returncode == 0


def parse_json(raw):
    try:
        return json.loads(raw.decode())
    except (ValueError, UnicodeDecodeError):
        return None


def answer(request, status, obj=None, text=None, content_type="application/json", headers=()):
    """Send an answer and record its body in the log entry."""
    if obj is not None:
        body = json.dumps(obj).encode()
        request.entry["response_body"] = obj
    else:
        body = (text or "").encode()
        if text:
            request.entry["response_body"] = text
    hdrs = [("Content-Type", content_type), ("Content-Length", str(len(body)))] + list(headers)
    request.begin(status, hdrs)
    if request.command != "HEAD":
        request.wfile.write(body)
        request.entry["sent"] = len(body)


def error(request, status, message):
    rid = secrets.token_hex(8)
    return answer(request, status, {"error": message, "request_id": rid},
                  headers=[("X-MEN-RequestID", rid)])


def apply_rules(request, st):
    """Run the fault rules; True when a rule answered (or dropped) the request."""
    body = request.read_body() or b""
    hold = False
    with st.lock:
        for rule in st.rules:
            if rule.get("method") and rule["method"] != request.command:
                continue
            if rule.get("path") and not re.search(rule["path"], request.entry["path"]):
                continue
            if rule.get("body_contains") and rule["body_contains"].encode() not in body:
                continue
            rule["seen"] = rule.get("seen", 0) + 1
            if rule["seen"] <= rule.get("after", 0):
                continue
            count = rule.get("count", 1)
            if count >= 0 and rule.get("used", 0) >= count:
                continue
            rule["used"] = rule.get("used", 0) + 1
            request.entry["injected"] = {k: v for k, v in rule.items()
                                         if k not in ("seen", "used")}
            if rule.get("abort"):
                # Abort every deployment still running on a device.
                for key, dd in st.data["device_deployments"].items():
                    if not dd["finished"] and not dd["aborted"]:
                        dd["aborted"] = True
                        for dep in st.data["deployments"]:
                            if key.endswith("/" + dep["id"]):
                                dep["aborted"] = True
                st.save()
            if rule.get("revoke"):
                st.data["tokens"] = {}
                st.save()
            if rule.get("hold"):
                hold = True
                break
            if rule.get("drop"):
                request.entry["status"] = 0
                request.drop_connection()
            if rule.get("status"):
                headers = []
                if rule.get("retry_after") is not None:
                    headers.append(("Retry-After", str(rule["retry_after"])))
                elif rule.get("retry_after_in") is not None:
                    # An HTTP date this many seconds after the answer, computed as it is sent:
                    # a date fixed by the test beforehand would pass on a slow machine.
                    headers.append(("Retry-After", email.utils.formatdate(
                        time.time() + float(rule["retry_after_in"]), usegmt=True)))
                answer(request, rule["status"], {"error": "injected by a test rule"},
                       headers=headers)
                return True
            return False
    if hold:
        # Outside the lock: the control route (and other devices) must go on meanwhile.
        request.hold(0)
    return False


def authorized_device(request, st):
    """The device id of the request's token, or None after answering 401."""
    auth = request.headers.get("Authorization", "")
    request.entry["authorization"] = bool(auth)
    token = auth[7:] if auth.startswith("Bearer ") else None
    with st.lock:
        device = st.data["tokens"].get(token) if token else None
    if device is None:
        error(request, 401, "unauthorized: missing or invalid token")
    return device


def api(func):
    """Mark an API route: log bodies, run the fault rules first."""
    def wrapper(request, match):
        st = request.server.router.mender
        request.entry["api"] = True
        request.entry["time"] = round(time.time(), 3)
        raw = request.read_body()
        request.entry["request_length"] = len(raw or b"")
        if raw:
            parsed = parse_json(raw)
            request.entry["request_body"] = parsed if parsed is not None else raw.decode(
                "utf-8", "replace")
        request.entry["authorization"] = bool(request.headers.get("Authorization"))
        request.entry["query"] = urllib.parse.urlsplit(request.path).query
        if apply_rules(request, st):
            return
        return func(request, match, st)
    return wrapper


@api
def auth_requests(request, match, st):
    raw = request.read_body()
    req = parse_json(raw)
    if not isinstance(req, dict) or not isinstance(req.get("id_data"), str) or \
            not isinstance(req.get("pubkey"), str):
        return error(request, 400, "id_data and pubkey (strings) are required")
    if "tenant_token" in req and not isinstance(req["tenant_token"], str):
        return error(request, 400, "tenant_token must be a string")
    try:
        json.loads(req["id_data"])
    except ValueError:
        return error(request, 400, "id_data is not a JSON document")
    sig = request.headers.get("X-MEN-Signature")
    if not sig:
        return error(request, 400, "missing X-MEN-Signature")
    if not verify_signature(req["pubkey"], raw, sig):
        request.entry["signature"] = "bad"
        return error(request, 401, "signature verification failed")
    request.entry["signature"] = "ok"
    device_id = hashlib.sha256(req["id_data"].encode()).hexdigest()[:24]
    with st.lock:
        dev = st.data["devices"].get(device_id)
        if dev is None or dev["pubkey"] != req["pubkey"]:
            dev = {"id": device_id, "id_data": req["id_data"], "pubkey": req["pubkey"],
                   "status": "accepted" if st.auto_accept else "pending",
                   "tenant_token": req.get("tenant_token"), "auth_requests": 0}
            st.data["devices"][device_id] = dev
        dev["auth_requests"] += 1
        if dev["status"] != "accepted":
            st.save()
            return error(request, 401, "device %s is %s" % (device_id, dev["status"]))
        token = "molt-test-jwt." + secrets.token_urlsafe(24)
        st.data["tokens"][token] = device_id
        st.save()
    return answer(request, 200, text=token, content_type="application/jwt")


def next_for(request, st, device_id, artifact_name, device_type):
    """The next deployment of a device, as deployments/next answers it."""
    with st.lock:
        for dep in st.data["deployments"]:
            dd = st.dd(device_id, dep["id"])
            if dd["finished"] or dd["aborted"] or dep.get("aborted"):
                continue
            if device_type not in dep["device_types"]:
                continue
            if dep["artifact_name"] == artifact_name:
                # app_os.go: the server marks it itself and answers 204.
                dd["statuses"].append("already-installed")
                dd["finished"] = "already-installed"
                st.save()
                continue
            expire = int(time.time()) + int(dep.get("expire_in", 3600))
            host = request.headers.get("Host", "127.0.0.1")
            scheme = "https" if request.server.tls else "http"
            uri = "%s://%s/_artifacts/%s?expire=%d&sig=%s" % (
                scheme, host, urllib.parse.quote(dep["file"]), expire, secrets.token_hex(8))
            dd["offered"] = dd.get("offered", 0) + 1
            st.save()
            return answer(request, 200, {
                "id": dep["id"],
                "artifact": {"id": dep.get("artifact_id", dep["id"] + "-artifact"),
                             "artifact_name": dep["artifact_name"],
                             "source": {"uri": uri,
                                        "expire": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                time.gmtime(expire))},
                             "device_types_compatible": dep.get("announce_device_types",
                                                                dep["device_types"])}})
    request.entry["status"] = 204
    request.begin(204, [("Content-Length", "0")])


@api
def next_v2(request, match, st):
    if not st.v2:
        return error(request, 404, "not found")
    device = authorized_device(request, st)
    if device is None:
        return
    req = parse_json(request.read_body())
    prov = req.get("device_provides") if isinstance(req, dict) else None
    if not isinstance(prov, dict) or not isinstance(prov.get("artifact_name"), str) or \
            not isinstance(prov.get("device_type"), str):
        return error(request, 400, "device_provides with artifact_name and device_type required")
    return next_for(request, st, device, prov["artifact_name"], prov["device_type"])


@api
def next_v1(request, match, st):
    device = authorized_device(request, st)
    if device is None:
        return
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
    name, dtype = q.get("artifact_name", [""])[0], q.get("device_type", [""])[0]
    if not (1 <= len(name) <= 4096) or not (1 <= len(dtype) <= 4096):
        return error(request, 400, "artifact_name and device_type are required")
    return next_for(request, st, device, name, dtype)


@api
def next_v1_post(request, match, st):
    """v1 POST (Mender's Go client tries it between v2 and v1 GET; the open-source server
    takes it): a flat object with artifact_name and device_type."""
    device = authorized_device(request, st)
    if device is None:
        return
    req = parse_json(request.read_body())
    if not isinstance(req, dict) or not isinstance(req.get("artifact_name"), str) or \
            not isinstance(req.get("device_type"), str):
        return error(request, 400, "artifact_name and device_type are required")
    return next_for(request, st, device, req["artifact_name"], req["device_type"])


@api
def put_status(request, match, st):
    device = authorized_device(request, st)
    if device is None:
        return
    dep_id = match.group("id")
    req = parse_json(request.read_body())
    if not isinstance(req, dict) or req.get("status") not in STATUSES:
        return error(request, 400, "status must be one of %s" % sorted(STATUSES))
    with st.lock:
        dep = next((d for d in st.data["deployments"] if d["id"] == dep_id), None)
        if dep is None:
            return error(request, 404, "deployment %s not found" % dep_id)
        dd = st.dd(device, dep_id)
        if dd["aborted"] or dep.get("aborted"):
            dd["rejected"] = dd.get("rejected", []) + [req["status"]]
            st.save()
            return answer(request, 409, {"error": "deployment aborted"})
        dd["statuses"].append(req["status"])
        if req["status"] in FINAL:
            dd["finished"] = req["status"]
        st.save()
    request.begin(204, [("Content-Length", "0")])


@api
def put_log(request, match, st):
    device = authorized_device(request, st)
    if device is None:
        return
    req = parse_json(request.read_body())
    msgs = req.get("messages") if isinstance(req, dict) else None
    if not isinstance(msgs, list) or not all(
            isinstance(m, dict) and all(isinstance(m.get(k), str)
                                        for k in ("timestamp", "level", "message"))
            for m in msgs):
        return error(request, 400, "messages: a list of {timestamp, level, message}")
    with st.lock:
        if not any(d["id"] == match.group("id") for d in st.data["deployments"]):
            return error(request, 404, "deployment not found")
        st.data["logs"][device + "/" + match.group("id")] = msgs
        st.save()
    request.begin(204, [("Content-Length", "0")])


@api
def inventory(request, match, st):
    device = authorized_device(request, st)
    if device is None:
        return
    req = parse_json(request.read_body())
    ok = isinstance(req, list) and all(
        isinstance(a, dict) and isinstance(a.get("name"), str) and
        (isinstance(a.get("value"), str) or
         (isinstance(a.get("value"), list) and all(isinstance(v, str) for v in a["value"])))
        for a in req)
    if not ok:
        return error(request, 400, "a list of {name, value} attributes")
    with st.lock:
        attrs = {} if request.command == "PUT" else st.data["inventory"].get(device, {})
        for a in req:
            attrs[a["name"]] = a["value"]
        st.data["inventory"][device] = attrs
        st.data.setdefault("inventory_puts", {})
        st.data["inventory_puts"][device] = st.data["inventory_puts"].get(device, 0) + 1
        st.save()
    answer(request, 200, text="")


def artifact(request, match):
    """A presigned download: expiry checked, no Authorization header allowed."""
    st = request.server.router.mender
    request.entry["authorization"] = bool(request.headers.get("Authorization"))
    request.entry["time"] = round(time.time(), 3)
    if apply_rules(request, st):
        return
    q = urllib.parse.parse_qs(urllib.parse.urlsplit(request.path).query)
    try:
        expire = int(q.get("expire", ["0"])[0])
    except ValueError:
        expire = 0
    if expire < time.time():
        request.entry["expired"] = True
        return request.send_simple(403, "Request has expired\n")
    if request.headers.get("Authorization"):
        return request.send_simple(400, "Only one auth mechanism allowed\n")
    return base.serve_file(request, match)


def control(request, match):
    st = request.server.router.mender
    if request.command == "PUT":
        req = parse_json(request.read_body() or b"{}")
        if not isinstance(req, dict):
            return request.send_json(400, {"error": "a JSON object"})
        with st.lock:
            if req.get("accept"):
                for dev in st.data["devices"].values():
                    dev["status"] = "accepted"
            if "auto_accept" in req:
                st.auto_accept = bool(req["auto_accept"])
            if "deployment" in req:
                dep = dict(req["deployment"])
                dep.setdefault("expire_in", 3600)
                st.data["deployments"].append(dep)
            if "abort" in req:
                for dep in st.data["deployments"]:
                    if dep["id"] == req["abort"]:
                        dep["aborted"] = True
            if req.get("revoke_tokens"):
                st.data["tokens"] = {}
            if "rules" in req:
                st.rules = list(req["rules"])
            st.save()
    with st.lock:
        return request.send_json(200, dict(st.data, rules=st.rules, auto_accept=st.auto_accept))


def add_routes(router, state):
    """Put the device API in front of the file store's catch-all route."""
    router.mender = state
    routes = [
        ("POST", r"/api/devices/v1/authentication/auth_requests", auth_requests),
        ("POST", r"/api/devices/v2/deployments/device/deployments/next", next_v2),
        ("GET", r"/api/devices/v1/deployments/device/deployments/next", next_v1),
        ("POST", r"/api/devices/v1/deployments/device/deployments/next", next_v1_post),
        ("PUT", r"/api/devices/v1/deployments/device/deployments/(?P<id>[^/]+)/status",
         put_status),
        ("PUT", r"/api/devices/v1/deployments/device/deployments/(?P<id>[^/]+)/log", put_log),
        ("PUT", r"/api/devices/v1/inventory/device/attributes", inventory),
        ("PATCH", r"/api/devices/v1/inventory/device/attributes", inventory),
        ("GET", r"/_control/mender", control),
        ("PUT", r"/_control/mender", control),
        ("GET", r"/_artifacts/(?P<name>.+)", artifact),
    ]
    for method, pattern, func in reversed(routes):
        router.add(method, pattern, func)
        router.routes.insert(0, router.routes.pop())


def main():
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--auto-accept", action="store_true")
    p.add_argument("--v2", action="store_true")
    p.add_argument("--state")
    args, rest = p.parse_known_args()
    router = base.make_router()
    add_routes(router, MenderState(args))
    return base.main(rest, router)


if __name__ == "__main__":
    sys.exit(main())
