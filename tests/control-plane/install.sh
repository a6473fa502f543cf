#!/usr/bin/env bash
# Installs what the local control plane needs and prints the directory holding
# etcd, kube-apiserver, kube-controller-manager and kubectl (setup-envtest layout).
#
# - KUBEBUILDER_ASSETS set: nothing is installed; that directory is used as it is.
# - Otherwise (Debian/Ubuntu, root or sudo), the release in STS_K8S_VERSION (default 1.37.2):
#   - 1.3x.y (a directory tests/control-plane/k8s-1.3x.y exists): kube-apiserver,
#     kube-controller-manager and kubectl built from the Go module proxy with the machine's Go
#     (build-from-modules.sh); etcd-server 3.4 from the distribution (the e2e suite passes on
#     it; Kubernetes recommends 3.5+ for production);
#   - 1.20.2: etcd-server from the distribution, and Kubernetes built from Debian bookworm's
#     `kubernetes` source package with Debian's Go 1.19 (golang-1.19-go), the Go it was
#     proven with; Go >= 1.20 is not known to build it.
#   Built once into a cache outside the repository:
#   ${STS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sts-toolkit}/k8s-<version>/bin
#
# Progress goes to stderr; the only line on stdout is the bin directory.
set -euo pipefail

log() { printf 'install-control-plane: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

need_bins=(etcd kube-apiserver kube-controller-manager kubectl)

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
  for b in etcd kube-apiserver kube-controller-manager; do
    [[ -x "$KUBEBUILDER_ASSETS/$b" ]] || die "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $b"
  done
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

version="${STS_K8S_VERSION:-1.37.2}"
case "$version" in
  1.20.2) route=debian ;;
  *)
    [[ -f "$here/k8s-$version/go.mod" ]] ||
      die "STS_K8S_VERSION=$version is not supported; choose 1.20.2 or one of: $(cd "$here" && ls -d k8s-*/ | sed 's/^k8s-//; s/\/$//' | tr '\n' ' ')"
    route=modules
    ;;
esac
K8S_DEB_VERSION="1.20.5+really1.20.2-1.1+deb12u1"
# Debian bookworm's Go 1.19: the Go the 1.20.2 tree was proven with.
GO119=/usr/lib/go-1.19/bin
cache="${STS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/sts-toolkit}"
bin="$cache/k8s-$version/bin"

# Bumped whenever a build recipe changes, so stale caches are rebuilt.
case $route in
  debian) BUILD_STAMP="k8s-1.20.2+reflect2-1.0.2+go1.19" ;;
  modules) BUILD_STAMP="k8s-$version+modules-1" ;;
esac
stamp_file="$bin/.build-stamp"

is_complete() {
  for b in "${need_bins[@]}"; do [[ -x "$bin/$b" ]] || return 1; done
  [[ -f "$stamp_file" && "$(cat "$stamp_file")" == "$BUILD_STAMP" ]]
}
if is_complete; then
  echo "$bin"
  exit 0
fi
# One installer at a time per cache (several clusters may start at once); the winner builds,
# the others wait and then find the binaries.
mkdir -p "$cache"
exec 9>"$cache/.install-$version.lock"
if command -v flock >/dev/null; then
  log "waiting for the install lock $cache/.install-$version.lock"
  flock 9
fi
if is_complete; then
  echo "$bin"
  exit 0
fi
complete=0

SUDO=""
need_apt() {
  if [[ $(id -u) != 0 ]]; then
    command -v sudo >/dev/null || die "need root or sudo to install packages (or set KUBEBUILDER_ASSETS)"
    SUDO="sudo"
  fi
  command -v apt-get >/dev/null || die "no apt-get: not Debian/Ubuntu. Set KUBEBUILDER_ASSETS to a directory with etcd, kube-apiserver, kube-controller-manager"
}
[[ $route == modules ]] || need_apt

export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_update() { [[ $apt_updated == 1 ]] || { log "apt-get update"; $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq >&2; apt_updated=1; }; }

pkgs=()
command -v openssl >/dev/null || pkgs+=(openssl)
command -v etcd >/dev/null || [[ -x /usr/bin/etcd ]] || pkgs+=(etcd-server)
if [[ $route == debian ]]; then
  [[ -x $GO119/go ]] || pkgs+=(golang-1.19-go)
  command -v dpkg-source >/dev/null || pkgs+=(dpkg-dev)
  command -v make >/dev/null || pkgs+=(make)
  command -v rsync >/dev/null || pkgs+=(rsync)
  # Kubernetes 1.20 vendors modern-go/reflect2 1.0.1, which crashes (SIGSEGV in mapiterinit)
  # when built with Go >= 1.18 — e.g. kube-apiserver dies on the first mutating-webhook patch.
  # Debian ships the fixed 1.0.2; it replaces the vendored copy below.
  reflect2_src=/usr/share/gocode/src/github.com/modern-go/reflect2
  [[ -f "$reflect2_src/go_above_118.go" ]] || pkgs+=(golang-github-modern-go-reflect2-dev)
else
  # The machine's Go builds the current releases; without one, Debian's is too old for them.
  command -v go >/dev/null || die "Kubernetes $version is built with Go $(sed -n 's/^go //p' "$here/k8s-$version/go.mod") or newer, and there is no go on PATH"
fi
if ((${#pkgs[@]})); then
  need_apt
  apt_update
  log "apt-get install ${pkgs[*]}"
  # Another installer (of another version) may hold the package lock: wait for it.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${pkgs[@]}" >&2
fi
# Debian's etcd-server starts a system service on install; the harness runs its own.
if command -v systemctl >/dev/null && systemctl is-active --quiet etcd 2>/dev/null; then
  $SUDO systemctl stop etcd >&2 || true
fi

mkdir -p "$bin"
ln -sf "$(command -v etcd || echo /usr/bin/etcd)" "$bin/etcd"
if [[ $route == modules ]]; then
  bash "$here/build-from-modules.sh" "$version" "$bin"
  echo "$BUILD_STAMP" >"$stamp_file"
  for b in "${need_bins[@]}"; do [[ -x "$bin/$b" ]] || die "missing $bin/$b after install"; done
  log "control plane binaries ready in $bin"
  echo "$bin"
  exit 0
fi

src_root="$cache/k8s-1.20.2/src"
if [[ $complete == 0 ]]; then
  # deb-src for bookworm, so `apt-get source` finds the package.
  if ! apt-get source --download-only --print-uris "kubernetes=$K8S_DEB_VERSION" >/dev/null 2>&1; then
    log "adding a deb-src entry for bookworm"
    uri=$(awk '/^URIs:/ && /debian\/?$/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
    uri=${uri:-http://deb.debian.org/debian}
    printf 'Types: deb-src\nURIs: %s\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' "$uri" |
      $SUDO tee /etc/apt/sources.list.d/sts-toolkit-deb-src.sources >/dev/null
    apt_updated=0
    apt_update
  fi
  rm -rf "$src_root"
  mkdir -p "$src_root"
  (
    cd "$src_root"
    log "apt-get source kubernetes=$K8S_DEB_VERSION"
    apt-get source --download-only "kubernetes=$K8S_DEB_VERSION" >&2
    dsc=$(ls ./*.dsc | head -n1)
    dpkg-source --no-check -x "$dsc" tree >&2
    cd tree
    [[ -d vendor/github.com/modern-go/reflect2 ]] || die "unexpected source tree: no vendored reflect2"
    log "replacing vendored modern-go/reflect2 with $reflect2_src (Go >= 1.18 fix)"
    rsync -a --delete --exclude '*_test.go' "$reflect2_src/" vendor/github.com/modern-go/reflect2/ >&2
    mkdir -p .go/src/k8s.io
    ln -sfn ../../.. .go/src/k8s.io/kubernetes
    log "building kube-apiserver, kube-controller-manager, kubectl with $("$GO119/go" version) (5-15 minutes)"
    # GOTOOLCHAIN=local: Go 1.19 knows no toolchain switching, and a newer go on PATH must
    # not be picked by the Makefile.
    # GOCACHE inside the source tree, which is removed after the build (about 2 GiB otherwise
    # left in the user's Go build cache).
    PATH="$GO119:$PATH" GOTOOLCHAIN=local GOPATH="$PWD/.go" GOCACHE="$PWD/.gocache" GOFLAGS=-mod=vendor CGO_ENABLED=0 \
      GO111MODULE=auto make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kubectl" >&2
    for b in kube-apiserver kube-controller-manager kubectl; do
      f=$(find _output -type f -name "$b" -perm -u+x | head -n1)
      [[ -n "$f" ]] || die "build produced no $b"
      # Copy then rename: clusters already running keep their (old) binary intact.
      cp "$f" "$bin/$b.new"
      mv -f "$bin/$b.new" "$bin/$b"
    done
    echo "$BUILD_STAMP" >"$stamp_file"
  )
  rm -rf "$src_root"
fi

for b in "${need_bins[@]}"; do [[ -x "$bin/$b" ]] || die "missing $bin/$b after install"; done
log "control plane binaries ready in $bin"
echo "$bin"
