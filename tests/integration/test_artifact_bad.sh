#!/usr/bin/env bash
# The corpus of bad artifacts: generated at test time from good artifacts that mender-artifact
# writes (make_bad_artifacts.py), each one refused by `molt-artifact validate` with exit 1 and
# its own specific error, without a crash or sanitizer report, within 20 s and with bounded
# memory (peak RSS measured with GNU time; the address space is capped as well outside ASan).
. "$(dirname "$0")/lib.sh"

here=$(cd "$(dirname "$0")" && pwd)
in="$T/in" out="$T/out"
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
mender-artifact write module-image -T my-type -n art-1 -t dev-a -f "$in/payload.bin" \
    --augment-type delta-type --augment-file "$in/file2.txt" -k "$in/rsa.key" \
    -o "$in/augmented.mender" >/dev/null

python3 "$here/make_bad_artifacts.py" "$in" "$out"

# --- what each case must say -----------------------------------------------------------------
# The reader's messages name the member and the reason; each regexp pins both.
declare -A want=(
    [empty]='missing.*version|version.*missing|empty'
    [truncated]='[Tt]runcat|unexpected end|premature end'
    [trunc-before-manifest]='missing.*manifest|manifest.*missing'
    [trunc-before-header]='missing.*header|header.*missing'
    [trunc-before-data-0000]='data/0000/payload\.bin.*(missing|not (found|seen|present))|(missing|not (found|seen|present)).*data/0000/payload\.bin'
    [checksum-header]='header\.tar.*checksum|checksum.*header\.tar'
    [checksum-header-gz]='header\.tar\.gz.*checksum|checksum.*header\.tar\.gz'
    [checksum-payload]='data/0000/payload\.bin.*checksum|checksum.*data/0000/payload\.bin|payload\.bin.*checksum'
    [checksum-version]='version.*checksum|checksum.*version'
    [bad-header-gz]='header\.tar\.gz'
    [bad-data-gz]='data/0000(\.tar\.gz|/payload\.bin)'
    [manifest-format]='manifest.*(line|malformed|format)'
    [signature]='signature.*(verif|match|invalid)|(verif|match|invalid).*signature'
    [signature-base64]='manifest\.sig.*base64|base64.*manifest\.sig|signature.*base64'
    [limit-signature]='manifest\.sig.*(large|limit|too)'
    [unsigned]='(not signed|unsigned|no signature|manifest\.sig.*missing|missing.*manifest\.sig)'
    [order]='(order|unexpected|duplicate|expected)'
    [unexpected-member]='(unexpected|unknown|after).*(extra|data/0000\.tar\.gz)|(extra|data/0000\.tar\.gz).*(unexpected|unknown|after)'
    [missing-version]='version'
    [missing-manifest]='manifest'
    [missing-header]='header\.tar'
    [missing-payload]='data/0000/(payload\.bin|file2\.txt).*(missing|not (found|seen|present))|(missing|not (found|seen|present)).*data/0000/(payload\.bin|file2\.txt)'
    [unlisted-payload]='extra\.bin.*(not listed|not in|unlisted|manifest)'
    [duplicate]='[Dd]uplicate'
    [limit-manifest-count]='manifest.*(too many|limit|large)'
    [limit-manifest-size]='manifest.*(too many|limit|large)'
    [limit-header]='header.*(limit|large|too)'
    [entry-type]='(regular file|not a file|entry type|file type)'
    [header-order]='header-info.*first|first.*header-info'
    [header-missing]='type-info'
    [header-json]='header-info'
    [bad-name]='(\.\./x|/abs|a/b|\.\./\.\./etc/x).*(name|path)|(name|path).*(\.\./x|/abs|a/b|\.\./\.\./etc/x)'
    [compression]='header\.tar\.(gz|bz2).*(compression|magic|suffix|unknown|unexpected)|(compression|magic|suffix).*header\.tar'
    [version]='version.*(support|3)|format'
    [empty-payload]='(empty|no payload|bootstrap|null).*(file|payload)|payload.*(empty|files)'
    [augmented]='[Aa]ugment'
    [not-tar]='tar|version'
)

rss_limit_kib=$((64 * 1024))
[ "$MOLT_SANITIZE" = ON ] && rss_limit_kib=$((320 * 1024))  # ASan's shadow memory and quarantine
RUN_TIMEOUT=20
RUN_AS_LIMIT=1G

n=0 bad=0
while IFS=$'\t' read -r case expect key; do
    args=()
    [ "$key" != - ] && args=(-k "$in/$key.pub")
    run_molt_artifact validate "${args[@]}" "$out/$case.mender"
    err=$(head -c 2000 "$RUN_ERR" | tr '\n' ' ')
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

[ "$n" -ge 90 ] || fail "only $n cases generated"
echo "bad artifacts: $((n - bad)) of $n behaved as expected"
[ "$bad" = 0 ] || fail "$bad bad-artifact cases misbehaved"
