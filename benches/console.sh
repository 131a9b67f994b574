#!/usr/bin/env bash
# The web console over a full store (issue 15). Needs `wrk` and `curl` (Debian packages).
#   benches/console.sh [ROWS]       default 1000000 cases
#
# Stores ROWS sample cases through the running gateway with the starter rules, adds an analyst
# whose client has every port open, signs in as a browser does (one-time password, TOTP, a new
# password), then loads with the session cookie for 15 s each, over TLS with keep-alive:
#   - the dashboard (`GET /console/`),
#   - a lead page (`GET /console/leads/{unit}/{case}`, the first open leads of the list in turn),
# with 4 connections (people at their desks) and with 16. Prints req/s and p99 as wrk sees them
# (client side over loopback TLS, so an upper bound of the server's time; target p99 <= 50 ms).
# Every page view is audited, as in service. Record the figures in BENCHMARKS.md.
set -euo pipefail
ROWS=${1:-1000000}
source "$(dirname "$0")/lib.sh"
xj_serve console
xj_ingest "$ROWS"
CASES=$("$BIN" --data data status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["cases"])')
echo "cases stored: $CASES"
"$BIN" --data data clients add bench >/dev/null
UNITS=$("$BIN" --data data status --json | python3 -c 'import json,sys; print(" ".join(u["unit_code"] for u in json.load(sys.stdin)["units"]))')
for u in $UNITS; do "$BIN" --data data ports open "$u" --client bench --supervise >/dev/null; done
"$BIN" --data data users add analyst --role analyst --client bench > enrol.txt 2>/dev/null
ADDR=$(cat data/api.addr); PORT=${ADDR##*:}
BASE="https://localhost:$PORT"
# Sign in as a browser does: the form's CSRF token and cookie, the password, a TOTP code.
python3 - "$BASE" > cookie.txt <<'PY'
import base64, hashlib, hmac, http.cookiejar, re, ssl, struct, sys, time, urllib.parse, urllib.request
base = sys.argv[1]
text = open("enrol.txt").read()
password = re.search(r"one-time password:\s+(\S+)", text).group(1)
secret = re.search(r"secret=([A-Z2-7]+)", text).group(1)
key = base64.b32decode(secret + "=" * (-len(secret) % 8))
def code(step):
    h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)
ctx = ssl.create_default_context(cafile="certs/ca.pem")
jar = http.cookiejar.CookieJar()
opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx), urllib.request.HTTPCookieProcessor(jar))
def form(path):
    html = opener.open(base + path).read().decode()
    return re.search(r'name="csrf" value="([^"]+)"', html).group(1)
def post(path, fields):
    return opener.open(base + path, urllib.parse.urlencode(fields).encode())
r = post("/console/login", {"csrf": form("/console/login"), "name": "analyst", "password": password,
                            "code": code(int(time.time()) // 30)})
assert r.geturl().endswith("/console/password"), r.geturl()
new = "bench analyst password 2026"
csrf = form("/console/password")
t0 = time.time()
# The redirect after it loads the first dashboard, which computes the shared figures (a scan of
# every lead; later once a minute in the background): timed here.
r = post("/console/password", {"csrf": csrf, "password": new, "again": new})
assert r.geturl().endswith("/console/"), r.geturl()
sys.stderr.write(f"new password and the first dashboard (computes the figures): {round((time.time() - t0) * 1000)} ms\n")
cookie = next(c for c in jar if c.name == "__Host-xianjie")
print(f"__Host-xianjie={cookie.value}")
PY
COOKIE=$(cat cookie.txt)
# Lead pages: the first page of open leads, in turn.
curl -s --cacert certs/ca.pem -H "Cookie: $COOKIE" "$BASE/console/leads?status=open" \
  | python3 -c '
import re, sys, json
paths = sorted(set(re.findall(r"href=\"(/console/leads/[^\"]+)\"", sys.stdin.read())))
sys.stderr.write(f"{len(paths)} lead pages\n")
print("paths = {" + ",".join(json.dumps(p) for p in paths) + "}")
print("i = 0")
print("request = function() i = i % #paths + 1; return wrk.format(\"GET\", paths[i]) end")
' > leads.lua
run() { # name path-or-script connections
  local name=$1 target=$2 conns=$3 script=()
  [ -f "$target" ] && script=(-s "$target") && target=/
  wrk -t2 -c"$conns" -d15s --latency "${script[@]}" -H "Cookie: $COOKIE" "https://127.0.0.1:$PORT$target" > wrk.out
  python3 - "$name" "$conns" <<'PY'
import re, sys
t = open("wrk.out").read()
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
m = re.search(r"99%\s+([\d.]+)(us|ms|s)", t)
p99 = float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000}[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", t)
print(f"{sys.argv[1]}, {sys.argv[2]} connections: {rps:.0f} req/s, p99 {p99:.2f} ms (target <= 50 ms), non-2xx {bad.group(1) if bad else 0}")
PY
}
# wrk counts redirects as successes: check that the session really gets the pages (200 and
# their content), before and after the runs.
check() {
  local lead
  lead=$(sed -n 's/^paths = {"\([^"]*\)".*/\1/p' leads.lua)
  for p in /console/ "$lead"; do
    code=$(curl -s -o page.html -w '%{http_code}' --cacert certs/ca.pem -H "Cookie: $COOKIE" "$BASE$p")
    [ "$code" = 200 ] && grep -q '退出' page.html || { echo "error: $p answered $code, not the page" >&2; exit 1; }
  done
}
check
for c in 4 16; do
  run "dashboard" /console/ "$c"
  run "lead page" leads.lua "$c"
done
check
echo "gateway peak RSS: $(grep VmHWM /proc/$GW/status | tr -s ' ')"
