# SPDX-License-Identifier: Apache-2.0
# Shared helpers for the integration tests (tests/integration/test_*.sh). Source it first:
#     . "$(dirname "$0")/lib.sh"
# ctest runs each test as `bash test_x.sh` with MOLT_SRC_DIR, MOLT_BUILD_DIR and MOLT_SANITIZE set;
# run by hand, MOLT_BUILD_DIR defaults to $MOLT_SRC_DIR/build/gcc.
#
# What it gives a test:
#   $T                     a fresh temporary folder, removed when the script exits (any way)
#   $MOLT, $MOLT_ARTIFACT  paths of the built programs (checked to exist when first used)
#   fail MSG...            print "FAIL: MSG" to stderr and exit 1
#   assert_eq WANT GOT MSG fail unless the two strings are equal
#   assert_match REGEX TEXT MSG   fail unless TEXT matches the extended regular expression
#   run_prog PROG ARGS...  run a program capturing $RUN_RC, $RUN_OUT, $RUN_ERR (file paths for the
#                          output); fails the test on a crash (exit >= 128) or a sanitizer report,
#                          whatever the exit code; never stops the script on a non-zero exit
#                          RUN_TIMEOUT (seconds, default 2 x MOLT_TEST_GUARD) bounds its time (a
#                          guard against a hang, see "Waiting" below): a timeout fails the
#                          test; RUN_AS_LIMIT (e.g. 1G) caps its address space with prlimit, except
#                          in sanitizer builds (ASan reserves terabytes of address space)
#   run_molt_artifact ARGS...   run_prog "$MOLT_ARTIFACT" ARGS...
#   expect_rc WANT MSG     fail unless $RUN_RC of the last run_prog is WANT (shows its stderr)
#   peak_rss_kib           after run_prog: peak resident memory of that run in KiB (GNU time)
#   pass MSG               print "ok: MSG" (progress for the ctest log)
#
# Scenarios: a script with a line "# ctest: scenarios" names its cases, and tests/CMakeLists.txt
# registers one ctest entry per case (integration/test_x/NAME, listed at configure time with
# `bash test_x.sh --list`). Run by hand, `bash test_x.sh NAME` runs the one case NAME, and
# `bash test_x.sh` all of them, as before.
#   scenario NAME          true when this run includes the case NAME (no argument: every case;
#                          an argument: that case only); with --list it prints NAME (once) and is
#                          false, so a script must do its setup lazily, after its first `scenario`
#                          (once). Several calls may name one scenario: a group of cases sharing
#                          a setup too costly to repeat for each
#   once FUNC              run FUNC (a setup function) the first time only
#   scenarios_end          last line of such a script: fails when the case asked for does not exist
#
# Waiting: never a sleep as synchronisation. A test waits for a condition (a handshake file, a
# log line, the server's state) and the deadline of such a wait is only a guard against a hang:
#   MOLT_TEST_GUARD        seconds (default 600) a wait_* helper waits at least, however short
#                          the SECONDS its caller names (those were sized for a quiet machine)
set -euo pipefail

MOLT_TEST_GUARD=${MOLT_TEST_GUARD:-600}
MOLT_SCENARIO=${1:-}
MOLT_SCENARIO_SEEN=

declare -A MOLT_SCENARIO_LISTED=()
scenario() {  # NAME
    if [ "$MOLT_SCENARIO" = --list ]; then
        [ -n "${MOLT_SCENARIO_LISTED[$1]:-}" ] || printf '%s\n' "$1"
        MOLT_SCENARIO_LISTED[$1]=1
        return 1
    fi
    [ -z "$MOLT_SCENARIO" ] || [ "$MOLT_SCENARIO" = "$1" ] || return 1
    MOLT_SCENARIO_SEEN=1
}

once() {  # FUNC
    local v="MOLT_ONCE_$1"
    [ -z "${!v:-}" ] || return 0
    printf -v "$v" 1
    "$1"
}

scenarios_end() {
    [ "$MOLT_SCENARIO" = --list ] && exit 0
    [ -z "$MOLT_SCENARIO" ] || [ -n "$MOLT_SCENARIO_SEEN" ] || fail "no scenario named '$MOLT_SCENARIO'"
}

# The deadline of a wait: at least MOLT_TEST_GUARD seconds, or the caller's SECONDS if longer.
guard_deadline() {  # [SECONDS]
    local s=${1:-0}
    [ "$s" -ge "$MOLT_TEST_GUARD" ] || s=$MOLT_TEST_GUARD
    echo $((SECONDS + s))
}

MOLT_SRC_DIR=${MOLT_SRC_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
MOLT_BUILD_DIR=${MOLT_BUILD_DIR:-$MOLT_SRC_DIR/build/gcc}
MOLT_SANITIZE=${MOLT_SANITIZE:-OFF}
MOLT="$MOLT_BUILD_DIR/core/molt"
MOLT_ARTIFACT="$MOLT_BUILD_DIR/sdk/artifact/molt-artifact"
# Leaks make an ASan build exit non-zero, which a test must see as a failure, not as "refused".
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

T=$(mktemp -d "${TMPDIR:-/tmp}/molt-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

pass() {
    echo "ok: $*"
}

assert_eq() {  # WANT GOT MSG
    [ "$1" = "$2" ] || fail "$3: expected '$1', got '$2'"
}

assert_match() {  # REGEX TEXT MSG
    [[ "$2" =~ $1 ]] || fail "$3: '$2' does not match /$1/"
}

RUN_RC=0
RUN_OUT="$T/.run.out"
RUN_ERR="$T/.run.err"
RUN_TIME="$T/.run.time"

run_prog() {  # PROG ARGS...
    [ -x "$1" ] || fail "program not built: $1"
    local wrap=(timeout -k 5 "${RUN_TIMEOUT:-$((MOLT_TEST_GUARD * 2))}")
    if [ -n "${RUN_AS_LIMIT:-}" ] && [ "$MOLT_SANITIZE" != ON ]; then
        wrap+=(prlimit "--as=$(numfmt --from=iec "$RUN_AS_LIMIT")")
    fi
    RUN_RC=0
    # GNU time writes its one line (peak RSS in KiB) to its own file so stderr stays the program's.
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -o "$RUN_TIME" -f '%M' "${wrap[@]}" "$@" >"$RUN_OUT" 2>"$RUN_ERR" || RUN_RC=$?
    else
        "${wrap[@]}" "$@" >"$RUN_OUT" 2>"$RUN_ERR" || RUN_RC=$?
        echo 0 >"$RUN_TIME"
    fi
    if [ "$RUN_RC" = 124 ]; then
        cat "$RUN_ERR" >&2
        fail "$(basename "$1") ${*:2}: timed out (exit 124; RUN_TIMEOUT=${RUN_TIMEOUT:-$((MOLT_TEST_GUARD * 2))} s)"
    fi
    # GNU time reports a death by signal as "Command terminated by signal N" and exits 128+N.
    if [ "$RUN_RC" -ge 128 ] || grep -q 'terminated by signal' "$RUN_TIME" 2>/dev/null; then
        cat "$RUN_ERR" >&2
        fail "$(basename "$1") ${*:2}: crashed (exit $RUN_RC)"
    fi
    if grep -qE '(AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer)|runtime error:' "$RUN_ERR"; then
        cat "$RUN_ERR" >&2
        fail "$(basename "$1") ${*:2}: sanitizer report"
    fi
}

run_molt_artifact() {
    run_prog "$MOLT_ARTIFACT" "$@"
}

expect_rc() {  # WANT MSG
    if [ "$RUN_RC" != "$1" ]; then
        echo "--- stdout:" >&2; head -c 4000 "$RUN_OUT" >&2
        echo "--- stderr:" >&2; head -c 4000 "$RUN_ERR" >&2
        fail "$2: exit code $RUN_RC, expected $1"
    fi
}

peak_rss_kib() {
    tail -n 1 "$RUN_TIME"
}
