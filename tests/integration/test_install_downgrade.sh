# SPDX-License-Identifier: Apache-2.0
# The downgrade policy and the unsigned-artifact warning of `molt install` (issue 12, part 2):
#  - with no artifact_verify_keys, install warns once (one line on stderr) that unsigned
#    artifacts are accepted; with a key configured it does not;
#  - downgrade: {policy: refuse, key: app.version, scheme: semver}: an older signed artifact is
#    refused before any module call or state script, with a message naming the artifact, both
#    versions and the scheme, and nothing changes; --allow-downgrade installs it (with a
#    warning); an equal version (a reinstall) is allowed; an artifact without the key is
#    refused; a newer one installs;
#  - the scheme matters: under debian, 1.0.0~rc1 is older than 1.0.0 (under semver it is not
#    a version at all, and is refused as such);
#  - --allow-downgrade is an option of install only; a bad downgrade: setting is refused at load.
# The module is Mender's single-file behind a logging wrapper; a Download_Enter state script in
# the rootfs scripts dir logs too, so "nothing ran" covers scripts as well.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

device_new dev dev-a
LOG="$T/calls.log"
: >"$LOG"
device_add_logged_module single-file /usr/share/mender/modules/v3/single-file "$LOG"
printf '#!/bin/sh\necho Download_Enter >>"%s"\n' "$LOG" >"$DEV_SCRIPTS/Download_Enter_00"
chmod 0755 "$DEV_SCRIPTS/Download_Enter_00"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/a.key" 2>/dev/null || fail "openssl ecparam"
openssl pkey -in "$T/a.key" -pubout -out "$T/a.pub" 2>/dev/null || fail "openssl pkey"
mkdir -p "$T/src"
printf '%s' "$DEV_DEST" >"$T/src/dest_dir"
printf 'motd' >"$T/src/filename"

art() {  # NAME [mender-artifact args...]: $T/NAME.mender writing "content NAME" to dest/motd
    local name=$1
    shift
    printf 'content %s\n' "$name" >"$T/src/motd"
    make_artifact "$T/$name.mender" "$name" single-file -f "$T/src/motd" -f "$T/src/dest_dir" \
        -f "$T/src/filename" "$@"
}
installed() {  # NAME: install (+ commit) succeeded and NAME is on the device
    expect_rc 0 "install $1"
    molt_dev commit
    expect_rc 0 "commit $1"
    assert_eq "content $1" "$(cat "$DEV_DEST/motd")" "target after installing $1"
    assert_eq "$1" "$(dev_artifact)" "artifact name after installing $1"
    grep -qx ArtifactInstall "$LOG" || fail "install $1: the module's ArtifactInstall did not run"
}
snapshot() {  # FILE
    { cat "$DEV_DEST/motd"; dev_provides; } >"$1"
}
refused() {  # WHAT REGEX: the last install failed with that one message; nothing ran or changed
    expect_rc 1 "$1"
    grep '^molt install: ' "$RUN_ERR" >"$T/refusal.line" || true
    grep -qE "^molt install: $2\$" "$T/refusal.line" ||
        fail "$1: the message does not match /$2/: $(head -c 800 "$RUN_ERR")"
    [ ! -s "$LOG" ] || fail "$1: a module call or state script ran: $(tr '\n' ' ' <"$LOG")"
    snapshot "$T/after"
    diff "$T/before" "$T/after" >&2 || fail "$1: the device changed"
    assert_eq idle "$(dev_state)" "$1: state afterwards"
}
warnings() {  # the number of "unsigned artifacts are accepted" lines of the last run's stderr
    grep -c 'no artifact_verify_keys configured: signatures are not checked and unsigned artifacts are accepted' "$RUN_ERR" || true
}

# --- no verification key: one warning --------------------------------------------------------
art rel-1 --provides app.version:1.0.0
molt_dev install "$T/rel-1.mender"
assert_eq 1 "$(warnings)" "no key: warnings of install"
installed rel-1
molt_dev status
assert_eq 0 "$(warnings)" "no key: status does not warn"
pass "no verify key: install warns once that unsigned artifacts are accepted"

# --- a key and the policy ------------------------------------------------------------------------
device_config "artifact_verify_keys: [$T/a.pub]" \
    "downgrade:" "  policy: refuse" "  key: app.version" "  scheme: semver"
art rel-2 --provides app.version:2.0.0 -k "$T/a.key"
art old-1 --provides app.version:1.0.0 -k "$T/a.key"
art same-2 --provides app.version:2.0.0 -k "$T/a.key"
art nover --provides other.key:1 -k "$T/a.key"
art rc-2 --provides app.version:2.0.0~rc1 -k "$T/a.key"
art rel-3 --provides app.version:3.0.0 -k "$T/a.key"

: >"$LOG"
molt_dev install "$T/rel-2.mender"
assert_eq 0 "$(warnings)" "key configured: no warning"
installed rel-2
pass "signed newer release installs, no unsigned warning with a key"

snapshot "$T/before"
: >"$LOG"
molt_dev install "$T/old-1.mender"
refused "older release" "downgrade refused: artifact 'old-1' has app\\.version '1\\.0\\.0', older than the device's '2\\.0\\.0' \\(semver scheme\\); --allow-downgrade installs it anyway"
pass "older signed release refused before any module call or script"

: >"$LOG"
molt_dev install "$T/nover.mender"
refused "no version" "downgrade policy: artifact 'nover' provides no 'app\\.version', so its version cannot be compared with the device's; refused \\(downgrade\\.policy refuse, downgrade\\.key app\\.version\\)"
pass "artifact without the version key refused"

: >"$LOG"
molt_dev install "$T/rc-2.mender"
refused "not semver" "downgrade policy: artifact 'rc-2' has app\\.version '2\\.0\\.0~rc1', which the semver scheme cannot compare: '2\\.0\\.0~rc1' is not a semantic version .*"
pass "a version the scheme cannot read is refused"

: >"$LOG"
molt_dev install "$T/same-2.mender"
installed same-2
pass "equal version (a reinstall) allowed"

: >"$LOG"
molt_dev install "$T/old-1.mender" --allow-downgrade
grep -q "downgrade refused: artifact 'old-1'.*(allowed by --allow-downgrade)" "$RUN_ERR" ||
    fail "--allow-downgrade: no warning: $(head -c 800 "$RUN_ERR")"
installed old-1
assert_match "app.version=1.0.0" "$(dev_provides)" "--allow-downgrade: provides"
pass "--allow-downgrade installs the older release"

# The scheme: under debian 2.0.0~rc1 is older than 2.0.0.
: >"$LOG"
molt_dev install "$T/rel-2.mender"
installed rel-2
sed -i 's/  scheme: semver/  scheme: debian/' "$DEV_CONF"
snapshot "$T/before"
: >"$LOG"
molt_dev install "$T/rc-2.mender"
refused "debian ~" "downgrade refused: artifact 'rc-2' has app\\.version '2\\.0\\.0~rc1', older than the device's '2\\.0\\.0' \\(debian scheme\\); --allow-downgrade installs it anyway"
: >"$LOG"
molt_dev install "$T/rel-3.mender"
installed rel-3
pass "debian scheme: 2.0.0~rc1 < 2.0.0 refused, 3.0.0 installs"

# Usage and configuration.
molt_dev commit --allow-downgrade
expect_rc 1 "commit --allow-downgrade"
grep -q -- "--allow-downgrade is an option of install" "$RUN_ERR" || fail "commit --allow-downgrade: no usage error"
sed -i 's/  scheme: debian/  scheme: semverx/' "$DEV_CONF"
molt_dev show-artifact
expect_rc 1 "bad scheme"
grep -qE "molt\\.yaml:[0-9]+: downgrade\\.scheme: expected integer, semver or debian, got \"semverx\"" "$RUN_ERR" ||
    fail "bad scheme: $(cat "$RUN_ERR")"
sed -i 's/  scheme: semverx/  scheme: debian/; s/  policy: refuse/  policy: never/' "$DEV_CONF"
molt_dev show-artifact
expect_rc 1 "bad policy"
grep -qE "downgrade\\.policy: expected refuse or allow, got \"never\"" "$RUN_ERR" || fail "bad policy: $(cat "$RUN_ERR")"
pass "--allow-downgrade only for install; bad downgrade settings refused at load"
