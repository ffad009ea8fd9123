#!/usr/bin/env bash
# Regenerates reports/ from one run on this machine: criterion's benches in
# full mode (cargo bench -p pulse-bench, under 10 minutes on 2 cores), then
# the sweep harness (pulse-bench), which reads criterion's results and writes
# reports/README.md, reports/charts/ and reports/runs/<date>-<host>/ (exact
# commands, versions, machine, commit, raw CSV). Nothing in reports/ is edited
# by hand: change the harness and run this again.
#
#   scripts/bench.sh                       # everything
#   scripts/bench.sh --regimes workers,memory   # some harness regimes (no criterion)
#   PULSE_BENCH_QUICK=1 scripts/bench.sh   # a smoke run: every step, tiny sizes
#
# As root it installs the peers (wrk, hey, fping, blackbox_exporter), Go (the
# stacks regime's baselines), nginx
# (the kernel regime's server) and the syscall counters (strace, perf) when
# missing, without starting their services (scripts/apt.sh); otherwise their rows are skipped and
# the report says why. Run it on a quiet machine, and compare figures as
# ratios within one run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
target=${CARGO_TARGET_DIR:-target}

step() { printf '\n== %s\n' "$*"; }

. scripts/apt.sh
missing=()
for tool in wrk hey fping prometheus-blackbox-exporter perf strace; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -x /usr/sbin/nginx ] || missing+=(nginx-light)
# The stacks regime's Go baselines (bench/baselines/go).
command -v go >/dev/null || missing+=(golang-go)
if ((${#missing[@]})); then
    pkgs=("${missing[@]/perf/linux-perf}")
    step "installing ${pkgs[*]}"
    # Without starting their services: see scripts/apt.sh.
    apt_install "${pkgs[@]}"
fi

step "cargo build --release (pulse, pulse-bench)"
cargo build --release --locked -p pulse -p pulse-bench

steps="cargo build --release --locked -p pulse -p pulse-bench"
if (($# == 0)); then
    step "criterion benches (cargo bench -p pulse-bench)"
    # Only this run's results are read into the report.
    rm -rf "$target/criterion"
    cargo bench --locked -p pulse-bench
    steps+="; cargo bench --locked -p pulse-bench"
fi

step "sweep harness (pulse-bench)"
steps+="; $target/release/pulse-bench --pulse $target/release/pulse --criterion $target/criterion --out reports $*"
PULSE_BENCH_STEPS="$steps" "$target/release/pulse-bench" \
    --pulse "$target/release/pulse" --criterion "$target/criterion" --out reports "$@"
