#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Runs every test: installs what is missing, builds with gcc (warnings are errors) and runs the
# suite, then builds with clang under ASan+UBSan and runs the suite again.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
jobs=$(nproc)

"$top/tools/deps.sh"

run_suite() {  # name, compiler, extra cmake args...
  local dir="$top/build/$1" cc=$2
  shift 2
  echo "=== $dir ($cc $*)"
  cmake -S "$top" -B "$dir" -DCMAKE_C_COMPILER="$cc" -DMOLT_WERROR=ON -DMOLT_BUILD_TESTS=ON "$@" >/dev/null
  cmake --build "$dir" -j "$jobs"
  (cd "$dir" && ctest --output-on-failure -j "$jobs" --timeout 900)
}

run_suite gcc gcc
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  run_suite asan clang -DMOLT_SANITIZE=ON
