# Sourced by scripts/coverage.sh and scripts/test.sh: line coverage with
# cargo-llvm-cov, measured on the one run of the test suite.
#
# The suite is not run a second time for coverage: coverage_env makes every
# later cargo command in the shell build the workspace's own crates with
# `-C instrument-coverage` (cargo-llvm-cov's `show-env`, a rustc wrapper
# that leaves dependencies alone), and every process those builds start
# writes its own profile (LLVM_PROFILE_FILE with %p, the process ID): the
# test binaries, and each `pulse` the CLI tests spawn. coverage_report
# then merges them. The instrumented build has a target directory of its
# own (`<target>/llvm-cov-target`), so it never replaces the plain build
# a developer runs; scripts after coverage_env find their binaries through
# ${CARGO_TARGET_DIR}, which points there. Loom (scripts/loom.sh) drops
# these settings: it builds with its own cfg, in its own target directory.
#
# The tools: Debian's llvm-22 (llvm-cov-22 and llvm-profdata-22, the LLVM
# that rustc 1.95 is built on: a profile is read only by the LLVM version
# that wrote it) and cargo-llvm-cov from crates.io. No rustup component.

# The gate: total line coverage below this fails scripts/test.sh.
PULSE_COVERAGE_MIN=${PULSE_COVERAGE_MIN:-80}

# What is measured: the workspace's own source, less
# - bench/benches/ (criterion benches), bench/src/main.rs and
#   bench/src/harness/ (the sweep harness, scripts/bench.sh), and the lib
#   modules only they use (units, setup, quick): benchmark code, run by
#   the bench smoke, never shipped. bench/src's chart, machine, measure and
#   report stay in: `pulse compare` runs them. bench/baselines is Go and
#   Python, which LLVM never sees.
# - loom-tests/: compiled only under `--cfg pulse_loom` (scripts/loom.sh);
#   the code it checks, pulse_core::sync and ::pool, is counted in
#   probe-core.
# - tests/ folders (the tests themselves): cargo-llvm-cov's own default.
# fixtures/ counts: it ships inside the binary as `pulse farm`. fuzz/ is
# not a workspace member and is not built.
PULSE_COVERAGE_IGNORE='(^|/)(bench/benches|bench/src/harness|loom-tests)/|(^|/)bench/src/(main|units|setup|quick)\.rs$'

# The LLVM tools matching rustc's LLVM, found by version number.
coverage_llvm_major() {
    rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p'
}

# coverage_install: install llvm-NN and cargo-llvm-cov when missing.
coverage_install() {
    local major
    major=$(coverage_llvm_major)
    if ! command -v "llvm-cov-$major" >/dev/null || ! command -v "llvm-profdata-$major" >/dev/null; then
        printf '\n== installing llvm-%s (llvm-cov-%s, llvm-profdata-%s)\n' "$major" "$major" "$major"
        apt_install "llvm-$major"
    fi
    if ! cargo llvm-cov --version >/dev/null 2>&1; then
        # A release build from source: about 2 CPU-minutes (measured on 2
        # cores), once per machine.
        printf '\n== installing cargo-llvm-cov (cargo install --locked, once per machine)\n'
        cargo install --locked cargo-llvm-cov ||
            echo "could not install cargo-llvm-cov: the coverage gate will fail" >&2
    fi
}

# coverage_tools: export LLVM_COV and LLVM_PROFDATA; fail, naming the fix,
# when a tool is missing.
coverage_tools() {
    local major
    major=$(coverage_llvm_major)
    export LLVM_COV="${LLVM_COV:-$(command -v "llvm-cov-$major" || true)}"
    export LLVM_PROFDATA="${LLVM_PROFDATA:-$(command -v "llvm-profdata-$major" || true)}"
    if [ -z "$LLVM_COV" ] || [ -z "$LLVM_PROFDATA" ]; then
        echo "coverage: no llvm-cov-$major/llvm-profdata-$major: run 'sudo apt-get install llvm-$major'" >&2
        return 1
    fi
    if ! cargo llvm-cov --version >/dev/null 2>&1; then
        echo "coverage: no cargo-llvm-cov: run 'cargo install --locked cargo-llvm-cov'" >&2
        return 1
    fi
}

# coverage_env [--keep]: from here on, cargo builds the workspace
# instrumented, in <target>/llvm-cov-target, and old profiles are removed
# (kept with --keep, to report on them). Without the tools it says so and
# changes nothing (the gate then fails).
coverage_env() {
    if [ -n "${CARGO_LLVM_COV:-}" ]; then return 0; fi
    coverage_tools || return 0
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/llvm-cov-target"
    local env
    env=$(cargo llvm-cov show-env --sh) || return 1
    eval "$env"
    if [ "${1:-}" != --keep ]; then
        cargo llvm-cov clean --profraw-only
        echo "coverage: the workspace builds instrumented in $CARGO_TARGET_DIR"
    fi
}

# coverage_off: undo coverage_env in this shell (for a build that must not
# be instrumented; it then uses the plain target directory again).
coverage_off() {
    if [ -z "${CARGO_LLVM_COV:-}" ]; then return 0; fi
    local v
    for v in $(compgen -e | grep -E '^(__)?CARGO_LLVM_COV'); do unset "$v"; done
    unset RUSTC_WRAPPER LLVM_PROFILE_FILE
    export CARGO_TARGET_DIR="${CARGO_TARGET_DIR%/llvm-cov-target}"
}
