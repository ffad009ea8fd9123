#!/usr/bin/env bash
# pulse's test command (the README's second set-up command; .ci/run calls it).
#
# Installs what the tests need when it is missing (Debian's prometheus
# package: promtool, and the Prometheus server that tests/cli/prometheus.rs
# starts on loopback to scrape `pulse serve`; nginx-light for the
# real-server tests; golang-go for the Go baselines; chromium for the
# status page; llvm-22 and cargo-llvm-cov for coverage), then runs:
# rustfmt, clippy with warnings as errors, the whole test suite (with the
# property tests and the conformance suite's hostile-server table for all
# five models) built instrumented, the coverage gate (line coverage of the
# workspace at least 80%: scripts/coverage.sh), a bench smoke, the loom
# model checks (scripts/loom.sh, a few minutes), the study guide's links
# and figures (scripts/check-guide.py --final), `promtool check metrics` on
# real `pulse scan --output prom` output, every command README.md shows,
# after a real `cargo install --path .` (scripts/check-readme.py), and the
# two runbooks in docs/runbooks/, executed (scripts/runbook-exporter.sh,
# scripts/profile.sh --quick). README.md's Set-up lists the steps and about
# how long they take.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() { printf '\n== %s\n' "$*"; }
. scripts/apt.sh

missing=()
command -v promtool >/dev/null || missing+=(prometheus)
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
# The Go baselines (bench/baselines/go, tests/cli/baselines.rs); skipped
# with the reason when it cannot be installed.
command -v go >/dev/null || missing+=(golang-go)
# Headless Chromium renders `pulse serve`'s status page in
# tests/cli/serve_page.rs (skipped with the reason without it), and takes
# reports/serve-page.png (scripts/screenshot-page.sh).
[ -x /usr/bin/chromium ] || missing+=(chromium)
# `pulse completions` and `pulse man` (tests/cli/completions.rs): the
# scripts are loaded in zsh and fish, the pages rendered by groff; each
# test skips with the reason without its tool.
command -v zsh >/dev/null || missing+=(zsh)
command -v fish >/dev/null || missing+=(fish)
command -v groff >/dev/null || missing+=(groff-base)
# perf for the profiling runbook's step (scripts/profile.sh --quick).
command -v perf >/dev/null || missing+=(linux-perf)
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    # Without starting their services: see scripts/apt.sh.
    apt_install "${missing[@]}"
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo doc (warnings are errors)"
# The API docs build clean: a broken intra-doc link fails here, not in a
# reader's browser. About a minute on 2 cores: the dependencies' metadata
# is clippy's (rustdoc documents only the 12 workspace crates).
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --locked --quiet

# --- coverage (scripts/coverage-env.sh): the test step below runs
# instrumented, once; every later cargo command in this script builds in
# ${CARGO_TARGET_DIR}/llvm-cov-target, which CARGO_TARGET_DIR now names.
. scripts/coverage-env.sh
coverage_install
step "coverage: the tests run instrumented (cargo-llvm-cov)"
coverage_env
# --- end coverage

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
cargo test --workspace --doc --locked --quiet

# --- coverage gate
step "coverage: line coverage of the workspace, at least ${PULSE_COVERAGE_MIN}% (scripts/coverage.sh --report)"
scripts/coverage.sh --report
# --- end coverage gate

step "bench smoke (PULSE_BENCH_QUICK=1: every criterion bench once, the harness on two regimes)"
# Debug build, sharing the test build's target dir: criterion runs each
# bench once in test mode; the harness runs the acceptance regime and is
# given an unknown regime name, which it must skip with a message.
PULSE_BENCH_QUICK=1 cargo test --locked -q -p pulse-bench --benches
cargo build --locked -q -p pulse -p pulse-bench
bench_out=$(mktemp -d)
PULSE_BENCH_QUICK=1 "${CARGO_TARGET_DIR:-target}/debug/pulse-bench" --regimes acceptance,nonsense \
    --pulse "${CARGO_TARGET_DIR:-target}/debug/pulse" --out "$bench_out"
grep -q "Verdict: done" "$bench_out/README.md"
grep -q "regime \`nonsense\`: no such regime" "$bench_out/README.md"
ls "$bench_out"/runs/*/acceptance.csv >/dev/null
rm -rf "$bench_out"
echo "bench smoke: ok"

step "loom model checks (scripts/loom.sh)"
scripts/loom.sh

step "promtool check config on the example Prometheus configs"
promtool check config examples/prometheus-one.yml examples/prometheus-sharded.yml

step "docs/guide.md: links and figures (scripts/check-guide.py --final)"
python3 scripts/check-guide.py --final

step "release configuration: dist plan against README \"Release archives\" (scripts/dist-check.sh)"
# Installs cargo-dist (the version dist-workspace.toml names) when missing:
# a one-time build of several minutes; then seconds, offline.
scripts/dist-check.sh

step "promtool check metrics on real scan output"
cargo build --locked --quiet
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$tmp" "$port" >/dev/null 2>&1 &
for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
cat >"$tmp/targets.txt" <<TARGETS
http://127.0.0.1:$port/
http://127.0.0.1:$port/missing
tcp://127.0.0.1:$port
tcp://127.0.0.1:1
http://name.invalid/
TARGETS
# ICMP needs a raw socket (root) or ping sockets; CI runs as root.
if [ "$(id -u)" -eq 0 ]; then echo "icmp://127.0.0.1" >>"$tmp/targets.txt"; fi
"${CARGO_TARGET_DIR:-target}/debug/pulse" scan --targets "$tmp/targets.txt" --output prom --timeout 2s >"$tmp/metrics.prom" || [ $? -eq 1 ]
[ "$(grep -c '^probe_success' "$tmp/metrics.prom")" -eq "$(wc -l <"$tmp/targets.txt")" ]
promtool check metrics <"$tmp/metrics.prom"
echo "promtool check metrics: ok ($(wc -l <"$tmp/metrics.prom") lines)"

step "README commands: cargo install --path . --locked, then every command README.md shows (scripts/check-readme.py)"
# The checker first proves on small READMEs that it fails where a reader
# would. Then the real install a new user does (into a temporary root, so
# ~/.cargo/bin is left alone; it reuses the release build of this target
# dir), and every `$ ` command of the README's console blocks, run as typed
# from a fresh directory with that pulse first on PATH.
python3 scripts/check-readme.py --self-test
# The README's exporter example talks to `pulse serve` with curl.
command -v curl >/dev/null || apt_install curl
if command -v promtool >/dev/null && command -v curl >/dev/null; then
    # Not instrumented (coverage_off): the release binary a user installs.
    (
        coverage_off
        readme_root=$(mktemp -d)
        readme_start=$(date +%s)
        cargo install --path . --locked --quiet --root "$readme_root"
        echo "cargo install --path . --locked: $(($(date +%s) - readme_start)) s"
        python3 scripts/check-readme.py --run --bin "$readme_root/bin"
        rm -rf "$readme_root"
    )
else
    echo "README commands skipped: its examples use promtool and curl, which are missing (see the apt-get line above)"
fi

step "docs/runbooks/exporter.md, executed (scripts/runbook-exporter.sh: two shards, a real Prometheus, the alerts)"
# About a minute: the unit, promtool on the configs and alerting rules,
# two shards against the smoke farm scraped by Prometheus, every metric
# family against the runbook's tables, a rolling restart.
scripts/runbook-exporter.sh

step "docs/runbooks/profiling.md, quick (scripts/profile.sh --quick: tokio, the smoke farm)"
# One model, one short scan under perf, folded and drawn with inferno
# (installed when missing); skipped with the reason where perf cannot record.
scripts/profile.sh --quick
