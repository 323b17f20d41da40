# SPDX-License-Identifier: Apache-2.0
# The module repository: every manifest (modules/*/module.yaml, sdk/templates/*/module.yaml) is
# valid and modules/index.yaml is what molt-module-index writes from them (regenerated into a
# temporary file and compared: a stale index fails); broken manifests are refused with file:line.
. "$(dirname "$0")/lib.sh"

INDEX_TOOL="$MOLT_BUILD_DIR/sdk/tester/molt-module-index"
cd "$MOLT_SRC_DIR"
manifests=()
for m in modules/*/module.yaml sdk/templates/*/module.yaml; do [ -f "$m" ] && manifests+=("$m"); done
[ ${#manifests[@]} -ge 2 ] || fail "expected at least the two templates' manifests, found ${manifests[*]:-none}"
# Every module folder with sources has a manifest.
for d in modules/*/ sdk/templates/*/; do
    if [ -n "$(ls -A "$d")" ] && [ ! -f "$d/module.yaml" ]; then
        echo "note: $d has no module.yaml yet (not in the index)"
    fi
done

run_prog "$INDEX_TOOL" -o "$T/index.yaml" "${manifests[@]}"
expect_rc 0 "molt-module-index on the repository's manifests"
diff -u modules/index.yaml "$T/index.yaml" >&2 ||
    fail "modules/index.yaml is stale: run tools/module-index.sh $MOLT_BUILD_DIR and commit it"
run_prog "$INDEX_TOOL" --check modules/index.yaml "${manifests[@]}"
expect_rc 0 "molt-module-index --check on the committed index"
pass "modules/index.yaml is fresh (${#manifests[@]} manifests)"
python3 - "$T/index.yaml" <<'PY' || fail "the index is not sorted by name or lacks fields"
import re, sys
names = re.findall(r'^  - name: "([^"]*)"$', open(sys.argv[1]).read(), re.M)
assert names == sorted(names) and len(names) >= 2, names
PY

# A stale index is caught: drop the last line.
head -n -1 "$T/index.yaml" >"$T/stale.yaml"
run_prog "$INDEX_TOOL" --check "$T/stale.yaml" "${manifests[@]}"
expect_rc 1 "--check on a stale index"
grep -q "stale" "$RUN_ERR" || fail "no stale message: $(cat "$RUN_ERR")"
pass "a stale index is refused"

# Broken manifests: each gives exit 1 and the exact file:line message.
good=sdk/templates/shell-module/module.yaml
broken() {  # NAME EXPECTED-MESSAGE SED-EXPRESSION
    sed "$3" "$good" >"$T/$1.yaml"
    run_prog "$INDEX_TOOL" -o "$T/out.yaml" "$T/$1.yaml"
    expect_rc 1 "broken manifest $1"
    grep -qxF "$T/$1.yaml:$2" "$RUN_ERR" || fail "$1: expected '$T/$1.yaml:$2', got: $(cat "$RUN_ERR")"
    [ ! -e "$T/out.yaml" ] || fail "$1: an index was written from a broken manifest"
    pass "broken manifest refused: $1"
}
broken unknown-key "4: unknown key 'homepage'" '3a homepage: https://example.org'
broken missing-key "1: missing key 'license'" '/^license:/d'
broken wrong-bool "12: key 'capabilities.rollback': expected true or false, got 'yes'" 's/rollback: true/rollback: yes/'
broken wrong-kind "6: key 'kind': expected native or exec, got 'plugin'" 's/^kind: exec/kind: plugin/'
broken wrong-protocol "7: key 'protocol': expected 3 (Update Module protocol v3), got 2" 's/^protocol: 3/protocol: 2/'
broken list-not-string "8: key 'payload_types': expected a list of strings" 's/^payload_types:$/payload_types: shell-template/; /^  - shell-template$/d'
broken unknown-capability "11: unknown key 'capabilities.delta'" 's/^  streaming: false/  delta: false/'
broken native-without-abi "1: missing key 'abi' (a native module names its ABI, \"1.1\")" 's/^kind: exec/kind: native/'
broken yaml-syntax "3: YAML: mapping values are not allowed in this context" 's/^description: .*/description: a: b: c/'

# Two manifests with the same name.
cp "$good" "$T/dup.yaml"
run_prog "$INDEX_TOOL" -o "$T/out.yaml" "$good" "$T/dup.yaml"
expect_rc 1 "two manifests with one name"
grep -q "module name 'shell-template' is also used by" "$RUN_ERR" || fail "duplicate name: $(cat "$RUN_ERR")"
pass "duplicate module names refused"

# Effects: every entry says whether molt-module-test verifies what the module does (a probe in
# its manifest) or not; the built-in modules and the templates have one.
python3 - modules/index.yaml <<'PY' || fail "the index's effects lines are wrong"
import re, sys
text = open(sys.argv[1]).read()
entries = re.split(r'^  - name: ', text, flags=re.M)[1:]
assert entries
for e in entries:
    name = e.split('\n', 1)[0]
    m = re.search(r'^    effects: "(verified \(probe\)|not verified \(no probe\))"$', e, re.M)
    assert m, f"{name}: no effects line"
    if name.strip('"') in ("file", "deb", "docker", "rootfs-image", "c-template", "shell-template"):
        assert m.group(1) == "verified (probe)", f"{name}: {m.group(1)}"
PY
sed '/^tested_with:/,$d' "$good" >"$T/noprobe.yaml"
printf 'tested_with:\n  - molt-module-test 1.0\n' >>"$T/noprobe.yaml"
run_prog "$INDEX_TOOL" -o "$T/out.yaml" "$T/noprobe.yaml"
expect_rc 0 "a manifest without a probe"
grep -qx '    effects: "not verified (no probe)"' "$T/out.yaml" || fail "a module without a probe is not marked: $(cat "$T/out.yaml")"
printf 'probe: ""\n' >>"$T/noprobe.yaml"
run_prog "$INDEX_TOOL" -o "$T/out2.yaml" "$T/noprobe.yaml"
expect_rc 1 "a manifest with an empty probe"
grep -q "key 'probe': expected a non-empty string" "$RUN_ERR" || fail "an empty probe is not refused: $(cat "$RUN_ERR")"
pass "the index marks each module's effects verified (probe) or not verified (no probe)"
