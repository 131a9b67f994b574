#!/usr/bin/env bash
# Port API load benchmark (issue 4). Needs `oha` (cargo install oha) and python3.
#   benches/api.sh [ROWS]          default 1000000 cases
# Builds the release binary, stores ROWS cases (split across the three adapters as `sample` does), then measures with 64 keep-alive TLS connections:
# one case by id, a page of 100 cases, and a full mirror through /v1/changes; and the gateway's
# peak RSS (VmHWM). Record the figures in BENCHMARKS.md.
set -euo pipefail
ROWS=${1:-1000000}
OHA=${OHA:-oha}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
cargo build --release --locked >/dev/null
BIN=$ROOT/target/release/xianjie
WORK=$(mktemp -d /tmp/xj-api-bench.XXXXXX)
trap 'kill "$GW" 2>/dev/null || true; rm -rf "$WORK"' EXIT
cd "$WORK"
"$BIN" certs dev --out certs --client bench >/dev/null
printf 'benchmark passphrase 2026' > pass && chmod 600 pass
cat > xianjie.toml <<EOF
data_dir = "data"
adapters_dir = "$ROOT/adapters"
[log]
level = "warn"
[server]
listen = "127.0.0.1:0"
rate_per_sec = 1000000
rate_burst = 1000000
EOF
"$BIN" --config xianjie.toml serve --passphrase-file pass 2> serve.log &
GW=$!
for _ in $(seq 100); do [ -S data/admin.sock ] && break; sleep 0.1; done
t0=$(date +%s.%N)
"$BIN" sample --cases "$ROWS" --out samples >/dev/null
# The sample splits cases across adapters; ingest every adapter's file.
for a in sunshine market-inspection tax; do
  "$BIN" --data data ingest "$a" "samples/$a" --json >/dev/null
  echo "after ingesting $a: gateway peak RSS $(grep VmHWM /proc/$GW/status | tr -s ' ')"
done
# The API figure is the peak under API load only: reset the peak (Linux: clear_refs 5).
echo 5 > /proc/$GW/clear_refs
t1=$(date +%s.%N)
CASES=$("$BIN" --data data status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cases"])')
echo "stored: $CASES cases (sample + ingest took $(python3 -c "print(round($t1-$t0,1))") s)"
SECRET=$("$BIN" --data data clients add bench | sed -n 's/^secret: *//p')
UNITS=$("$BIN" --data data status --json | python3 -c 'import json,sys; print(" ".join(u["unit_code"] for u in json.load(sys.stdin)["units"]))')
for u in $UNITS; do "$BIN" --data data ports open "$u" --client bench >/dev/null; done
ADDR=$(cat data/api.addr); PORT=${ADDR##*:}
TLS="--cacert certs/ca.pem --cert certs/bench.pem --key certs/bench-key.pem"
TOKEN=$(curl -s $TLS -u "bench:$SECRET" -d grant_type=client_credentials "https://localhost:$PORT/oauth/token" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
UNIT=$(echo $UNITS | cut -d' ' -f1)
CASE=$(curl -s $TLS -H "Authorization: Bearer $TOKEN" "https://localhost:$PORT/v1/ports/$UNIT/cases?limit=1" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["cases"][0]["case_id"])')
OHA_TLS="--cacert certs/ca.pem --cert certs/bench.pem --key certs/bench-key.pem"
echo "--- one case by id: 64 connections, 15 s"
"$OHA" --no-tui -c 64 -z 15s $OHA_TLS -H "Authorization: Bearer $TOKEN" \
  "https://localhost:$PORT/v1/ports/$UNIT/cases/$CASE" | grep -E "Requests/sec|99.00%|Success rate|\[200\]|\[[45][0-9][0-9]\]"
echo "    peak RSS in this phase: $(grep VmHWM /proc/$GW/status | tr -s ' ')"; echo 5 > /proc/$GW/clear_refs
echo "--- a page of 100 cases: 64 connections, 15 s"
"$OHA" --no-tui -c 64 -z 15s $OHA_TLS -H "Authorization: Bearer $TOKEN" \
  "https://localhost:$PORT/v1/ports/$UNIT/cases?limit=100" | grep -E "Requests/sec|99.00%|Success rate|\[200\]|\[[45][0-9][0-9]\]"
echo "    peak RSS in this phase: $(grep VmHWM /proc/$GW/status | tr -s ' ')"; echo 5 > /proc/$GW/clear_refs
echo "--- full mirror through /v1/changes (limit 1000, one keep-alive connection)"
python3 - "$PORT" "$TOKEN" <<'EOF'
import http.client, json, ssl, sys, time
port, token = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile="certs/ca.pem")
ctx.load_cert_chain("certs/bench.pem", "certs/bench-key.pem")
conn = http.client.HTTPSConnection("localhost", port, context=ctx)
after, n, t = 0, 0, time.time()
while True:
    conn.request("GET", f"/v1/changes?after={after}&limit=1000", headers={"Authorization": f"Bearer {token}"})
    r = conn.getresponse(); body = json.loads(r.read())
    if r.status != 200: sys.exit(f"HTTP {r.status}: {body}")
    if not body["changes"]: break
    n += len(body["changes"]); after = body["next_after"]
print(f"mirrored {n} changes in {time.time()-t:.1f} s")
EOF
echo "    peak RSS in this phase: $(grep VmHWM /proc/$GW/status | tr -s ' ')"
