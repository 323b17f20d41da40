#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# tools/layering.sh [SRC]: check that the include arrows between the units of SRC/core (default:
# this tree) go the way the design says (docs/layout.md "Layering"):
#     cli → state → {host, server, transport} → artifact → trust → util,   config → util,
# with two arrows the chain does not draw: server → transport (the server client talks HTTP with
# the transport's libcurl and curl policy) and {state, host} → config (they read settings; the
# units below take plain values, so molt-artifact and libmolt-sdk use them without a
# configuration). A unit includes its own headers and every unit below it; <molt/*.h>, the
# public SDK headers, from anywhere. Prints each include that breaks the rule as
#     core/<file>:<line>: #include "<dir>/<header>": <unit> → <dir> is not an arrow of the design
# and exits 1; a folder of core/ without a rule here fails too. Exit 0 and one summary line
# when all hold. integration/test_layering runs it.
set -euo pipefail
src=${1:-$(cd "$(dirname "$0")/.." && pwd)}
core="$src/core"
[ -d "$core" ] || { echo "layering: no folder $core" >&2; exit 2; }

# What each unit may include besides itself.
declare -A may=(
    [util]=""
    [trust]="util"
    [artifact]="trust util"
    [transport]="artifact trust util"
    [server]="transport artifact trust util"
    [host]="config artifact trust util"
    [config]="util"
    [state]="host server transport config artifact trust util"
    [cli]="state host server transport config artifact trust util"
)

bad=0
units=""
for dir in "$core"/*/; do
    unit=$(basename "$dir")
    if [ -z "${may[$unit]+set}" ]; then
        echo "core/$unit: a unit the layering rule does not know: add it to tools/layering.sh" \
             "and docs/layout.md"
        bad=1
    else
        units+="$unit "
    fi
done
rules=""
for unit in "${!may[@]}"; do
    rules+="$unit=${may[$unit]};"
done

# One pass over every file of the known units: "dir/x.h" and <dir/x.h> whose dir is a unit of
# core/ (or molt/, the SDK's); a quoted "other/x.h" names no unit.
cd "$src"
mapfile -t files < <(for u in $units; do find "core/$u" -type f \( -name '*.c' -o -name '*.h' \); done | sort)
[ "${#files[@]}" -gt 0 ] || { echo "layering: no source files in $core" >&2; exit 2; }
summary=$(awk -v rules="$rules" '
    BEGIN {
        n = split(rules, r, ";")
        for (i = 1; i <= n; i++) {
            if (r[i] == "") continue
            eq = index(r[i], "=")
            u = substr(r[i], 1, eq - 1)
            known[u] = 1
            list[u] = substr(r[i], eq + 1)
            m = split(list[u], below, " ")
            for (j = 1; j <= m; j++) may[u, below[j]] = 1
        }
    }
    FNR == 1 { files++; split(FILENAME, p, "/"); unit = p[2] }
    /^[ \t]*#[ \t]*include[ \t]*["<][^">]+[">]/ {
        line = $0
        sub(/^[ \t]*#[ \t]*include[ \t]*/, "", line)
        quote = substr(line, 1, 1)
        target = substr(line, 2)
        sub(/[">].*/, "", target)
        slash = index(target, "/")
        if (slash == 0) next                      # "x.h": the unit'"'"'s own folder
        to = substr(target, 1, slash - 1)
        if (to == "molt") next                    # the public SDK headers
        if (!(to in known)) {
            if (quote == "\"") {                   # <curl/curl.h>, <sys/stat.h>: not ours
                printf "%s:%d: #include \"%s\": %s is not a unit of core/\n", FILENAME, FNR, target, to
                bad = 1
            }
            next
        }
        if (to == unit) next
        arrows++
        if (!((unit, to) in may)) {
            printf "%s:%d: #include \"%s\": %s \342\206\222 %s is not an arrow of the design (%s may include: %s)\n",
                FILENAME, FNR, target, unit, to, unit, list[unit] == "" ? "nothing but itself" : list[unit]
            bad = 1
        }
    }
    END { printf "%s%d %d\n", bad ? "BAD " : "", files, arrows }' "${files[@]}") || exit 2
last=$(printf '%s\n' "$summary" | tail -n 1)
case $last in
    BAD*) bad=1 ;;
esac
printf '%s\n' "$summary" | sed '$d'
read -r n_files arrows <<<"${last#BAD }"
if [ "$bad" -ne 0 ]; then
    echo "layering: the include arrows above break the rule (docs/layout.md \"Layering\")" >&2
    exit 1
fi
echo "layering: $n_files files of core/, $arrows includes across units, all along the design's arrows"
