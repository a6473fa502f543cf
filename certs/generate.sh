#!/usr/bin/env bash
# Make a CA and a serving certificate for sts-webhook with openssl.
#
#   certs/generate.sh OUT_DIR [--namespace NS] [--service SVC] [--ip IP]... [--dns NAME]...
#                            [--days N] [--ca-days N]
#
# Writes OUT_DIR/ca.crt, OUT_DIR/ca.key, OUT_DIR/tls.crt, OUT_DIR/tls.key. The serving
# certificate's SANs are SVC, SVC.NS, SVC.NS.svc, SVC.NS.svc.cluster.local, every --dns NAME
# and every --ip IP (use --ip 127.0.0.1 for a webhook running on this machine).
# If OUT_DIR already holds ca.crt and ca.key they are reused, so renewing the serving
# certificate does not change the caBundle.
#
# Keep OUT_DIR outside the repository: it holds private keys.
set -euo pipefail

usage() {
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit "${1:-2}"
}

die() {
  echo "generate.sh: $*" >&2
  exit 2
}

out=""
namespace="sts-webhook"
service="sts-webhook"
days=365
ca_days=3650
ips=()
dnss=()

while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help) usage 0 ;;
    --namespace | --service | --ip | --dns | --days | --ca-days)
      [ $# -ge 2 ] || die "$1 needs a value"
      case "$1" in
        --namespace) namespace="$2" ;;
        --service) service="$2" ;;
        --ip) ips+=("$2") ;;
        --dns) dnss+=("$2") ;;
        --days) days="$2" ;;
        --ca-days) ca_days="$2" ;;
      esac
      shift 2
      ;;
    -*) die "unknown option $1 (see --help)" ;;
    *)
      [ -z "$out" ] || die "only one OUT_DIR may be given (got '$out' and '$1')"
      out="$1"
      shift
      ;;
  esac
done

[ -n "$out" ] || { echo "generate.sh: OUT_DIR is required" >&2; usage 2; }
command -v openssl >/dev/null || die "openssl not found in PATH"

dns_label='^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'
[[ "$namespace" =~ $dns_label ]] || die "--namespace '$namespace' is not a DNS label"
[[ "$service" =~ $dns_label ]] || die "--service '$service' is not a DNS label"
[[ "$days" =~ ^[1-9][0-9]*$ ]] || die "--days '$days' is not a positive number"
[[ "$ca_days" =~ ^[1-9][0-9]*$ ]] || die "--ca-days '$ca_days' is not a positive number"
for ip in "${ips[@]+"${ips[@]}"}"; do
  [[ "$ip" =~ ^[0-9.]+$ || "$ip" =~ ^[0-9a-fA-F:]+$ ]] || die "--ip '$ip' is not an IP address"
done

mkdir -p "$out"
# Private keys must not be readable by others.
umask 077

if git -C "$out" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  echo "generate.sh: warning: $out is inside a git work tree; never commit the keys" >&2
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# --- CA (reused when present) ---
if [ -s "$out/ca.crt" ] && [ -s "$out/ca.key" ]; then
  echo "reusing CA $out/ca.crt"
else
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$out/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$out/ca.key" -sha256 -days "$ca_days" \
    -subj "/CN=sts-webhook-ca" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -addext "subjectKeyIdentifier=hash" \
    -out "$out/ca.crt"
  echo "created CA $out/ca.crt"
fi

# --- serving certificate ---
sans="DNS:$service,DNS:$service.$namespace,DNS:$service.$namespace.svc,DNS:$service.$namespace.svc.cluster.local"
for d in "${dnss[@]+"${dnss[@]}"}"; do sans="$sans,DNS:$d"; done
for ip in "${ips[@]+"${ips[@]}"}"; do sans="$sans,IP:$ip"; done

cat >"$tmp/ext.cnf" <<EOF
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $sans
EOF

openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$tmp/tls.key" 2>/dev/null
openssl req -new -key "$tmp/tls.key" -subj "/CN=$service.$namespace.svc" -out "$tmp/tls.csr"
openssl x509 -req -in "$tmp/tls.csr" -CA "$out/ca.crt" -CAkey "$out/ca.key" -CAcreateserial \
  -CAserial "$tmp/ca.srl" -days "$days" -sha256 -extfile "$tmp/ext.cnf" -out "$tmp/tls.crt" 2>/dev/null

openssl verify -CAfile "$out/ca.crt" "$tmp/tls.crt" >/dev/null || die "generated certificate does not verify"

# Move into place last, so a half-finished run never leaves a mismatched pair behind.
mv "$tmp/tls.key" "$out/tls.key"
mv "$tmp/tls.crt" "$out/tls.crt"
chmod 600 "$out/tls.key" "$out/ca.key"
chmod 644 "$out/tls.crt" "$out/ca.crt"

echo "created serving certificate $out/tls.crt (key $out/tls.key)"
echo "SANs: $sans"
