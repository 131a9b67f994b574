#!/usr/bin/env bash
# The port API next to nginx, in one run (issue 12). Needs `wrk` and `nginx` (Debian packages).
#   benches/pull_vs_nginx.sh [ROWS] [MIRROR_ROWS]     defaults 20000 and 1000000
#
# 1. One case by id over TLS with 64 keep-alive connections for 15 s (wrk, 2 threads, on the same
#    2 cores as the server), against the gateway, then against nginx serving the very same
#    response bytes as a static file with the same certificate. Prints both, their p99, and the
#    ratio (target: ratio >= 0.5, p99 <= 20 ms).
# 2. A full mirror of MIRROR_ROWS cases through /v1/changes (limit 1000, one keep-alive
#    connection; the client only counts, so the figure is the gateway's). Target: <= 20 s.
#    MIRROR_ROWS=0 skips it.
# PERF=/path/perf.data also records a CPU profile of the gateway during its wrk run.
#
# The gateway runs with client certificates optional (wrk presents none) and the per-client rate
# limit raised out of the way; nginx runs with the same certificate and key, 2 workers, no
# access log. Record the figures in BENCHMARKS.md.
set -euo pipefail
ROWS=${1:-20000}
MIRROR_ROWS=${2:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --release --locked >/dev/null
BIN=$ROOT/target/release/xianjie
WORK=$(mktemp -d /tmp/xj-pull.XXXXXX)
chmod 755 "$WORK" # nginx workers (user nobody when started as root) read case.json from here
NGINX_PID=""
cleanup() {
  kill "$GW" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
"$BIN" certs dev --out certs --client bench >/dev/null
printf 'benchmark passphrase 2026' > pass && chmod 600 pass

start_gateway() {
  cat > xianjie.toml <<EOF
data_dir = "data"
adapters_dir = "$ROOT/adapters"
[log]
level = "warn"
[server]
listen = "127.0.0.1:0"
client_auth = "optional"
rate_per_sec = 1000000
rate_burst = 1000000
[ingest.limits]
# The 1,000,000-case sample's workbook has 2.6 million shared strings (default limit 1,000,000).
xlsx_shared_strings = 4000000
EOF
  "$BIN" --config xianjie.toml serve --passphrase-file pass 2> serve.log &
  GW=$!
  for _ in $(seq 200); do [ -S data/admin.sock ] && break; sleep 0.1; done
}

# Stores ROWS sunshine cases, opens every port to client `bench`, sets TOKEN, PORT, UNIT, CASE.
fill() {
  "$BIN" sample --cases "$1" --out samples >/dev/null
  # The sample splits cases across the adapters; ingest each one's files.
  for a in sunshine market-inspection tax; do
    "$BIN" --data data ingest "$a" "samples/$a" --json > "ingest-$a.json" \
      || { echo "ingest $a refused:" >&2; head -c 3000 "ingest-$a.json" >&2; exit 1; }
  done
  SECRET=$("$BIN" --data data clients add bench | sed -n 's/^secret: *//p')
  UNITS=$("$BIN" --data data status --json | python3 -c 'import json,sys; print(" ".join(u["unit_code"] for u in json.load(sys.stdin)["units"]))')
  for u in $UNITS; do "$BIN" --data data ports open "$u" --client bench >/dev/null; done
  ADDR=$(cat data/api.addr); PORT=${ADDR##*:}
  TOKEN=$(curl -s --cacert certs/ca.pem -u "bench:$SECRET" -d grant_type=client_credentials \
    "https://localhost:$PORT/oauth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  UNIT=$(echo $UNITS | cut -d' ' -f1)
  CASE=$(curl -s --cacert certs/ca.pem -H "Authorization: Bearer $TOKEN" \
    "https://localhost:$PORT/v1/ports/$UNIT/cases?limit=1" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["cases"][0]["case_id"])')
}

start_gateway
fill "$ROWS"
PATH_ONE="/v1/ports/$UNIT/cases/$(python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$CASE")"
curl -s --cacert certs/ca.pem -H "Authorization: Bearer $TOKEN" "https://localhost:$PORT$PATH_ONE" > case.json
echo "one case: $(wc -c < case.json) bytes"

# nginx: the same bytes, the same certificate, on a free port.
NPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p nginx/logs nginx/tmp
cat > nginx/nginx.conf <<EOF
worker_processes 2;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/tmp;
  proxy_temp_path $WORK/nginx/tmp;
  fastcgi_temp_path $WORK/nginx/tmp;
  uwsgi_temp_path $WORK/nginx/tmp;
  scgi_temp_path $WORK/nginx/tmp;
  keepalive_requests 10000000;
  server {
    listen 127.0.0.1:$NPORT ssl;
    ssl_certificate $WORK/certs/server.pem;
    ssl_certificate_key $WORK/certs/server-key.pem;
    location / { default_type application/json; root $WORK; try_files /case.json =404; }
  }
}
EOF
nginx -c "$WORK/nginx/nginx.conf" -p "$WORK/nginx" &
NGINX_PID=$!
sleep 1
# Both servers must answer the request with the same bytes before anything is timed.
curl -s --cacert certs/ca.pem -H "Authorization: Bearer $TOKEN" "https://localhost:$NPORT$PATH_ONE" > nginx.json
cmp -s case.json nginx.json || { echo "nginx does not serve the same bytes:" >&2; head -c 300 nginx.json >&2; exit 1; }

run_wrk() { # URL -> "req/s p99_ms"
  wrk -t2 -c64 -d15s --latency -H "Authorization: Bearer $TOKEN" "$1" > wrk.out
  python3 - <<'EOF'
import re
t = open("wrk.out").read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{rps:.0f} {p99:.2f} {bad.group(1) if bad else 0}")
EOF
}
echo "--- one case by id, 64 connections, 15 s each (wrk -t2 -c64 -d15s)"
# PERF=file.data records a CPU profile of the gateway during its run (perf record -g).
[ -n "${PERF:-}" ] && { perf record -F 499 -g -p "$GW" -o "$PERF" -- sleep 14 2>/dev/null & }
read -r G_RPS G_P99 G_BAD < <(run_wrk "https://127.0.0.1:$PORT$PATH_ONE")
echo "gateway: $G_RPS req/s, p99 $G_P99 ms, non-2xx $G_BAD; peak RSS $(grep VmHWM /proc/$GW/status | tr -s ' ')"
read -r N_RPS N_P99 N_BAD < <(run_wrk "https://127.0.0.1:$NPORT$PATH_ONE")
echo "nginx:   $N_RPS req/s, p99 $N_P99 ms, non-2xx $N_BAD"
if [ "$G_BAD" != 0 ] || [ "$N_BAD" != 0 ]; then echo "error responses in the run: the figures do not count" >&2; exit 1; fi
python3 -c "print(f'ratio gateway/nginx: {$G_RPS/$N_RPS:.2f} (target >= 0.5); p99 target <= 20 ms')"
kill "$NGINX_PID"; NGINX_PID=""

if [ "$MIRROR_ROWS" -gt 0 ]; then
  kill "$GW"; wait "$GW" 2>/dev/null || true
  rm -rf data samples
  start_gateway
  t0=$(date +%s.%N)
  fill "$MIRROR_ROWS"
  echo "--- full mirror of $("$BIN" --data data status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cases"])') cases through /v1/changes (stored in $(python3 -c "import time; print(round(time.time()-$t0))") s)"
  python3 - "$PORT" "$TOKEN" <<'EOF'
import http.client, re, ssl, sys, time
port, token = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile="certs/ca.pem")
conn = http.client.HTTPSConnection("localhost", port, context=ctx)
after, n, t = 0, 0, time.time()
# The client only finds the next position and counts: the time is the gateway's.
seqs = re.compile(rb'"seq":(\d+)')
while True:
    conn.request("GET", f"/v1/changes?after={after}&limit=1000", headers={"Authorization": f"Bearer {token}"})
    r = conn.getresponse(); body = r.read()
    if r.status != 200: sys.exit(f"HTTP {r.status}: {body[:300]!r}")
    found = len(seqs.findall(body))
    if found == 0: break
    n += found
    after = int(re.search(rb'"next_after":(\d+)', body).group(1))
print(f"mirrored {n} changes in {time.time()-t:.1f} s (target <= 20 s)")
EOF
fi
