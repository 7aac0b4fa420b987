#!/usr/bin/env bash
# Makes the test certificates: a CA, and a certificate it signs for localhost and 127.0.0.1
# (ECDSA P-256, valid for 100 years). The tests serve HTTPS with them; run this again only to
# replace them. The CA's key is thrown away: nothing else can be signed with it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
days=36500
openssl ecparam -name prime256v1 -genkey -noout -out "$work/ca.key"
openssl req -x509 -new -key "$work/ca.key" -sha256 -days "$days" -subj "/CN=taskhost test CA" \
  -addext "basicConstraints=critical,CA:true" -addext "keyUsage=critical,keyCertSign,cRLSign" \
  -out ca.pem
openssl ecparam -name prime256v1 -genkey -noout -out "$work/localhost.ec.key"
openssl pkcs8 -topk8 -nocrypt -in "$work/localhost.ec.key" -out localhost.key
openssl req -new -key localhost.key -subj "/CN=localhost" -out "$work/localhost.csr"
printf '%s\n' "basicConstraints=critical,CA:false" "keyUsage=critical,digitalSignature" \
  "extendedKeyUsage=serverAuth" "subjectAltName=DNS:localhost,IP:127.0.0.1" > "$work/ext"
openssl x509 -req -in "$work/localhost.csr" -CA ca.pem -CAkey "$work/ca.key" -CAserial "$work/ca.srl" -CAcreateserial \
  -days "$days" -sha256 -extfile "$work/ext" -out localhost.pem
