#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# molt's main job, end to end on a simulated device: installs what is missing (Debian 12, as
# root), builds, then
#   1. a release engineer builds a signed artifact with molt-artifact, reads and validates it
#      (and Mender's own mender-artifact validates it too);
#   2. a simulated device (a scratch folder with molt's config, data dir and device type)
#      installs it with `molt` through Mender's community `single-file` update module, commits,
#      installs a second release and rolls it back, and refuses tampered and untrusted artifacts;
#   3. a simulated A/B device (two image files, a U-Boot environment, a bootloader that counts
#      boots) takes a full system update with the rootfs-image module, reboots into it and commits,
#      then survives a release that does not boot (tools/demo-rootfs.sh).
# Everything happens below $MOLT_DEMO_DIR (default: build/demo); nothing outside it is touched.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

"$top/tools/deps.sh"
cmake -S "$top" -B "$top/build/release" -DMOLT_BUILD_TESTS=OFF >/dev/null
cmake --build "$top/build/release" -j "$(nproc)" >/dev/null
bin="$top/build/release"
molt_artifact="$bin/sdk/artifact/molt-artifact"
molt="$bin/core/molt"

demo=${MOLT_DEMO_DIR:-$top/build/demo}
rm -rf "$demo"
mkdir -p "$demo"/{release,device/rootfs/etc,device/data,device/scripts}
cd "$demo"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

step "1. Release engineer: a signing key and a signed artifact"
openssl ecparam -name prime256v1 -genkey -noout -out release/signing.key 2>/dev/null
openssl ec -in release/signing.key -pubout -out release/signing.pub 2>/dev/null
printf 'Welcome to release 1\n' > release/motd
# The single-file module's meta files: where the file goes, its name, its mode.
printf '%s' "$demo/device/rootfs/etc" > release/dest_dir
printf 'motd' > release/filename
printf '644' > release/permissions
show "$molt_artifact" write module-image -T single-file -n release-1 -t demo-board \
  -f release/motd -f release/dest_dir -f release/filename -f release/permissions \
  --compression zstd -k release/signing.key -o release/release-1.mender
show "$molt_artifact" read release/release-1.mender
show "$molt_artifact" validate -k release/signing.pub release/release-1.mender
echo "molt-artifact: valid and signed"
# zstd needs mender-artifact >= 3.10 (Debian has 3.9): show Mender's tool a gzip twin.
"$molt_artifact" write module-image -T single-file -n release-1 -t demo-board \
  -f release/motd -f release/dest_dir -f release/filename -f release/permissions \
  -k release/signing.key -o release/release-1-gzip.mender
show mender-artifact validate -k release/signing.pub release/release-1-gzip.mender

if [ ! -x "$molt" ]; then
  echo "(the molt client is not built in this tree yet; the device part of the demo is skipped)"
  exit 0
fi

step "2. Device: molt's configuration, with the release key as the only trusted key"
cat > device/molt.yaml <<YAML
data_dir: $demo/device/data
device_type_file: $demo/device/data/device_type
module_dirs:
  - /usr/share/mender/modules/v3
scripts_dir: $demo/device/scripts
artifact_verify_keys:
  - $demo/release/signing.pub
YAML
printf 'device_type=demo-board\n' > device/data/device_type
printf 'factory image\n' > device/rootfs/etc/motd
show cat device/molt.yaml
m() { show "$molt" --config "$demo/device/molt.yaml" "$@"; }
m modules
m show-artifact

step "3. Install release 1 through Mender's community single-file module, then commit"
m install release/release-1.mender
m status
m commit
show cat device/rootfs/etc/motd
m show-provides

step "4. Release 2 arrives, is installed, and is rolled back"
printf 'Welcome to release 2\n' > release/motd
"$molt_artifact" write module-image -T single-file -n release-2 -t demo-board \
  -f release/motd -f release/dest_dir -f release/filename -f release/permissions \
  -k release/signing.key -o release/release-2.mender
m install release/release-2.mender
show cat device/rootfs/etc/motd
m rollback
show cat device/rootfs/etc/motd
m show-artifact

step "5. Tampered and untrusted artifacts are refused and change nothing"
refuse() {  # artifact: install must fail
  printf '$ molt install %s\n' "$1"
  if "$molt" --config "$demo/device/molt.yaml" install "$1"; then
    echo "demo: $1 was accepted" >&2
    exit 1
  fi
}
# One byte flipped inside the compressed payload member: the signature still verifies (it
# covers the manifest), but the payload's checksum does not match the manifest.
cp release/release-2.mender release/tampered.mender
offset=$(python3 -c 'import sys,tarfile
t=tarfile.open(sys.argv[1])
m=[m for m in t.getmembers() if m.name.startswith("data/")][0]
print(m.offset_data + m.size // 2)' release/tampered.mender)
printf '\x5a' | dd of=release/tampered.mender bs=1 seek="$offset" conv=notrunc status=none
refuse release/tampered.mender
# A well-formed artifact signed by a key the device does not trust.
openssl ecparam -name prime256v1 -genkey -noout -out release/attacker.key 2>/dev/null
"$molt_artifact" write module-image -T single-file -n evil-1 -t demo-board \
  -f release/motd -f release/dest_dir -f release/filename -f release/permissions \
  -k release/attacker.key -o release/evil.mender
refuse release/evil.mender
show cat device/rootfs/etc/motd
m show-artifact
m status

step "6. A full A/B system update on a simulated device (rootfs-image module, U-Boot environment)"
"$top/tools/demo-rootfs.sh" "$bin" "$demo/rootfs"
printf '\ndemo: done (everything is in %s)\n' "$demo"
