#!/usr/bin/env bash
# Load on the collector: wrk posting batches of 100 new events on loopback to `funnel serve`
# (SQLite store) and to the FastAPI + uvicorn peer (peer_fastapi.py: the same validation by the
# contract's Python reference, the same durable, idempotent inserts into the same SQLite tables),
# one after the other in one run, each on a fresh store.
#
#   bash bench/collector/run_collector_bench.sh [SECONDS] [CONNECTIONS...]    (default 20 and 16 64)
#
# With FUNNEL_BENCH_POSTGRES=postgres://USER@HOST:PORT/DB (a database the user may drop and create
# databases beside; `scripts/postgres start` prints one), `funnel serve` on a PostgreSQL store
# (database funnel_bench, made afresh for each run) is measured too, after the SQLite pair.
#
# Prints events/s, p50 and p99 latency per tool and connection count, and the stored event counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_RUN="${1:-20}"
shift || true
if [ $# -gt 0 ]; then CONNECTIONS=("$@"); else CONNECTIONS=(16 64); fi
WORK="${FUNNEL_BENCH_DATA:-bench/data}/collector"
rm -rf "$WORK" && mkdir -p "$WORK"
command -v wrk >/dev/null || { apt-get install -y -qq wrk >/dev/null; }
VENV=bench/collector/.venv
if [ ! -x "$VENV/bin/uvicorn" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q fastapi==0.128.0 uvicorn==0.40.0 >/dev/null
fi
swift build -c release --product funnel >/dev/null
FUNNEL=.build/release/funnel
KEY=$($FUNNEL keys create --keys "$WORK/keys.yaml" --scope ingest 2>/dev/null)
DIGEST=$(printf '%s' "$KEY" | sha256sum | cut -d' ' -f1)
export FUNNEL_BENCH_KEY="$KEY"

wait_port() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1/" && return 0; sleep 0.1; done; return 1; }

run_wrk() {  # tool port connections
  local out
  out=$(wrk -t1 -c"$3" -d"${SECONDS_RUN}s" --timeout 30s -s bench/collector/post_events.lua "http://127.0.0.1:$2/v1/events" | grep RESULT)
  python3 - "$1" "$3" "$out" <<'PY'
import re, sys
tool, conns, line = sys.argv[1], sys.argv[2], sys.argv[3]
f = dict(re.findall(r"(\w+)=(\d+)", line))
rate = int(f["requests"]) * 100 / (int(f["duration_us"]) / 1e6)
print(f"| {tool} | {conns} | {rate:,.0f} | {int(f['p50_us'])/1000:.1f} | {int(f['p99_us'])/1000:.1f} | {f['non2xx_or_errors']} |")
PY
}

echo "| tool | connections | events/s | p50 ms | p99 ms | errors |"
echo "|---|---|---|---|---|---|"
for c in "${CONNECTIONS[@]}"; do
  rm -f "$WORK"/funnel.db*
  $FUNNEL serve --store "sqlite:$WORK/funnel.db" --keys "$WORK/keys.yaml" --port 18080 --rate-limit 1000000 >/dev/null 2>"$WORK/funnel.log" &
  pid=$!
  wait_port 18080
  kill -0 $pid 2>/dev/null || { echo "funnel serve did not start: $(tail -2 "$WORK/funnel.log")" >&2; exit 1; }
  run_wrk funnel 18080 "$c"
  kill -TERM $pid; wait $pid || true
  rm -f "$WORK"/peer.db*
  (cd bench/collector && FUNNEL_PEER_DB="../../$WORK/peer.db" FUNNEL_PEER_KEY_SHA256="$DIGEST" \
     .venv/bin/uvicorn peer_fastapi:app --workers 2 --port 18081 --log-level warning >/dev/null 2>"../../$WORK/peer.log") &
  pid=$!
  wait_port 18081
  kill -0 $pid 2>/dev/null || { echo "the peer did not start: $(tail -2 "$WORK/peer.log")" >&2; exit 1; }
  run_wrk "FastAPI + uvicorn" 18081 "$c"
  pkill -TERM -f "uvicorn peer_fastapi" || true; wait $pid || true
  if [ -n "${FUNNEL_BENCH_POSTGRES:-}" ]; then
    psql -X -q "$FUNNEL_BENCH_POSTGRES" -c "DROP DATABASE IF EXISTS funnel_bench" -c "CREATE DATABASE funnel_bench" 2>/dev/null
    $FUNNEL serve --store "${FUNNEL_BENCH_POSTGRES%/*}/funnel_bench" --keys "$WORK/keys.yaml" --port 18082 --rate-limit 1000000 >/dev/null 2>"$WORK/funnel-pg.log" &
    pid=$!
    wait_port 18082
    kill -0 $pid 2>/dev/null || { echo "funnel serve (PostgreSQL) did not start: $(tail -2 "$WORK/funnel-pg.log")" >&2; exit 1; }
    run_wrk "funnel (PostgreSQL)" 18082 "$c"
    kill -TERM $pid; wait $pid || true
  fi
done
echo
echo "stored: funnel $(sqlite3 "$WORK/funnel.db" 'select count(*) from events'), peer $(sqlite3 "$WORK/peer.db" 'select count(*) from events') (last run each)"
