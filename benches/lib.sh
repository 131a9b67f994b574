# Shared by the benchmarks that run the whole gateway (sourced, not run).
#
# xj_serve NAME [SERVER_LINES]: builds the release binary, makes a work directory under /tmp with
#   development certificates (client `bench`) and a passphrase file, writes xianjie.toml (the
#   repository's adapters and rules, the port API on 127.0.0.1:0 with client certificates
#   optional, SERVER_LINES added under [server]), starts `xianjie serve` unlocked and waits for
#   its admin socket. Sets ROOT, BIN, WORK and GW, and removes the work directory at exit.
# xj_ingest ROWS: writes ROWS sample cases and ingests them through the gateway (each ingest
#   returns after its leads refresh), printing each adapter's time.

xj_serve() {
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cd "$ROOT"
  cargo build --release --locked >/dev/null
  BIN=$ROOT/target/release/xianjie
  WORK=$(mktemp -d "/tmp/xj-$1.XXXXXX")
  GW=
  # XJ_CLEANUP: what the calling bench adds (run last, after the gateway stopped).
  trap 'kill "$GW" 2>/dev/null || true; rm -rf "$WORK"; eval "${XJ_CLEANUP:-}"' EXIT
  cd "$WORK"
  "$BIN" certs dev --out certs --client bench >/dev/null
  printf 'benchmark passphrase 2026' > pass && chmod 600 pass
  cat > xianjie.toml <<CFG
data_dir = "data"
adapters_dir = "$ROOT/adapters"
rules_dir = "$ROOT/rules"
[log]
level = "warn"
[server]
listen = "127.0.0.1:0"
client_auth = "optional"
${2:-}
[ingest.limits]
xlsx_shared_strings = 4000000
CFG
  "$BIN" --config xianjie.toml serve --passphrase-file pass 2> serve.log &
  GW=$!
  for _ in $(seq 200); do [ -S data/admin.sock ] && break; sleep 0.1; done
}

xj_ingest() {
  "$BIN" sample --cases "$1" --out samples >/dev/null
  for a in sunshine market-inspection tax; do
    local t0
    t0=$(date +%s.%N)
    "$BIN" --data data ingest "$a" "samples/$a" --json > "ingest-$a.json"
    echo "ingest $a with its leads refresh: $(python3 -c "print(round($(date +%s.%N)-$t0,1))") s"
  done
}
