#!/usr/bin/env bash
# The live stages of `make test`, once per Kubernetes release: for each version given, install
# (or reuse) its control plane, run the e2e suite with sts-webhook, then the reconciler test and
# the webhook's API-fault tests and its RBAC proof, each on a cluster of its own without the
# suite's webhook. Prints each stage's time and each version's test counts, and exits non-zero
# if any stage failed (every stage runs, so one report covers all versions).
#
# Usage: tests/e2e-matrix.sh 1.37.2 1.20.2      (the Makefile passes $(K8S_VERSIONS))
# Needs: the workspace binaries built (make build) and cargo-nextest.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
(($#)) || { echo "usage: $0 VERSION..." >&2; exit 2; }
bin=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')/debug
report=()
failed=0

# Runs one stage, timed; its nextest summary line ("N tests run: P passed, F failed, S skipped")
# goes into the report.
stage() {
  local version=$1 name=$2
  shift 2
  local log start status summary
  log=$(mktemp)
  start=$SECONDS
  echo "=== Kubernetes $version: $name" >&2
  "$@" 2>&1 | tee "$log"
  status=${PIPESTATUS[0]}
  summary=$(grep -E '^ +Summary ' "$log" | tail -n1 | sed -E 's/^ +Summary \[[^]]*\] //')
  rm -f "$log"
  ((status == 0)) || failed=1
  report+=("$(printf '%-8s  %-12s  %5ss  %-6s  %s' "$version" "$name" $((SECONDS - start)) \
    "$([[ $status == 0 ]] && echo ok || echo FAILED)" "${summary:-}")")
}

versions=("$@")
if [[ -n ${KUBEBUILDER_ASSETS:-} ]]; then
  # Your own binaries: one run on them, whatever the versions asked for.
  versions=("$("$KUBEBUILDER_ASSETS/kube-apiserver" --version 2>/dev/null | awk '{print $2}')")
  echo "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS: running once, on ${versions[0]:-its binaries}" >&2
fi
# Test binaries that need a newer server than some releases in the list, as
# "sts-e2e binary:minimum minor:why". On older servers each is left out and reported as not
# applicable, never as passed. The webhook-free variant (MutatingAdmissionPolicy) is a stage of
# its own, from POLICY_MIN_MINOR.
NEEDS_NEWER=(
  "modern:35:current releases: ordinals.start, retention policy, pod-index label, optional serviceName, matchConditions, completion through kubectl"
  "max_unavailable:37:maxUnavailable, which the 1.35/1.36 apiservers drop with default feature gates"
  "recreate:37:the Recreate update strategy (alpha in 1.37, feature gate StatefulSetRecreateStrategy)"
)
POLICY_MIN_MINOR=36
for version in "${versions[@]}"; do
  export STS_K8S_VERSION=${version#v}
  minor=$(echo "${version#v}" | cut -d. -f2)
  filter=()
  if [[ $minor =~ ^[0-9]+$ ]]; then
    for rule in "${NEEDS_NEWER[@]}"; do
      IFS=: read -r binary min why <<<"$rule"
      ((minor < min)) || continue
      filter+=("not binary($binary)")
      n=$(cargo nextest list -p sts-e2e -E "binary($binary)" --message-format oneline 2>/dev/null | grep -c .)
      report+=("$(printf '%-8s  %-12s  %5s   %-6s  %s' "$version" "e2e" "-" "n/a" "$n tests not applicable (tests/tests/$binary.rs needs Kubernetes >= 1.$min: $why)")")
    done
  fi
  if ((${#filter[@]})); then
    joined=$(printf ' & %s' "${filter[@]}")
    filter=(-E "${joined:3}")
  fi
  stage "$version" control-plane bash tests/control-plane/install.sh
  stage "$version" e2e "$bin/sts-cluster" run --webhook -- cargo nextest run -p sts-e2e "${filter[@]}"
  stage "$version" reconciler "$bin/sts-cluster" run -- \
    cargo nextest run -p sts-webhook --test reconciler_cluster --run-ignored only
  # sts-webhook against a failing API server and SIGTERM under load (tests/tests/api_faults.rs):
  # its own cluster without the suite's webhook, one test at a time (each runs its own webhooks).
  stage "$version" api-faults "$bin/sts-cluster" run -- \
    cargo nextest run -p sts-e2e --test api_faults --run-ignored only --test-threads 1
  # Each verb of deploy/base's ClusterRole removed in turn, on a cluster of its own: its
  # reconcilers watch all namespaces, as do the reconciler stage's.
  stage "$version" rbac-webhook "$bin/sts-cluster" run -- \
    cargo nextest run -p sts-webhook --test rbac_cluster --run-ignored only
  # deploy/admission-policy on a cluster of its own (its binding covers every namespace).
  if [[ $minor =~ ^[0-9]+$ ]] && ((minor < POLICY_MIN_MINOR)); then
    report+=("$(printf '%-8s  %-12s  %5s   %-6s  %s' "$version" "adm-policy" "-" "n/a" "1 test not applicable (MutatingAdmissionPolicy needs Kubernetes >= 1.$POLICY_MIN_MINOR)")")
  else
    stage "$version" adm-policy "$bin/sts-cluster" run -- \
      cargo nextest run -p sts-webhook --test admission_policy_cluster --run-ignored only
  fi
done

echo
echo "version   stage          time  result  tests"
printf '%s\n' "${report[@]}"
exit $failed
