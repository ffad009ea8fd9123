#!/usr/bin/env bash
# Line coverage of the workspace (what is measured and left out:
# scripts/coverage-env.sh), and the gate: exits 1 below
# PULSE_COVERAGE_MIN (80) percent.
#
#   scripts/coverage.sh           run the test suite once, instrumented,
#                                 then report (what scripts/test.sh runs,
#                                 less fmt, clippy and the other steps)
#   scripts/coverage.sh --report  report on the profiles the last
#                                 instrumented run left (scripts/test.sh
#                                 calls this after its test step)
#   scripts/coverage.sh --html    the same, and an HTML page of every line
#                                 in <target>/llvm-cov-target/html
#
# Prints line coverage per crate, the ten files with the most lines never
# run, and the total. The per-file figures are left in
# <target>/llvm-cov-target/coverage.json.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
. scripts/apt.sh
. scripts/coverage-env.sh

tests_failed=0
mode=${1:-}
case "$mode" in
--report | --html)
    coverage_tools
    coverage_env --keep
    ;;
"")
    coverage_install
    coverage_tools
    coverage_env
    start=$(date +%s)
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --locked --no-fail-fast || tests_failed=$?
    else
        cargo test --workspace --locked --no-fail-fast || tests_failed=$?
    fi
    echo "coverage: instrumented build and tests took $(($(date +%s) - start)) s"
    ;;
*)
    echo "usage: scripts/coverage.sh [--report | --html]" >&2
    exit 2
    ;;
esac

if ! compgen -G "$CARGO_LLVM_COV_TARGET_DIR/*.profraw" >/dev/null; then
    echo "coverage: no profiles in $CARGO_LLVM_COV_TARGET_DIR: run the tests instrumented first (scripts/coverage.sh)" >&2
    exit 1
fi
json="$CARGO_LLVM_COV_TARGET_DIR/coverage.json"
start=$(date +%s)
# --failure-mode all: a profile that cannot be read (a process killed while
# it wrote its profile at exit: a test's SIGKILL can land then) is left out,
# named by llvm-profdata's warning and counted below, instead of failing
# the merge of every other profile. If none can be read, it still fails.
merge_log="$CARGO_LLVM_COV_TARGET_DIR/merge.log"
merged=0
cargo llvm-cov report --workspace --json --summary-only --failure-mode all \
    --ignore-filename-regex "$PULSE_COVERAGE_IGNORE" --output-path "$json" 2>"$merge_log" || merged=$?
cat "$merge_log" >&2
[ "$merged" -eq 0 ] || exit "$merged"
profiles=$(compgen -G "$CARGO_LLVM_COV_TARGET_DIR/*.profraw" | wc -l)
unreadable=$(grep -c 'invalid instrumentation profile' "$merge_log" || true)
echo "coverage: $((profiles - unreadable)) of $profiles profiles merged in $(($(date +%s) - start)) s"
if [ "$unreadable" -gt 0 ]; then
    echo "coverage: $unreadable profile(s) unreadable and left out (named above)"
fi

if [ "$mode" = --html ]; then
    cargo llvm-cov report --workspace --html --ignore-filename-regex "$PULSE_COVERAGE_IGNORE" \
        --output-dir "$CARGO_LLVM_COV_TARGET_DIR"
    echo "coverage: every line in $CARGO_LLVM_COV_TARGET_DIR/html/index.html"
fi

gate=0
python3 scripts/coverage-summary.py "$json" "$PWD" "$PULSE_COVERAGE_MIN" || gate=$?
if [ "$tests_failed" -ne 0 ]; then
    echo "coverage: the tests failed (exit $tests_failed)" >&2
    exit "$tests_failed"
fi
exit "$gate"
