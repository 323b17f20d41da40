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
n_files=0
n_arrows=0
for dir in "$core"/*/; do
    unit=$(basename "$dir")
    if [ -z "${may[$unit]+set}" ]; then
        echo "core/$unit: a unit the layering rule does not know: add it to tools/layering.sh" \
             "and docs/layout.md"
        bad=1
        continue
    fi
    while IFS= read -r f; do
        n_files=$((n_files + 1))
        rel=${f#"$src"/}
        # "dir/x.h" and <dir/x.h> whose dir is a unit of core/ (or molt/, the SDK's)
        while IFS=: read -r line target; do
            quote=${target:0:1}
            target=${target:1}
            to=${target%%/*}
            [ "$to" = "$target" ] && continue            # "x.h": the unit's own folder
            [ "$to" = molt ] && continue                 # the public SDK headers
            if [ -z "${may[$to]+set}" ]; then
                # <curl/curl.h>, <sys/stat.h>: not ours; a quoted "other/x.h" names no unit
                [ "$quote" = '"' ] || continue
                echo "$rel:$line: #include \"$target\": $to is not a unit of core/"
                bad=1
                continue
            fi
            [ "$to" = "$unit" ] && continue
            n_arrows=$((n_arrows + 1))
            case " ${may[$unit]} " in
                *" $to "*) ;;
                *)
                    echo "$rel:$line: #include \"$target\": $unit → $to is not an arrow of the" \
                         "design ($unit may include: ${may[$unit]:-nothing but itself})"
                    bad=1
                    ;;
            esac
        done < <(grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*["<][^">]+[">]' "$f" |
                 sed -E 's/^([0-9]+):[[:space:]]*#[[:space:]]*include[[:space:]]*(["<])([^">]+)[">].*/\1:\2\3/')
    done < <(find "$dir" -type f \( -name '*.c' -o -name '*.h' \) | sort)
done
if [ "$bad" -ne 0 ]; then
    echo "layering: the include arrows above break the rule (docs/layout.md \"Layering\")" >&2
    exit 1
fi
echo "layering: $n_files files of core/, $n_arrows includes across units, all along the design's arrows"
