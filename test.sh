#!/usr/bin/env bash
# Every test, as CI runs them: `cargo test --locked` (unit, golden, integration and crash tests on
# the embedded store, sled), then the integration tests again with every gateway on PostgreSQL
# (XIANJIE_TEST_STORE=postgres). Both passes share one throwaway PostgreSQL cluster of Debian's
# server, started in a temporary directory and removed at the end; without PostgreSQL installed the
# second pass says SKIPPED. Arguments go to both `cargo test` runs (e.g. a test name).
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${XIANJIE_TEST_PG:-}" ] && compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null; then
  pgdir=$(mktemp -d)
  trap '.ci/pg-cluster stop "$pgdir" >/dev/null 2>&1 || true; rm -rf "$pgdir"' EXIT
  XIANJIE_TEST_PG=$(.ci/pg-cluster start "$pgdir")
  export XIANJIE_TEST_PG
fi
cargo test --locked "$@"
if [ -n "${XIANJIE_TEST_PG:-}" ]; then
  echo "== the integration tests again, every gateway on PostgreSQL"
  XIANJIE_TEST_STORE=postgres cargo test --locked --test '*' "$@"
else
  echo "SKIPPED: the integration tests on PostgreSQL (install Debian's postgresql; .ci/run does)"
fi
