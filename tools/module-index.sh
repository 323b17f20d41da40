#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# Validate every module manifest of the repository (modules/*/module.yaml and
# sdk/templates/*/module.yaml) and write modules/index.yaml from them, sorted by name.
#   tools/module-index.sh [--check] [BUILD_DIR]
# --check: write nothing; exit 1 when modules/index.yaml is stale or a manifest is invalid.
# BUILD_DIR holds sdk/tester/molt-module-index (default: build/gcc, else molt-module-index on PATH).
set -eu
cd "$(dirname "$0")/.."
check=
if [ "${1:-}" = --check ]; then check=1; shift; fi
tool=${1:-build/gcc}/sdk/tester/molt-module-index
[ -x "$tool" ] || tool=$(command -v molt-module-index) || {
    echo "module-index.sh: molt-module-index not built (give the build folder)" >&2; exit 2; }
set -- modules/*/module.yaml sdk/templates/*/module.yaml
manifests=
for m in "$@"; do [ -f "$m" ] && manifests="$manifests $m"; done
# shellcheck disable=SC2086 # paths in this repository have no spaces
if [ -n "$check" ]; then
    exec "$tool" --check modules/index.yaml $manifests
fi
"$tool" -o modules/index.yaml $manifests
echo "wrote modules/index.yaml"
