#!/usr/bin/env bash
# Model-check pulse's hand-written synchronization with loom (loom-tests/).
#
# Builds with `--cfg pulse_loom` (not plain `loom`: smol's dependencies read
# that one), which swaps pulse_core::sync's std primitives for loom's, in a
# target directory of its own so that it never invalidates the normal build.
# Release mode: loom runs each test body once per interleaving, thousands of
# times, and an optimised build does that several times faster.
#
# Every test states its preemption bound; the README's "Loom" section says
# what is checked and what is out of reach. Extra arguments go to the test
# binaries (e.g. `scripts/loom.sh broken --nocapture` prints the failing
# interleavings loom finds in the deliberately broken variants).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Never instrumented for coverage: scripts/test.sh runs this after
# coverage_env (scripts/coverage-env.sh), whose rustc wrapper and
# profile settings would otherwise reach these builds too.
. scripts/coverage-env.sh
coverage_off

export RUSTFLAGS="--cfg pulse_loom ${RUSTFLAGS:-}"
export RUSTDOCFLAGS="--cfg pulse_loom ${RUSTDOCFLAGS:-}"
export CARGO_TARGET_DIR="${PULSE_LOOM_TARGET_DIR:-$PWD/target/loom}"
# loom's own defaults, spelt out: a failing model reports source locations.
export LOOM_LOCATION=1

# Say up front what runs and for how long: the run is quiet for minutes, and
# libtest's "has been running for over 60 seconds" reads like a hang.
tests=$(cat loom-tests/tests/*.rs | grep -c '^#\[test\]')
broken=$(cat loom-tests/tests/*.rs | grep -A1 '^#\[test\]' | grep -c '^fn broken_')
echo "scripts/loom.sh: $tests loom model checks (loom-tests/tests/, $broken of them deliberately broken variants in which loom must find the bug)," \
    "built in release mode with --cfg pulse_loom in $CARGO_TARGET_DIR." \
    "About 4 to 8 minutes on 2 cores (3.5 to 4.5 measured on idle cores, build included; 7 in a full scripts/test.sh run); the two-worker pool tests take most of it," \
    "and libtest says they have been \"running for over 60 seconds\": expected, not a hang."
start=$(date +%s)
cargo test --release --locked -p pulse-loom-tests --tests -- "$@"
echo "scripts/loom.sh: loom checks passed in $(($(date +%s) - start)) s (build included)"
