# SPDX-License-Identifier: Apache-2.0
# What molt must refuse, and how:
#  - a wrong device type and unmet depends (artifact_name, artifact_group, type-info depends) are
#    refused before any module runs (the module's call log stays empty), with a message saying why;
#  - bad artifacts (a flipped payload byte, a truncated file, an unsigned artifact while verify
#    keys are configured, a signature by another key) fail in Download at the latest: no
#    ArtifactInstall, the target (dest dir), the provides and the artifact name are unchanged and
#    nothing is left in progress;
#  - a payload type that resolves outside the module dirs (../name, a symlink pointing out) is
#    refused without running anything, and a missing module fails cleanly.
# Each refusal has a positive twin that installs, so the checks can tell a refusal from a breakage.
# The module is Mender's community single-file module behind a wrapper that logs every call.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

device_new dev dev-a
LOG="$T/calls.log"
device_add_logged_module single-file /usr/share/mender/modules/v3/single-file "$LOG"
mkdir -p "$T/src"
printf 'factory\n' >"$DEV_DEST/motd"
printf '%s' "$DEV_DEST" >"$T/src/dest_dir"
printf 'motd' >"$T/src/filename"

# A single-file artifact whose payload is "content NAME" (with a marker the flip test can find).
sf_artifact() {  # OUT NAME [mender-artifact args...]
    local out=$1 name=$2
    shift 2
    printf 'content %s PAYLOAD-MARKER-0123456789\n' "$name" >"$T/src/motd"
    make_artifact "$out" "$name" single-file -f "$T/src/motd" -f "$T/src/dest_dir" -f "$T/src/filename" "$@"
}

# Install and commit NAME (the positive twins).
install_ok() {  # ARTIFACT NAME
    : >"$LOG"
    molt_dev install "$1"
    expect_rc 0 "install $2"
    molt_dev commit
    expect_rc 0 "commit $2"
    assert_eq "content $2 PAYLOAD-MARKER-0123456789" "$(cat "$DEV_DEST/motd")" "target after installing $2"
    assert_eq "$2" "$(dev_artifact)" "artifact name after installing $2"
    grep -qx ArtifactInstall "$LOG" || fail "install $2: the module's ArtifactInstall did not run"
}

# Snapshot of what must not change: target, provides, name.
snapshot() {  # FILE
    { cat "$DEV_DEST/motd"; dev_provides; dev_artifact; } >"$1"
}

# The last install must have failed (exit 1) with one "molt install: " line matching REGEX (the
# whole message after that prefix: the texts are pinned, issue 12 part 7) and changed nothing.
# No message repeats a state name as a prefix, quotes an empty name or glues two texts together.
expect_refused() {  # WHAT REGEX
    expect_rc 1 "$1"
    cat "$RUN_OUT" "$RUN_ERR" >"$T/refusal.msg"
    grep '^molt install: ' "$RUN_ERR" >"$T/refusal.line" || true
    [ "$(wc -l <"$T/refusal.line")" = 1 ] ||
        fail "$1: expected one 'molt install:' line on stderr: $(head -c 800 "$RUN_ERR")"
    grep -qE "^molt install: $2\$" "$T/refusal.line" ||
        fail "$1: the message does not match /^molt install: $2\$/: $(cat "$T/refusal.line")"
    if grep -qE "([A-Za-z_]+): \1: |''|\"\"" "$T/refusal.line"; then
        fail "$1: a repeated prefix or an empty name in: $(cat "$T/refusal.line")"
    fi
    snapshot "$T/after"
    diff "$T/before" "$T/after" >&2 || fail "$1: target, provides or artifact name changed (< before, > after)"
    assert_eq idle "$(dev_state)" "$1: state afterwards"
    molt_dev commit
    expect_rc 2 "$1: commit afterwards (nothing in progress)"
}

# The module did not run at all.
expect_no_module() {  # WHAT
    [ ! -s "$LOG" ] || fail "$1: the module ran before the refusal: $(tr '\n' ' ' <"$LOG")"
}

# The module never got past Download (Cleanup, if a module ran at all, came last).
expect_failed_in_download() {  # WHAT
    if grep -qvxE 'ProvidePayloadFileSizes|Download|DownloadWithFileSizes|Cleanup' "$LOG"; then
        fail "$1: calls beyond Download: $(tr '\n' ' ' <"$LOG")"
    fi
    if [ -s "$LOG" ]; then
        assert_eq Cleanup "$(tail -n 1 "$LOG")" "$1: last module call"
    fi
}

# --- depends ---------------------------------------------------------------------------------
sf_artifact "$T/base.mender" base-1 -p "board.rev:7" -g base-group
install_ok "$T/base.mender" base-1
snapshot "$T/before"

# Wrong device type: the artifact is for dev-b only.
printf 'content other-board PAYLOAD-MARKER-0123456789\n' >"$T/src/motd"
mender-artifact write module-image -T single-file -n other-board -t dev-b -o "$T/devtype.mender" \
    -f "$T/src/motd" -f "$T/src/dest_dir" -f "$T/src/filename" >/dev/null 2>&1 || fail "mender-artifact (dev-b)"
: >"$LOG"
molt_dev install "$T/devtype.mender"
expect_refused "wrong device type" 'artifact is for device types \["dev-b"\], this device is .dev-a.'
expect_no_module "wrong device type"
grep -qF dev-b "$T/refusal.msg" || fail "wrong device type: the message does not name the artifact's type dev-b"
pass "wrong device type refused before any module call"

# artifact_name depends.
sf_artifact "$T/dep-name.mender" dep-name -N some-other-release
: >"$LOG"
molt_dev install "$T/dep-name.mender"
expect_refused "unmet artifact_name depends" 'artifact depends on artifact_name \["some-other-release"\], but the device has artifact_name .base-1.'
expect_no_module "unmet artifact_name depends"
pass "unmet artifact_name depends refused before any module call"

# artifact_group depends.
sf_artifact "$T/dep-group.mender" dep-group -G another-group
: >"$LOG"
molt_dev install "$T/dep-group.mender"
expect_refused "unmet artifact_group depends" 'artifact depends on artifact_group \["another-group"\], but the device has artifact_group .base-group.'
expect_no_module "unmet artifact_group depends"
pass "unmet artifact_group depends refused before any module call"

# type-info depends: a key the device does not provide, and a provided key with another value.
sf_artifact "$T/dep-key.mender" dep-key -d "bootloader.version:2"
: >"$LOG"
molt_dev install "$T/dep-key.mender"
expect_refused "unmet type-info depends (missing key)" 'artifact depends on bootloader\.version .2., but the device provides no bootloader\.version'
expect_no_module "unmet type-info depends (missing key)"
sf_artifact "$T/dep-value.mender" dep-value -d "board.rev:8"
: >"$LOG"
molt_dev install "$T/dep-value.mender"
expect_refused "unmet type-info depends (other value)" 'artifact depends on board\.rev .8., but the device has .7.'
expect_no_module "unmet type-info depends (other value)"
pass "unmet type-info depends refused before any module call"

# The positive twin: every depends met (name, group, type-info, device type among several).
printf 'content all-met PAYLOAD-MARKER-0123456789\n' >"$T/src/motd"
mender-artifact write module-image -T single-file -n all-met -t dev-b -t dev-a -N base-1 -N x \
    -G base-group -d "board.rev:7" -o "$T/all-met.mender" \
    -f "$T/src/motd" -f "$T/src/dest_dir" -f "$T/src/filename" >/dev/null 2>&1 || fail "mender-artifact (all-met)"
install_ok "$T/all-met.mender" all-met
pass "an artifact whose depends are all met installs"

# --- the bad-artifact corpus -------------------------------------------------------------------
snapshot "$T/before"

# A flipped byte in the (uncompressed) payload: caught by the payload checksum.
sf_artifact "$T/good.mender" flip-me --compression none
cp "$T/good.mender" "$T/flipped.mender"
python3 - "$T/flipped.mender" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
i = b.find(b"PAYLOAD-MARKER-0123456789")
assert i > 0, "marker not found"
b[i + 20] ^= 0x01
open(p, "wb").write(b)
PY
: >"$LOG"
molt_dev install "$T/flipped.mender"
expect_refused "flipped payload byte" 'Download: data/0000/motd: checksum mismatch: manifest says [0-9a-f]{64}, content is [0-9a-f]{64}'
expect_failed_in_download "flipped payload byte"
pass "flipped payload byte: failed in Download, target untouched"

# Truncated: the end of the payload and the outer tar are missing.
size=$(stat -c %s "$T/good.mender")
head -c $((size * 6 / 10)) "$T/good.mender" >"$T/truncated.mender"
: >"$LOG"
molt_dev install "$T/truncated.mender"
expect_refused "truncated artifact" 'Download: artifact truncated in data/0000\.tar \(a member of [0-9]+ bytes\)'
expect_failed_in_download "truncated artifact"
pass "truncated artifact: failed in Download, target untouched"

# Signatures: the device trusts key A.
openssl ecparam -name prime256v1 -genkey -noout -out "$T/a.key" 2>/dev/null
openssl ec -in "$T/a.key" -pubout -out "$T/a.pub" 2>/dev/null
openssl ecparam -name prime256v1 -genkey -noout -out "$T/b.key" 2>/dev/null
device_config "artifact_verify_keys:" "  - $T/a.pub"

: >"$LOG"
molt_dev install "$T/good.mender"
expect_refused "unsigned artifact with verify keys configured" 'artifact is not signed, but verify keys are configured'
expect_failed_in_download "unsigned artifact"
pass "unsigned artifact refused when verify keys are configured"

sf_artifact "$T/signed-b.mender" signed-b -k "$T/b.key"
: >"$LOG"
molt_dev install "$T/signed-b.mender"
expect_refused "artifact signed by an untrusted key" 'manifest\.sig: the signature does not verify with any of the 1 configured keys \(signature does not verify with key /[^ ]*/a\.pub \(ECDSA P-256 SHA-256\)\)'
expect_failed_in_download "artifact signed by an untrusted key"
pass "artifact signed by another key refused"

sf_artifact "$T/signed-a.mender" signed-a -k "$T/a.key"
install_ok "$T/signed-a.mender" signed-a
pass "artifact signed by the trusted key installs"

# --- module lookup -----------------------------------------------------------------------------
snapshot "$T/before"
mkdir -p "$T/outside"
OUT_LOG="$T/outside.log"
printf '#!/bin/sh\necho "$1" >>"%s"\n' "$OUT_LOG" >"$DEV/evil"
chmod 0755 "$DEV/evil"
printf 'data\n' >"$T/src/payload"
make_artifact "$T/dotdot.mender" dotdot ../evil -f "$T/src/payload" -k "$T/a.key"
molt_dev install "$T/dotdot.mender"
expect_refused "payload type ../evil" "header\\.tar\\.gz: header-info: payload type must be a non-empty name without '/' or control characters"
[ ! -e "$OUT_LOG" ] || fail "payload type ../evil: the module outside the module dirs ran"
pass "payload type ../evil refused"

cp "$DEV/evil" "$T/outside/linked"
ln -s "$T/outside/linked" "$DEV_MODULES/linked"
make_artifact "$T/linked.mender" linked linked -f "$T/src/payload" -k "$T/a.key"
molt_dev install "$T/linked.mender"
expect_refused "module symlink pointing outside the module dirs" 'update module /[^ ]*/modules/linked resolves to /[^ ]*/outside/linked, outside the module folder /[^ ]*/modules: refused'
[ ! -e "$OUT_LOG" ] || fail "module symlink: the module outside the module dirs ran"
pass "module symlinked from outside the module dirs refused"

make_artifact "$T/missing.mender" missing no-such-module-type -f "$T/src/payload" -k "$T/a.key"
molt_dev install "$T/missing.mender"
expect_refused "missing module" "Update Module not found for payload type 'no-such-module-type' in /[^ ]*/modules, /usr/share/mender/modules/v3 \\(and no native module in [^ ]* claims it\\)"
pass "missing module: clean failure naming the type"
