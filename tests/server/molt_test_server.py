#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""molt's loopback test server: HTTP(S) on 127.0.0.1, Python 3 standard library only.

It serves a folder of files (artifacts) with Range support and injects faults into
downloads; routes are registered on a small router so the Mender device API can be added
beside the file store. Tests start it with --port-file, read the port, and stop it with
SIGTERM (it exits 0).

Faults (command line, or at run time with PUT /_control/faults {"drop_after": N, ...}):
  --drop-after N    close the connection after N body bytes (first download only, or every
                    one with --drop-every)
  --die-after N     close the connection after N body bytes and exit the server (status 0)
  --stall           at the drop point, go silent with the connection open (until the client
                    gives up or the server stops) instead of closing it
  --no-range        ignore Range headers, always answer 200 with the whole file
  --no-validators   send no ETag and no Last-Modified
  --slow BPS        send bodies at about BPS bytes per second
  --status CODE     answer every file request with CODE
  --range-shift N   answer a Range request from N bytes after the asked start
  --client-ca FILE  require a client certificate signed by FILE (mutual TLS)
  --hold-after N    after N body bytes (first download only), log {"event": "held", ...} and
                    hold the connection open, sending nothing, until PUT /_control/release (a
                    handshake: a test acts while the client has exactly N bytes, then releases)

Every request is logged as one JSON line to --log (and to stderr with --verbose):
  {"method": "GET", "path": "/a.mender", "range": "bytes=1048576-8388607", "status": 206,
   "sent": 7340032, "dropped": false}
"""

import argparse
import email.utils
import http.server
import json
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse

CHUNK = 64 * 1024
MAX_REQUEST_BODY = 16 * 1024 * 1024


class Faults:
    """Fault settings shared by the handler threads."""

    FIELDS = {"drop_after": int, "drop_every": bool, "die_after": int, "no_range": bool,
              "no_validators": bool, "slow": int, "status": int, "range_shift": int,
              "stall": bool, "hold_after": int}

    def __init__(self, args):
        self.lock = threading.Lock()
        self.values = {name: getattr(args, name) for name in self.FIELDS}
        self.drops = 0

    def get(self):
        with self.lock:
            return dict(self.values)

    def update(self, changes):
        with self.lock:
            for name, value in changes.items():
                if name not in self.FIELDS:
                    raise ValueError("unknown fault '%s'" % name)
                if value is not None and not isinstance(value, self.FIELDS[name]):
                    raise ValueError("fault '%s' must be %s" % (name, self.FIELDS[name].__name__))
                self.values[name] = value
            self.drops = 0

    def drop_point(self):
        """The body byte count after which this response's connection is cut, or None."""
        with self.lock:
            v = self.values
            if v["die_after"] is not None:
                return v["die_after"]
            if v["drop_after"] is None:
                return None
            if self.drops > 0 and not v["drop_every"]:
                return None
            self.drops += 1
            return v["drop_after"]


class Router:
    """Maps (method, path regex) to handler functions handler(request, match)."""

    def __init__(self):
        self.routes = []

    def add(self, method, pattern, func):
        self.routes.append((method, re.compile(pattern + r"\Z"), func))

    def route(self, method, pattern):
        def register(func):
            self.add(method, pattern, func)
            return func
        return register

    def dispatch(self, request, method, path):
        allowed = False
        for route_method, regex, func in self.routes:
            match = regex.match(path)
            if not match:
                continue
            if route_method == method or (route_method == "GET" and method == "HEAD"):
                return func(request, match)
            allowed = True
        if allowed:
            return request.send_simple(405, "method not allowed\n")
        return request.send_simple(404, "not found: %s\n" % path)


class DroppedConnection(Exception):
    pass


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 10

    def version_string(self):
        return "molt-test-server"

    # --- plumbing -------------------------------------------------------------------------

    def setup(self):
        super().setup()
        if isinstance(self.connection, ssl.SSLSocket):
            # The handshake runs here, in the handler thread, so a client that fails it (a
            # wrong CA) costs nothing to the others.
            try:
                self.connection.do_handshake()
            except (ssl.SSLError, OSError) as e:
                self.server.log_event({"event": "tls-handshake-failed", "error": str(e)})
                self.close_connection = True
                self.handshake_failed = True
                return
        self.handshake_failed = False

    def handle(self):
        if getattr(self, "handshake_failed", False):
            return
        try:
            super().handle()
        except (ConnectionError, ssl.SSLError, socket.timeout, DroppedConnection):
            self.close_connection = True

    def log_message(self, fmt, *args):
        if self.server.verbose:
            sys.stderr.write("molt-test-server: " + (fmt % args) + "\n")

    def _dispatch(self):
        self.entry = {"method": self.command, "path": urllib.parse.urlsplit(self.path).path,
                      "range": self.headers.get("Range"), "status": None, "sent": 0,
                      "dropped": False}
        try:
            # Read the body up front, whatever the route does with it, so a keep-alive
            # connection stays in step after any answer.
            if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
                # Go's net/http (Mender's Go client) sends bodies chunked.
                self.body = self.read_chunked()
                if self.body is None:
                    self.close_connection = True
                    return self.send_simple(413, "request body too large\n")
            else:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_REQUEST_BODY:
                    self.close_connection = True
                    return self.send_simple(413, "request body too large\n")
                self.body = self.rfile.read(length) if length > 0 else b""
            path = urllib.parse.unquote(self.entry["path"])
            self.server.router.dispatch(self, self.command, path)
        finally:
            self.server.log_event(self.entry)

    do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = _dispatch

    def read_chunked(self):
        """A chunked request body (RFC 9112 §7.1), or None past MAX_REQUEST_BODY."""
        body = b""
        while True:
            size = int(self.rfile.readline(100).split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(1000) not in (b"\r\n", b"\n", b""):
                    pass   # trailer fields
                return body
            if len(body) + size > MAX_REQUEST_BODY:
                return None
            body += self.rfile.read(size)
            self.rfile.readline(10)

    def read_body(self):
        """The request body (bytes, read before the route ran)."""
        return self.body

    # --- answers --------------------------------------------------------------------------

    def begin(self, status, headers):
        self.entry["status"] = status
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()

    def send_simple(self, status, text, content_type="text/plain"):
        body = text.encode()
        self.begin(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        if self.command != "HEAD":
            self.wfile.write(body)
            self.entry["sent"] = len(body)

    def send_json(self, status, obj):
        self.send_simple(status, json.dumps(obj), "application/json")

    def drop_connection(self):
        """Cut the connection mid-body: no TLS close_notify, no HTTP ending."""
        self.entry["dropped"] = True
        if self.server.faults.get()["die_after"] is not None:
            # The process ends here, so the connection and the listening socket close together:
            # no retry can reach a server that is still shutting down.
            self.server.log_event(self.entry)
            self.server.close_log()
            os._exit(0)
        try:
            # For an SSLSocket this drops the TLS session without a close_notify.
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True
        raise DroppedConnection()

    def hold(self, sent):
        """The --hold-after handshake: say so in the log, wait for PUT /_control/release."""
        self.server.faults.update({"hold_after": None})
        self.server.log_event({"event": "held", "path": self.entry["path"], "sent": sent})
        while not self.server.release_event.wait(0.1):
            if self.server.stop_event.is_set():
                raise DroppedConnection()
        self.server.release_event.clear()

    def send_file_body(self, f, start, length, faults):
        drop_at = self.server.faults.drop_point()
        hold_at = faults["hold_after"]
        slow = faults["slow"]
        f.seek(start)
        sent = 0
        began = time.monotonic()
        while sent < length:
            n = min(CHUNK, length - sent)
            if slow:
                n = min(n, max(1, slow // 10))
            if drop_at is not None:
                n = min(n, drop_at - sent)
                if n <= 0:
                    self.entry["sent"] = sent
                    if faults["stall"]:
                        self.entry["stalled"] = True
                        self.server.stop_event.wait(60)
                    self.drop_connection()
            if hold_at is not None:
                n = min(n, hold_at - sent)
                if n <= 0:
                    self.hold(sent)
                    hold_at = None
                    continue
            data = f.read(n)
            if not data:
                break
            self.wfile.write(data)
            sent += len(data)
            self.entry["sent"] = sent
            if slow:
                ahead = sent / slow - (time.monotonic() - began)
                if ahead > 0:
                    time.sleep(ahead)


def parse_range(header, size):
    """(start, end) inclusive for a single 'bytes=' range, 'unsatisfiable', or None to ignore."""
    m = re.fullmatch(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*", header or "")
    if not m or (m.group(1) == "" and m.group(2) == ""):
        return None
    if m.group(1) == "":
        suffix = int(m.group(2))
        if suffix == 0:
            return "unsatisfiable"
        return (max(0, size - suffix), size - 1)
    start = int(m.group(1))
    end = int(m.group(2)) if m.group(2) else size - 1
    if start >= size:
        return "unsatisfiable"
    if end < start:
        return None
    return (start, min(end, size - 1))


def serve_file(request, match):
    """GET/HEAD a file of the --files store, with Range and the configured faults."""
    root = request.server.files_dir
    if root is None:
        return request.send_simple(404, "no file store\n")
    name = match.group("name")
    path = os.path.realpath(os.path.join(root, name))
    if not path.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(path):
        return request.send_simple(404, "not found: /%s\n" % name)
    faults = request.server.faults.get()
    if faults["status"]:
        return request.send_simple(faults["status"], "status set by --status\n")
    st = os.stat(path)
    size = st.st_size
    headers = [("Content-Type", "application/octet-stream"), ("Accept-Ranges", "bytes")]
    if faults["no_range"]:
        headers = headers[:1]
    if not faults["no_validators"]:
        headers.append(("ETag", '"%x-%x"' % (size, st.st_mtime_ns)))
        headers.append(("Last-Modified", email.utils.formatdate(st.st_mtime, usegmt=True)))
    rng = None if faults["no_range"] else parse_range(request.headers.get("Range"), size)
    if rng == "unsatisfiable":
        return request.begin(416, [("Content-Range", "bytes */%d" % size),
                                   ("Content-Length", "0")])
    if rng is None:
        status, start, length = 200, 0, size
    else:
        first = min(rng[0] + faults["range_shift"], rng[1])
        status, start, length = 206, first, rng[1] - first + 1
        headers.append(("Content-Range", "bytes %d-%d/%d" % (start, rng[1], size)))
    headers.append(("Content-Length", str(length)))
    request.begin(status, headers)
    if request.command == "HEAD":
        return
    with open(path, "rb") as f:
        request.send_file_body(f, start, length, faults)


def redirect(request, match):
    """/_redirect/<name> answers 302 to /<name> (as a CDN or presigning front end would)."""
    request.entry["location"] = "/" + match.group("name")
    request.begin(302, [("Location", "/" + match.group("name")), ("Content-Length", "0")])


def control_faults(request, match):
    """GET shows the faults; PUT changes some of them (JSON object)."""
    if request.command == "PUT":
        try:
            request.server.faults.update(json.loads(request.read_body() or b"{}"))
        except (ValueError, AttributeError) as e:
            return request.send_json(400, {"error": str(e)})
    return request.send_json(200, request.server.faults.get())


def control_release(request, match):
    """Let a connection held by --hold-after go on."""
    request.server.release_event.set()
    return request.send_json(200, {"released": True})


def control_log(request, match):
    """The request log so far, as a JSON array."""
    with request.server.log_lock:
        entries = list(request.server.events)
    return request.send_json(200, entries)


def make_router():
    router = Router()
    router.add("GET", r"/_control/faults", control_faults)
    router.add("PUT", r"/_control/faults", control_faults)
    router.add("GET", r"/_control/log", control_log)
    router.add("PUT", r"/_control/release", control_release)
    router.add("GET", r"/_redirect/(?P<name>.+)", redirect)
    router.add("GET", r"/(?P<name>[^?]+)", serve_file)
    return router


class Server(http.server.ThreadingHTTPServer):
    # server_close() waits for the handler threads, so the request log is complete when the
    # process exits; Handler.timeout bounds how long an idle keep-alive connection holds it.
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, args, router):
        super().__init__((args.bind, args.port), Handler)
        self.router = router
        self.files_dir = args.files
        self.faults = Faults(args)
        self.verbose = args.verbose
        self.log_lock = threading.Lock()
        self.events = []
        self.log_file = open(args.log, "a", buffering=1) if args.log else None
        self.stop_event = threading.Event()
        self.release_event = threading.Event()
        self.tls = bool(args.tls_cert)
        if args.tls_cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(args.tls_cert, args.tls_key)
            if args.client_ca:
                # Mutual TLS: a client without a certificate from this CA fails the handshake.
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(args.client_ca)
            self.socket = ctx.wrap_socket(self.socket, server_side=True,
                                          do_handshake_on_connect=False)

    def log_event(self, entry):
        line = json.dumps(entry, sort_keys=True)
        with self.log_lock:
            self.events.append(entry)
            if self.log_file:
                self.log_file.write(line + "\n")
        if self.verbose:
            sys.stderr.write("molt-test-server: " + line + "\n")

    def close_log(self):
        with self.log_lock:
            if self.log_file:
                self.log_file.close()
                self.log_file = None

    def handle_error(self, request, client_address):
        if self.verbose:
            super().handle_error(request, client_address)

    def stop_soon(self):
        self.stop_event.set()


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 = any free port (see --port-file)")
    p.add_argument("--port-file", help="write the port here once listening")
    p.add_argument("--tls-cert", help="server certificate (PEM); plain HTTP without it")
    p.add_argument("--tls-key", help="server key (PEM)")
    p.add_argument("--client-ca", help="require client certificates signed by this CA (PEM)")
    p.add_argument("--files", help="folder served at /<name>")
    p.add_argument("--log", help="append one JSON line per request to this file")
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--drop-after", type=int)
    p.add_argument("--drop-every", action="store_true")
    p.add_argument("--die-after", type=int)
    p.add_argument("--stall", action="store_true")
    p.add_argument("--hold-after", type=int)
    p.add_argument("--no-range", action="store_true")
    p.add_argument("--no-validators", action="store_true")
    p.add_argument("--slow", type=int, default=0)
    p.add_argument("--status", type=int, default=0)
    p.add_argument("--range-shift", type=int, default=0,
                   help="answer Range requests from N bytes later than asked (a broken server)")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    return args


def main(argv=None, router=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    server = Server(args, router or make_router())
    signal.signal(signal.SIGTERM, lambda *_: server.stop_soon())
    signal.signal(signal.SIGINT, lambda *_: server.stop_soon())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % server.server_address[1])
        os.rename(tmp, args.port_file)
    while not server.stop_event.wait(0.2):
        pass
    server.shutdown()
    thread.join()
    server.server_close()
    server.close_log()
    return 0


if __name__ == "__main__":
    sys.exit(main())
