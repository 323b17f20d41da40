#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Generate the corpus of bad Mender artifacts from good ones (python3 standard library only).

Usage: make_bad_artifacts.py IN_DIR OUT_DIR

IN_DIR holds artifacts written by mender-artifact:
  good.mender        module-image, gzip, unsigned, two payload files (payload.bin, file2.txt),
                     one state script and meta-data
  signed-rsa.mender  the same, signed with an RSA key
  signed-ec.mender   the same, signed with an ECDSA P-256 key
  augmented.mender   an augmented artifact (--augment-type/--augment-file), RSA-signed
  good-xz.mender     like good.mender, xz-compressed (mender-artifact --compression lzma)
  good-zstd.mender   like good.mender, zstd-compressed (written by molt-artifact: mender-artifact
                     3.9 has no zstd; the generator only flips bytes in it, python has no zstd)
OUT_DIR receives one <case>.mender per case and cases.tsv, lines of
  <case> TAB <expect> TAB <key>
where <expect> names the check the case must hit (the test maps it to the error text) and <key>
is "-" or the signing key type ("rsa", "ec") whose public key `validate -k` must be given.
Two control cases (expect "ok") are rebuilt without a change and must be accepted: they prove
that the rebuilding itself is sound, so every refusal comes from the one change a case makes.

Each case changes one thing and rebuilds the manifest (checksums) where needed, so that the
intended check fires and not an earlier one. Big cases (the decompression bomb) are generated
streaming and never held in memory.
"""
import base64
import gzip
import hashlib
import io
import lzma
import os
import sys
import tarfile
import zlib

VERSION3 = b'{"format":"mender","version":3}'
BLOCK = 512


# ---------------------------------------------------------------------------------------------
# Tar building blocks: we write tar bytes ourselves so that order, duplicates, odd names and
# entry types are exactly what each case needs.

def tar_header(name, size, type_=tarfile.REGTYPE, linkname="", mode=0o644, devmajor=0,
               devminor=0):
    ti = tarfile.TarInfo(name)
    ti.type = type_
    ti.size = size
    ti.linkname = linkname
    ti.mode = mode
    ti.mtime = 0
    ti.uname = ti.gname = "root"
    ti.devmajor, ti.devminor = devmajor, devminor
    return ti.tobuf(format=tarfile.USTAR_FORMAT, encoding="utf-8", errors="strict")


def pad(n):
    return b"\0" * (-n % BLOCK)


def member(name, data=b"", **kw):
    return tar_header(name, len(data), **kw) + data + pad(len(data))


def tar(members):
    """members: list of (name, bytes) or raw member bytes; ends with two zero blocks."""
    out = []
    for m in members:
        out.append(m if isinstance(m, bytes) else member(m[0], m[1]))
    out.append(b"\0" * (2 * BLOCK))
    return b"".join(out)


SUFFIX = {"none": "", "gzip": ".gz", "xz": ".xz"}


def compress(data, comp):
    if comp == "none":
        return data
    if comp == "gzip":
        return gzip.compress(data, mtime=0)
    if comp == "xz":
        return lzma.compress(data, format=lzma.FORMAT_XZ)
    raise ValueError(comp)


def decompress(data, name):
    if name.endswith(".gz"):
        return gzip.decompress(data)
    if name.endswith(".xz"):
        return lzma.decompress(data)
    return data


def sha(data):
    return hashlib.sha256(data).hexdigest()


def untar(data):
    """List of (name, bytes) of a tar, in order (regular files only in the good artifacts)."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
        return [(m.name, t.extractfile(m).read() if m.isfile() else b"") for m in t]


# ---------------------------------------------------------------------------------------------
# An artifact as data: what mender-artifact wrote, taken apart so that cases can rebuild it.

class Artifact:
    def __init__(self, path):
        with open(path, "rb") as f:
            self.raw = f.read()
        self.outer = untar(self.raw)
        names = [n for n, _ in self.outer]
        self.header_name = next(n for n in names if n.startswith("header.tar"))
        self.data_name = next(n for n in names if n.startswith("data/"))
        if self.header_name.endswith(".zst"):  # no zstd in python: raw bytes only
            self.header = self.data = None
        else:
            self.header = untar(decompress(self.get(self.header_name), self.header_name))
            self.data = untar(decompress(self.get(self.data_name), self.data_name))

    def get(self, name):
        return next(d for n, d in self.outer if n == name)

    def offsets(self):
        """(name, header_offset, data_offset, size) of each outer member, from the raw bytes."""
        with tarfile.open(fileobj=io.BytesIO(self.raw), mode="r:") as t:
            return [(m.name, m.offset, m.offset_data, m.size) for m in t]


def build(header, data, comp="gzip", version=VERSION3, manifest=None, manifest_extra=b"",
          sig=None):
    """The outer members (list of [name, bytes]) of an artifact with a correct manifest.
    header/data: lists of (name, bytes) or raw member bytes. manifest: bytes to use instead of
    the computed one. manifest_extra: lines appended to the computed manifest."""
    header_name = "header.tar" + SUFFIX[comp]
    header_bytes = compress(tar(header), comp)
    data_bytes = compress(tar(data), comp)
    if manifest is None:
        lines = ["%s  data/0000/%s\n" % (sha(d), n) for n, d in data_entries(data)]
        lines.append("%s  %s\n" % (sha(header_bytes), header_name))
        lines.append("%s  version\n" % sha(version))
        manifest = "".join(lines).encode() + manifest_extra
    parts = [["version", version], ["manifest", manifest]]
    if sig is not None:
        parts.append(["manifest.sig", sig])
    parts += [[header_name, header_bytes], ["data/0000.tar" + SUFFIX[comp], data_bytes]]
    return parts


def data_entries(data):
    """The (name, content) pairs the manifest must list for a data member list; raw member bytes
    (special entries) are listed with the checksum of their (empty) content."""
    out = []
    for m in data:
        if isinstance(m, bytes):
            out.append((m[:100].split(b"\0")[0].decode().rstrip("/"), b""))
        else:
            out.append(m)
    return out


def flip(data, offset):
    b = bytearray(data)
    b[offset] ^= 0x01
    return bytes(b)


def flip_hex(text, offset):
    """Change one hex digit into another hex digit (stays a well-formed manifest line)."""
    b = bytearray(text)
    b[offset] = ord("0") if b[offset] != ord("0") else ord("1")
    return bytes(b)


# ---------------------------------------------------------------------------------------------

class Corpus:
    def __init__(self, out_dir):
        self.out_dir = out_dir
        self.table = []

    def add(self, name, expect, content, key="-"):
        """content: bytes of the whole file, or a list of outer parts ([name, bytes] / raw)."""
        if isinstance(content, list):
            content = tar([tuple(p) if isinstance(p, list) else p for p in content])
        with open(os.path.join(self.out_dir, name + ".mender"), "wb") as f:
            f.write(content)
        self.table.append((name, expect, key))

    def write_table(self):
        with open(os.path.join(self.out_dir, "cases.tsv"), "w") as f:
            for row in self.table:
                f.write("\t".join(row) + "\n")


def truncations(c, art, prefix="trunc"):
    """Cut an artifact at many offsets: inside every member's tar header and content, and
    exactly at every member boundary (where the reader sees a clean end and must notice what is
    missing: the expect key names the last complete member). The end-of-archive blocks are left
    out: cutting there loses nothing."""
    offs = art.offsets()
    cuts = {0: "empty"}
    for i, (name, hdr, dat, size) in enumerate(offs):
        if hdr > 0:
            cuts[hdr] = "trunc-after-" + offs[i - 1][0].replace("/", "-").replace(".", "-")
        for o in (hdr + 1, hdr + 100, hdr + BLOCK - 1, dat + 1, dat + size // 2,
                  dat + size - 1):
            if hdr < o < dat + size:
                # Inside the very first tar header nothing says this was ever a tar.
                cuts.setdefault(o, "not-tar" if o < BLOCK else "truncated")
        if size % BLOCK:
            cuts.setdefault(dat + size, "truncated")  # content complete, padding missing
    end = offs[-1][2] + offs[-1][3]
    for o in sorted(cuts):
        if o <= end:
            c.add("%s-%07d" % (prefix, o), cuts[o], art.raw[:o])


def main():
    in_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    c = Corpus(out_dir)
    good = Artifact(os.path.join(in_dir, "good.mender"))
    rsa = Artifact(os.path.join(in_dir, "signed-rsa.mender"))
    ec = Artifact(os.path.join(in_dir, "signed-ec.mender"))
    H, D = good.header, good.data
    hinfo = dict(H)["header-info"]

    def header_with(name, content):
        return [(n, content if n == name else d) for n, d in H]

    # Controls: the generator's own rebuild of the good artifact is accepted.
    c.add("control-gzip", "ok", build(H, D, "gzip"))
    c.add("control-none", "ok", build(H, D, "none"))

    truncations(c, good)
    truncations(c, rsa, "trunc-signed")

    # One byte flipped. In an uncompressed artifact a flip inside a JSON string still parses, so
    # the checksum is what catches it; in a compressed one the decompressor may catch it first,
    # and the message must still name the member.
    none_parts = build(H, D, "none")
    none_raw = tar([tuple(p) for p in none_parts])
    hoff = none_raw.index(b'"artifact_name":"art-1"') + len(b'"artifact_name":"ar')
    c.add("flip-header-none", "checksum-header", flip(none_raw, hoff))
    poff = none_raw.index(dict(D)["payload.bin"][:64]) + 1000
    c.add("flip-data-none", "checksum-payload", flip(none_raw, poff))
    for name, hdr, dat, size in good.offsets():
        if name.startswith("header.tar"):
            c.add("flip-header-gz", "bad-header-gz", flip(good.raw, dat + size // 2))
            c.add("flip-header-gz-crc", "bad-header-gz", flip(good.raw, dat + size - 6))
        if name.startswith("data/"):
            c.add("flip-data-gz", "bad-data-gz", flip(good.raw, dat + size // 2))
        if name == "manifest":
            text = good.get("manifest")
            lines = text.split(b"\n")
            at = {l.split(b"  ")[1]: sum(len(x) + 1 for x in lines[:i])
                  for i, l in enumerate(lines) if l}
            c.add("flip-manifest-payload", "checksum-payload",
                  good.raw[:dat] + flip_hex(text, at[b"data/0000/payload.bin"] + 10)
                  + good.raw[dat + size:])
            c.add("flip-manifest-header", "checksum-header-gz",
                  good.raw[:dat] + flip_hex(text, at[b"header.tar.gz"] + 10)
                  + good.raw[dat + size:])
            c.add("flip-manifest-version", "checksum-version",
                  good.raw[:dat] + flip_hex(text, at[b"version"] + 10) + good.raw[dat + size:])
            def with_manifest(m):
                return [[n, m if n == "manifest" else d] for n, d in good.outer]
            c.add("manifest-bad-line", "manifest-format",
                  with_manifest(text.replace(b"  version", b" version")))
            i = next(i for i in range(64) if text[i:i + 1] in b"abcdef")
            c.add("manifest-upper-case-hex", "manifest-hex",
                  with_manifest(text[:i] + text[i:i + 1].upper() + text[i + 1:]))
            c.add("manifest-no-final-newline", "manifest-newline", with_manifest(text[:-1]))
    # The other decompressors: a flipped byte in the middle of an xz (mender-artifact) and a
    # zstd (molt-artifact) header and data member.
    for comp in ("xz", "zstd"):
        other = Artifact(os.path.join(in_dir, "good-%s.mender" % comp))
        for name, hdr, dat, size in other.offsets():
            if name.startswith(("header.tar", "data/")):
                c.add("flip-%s-%s" % (name.split(".")[0].replace("/0000", ""), comp),
                      "bad-%s-%s" % (name.split(".")[0].replace("/0000", ""), comp),
                      flip(other.raw, dat + size // 2))
    for kind, art in (("rsa", rsa), ("ec", ec)):
        for name, hdr, dat, size in art.offsets():
            if name == "manifest":
                c.add("flip-manifest-signed-" + kind, "signature", flip_hex(art.raw, dat + 5),
                      kind)
            if name == "manifest.sig":
                s = bytearray(art.raw)
                s[dat + 10] = ord("A") if s[dat + 10] != ord("A") else ord("B")
                c.add("flip-signature-" + kind, "signature", bytes(s), kind)
                c.add("bad-base64-signature-" + kind, "signature-base64",
                      art.raw[:dat] + b"!!!!" + art.raw[dat + 4:], kind)
        # Without a key: with one, the missing signature before the header is what refuses it.
        c.add("wrong-member-order-sig-after-header-" + kind, "unexpected-member",
              [p for p in art.outer if p[0] != "manifest.sig"][:3] + [art.outer[2]]
              + [p for p in art.outer if p[0].startswith("data/")])
    c.add("unsigned-with-key", "unsigned", good.raw, "rsa")
    big_sig = build(H, D, sig=base64.b64encode(os.urandom(6000)))
    c.add("oversized-signature", "limit-signature", big_sig, "rsa")

    # Wrong member order, and members that are unlisted, missing or duplicated.
    p = build(H, D)
    c.add("wrong-member-order-manifest-first", "order", [p[1], p[0], p[2], p[3]])
    c.add("wrong-member-order-header-first", "order", [p[0], p[2], p[1], p[3]])
    c.add("data-before-header", "order", [p[0], p[1], p[3], p[2]])
    c.add("unlisted-outer-member", "unexpected-member", p[:2] + [["extra", b"x"]] + p[2:])
    c.add("unlisted-outer-member-after-data", "unexpected-member", p + [["extra", b"x"]])
    c.add("missing-version", "missing-version", p[1:])
    c.add("missing-manifest", "missing-manifest", [p[0]] + p[2:])
    c.add("missing-header", "missing-header", p[:2] + p[3:])
    c.add("missing-data", "missing-payload", p[:3])
    c.add("duplicate-version", "order", [p[0]] + p)
    c.add("duplicate-manifest", "order", p[:2] + [p[1]] + p[2:])
    c.add("duplicate-header", "order", p[:3] + [p[2]] + p[3:])
    c.add("duplicate-data", "unexpected-member", p + [p[3]])
    c.add("unlisted-payload-file", "unlisted-payload",
          build(H, D, manifest=p[1][1])[:1] + [p[1]]
          + build(H, D + [("extra.bin", b"extra")])[2:])
    c.add("missing-payload-file", "missing-payload", build(H, D[:1], manifest=p[1][1]))
    c.add("duplicate-payload-file", "duplicate", build(H, D, manifest=p[1][1])[:2]
          + build(H, D + [D[0]])[2:])
    dup_line = p[1][1].split(b"\n")[0] + b"\n"
    c.add("duplicate-manifest-line", "duplicate", build(H, D, manifest_extra=dup_line))
    many = b"".join(b"%s  data/0000/f%d\n" % (sha(b"").encode(), i) for i in range(1100))
    c.add("manifest-too-many-lines", "limit-manifest-count", build(H, D, manifest_extra=many))
    huge = b"".join(b"%s  data/0000/%090d\n" % (sha(b"").encode(), i) for i in range(7000))
    c.add("oversized-manifest", "limit-manifest-size", build(H, D, manifest_extra=huge))
    c.add("outer-not-regular", "entry-type",
          [p[0], p[1], member("header.tar.gz", type_=tarfile.SYMTYPE, linkname="x"), p[3]])

    # Header contents.
    hi_first = [m for m in H if m[0] != "header-info"]
    c.add("header-info-not-first", "header-order", build(hi_first + [H[0]], D))
    c.add("header-missing-type-info", "header-missing",
          build([m for m in H if not m[0].startswith("headers/0000/")], D))
    c.add("header-meta-data-before-type-info", "header-order-meta",
          build([m for m in H if m[0] != "headers/0000/type-info"]
                + [("headers/0000/type-info", dict(H)["headers/0000/type-info"])], D))
    c.add("header-bad-json", "header-json", build(header_with("header-info", b"{\"payloads\":["), D))
    c.add("header-no-artifact-name", "header-json",
          build(header_with("header-info", hinfo.replace(b'"artifact_name":"art-1"',
                                                         b'"artifact_nam":"art-1"')), D))
    c.add("header-device-type-not-list", "header-json",
          build(header_with("header-info", hinfo.replace(b'"device_type":["dev-a","dev-b"]',
                                                         b'"device_type":"dev-a"')), D))
    c.add("oversized-header-member", "limit-header",
          build(header_with("header-info", hinfo + b" " * (2 << 20)), D))
    c.add("header-symlink", "entry-type",
          build(H[:1] + [member("scripts/ArtifactInstall_Enter_00", type_=tarfile.SYMTYPE,
                                linkname="/etc/passwd")] + H[2:], D))
    c.add("header-traversal", "bad-name",
          build(H[:1] + [("scripts/../../etc/x", b"#!/bin/sh\n")] + H[2:], D))
    # An uncompressed header tar named .gz (manifest naming it so): the magic check refuses it.
    mis = build(H, D, "none")
    mis[2][0] = "header.tar.gz"
    lines = mis[1][1].replace(b"  header.tar\n", b"  header.tar.gz\n")
    c.add("header-compression-mismatch", "compression", [mis[0], ["manifest", lines]] + mis[2:])
    bz = build(H, D)
    bz[2][0] = "header.tar.bz2"
    bz[1][1] = bz[1][1].replace(b"  header.tar.gz\n", b"  header.tar.bz2\n")
    c.add("header-unknown-compression", "compression", bz)

    # Payload (data tar) entries: unsafe names and entries that are not regular files. The
    # manifest lists them with the right checksum so the name/type check is what refuses them.
    # Unsafe names: in the data tar (the manifest as for the good files, so the name check
    # on the entry is what refuses it), and listed in the manifest (refused there).
    manifest_good = build(H, D)[1][1]
    for case, name in (("dotdot", "../x"), ("absolute", "/abs"), ("subdir", "a/b"),
                       ("dot", "."), ("dotdot-only", "..")):
        c.add("path-traversal-" + case, "bad-name",
              build(H, D + [(name, b"evil\n")], manifest=manifest_good))
        if case in ("dotdot", "absolute", "subdir"):
            c.add("manifest-traversal-" + case, "manifest-name", build(H, D + [(name, b"evil\n")]))
    c.add("name-control-character", "name-control",
          build(H, D + [("a\x01b", b"x")], manifest=manifest_good))
    long_name = tarfile.TarInfo("n" * 300)
    long_name.size = 1
    c.add("name-too-long", "name-long",
          build(H, D + [long_name.tobuf(format=tarfile.GNU_FORMAT) + b"x" + pad(1)],
                manifest=manifest_good))
    # One byte flipped in a tar header inside the (uncompressed) data tar: its header checksum.
    raw = tar([tuple(p) for p in none_parts])
    at = raw.index(b"payload.bin\0")  # the data tar's first entry header
    c.add("flip-data-tar-header", "bad-data-tar", flip(raw, at + 150))
    for case, raw in (
            ("symlink-entry", member("link", type_=tarfile.SYMTYPE, linkname="/etc/passwd")),
            ("hardlink-entry", member("hard", type_=tarfile.LNKTYPE, linkname="payload.bin")),
            ("chardev-entry", member("dev", type_=tarfile.CHRTYPE, devmajor=1, devminor=3)),
            ("directory-entry", member("dir", type_=tarfile.DIRTYPE, mode=0o755)),
            ("fifo-entry", member("fifo", type_=tarfile.FIFOTYPE))):
        c.add(case, "entry-type", build(H, D + [raw]))

    # Wrong version, with the manifest checksum of the new version bytes so the version check is
    # what refuses it.
    for case, v in (("version-2", b'{"format":"mender","version":2}'),
                    ("version-4", b'{"format":"mender","version":4}'),
                    ("version-format-other", b'{"format":"other","version":3}'),
                    ("version-no-format", b'{"version":3}')):
        c.add(case, "version", build(H, D, version=v))
    c.add("version-not-json", "version-json", build(H, D, version=b"mender 3"))
    c.add("oversized-version", "limit-version",
          build(H, D, version=b'{"format":"mender",' + b" " * 5000 + b'"version":3}'))
    scripts = [("scripts/ArtifactInstall_Enter_%02d_s%03d" % (i % 100, i), b"#!/bin/sh\n")
               for i in range(300)]
    c.add("too-many-scripts", "limit-scripts", build(H[:1] + scripts + H[1:], D))

    # Bootstrap (empty payload type) that carries files anyway.
    boot_hi = (b'{"payloads":[{"type":null}],"artifact_provides":{"artifact_name":"boot-1"},'
               b'"artifact_depends":{"device_type":["dev-a"]}}')
    boot_ti = b'{"type":null}'
    c.add("control-bootstrap", "ok",
          build([("header-info", boot_hi), ("headers/0000/type-info", boot_ti)], []))
    c.add("bootstrap-with-files", "empty-payload",
          build([("header-info", boot_hi), ("headers/0000/type-info", boot_ti)], D))

    with open(os.path.join(in_dir, "augmented.mender"), "rb") as f:
        c.add("augmented", "augmented", f.read())
    c.add("not-a-tar", "not-tar", os.urandom(3000))

    bomb(c, H, D)
    c.write_table()


def bomb(c, H, D):
    """A header.tar.gz of about 1 MiB that inflates to 1 GiB: header-info, then state scripts of
    just under 1 MiB of zeros each (each under the member limit, together far past the limit on
    the whole header). Written streaming."""
    path = os.path.join(c.out_dir, "decompression-bomb.mender")
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    h = hashlib.sha256()
    zeros = bytes(1 << 20)
    tmp = path + ".header"
    with open(tmp, "wb") as f:
        def put(b):
            out = z.compress(b)
            h.update(out)
            f.write(out)
        put(member("header-info", dict(H)["header-info"]))
        for i in range(1024):
            put(tar_header("scripts/ArtifactInstall_Enter_%02d_%04d" % (i % 100, i),
                           len(zeros) - BLOCK))
            put(zeros[BLOCK:])  # a multiple of 512: no padding
        put(b"\0" * 1024)
        tail = z.flush()
        h.update(tail)
        f.write(tail)
        size = f.tell()
    data_bytes = gzip.compress(tar(D), mtime=0)
    manifest = "".join("%s  data/0000/%s\n" % (sha(d), n) for n, d in D)
    manifest += "%s  header.tar.gz\n%s  version\n" % (h.hexdigest(), sha(VERSION3))
    with open(path, "wb") as f, open(tmp, "rb") as src:
        f.write(member("version", VERSION3) + member("manifest", manifest.encode()))
        f.write(tar_header("header.tar.gz", size, mode=0o600))
        while True:
            chunk = src.read(1 << 20)
            if not chunk:
                break
            f.write(chunk)
        f.write(pad(size) + member("data/0000.tar.gz", data_bytes) + b"\0" * 1024)
    os.unlink(tmp)
    c.table.append(("decompression-bomb", "limit-header", "-"))


if __name__ == "__main__":
    main()
