# SPDX-License-Identifier: Apache-2.0
# ctest-labels: docker root slow
# The docker module (modules/docker, native) through the real `molt` program against a real
# Docker engine: tests/integration/dockerd.sh starts Debian's dockerd with its own data-root,
# exec-root, socket and pidfile (vfs, no iptables, no bridge) and stops it by its pid at the end.
# Images are made with `docker import` from a busybox-static rootfs (no registry) and shipped as
# `docker save` tarballs in artifacts written by `mender-artifact write module-image -T docker`.
#  - v1 (molt's form: a container object with command, env, restart policy, network, health check;
#    the image only in the payload) installs and commits: the container runs, healthy, labelled;
#  - v2 failing its health check -> install fails with the check named, rollback: the very same v1
#    container runs again, v2's container is gone;
#  - a v2 whose container exits -> "exited with code 3", rollback, v1 runs;
#  - an image neither in the payload nor on the engine -> "image ... is missing", nothing changed;
#  - a payload whose image tarball was replaced (checksum mismatch): refused, and the engine never
#    loaded the image it carried (issue 12: the engine gets a payload file only once verified);
#  - v2 in Mender's community form (containers: [ref], run_args) installs; commit removes the v1
#    container and the v1 image (nothing else uses it);
#  - the engine stopped in the middle of an update (while the commit gate waits): a clear
#    "Docker engine unreachable" failure; rollback waits for the engine, which comes back, and
#    the previous container (v2) runs again, the new one is gone;
#  - molt killed (kill -9, alone) while the commit gate waits, `molt resume` at once: v3 removed,
#    the very same v2 container runs, as molt records (issue 12, part 3);
#  - a rollback while the engine is down: "rollback pending", status rollback-pending, a resume
#    with the engine still down keeps it (and the module's record); once the engine is back the
#    resume rolls back and v2 runs again (issue 12, part 4);
#  - a socket where no engine listens: "Docker engine unreachable at unix socket <path>";
#  - the conformance kit (molt-module-test) on the module with MOLT_DOCKER_SOCKET: happy path, a
#    failure in each state, a kill -9 in every state followed by recovery, rollback/cleanup twice.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/device.sh"
. "$(dirname "$0")/dockerd.sh"

DOCKER_SO="$MOLT_BUILD_DIR/modules/native/docker.so"
KIT="$MOLT_BUILD_DIR/sdk/tester/molt-module-test"
[ -f "$DOCKER_SO" ] || fail "docker module not built: $DOCKER_SO"
reason=$(dockerd_skip_reason)
[ -z "$reason" ] || fail "cannot run a Docker engine here: $reason"
command -v busybox >/dev/null || fail "busybox not installed (busybox-static, tools/deps.sh)"

# dockerd's folder: a short path (the socket must fit in sun_path)
DK=$(mktemp -d /tmp/molt-dk.XXXXXX)
cleanup_all() {
    dockerd_stop
    rm -rf "$DK" "$T"
}
trap cleanup_all EXIT
dockerd_start "$DK" || fail "dockerd did not start (log above)"
pass "dockerd runs on $DOCKERD_SOCK (pid $DOCKERD_PID)"

# image TAG VERSION: molt-test/app:TAG from a busybox rootfs; /version holds VERSION; its command
# prints it, marks itself ready (/tmp/ok) and sleeps, ending at once on SIGTERM.
image() {
    local r="$T/rootfs-$1" a
    mkdir -p "$r/bin" "$r/tmp" "$r/etc"
    cp "$(command -v busybox)" "$r/bin/busybox"
    for a in sh sleep cat touch test true false echo; do ln -sf busybox "$r/bin/$a"; done
    printf '%s\n' "$2" >"$r/version"
    tar -C "$r" -c . | $DOCKER import \
        -c 'CMD ["/bin/sh", "-c", "trap \"exit 0\" TERM; cat /version; touch /tmp/ok; while :; do sleep 1 & wait $!; done"]' \
        - "molt-test/app:$1" >/dev/null || fail "docker import $1"
    $DOCKER save -o "$T/app-$1.tar" "molt-test/app:$1" || fail "docker save $1"
}
image v1 "app 1"
image v2 "app 2"
image v3 "app 3"
# the artifacts carry the images: the engine must get them from the payload
$DOCKER rmi molt-test/app:v1 molt-test/app:v2 molt-test/app:v3 >/dev/null

device_new docker dev-a
mkdir -p "$DEV/native"
cp "$DOCKER_SO" "$DEV/native/docker.so"
device_config "native_module_dir: $DEV/native" "modules:" "  docker:" "    socket: $DOCKERD_SOCK" \
    "    stop_timeout: 5" "    engine_timeout: 600" "    pull: false"

# spec NAME IMAGE HEALTH_TEST [EXTRA_JSON]: molt's form for the app "web"
spec() {
    cat >"$T/$1.json" <<JSON
{"app": "web", "health_timeout": 300,
 "containers": [{"name": "web", "image": "$2", "env": {"MODE": "$1"}, "restart": "unless-stopped",
                 "network": "none", "labels": {"test": "molt"},
                 "healthcheck": {"test": "$3", "interval": "200ms", "timeout": 60, "retries": 2}${4:-}}]}
JSON
}
artifact() {  # NAME META [TAR...]
    local name=$1 meta=$2 args=() f
    shift 2
    for f in "$@"; do args+=(-f "$T/app-$f.tar"); done
    make_artifact "$T/$name.mender" "$name" docker -m "$meta" "${args[@]}"
}

spec v1 molt-test/app:v1 "test -f /tmp/ok"
artifact v1 "$T/v1.json" v1
spec v2bad molt-test/app:v2 "test -f /tmp/never"
artifact v2bad "$T/v2bad.json" v2
spec v2exit molt-test/app:v2 "true" ', "command": ["sh", "-c", "exit 3"]'
artifact v2exit "$T/v2exit.json" v2
spec missing molt-test/app:nowhere "true"
artifact missing "$T/missing.json"
cat >"$T/v2.json" <<'JSON'
{"app": "web", "containers": ["molt-test/app:v2"],
 "run_args": "--name web --network none -e MODE=v2 --restart unless-stopped --health-cmd 'test -f /tmp/ok' --health-interval 200ms"}
JSON
artifact v2 "$T/v2.json" v2
spec v3slow molt-test/app:v3 "test -f /tmp/never" ', "command": ["sh", "-c", "trap \"exit 0\" TERM; while :; do sleep 1 & wait $!; done"]'
sed -i 's/"health_timeout": 300/"health_timeout": 3600/' "$T/v3slow.json"
artifact v3slow "$T/v3slow.json" v3

# web_state: "<name> <image> <status> <health> <label>" of the app's containers, sorted
web_state() {
    $DOCKER ps -a --filter label=io.molt.app=web \
        --format '{{.Names}} {{.Image}} {{.State}} {{.Label "io.molt.app"}}' | sort
}
web_id() { $DOCKER inspect -f '{{.Id}}' web; }
health() { $DOCKER inspect -f '{{.State.Health.Status}}' web; }

# ---- v1 ---------------------------------------------------------------------------------------------
molt_dev install "$T/v1.mender"
expect_rc 0 "install v1"
molt_dev commit
expect_rc 0 "commit v1"
assert_eq "web molt-test/app:v1 running web" "$(web_state)" "containers after v1"
assert_eq healthy "$(health)" "v1's health"
assert_eq "app 1" "$($DOCKER logs web 2>&1 | head -n 1)" "v1's output"
$DOCKER inspect -f '{{range .Config.Env}}{{println .}}{{end}}' web | grep -qx MODE=v1 || fail "v1: env not set"
assert_eq "unless-stopped none molt" "$($DOCKER inspect -f '{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.NetworkMode}} {{index .Config.Labels "test"}}' web)" "v1's restart policy, network, labels"
V1_ID=$(web_id)
pass "v1 (image only in the payload, streamed into POST /images/load) installs, runs healthy, commits"

# ---- v2 failing its health check -> rollback ---------------------------------------------------------
molt_dev install "$T/v2bad.mender"
[ "$RUN_RC" != 0 ] || fail "v2 with a failing health check installed"
grep -q "container web (.*) is unhealthy: its health check failed" "$RUN_ERR" "$RUN_OUT" ||
    { cat "$RUN_ERR"; fail "no unhealthy message"; }
assert_eq "web molt-test/app:v1 running web" "$(web_state)" "containers after the rollback of v2bad"
assert_eq "$V1_ID" "$(web_id)" "the container running after the rollback is v1's"
pass "v2 failing its health check rolls back: the same v1 container runs again, v2's is gone"

molt_dev install "$T/v2exit.mender"
[ "$RUN_RC" != 0 ] || fail "v2 whose container exits installed"
grep -q "container web (.*) exited with code 3" "$RUN_ERR" "$RUN_OUT" || { cat "$RUN_ERR"; fail "no exit message"; }
assert_eq "$V1_ID" "$(web_id)" "v1 after the rollback of v2exit"
assert_eq "web molt-test/app:v1 running web" "$(web_state)" "containers after the rollback of v2exit"
pass "a container that exits fails the install with its exit code; v1 runs again"

molt_dev install "$T/missing.mender"
[ "$RUN_RC" != 0 ] || fail "an artifact with a missing image installed"
grep -q "image molt-test/app:nowhere of container web is missing" "$RUN_ERR" || { cat "$RUN_ERR"; fail "no missing-image message"; }
assert_eq "$V1_ID" "$(web_id)" "v1 after the missing image"
assert_eq running "$($DOCKER inspect -f '{{.State.Status}}' web)" "v1 still running"
pass "an image neither in the payload nor on the engine is refused in Download; v1 untouched"

# ---- a tampered image tarball: the engine never sees it -----------------------------------------------
spec v2t molt-test/app:v2 "true"
make_artifact "$T/v2t-orig.mender" v2t docker --compression none -m "$T/v2t.json" -f "$T/app-v2.tar"
python3 "$MOLT_SRC_DIR/tests/integration/tamper_payload.py" "$T/v2t-orig.mender" "$T/v2t.mender" \
    app-v2.tar "$T/app-v3.tar" || fail "tamper_payload.py"
molt_dev install "$T/v2t.mender"
[ "$RUN_RC" != 0 ] || fail "an artifact with a replaced image tarball installed"
grep -qi "checksum" "$RUN_ERR" || { cat "$RUN_ERR"; fail "no checksum message"; }
if $DOCKER image inspect molt-test/app:v3 >/dev/null 2>&1; then
    fail "the engine loaded molt-test/app:v3 from a payload file that failed its checksum"
fi
assert_eq "$V1_ID" "$(web_id)" "v1 after the tampered artifact"
pass "a replaced image tarball: refused (checksum), and the engine never loaded its image"

# ---- v2 (Mender's form) + commit removes v1 ----------------------------------------------------------
molt_dev install "$T/v2.mender"
expect_rc 0 "install v2"
assert_eq "$(printf 'web molt-test/app:v2 running web\nweb-molt-old-%.12s molt-test/app:v1 exited web' "$V1_ID")" \
    "$(web_state)" "containers before committing v2"
molt_dev commit
expect_rc 0 "commit v2"
assert_eq "web molt-test/app:v2 running web" "$(web_state)" "containers after committing v2"
assert_eq "app 2" "$($DOCKER logs web 2>&1 | head -n 1)" "v2's output"
$DOCKER image inspect molt-test/app:v1 >/dev/null 2>&1 && fail "commit left the v1 image"
$DOCKER image inspect molt-test/app:v2 >/dev/null 2>&1 || fail "commit removed the v2 image"
V2_ID=$(web_id)
pass "v2 in Mender's form (containers + run_args) installs; commit removes the v1 container and image"

# ---- the engine stopped in the middle of an update ---------------------------------------------------
molt_bg "$T/slow.out" install "$T/v3slow.mender"
wait_for_line "$T/slow.out.err" "waiting up to 3600 s for 1 container"
dockerd_stop
wait_for_line "$T/slow.out.err" "Docker engine unreachable at unix socket $DOCKERD_SOCK"
wait_for_line "$T/slow.out.err" "does not answer: waiting up to 600 s"
dockerd_start "$DK" || fail "dockerd did not start again"
rc=0
wait "$MOLT_BG_PID" || rc=$?
[ "$rc" != 0 ] || fail "the install with the engine stopped in the middle succeeded"
grep -q "rollback complete" "$T/slow.out.err" || { cat "$T/slow.out.err"; fail "no completed rollback after the engine came back"; }
assert_eq "web molt-test/app:v2 running web" "$(web_state)" "containers after the engine came back"
assert_eq "$V2_ID" "$(web_id)" "v2 runs again after the engine came back"
dev_state | grep -qx idle || fail "molt is not idle after the engine came back"
pass "the engine stopped mid-update: a clear failure, rollback once it is back, v2 runs again"

# ---- molt killed (kill -9, alone) during the health gate, resume at once (issue 12, part 3) ---------
mark="$T/mark-gate"
MOLT_TEST_MARK=$mark molt_bg "$T/gate.out" install "$T/v3slow.mender"
disown "$MOLT_BG_PID"
wait_for_line "$T/gate.out.err" "waiting up to 3600 s for 1 container"
kill -9 "$MOLT_BG_PID"
molt_dev resume
assert_none_marked "$mark" "processes of the molt killed in the health gate still run"
grep -q "rollback complete" "$RUN_ERR" || { cat "$RUN_ERR"; fail "resume after the kill in the health gate did not roll back"; }
assert_eq idle "$(dev_state)" "state after the resume (kill in the health gate)"
assert_eq v2 "$(dev_artifact)" "artifact molt records after the kill in the health gate"
assert_eq "web molt-test/app:v2 running web" "$(web_state)" "containers = molt's record (v2) after the kill in the health gate"
assert_eq "$V2_ID" "$(web_id)" "the v2 container runs again after the kill in the health gate"
pass "kill -9 of molt in the health gate, resume at once: v3 removed, the same v2 container runs, as molt records"

# ---- a rollback while the engine is down stays pending until it is back (issue 12, part 4) ---------
spec v3ok molt-test/app:v3 "test -f /tmp/ok"
artifact v3ok "$T/v3ok.json" v3
molt_dev install "$T/v3ok.mender"
expect_rc 0 "install v3ok (awaiting commit)"
sed -i 's/engine_timeout: 600/engine_timeout: 2/' "$DEV_CONF"
KV_OLD="$DEV_DATA/native/docker/kv/old"
[ -s "$KV_OLD" ] || fail "the docker module recorded no previous containers ($KV_OLD)"
dockerd_stop
molt_dev rollback
expect_rc 1 "rollback with the engine down"
assert_match "rollback pending \(attempt 1\): .*Docker engine at $DOCKERD_SOCK does not answer.*run \`molt resume\`" \
    "$(cat "$RUN_ERR")" "rollback with the engine down says it is pending and what to do"
assert_eq rollback-pending "$(dev_state)" "status after the rollback with the engine down"
assert_match "does not answer" "$(json_get "$T/.status.json" deployment rollback_error)" "status names why the rollback waits"
[ -s "$KV_OLD" ] || fail "the record of the previous containers was dropped while the rollback is pending"
molt_dev resume
expect_rc 1 "resume with the engine still down"
assert_match "rollback pending \(attempt 2\)" "$(cat "$RUN_ERR")" "resume with the engine still down says the rollback stays pending"
assert_eq rollback-pending "$(dev_state)" "status after resume with the engine still down"
[ -s "$KV_OLD" ] || fail "the record of the previous containers was dropped by a resume while the engine is down"
dockerd_start "$DK" || fail "dockerd did not start again"
molt_dev resume
expect_rc 0 "resume once the engine is back"
grep -q "rollback complete" "$RUN_ERR" || { cat "$RUN_ERR"; fail "no completed rollback once the engine is back"; }
assert_eq idle "$(dev_state)" "state after the pending rollback ran"
assert_eq v2 "$(dev_artifact)" "artifact after the pending rollback ran"
assert_eq "web molt-test/app:v2 running web" "$(web_state)" "containers after the pending rollback ran"
assert_eq "$V2_ID" "$(web_id)" "the v2 container runs again after the pending rollback ran"
[ ! -e "$KV_OLD" ] || fail "the record of the previous containers is left after the rollback finished"
sed -i 's/engine_timeout: 2/engine_timeout: 600/' "$DEV_CONF"
pass "a rollback with the engine down stays pending (status, resume keeps it), runs once the engine is back: v2 runs again"

# ---- no engine at the configured socket ---------------------------------------------------------------
device_new nosock dev-a
mkdir -p "$DEV/native"
cp "$DOCKER_SO" "$DEV/native/docker.so"
device_config "native_module_dir: $DEV/native" "modules:" "  docker:" "    socket: $T/no-engine.sock"
molt_dev install "$T/v1.mender"
[ "$RUN_RC" != 0 ] || fail "an install without an engine succeeded"
grep -q "Docker engine unreachable at unix socket $T/no-engine.sock: GET /_ping" "$RUN_ERR" ||
    { cat "$RUN_ERR"; fail "no clear message for a missing engine"; }
assert_eq "$V2_ID" "$(web_id)" "the app after an install on a device without engine"
pass "no engine at the configured socket: Download fails naming the socket"

# ---- the conformance kit: a kill in every state, recovery, idempotency --------------------------------
[ -x "$KIT" ] || fail "the conformance kit is not built: $KIT"
spec kit molt-test/app:v3 "test -f /tmp/ok"
sed -i -e 's/"app": "web"/"app": "kit"/' -e 's/"name": "web"/"name": "kitweb"/' "$T/kit.json"
mender-artifact write module-image -T docker -n kit-docker-1 -t kit-device -o "$T/kit.mender" \
    -m "$T/kit.json" -f "$T/app-v3.tar" >/dev/null || fail "kit artifact"
RUN_TIMEOUT=900 MOLT_DOCKER_SOCKET="$DOCKERD_SOCK" run_prog "$KIT" "$DOCKER_SO" "$T/kit.mender"
cat "$RUN_OUT"
expect_rc 0 "the conformance kit on the docker module"
grep -qx 'PASS kill-ArtifactInstall' "$RUN_OUT" || fail "the kit did not kill in ArtifactInstall"
grep -qx 'PASS ArtifactRollback-twice' "$RUN_OUT" || fail "the kit did not check rollback twice"
# Effects, through the probe of docker.yaml beside the module: a cut right after ArtifactCommit
# rolls back, so the previous versions must still be there (they go in Cleanup).
for c in effect-install effect-rollback effect-commit effect-kill-ArtifactCommit effect-fail-ArtifactCommit effect-checksum-end; do
    grep -qx "PASS $c" "$RUN_OUT" || fail "the kit: no passing $c"
done
n=$($DOCKER ps --filter label=io.molt.app=kit --filter status=running -q | wc -l)
assert_eq 1 "$n" "running containers of the kit's app after the kit"
pass "the docker module passes the conformance kit (kill -9 in every state, then recovery)"
