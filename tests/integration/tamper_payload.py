#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Replace one payload file of an uncompressed Mender artifact (mender-artifact --compression
none), keeping version, manifest, manifest.sig and header verbatim: the signature still
verifies, and only the payload file's checksum gives the tampering away, at its last byte.

    tamper_payload.py IN OUT NAME NEWFILE [MARK_ENTRY MARK_INTO]
    tamper_payload.py --declare SIZE IN OUT NAME NEWFILE

Prints the artifact byte offset at which MARK_INTO bytes of the entry MARK_ENTRY of the new
payload file (itself a tar) have been sent: the place where a test holds the stream
(molt_test_server.py --hold-after).

With --declare, the payload file's tar header declares SIZE bytes but only NEWFILE follows, and
the payload tar ends there (a stream that claims more than it carries)."""

import io
import sys
import tarfile


def main():
    declare = None
    if sys.argv[1] == "--declare":
        declare = int(sys.argv[2])
        del sys.argv[1:3]
    src, out, name, newfile = sys.argv[1:5]
    mark_entry = sys.argv[5] if len(sys.argv) > 5 else None
    mark_into = int(sys.argv[6]) if len(sys.argv) > 6 else 0
    new = open(newfile, "rb").read()
    with tarfile.open(src, "r:") as outer_in, tarfile.open(out, "w:", format=tarfile.GNU_FORMAT) as outer:
        for member in outer_in.getmembers():
            data = outer_in.extractfile(member).read()
            if member.name == "data/0000.tar":
                inner_buf = io.BytesIO()
                with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as inner_in, \
                        tarfile.open(fileobj=inner_buf, mode="w:", format=tarfile.GNU_FORMAT) as inner:
                    for e in inner_in.getmembers():
                        body = inner_in.extractfile(e).read()
                        if e.name == name and declare is not None:
                            e.size = declare
                            inner.fileobj.write(e.tobuf(tarfile.GNU_FORMAT) + new)
                            inner.closed = True   # no padding, no end of archive
                            break
                        if e.name == name:
                            body = new
                            e.size = len(new)
                        inner.addfile(e, io.BytesIO(body))
                data = inner_buf.getvalue()
                member.size = len(data)
            elif member.name.startswith("data/"):
                sys.exit("tamper_payload.py: %s is compressed; write it with --compression none" %
                         member.name)
            outer.addfile(member, io.BytesIO(data))
    if not mark_entry:
        return
    # The offset: data/0000.tar's data + the payload file's data + the entry's data + MARK_INTO.
    with tarfile.open(out, "r:") as t:
        m = t.getmember("data/0000.tar")
        inner = tarfile.open(fileobj=io.BytesIO(t.extractfile(m).read()), mode="r:")
        p = inner.getmember(name)
        payload = tarfile.open(fileobj=io.BytesIO(new), mode="r:")
        e = payload.getmember(mark_entry)
        print(m.offset_data + p.offset_data + e.offset_data + mark_into)


if __name__ == "__main__":
    main()
