#!/usr/bin/env bash
# Soak harness for `pulse serve` (issue 5): run each model's exporter for
# ROUNDS rounds (default 1000) against the `smoke` farm at a short interval,
# and print what a leak or a stacked round would change: resident memory
# after rounds 1, 10, 100 and the last (and the peak after any round), and
# the rounds skipped.
#
#   scripts/soak-serve.sh                      # tokio and threads, 1000 rounds
#   RUNTIMES="tokio smol async-std threads rayon" ROUNDS=200 scripts/soak-serve.sh
#
# Every round probes the 34 smoke hosts with a 300 ms timeout and no spread,
# so a round takes about 300 ms against a 100 ms interval: every round
# overruns, and the ticks it covers must be skipped (and counted), never run
# late or stacked. Round 1 is before the allocator's arenas and the
# runtime's pools have warmed up; compare round 10 or 100 with the last.
# Not part of CI: 1000 rounds take about 6 minutes a model.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${ROUNDS:-1000}
interval=${INTERVAL:-100ms}
runtimes=${RUNTIMES:-tokio threads}

cargo build --release --locked --quiet
pulse=./target/release/pulse
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; wait 2>/dev/null; rm -rf "$tmp"' EXIT
"$pulse" farm --scenario smoke --write-targets "$tmp/targets.txt" 2>"$tmp/farm.log" &
for _ in $(seq 100); do [ -s "$tmp/targets.txt" ] && break; sleep 0.1; done
[ -s "$tmp/targets.txt" ] || { cat "$tmp/farm.log"; exit 1; }

# The resident memory the log reports after round N.
rss_at() { sed -nE "s/.* round $2: .*resident ([0-9.]+ MiB).*/\1/p" "$1" | head -1; }

printf '%-10s %7s %8s %8s %11s %11s %11s %11s %11s\n' \
    model rounds skipped wall_s rss@1 rss@10 rss@100 "rss@$rounds" peak
for rt in $runtimes; do
    start=$(date +%s.%N)
    "$pulse" --runtime "$rt" -v serve --targets "$tmp/targets.txt" --listen 127.0.0.1:0 \
        --interval "$interval" --timeout 300ms --spread 0 --rounds "$rounds" 2>"$tmp/$rt.log"
    end=$(date +%s.%N)
    line=$(grep 'stopping after' "$tmp/$rt.log")
    skipped=$(sed -E 's/.*; ([0-9]+) skipped;.*/\1/' <<<"$line")
    peak=$(sed -E 's/.*peak after a round: ([0-9.]+ MiB).*/\1/' <<<"$line")
    wall=$(awk "BEGIN { print $end - $start }")
    printf '%-10s %7s %8s %8.1f %11s %11s %11s %11s %11s\n' "$rt" "$rounds" "$skipped" "$wall" \
        "$(rss_at "$tmp/$rt.log" 1)" "$(rss_at "$tmp/$rt.log" 10)" "$(rss_at "$tmp/$rt.log" 100)" \
        "$(rss_at "$tmp/$rt.log" "$rounds")" "$peak"
done
