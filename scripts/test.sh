#!/usr/bin/env bash
# pulse's test command (the README's second set-up command; .ci/run calls it).
#
# Installs what the tests need when it is missing (Debian's prometheus
# package: promtool, and the Prometheus server that tests/cli/prometheus.rs
# starts on loopback to scrape `pulse serve`; nginx-light for the
# real-server tests; golang-go for the Go baselines; chromium for the
# status page), then runs:
# rustfmt, clippy with warnings as errors, the whole test suite (with the
# property tests and the conformance suite's hostile-server table for all
# five models), the loom model checks (scripts/loom.sh, a few minutes), the
# study guide's links and figures (scripts/check-guide.py --final), and
# `promtool check metrics` on real `pulse scan --output prom` output.
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
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    # Without starting their services: see scripts/apt.sh.
    apt_install "${missing[@]}"
fi

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    cargo test --workspace --locked --no-fail-fast
fi
cargo test --workspace --doc --locked --quiet

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
