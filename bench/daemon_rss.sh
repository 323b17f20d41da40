#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: the resident memory of an idle `molt daemon` polling a server. The test server of
# the fleet tests (tests/server/mender_api.py, HTTPS on loopback with a throw-away CA) accepts the
# device; the daemon polls for an update every POLL seconds (no deployment) and the script samples
# the daemon's /proc/<pid>/status (VmRSS, RssAnon, RssFile) once before the device is accepted
# (no request has succeeded yet) and SAMPLES times, one every 0.5 s, after the first inventory was
# sent. Each poll runs in a short-lived child (docs/performance.md): the samples are the parent
# between polls; the children's peak RSS and CPU time come from the daemon's debug log (wait4's
# rusage of each job). Prints the median and the minimum, the children's peaks, and the libraries the
# parent maps at the end. Not part of ctest. Goal of issue 18: 4 MiB between polls.
#
# Usage: bench/daemon_rss.sh      (POLL=5; SAMPLES=20; MOLT_BUILD_DIR: a build with molt,
#                                  default build/bench made as the other benchmarks do;
#                                  BASELINE_BUILD_DIR=another build of molt and file.so, e.g.
#                                  of the commit before a change: measured the same way first)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/bench/lib.sh"
bench_build_file
export MOLT_SRC_DIR=$top MOLT_BUILD_DIR=$build
poll=${POLL:-5}
samples=${SAMPLES:-20}
if [ -n "${BASELINE_BUILD_DIR:-}" ]; then
    BENCH_LABEL="baseline $BASELINE_BUILD_DIR" MOLT_BUILD_DIR=$BASELINE_BUILD_DIR BASELINE_BUILD_DIR= "$0"
    echo
fi

. "$top/tests/integration/lib.sh"
. "$top/tests/integration/device.sh"
. "$top/tests/integration/fleet.sh"
set +e   # the test helpers check what they run themselves

fleet_device
sed -i "s|update_poll_interval: 1|update_poll_interval: $poll|" "$DEV_CONF"
fleet_server_start
sed -i "s|url: .*|url: $URL|" "$DEV_CONF"
molt_bg "$T/daemon.out" -v daemon
wait_mq 'any(d["status"] == "pending" for d in s["devices"].values())' 60
rss() { awk '/^VmRSS|^RssAnon|^RssFile/ { printf "%s ", $2 } END { print "" }' "/proc/$MOLT_BG_PID/status"; }
before=$(rss)
mctl '{"accept": true}'
wait_mq 'len(s["inventory"]) == 1' 60
sleep 1

: >"$T/rss"
for ((i = 0; i < samples; i++)); do
    rss >>"$T/rss"
    sleep 0.5
done
libs=$(awk '$6 ~ /\.so/ { n = split($6, p, "/"); print p[n] }' "/proc/$MOLT_BG_PID/maps" | sort -u | tr '\n' ' ')
# The parent's resident KiB per mapped file (and [heap], [stack], anonymous), largest first.
by_map=$(awk '/^[0-9a-f]+-[0-9a-f]+ / { n = split($6, p, "/"); name = $6 == "" ? "anonymous" : p[n] }
              /^Rss:/ { kib[name] += $2 }
              END { for (k in kib) if (kib[k] > 0) printf "%s %d\n", k, kib[k] }' "/proc/$MOLT_BG_PID/smaps" |
         sort -k2,2nr | awk '{ printf "%s %d KiB, ", $1, $2 }')
# What the parent costs the device beyond the pages it shares: Pss, and its private pages (USS).
rollup=$(awk '/^Pss:/ { pss = $2 } /^Private_(Clean|Dirty):/ { uss += $2 }
              END { printf "Pss %.1f MiB, private (USS) %.1f MiB", pss / 1024, uss / 1024 }' \
         "/proc/$MOLT_BG_PID/smaps_rollup")
daemon_stop

col() { awk -v c="$1" '{ print $c }' "$T/rss" | sort -n; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
echo "${BENCH_LABEL:-molt $build}: molt daemon, polling every $poll s, $samples samples 0.5 s apart; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-10s %10s %10s\n' "" "median" "minimum"
for c in 1:VmRSS 2:RssAnon 3:RssFile; do
    printf '%-10s %8s MiB %6s MiB\n' "${c#*:}" "$(mib "$(col "${c%%:*}" | median)")" "$(mib "$(col "${c%%:*}" | head -1)")"
done
printf '%-10s %s\n' "before" "$(echo "$before" | awk '{ printf "VmRSS %.1f MiB, RssAnon %.1f, RssFile %.1f (parent, device not accepted yet)", $1 / 1024, $2 / 1024, $3 / 1024 }')"
peaks() { sed -n "s/.*job $1: pid [0-9]*, peak RSS \([0-9]*\) KiB.*/\1/p" "$T/daemon.out.err"; }
cpu() { sed -n "s/.*job $1: pid [0-9]*, .*CPU \([0-9]*\) ms.*/\1/p" "$T/daemon.out.err"; }
for j in update inventory setup; do
    [ -n "$(peaks $j)" ] || continue
    printf 'children (%s): %s jobs, peak RSS median %s MiB, maximum %s MiB; CPU median %s ms\n' "$j" \
        "$(peaks $j | wc -l)" "$(mib "$(peaks $j | median)")" "$(mib "$(peaks $j | sort -n | tail -1)")" \
        "$(cpu $j | median)"
done
echo "libraries mapped by the parent: $libs"
echo "the parent's RSS by mapping: ${by_map%, }"
echo "the parent at the end: $rollup"
echo "goal (issue 18): VmRSS <= 4.0 MiB between polls: $(awk -v k="$(col 1 | median)" 'BEGIN { print (k <= 4096 ? "met" : "not met") }')"
