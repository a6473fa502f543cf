#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kubectl of Kubernetes VERSION from the Go
# module proxy into BIN_DIR, with the module committed in tests/control-plane/k8s-VERSION
# (made by new-version.sh). Called by install.sh; progress (stage, elapsed time) on stderr.
#
# Usage: build-from-modules.sh VERSION BIN_DIR
set -euo pipefail
version=${1:?version}
bin=${2:?bin dir}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
module="$here/k8s-$version"
log() { printf 'install-control-plane: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
[[ -f $module/go.mod ]] || die "no module for Kubernetes $version in $module; supported: $(cd "$here" && ls -d k8s-* | sed 's/^k8s-//' | tr '\n' ' ')(add one with tests/control-plane/new-version.sh $version)"
command -v go >/dev/null || die "no go on PATH; Kubernetes $version needs Go $(sed -n 's/^go //p' "$module/go.mod") or newer"

# The Go this module asks for (`go 1.26.0`): the machine's own, if new enough. GOTOOLCHAIN is
# left as the user set it; with `local`, an older Go stops here with its own message.
need=$(sed -n 's/^go //p' "$module/go.mod")
have=$(go env GOVERSION | sed 's/^go//')
log "Kubernetes $version from Go modules with Go $have (the module wants $need)"

[[ $version =~ ^1\.([0-9]+)\.([0-9]+)$ ]] || die "not a 1.x.y version: $version"
minor=${BASH_REMATCH[1]}
# What the release build (hack/lib/version.sh) stamps in, so `--version`, /version and
# `kubectl version` say v$version instead of v0.0.0-master.
stamp=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  stamp+=" -X $pkg.gitVersion=v$version -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

mkdir -p "$bin"
# A build cache of this build's own, removed once the binaries are in place: Kubernetes leaves
# about 4 GiB in Go's build cache, which nothing reuses afterwards (the binaries are cached).
# Kept after a failure, so a second try continues where the first stopped.
export GOCACHE="$bin/../go-build-cache"
start=$SECONDS
elapsed() { local s=$((SECONDS - start)); printf '%dm%02ds' $((s / 60)) $((s % 60)); }
# One line every 30 s while go is silent, so a first build (15-30 minutes on 2 cores) does
# not look hung.
ticker() {
  while sleep 30; do log "  … still building ($1), $(elapsed) elapsed"; done
}

(cd "$module" && log "downloading modules (go mod download)" && go mod download) ||
  die "downloading the modules of Kubernetes $version failed (see above: a module the proxy does not serve is named there)"
for cmd in kube-apiserver kube-controller-manager kubectl; do
  log "building $cmd ($(elapsed) so far)"
  ticker "$cmd" &
  tick=$!
  status=0
  (cd "$module" && CGO_ENABLED=0 go build -mod=readonly -trimpath -ldflags "-s -w$stamp" \
    -o "$bin/$cmd.new" "k8s.io/kubernetes/cmd/$cmd") || status=$?
  kill "$tick" 2>/dev/null || true
  wait "$tick" 2>/dev/null || true
  ((status == 0)) || die "building $cmd of Kubernetes $version failed (exit $status)"
  # Rename into place: clusters already running keep their (old) binary intact.
  mv -f "$bin/$cmd.new" "$bin/$cmd"
done
rm -rf "$GOCACHE"
log "built Kubernetes $version in $(elapsed)"
