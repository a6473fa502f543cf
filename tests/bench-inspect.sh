#!/usr/bin/env bash
# `make bench-inspect`: times `kubectl sts inspect app-7 -o json` at 100 and 1000 claims on the
# local control plane (tests/src/bin/sts-bench.rs), for the current plugin, the plugin from
# before inspect scaled with its StatefulSet (OLD_COMMIT), and the raw reads with kubectl.
# Release builds of both plugins. The old one is built once in a temporary git worktree outside
# the repository (removed afterwards) and kept as target/bench/kubectl-sts-OLD_COMMIT.
# Extra arguments go to sts-bench (e.g. --rounds 5 --sizes 10,100).
set -euo pipefail

OLD_COMMIT=${OLD_COMMIT:-e7f0f72}
CARGO=${CARGO:-cargo}
repo=$(git rev-parse --show-toplevel)
cd "$repo"
target_dir=$($CARGO metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bench_dir="$target_dir/bench"
mkdir -p "$bench_dir"
old_bin="$bench_dir/kubectl-sts-$OLD_COMMIT"

if [[ ! -x "$old_bin" ]]; then
  tree=$(mktemp -d "${TMPDIR:-/tmp}/sts-bench-old-XXXXXX")
  cleanup() { git -C "$repo" worktree remove --force "$tree" >/dev/null 2>&1 || true; rm -rf "$tree"; }
  trap cleanup EXIT
  git worktree add --detach "$tree" "$OLD_COMMIT" >/dev/null
  # A target dir of its own: in the shared one, cargo took the old commit's workspace crates
  # (same names and versions, newer mtimes) as fresh for the current build. Removed afterwards.
  old_target="$bench_dir/target-$OLD_COMMIT"
  (cd "$tree" && CARGO_TARGET_DIR="$old_target" $CARGO build --release -p kubectl-sts)
  cp "$old_target/release/kubectl-sts" "$old_bin"
  rm -rf "$old_target"
  cleanup
  trap - EXIT
fi

$CARGO build --release -p kubectl-sts
cp "$target_dir/release/kubectl-sts" "$bench_dir/kubectl-sts-new"
$CARGO build -p sts-e2e --bin sts-bench
bash tests/control-plane/install.sh >/dev/null

exec "$target_dir/debug/sts-bench" --new "$bench_dir/kubectl-sts-new" --old "$old_bin" \
  --old-label "$OLD_COMMIT" --logs "$bench_dir/logs" "$@"
