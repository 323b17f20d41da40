# SPDX-License-Identifier: Apache-2.0
# Every citation of the compatibility reference names a section that exists: each `§N` or
# `§N.M` in the sources, tests, scripts and docs (a range `§1.1-§1.7` counts as its two ends) must
# be the number of a heading in docs/reference/*.md ("## 2.8 The state machine ..."). A § right
# after "RFC <number>" or "semver.org" names that other document and is not checked. In code,
# tests and scripts a cite written "reference §N" must say "docs/reference §N": the reference is
# docs/reference/, not a file outside the repository. The checker is first run on a planted tree with one bad cite of
# each kind, which it must report by file and line, so the test cannot pass by seeing nothing.
. "$(dirname "$0")/lib.sh"

REF="$MOLT_SRC_DIR/docs/reference"
SELF=$(basename "$0")   # this file: its examples are not citations
[ -d "$REF" ] || fail "no docs/reference/ folder"

# The section numbers: the heading lines "# §1 ...", "## 1.1 ...", one per line.
sections=$(sed -n -E 's/^#{1,6} +(§)?([0-9]+(\.[0-9]+)*)[. ].*/\2/p' "$REF"/*.md | sort)
n=$(printf '%s\n' "$sections" | grep -c .)
[ "$n" -ge 30 ] || fail "only $n numbered headings found in docs/reference/*.md"
dups=$(printf '%s\n' "$sections" | uniq -d)
[ -z "$dups" ] || fail "section numbers used by more than one heading in docs/reference/: $dups"

# check_numbers ROOT DIR...: print "file:line: problem" for each cite below ROOT/DIR... that names
# no section; exit 1 if any.
check_numbers() {
    local root=$1 bad=0 loc cite num
    shift
    while IFS= read -r hit; do
        loc=${hit%:*}          # file:line
        cite=${hit##*:}        # the match
        case $cite in RFC* | semver.org*) continue ;; esac
        num=${cite#§}
        if ! grep -qxF -- "$num" <<<"$sections"; then
            echo "$loc: §$num is not a section of docs/reference/ (no heading \"$num ...\")"
            bad=1
        fi
    done < <(cd "$root" && grep -rnoIP --exclude-dir=build --exclude-dir=.git --exclude-dir=out --exclude="$SELF" \
        '(RFC ?\d+ |semver\.org )?§\d+(\.\d+)*' -- "$@" 2>/dev/null || true)
    return $bad
}

# check_style ROOT DIR...: the same for a cite in code, tests and scripts that does not say which
# reference it means: each line with a § (other than an RFC's or semver.org's) must have
# "docs/reference" on it or on the line before (a comment continued), and none may say
# "reference §" without "docs/" (the old reference outside the repository).
check_style() {
    local root=$1 bad=0 f
    shift
    while IFS= read -r -d '' f; do
        (cd "$root" && awk -v f="$f" '
            { line = $0; gsub(/(RFC ?[0-9]+|semver\.org) §/, "", line) }
            line ~ /§/ && $0 !~ /docs\/reference/ && prev !~ /docs\/reference/ {
                print f ":" FNR ": say which reference: \"docs/reference §N\""; bad = 1 }
            line ~ /(^|[^\/A-Za-z])[Rr]eference §/ {
                print f ":" FNR ": cite the reference as \"docs/reference §N\""; bad = 1 }
            { prev = $0 }
            END { exit bad }' "$f") || bad=1
    done < <(cd "$root" && grep -rlIZ --exclude-dir=build --exclude-dir=.git --exclude-dir=out \
        --exclude="$SELF" '§' -- "$@" 2>/dev/null || true)
    return $bad
}

# The checker sees what it must: a planted tree with a good cite, a bad one, an old-style one and
# an RFC's section.
mkdir -p "$T/planted/core"
cat >"$T/planted/core/a.c" <<'EOF'
/* good: docs/reference §2.8 and (§3.1), a range §1.1-§1.7 */
/* bad: docs/reference §9.99 */
/* old: (reference §2.9) */
/* other: RFC 9110 §10.2.3 and semver.org §11 */
/* bare: (§3.1) */
/* continued: on the path docs/reference
 * §2.8 defines */
EOF
if out=$(check_numbers "$T/planted" core); then
    fail "the checker accepted a planted tree with a cite of a missing section"
fi
assert_eq "core/a.c:2: §9.99 is not a section of docs/reference/ (no heading \"9.99 ...\")" "$out" \
    "the checker's report on the planted tree"
if out=$(check_style "$T/planted" core); then
    fail "the checker accepted a planted tree with an old-style cite"
fi
assert_eq "core/a.c:3: cite the reference as \"docs/reference §N\"
core/a.c:5: say which reference: \"docs/reference §N\"" "$out" \
    "the checker's report on the planted tree"
pass "the checker reports a planted bad cite, an old-style and a bare one by file and line"

dirs=()
for d in core modules sdk tests bench docs tools support examples README.md; do
    [ -e "$MOLT_SRC_DIR/$d" ] && dirs+=("$d")
done
out=$(check_numbers "$MOLT_SRC_DIR" "${dirs[@]}") || fail "citations of the reference that name no section:
$out"
# Comments and scripts say which reference they mean (the docs link it).
code=()
for d in core modules sdk tests bench tools; do
    [ -e "$MOLT_SRC_DIR/$d" ] && code+=("$d")
done
out=$(check_style "$MOLT_SRC_DIR" "${code[@]}") || fail "citations that do not say which reference:
$out"
cites=$(cd "$MOLT_SRC_DIR" && grep -rohIP --exclude-dir=build --exclude-dir=.git --exclude-dir=out --exclude="$SELF" \
    '§\d+' -- core modules sdk | wc -l)
[ "$cites" -ge 40 ] || fail "only $cites citations found in core/ modules/ sdk/: the search is broken"
pass "$cites citations in core/ modules/ sdk/ (and those in tests, docs, scripts) name one of the $n sections of docs/reference/"
