#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Run one shell command in the VM through its control shell (molt-image --control-shell: a
shell per TCP connection on the guest's port 7777, forwarded from the host's loopback by QEMU's
hostfwd). Python 3 standard library only.

    vmctl.py PORT TIMEOUT COMMAND     prints the command's output, exits with its status
                                      (255: no answer within TIMEOUT seconds)

The command is sent as `{ COMMAND\n} 2>&1; echo <tag>rc=$?`, then the sending side is closed, so
the guest's shell exits after it. A connection that closes without any answer (the guest is not
listening yet: QEMU's user network accepts, then drops it) is retried until TIMEOUT."""
import re
import socket
import sys
import time

TAG = b"__vmctl__rc="


def main():
    port, timeout, command = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    deadline = time.monotonic() + timeout
    while True:
        buf = b""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
                sock.sendall(('{ %s\n} 2>&1; echo "__vmctl__""rc=$?"\n' % command).encode())
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(1)
                while time.monotonic() < deadline:
                    try:
                        data = sock.recv(65536)
                    except socket.timeout:
                        continue
                    if not data:
                        break
                    buf += data
        except OSError:
            pass
        m = re.search(re.escape(TAG) + rb"(\d+)", buf)
        if m:
            sys.stdout.write(buf[:m.start()].decode(errors="replace"))
            return int(m.group(1))
        if buf:
            sys.stdout.write(buf.decode(errors="replace"))
            print("vmctl: the connection closed before the command finished: %s" % command,
                  file=sys.stderr)
            return 255
        if time.monotonic() >= deadline:
            print("vmctl: no answer within %g s to: %s" % (timeout, command), file=sys.stderr)
            return 255
        time.sleep(0.3)


if __name__ == "__main__":
    sys.exit(main())
