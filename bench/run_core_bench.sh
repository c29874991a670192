#!/usr/bin/env bash
# The core at scale: `funnel report` against the DuckDB peer (../shared/bench/duckdb_peer.py, the
# core counting rules in the SQL a user would write), side by side on one simulated log of the
# shape of a large platform's day: many light users (about 7.6 events each), string ids, timestamps
# mixed between RFC 3339 strings and epoch milliseconds.
#
#   bash bench/run_core_bench.sh [N_EVENTS_MILLIONS] [RUNS]     (default 10 and 3)
#
# Data in ${FUNNEL_BENCH_DATA:-bench/data}/coreNm (gitignored). Both tools run with 2 threads
# (funnel uses the machine's cores, 2 here; DuckDB SET threads=2), alternating, page cache warm,
# under /usr/bin/time -v; prints a markdown table (median wall, CPU/wall, peak RSS). The per-variant
# counts are then checked: funnel against the simulator's truth exactly, and DuckDB against funnel
# (exactly, except impressions, where the peer's documented gap-based dedup may differ by < 0.1 %);
# a mismatch exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10}"
RUNS="${2:-3}"
DATA="${FUNNEL_BENCH_DATA:-bench/data}/core${N}m"
PEER="${DUCKDB_PEER:-../shared/bench/duckdb_peer.py}"
USERS=$(awk -v n="$N" 'BEGIN { printf "%d", n * 1000000 / 7.594 }')
mkdir -p "$DATA/times"

bash bench/setup.sh > /dev/null
swift build -c release --product funnel > /dev/null
if [ ! -s "$DATA/events.jsonl" ] || [ ! -s "$DATA/truth.json" ]; then
  echo "== simulating $USERS users into $DATA/events.jsonl" >&2
  .build/release/funnel simulate --scenario clickbait --users "$USERS" --seed 7 --list-length 2 --mixed-timestamps \
    --out "$DATA/events.jsonl" --truth "$DATA/truth.json" >&2
fi
LINES=$(wc -l < "$DATA/events.jsonl")
SIZE=$(du -h "$DATA/events.jsonl" | cut -f1)
cat "$DATA/events.jsonl" > /dev/null   # the same warm page cache for both tools

FUNNEL_CMD=(.build/release/funnel report --events "$DATA/events.jsonl" --format json --output "$DATA/funnel.json")
DUCKDB_CMD=(bench/.venv/bin/python "$PEER" --events "$DATA/events.jsonl" --threads 2)
for i in $(seq "$RUNS"); do
  for tool in funnel duckdb; do
    if [ "$tool" = funnel ]; then cmd=("${FUNNEL_CMD[@]}"); out=/dev/null; else cmd=("${DUCKDB_CMD[@]}"); out="$DATA/duckdb.json"; fi
    echo "== run $i: $tool" >&2
    /usr/bin/time -v -o "$DATA/times/$tool.$i" "${cmd[@]}" > "$out" 2> "$DATA/times/$tool.$i.stderr"
  done
done

python3 - "$DATA" "$RUNS" "$LINES" "$SIZE" <<'EOF'
import json, re, statistics, sys
data, runs, lines, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def measure(tool, i):
    text = open(f"{data}/times/{tool}.{i}").read()
    def field(name):
        return re.search(re.escape(name) + r": (.*)", text).group(1).strip()
    wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    seconds = sum(float(x) * 60 ** k for k, x in enumerate(reversed(wall)))
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    return seconds, cpu, int(field("Maximum resident set size (kbytes)")) / 1024

rows = {}
for tool in ("funnel", "duckdb"):
    m = [measure(tool, i) for i in range(1, runs + 1)]
    walls = [x[0] for x in m]
    med = statistics.median(walls)
    k = walls.index(med) if med in walls else 0
    rows[tool] = (med, walls, m[k][1] / m[k][0], max(x[2] for x in m))
print(f"{lines:,} events, {size}; {runs} alternating runs\n")
print("| tool | median wall s | runs | CPU (user+sys)/wall | peak RSS |")
print("|---|---|---|---|---|")
for tool, (med, walls, util, rss) in rows.items():
    print(f"| {tool} | {med:.2f} | {', '.join('%.2f' % w for w in walls)} | {util:.2f} | {rss:.0f} MiB |")
print(f"\n**Ratio funnel / DuckDB (median wall): {rows['funnel'][0] / rows['duckdb'][0]:.2f}**")

funnel = json.load(open(f"{data}/funnel.json"))["variants"]
duck = json.load(open(f"{data}/duckdb.json"))["variants"]
truth = json.load(open(f"{data}/truth.json"))["variants"]
bad = []
for v, t in truth.items():
    for key in ("users", "impressions", "clicks", "carts", "purchases", "orders", "converting_users"):
        if funnel[v][key] != t[key]:
            bad.append(f"funnel {v} {key}: {funnel[v][key]} against the truth's {t[key]}")
        d = duck.get(v, {}).get(key)
        if key == "impressions":
            if d is None or abs(d - funnel[v][key]) > 0.001 * funnel[v][key]:
                bad.append(f"duckdb {v} {key}: {d} against funnel's {funnel[v][key]} (more than 0.1 %)")
        elif d != funnel[v][key]:
            bad.append(f"duckdb {v} {key}: {d} against funnel's {funnel[v][key]}")
if bad:
    print("\nANSWERS DIFFER:\n" + "\n".join(bad))
    sys.exit(1)
print("\nper-variant counts: funnel = the simulator's truth; DuckDB = funnel (impressions within the peer's documented 0.1 %)")
EOF
