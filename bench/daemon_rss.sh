#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: the resident memory of an idle `molt daemon` polling a server. The test server of
# the fleet tests (tests/server/mender_api.py, HTTPS on loopback with a throw-away CA) accepts the
# device; the daemon polls for an update every POLL seconds (no deployment) and the script samples
# /proc/<pid>/status (VmRSS, RssAnon, RssFile) SAMPLES times, one every 0.5 s, after the first
# inventory was sent. Prints the median and the minimum (the minimum is between polls), and the
# libraries mapped at the end. Not part of ctest. Goal of issue 18: 4 MiB between polls.
#
# Usage: bench/daemon_rss.sh      (POLL=5; SAMPLES=20; MOLT_BUILD_DIR: a build with molt,
#                                  default build/bench made as the other benchmarks do)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/lib.sh"
bench_build_file
export MOLT_SRC_DIR=$top MOLT_BUILD_DIR=$build
poll=${POLL:-5}
samples=${SAMPLES:-20}

. "$top/tests/integration/lib.sh"
. "$top/tests/integration/device.sh"
. "$top/tests/integration/fleet.sh"
set +e   # the test helpers check what they run themselves

fleet_device
sed -i "s|update_poll_interval: 1|update_poll_interval: $poll|" "$DEV_CONF"
fleet_server_start
daemon_start
wait_mq 'any(d["status"] == "pending" for d in s["devices"].values())' 60
mctl '{"accept": true}'
wait_mq 'len(s["inventory"]) == 1' 60
sleep 1

: >"$T/rss"
for ((i = 0; i < samples; i++)); do
    awk '/^VmRSS|^RssAnon|^RssFile/ { printf "%s ", $2 } END { print "" }' "/proc/$MOLT_BG_PID/status" >>"$T/rss"
    sleep 0.5
done
libs=$(awk '$6 ~ /\.so/ { n = split($6, p, "/"); print p[n] }' "/proc/$MOLT_BG_PID/maps" | sort -u | tr '\n' ' ')
daemon_stop

col() { awk -v c="$1" '{ print $c }' "$T/rss" | sort -n; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "molt daemon, polling every $poll s, $samples samples 0.5 s apart; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %10s %10s\n' "" "median" "minimum"
for c in 1:VmRSS 2:RssAnon 3:RssFile; do
    printf '%-10s %8s MiB %6s MiB\n' "${c#*:}" "$(mib "$(col "${c%%:*}" | median)")" "$(mib "$(col "${c%%:*}" | head -1)")"
done
echo "libraries mapped: $libs"
