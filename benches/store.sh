#!/usr/bin/env bash
# The port API on either store backend (issue 16). Needs `wrk`, `curl`, python3 and, for
# postgres, Debian's PostgreSQL server (a throwaway cluster is started in the work directory).
#   benches/store.sh sled|postgres [ROWS]     default 1000000 cases
#
# Stores ROWS sample cases through the running gateway, opens every port to client `bench`, then
# measures, over TLS with keep-alive:
#   - one case by id: 64 connections for 15 s (wrk -t2), every answer audited as in service;
#   - a full mirror through /v1/changes (limit 1000, one connection).
# Run it once per backend and compare (target: case by id on postgres >= 0.7x sled; the mirror
# of 1,000,000 cases on postgres <= 30 s). Record the figures in BENCHMARKS.md.
set -euo pipefail
KIND=${1:?sled or postgres}
ROWS=${2:-1000000}
source "$(dirname "$0")/lib.sh"
STORE=
if [ "$KIND" = postgres ]; then
  PGDIR=$(mktemp -d /tmp/xj-store-pg.XXXXXX)
  PG_CLUSTER=$(cd "$(dirname "$0")/../.ci" && pwd)/pg-cluster
  # The cluster stops and goes whatever fails from here on (the gateway first).
  XJ_CLEANUP='cd /; sleep 1; "$PG_CLUSTER" stop "$PGDIR" || true; rm -rf "$PGDIR"'
  trap 'eval "$XJ_CLEANUP"' EXIT
  PGURL=$("$PG_CLUSTER" start "$PGDIR")
  STORE=$(printf '[store]\nkind = "postgres"\nurl = "%s dbname=postgres"\n' "$PGURL")
fi
xj_serve "store-$KIND" "$(printf 'rate_per_sec = 1000000\nrate_burst = 1000000\n%s' "$STORE")"
xj_ingest "$ROWS"
CASES=$("$BIN" --data data status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cases"])')
echo "store: $KIND, $CASES cases"
SECRET=$("$BIN" --data data clients add bench | sed -n 's/^secret: *//p')
UNITS=$("$BIN" --data data status --json | python3 -c 'import json,sys; print(" ".join(u["unit_code"] for u in json.load(sys.stdin)["units"]))')
for u in $UNITS; do "$BIN" --data data ports open "$u" --client bench >/dev/null; done
ADDR=$(cat data/api.addr); PORT=${ADDR##*:}
TLS="--cacert certs/ca.pem"
TOKEN=$(curl -s $TLS -u "bench:$SECRET" -d grant_type=client_credentials "https://localhost:$PORT/oauth/token" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
UNIT=$(echo $UNITS | cut -d' ' -f1)
CASE=$(curl -s $TLS -H "Authorization: Bearer $TOKEN" "https://localhost:$PORT/v1/ports/$UNIT/cases?limit=1" \
  | python3 -c 'import json,sys,urllib.parse; print(urllib.parse.quote(json.load(sys.stdin)["cases"][0]["case_id"], safe=""))')
URL="https://localhost:$PORT/v1/ports/$UNIT/cases/$CASE"
[ "$(curl -s -o /dev/null -w '%{http_code}' $TLS -H "Authorization: Bearer $TOKEN" "$URL")" = 200 ]
echo "--- one case by id: 64 connections, 15 s (wrk -t2 -c64)"
wrk -t2 -c64 -d15s --latency -H "Authorization: Bearer $TOKEN" "$URL" | grep -E "Requests/sec|99%|Non-2xx|Socket errors"
echo "--- full mirror through /v1/changes (limit 1000, one keep-alive connection)"
python3 - "$PORT" "$TOKEN" <<'PY'
import http.client, json, ssl, sys, time
port, token = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile="certs/ca.pem")
conn = http.client.HTTPSConnection("localhost", port, context=ctx)
after, n, t = 0, 0, time.time()
while True:
    conn.request("GET", f"/v1/changes?after={after}&limit=1000", headers={"Authorization": f"Bearer {token}"})
    r = conn.getresponse(); body = json.loads(r.read())
    if r.status != 200: sys.exit(f"HTTP {r.status}: {body}")
    if not body["changes"]: break
    n += len(body["changes"]); after = body["next_after"]
print(f"mirrored {n} changes in {time.time()-t:.1f} s")
PY
