#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Every source file starts with one SPDX line (after the #! line of a script):
#   tools/spdx.sh --check   lists the source files without one; exit 1 when there are any
#   tools/spdx.sh --fix     adds "SPDX-License-Identifier: Apache-2.0" in the file's comment
#                           syntax to each of them, touching nothing else
#   tools/spdx.sh --list    prints the files that count as source
# Source: *.c *.h *.sh *.py *.lua *.cmake *.in *.service, CMakeLists.txt, debian/rules and the
# maintainer scripts, the bash completions, and any other file starting with "#!". Not source:
# documentation (*.md), data (YAML, test corpora, expected outputs) and the files that came from
# elsewhere and keep their own notices (tests/server/openapi, listed in debian/copyright).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
LICENSE_ID=Apache-2.0

usage() {
    sed -n '3,10s/^# \{0,1\}//p' "$0"
    exit "${1:-0}"
}

# All files of the tree: git's view when this is a work tree (tracked and new files, not the
# ignored build folders), else everything outside build/ and .git/.
all_files() {
    if git -C "$top" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$top" ls-files -co --exclude-standard
    else
        find . -path ./build -prune -o -path ./.git -prune -o -path './obj-*' -prune \
            -o -type f -print | sed 's|^\./||'
    fi
}

is_source() {  # PATH
    local f=$1
    case "$f" in
        tests/server/openapi/* | */corpus/* | tests/integration/expected/*) return 1 ;;
        debian/*/* ) [[ $f == debian/source/* || $f == debian/tests/* ]] || return 1 ;;
    esac
    [ -f "$f" ] || return 1
    case "$f" in
        *.c | *.h | *.sh | *.py | *.lua | *.cmake | *.in | *.service | CMakeLists.txt | */CMakeLists.txt) return 0 ;;
        debian/rules | debian/*.postinst | debian/*.postrm | debian/*.preinst | debian/*.prerm) return 0 ;;
        support/bash-completion/*) return 0 ;;
    esac
    [ "$(head -c 2 "$f")" = "#!" ]
}

sources() {
    local f
    while IFS= read -r f; do
        is_source "$f" && printf '%s\n' "$f"
    done < <(all_files | LC_ALL=C sort -u)
}

has_spdx() {  # PATH: the SPDX line is line 1, or line 2 after a #! line
    local first second
    { IFS= read -r first || true; IFS= read -r second || true; } <"$1"
    [[ $first == *SPDX-License-Identifier:* ]] && return 0
    [[ $first == '#!'* && $second == *SPDX-License-Identifier:* ]]
}

comment_for() {  # PATH -> the line to insert
    case "$1" in
        *.c | *.h) printf '/* SPDX-License-Identifier: %s */\n' "$LICENSE_ID" ;;
        *.lua) printf -- '-- SPDX-License-Identifier: %s\n' "$LICENSE_ID" ;;
        *) printf '# SPDX-License-Identifier: %s\n' "$LICENSE_ID" ;;
    esac
}

fix() {  # PATH: insert the line, keep mode and everything else
    local f=$1 tmp line
    line=$(comment_for "$f")
    tmp=$(mktemp "$f.spdx.XXXXXX")
    if [ "$(head -c 2 "$f")" = "#!" ]; then
        { head -n 1 "$f"; printf '%s\n' "$line"; tail -n +2 "$f"; } >"$tmp"
    else
        { printf '%s\n' "$line"; cat "$f"; } >"$tmp"
    fi
    chmod --reference="$f" "$tmp"
    mv "$tmp" "$f"
}

mode=${1:---check}
case "$mode" in
    --list) sources ;;
    --check | --fix)
        missing=0
        while IFS= read -r f; do
            has_spdx "$f" && continue
            if [ "$mode" = --fix ]; then
                fix "$f"
                echo "spdx: added to $f"
            else
                echo "spdx: no SPDX-License-Identifier line at the top of $f" >&2
                missing=$((missing + 1))
            fi
        done < <(sources)
        if [ "$missing" -gt 0 ]; then
            echo "spdx: $missing file(s) without an SPDX line; run tools/spdx.sh --fix" >&2
            exit 1
        fi
        ;;
    -h | --help) usage 0 ;;
    *) usage 2 >&2 ;;
esac
