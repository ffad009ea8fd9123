#!/usr/bin/env bash
# Runs docs/runbooks/exporter.md on loopback, so that the runbook stays true
# (scripts/test.sh runs it; about a minute after the build):
#
#   1. the systemd unit: `systemd-analyze verify` on examples/pulse-serve.service
#      with its paths pointed at this build (any complaint fails), and its
#      exposure score from `systemd-analyze security --offline=true`;
#   2. the Prometheus configs and the alerting rules: `promtool check config`,
#      `promtool check rules`, `promtool test rules`;
#   3. a targets file: the `smoke` farm (`pulse farm --write-targets`), an
#      https server whose certificate expires in 10 days, trusted with ca=, a
#      name with two addresses (all_addresses, one of them refused), a port
#      nothing listens on, and, as root, ICMP (one echo and a train);
#   4. `--check-config --shard I/N --list-targets` for N = 2 and 3: every
#      target in exactly one shard, and how many move from 2 shards to 3;
#   5. two shards of `pulse serve` and a real Prometheus (Debian's package)
#      loaded with examples/prometheus-sharded.yml, rewritten to their
#      ports, and examples/pulse-alerts.yml, with every `for:` cut to 5 s:
#      every target scraped exactly once, from the instance whose
#      --list-targets named it; PulseTargetDown fires for the closed port and
#      PulseCertificateExpiringSoon for the 10-day certificate;
#   6. every metric family the two shards and a /probe expose is the list in
#      the runbook's metrics tables, and nothing else;
#   7. a rolling restart of shard 1: SIGTERM drains and exits 0, a new
#      process on the same port, and every target is back in Prometheus.
#
# Everything it starts listens on 127.0.0.0/8 and is stopped by PID.
# PULSE=path/to/pulse uses that binary instead of building the debug one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

step() { printf '\n-- %s\n' "$*"; }
die() {
    echo "runbook-exporter: FAILED: $*" >&2
    exit 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_http URL [tries]: until URL answers 200 (0.1 s apart).
wait_http() {
    for _ in $(seq "${2:-100}"); do
        curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

if [ -z "${PULSE:-}" ]; then
    cargo build --locked --quiet -p pulse
    PULSE="${CARGO_TARGET_DIR:-target}/debug/pulse"
fi
PULSE=$(realpath "$PULSE")
for tool in promtool prometheus curl openssl; do
    command -v "$tool" >/dev/null || {
        echo "runbook-exporter: skipped: $tool is not installed (scripts/test.sh installs Debian's prometheus package)"
        exit 0
    }
done

. scripts/own-processes.sh

step "1. the systemd unit (systemd-analyze verify)"
if command -v systemd-analyze >/dev/null; then
    mkdir -p "$tmp/etc"
    cp examples/loopback.txt "$tmp/etc/targets.txt"
    sed -e "s#/usr/local/bin/pulse#$PULSE#g" -e "s#/etc/pulse#$tmp/etc#g" \
        examples/pulse-serve.service >"$tmp/pulse-serve.service"
    # verify exits 0 even for an unknown key or a bad value: any output fails.
    out=$(systemd-analyze verify "$tmp/pulse-serve.service" 2>&1) || die "systemd-analyze verify: $out"
    [ -z "$out" ] || die "systemd-analyze verify complained: $out"
    # The unit's own pre-start check, as systemd would run it.
    "$PULSE" serve --targets "$tmp/etc/targets.txt" --check-config
    echo "systemd-analyze verify: clean"
    systemd-analyze security --offline=true "$tmp/pulse-serve.service" 2>/dev/null |
        grep 'Overall exposure level' || true
else
    echo "skipped: systemd-analyze is not installed (Debian's systemd package)"
fi

step "2. Prometheus configs and alerting rules (promtool)"
promtool check config --syntax-only examples/prometheus-one.yml examples/prometheus-sharded.yml
promtool check rules examples/pulse-alerts.yml
promtool test rules examples/pulse-alerts.test.yml

step "3. a targets file: the smoke farm and a few more"
"$PULSE" farm --scenario smoke --write-targets "$tmp/farm.txt" 2>"$tmp/farm.log" &
pids+=($!)
for _ in $(seq 200); do [ -s "$tmp/farm.txt" ] && break; sleep 0.1; done
[ -s "$tmp/farm.txt" ] || die "the farm wrote no targets: $(cat "$tmp/farm.log")"

# An https server with a certificate from our own CA, expiring in 10 days.
mkdir -p "$tmp/tls" "$tmp/www"
echo "pulse-runbook-ok" >"$tmp/www/index.html"
(
    cd "$tmp/tls"
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.pem -days 30 -subj /CN=pulse-runbook-ca 2>/dev/null
    openssl req "${ec[@]}" -keyout leaf.key -out leaf.csr -subj /CN=127.0.0.1 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >leaf.ext
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 10 \
        -extfile leaf.ext -out leaf.pem 2>/dev/null
)
https_port=$(free_port)
python3 - "$https_port" "$tmp/tls" "$tmp/www" >/dev/null 2>&1 <<'PY' &
import functools, http.server, ssl, sys
port, tls, www = int(sys.argv[1]), sys.argv[2], sys.argv[3]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=www)
server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(f"{tls}/leaf.pem", f"{tls}/leaf.key")
server.socket = ctx.wrap_socket(server.socket, server_side=True)
server.serve_forever()
PY
pids+=($!)
for _ in $(seq 100); do
    curl -fsS -o /dev/null --cacert "$tmp/tls/ca.pem" "https://127.0.0.1:$https_port/" 2>/dev/null && break
    sleep 0.1
done
{
    cat "$tmp/farm.txt"
    echo "# added by scripts/runbook-exporter.sh"
    echo "https://127.0.0.1:$https_port/ ca=tls/ca.pem contains=pulse-runbook-ok"
    echo "tcp://127.0.0.1:1"
    # --resolve gives this name 127.0.0.1 and 127.0.0.2; only the first listens.
    echo "tcp://pulse-runbook.test:$https_port all_addresses"
    if [ "$(id -u)" -eq 0 ]; then
        echo "icmp://127.0.0.1"
        echo "icmp://127.0.0.2 count=3 interval=20ms"
    fi
} >"$tmp/targets.txt"
icmp=yes
[ "$(id -u)" -eq 0 ] || icmp=
# The targets as written (the first field of every line that is not a comment).
awk '!/^[[:space:]]*(#|$)/ { print $1 }' "$tmp/targets.txt" | sort >"$tmp/all.txt"
total=$(wc -l <"$tmp/all.txt")
echo "$total targets"
serve_args=(serve --targets "$tmp/targets.txt" --interval 2s --timeout 1s --grace 3s
    --resolve "pulse-runbook.test=127.0.0.1,127.0.0.2")
"$PULSE" "${serve_args[@]}" --check-config

step "4. which shard probes what (--check-config --shard I/N --list-targets)"
for n in 2 3; do
    for i in $(seq 0 $((n - 1))); do
        "$PULSE" "${serve_args[@]}" --check-config --shard "$i/$n" --list-targets 2>/dev/null |
            sort >"$tmp/shard-$i-of-$n.txt"
    done
    cat "$tmp"/shard-*-of-$n.txt | sort >"$tmp/union-$n.txt"
    cmp -s "$tmp/union-$n.txt" "$tmp/all.txt" ||
        die "the $n shards' lists are not the file's targets, each once: $(diff "$tmp/union-$n.txt" "$tmp/all.txt" | head)"
    echo "$n shards: $(for i in $(seq 0 $((n - 1))); do printf '%s ' "$(wc -l <"$tmp/shard-$i-of-$n.txt")"; done)targets: each target in exactly one"
done
# A target stays put from 2 shards to 3 when instance I keeps it.
stay=0
for i in 0 1; do stay=$((stay + $(comm -12 "$tmp/shard-$i-of-2.txt" "$tmp/shard-$i-of-3.txt" | wc -l))); done
echo "from 2 shards to 3: $((total - stay)) of $total targets change instance"

step "5. two shards and Prometheus"
p0=$(free_port)
p1=$(free_port)
pp=$(free_port)
start_shard() { # start_shard I PORT: one shard of 2, in the background
    "$PULSE" --runtime tokio -v "${serve_args[@]}" --shard "$1/2" --listen "127.0.0.1:$2" \
        2>>"$tmp/shard$1.log" &
    pids+=($!)
    eval "shard$1_pid=$!"
    wait_http "http://127.0.0.1:$2/healthz" || die "shard $1/2 did not start: $(cat "$tmp/shard$1.log")"
}
start_shard 0 "$p0"
start_shard 1 "$p1"

# The sharded example, pointed at the two shards, scraping every second,
# with the alerting rules (their `for:` cut to 5 s so that this takes
# seconds, not minutes).
python3 - examples/prometheus-sharded.yml "$tmp/prometheus.yml" "127.0.0.1:$p0" "127.0.0.1:$p1" <<'PY'
import sys
src, dst, a, b = sys.argv[1:]
text = open(src).read()
def swap(old, new):
    global text
    assert old in text, f"{src} no longer has {old!r}: update scripts/runbook-exporter.sh"
    text = text.replace(old, new)
swap("['host-a:9100', 'host-b:9100', 'host-c:9100']", f"['{a}', '{b}']")
swap("scrape_interval: 30s", "scrape_interval: 1s\n  evaluation_interval: 1s")
swap("scrape_timeout: 10s", "scrape_timeout: 900ms")
text += "\nrule_files: [pulse-alerts.yml]\n"
open(dst, "w").write(text)
PY
sed -E 's/^( +for:) .*/\1 5s/' examples/pulse-alerts.yml >"$tmp/pulse-alerts.yml"
promtool check config "$tmp/prometheus.yml" >/dev/null
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/data" \
    --web.listen-address="127.0.0.1:$pp" 2>"$tmp/prometheus.log" &
pids+=($!)
wait_http "http://127.0.0.1:$pp/-/ready" 600 || die "prometheus did not start: $(tail "$tmp/prometheus.log")"

# check.py WHAT...: one check against Prometheus's API, polled by `until`.
cat >"$tmp/check.py" <<'PY'
import json, sys, urllib.parse, urllib.request
prom, what = sys.argv[1], sys.argv[2]
def query(q):
    url = f"http://{prom}/api/v1/query?" + urllib.parse.urlencode({"query": q})
    return json.load(urllib.request.urlopen(url))["data"]["result"]
def fail(msg):
    print(msg)
    sys.exit(1)
if what == "once":
    # Every target of the file exactly once, from the instance that lists it.
    want = set(open(sys.argv[3]).read().split())
    owner = {}
    for inst, listing in zip(sys.argv[4::2], sys.argv[5::2]):
        for t in open(listing).read().split():
            owner[t] = inst
    series = query("probe_success")
    got = [s["metric"]["target"] for s in series]
    if len(got) != len(want) or set(got) != want:
        fail(f"{len(got)} probe_success series for {len(want)} targets; "
             f"missing {sorted(want - set(got))[:5]}, extra {sorted(set(got) - want)[:5]}")
    wrong = [s["metric"]["target"] for s in series if owner[s["metric"]["target"]] != s["metric"]["instance"]]
    if wrong:
        fail(f"scraped from another instance than --list-targets says: {wrong[:5]}")
    print(f"{len(got)} targets, each scraped exactly once, each from the shard that lists it")
elif what == "firing":
    # An alert firing with these labels, e.g. alertname=X target=Y.
    labels = dict(a.split("=", 1) for a in sys.argv[3:])
    alerts = json.load(urllib.request.urlopen(f"http://{prom}/api/v1/alerts"))["data"]["alerts"]
    for a in alerts:
        if a["state"] == "firing" and all(a["labels"].get(k) == v for k, v in labels.items()):
            print(f"firing: {a['labels']['alertname']} {a['annotations'].get('summary', '')}")
            print(f"  {a['annotations'].get('description', '')}")
            sys.exit(0)
    fail(f"no firing alert with {labels}; alerts: {[(a['labels']['alertname'], a['state']) for a in alerts]}")
elif what == "count":
    n = query(sys.argv[3])
    value = n[0]["value"][1] if n else "none"
    if value != sys.argv[4]:
        fail(f"{sys.argv[3]} = {value}, not {sys.argv[4]}")
PY
# until LIMIT_S CHECK...: poll a check every second until it passes.
until_ok() {
    local limit=$1 out
    shift
    for _ in $(seq "$limit"); do
        if out=$(python3 "$tmp/check.py" "127.0.0.1:$pp" "$@" 2>&1); then
            echo "$out"
            return 0
        fi
        sleep 1
    done
    die "after ${limit}s: $out"
}
until_ok 60 once "$tmp/all.txt" "127.0.0.1:$p0" "$tmp/shard-0-of-2.txt" "127.0.0.1:$p1" "$tmp/shard-1-of-2.txt"
until_ok 60 firing alertname=PulseTargetDown target=tcp://127.0.0.1:1
until_ok 60 firing alertname=PulseCertificateExpiringSoon "target=https://127.0.0.1:$https_port/"

step "6. every metric family the exporter exposes is in the runbook"
first_http=$(grep -m1 '^http://' "$tmp/all.txt")
curl -fsS "http://127.0.0.1:$p0/probe?target=$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$first_http")" >"$tmp/probe.txt"
curl -fsS "http://127.0.0.1:$p0/metrics" >"$tmp/m0.txt"
curl -fsS "http://127.0.0.1:$p1/metrics" >"$tmp/m1.txt"
# The /probe just made is counted on shard 0's next /metrics.
curl -fsS "http://127.0.0.1:$p0/metrics" >>"$tmp/m0.txt"
cat "$tmp/m0.txt" "$tmp/m1.txt" "$tmp/probe.txt" | sed -n 's/^# TYPE \([^ ]*\) .*/\1/p' | sort -u >"$tmp/exposed.txt"
# The runbook's tables between its metrics markers: the first column's name.
sed -n '/<!-- metrics:start -->/,/<!-- metrics:end -->/p' docs/runbooks/exporter.md |
    sed -n 's/^| `\([a-z_]*\)`.*/\1/p' | sort -u >"$tmp/documented.txt"
[ -s "$tmp/documented.txt" ] || die "no metrics table between the markers in docs/runbooks/exporter.md"
if [ -z "$icmp" ]; then
    echo "not root: no ICMP targets, so the probe_icmp_* families are not compared"
    grep -v '^probe_icmp_' "$tmp/documented.txt" >"$tmp/d" && mv "$tmp/d" "$tmp/documented.txt"
fi
if ! diff -u --label documented --label exposed "$tmp/documented.txt" "$tmp/exposed.txt"; then
    die "docs/runbooks/exporter.md's metrics tables and what pulse serve exposes differ (- only documented, + only exposed)"
fi
echo "$(wc -l <"$tmp/exposed.txt") metric families: each exposed and documented"

step "7. a rolling restart of shard 1"
t0=$(date +%s.%N)
kill -TERM "$shard1_pid"
wait "$shard1_pid" || die "shard 1 exited $? after SIGTERM, not 0: $(tail -3 "$tmp/shard1.log")"
echo "shard 1 drained and exited 0 in $(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.2f", t1 - t0 }') s: $(grep -c 'SIGTERM' "$tmp/shard1.log") SIGTERM line(s) in its log"
until_ok 30 firing alertname=PulseExporterDown "instance=127.0.0.1:$p1"
start_shard 1 "$p1"
until_ok 60 count "count(up{job=\"pulse\"} == 1)" 2
until_ok 60 once "$tmp/all.txt" "127.0.0.1:$p0" "$tmp/shard-0-of-2.txt" "127.0.0.1:$p1" "$tmp/shard-1-of-2.txt"
echo "runbook-exporter: ok"
