# SPDX-License-Identifier: Apache-2.0
# molt-artifact's command line: the examples of docs/molt-artifact.md run as written and print
# what the document shows; --help and exit codes everywhere; mender-artifact's default provides
# and clears and its meta-data re-serialization reproduced byte for byte (compared with Debian's
# mender-artifact 3.9 for each option combination); refusals with exit 1 or 2.
. "$(dirname "$0")/lib.sh"

[ -x "$MOLT_ARTIFACT" ] || fail "program not built: $MOLT_ARTIFACT"
cd "$T"

# --- 1. the document's examples --------------------------------------------------------------
doc="$MOLT_SRC_DIR/docs/molt-artifact.md"
mkdir bin session
ln -s "$MOLT_ARTIFACT" bin/molt-artifact
python3 - "$doc" "$T" <<'EOF'
import re, sys
t = open(sys.argv[1]).read()
blocks = re.findall(r"```sh\n(.*?)```", t, re.S)
assert len(blocks) >= 4, "expected the session's sh blocks"
open(sys.argv[2] + "/session.sh", "w").write("set -euo pipefail\n" + "\n".join(blocks))
read_out = re.search(r"`read` prints:\n\n```\n(.*?)```", t, re.S).group(1)
open(sys.argv[2] + "/doc-read.txt", "w").write(read_out)
json_out = re.search(r"```json\n(.*?)```", t, re.S).group(1)
open(sys.argv[2] + "/doc-boot.json", "w").write(json_out)
EOF
(cd session && PATH="$T/bin:$PATH" bash "$T/session.sh" >"$T/session.out" 2>"$T/session.err") ||
    { cat "$T/session.err" >&2; fail "the examples of docs/molt-artifact.md do not run"; }
if grep -qE 'Sanitizer|runtime error:' "$T/session.err"; then
    cat "$T/session.err" >&2
    fail "sanitizer report while running the documented session"
fi
run_molt_artifact read session/release-1.mender
expect_rc 0 "read release-1.mender"
cmp -s "$RUN_OUT" doc-read.txt || { diff "$RUN_OUT" doc-read.txt >&2; fail "read output differs from the document"; }
run_molt_artifact read --json session/boot.mender
expect_rc 0 "read --json boot.mender"
cmp -s "$RUN_OUT" doc-boot.json || { diff "$RUN_OUT" doc-boot.json >&2; fail "read --json differs from the document"; }
mender-artifact validate -k session/release.pub session/release-1.mender >/dev/null 2>&1 &&
    fail "mender-artifact 3.9 should not know zstd (the check below would be vacuous)"
mender-artifact validate -k session/release.pub session/rootfs-signed.mender >/dev/null ||
    fail "mender-artifact does not validate what molt-artifact signed"
pass "docs/molt-artifact.md: the session runs and prints what the document shows"

# --- 2. help and exit codes ------------------------------------------------------------------
for cmd in "" "write" "write module-image" "write rootfs-image" "write bootstrap-artifact" \
    "read" "validate" "sign"; do
    # shellcheck disable=SC2086
    run_molt_artifact $cmd --help
    expect_rc 0 "molt-artifact $cmd --help"
    grep -q "^Usage: molt-artifact" "$RUN_OUT" || fail "molt-artifact $cmd --help: no usage line"
    case $cmd in
        write) ;;
        *) grep -q "Exit codes" "$RUN_OUT" || fail "molt-artifact $cmd --help: exit codes missing" ;;
    esac
done
usage_error() {  # ARGS...: must exit 2 with a molt-artifact: message
    run_molt_artifact "$@"
    expect_rc 2 "molt-artifact $*"
    grep -q '^molt-artifact: ' "$RUN_ERR" || fail "molt-artifact $*: no 'molt-artifact:' message"
}
usage_error
usage_error frobnicate
usage_error write
usage_error write module-image -n x -t d -o o.mender
usage_error write module-image -T t -t d -o o.mender
usage_error write module-image -T t -n x -o o.mender
usage_error write module-image -T t -n x -t d
usage_error write module-image -T t -n x -t d -o o.mender -p novalue
usage_error write module-image -T t -n x -t d -o o.mender --compression brotli
usage_error write rootfs-image -n x -t d -o o.mender
usage_error write rootfs-image -T t -f session/rootfs.ext4 -n x -t d -o o.mender
usage_error write bootstrap-artifact -n x -t d -o o.mender -f session/motd
usage_error read
usage_error read a.mender b.mender
usage_error read --bogus a.mender
usage_error validate
usage_error sign session/boot.mender
usage_error --compression gzip read session/boot.mender
[ ! -e o.mender ] || fail "a usage error left o.mender"

failure() {  # WANT-IN-MESSAGE ARGS...: must exit 1 naming the problem
    local want=$1
    shift
    run_molt_artifact "$@"
    expect_rc 1 "molt-artifact $*"
    grep -q "^molt-artifact: .*$want" "$RUN_ERR" || { cat "$RUN_ERR" >&2; fail "molt-artifact $*: message lacks '$want'"; }
}
echo '[1,2]' >array.json
echo '{"a":' >broken.json
cp session/motd 'bad name'
printf '#!/bin/sh\n' >Download_Enter_00
mkdir other && cp session/motd other/motd
failure "top level must be a JSON object" write module-image -T t -n x -t d -o o.mender -m array.json
failure "invalid JSON" write module-image -T t -n x -t d -o o.mender -m broken.json
failure "bad name" write module-image -T t -n x -t d -o o.mender -f 'bad name'
failure "same name" write module-image -T t -n x -t d -o o.mender -f session/motd -f other/motd
failure "Download_Enter_00" write module-image -T t -n x -t d -o o.mender -s Download_Enter_00
failure "no-such-file" write module-image -T t -n x -t d -o o.mender -f no-such-file
failure "nokey" write module-image -T t -n x -t d -o o.mender -k nokey
openssl ecparam -name secp384r1 -genkey -noout -out p384.key 2>/dev/null
failure "P-256" write module-image -T t -n x -t d -o o.mender -k p384.key
failure "not a Mender artifact" sign -k session/release.key session/motd
failure "not signed" validate -k session/release.pub session/boot.mender
failure "does not verify" validate -k session/rsa.pub session/release-1.mender
head -c 5000 session/rootfs.mender >trunc.mender
failure "" validate trunc.mender
[ ! -e o.mender ] || fail "a failed write left o.mender"
ls -a | grep -q '\.tmp-' && fail "a failed write left a temporary file"
# standard input
run_prog "$(command -v bash)" -c "'$MOLT_ARTIFACT' validate - <session/release-1.mender"
expect_rc 0 "validate from standard input"
pass "--help on every command; exit codes 1 and 2 with their messages"

# --- 3. the same type-info and meta-data as mender-artifact ------------------------------------
head -c 300000 /dev/urandom >image.ext4
head -c 1000 /dev/urandom >p.bin
printf '%s' '{"z":1,"a":{"y":[1,2.5,"x"],"b":null},"html":"<a&b>","f":0.1,"big":1e30,
"small":-2.5e-7,"int":12345678901234567890,"t":true,"u":"\u00e9\u2028"}' >meta.json
# number and string forms where Go's encoder has its own rules
printf '%s' '{"e21":1e21,"e20":1e20,"m6":1e-6,"m7":1.5e-7,"tiny":5e-324,"negz":-0.0,
"max":1.7976931348623157e308,"third":0.3333333333333333,"n123":123.456,"neg":-12,"e100":1e100,
"m10":1e-10,"k":{"":1},"ctl":"a\u0001b\tc\nd\re\"f\\g/h\u007f"}' >meta2.json
header_member() {  # ARTIFACT MEMBER
    local h
    h=$(tar -tf "$1" | grep '^header.tar')
    tar -xOf "$1" "$h" | case $h in *.gz) gzip -dc ;; *) cat ;; esac | tar -xOf - "$2"
}
same_type_info() {  # KIND ARGS...: molt-artifact and mender-artifact write the same header JSON
    local kind=$1
    shift
    mender-artifact write "$kind" "$@" -o g.mender >/dev/null 2>&1 || fail "mender-artifact write $kind $*"
    run_molt_artifact write "$kind" "$@" -o m.mender
    expect_rc 0 "molt-artifact write $kind $*"
    local m
    for m in header-info headers/0000/type-info headers/0000/meta-data; do
        header_member g.mender "$m" >g.member 2>/dev/null || continue
        header_member m.mender "$m" >m.member || fail "$kind $*: molt-artifact wrote no $m"
        # mender-artifact 3.9 writes "type":"" for rootfs-image; molt writes "rootfs-image" (>= 4.4)
        [ "$kind" = rootfs-image ] && [ "$m" = headers/0000/type-info ] &&
            sed -i 's/^{"type":""/{"type":"rootfs-image"/' g.member
        cmp -s g.member m.member || fail "$kind $*: $m differs: mender-artifact $(cat g.member), molt $(cat m.member)"
    done
    if header_member m.mender headers/0000/meta-data >/dev/null 2>&1 &&
        ! header_member g.mender headers/0000/meta-data >/dev/null 2>&1; then
        fail "$kind $*: molt-artifact wrote a meta-data member mender-artifact did not"
    fi
    mender-artifact validate m.mender >/dev/null || fail "mender-artifact validate: $kind $*"
}
set -f  # the option strings hold globs for --clears-provides
for opts in "" "--software-name sw" "--software-version 9" "--software-name sw --software-version 2" \
    "--software-filesystem fs" "--software-filesystem fs --software-name sw" \
    "--no-default-software-version" "--no-default-clears-provides" \
    "--no-default-software-version --clears-provides a.*" "--clears-provides x.* -p a:b -p a:c" \
    "-p rootfs-image.mt.version:mine" "-p html:<a&b>é -g g&g -d q:\u2028" "-d k:v -d k2:v2 -N n1 -N n2 -G g1 -G g2 -g grp" \
    "-m meta.json" "-m meta2.json" "-f p.bin -f image.ext4 -m meta.json -s session/ArtifactInstall_Enter_00"; do
    # shellcheck disable=SC2086
    same_type_info module-image -T mt -n rel -t d1 -t d2 --compression none $opts
done
for opts in "" "--software-name sw" "--software-version 9" "--software-filesystem fs" \
    "--software-filesystem fs --software-name sw" "--no-default-software-version" \
    "--no-default-clears-provides" "--no-checksum-provide" "--legacy-rootfs-image-checksum" \
    "--clears-provides x.* -p a:b -N n -g g -G h"; do
    # shellcheck disable=SC2086
    same_type_info rootfs-image -f image.ext4 -n rel -t d --compression none $opts
done
for opts in "" "-p rootfs-image.version:b1" "-p a:b -d c:d --clears-provides x.* -N n -g g -G h"; do
    # shellcheck disable=SC2086
    same_type_info bootstrap-artifact -n boot -t d --compression none $opts
done
set +f
pass "header-info, type-info and meta-data byte-identical to mender-artifact's for 29 option sets"
