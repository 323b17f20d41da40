#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest-labels: slow
# Interop with Debian's mender-artifact 3.9, both ways:
#  A. what mender-artifact writes (module-image with everything, rootfs-image, bootstrap; none,
#     gzip and lzma; unsigned, RSA-3072 and ECDSA P-256) is read by `molt-artifact read --json`
#     with the same content as the inputs and as `mender-artifact read` shows, validates, verifies
#     with the right key and is refused with the wrong one;
#  B. what molt-artifact writes (none, gzip, xz, zstd; RSA and ECDSA) passes
#     `mender-artifact validate -k` and `mender-artifact read` shows the same content;
#  C. `sign` across the tools: the signature of one validates with the other and every other
#     member stays byte-identical.
. "$(dirname "$0")/lib.sh"

in="$T/in"
mkdir -p "$in"
cd "$T"

# --- keys and inputs ---------------------------------------------------------------------------
gen_rsa() {  # 3.9 needs PKCS#1 ("traditional") RSA keys
    openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 2>/dev/null |
        openssl rsa -traditional -out "$1" 2>/dev/null
}
gen_rsa "$in/rsa.key"
gen_rsa "$in/rsa-other.key"
openssl ecparam -name prime256v1 -genkey -noout -out "$in/ec.key"
openssl ecparam -name prime256v1 -genkey -noout -out "$in/ec-other.key"
for k in rsa rsa-other ec ec-other; do openssl pkey -in "$in/$k.key" -pubout -out "$in/$k.pub"; done

head -c 200000 /dev/urandom >"$in/payload.bin"
echo hello >"$in/file2.txt"
: >"$in/empty.dat"
head -c 300000 /dev/urandom >"$in/rootfs.ext4"
echo '{"key1":"val1","n":5,"lst":["a","b"]}' >"$in/meta.json"
for s in ArtifactInstall_Enter_00 ArtifactCommit_Leave_01; do
    printf '#!/bin/sh\necho %s\n' "$s" >"$in/$s"
done

# "sha256 size name" of each payload input, computed by sha256sum: the truth both tools must show.
file_spec() {
    local f
    for f in "$@"; do
        echo "$(sha256sum <"$f" | cut -d' ' -f1) $(stat -c %s "$f") $(basename "$f")"
    done
}
file_spec "$in/payload.bin" "$in/file2.txt" "$in/empty.dat" >"$T/files-module"
file_spec "$in/rootfs.ext4" >"$T/files-rootfs"
: >"$T/files-none"
rootfs_sum=$(cut -d' ' -f1 "$T/files-rootfs")

# What each kind of artifact must contain (compared with molt's JSON and mender-artifact's text).
expect_module='{"name":"art-1","group":"grp1","payload_type":"my-type",
  "device_type":["dev-a","dev-b"],"artifact_name":["art-0"],"artifact_group":["grp0"],
  "provides":{"custom.key":"cval","rootfs-image.myapp.version":"1.0"},
  "depends":{"dep.key":"dval"},"clears":["foo.*","rootfs-image.myapp.*"],
  "meta_data":{"key1":"val1","lst":["a","b"],"n":5},
  "scripts":["ArtifactCommit_Leave_01","ArtifactInstall_Enter_00"]}'
expect_rootfs='{"name":"rel-1","group":null,"payload_type":"rootfs-image","device_type":["qemu"],
  "artifact_name":[],"artifact_group":[],
  "provides":{"rootfs-image.checksum":"'$rootfs_sum'","rootfs-image.version":"rel-1"},
  "depends":{},"clears":["artifact_group","rootfs_image_checksum","rootfs-image.*"],
  "meta_data":null,"scripts":[]}'
expect_bootstrap='{"name":"boot-1","group":null,"payload_type":null,"device_type":["qemu"],
  "artifact_name":[],"artifact_group":[],"provides":{"rootfs-image.version":"boot-1"},
  "depends":{},"clears":null,"meta_data":null,"scripts":[]}'

module_args=(-T my-type -n art-1 -t dev-a -t dev-b
             -f "$in/payload.bin" -f "$in/file2.txt" -f "$in/empty.dat"
             -m "$in/meta.json" -s "$in/ArtifactInstall_Enter_00" -s "$in/ArtifactCommit_Leave_01"
             -p custom.key:cval -d dep.key:dval -N art-0 -g grp1 -G grp0
             --clears-provides 'foo.*' --software-name myapp --software-version 1.0)
rootfs_args=(-n rel-1 -t qemu -f "$in/rootfs.ext4")
bootstrap_args=(-n boot-1 -t qemu -p rootfs-image.version:boot-1)

# check.py KIND-EXPECT FILES-SPEC COMPRESSION SIGNED MOLT-JSON|- [MENDER-READ-TEXT]
cat >"$T/check.py" <<'EOF'
import json, re, sys

expect = json.loads(sys.argv[1])
files = [l.split() for l in open(sys.argv[2]) if l.strip()]
files = [{"name": n, "size": int(s), "sha256": h} for h, s, n in files]
compression, signed = sys.argv[3], sys.argv[4] == "yes"
errors = []

def same(what, want, got):
    if want != got:
        errors.append("%s: expected %r, got %r" % (what, want, got))

if sys.argv[5] != "-":
    j = json.load(open(sys.argv[5]))
    same("json format_version", 3, j.get("format_version"))
    same("json compression", compression, j.get("compression"))
    same("json signed", signed, j.get("signed"))
    for k in ("name", "group", "payload_type", "provides", "clears", "meta_data"):
        same("json " + k, expect[k], j.get(k))
    dep = dict(j.get("depends") or {})
    same("json depends.device_type", expect["device_type"], dep.pop("device_type", None))
    for k in ("artifact_name", "artifact_group"):
        same("json depends." + k, expect[k], dep.pop(k, None) or [])
    same("json depends (type-info)", expect["depends"], dep)
    same("json scripts", expect["scripts"], sorted(j.get("scripts") or []))
    same("json files", files, [{k: f.get(k) for k in ("name", "size", "sha256")}
                               for f in j.get("files") or []])

if len(sys.argv) > 6:
    # mender-artifact read's text: "  Key: value" lines, then an indented block per section.
    t = open(sys.argv[6]).read()
    def field(label):
        m = re.search(r"^\s*" + re.escape(label) + r":[ \t]*(.*)$", t, re.M)
        return m.group(1).strip() if m else None
    def block(label):  # "\tkey: value" lines after "Label:"
        m = re.search(r"^\s*" + label + r":\n((?:\t.*\n)*)", t, re.M)
        return dict(l.strip().split(": ", 1) for l in m.group(1).splitlines()) if m else {}
    def brackets(label):
        v = field(label)
        return v.strip("'[]").split() if v else []
    same("mender name", expect["name"], field("Name"))
    same("mender group", expect["group"] or "", field("Provides group"))
    same("mender type", expect["payload_type"] or "Empty type", field("Type"))
    same("mender devices", expect["device_type"], brackets("Compatible devices"))
    same("mender depends names", expect["artifact_name"], brackets("Depends on one of artifact(s)"))
    same("mender depends groups", expect["artifact_group"], brackets("Depends on one of group(s)"))
    same("mender provides", expect["provides"], block("Provides"))
    same("mender depends", expect["depends"], block("Depends"))
    clears = field("Clears Provides")
    same("mender clears", expect["clears"], json.loads(clears) if clears else None)
    sig = field("Signature")
    same("mender signature", "signed and verified correctly" if signed else "no signature", sig)
    meta = re.search(r"^\s*Metadata:(.*?)^\s*Files:", t, re.M | re.S).group(1).strip()
    same("mender meta-data", expect["meta_data"], None if meta == "Nothing" else json.loads(meta))
    scripts = re.search(r"State scripts:\n((?:    \S.*\n)*)", t).group(1).split()
    same("mender scripts", expect["scripts"], sorted(scripts))
    got = re.findall(r"name:\s+(\S+)\n\s+size:\s+(\d+)\n.*\n\s+checksum:\s+([0-9a-f]{64})", t)
    same("mender files", files, [{"name": n, "size": int(s), "sha256": h} for n, s, h in got])

if errors:
    print("\n".join(errors), file=sys.stderr)
    sys.exit(1)
EOF

check() {  # WHAT EXPECT FILES COMPRESSION SIGNED JSON [MENDER-TEXT]
    local what=$1
    shift
    python3 "$T/check.py" "$@" || fail "$what: content differs (see above)"
}

# mender-artifact's progress bar goes to stderr; shown only when it fails.
mender_write() {  # mender-artifact ARGS...
    mender-artifact "$@" >"$T/ma.out" 2>&1 || { cat "$T/ma.out" >&2; fail "mender-artifact $*"; }
}

mender_read() {  # FILE OUT [KEY]
    mender-artifact read ${3:+-k "$3"} "$1" >"$2" 2>/dev/null || fail "mender-artifact read $1"
}

# --- A. mender-artifact writes, molt reads ---------------------------------------------------
for comp in none gzip lzma; do
    molt_comp=$comp
    [ "$comp" = lzma ] && molt_comp=xz
    for key in none rsa ec; do
        a="$T/ma-module-$comp-$key.mender"
        sign=()
        [ "$key" != none ] && sign=(-k "$in/$key.key")
        mender_write write module-image "${module_args[@]}" --compression "$comp" "${sign[@]}" \
            -o "$a"
        signed=yes pub=""
        [ "$key" = none ] && signed=no || pub="$in/$key.pub"
        mender_read "$a" "$a.txt" "$pub"
        run_molt_artifact read --json "$a"
        expect_rc 0 "molt-artifact read --json $a"
        cp "$RUN_OUT" "$a.json"
        check "mender-written module-image ($comp, key $key)" "$expect_module" "$T/files-module" \
            "$molt_comp" "$signed" "$a.json" "$a.txt"
        run_molt_artifact validate "$a"
        expect_rc 0 "molt-artifact validate $a"
        if [ "$key" = none ]; then
            run_molt_artifact validate -k "$in/rsa.pub" "$a"
            expect_rc 1 "an unsigned artifact with a key"
            assert_match 'sign' "$(cat "$RUN_ERR")" "unsigned artifact refusal"
        else
            run_molt_artifact validate -k "$in/$key.pub" "$a"
            expect_rc 0 "molt-artifact validate -k $key.pub $a"
            run_molt_artifact read --json -k "$in/$key.pub" "$a"
            expect_rc 0 "molt-artifact read --json -k $a"
            assert_match '"signature_verified": *true' "$(cat "$RUN_OUT")" "signature_verified"
            run_molt_artifact validate -k "$in/$key-other.pub" "$a"
            expect_rc 1 "molt-artifact validate with the wrong $key key"
            assert_match 'signature' "$(cat "$RUN_ERR")" "wrong-key refusal"
            # Keys are tried in order: the wrong one first, then the right one.
            run_molt_artifact validate -k "$in/$key-other.pub" -k "$in/$key.pub" "$a"
            expect_rc 0 "molt-artifact validate with a wrong key, then the right one"
        fi
    done

    a="$T/ma-rootfs-$comp.mender"
    mender_write write rootfs-image "${rootfs_args[@]}" --compression "$comp" -o "$a"
    mender_read "$a" "$a.txt"
    run_molt_artifact read --json "$a"
    expect_rc 0 "molt-artifact read --json $a"
    cp "$RUN_OUT" "$a.json"
    check "mender-written rootfs-image ($comp)" "$expect_rootfs" "$T/files-rootfs" "$molt_comp" no \
        "$a.json" "$a.txt"
    run_molt_artifact validate "$a"
    expect_rc 0 "molt-artifact validate $a"

    a="$T/ma-bootstrap-$comp.mender"
    mender_write write bootstrap-artifact "${bootstrap_args[@]}" --compression "$comp" \
        -k "$in/ec.key" -o "$a"
    mender_read "$a" "$a.txt" "$in/ec.pub"
    run_molt_artifact read --json "$a"
    expect_rc 0 "molt-artifact read --json $a"
    cp "$RUN_OUT" "$a.json"
    check "mender-written bootstrap ($comp)" "$expect_bootstrap" "$T/files-none" "$molt_comp" yes \
        "$a.json" "$a.txt"
    run_molt_artifact validate -k "$in/ec.pub" "$a"
    expect_rc 0 "molt-artifact validate -k $a"
    pass "mender-artifact --compression $comp: module-image (unsigned, RSA, ECDSA), rootfs-image, bootstrap"
done

# --- B. molt-artifact writes, mender-artifact reads ------------------------------------------
# Unpacks an artifact and checks every manifest line with sha256sum, without either tool:
# the payload files are extracted into data/0000/ so that the manifest's names resolve.
check_members() {  # ARTIFACT DIR
    local a=$1 d=$2 m
    mkdir -p "$d/data/0000"
    tar -xf "$a" -C "$d" || fail "$a: not a tar"
    for m in "$d"/header.tar* "$d"/data/0000.tar*; do
        case $m in
            *.zst) zstd -q -t "$m" || fail "$m: zstd -t"; zstd -q -dc "$m" ;;
            *.xz) xz -t "$m" || fail "$m: xz -t"; xz -dc "$m" ;;
            *.gz) gzip -t "$m" || fail "$m: gzip -t"; gzip -dc "$m" ;;
            *) cat "$m" ;;
        esac >"$m.tar"
    done
    tar -xf "$d"/data/0000.tar*.tar -C "$d/data/0000" || fail "$a: data tar"
    tar -tf "$d"/header.tar*.tar >/dev/null || fail "$a: header tar"
    (cd "$d" && sha256sum --quiet --strict -c manifest) || fail "$a: manifest checksums"
    [ "$(grep -c '  data/0000/' "$d/manifest")" = "$(tar -tf "$d"/data/0000.tar*.tar | wc -l)" ] ||
        fail "$a: the manifest does not list every payload file"
}

# Verifies manifest.sig with openssl alone (ECDSA: raw r||s converted to DER first).
openssl_verify() {  # DIR PUB
    python3 - "$1/manifest.sig" "$1/sig.der" <<'EOF'
import base64, sys
sig = base64.b64decode(open(sys.argv[1], "rb").read(), validate=True)
if len(sig) == 64:  # ECDSA P-256 raw r||s -> DER SEQUENCE of two INTEGERs
    def integer(b):
        b = b.lstrip(b"\0") or b"\0"
        if b[0] & 0x80:
            b = b"\0" + b
        return b"\x02" + bytes([len(b)]) + b
    body = integer(sig[:32]) + integer(sig[32:])
    sig = b"\x30" + bytes([len(body)]) + body
open(sys.argv[2], "wb").write(sig)
EOF
    openssl dgst -sha256 -verify "$2" -signature "$1/sig.der" "$1/manifest" >/dev/null ||
        fail "$1: openssl does not verify manifest.sig with $2"
}

for comp in none gzip xz zstd; do
    for key in rsa ec; do
        a="$T/mo-module-$comp-$key.mender"
        run_molt_artifact write module-image "${module_args[@]}" --compression "$comp" \
            -k "$in/$key.key" -o "$a"
        expect_rc 0 "molt-artifact write module-image --compression $comp -k $key"
        run_molt_artifact validate -k "$in/$key.pub" "$a"
        expect_rc 0 "molt-artifact validate (own $comp artifact)"
        run_molt_artifact read --json "$a"
        expect_rc 0 "molt-artifact read --json (own $comp artifact)"
        cp "$RUN_OUT" "$a.json"
        check_members "$a" "$T/x-$comp-$key"
        openssl_verify "$T/x-$comp-$key" "$in/$key.pub"
        if [ "$comp" = zstd ]; then
            # mender-artifact 3.9 predates zstd (added in 3.10): the checks above (molt's own
            # validate, zstd -t, the tar layout, every manifest sha256 and the signature with
            # openssl) stand in for it.
            check "molt-written module-image ($comp, $key)" "$expect_module" "$T/files-module" \
                "$comp" yes "$a.json"
        else
            mender_write validate -k "$in/$key.pub" "$a"
            mender_read "$a" "$a.txt" "$in/$key.pub"
            check "molt-written module-image ($comp, $key)" "$expect_module" "$T/files-module" \
                "$comp" yes "$a.json" "$a.txt"
            if mender-artifact validate -k "$in/$key-other.pub" "$a" >/dev/null 2>&1; then
                fail "mender-artifact accepted $a with the wrong key"
            fi
        fi
    done
    pass "molt-artifact --compression $comp: module-image RSA and ECDSA"
done

# molt-artifact writes, mender-artifact validates (with the key if signed) and reads it back.
molt_to_mender() {  # OUT KIND EXPECT FILES KEY(none|rsa|ec) WRITE-ARGS...
    local a=$1 kind=$2 expect=$3 files=$4 key=$5 signed=no sign=() pub=""
    shift 5
    if [ "$key" != none ]; then
        sign=(-k "$in/$key.key") pub="$in/$key.pub" signed=yes
    fi
    run_molt_artifact write "$kind" "$@" "${sign[@]}" -o "$a"
    expect_rc 0 "molt-artifact write $kind (key $key)"
    mender_write validate ${pub:+-k "$pub"} "$a"
    mender_read "$a" "$a.txt" "$pub"
    check "molt-written $kind (key $key)" "$expect" "$files" gzip "$signed" - "$a.txt"
}
molt_to_mender "$T/mo-module-gzip-none.mender" module-image "$expect_module" "$T/files-module" \
    none "${module_args[@]}"
molt_to_mender "$T/mo-rootfs.mender" rootfs-image "$expect_rootfs" "$T/files-rootfs" rsa \
    "${rootfs_args[@]}"
molt_to_mender "$T/mo-bootstrap.mender" bootstrap-artifact "$expect_bootstrap" "$T/files-none" \
    none "${bootstrap_args[@]}"
pass "molt-artifact: rootfs-image and bootstrap-artifact read back by mender-artifact"

# --- C. sign across the tools ----------------------------------------------------------------
same_members() {  # A B: every member but manifest.sig byte-identical
    local da="$T/cmp-a" db="$T/cmp-b" m
    rm -rf "$da" "$db"
    mkdir -p "$da" "$db"
    tar -xf "$1" -C "$da" && tar -xf "$2" -C "$db" || fail "cannot unpack $1 / $2"
    [ "$(tar -tf "$1" | grep -v '^manifest.sig$')" = "$(tar -tf "$2" | grep -v '^manifest.sig$')" ] ||
        fail "$1 and $2 do not list the same members"
    for m in $(tar -tf "$1" | grep -v '^manifest.sig$'); do
        cmp -s "$da/$m" "$db/$m" || fail "member $m differs between $1 and $2"
    done
}

for key in rsa ec; do
    src="$T/ma-module-gzip-none.mender" a="$T/molt-signed-$key.mender"
    run_molt_artifact sign -k "$in/$key.key" -o "$a" "$src"
    expect_rc 0 "molt-artifact sign -k $key"
    mender_write validate -k "$in/$key.pub" "$a"  # what molt-artifact sign wrote
    same_members "$src" "$a"
    [ "$(tar -tf "$a" | head -3 | tr '\n' ' ')" = "version manifest manifest.sig " ] ||
        fail "$a: manifest.sig is not the third member"
done

# Replacing a signature: an RSA-signed artifact re-signed with the ECDSA key, in place.
a="$T/resigned.mender"
cp "$T/ma-module-lzma-rsa.mender" "$a"
run_molt_artifact sign -k "$in/ec.key" "$a"
expect_rc 0 "molt-artifact sign (in place, replacing a signature)"
mender_write validate -k "$in/ec.pub" "$a"
if mender-artifact validate -k "$in/rsa.pub" "$a" >/dev/null 2>&1; then
    fail "re-signed artifact still verifies with the old RSA key"
fi
same_members "$T/ma-module-lzma-rsa.mender" "$a"
[ "$(tar -tf "$a" | grep -c '^manifest.sig$')" = 1 ] || fail "$a: manifest.sig not exactly once"

for key in rsa ec; do
    src="$T/mo-module-gzip-none.mender" a="$T/mender-signed-$key.mender"
    mender_write sign -k "$in/$key.key" -o "$a" "$src"
    run_molt_artifact validate -k "$in/$key.pub" "$a"
    expect_rc 0 "molt-artifact validate of mender-artifact sign -k $key"
    run_molt_artifact validate -k "$in/$key-other.pub" "$a"
    expect_rc 1 "molt-artifact validate of mender-artifact sign with the wrong $key key"
    same_members "$src" "$a"
done
pass "sign: molt-artifact signs what mender-artifact wrote and the other way round"

# An ECDSA signature in DER (as an HSM or `openssl dgst -sign` makes it) instead of raw r||s:
# newer mender-artifact releases and the C++ client accept both forms, and so does molt (3.9
# itself refuses DER: "invalid ecdsa key size: 71"). The artifact is re-packed with GNU tar in
# mender-artifact's member order; openssl checks the DER signature independently.
d="$T/der"
mkdir -p "$d"
tar -xf "$T/ma-module-gzip-none.mender" -C "$d"
openssl dgst -sha256 -sign "$in/ec.key" "$d/manifest" | base64 -w 0 >"$d/manifest.sig"
(cd "$d" && tar --format=ustar -cf "$T/der.mender" version manifest manifest.sig header.tar.gz \
    data/0000.tar.gz)
base64 -d "$d/manifest.sig" >"$d/sig.der"
openssl dgst -sha256 -verify "$in/ec.pub" -signature "$d/sig.der" "$d/manifest" >/dev/null ||
    fail "openssl does not verify the DER signature"
run_molt_artifact validate -k "$in/ec.pub" "$T/der.mender"
expect_rc 0 "molt-artifact validate of a DER-encoded ECDSA signature"
run_molt_artifact validate -k "$in/ec-other.pub" "$T/der.mender"
expect_rc 1 "molt-artifact validate of a DER-encoded ECDSA signature with the wrong key"
pass "ECDSA signatures in DER are verified too"
