#!/usr/bin/env bash
# Fuzzes a live `funnel serve` on one store (docs/collector.md, "Fuzzing"):
#   tools/fuzz/run_fuzz.sh FUNNEL_BINARY STORE [MAX_EXAMPLES]
# 1. starts the server on STORE (sqlite:PATH or postgres://…) with an admin key, and posts a
#    simulated log so the report route has data;
# 2. schemathesis (tools/fuzz/requirements.txt, in .venv-fuzz) generates requests from
#    docs/openapi.yaml, valid and invalid, in its coverage and fuzzing phases, and runs every check
#    but one: no 5xx, every status, content type, header and body as the document says, auth
#    enforced, undocumented methods refused. The check left out, negative_data_rejection, expects
#    schema-violating events to be refused; the collector stores them in its quarantine and answers
#    200 with their index and reason, by design (DESIGN.md §7: bad input is quarantined, never dropped);
# 3. tools/fuzz/abuse.py sends hostile requests (malformed JSON, wrong content types, a gzip bomb,
#    a very long line, a stalled client, unknown routes) and checks each 4xx;
# 4. the server must still be running and ready; it is then stopped with SIGTERM and must exit 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
funnel=$1 store=$2 examples=${3:-200}
venv=.venv-fuzz
[ -x "$venv/bin/st" ] || { python3 -m venv "$venv"; "$venv/bin/pip" install --quiet -r tools/fuzz/requirements.txt; }
work=$(mktemp -d)
server=""
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

key=$("$funnel" keys create --scope admin --keys "$work/keys.yaml" 2>/dev/null | tail -1)
idle=3
limit=$((4 << 20))
"$funnel" serve --store "$store" --keys "$work/keys.yaml" --port 0 --rate-limit 100000 --idle-timeout $idle \
  --max-body-bytes $limit > "$work/serve.out" 2> "$work/serve.err" &
server=$!
for _ in $(seq 200); do grep -q "listening on" "$work/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(grep -o "http://[0-9.:]*" "$work/serve.out" | head -1)
[ -n "$url" ] || { echo "run_fuzz: the server did not start:"; cat "$work/serve.err"; exit 1; }
echo "run_fuzz: funnel serve on $url, store $store"

"$funnel" simulate --scenario clickbait --users 300 --seed 3 --out "$work/events.jsonl" 2>/dev/null
curl -sf -H "Authorization: Bearer $key" -H "Content-Type: application/x-ndjson" --data-binary "@$work/events.jsonl" "$url/v1/events" > /dev/null

"$venv/bin/st" run docs/openapi.yaml --url "$url" -H "Authorization: Bearer $key" \
  --checks all --exclude-checks negative_data_rejection --phases coverage,fuzzing \
  --max-examples "$examples" --seed 1 --workers 2 --request-timeout 30 \
  --report junit --report-junit-path "$work/schemathesis.xml" --no-color 2>&1 | tail -25

"$venv/bin/python" tools/fuzz/abuse.py "$url" "$key" $idle $limit

kill -0 "$server" || { echo "run_fuzz: the server died"; cat "$work/serve.err"; exit 1; }
ready=$(curl -s -o /dev/null -w "%{http_code}" "$url/readyz")
[ "$ready" = 200 ] || { echo "run_fuzz: /readyz answered $ready after fuzzing"; exit 1; }
kill -TERM "$server"
status=0
wait "$server" || status=$?
server=""
[ "$status" = 0 ] || { echo "run_fuzz: the server exited $status on SIGTERM"; exit 1; }
echo "run_fuzz: no 5xx, every answer as docs/openapi.yaml says, every hostile request refused, the server kept serving ($store)"
