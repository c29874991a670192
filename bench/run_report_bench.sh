#!/usr/bin/env bash
# Peer benchmark: `funnel report` vs DuckDB (bench/report.sql) on the same simulated log.
#   bash bench/run_report_bench.sh [N_EVENTS_MILLIONS]   (default 10, 0.1 for a smoke run;
#   data in ${FUNNEL_BENCH_DATA:-bench/data/report}, relative to the repository root; bench/data/ is gitignored)
# Builds funnel in release, simulates ~N million events, runs each tool 3 times (alternating) under
# /usr/bin/time -v and prints a markdown table for BENCHMARKS.md. The two tools' answers are then
# compared (DuckDB's counts against funnel's report and the simulator's truth): if they differ, or
# cannot be compared, the differences are printed and the script exits 1 (a benchmark whose answers
# differ measures nothing).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10}"
DATA="${FUNNEL_BENCH_DATA:-bench/data/report}"
USERS=$(awk -v n="$N" 'BEGIN { printf "%d", n * 1000000 / 20 }')   # clickbait: ~20 events/user
RUNS=3
mkdir -p "$DATA/times"

bash bench/setup.sh
swift build -c release --product funnel

echo "== simulating $USERS users into $DATA/events.jsonl"
.build/release/funnel simulate --scenario clickbait --users "$USERS" --seed 7 \
  --out "$DATA/events.jsonl" --truth "$DATA/truth.json"
LINES=$(wc -l < "$DATA/events.jsonl")
echo "events: $LINES lines, $(du -h "$DATA/events.jsonl" | cut -f1)"
cat "$DATA/events.jsonl" > /dev/null   # same warm page cache for both tools

FUNNEL_CMD=(.build/release/funnel report --events "$DATA/events.jsonl" --format json --output "$DATA/funnel.json")
DUCKDB_CMD=(bench/.venv/bin/python bench/duckdb_report.py "$DATA/events.jsonl" "$DATA/duckdb_out")
for i in $(seq "$RUNS"); do
  for tool in funnel duckdb; do
    if [ "$tool" = funnel ]; then cmd=("${FUNNEL_CMD[@]}"); else cmd=("${DUCKDB_CMD[@]}"); fi
    echo "== run $i: $tool"
    /usr/bin/time -v -o "$DATA/times/$tool.$i" "${cmd[@]}" > "$DATA/times/$tool.$i.stdout"
  done
done

echo
echo "## funnel report vs DuckDB, $LINES events ($(date -u +%Y-%m-%d))"
echo
counts_status=0
bench/.venv/bin/python - "$DATA" "$RUNS" <<'EOF' || counts_status=$?
import json, pathlib, statistics, sys
data, runs = pathlib.Path(sys.argv[1]), int(sys.argv[2])

def parse(path):  # one `/usr/bin/time -v` file -> wall s, cpu s, peak RSS MiB
    f = {k.strip(): v.strip() for k, _, v in (l.rpartition(": ") for l in path.read_text().splitlines())}
    wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(
        f["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"))))
    cpu = float(f["User time (seconds)"]) + float(f["System time (seconds)"])
    return wall, cpu, int(f["Maximum resident set size (kbytes)"]) / 1024

med = {}
print("| tool | median wall s | CPU util (user+sys)/wall | peak RSS MiB (max of runs) | walls s |")
print("|---|---|---|---|---|")
for tool in ("funnel", "duckdb"):
    r = [parse(data / "times" / f"{tool}.{i}") for i in range(1, runs + 1)]
    med[tool] = statistics.median(w for w, _, _ in r)
    util = statistics.median(c / w for w, c, _ in r)
    print(f"| {tool} | {med[tool]:.2f} | {util:.2f} | {max(m for *_, m in r):.0f} | "
          + ", ".join(f"{w:.2f}" for w, _, _ in r) + " |")
print(f"\nratio funnel/duckdb (median wall): **{med['funnel'] / med['duckdb']:.2f}**\n")

# Cross-check the counting: DuckDB's per-variant counts and data_quality counters against funnel's
# report and against the simulator's ground truth (truth.json); differences are printed, and any
# difference, or a file missing for the comparison, makes this step exit 1.
dv = {r["variant"]: r for r in map(json.loads, (data / "duckdb_out/variants.json").read_text().splitlines())}
dq = json.loads((data / "duckdb_out/data_quality.json").read_text())

def close(a, b):
    return isinstance(a, (int, float)) and isinstance(b, (int, float)) and abs(a - b) <= 1e-6 * max(1, abs(b))

def diffs(name, ref):
    out = [f"variant {v}: in {name} only" for v in ref["variants"] if v not in dv]
    out += [f"{v}.{k}: {name} {ref['variants'].get(v, {}).get(k)} vs duckdb {x}"
            for v, row in dv.items() for k, x in row.items()
            if k != "variant" and not close(ref["variants"].get(v, {}).get(k), x)]
    out += [f"data_quality.{k}: {name} {ref['data_quality'].get(k)} vs duckdb {x}"
            for k, x in dq.items() if ref["data_quality"].get(k) != x]
    return out

refs = [("funnel", data / "funnel.json"), ("truth", data / "truth.json")]
same = True
for name, path in refs:
    if not path.exists():
        print(f"same counts as {name}: NOT CHECKED ({path} missing)")
        same = False
        continue
    d = diffs(name, json.loads(path.read_text()))
    print(f"same counts as {name}: " + ("yes (variants and data_quality counters)" if not d else "NO"))
    for line in d:
        print("  - " + line)
    same = same and not d
sys.exit(0 if same else 1)
EOF
cat <<EOF

Commands (each run $RUNS times, alternating, under \`/usr/bin/time -v\`; page cache warm):
- \`${FUNNEL_CMD[*]}\`
- \`${DUCKDB_CMD[*]}\`  (bench/report.sql, \`SET threads=2\`)
- data: \`.build/release/funnel simulate --scenario clickbait --users $USERS --seed 7 --out $DATA/events.jsonl --truth $DATA/truth.json\`
- reproduce: \`bash bench/run_report_bench.sh $N\`

Machine: \`$(uname -a)\`; nproc $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');
$(free -g | awk '/Mem:/ {print $2 " GiB RAM"}'); duckdb $(bench/.venv/bin/python -c 'import duckdb; print(duckdb.__version__)');
$(swift --version 2>&1 | head -1); funnel commit $(git rev-parse --short HEAD 2>/dev/null || echo none).
EOF
if [ "$counts_status" -ne 0 ]; then
  echo "run_report_bench: the counts differ or could not be compared (see \"same counts as\" above): the timings compare different answers" >&2
  exit 1
fi
