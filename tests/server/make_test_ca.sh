#!/bin/bash
# SPDX-License-Identifier: Apache-2.0
# Make a throw-away test CA and a server certificate for 127.0.0.1 and localhost, signed by it,
# for the loopback test server. Usage: make_test_ca.sh DIR [NAME [EXTRA_SAN]]
# EXTRA_SAN is added to the server certificate's names (e.g. IP:10.0.2.2, QEMU's address of the
# host, for tools/demo-vm.sh).
# Writes DIR/ca.crt, DIR/ca.key, DIR/server.crt, DIR/server.key (EC P-256, valid 2 days).
# NAME goes into the subjects, so two CAs made for one test are told apart in messages.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 3 ]; then
    echo "usage: $0 DIR [NAME [EXTRA_SAN]]" >&2
    exit 2
fi
dir=$1
name=${2:-molt test}
san="IP:127.0.0.1,DNS:localhost${3:+,$3}"
mkdir -p "$dir"
cd "$dir"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=$name CA" -keyout ca.key -out ca.crt \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null

openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -subj "/CN=$name server" -keyout server.key -out server.csr 2>/dev/null

cat > server.ext <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=$san
EOF
openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
    -extfile server.ext -out server.crt 2>/dev/null
rm -f server.csr server.ext ca.srl
chmod 600 ca.key server.key
