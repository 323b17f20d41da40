#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs the Debian 12 packages molt needs to build, test and run its demo (as root).
# Does nothing when they are all present already.
set -euo pipefail

packages=(
  build-essential cmake pkg-config clang libclang-rt-14-dev
  libcurl4-openssl-dev libssl-dev libarchive-dev liblz4-dev libacl1-dev libyaml-dev libjansson-dev libcmocka-dev
  libubootenv-dev libubootenv-tool
  mender-artifact mender-client
  openssl zstd xz-utils gzip python3 ca-certificates
  time libzstd-dev
  docker.io busybox-static dpkg-repack dpkg-dev
  grub-common
  xdelta3 bsdiff e2fsprogs
  qemu-system-x86 qemu-utils grub-pc-bin fdisk cpio
  softhsm2 libengine-pkcs11-openssl opensc
  debhelper lintian pandoc man-db file
  stress-ng strace
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
