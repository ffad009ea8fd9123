#!/usr/bin/env bash
# Regenerates reports/serve-page.png, the screenshot of `pulse serve`'s
# status page that the README shows.
#
# Starts a small farm on loopback (the scenario below: mostly healthy web,
# TLS, TCP and ICMP hosts, a few broken ones; the ICMP hosts need root and
# `ip`, and are left out otherwise), and a flaky HTTP server (python3: a
# farm host answers the same way every time, and a status page is about
# what changes) whose paths fail now and then. Then `pulse serve` on all
# of them, waits for ROUNDS rounds so the history strips fill, and has
# headless Chromium (Debian's `chromium`) take the page at / as a person
# would see it. Everything listens on 127.0.0.0/8; the processes it
# started are stopped by PID when it ends.
#
#   scripts/screenshot-page.sh [OUT.png]     # default reports/serve-page.png
#   ROUNDS=20 RUNTIME=smol scripts/screenshot-page.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=${1:-reports/serve-page.png}
rounds=${ROUNDS:-60}
runtime=${RUNTIME:-tokio}
chromium=$(command -v chromium || true)
if [ -z "$chromium" ]; then
    echo "needs chromium: apt-get install chromium (scripts/test.sh installs it)" >&2
    exit 3
fi

cargo build --locked -q -p pulse
pulse="${CARGO_TARGET_DIR:-target}/debug/pulse"
. scripts/own-processes.sh

wait_for() { # wait_for SECONDS COMMAND...: until COMMAND succeeds
    local until=$((SECONDS + $1)); shift
    until "$@"; do
        if ((SECONDS > until)); then echo "timed out waiting for: $*" >&2; exit 1; fi
        sleep 0.2
    done
}

cat >"$tmp/page.toml" <<'TOML'
name = "page"
description = "A fleet as a status page shows it: mostly up, a few down."
seed = 7
timeout = "1s"
workers = 50

[[groups]]
name = "web"
hosts = 12
protocol = "http"
latency = { dist = "lognormal", median_ms = 12, sigma = 0.6, max_ms = 200 }
mix = { ok = 10, refused = 1, status = 1 }
status = 503

[[groups]]
name = "tls"
hosts = 4
protocol = "https"
latency = { dist = "uniform", min_ms = 20, max_ms = 60 }
mix = { ok = 3, wrong_body = 1 }

[[groups]]
name = "db"
hosts = 4
protocol = "tcp"
mix = { ok = 3, blackhole = 1 }

[[groups]]
name = "ping"
hosts = 3
protocol = "icmp"
latency = { dist = "fixed", ms = 8 }
TOML
"$pulse" farm --scenario "$tmp/page.toml" --write-targets "$tmp/targets.txt" >"$tmp/farm.log" 2>&1 &
pids+=($!)
# The farm writes the file, then says it serves.
wait_for 60 grep -q "serving" "$tmp/farm.log"

# Fails now and then: /flaky-N answers 503 about one time in N and takes
# 5-40 ms (a little longer on some paths); /slow sometimes misses the 1 s
# deadline.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 - "$port" >"$tmp/flaky.log" 2>&1 <<'PY' &
import http.server, random, sys, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        n = int(self.path.rsplit("-", 1)[-1]) if "-" in self.path else 0
        time.sleep(random.uniform(0.005, 0.040) * (3 if "api" in self.path else 1))
        if self.path.startswith("/slow") and random.random() < 0.15:
            time.sleep(1.5)
        code = 503 if n and random.random() < 1 / n else 200
        body = b"ok\n" if code == 200 else b"busy\n"
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
for path in flaky-4 api/checkout-8 slow; do
    echo "http://127.0.0.1:$port/$path" >>"$tmp/targets.txt"
done

# The scenario's 1 s timeout; a 1.5 s interval leaves each round room.
"$pulse" --runtime "$runtime" serve --targets "$tmp/targets.txt" --listen 127.0.0.1:0 \
    --interval 1500ms --timeout 1s 2>"$tmp/serve.log" &
pids+=($!)
wait_for 30 grep -q "listening on http://" "$tmp/serve.log"
addr=$(sed -n 's|.*listening on http://\([^/]*\)/.*|\1|p' "$tmp/serve.log" | head -1)

rounds_done() {
    python3 - "$addr" "$rounds" <<'PY'
import sys, urllib.request
body = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=5).read().decode()
done = next((float(l.split()[1]) for l in body.splitlines() if l.startswith("pulse_rounds_total ")), 0)
sys.exit(0 if done >= float(sys.argv[2]) else 1)
PY
}
echo "waiting for $rounds rounds on $runtime (http://$addr/)"
wait_for $((rounds * 3 + 30)) rounds_done

profile="$tmp/chromium"
"$chromium" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$profile" --hide-scrollbars --window-size=1280,900 \
    --screenshot="$out" "http://$addr/" >"$tmp/chromium.log" 2>&1
echo "wrote $out"
