# SPDX-License-Identifier: Apache-2.0
# `cmake --install` into a scratch prefix installs, each exactly once: the programs, the native
# modules with their manifests (<name>.yaml) and their folders (file.d/), the systemd unit (lib/systemd/system), the
# configuration (etc/molt/molt.yaml, examples/molt.yaml unchanged), the bash completion under
# both names, and the manual pages when the build has them.
. "$(dirname "$0")/lib.sh"

P="$T/prefix"
cmake --install "$MOLT_BUILD_DIR" --prefix "$P" >"$T/install.log" 2>&1 ||
    { cat "$T/install.log" >&2; fail "cmake --install"; }
dups=$(sed -n 's/^-- \(Installing\|Up-to-date\): //p' "$T/install.log" | sort | uniq -d)
[ -z "$dups" ] || fail "installed more than once: $dups"

for f in bin/molt bin/molt-artifact bin/molt-module-test lib/systemd/system/molt.service \
    etc/molt/molt.yaml share/bash-completion/completions/molt \
    share/bash-completion/completions/molt-artifact; do
    [ -f "$P/$f" ] || fail "$f not installed"
done
cmp -s "$P/etc/molt/molt.yaml" "$MOLT_SRC_DIR/examples/molt.yaml" || fail "etc/molt/molt.yaml is not examples/molt.yaml"
cmp -s "$P/lib/systemd/system/molt.service" "$MOLT_SRC_DIR/support/molt.service" || fail "the unit is not support/molt.service"
n=0
for so in "$MOLT_BUILD_DIR"/modules/native/*.so; do
    m=$(basename "$so" .so)
    [ -f "$(echo "$P"/lib*/molt/modules/"$m".so)" ] || fail "module $m.so not installed"
    [ -f "$(echo "$P"/lib*/molt/modules/"$m".yaml)" ] || fail "manifest $m.yaml not installed beside $m.so"
    n=$((n + 1))
done
[ "$n" -ge 1 ] || fail "no native module in the build"
# A module's own objects in a folder beside it (the file module's tar support, file.d/), at the
# same place below the modules folder.
for so in "$MOLT_BUILD_DIR"/modules/native/*/*.so; do
    [ -f "$so" ] || continue
    rel=${so#"$MOLT_BUILD_DIR"/modules/native/}
    [ -f "$(echo "$P"/lib*/molt/modules/"$rel")" ] || fail "$rel (beside the modules) not installed"
done
if [ -f "$MOLT_BUILD_DIR/docs/man/molt.1" ]; then
    for f in man1/molt.1 man1/molt-artifact.1 man1/molt-module-test.1 man1/molt-module-index.1 man5/molt.yaml.5; do
        [ -f "$P/share/man/$f" ] || fail "manual page $f not installed"
    done
fi
pass "installed once each: programs, $n modules with manifests, unit, configuration, completions, manual pages"
