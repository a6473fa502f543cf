#!/usr/bin/env bash
# Deploy sts-webhook with a self-signed CA (no cert-manager needed).
#
#   certs/install-self-signed.sh [--certs-dir DIR] [--context CTX] [--dry-run]
#
# 1. makes (or reuses) a CA and a serving certificate with certs/generate.sh in DIR
#    (default: ${XDG_CACHE_HOME:-~/.cache}/sts-webhook/certs — outside the repository);
# 2. creates or replaces the Secret sts-webhook/sts-webhook-tls (tls.crt, tls.key, ca.crt);
# 3. kubectl apply -k deploy/self-signed;
# 4. writes the CA into the caBundle of MutatingWebhookConfiguration sts-webhook;
# 5. waits for the Deployment to become available.
# Re-running renews the serving certificate with the same CA; the running pods reload it.
# With --dry-run, prints the kubectl commands instead of running them.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
namespace="sts-webhook"
service="sts-webhook"
secret="sts-webhook-tls"
webhook_config="sts-webhook"
certs_dir="${XDG_CACHE_HOME:-$HOME/.cache}/sts-webhook/certs"
kubectl_args=()
dry_run=false

die() {
  echo "install-self-signed.sh: $*" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    -h | --help)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    --certs-dir)
      [ $# -ge 2 ] || die "--certs-dir needs a value"
      certs_dir="$2"
      shift 2
      ;;
    --context)
      [ $# -ge 2 ] || die "--context needs a value"
      kubectl_args+=(--context "$2")
      shift 2
      ;;
    --dry-run)
      dry_run=true
      shift
      ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

command -v kubectl >/dev/null || die "kubectl not found in PATH"

k() {
  if $dry_run; then
    echo "+ kubectl ${kubectl_args[*]+"${kubectl_args[*]}"} $*" >&2
  else
    kubectl ${kubectl_args[@]+"${kubectl_args[@]}"} "$@"
  fi
}

"$here/generate.sh" "$certs_dir" --namespace "$namespace" --service "$service"

# The namespace first, so the Secret can go in before the pods that mount it.
k get namespace "$namespace" >/dev/null 2>&1 || k create namespace "$namespace"

# create --dry-run | apply: creates the Secret or replaces its data in place.
k -n "$namespace" create secret generic "$secret" --type=kubernetes.io/tls \
  --from-file=tls.crt="$certs_dir/tls.crt" \
  --from-file=tls.key="$certs_dir/tls.key" \
  --from-file=ca.crt="$certs_dir/ca.crt" \
  --dry-run=client -o yaml | k apply -f -

k apply -k "$repo/deploy/self-signed"

# caBundle is not in the manifests, so a later `kubectl apply -k` leaves it alone.
ca_bundle="$(base64 <"$certs_dir/ca.crt" | tr -d '\n')"
k patch mutatingwebhookconfiguration "$webhook_config" --type=json \
  -p "[{\"op\":\"add\",\"path\":\"/webhooks/0/clientConfig/caBundle\",\"value\":\"$ca_bundle\"}]"

k -n "$namespace" rollout status deployment/sts-webhook --timeout=180s

echo "sts-webhook deployed; certificates in $certs_dir (keep them private)"
