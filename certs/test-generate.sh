#!/usr/bin/env bash
# Checks certs/generate.sh with openssl: SANs, key/cert match, chain, CA reuse, bad input.
#   certs/test-generate.sh        (prints "ok" lines; exits non-zero on the first failure)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
ok() { echo "ok: $*"; }

out="$tmp/certs"
"$here/generate.sh" "$out" --namespace demo --service hook --ip 127.0.0.1 --dns localhost >/dev/null

for f in ca.crt ca.key tls.crt tls.key; do
  [ -s "$out/$f" ] || fail "$f missing"
done
ok "files written"

[ "$(stat -c %a "$out/tls.key")" = 600 ] || fail "tls.key is not mode 600"
ok "tls.key is private"

sans="$(openssl x509 -in "$out/tls.crt" -noout -ext subjectAltName)"
for want in "DNS:hook" "DNS:hook.demo" "DNS:hook.demo.svc" "DNS:hook.demo.svc.cluster.local" \
  "DNS:localhost" "IP Address:127.0.0.1"; do
  grep -q -- "$want\(,\|$\)" <<<"$sans" || fail "SAN $want missing in: $sans"
done
ok "SANs present"

openssl x509 -in "$out/tls.crt" -noout -ext extendedKeyUsage | grep -q "TLS Web Server Authentication" ||
  fail "serverAuth usage missing"
openssl x509 -in "$out/tls.crt" -noout -ext basicConstraints | grep -q "CA:FALSE" || fail "leaf is a CA"
openssl x509 -in "$out/ca.crt" -noout -ext basicConstraints | grep -q "CA:TRUE" || fail "CA is not a CA"
ok "extensions"

[ "$(openssl pkey -in "$out/tls.key" -pubout)" = "$(openssl x509 -in "$out/tls.crt" -noout -pubkey)" ] ||
  fail "tls.key does not match tls.crt"
ok "key matches certificate"

openssl verify -CAfile "$out/ca.crt" "$out/tls.crt" >/dev/null || fail "chain does not verify"
ok "chain verifies"

ca_before="$(openssl x509 -in "$out/ca.crt" -noout -fingerprint -sha256)"
leaf_before="$(openssl x509 -in "$out/tls.crt" -noout -fingerprint -sha256)"
"$here/generate.sh" "$out" --namespace demo --service hook >/dev/null
[ "$ca_before" = "$(openssl x509 -in "$out/ca.crt" -noout -fingerprint -sha256)" ] || fail "CA not reused"
[ "$leaf_before" != "$(openssl x509 -in "$out/tls.crt" -noout -fingerprint -sha256)" ] || fail "leaf not renewed"
openssl verify -CAfile "$out/ca.crt" "$out/tls.crt" >/dev/null || fail "renewed chain does not verify"
ok "CA reused, serving certificate renewed"

# Bad input: usage errors (exit 2) and nothing written.
for args in "" "--ip" "$tmp/x --ip not-an-ip" "$tmp/x --namespace Bad_NS" "$tmp/x --bogus" "$tmp/x $tmp/y"; do
  set +e
  # shellcheck disable=SC2086 # word splitting wanted
  "$here/generate.sh" $args >/dev/null 2>&1
  rc=$?
  set -e
  [ "$rc" = 2 ] || fail "generate.sh $args: exit $rc, want 2"
done
[ ! -e "$tmp/x/tls.key" ] || fail "a key was written despite bad arguments"
ok "bad arguments rejected"
