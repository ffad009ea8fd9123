#!/usr/bin/env bash
# A flamegraph of one scan per model (docs/runbooks/profiling.md).
#
#   scripts/profile.sh            # all five models, scenario `mixed`, release build:
#                                 # reports/flamegraphs/MODEL.svg and README.md
#   scripts/profile.sh --quick    # tokio, scenario `smoke`, the debug build, into a
#                                 # temporary directory; checks a non-empty SVG and
#                                 # summary come out (scripts/test.sh runs this)
#
# Environment: MODELS="tokio rayon" and SCENARIO=latency choose others; OUT=DIR
# writes there instead; FOLDED=DIR keeps the folded stacks there. For each
# model it runs, as root or with perf_event_paranoid <= 1 (or CAP_PERFMON):
#
#   pulse farm --scenario S --write-targets T &          # the hosts, on loopback
#   perf record -e cpu-clock -F 2999 --call-graph dwarf,16384 -o M.data -- \
#       pulse --runtime M scan --targets T --workers W --timeout D --output json
#   perf script --no-inline -i M.data | inferno-collapse-perf --all | sed ... >M.folded
#   inferno-flamegraph <M.folded >M.svg
#
# then scripts/flame-summary.py writes README.md from the folded stacks.
# Only the scanner is recorded, not the farm. `cpu-clock` is the kernel's
# timer event: it works where hardware counters are not exposed (VMs,
# containers) and samples only while a thread is on a CPU, so idle waits
# cost nothing. DWARF call graphs: Rust's std and most crates are built
# without frame pointers, so `--call-graph fp` loses most callers; with
# dwarf, perf copies 16 KiB of each sampled thread's stack and unwinds it
# afterwards with the binary's unwind tables (.eh_frame, always there).
# `--no-inline`: every frame is a real function symbol, whose demangled name
# carries its crate path (`tokio::runtime::...`), and inlined code counts
# in the function it was inlined into. With inline frames, perf runs
# addr2line on every address against the release profile's line tables
# (`debug = "line-tables-only"`): several times slower, and the inlined
# names it gets (`{closure#0}`, `poll<...>`) have no crate path to place
# them by.
# Installs inferno (`cargo install --locked inferno`) when it is missing,
# and says how long that took.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=
[ "${1:-}" = --quick ] && quick=1
if [ -n "$quick" ]; then
    models=${MODELS:-tokio}
    scenario=${SCENARIO:-smoke}
else
    models=${MODELS:-tokio smol async-std threads rayon}
    scenario=${SCENARIO:-mixed}
fi

tmp=$(mktemp -d)
farm_pid=
cleanup() {
    if [ -n "$farm_pid" ]; then kill "$farm_pid" 2>/dev/null || true; wait "$farm_pid" 2>/dev/null || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

skip() {
    echo "profile: skipped: $*"
    exit 0
}
# Can perf sample here? (Not in a container without perf_event_open, or
# with perf_event_paranoid 2 or more for a user without CAP_PERFMON.)
command -v perf >/dev/null || skip "perf is not installed (Debian: apt-get install linux-perf)"
if ! perf record -q -e cpu-clock -o "$tmp/probe.data" -- true >"$tmp/probe.log" 2>&1; then
    skip "perf cannot record here (perf_event_paranoid is $(cat /proc/sys/kernel/perf_event_paranoid 2>/dev/null || echo unknown)): $(head -3 "$tmp/probe.log")"
fi

export PATH="$HOME/.cargo/bin:$PATH"
if ! command -v inferno-collapse-perf >/dev/null || ! command -v inferno-flamegraph >/dev/null; then
    echo "profile: installing inferno (cargo install --locked inferno)"
    t0=$(date +%s)
    # Outside the coverage settings a caller may have on (scripts/test.sh):
    # inferno is a tool from crates.io, not code to measure.
    (. scripts/coverage-env.sh && coverage_off && cargo install --locked --quiet inferno)
    echo "profile: inferno installed in $(($(date +%s) - t0)) s"
fi

if [ -n "$quick" ]; then
    cargo build --locked --quiet -p pulse
    pulse="${CARGO_TARGET_DIR:-target}/debug/pulse"
    out=${OUT:-$tmp/out}
else
    cargo build --release --locked --quiet -p pulse
    pulse="${CARGO_TARGET_DIR:-target}/release/pulse"
    out=${OUT:-reports/flamegraphs}
fi
# The folded stacks (the summary's input) are kept only when asked for.
folded=${FOLDED:-$tmp/folded}
mkdir -p "$out" "$folded"

"$pulse" farm --scenario "$scenario" --write-targets "$tmp/targets.txt" 2>"$tmp/farm.log" &
farm_pid=$!
for _ in $(seq 300); do [ -s "$tmp/targets.txt" ] && break; sleep 0.1; done
[ -s "$tmp/targets.txt" ] || { cat "$tmp/farm.log" >&2; exit 1; }
# The scenario's own workers and timeout, as `pulse compare` uses them.
toml=fixtures/scenarios/$scenario.toml
[ -f "$toml" ] || toml=$scenario
workers=$(sed -n 's/^workers *= *\([0-9]*\).*/\1/p' "$toml")
timeout=$(sed -n 's/^timeout *= *"\(.*\)".*/\1/p' "$toml")
hosts=$(grep -cv '^#' "$tmp/targets.txt")

for m in $models; do
    echo "profile: $m: recording one scan of $hosts targets ($scenario, $workers workers, timeout $timeout)"
    t0=$(date +%s.%N)
    perf record -q -e cpu-clock -F 2999 --call-graph dwarf,16384 -o "$tmp/$m.data" -- \
        "$pulse" --runtime "$m" scan --targets "$tmp/targets.txt" --workers "$workers" \
        --timeout "$timeout" --output json >"$tmp/$m.json" 2>"$tmp/$m.log" || [ $? -eq 1 ]
    t1=$(date +%s.%N)
    # Threads of one pool are one root (pulse-rayon-17 -> pulse-rayon): a
    # flamegraph per thread would be 200 slivers, and an SVG of megabytes.
    perf script --no-inline -i "$tmp/$m.data" 2>/dev/null | inferno-collapse-perf --all |
        sed -E 's/^([^;]*[a-z])-[0-9]+;/\1;/' >"$folded/$m.folded"
    t2=$(date +%s.%N)
    inferno-flamegraph --title "pulse --runtime $m scan: scenario $scenario ($hosts targets, $workers workers)" \
        --subtitle "perf record -e cpu-clock -F 2999 --call-graph dwarf; scripts/profile.sh" \
        --countname ns <"$folded/$m.folded" >"$out/$m.svg"
    awk -v m="$m" -v a="$t0" -v b="$t1" -v c="$t2" -v n="$(wc -l <"$folded/$m.folded")" 'BEGIN {
        printf "profile: %s: scan %.1f s under perf, perf script + collapse %.1f s, %d stacks\n", m, b - a, c - b, n }'
done

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# Uncommitted changes, except this run's own output.
dirty=$(git status --porcelain -- . ":(exclude)$out" 2>/dev/null | grep -q . && echo " (with uncommitted changes)" || true)
# shellcheck disable=SC2086
python3 scripts/flame-summary.py "$folded" $models --binary "$pulse" --out "$out/README.md" \
    --meta "date=$(date -u +%Y-%m-%dT%H:%MZ)" \
    --meta "command=scripts/profile.sh${quick:+ --quick} (MODELS=\"$models\" SCENARIO=$scenario)" \
    --meta "scan=\`pulse --runtime MODEL scan --targets T --workers $workers --timeout $timeout --output json\` against \`pulse farm --scenario $scenario\` ($hosts targets)" \
    --meta "build=$([ -n "$quick" ] && echo debug || echo 'release (debug = "line-tables-only")'), commit $rev$dirty" \
    --meta "perf=$(perf --version), \`perf record -e cpu-clock -F 2999 --call-graph dwarf,16384\`, \`perf script --no-inline\`" \
    --meta "inferno=$(cargo install --list 2>/dev/null | sed -n "s/^inferno \(v[^:]*\):/\1/p")" \
    --meta "rustc=$(rustc --version)" \
    --meta "machine=$(nproc) CPUs ($(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)), Linux $(uname -r)"

for m in $models; do
    [ -s "$out/$m.svg" ] && grep -q '<svg' "$out/$m.svg" || { echo "profile: $out/$m.svg is empty" >&2; exit 1; }
done
grep -q '^| \[' "$out/README.md" || { echo "profile: $out/README.md has no figures" >&2; exit 1; }
echo "profile: ok: $(for m in $models; do printf '%s ' "$out/$m.svg"; done)$out/README.md"
if [ -n "$quick" ]; then sed -n '/^| model/,/^$/p' "$out/README.md"; fi
