#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Benchmark: two builds of molt compared on the small update of bench/small_update.sh
# (`molt install` + `molt commit` of its 1 KiB single-file artifact, native file module), finer
# than that script: the builds alternate round by round (A then B, B then A), each on its own
# device with its own file.so, and the medians are printed in microseconds for the install, the
# commit and both. Differences of 0.05 ms show over ~100 rounds; the same build against itself
# differs by 0.01-0.03 ms. No limit program and no Mender here: bench/small_update.sh compares
# with them. Not part of ctest.
#
# Usage: bench/small_ab.sh BUILD_A BUILD_B [ROUNDS]    (ROUNDS=101; each a build dir with
#                                                      core/molt and modules/native/file.so)
#        PRELOAD=/usr/lib/x86_64-linux-gnu/libeatmydata.so bench/small_ab.sh ...  stubs the syncs
#        (the CPU alone; libeatmydata from Debian's eatmydata).
# Times are bash's $EPOCHREALTIME around each command, started straight from the timing shell,
# in a private mount namespace where a scratch folder is the artifact's target.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out="$top/bench/out"
[ $# -ge 2 ] || { sed -n '11,14s/^# \{0,1\}//p' "$0" >&2; exit 2; }
a=$(cd "$1" && pwd) b=$(cd "$2" && pwd) rounds=${3:-101}
mkdir -p "$out"
echo '*' >"$out/.gitignore"

. "$top/bench/lib.sh"
for d in "$a" "$b"; do
    [ -x "$d/core/molt" ] && [ -f "$d/modules/native/file.so" ] ||
        { echo "no core/molt or modules/native/file.so in $d" >&2; exit 1; }
done
if [ -n "${PRELOAD:-}" ] && [ ! -f "$PRELOAD" ]; then
    echo "PRELOAD=$PRELOAD: no such file" >&2
    exit 1
fi
molt_artifact="$a/sdk/artifact/molt-artifact"
[ -x "$molt_artifact" ] || molt_artifact="$b/sdk/artifact/molt-artifact"
fixed=/tmp/molt-bench-small-target
mkdir -p "$fixed"
bench_small_artifact "$fixed"

sb=$(mktemp -d "${TMPDIR:-/tmp}/molt-bench-ab.XXXXXX")
trap 'rm -rf "$sb"' EXIT
(file_so="$a/modules/native/file.so"; bench_molt_device "$sb/a")
(file_so="$b/modules/native/file.so"; bench_molt_device "$sb/b")
mkdir -p "$sb/target/opt/app"
head -c 1024 /dev/zero >"$sb/target/opt/app/app.conf"

# The rounds, in a private mount namespace with the scratch target over $fixed. The first
# install + commit of each device builds its registry cache and is not counted.
SB="$sb" FIXED="$fixed" A="$a" B="$b" N="$rounds" ART="$art" P="${PRELOAD:-}" \
    MOLT_FILE_ALLOWED_ROOTS="$fixed" unshare -m bash -c '
    set -e
    mount --bind "$SB/target" "$FIXED"
    run() {  # BUILD DEVICE: install then commit, their times appended to DEVICE.{i,c,s}
        local t0 t1 t2
        t0=$EPOCHREALTIME
        LD_PRELOAD=$P "$1/core/molt" --config "$2/molt.yaml" install "$ART" >/dev/null 2>>"$2.err" ||
            { cat "$2.err" >&2; echo "molt install failed: $1" >&2; exit 1; }
        t1=$EPOCHREALTIME
        LD_PRELOAD=$P "$1/core/molt" --config "$2/molt.yaml" commit >/dev/null 2>>"$2.err" ||
            { cat "$2.err" >&2; echo "molt commit failed: $1" >&2; exit 1; }
        t2=$EPOCHREALTIME
        echo $(( ${t1/./} - ${t0/./} )) >>"$2.i"
        echo $(( ${t2/./} - ${t1/./} )) >>"$2.c"
        echo $(( ${t2/./} - ${t0/./} )) >>"$2.s"
    }
    run "$A" "$SB/a"; run "$B" "$SB/b"
    rm -f "$SB"/a.[ics] "$SB"/b.[ics]
    for ((k = 0; k < N; k++)); do
        if ((k % 2)); then run "$A" "$SB/a"; run "$B" "$SB/b"; else run "$B" "$SB/b"; run "$A" "$SB/a"; fi
    done'
cmp -s "$payload" "$sb/target/opt/app/app.conf" || { echo "molt installed a different file" >&2; exit 1; }

echo "install + commit of a 1 KiB single-file artifact; medians of $rounds rounds, builds alternated"
echo "$(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)${PRELOAD:+, LD_PRELOAD=$PRELOAD}"
printf '%-3s %9s %9s %9s  %s\n' "" "install" "commit" "both" "(microseconds)"
for x in a b; do
    d=$a
    [ $x = a ] || d=$b
    printf '%-3s %9s %9s %9s  %s\n' "${x^^}" "$(median <"$sb/$x.i")" "$(median <"$sb/$x.c")" \
        "$(median <"$sb/$x.s")" "$d"
done
