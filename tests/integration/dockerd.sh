#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# A private, real dockerd for the docker module's tests: its own data-root, exec-root, socket and
# pidfile under a folder, vfs storage, no iptables, no bridge. Source it, then:
#   dockerd_start DIR     start dockerd with everything under DIR (short path: the socket path
#                         must fit in sun_path); sets DOCKERD_SOCK, DOCKERD_PID, DOCKER (a docker
#                         command line talking to it); waits until `docker version` answers
#   dockerd_stop          stop it by its pid (TERM, then KILL after 20 s) and wait for it
#   dockerd_skip_reason   why dockerd cannot run here (empty when it can)
# Callers install `trap dockerd_stop EXIT` (or call it from their own trap).

dockerd_skip_reason() {
    command -v dockerd >/dev/null 2>&1 || { echo "dockerd not installed (apt-get install docker.io)"; return; }
    command -v docker >/dev/null 2>&1 || { echo "docker CLI not installed"; return; }
    [ "$(id -u)" = 0 ] || { echo "dockerd needs root"; return; }
    echo ""
}

dockerd_start() {
    local dir=$1 i
    mkdir -p "$dir/data" "$dir/exec"
    DOCKERD_SOCK=$dir/docker.sock
    DOCKERD_LOG=$dir/dockerd.log
    # containerd: dockerd starts its own managed containerd (state under exec-root) when none is
    # given with --containerd
    dockerd --data-root "$dir/data" --exec-root "$dir/exec" -H "unix://$DOCKERD_SOCK" \
        --pidfile "$dir/dockerd.pid" --storage-driver=vfs --iptables=false --ip6tables=false \
        --bridge=none --ip-masq=false --userland-proxy=false --log-level=warn \
        >"$DOCKERD_LOG" 2>&1 &
    DOCKERD_PID=$!
    DOCKER="docker -H unix://$DOCKERD_SOCK"
    export DOCKERD_SOCK DOCKERD_PID DOCKERD_LOG DOCKER
    local end=$((SECONDS + ${MOLT_TEST_GUARD:-600}))   # a guard against a hang (lib.sh)
    while [ "$SECONDS" -lt "$end" ]; do
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
            echo "dockerd exited while starting; its log:" >&2
            cat "$DOCKERD_LOG" >&2
            DOCKERD_PID=
            return 1
        fi
        $DOCKER version >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "dockerd did not answer within ${MOLT_TEST_GUARD:-600} s; its log:" >&2
    cat "$DOCKERD_LOG" >&2
    dockerd_stop
    return 1
}

dockerd_stop() {
    local i
    [ -n "${DOCKERD_PID:-}" ] || return 0
    if kill -0 "$DOCKERD_PID" 2>/dev/null; then
        kill -TERM "$DOCKERD_PID" 2>/dev/null
        for i in $(seq 1 200); do
            kill -0 "$DOCKERD_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID" 2>/dev/null
    fi
    wait "$DOCKERD_PID" 2>/dev/null
    DOCKERD_PID=
    return 0
}
