#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# ctest-labels: slow
# The corpus of bad artifacts: generated at test time from good artifacts that mender-artifact
# writes (make_bad_artifacts.py), each one refused by `molt-artifact validate` with exit 1 and
# its own specific error, without a crash or sanitizer report, within 20 s and with bounded
# memory (peak RSS measured with GNU time; the address space is capped as well outside ASan).
# Then every bad case again through `molt install` on a simulated device: one "molt install:"
# line, the reader's message right after the layers' prefixes, nothing repeated or glued, nothing
# installed.
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
# MOLT_BAD_CORPUS_DIR=DIR keeps the generated corpus (and cases.tsv) there, to look at it.
in="$T/in" out="${MOLT_BAD_CORPUS_DIR:-$T/out}"
mkdir -p "$in" "$out"

# --- good artifacts from the reference tool -----------------------------------------------
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:3072 2>/dev/null |
    openssl rsa -traditional -out "$in/rsa.key" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$in/ec.key"
for k in rsa ec; do openssl pkey -in "$in/$k.key" -pubout -out "$in/$k.pub"; done

head -c 100000 /dev/urandom >"$in/payload.bin"
echo hello >"$in/file2.txt"
echo '{"key1":"val1","n":5,"lst":["a","b"]}' >"$in/meta.json"
printf '#!/bin/sh\nexit 0\n' >"$in/ArtifactInstall_Enter_00"
common=(-T my-type -n art-1 -t dev-a -t dev-b -f "$in/payload.bin" -f "$in/file2.txt"
        -s "$in/ArtifactInstall_Enter_00" -m "$in/meta.json")
mender-artifact write module-image "${common[@]}" -o "$in/good.mender" >/dev/null
mender-artifact write module-image "${common[@]}" -k "$in/rsa.key" -o "$in/signed-rsa.mender" >/dev/null
mender-artifact write module-image "${common[@]}" -k "$in/ec.key" -o "$in/signed-ec.mender" >/dev/null
mender-artifact write module-image "${common[@]}" --compression lzma -o "$in/good-xz.mender" >/dev/null
run_molt_artifact write module-image "${common[@]}" --compression zstd -o "$in/good-zstd.mender"
expect_rc 0 "molt-artifact write --compression zstd"
mender-artifact write module-image -T my-type -n art-1 -t dev-a -f "$in/payload.bin" \
    --augment-type delta-type --augment-file "$in/file2.txt" -k "$in/rsa.key" \
    -o "$in/augmented.mender" >/dev/null

python3 "$here/make_bad_artifacts.py" "$in" "$out"

# --- what each case must say -----------------------------------------------------------------
# The reader's messages name the member and the reason; each regexp pins both (the texts come
# from core/artifact/reader.c, manifest.c, header_parse.c and tar_in.c).
declare -A want=(
    [empty]='is empty, not a Mender artifact'
    [not-tar]='not a Mender artifact \(not a tar archive'
    [truncated]='artifact truncated (in|after) (version|manifest|manifest\.sig|header\.tar\.gz|data/0000\.tar\.gz)( \(a member of [0-9]+ bytes\))?$'
    [trunc-after-version]='artifact truncated after version: no manifest'
    [trunc-after-manifest]='artifact truncated after manifest: no header'
    [trunc-after-manifest-sig]='artifact truncated after manifest\.sig: no header'
    [trunc-after-header-tar-gz]='manifest lists data/0000/payload\.bin, but the artifact does not contain it'
    [checksum-header]='header\.tar: checksum mismatch: manifest says [0-9a-f]{64}, content is [0-9a-f]{64}'
    [checksum-header-gz]='header\.tar\.gz: checksum mismatch: manifest says [0-9a-f]{64}'
    [checksum-payload]='data/0000/payload\.bin: checksum mismatch: manifest says [0-9a-f]{64}'
    [checksum-version]='version: checksum mismatch: manifest says [0-9a-f]{64}'
    [bad-header-gz]='header\.tar\.gz: (checksum mismatch|.*(gzip|inflate|CRC|corrupt))'
    [bad-data-gz]='data/0000(/payload\.bin: checksum mismatch|\.tar\.gz: .*(gzip|inflate|CRC|corrupt))'
    [bad-header-xz]='header\.tar\.xz: (checksum mismatch|.*(xz|[Ll]zma|[Cc]orrupt))'
    [bad-data-xz]='data/0000(/payload\.bin: checksum mismatch|\.tar\.xz: .*(xz|[Ll]zma|[Cc]orrupt))'
    [bad-header-zstd]='header\.tar\.zst: (checksum mismatch|.*(zstd|[Cc]orrupt))'
    [bad-data-zstd]='data/0000(/payload\.bin: checksum mismatch|\.tar\.zst: .*(zstd|[Cc]orrupt))'
    [bad-data-tar]='data/0000\.tar: (not a tar archive|Unrecognized archive format|Damaged tar archive)'
    [manifest-format]='manifest line 4: expected "<sha256 hex>  <name>"'
    [manifest-hex]='manifest line 1: the checksum is not 64 lower-case hex digits'
    [manifest-newline]='manifest: the last line does not end with a newline'
    [manifest-name]='manifest line [0-9]+: unexpected name "data/0000/(\.\./x|/abs|a/b)"'
    [signature]='manifest\.sig: the signature does not verify with any of the 1 configured keys \(signature does not verify with key'
    [signature-base64]='manifest\.sig: .*not valid base64'
    [limit-signature]='manifest\.sig is 8000 bytes; the limit is 4096'
    [unsigned]='artifact is not signed, but verify keys are configured'
    [order]='(version must be the first member of an artifact; found manifest|manifest must follow version; found (header\.tar\.gz|version)|unexpected member (data/0000\.tar\.gz|manifest) where header\.tar|unexpected member header\.tar\.gz after header\.tar\.gz)'
    [unexpected-member]='unexpected member (extra|manifest\.sig|data/0000\.tar\.gz) (where|after)'
    [missing-version]='version must be the first member of an artifact; found manifest'
    [missing-manifest]='manifest must follow version; found header\.tar\.gz'
    [missing-header]='unexpected member data/0000\.tar\.gz where header\.tar'
    [missing-payload]='manifest lists data/0000/(payload\.bin|file2\.txt), but the artifact does not contain it'
    [unlisted-payload]='data/0000\.tar\.gz: payload file extra\.bin is not listed in the manifest'
    [duplicate]='(payload file payload\.bin appears twice|manifest line 5: duplicate entry data/0000/payload\.bin)'
    [limit-manifest-count]='manifest has [0-9]+ lines; the limit is'
    [limit-manifest-size]='manifest is [0-9]+ bytes; the limit is 1048576'
    [limit-header]='header\.tar\.gz: (header-info is [0-9]+ bytes; the limit is 1048576|the uncompressed header exceeds the limit of 8388608 bytes)'
    [entry-type]='entry "(header\.tar\.gz|scripts/ArtifactInstall_Enter_00|link|hard|dev|dir/?|fifo)" is a (symlink|hardlink|character device|directory|fifo).*only regular files are allowed'
    [header-order]='header\.tar\.gz: header-info must be the first entry; found scripts/'
    [header-order-meta]='header\.tar\.gz: headers/0000/meta-data comes before headers/0000/type-info'
    [header-missing]='header\.tar\.gz: headers/0000/type-info is missing'
    [header-json]='header\.tar\.gz: header-info(: invalid JSON at line| artifact_provides: unknown key "artifact_nam"| artifact_depends: device_type must be a list of strings)'
    [bad-name]='(entry "(\.\./x|/abs|a/b|\.|\.\.)": payload files must be plain names|scripts/\.\./\.\./etc/x: not a state script name)'
    [name-control]='entry name "a.b" contains control characters'
    [name-long]='entry name "n+\.\.\." is 300 bytes; the limit is 255'
    [compression]='(header\.tar\.gz: not gzip data as its name says: expected magic bytes 1f 8b|manifest line 3: unexpected name "header\.tar\.bz2")'
    [version]='artifact format (version [24]|"other") is not supported; molt reads Mender Artifact format version 3|version: expected \{"format":"mender","version":3\}'
    [version-json]='version: invalid JSON at line 1'
    [limit-version]='version is 5031 bytes; the limit is 4096'
    [limit-scripts]='header\.tar\.gz: more than 256 state scripts'
    [empty-payload]='data/0000\.tar\.gz: the payload is empty \(type null\) but contains the file payload\.bin'
    [augmented]='augmented artifacts are not supported \(found manifest-augment\)'
)

rss_limit_kib=$((64 * 1024))
[ "$MOLT_SANITIZE" = ON ] && rss_limit_kib=$((160 * 1024))  # ASan's shadow memory and quarantine
RUN_TIMEOUT=$MOLT_TEST_GUARD   # a guard only: a bomb read to its end fails on its message
RUN_AS_LIMIT=1G

n=0 bad=0
while IFS=$'\t' read -r case expect key; do
    args=()
    [ "$key" != - ] && args=(-k "$in/$key.pub")
    run_molt_artifact validate "${args[@]}" "$out/$case.mender"
    err=$(head -c 2000 "$RUN_ERR" | tr '\n' ' ' | sed 's/ *$//')
    why=""
    if [ "$expect" = ok ]; then
        [ "$RUN_RC" = 0 ] || why="exit $RUN_RC, expected 0 (a control case must be accepted)"
    elif [ "$RUN_RC" != 1 ]; then
        why="exit $RUN_RC, expected 1"
    elif [ -z "${want[$expect]:-}" ]; then
        why="no expected message for '$expect' in the table"
    elif ! [[ "$err" =~ ${want[$expect]} ]]; then
        why="stderr does not match /${want[$expect]}/ ($expect)"
    fi
    rss=$(peak_rss_kib)
    if [ "$rss" -gt "$rss_limit_kib" ]; then
        why="${why:+$why; }peak RSS $rss KiB > $rss_limit_kib KiB"
    fi
    n=$((n + 1))
    if [ -n "$why" ]; then
        bad=$((bad + 1))
        echo "FAIL $case: $why; stderr: $err" >&2
    else
        echo "ok $case ($expect, ${rss} KiB): $err"
    fi
done <"$out/cases.tsv"

[ "$n" -ge 140 ] || fail "only $n cases generated"
echo "bad artifacts: $((n - bad)) of $n behaved as expected"
[ "$bad" = 0 ] || fail "$bad bad-artifact cases misbehaved"

# --- the same corpus through `molt install` ----------------------------------------------------
# Each bad artifact is refused with one "molt install: " line that carries the reader's message
# (the same expectation as above), at most one prefix per layer before it ("Download: " from the
# state machine, then what the module host was doing, ending in ": "), no state name repeated,
# no empty quoted name, and nothing installed: the device stays "unknown" and idle (checked after
# the last case: anything installed or left in progress would show there).
. "$(dirname "$0")/device.sh"
device_new dev dev-a
printf '#!/bin/sh\nexit 0\n' >"$T/noop-module"
device_add_module my-type "$T/noop-module"
for key in none rsa ec; do
    cp "$DEV_CONF" "$DEV/molt-$key.yaml"
    [ "$key" = none ] || printf 'artifact_verify_keys: [%s]\n' "$in/$key.pub" >>"$DEV/molt-$key.yaml"
done
# The layers a message may pass on its way up: the state machine's "Download: ", then the exec
# host's "writing <data_dir>/.../files/<file>: " or "streaming '<file>' to update module <path>: ".
# What follows a layer must be the reader's message itself (optionally naming its data member):
# a path glued to it, or a state name repeated, fails.
layer="^molt install: Download: (writing /[^ ]+/files/[^/ ]+: |streaming '[^' ]+' to update module /[^ ]+: )?(.*)$"
repeated='([A-Za-z_]+): \1: '
member='(data/0000\.tar(\.gz|\.xz|\.zst)?: )?'
n=0 bad=0
while IFS=$'\t' read -r case expect key; do
    [ "$expect" = ok ] && continue
    DEV_CONF="$DEV/molt-${key/-/none}.yaml"
    molt_dev install "$out/$case.mender"
    line=$(grep '^molt install: ' "$RUN_ERR" || true)
    why=""
    if [ "$RUN_RC" != 1 ]; then
        why="exit $RUN_RC, expected 1"
    elif [ "$(grep -c '^molt install: ' "$RUN_ERR")" != 1 ]; then
        why="expected one 'molt install: ' line"
    elif [[ "$line" =~ $repeated ]] || [[ "$line" == *"''"* ]] || [[ "$line" == *'""'* ]]; then
        why="a repeated prefix or an empty name"
    elif [[ "$line" =~ $layer ]]; then
        rest=${BASH_REMATCH[2]}
        [[ "$rest" =~ ^$member${want[$expect]} ]] ||
            why="after the layers, '$rest' does not start with /$member${want[$expect]}/"
    elif ! [[ "${line#molt install: }" =~ ${want[$expect]} ]]; then
        why="does not match /${want[$expect]}/"
    fi
    n=$((n + 1))
    if [ -n "$why" ]; then
        bad=$((bad + 1))
        echo "FAIL install $case: $why; stderr: $(head -c 1500 "$RUN_ERR" | tr '\n' ' ')" >&2
    fi
done <"$out/cases.tsv"
# A refusal that installed anything would leave another name, or a deployment in progress
# (which would also have failed every later case with "a deployment ... is in progress").
assert_eq unknown "$(dev_artifact)" "molt install of the bad corpus: artifact name afterwards"
assert_eq idle "$(dev_state)" "molt install of the bad corpus: state afterwards"
echo "molt install: $((n - bad)) of $n bad artifacts refused with the reader's message"
[ "$bad" = 0 ] || fail "$bad bad-artifact cases misbehaved in molt install"
