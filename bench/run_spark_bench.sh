#!/usr/bin/env bash
# funnel report in-process against --engine spark, on Spark local[2] and on the two-worker
# standalone cluster of scripts/spark/start-cluster (both workers on this machine), on the core
# bench's simulated log (bench/run_core_bench.sh makes it: N million events of many light users,
# mixed timestamp formats).
#
#   bash bench/run_spark_bench.sh [N_EVENTS_MILLIONS] [RUNS]     (default 10 and 1)
#
# Prints a markdown table: wall time (median over RUNS) and, for Spark, the job's tasks, bytes
# shuffled, the seconds spent inside Spark and each stage's (from the driver's monitoring API); then checks that
# every engine's report JSON equals the in-process one (tools/checks/compare_reports.py).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-10}"
RUNS="${2:-1}"
DATA="${FUNNEL_BENCH_DATA:-bench/data}/core${N}m"
USERS=$(awk -v n="$N" 'BEGIN { printf "%d", n * 1000000 / 7.594 }')
OUT="$DATA/spark"
mkdir -p "$OUT"
swift build -c release --product funnel > /dev/null
scripts/spark/install > /dev/null
if [ ! -s "$DATA/events.jsonl" ]; then
  echo "== simulating $USERS users into $DATA/events.jsonl" >&2
  .build/release/funnel simulate --scenario clickbait --users "$USERS" --seed 7 --list-length 2 --mixed-timestamps \
    --out "$DATA/events.jsonl" --truth "$DATA/truth.json" >&2
fi
cluster="$OUT/cluster"
trap 'scripts/spark/stop-cluster "$cluster"' EXIT
master=$(scripts/spark/start-cluster "$cluster")
cat "$DATA/events.jsonl" > /dev/null   # a warm page cache for every engine

run() {   # run NAME ARGS...: one timed funnel report, its report in $OUT/NAME.json
  local name=$1 i=$2; shift 2
  echo "== run $i: $name" >&2
  local t0 t1
  t0=$(date +%s.%N)
  .build/release/funnel report --events "$DATA/events.jsonl" --format json --output "$OUT/$name.json" "$@" 2> "$OUT/$name.$i.err" \
    || { cat "$OUT/$name.$i.err" >&2; exit 1; }
  t1=$(date +%s.%N)
  echo "$t0 $t1" | awk '{ printf "%.2f\n", $2 - $1 }' > "$OUT/$name.$i.wall"
}
for i in $(seq "$RUNS"); do
  run in-process "$i"
  run spark-local "$i" --engine spark --master "local[2]" --spark-submit .venv-spark/bin/spark-submit
  run spark-cluster "$i" --engine spark --master "$master" --spark-submit .venv-spark/bin/spark-submit
done

python3 - "$OUT" "$RUNS" "$(wc -l < "$DATA/events.jsonl")" "$(du -h "$DATA/events.jsonl" | cut -f1)" <<'PY'
import re, statistics, sys
out, runs, lines, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
print(f"\n{lines:,} events ({size}), {runs} run(s) each\n")
print("| engine | wall s (median) | tasks (failed) | shuffled | in Spark s | stages (read and route; order and summarize) |")
print("|---|---|---|---|---|---|")
base = None
for name in ("in-process", "spark-local", "spark-cluster"):
    walls = [float(open(f"{out}/{name}.{i}.wall").read()) for i in range(1, runs + 1)]
    wall = statistics.median(walls)
    base = base or wall
    stats = [l for l in open(f"{out}/{name}.{runs}.err") if l.startswith("spark: ")]
    if stats:
        s = stats[-1]
        tasks = re.search(r"(\d+) tasks \((\d+) failed", s)
        shuffled = re.search(r"shuffled ([\d.]+) MiB", s).group(1)
        inside = re.search(r"([\d.]+) s in Spark", s).group(1)
        stages = s.split("; stages: ")[1].strip() if "; stages: " in s else ""
        print(f"| {name} | {wall:.1f} ({wall / base:.1f}x) | {tasks.group(1)} ({tasks.group(2)}) | {shuffled} MiB | {inside} | {stages} |")
    else:
        print(f"| {name} | {wall:.1f} | | | | |")
PY
for name in spark-local spark-cluster; do
  python3 tools/checks/compare_reports.py "$OUT/in-process.json" "$OUT/$name.json" --label "$name against in-process"
done
