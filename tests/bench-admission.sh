#!/usr/bin/env bash
# `make bench-admission`: admission latency as the API server sees it
# (tests/src/bin/sts-admission-bench.rs), for sts-webhook (release build) and for
# floor-webhook (tests/go/floor-webhook: Go's standard library answering the same patch with no
# API call, the floor any webhook reaches on this machine), RUNS runs of each, interleaved
# (sts-webhook, floor, sts-webhook, …), each on a fresh local control plane. Prints every run's
# report (also kept in target/bench/admission-NAME-RUN.txt) and, at the end, each run's median
# line. Extra arguments go to sts-admission-bench
# (e.g. --creates 100 --rounds 3 --pause-ms 20). README "Performance".
set -euo pipefail

RUNS=${RUNS:-2}
CARGO=${CARGO:-cargo}
GO=${GO:-go}
repo=$(git rev-parse --show-toplevel)
cd "$repo"
target_dir=$($CARGO metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
bench_dir="$target_dir/bench"
mkdir -p "$bench_dir"

$CARGO build --release -p sts-webhook
$CARGO build -p sts-e2e --bin sts-cluster --bin sts-admission-bench
(cd tests/go/floor-webhook && $GO build -o "$bench_dir/floor-webhook" .)
bash tests/control-plane/install.sh >/dev/null

summary=()
for run in $(seq 1 "$RUNS"); do
  for bin in "$target_dir/release/sts-webhook" "$bench_dir/floor-webhook"; do
    name=$(basename "$bin")
    echo "== $name, run $run of $RUNS, $(date -u +%H:%M:%S), load average $(cut -d' ' -f1-3 /proc/loadavg)"
    log="$bench_dir/admission-$name-$run.txt"
    # The harness's progress lines left out; a failed run stops the script (pipefail).
    "$target_dir/debug/sts-cluster" run -- "$target_dir/debug/sts-admission-bench" \
      --webhook-bin "$bin" "$@" 2>&1 | { grep -v -E '(INFO|DEBUG).*sts_e2e::' || true; } | tee "$log"
    summary+=("$name run $run: $(grep '^median' "$log")")
  done
done
echo "== medians of each run"
printf '%s\n' "${summary[@]}"
