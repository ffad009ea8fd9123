#!/usr/bin/env bash
# Short cargo-fuzz runs of the parser, ICMP and session entry points
# (fuzz/). Optional, not in CI: libFuzzer needs a nightly toolchain and
# cargo-fuzz (`rustup toolchain install nightly; cargo install cargo-fuzz`).
# The property tests (in scripts/test.sh) cover the same entry points on
# stable. Usage: scripts/fuzz.sh [seconds per target, default 30]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

secs=${1:-30}
if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: no nightly toolchain; skipped (rustup toolchain install nightly)" >&2
    exit 0
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: cargo-fuzz is not installed; skipped (cargo install cargo-fuzz)" >&2
    exit 0
fi
# A target dir of its own: sanitizer builds share nothing with normal ones.
export CARGO_TARGET_DIR="${PULSE_FUZZ_TARGET_DIR:-$PWD/target/fuzz}"
for target in targets icmp session; do
    echo "== fuzz $target for ${secs}s"
    cargo +nightly fuzz run --fuzz-dir fuzz "$target" -- -max_total_time="$secs"
done
