#!/usr/bin/env bash
# Release packaging of kubectl-sts: the one place that knows the release targets, how each is
# built, what an archive holds and what it is called. The release workflow
# (.github/workflows/release.yml), `make dist` and the layout test
# (crates/kubectl-sts/tests/packaging.rs) all go through it, so what CI publishes is what is
# tested locally. See docs/release.md.
#
#   package.sh targets                         the release targets, one per line
#   package.sh platform TARGET                 krew's os/arch for a Rust target triple
#   package.sh host-target                     the release target of this machine's os/arch
#   package.sh name TARGET VERSION             the archive's file name
#   package.sh build TARGET                    cargo build --release for TARGET; prints the binary
#   package.sh pack TARGET BINARY VERSION OUTDIR
#                                              OUTDIR/<name> and OUTDIR/<name>.sha256; prints the
#                                              archive's path
#   package.sh krew-manifest TEMPLATE TAG DIST
#                                              .krew.yaml rendered as krew-release-bot does, with
#                                              the sha256 of the archives in DIST (a missing one is
#                                              an error, or the empty file's with
#                                              KREW_ALLOW_MISSING=1)
#
# VERSION is the tag (v0.1.0). Archives are flat: the binary, the completion helper, LICENSE and
# README.md, at the top level, as the `files` of .krew.yaml expect.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

# Linux builds are musl, so the binary is static (OpenSSL is vendored by the workspace's
# `openssl` dependency); macOS binaries link only the system's libSystem; Windows binaries get
# the C runtime linked in (crt-static), so no Visual C++ redistributable is needed.
RELEASE_TARGETS=(
  x86_64-unknown-linux-musl
  aarch64-unknown-linux-musl
  x86_64-apple-darwin
  aarch64-apple-darwin
  x86_64-pc-windows-msvc
)

die() {
  echo "package.sh: $*" >&2
  exit 1
}

platform() {
  local os arch
  case $1 in
    *-linux-*) os=linux ;;
    *-apple-darwin) os=darwin ;;
    *-windows-*) os=windows ;;
    *) die "unknown target $1" ;;
  esac
  case $1 in
    x86_64-*) arch=amd64 ;;
    aarch64-*) arch=arm64 ;;
    *) die "unknown architecture in $1" ;;
  esac
  echo "$os/$arch"
}

host_target() {
  local os arch t
  case $(uname -s) in
    Linux) os=linux ;;
    Darwin) os=darwin ;;
    MINGW* | MSYS* | CYGWIN*) os=windows ;;
    *) die "no release target for $(uname -s)" ;;
  esac
  case $(uname -m) in
    x86_64 | amd64) arch=amd64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) die "no release target for $(uname -m)" ;;
  esac
  for t in "${RELEASE_TARGETS[@]}"; do
    if [[ $(platform "$t") == "$os/$arch" ]]; then
      echo "$t"
      return
    fi
  done
  die "no release target for $os/$arch"
}

name() {
  local p
  p=$(platform "$1")
  local os=${p%/*} arch=${p#*/}
  [[ $2 == v* ]] || die "VERSION must be the tag, starting with v: $2"
  if [[ $os == windows ]]; then
    echo "kubectl-sts_${2}_${os}_${arch}.zip"
  else
    echo "kubectl-sts_${2}_${os}_${arch}.tar.gz"
  fi
}

sha256_of() {
  if command -v sha256sum >/dev/null; then
    sha256sum "$1" | cut -d' ' -f1
  else
    shasum -a 256 "$1" | cut -d' ' -f1
  fi
}

build() {
  local target=$1 env_target
  env_target=$(echo "$target" | tr 'a-z-' 'A-Z_')
  case $target in
    *-linux-musl)
      # openssl-src and ring compile C; musl-gcc (Debian/Ubuntu: musl-tools) targets musl on a
      # host of the same architecture.
      local cc_var="CC_${target//-/_}"
      export "$cc_var=${!cc_var:-musl-gcc}"
      ;;
    *-windows-msvc)
      export "CARGO_TARGET_${env_target}_RUSTFLAGS=-C target-feature=+crt-static"
      ;;
  esac
  (cd "$root" && cargo build --release --locked -p kubectl-sts --target "$target" >&2)
  # target_directory as JSON writes it: on Windows each `\` is `\\`, made `/` for bash.
  local dir
  dir=$(cd "$root" && cargo metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p' | sed 's|\\\\|/|g')
  local exe=kubectl-sts
  [[ $target == *-windows-* ]] && exe=kubectl-sts.exe
  echo "$dir/$target/release/$exe"
}

zip_dir() { # ARCHIVE DIR: DIR's files at the archive's top level
  local archive=$1 dir=$2 py
  if command -v zip >/dev/null; then
    (cd "$dir" && zip -q -X -r "$archive" .)
  elif py=$(command -v python3 || command -v python); then
    # Windows runners have Python but no zip in Git Bash.
    (cd "$dir" && "$py" -m zipfile -c "$archive" ./*)
  else
    die "no zip or python to write $archive"
  fi
}

pack() {
  local target=$1 binary=$2 version=$3 outdir=$4 archive os stage
  [[ -x $binary ]] || die "not an executable: $binary"
  archive=$(name "$target" "$version")
  os=$(platform "$target")
  os=${os%/*}
  mkdir -p "$outdir"
  outdir=$(cd "$outdir" && pwd)
  stage=$(mktemp -d)
  trap 'rm -rf "$stage"' RETURN
  if [[ $os == windows ]]; then
    cp "$binary" "$stage/kubectl-sts.exe"
    # kubectl looks the helper up with Go's exec.LookPath, which on Windows tries the PATHEXT
    # extensions, so kubectl_complete-sts.cmd is found.
    printf '@kubectl-sts.exe __complete %%*\r\n' >"$stage/kubectl_complete-sts.cmd"
  else
    cp "$binary" "$stage/kubectl-sts"
    cp "$root/packaging/kubectl_complete-sts" "$stage/kubectl_complete-sts"
    chmod 0755 "$stage/kubectl-sts" "$stage/kubectl_complete-sts"
  fi
  cp "$root/LICENSE" "$root/README.md" "$stage/"
  rm -f "$outdir/$archive"
  if [[ $os == windows ]]; then
    zip_dir "$outdir/$archive" "$stage"
  else
    # Owner and order fixed, so the archive does not carry the build machine's user names
    # (GNU tar spells it --owner, macOS's bsdtar --uid).
    local owner=(--owner=0 --group=0 --numeric-owner)
    tar --version 2>/dev/null | grep -q 'GNU tar' || owner=(--uid 0 --gid 0)
    (cd "$stage" && tar "${owner[@]}" -czf "$outdir/$archive" \
      kubectl-sts kubectl_complete-sts LICENSE README.md)
  fi
  echo "$(sha256_of "$outdir/$archive")  $archive" >"$outdir/$archive.sha256"
  echo "$outdir/$archive"
}

# krew-release-bot's rendering (pkg/source/template.go): `{{ .TagName }}` is the tag, and
# `{{ addURIAndSha "URL" .TagName }}` becomes `uri: URL` plus a `sha256:` line indented by four
# spaces, the indentation of a platform entry's fields.
krew_manifest() {
  local template=$1 tag=$2 dist=$3 line url file sum
  [[ -f $template ]] || die "no template $template"
  while IFS= read -r line || [[ -n $line ]]; do
    if [[ $line =~ ^([[:space:]]*)\{\{[[:space:]]*addURIAndSha[[:space:]]+\"([^\"]+)\"[[:space:]]+\.TagName[[:space:]]*\}\}[[:space:]]*$ ]]; then
      url=${BASH_REMATCH[2]//\{\{ .TagName \}\}/$tag}
      url=${url//\{\{.TagName\}\}/$tag}
      file="$dist/${url##*/}"
      if [[ -f $file ]]; then
        sum=$(sha256_of "$file")
      elif [[ ${KREW_ALLOW_MISSING:-} == 1 ]]; then
        # The SHA-256 of nothing: a valid value (64 zeros would be read as the YAML number 0).
        sum=e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
      else
        die "no archive $file for $url"
      fi
      printf '%suri: %s\n    sha256: %s\n' "${BASH_REMATCH[1]}" "$url" "$sum"
    else
      line=${line//\{\{ .TagName \}\}/$tag}
      printf '%s\n' "${line//\{\{.TagName\}\}/$tag}"
    fi
  done <"$template"
}

cmd=${1:-}
shift || true
case $cmd in
  targets) printf '%s\n' "${RELEASE_TARGETS[@]}" ;;
  platform) [[ $# == 1 ]] || die "usage: platform TARGET"; platform "$1" ;;
  host-target) host_target ;;
  name) [[ $# == 2 ]] || die "usage: name TARGET VERSION"; name "$1" "$2" ;;
  build) [[ $# == 1 ]] || die "usage: build TARGET"; build "$1" ;;
  pack) [[ $# == 4 ]] || die "usage: pack TARGET BINARY VERSION OUTDIR"; pack "$@" ;;
  krew-manifest)
    [[ $# == 3 ]] || die "usage: krew-manifest TEMPLATE TAG DIST"
    krew_manifest "$@"
    ;;
  *) die "usage: package.sh targets|platform|host-target|name|build|pack|krew-manifest … (see the header)" ;;
esac
