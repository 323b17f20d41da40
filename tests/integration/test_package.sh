# SPDX-License-Identifier: Apache-2.0
# ctest-labels: slow
# The Debian packages: tools/package.sh builds them from this tree with dpkg-buildpackage and
# checks them (lintian clean, every runtime dependency in Depends including the dlopen'd
# libcurl, install into a scratch root with dpkg --root, molt/molt-artifact/molt-module-test run
# from it, an out-of-tree module built against its libmolt-sdk-dev, the unit enabled but not
# started without a server, conffile upgrades and purge; see the script's header).
# Skipped (77) in the sanitizer build (the packages are built from the sources with Debian's
# flags, so one run is enough) and when the build dependencies are missing (tools/deps.sh
# installs them).
. "$(dirname "$0")/lib.sh"

if [ "$MOLT_SANITIZE" = ON ]; then
    echo "skip: the packages do not depend on the sanitizer build; the gcc run builds them"
    exit 77
fi
rc=0
"$MOLT_SRC_DIR/tools/package.sh" --out "$T/package" || rc=$?
[ "$rc" = 77 ] && exit 77
[ "$rc" = 0 ] || fail "tools/package.sh failed (exit $rc)"
pass "packages built and checked"
