# SPDX-License-Identifier: Apache-2.0
# ctest-labels: root
# Unverified bytes are never usable (issue 12, part 1): a correctly signed `directory` artifact
# whose update.tar is replaced by an attacker's tar holding a setuid-root copy of a program,
# served over loopback HTTP by tests/server/molt_test_server.py, which holds the stream in the
# middle of the tar (--hold-after: a handshake, not a sleep) once the setuid copy has been sent.
# While the stream is held, an unprivileged user (setpriv --reuid=65534) can neither run nor read
# the staged copy, nor reach anything staged below the destination's staged sibling. Released,
# the install is refused (checksum mismatch) and the destination is unchanged (a digest of its
# tree before and after: names, types, modes, owners, sizes, link targets and contents).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"

FILE_SO="$MOLT_BUILD_DIR/modules/native/file.so"
SERVER="$MOLT_SRC_DIR/tests/server/molt_test_server.py"
TAMPER="$MOLT_SRC_DIR/tests/integration/tamper_payload.py"
[ -f "$FILE_SO" ] || fail "file module not built: $FILE_SO"
command -v setpriv >/dev/null || fail "setpriv (util-linux) is not installed"
[ "$(id -u)" = 0 ] || fail "this test needs root (a setuid-root file, setpriv)"
PROG=$(command -v id)

# Everything below $T is reachable by other users unless molt itself keeps it from them.
chmod 0755 "$T"
ROOT="$T/root"
mkdir -p "$ROOT/app/sub" "$T/src/good" "$T/www"
printf 'version 1\n' >"$ROOT/app/sub/v.txt"
ln -s sub/v.txt "$ROOT/app/link"

device_new dev dev-a
chmod 0755 "$DEV" "$DEV_DATA"
device_add_file_module "$DEV/native"
openssl ecparam -name prime256v1 -genkey -noout -out "$T/key.pem"
openssl pkey -in "$T/key.pem" -pubout -out "$T/key.pub" 2>/dev/null
device_config "native_module_dir: $DEV/native" "artifact_verify_keys:" "  - $T/key.pub" \
    "modules:" "  file:" "    allowed_roots:" "      - $ROOT" \
    "http:" "  low_speed_time: 600" "  retry_download_count: 0"

# The signed artifact: a harmless tree. The attacker's update.tar: the setuid-root copy of
# $PROG first, then 4 MiB of padding in the middle of which the server holds the stream.
printf 'version 2\n' >"$T/src/good/v.txt"
tar -C "$T/src/good" -cf "$T/src/update.tar" .
printf '%s' "$ROOT/app" >"$T/src/dest_dir"
mender-artifact write module-image -T directory -n app-2 -t dev-a --compression none \
    -k "$T/key.pem" -f "$T/src/dest_dir" -f "$T/src/update.tar" -o "$T/signed.mender" \
    >"$T/ma.log" 2>&1 || { cat "$T/ma.log" >&2; fail "mender-artifact write"; }
mkdir -p "$T/evil"
cp "$PROG" "$T/evil/evil"
chmod 4755 "$T/evil/evil"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$T/evil/pad.bin"
tar -C "$T/evil" --owner=0 --group=0 -cf "$T/evil.tar" evil pad.bin
hold=$(python3 "$TAMPER" "$T/signed.mender" "$T/www/tampered.mender" update.tar "$T/evil.tar" \
    pad.bin $((1024 * 1024))) || fail "tamper_payload.py"

# The signed original installs (the key and the setup are right), then is rolled back.
molt_dev install "$T/signed.mender"
expect_rc 0 "install of the untampered signed artifact"
molt_dev rollback
expect_rc 0 "rollback of the untampered artifact"

digest() {  # DIR: every entry's type, mode, owner, size, link target, and the files' contents
    (cd "$1" && find . -printf '%p %y %m %u %g %s %l\n' | sort &&
        find . -type f -print0 | sort -z | xargs -0 -r sha256sum)
}
digest "$ROOT" >"$T/before"

SERVER_PID=
MOLT_BG_PID=
stop_all() {
    [ -z "$MOLT_BG_PID" ] || kill_group "$MOLT_BG_PID"
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap 'stop_all; rm -rf "$T"' EXIT
python3 "$SERVER" --port-file "$T/port" --files "$T/www" --log "$T/server.log" \
    --hold-after "$hold" 2>"$T/server.err" &
SERVER_PID=$!
wait_for_line "$T/port" '^[0-9]+$'
URL="http://127.0.0.1:$(cat "$T/port")"

molt_bg "$T/molt.out" install "$URL/tampered.mender"
wait_for_line "$T/server.log" '"event": "held"'
# The server has sent the setuid copy whole: wait until molt has written it (a condition, with
# a deadline; what it waits for is molt's own progress, not time).
evil=
end=$(guard_deadline)
while [ "$SECONDS" -lt "$end" ]; do
    evil=$(find "$ROOT" "$DEV_DATA" -type f -name evil -size "$(stat -c %s "$PROG")c" 2>/dev/null | head -n 1)
    [ -n "$evil" ] && cmp -s "$evil" "$PROG" && break
    evil=
    kill -0 "$MOLT_BG_PID" 2>/dev/null || { cat "$T/molt.out.err" >&2; fail "molt ended while the stream was held"; }
    sleep 0.05
done
[ -n "$evil" ] || fail "the staged copy of $PROG never appeared below $ROOT or $DEV_DATA"

# setpriv itself still holds root's capabilities until it execs: the program runs from a shell
# that is uid 65534 through and through.
nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups sh -c 'exec "$@"' sh "$@"; }
if out=$(nobody "$evil" 2>&1); then
    fail "an unprivileged user ran the staged, unverified $evil: $out"
fi
if nobody cat "$evil" >/dev/null 2>&1; then
    fail "an unprivileged user read the staged, unverified $evil"
fi
# Everything staged below the destination's folder (the staged sibling's contents).
find "$ROOT" -mindepth 1 -path "$ROOT/app" -prune -o -print | sort >"$T/staged.list"
grep -q . "$T/staged.list" || fail "nothing staged below $ROOT while the stream is held"
reached=$(xargs -d '\n' -a "$T/staged.list" sh -c '
    for p; do
        if setpriv --reuid=65534 --regid=65534 --clear-groups sh -c "[ -e \"\$1\" ] || [ -L \"\$1\" ]" sh "$p"; then
            echo "$p"
        fi
    done' sh)
# The staged top folder itself is visible in the listing of $ROOT; nothing in it may be.
top=$(head -n 1 "$T/staged.list")
reached=$(printf '%s\n' "$reached" | grep -vxF "$top" || true)
[ -z "$reached" ] || fail "an unprivileged user reaches staged, unverified entries: $(echo $reached)"
assert_eq 700 "$(stat -c %a "$top")" "mode of the staged folder $top"
pass "while the stream is held: the staged setuid copy cannot be run, read or reached by uid 65534"

curl -sf -X PUT "$URL/_control/release" >/dev/null || fail "releasing the held stream"
wait "$MOLT_BG_PID" && rc=0 || rc=$?
MOLT_BG_PID=
assert_eq 1 "$rc" "exit code of the tampered install"
grep -qi 'checksum' "$T/molt.out.err" || fail "the refusal does not say checksum: $(cat "$T/molt.out.err")"
digest "$ROOT" >"$T/after"
diff "$T/before" "$T/after" >&2 || fail "the destination changed"
assert_eq idle "$(dev_state)" "state after the refused install"
pass "released: refused with a checksum mismatch, the destination unchanged"
