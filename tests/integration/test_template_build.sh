# SPDX-License-Identifier: Apache-2.0
# The module author's path of docs/modules.md, run exactly as written: every ```sh block of the
# page, in order, in one bash with `set -e`: install the SDK with `cmake --install` into a
# temporary prefix, copy the C template to a folder outside the tree, build it against the
# installed SDK with find_package(molt-sdk) and with pkg-config, run the installed kit on both
# builds and on the shell template (every check must pass, effects verified through the
# templates' probes: the kit exits 0), catch a copy of the shell module whose rollback restores
# nothing (effect-rollback), check the
# manifests, install the module with its manifest, and publish into a copy of the repository
# (regenerate modules/index.yaml, then --check it).
. "$(dirname "$0")/lib.sh"

DOC="$MOLT_SRC_DIR/docs/modules.md"
command -v pkg-config >/dev/null || fail "pkg-config is not installed"
awk '/^```sh$/ { on = 1; next } /^```$/ { on = 0; next } on' "$DOC" >"$T/doc.sh"
[ "$(grep -c . "$T/doc.sh")" -ge 15 ] || fail "docs/modules.md: expected the walk-through's commands, got: $(cat "$T/doc.sh")"

# A copy of the repository for the publishing step (the real tree is never changed).
mkdir -p "$T/repo/sdk" "$T/work"
cp -r "$MOLT_SRC_DIR/tools" "$MOLT_SRC_DIR/modules" "$T/repo/"
cp -r "$MOLT_SRC_DIR/sdk/templates" "$T/repo/sdk/"

export MOLT_BUILD="$MOLT_BUILD_DIR" PREFIX="$T/prefix" MOLT_SRC="$T/repo"
RUN_TIMEOUT=600
run_prog /usr/bin/env -C "$T/work" bash -e -x "$T/doc.sh"
if [ "$RUN_RC" != 0 ]; then
    tail -n 40 "$RUN_ERR" >&2
    tail -n 40 "$RUN_OUT" >&2
    fail "a command of docs/modules.md failed (exit $RUN_RC)"
fi
pass "every command of docs/modules.md ran"

# What the walk-through must have produced.
case "$PREFIX" in "$MOLT_SRC_DIR"*) fail "the SDK prefix is inside the tree" ;; esac
[ -f "$T/work/my-module/build/my-module.so" ] || fail "the CMake build of the C template made no my-module.so"
[ -f "$T/work/my-module.so" ] || fail "the pkg-config build of the C template made no my-module.so"
for r in my-module-report my-shell-module-report; do
    f="$T/work/$r.txt"
    [ -s "$f" ] || fail "no kit report $r"
    ! grep -q '^FAIL' "$f" || fail "$r: $(grep '^FAIL' "$f")"
    grep -qx 'PASS happy-path' "$f" || fail "$r: no passing happy path"
    grep -qx 'PASS rollback' "$f" || fail "$r: the template's rollback was not checked"
    grep -qx 'PASS kill-ArtifactInstall' "$f" || fail "$r: no kill check"
    grep -qx 'PASS manifest' "$f" || fail "$r: the manifest was not checked"
    for c in effect-install effect-rollback effect-commit effect-kill-ArtifactInstall checksum-end; do
        grep -qx "PASS $c" "$f" || fail "$r: no passing $c (the template's probe)"
    done
    echo "---- $r"
    cat "$f"
done
grep -qx '# module: native my-module 1.0.0 (capabilities: streaming rollback)' "$T/work/my-module-report.txt" ||
    fail "the kit did not load the renamed native module"
grep -qx 'PASS download-files' "$T/work/my-shell-module-report.txt" || fail "the shell template should take files/"
pass "the C template (CMake and pkg-config builds) and the shell template pass the kit, effects verified"
grep -q '^FAIL effect-rollback: ' "$T/work/broken-report.txt" ||
    fail "the page's broken module was not caught: $(grep '^FAIL' "$T/work/broken-report.txt")"
pass "the page's shell module with a rollback that restores nothing fails effect-rollback"

# molt modules on the installed modules: the manifests' version, capabilities and description.
grep -A1 -E '^my-module +native ' "$RUN_OUT" | grep -qE '^ {32}version 1\.0\.0, capabilities: streaming rollback: Installs every payload file' ||
    fail "molt modules does not show my-module's manifest: $(cat "$RUN_OUT")"
grep -A1 -E '^my-shell-module +exec ' "$RUN_OUT" | grep -qE '^ {32}version 1\.0\.0, capabilities: rollback: Installs every payload file' ||
    fail "molt modules does not show my-shell-module's manifest: $(cat "$RUN_OUT")"
pass "molt modules shows the installed manifests"
