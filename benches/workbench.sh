#!/usr/bin/env bash
# The procuratorate's workbench over a full store (issue 14). Needs `wrk` (Debian package).
#   benches/workbench.sh [ROWS]       default 1000000 cases
#
# 1. Stores ROWS sample cases through the running gateway with the starter rules (each ingest
#    returns after its leads refresh), then times `xianjie leads rebuild` over all of them
#    (target: <= 10 s over 1,000,000 cases).
# 2. Searches by USCC and by ID number (a rotation of real parties of the store) over TLS with 64
#    keep-alive connections for 15 s (wrk, 2 threads, on the same 2 cores as the server): req/s
#    and p99 (target: p99 <= 20 ms).
# The gateway runs with client certificates optional (wrk presents none) and the per-client rate
# limit raised out of the way. Record the figures in BENCHMARKS.md.
set -euo pipefail
ROWS=${1:-1000000}
source "$(dirname "$0")/lib.sh"
xj_serve workbench "rate_per_sec = 1000000
rate_burst = 1000000"
xj_ingest "$ROWS"
CASES=$("$BIN" --data data status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cases"])')
t0=$(date +%s.%N)
"$BIN" --data data leads rebuild --json > rebuild.json
echo "leads rebuild over $CASES cases: $(python3 -c "print(round($(date +%s.%N)-$t0,2))") s ($(python3 -c 'import json; r=json.load(open("rebuild.json")); print(r["open"], "leads open")')) (target <= 10 s over 1,000,000)"
SECRET=$("$BIN" --data data clients add bench | sed -n 's/^secret: *//p')
UNITS=$("$BIN" --data data status --json | python3 -c 'import json,sys; print(" ".join(u["unit_code"] for u in json.load(sys.stdin)["units"]))')
for u in $UNITS; do "$BIN" --data data ports open "$u" --client bench >/dev/null; done
ADDR=$(cat data/api.addr); PORT=${ADDR##*:}
TOKEN=$(curl -s --cacert certs/ca.pem -u "bench:$SECRET" -d grant_type=client_credentials \
  "https://localhost:$PORT/oauth/token" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
# Real parties: the documents of the first cases of each port, companies by USCC, people by ID.
python3 - "$PORT" "$TOKEN" $UNITS > search.lua <<'PY'
import http.client, json, ssl, sys, urllib.parse
port, token, units = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
ctx = ssl.create_default_context(cafile="certs/ca.pem")
conn = http.client.HTTPSConnection("localhost", port, context=ctx)
paths = []
for u in units:
    conn.request("GET", f"/v1/ports/{u}/cases?limit=200", headers={"Authorization": f"Bearer {token}"})
    body = json.loads(conn.getresponse().read())
    for c in body["cases"]:
        p = c["party"]
        if p.get("id_number"):
            key = "uscc" if p.get("id_type") == "uscc" else "id_number"
            paths.append(f"/v1/search?{key}={urllib.parse.quote(p['id_number'])}")
paths = sorted(set(paths))
sys.stderr.write(f"{len(paths)} parties to search ({sum('uscc=' in p for p in paths)} by USCC)\n")
print("paths = {" + ",".join(json.dumps(p) for p in paths) + "}")
print("i = 0")
print("request = function() i = i % #paths + 1; return wrk.format(\"GET\", paths[i]) end")
PY
echo "--- search by USCC or ID number, 64 connections, 15 s (wrk -t2 -c64 -d15s)"
wrk -t2 -c64 -d15s --latency -s search.lua -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$PORT" > wrk.out
python3 - <<'PY'
import re
t = open("wrk.out").read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"search: {rps:.0f} req/s, p99 {p99:.2f} ms (target <= 20 ms), non-2xx {bad.group(1) if bad else 0}")
PY
echo "gateway peak RSS: $(grep VmHWM /proc/$GW/status | tr -s ' ')"
