#!/usr/bin/env bash
# Peer benchmark: `funnel ope` vs obp 0.5.7 (Open Bandit Pipeline) on 1,000,000 logged rounds.
#   bash bench/ope/run_ope_bench.sh [FUNNEL_BINARY]      (default .build/release/funnel; not built here)
# Environment: RUNS (default 1) repetitions of each command, alternating tools, median reported;
#   ROWS (default 1000000) rows to generate; OBD (default ${FUNNEL_SHARED_DATA:-../shared/data}/obd,
#   relative to the repository root) the shared sample.
#
# 1. creates .venv-obp (Python 3.10, tools/fixtures/requirements-obp.txt) if missing;
# 2. generates bench/data/ope/ (gitignored) with bench/ope/make_obd_1m.py if missing;
# 3. runs, one at a time, each under /usr/bin/time -v (wall time, CPU, peak RSS):
#      ipw+snipw:    funnel ope --estimators ipw,snipw     | obp_bench.py --estimators ipw,snipw
#      ipw+snipw+dr: funnel ope --estimators ipw,snipw,dr  | obp_bench.py --estimators ipw,snipw,dr
# 4. prints the comparison; fails unless IPW and SNIPW agree to 1e-9 relative in every run.
set -euo pipefail
cd "$(dirname "$0")/../.."
FUNNEL="${1:-.build/release/funnel}"
RUNS="${RUNS:-1}"
ROWS="${ROWS:-1000000}"
OBD="${OBD:-${FUNNEL_SHARED_DATA:-../shared/data}/obd}"
DATA=bench/data/ope
OUT="$DATA/run"
LOGS="$DATA/obd_random_all_$ROWS.csv"
POLICY="$DATA/policy_bts_all.csv"
PY=.venv-obp/bin/python
step() { echo "== $(date -u +%H:%M:%S) $*" >&2; }

if [ ! -x "$FUNNEL" ]; then
  echo "no funnel binary at $FUNNEL; build one with 'swift build -c release --product funnel' or pass its path" >&2
  exit 2
fi
if [ ! -x /usr/bin/time ]; then
  sudo_=""; [ "$(id -u)" = 0 ] || sudo_="sudo"
  $sudo_ apt-get update -qq && $sudo_ apt-get install -y -qq time
fi

# 1. obp venv (obp 0.5.7 needs Python < 3.11).
if ! "$PY" -c 'import obp' 2>/dev/null; then
  step "creating .venv-obp"
  py310=""
  for c in "$(command -v python3.10 || true)" "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.10.*/bin/python; do
    if [ -n "$c" ] && [ -x "$c" ]; then py310="$c"; break; fi
  done
  [ -n "$py310" ] || { echo "obp 0.5.7 needs Python 3.10 (python3.10 not found; e.g. 'pyenv install 3.10')" >&2; exit 2; }
  "$py310" -m venv .venv-obp
  "$PY" -m pip install -q -r tools/fixtures/requirements-obp.txt
fi

# 2. data.
if [ ! -s "$LOGS" ] || [ ! -s "$POLICY" ]; then
  step "generating $LOGS"
  "$PY" bench/ope/make_obd_1m.py --rows "$ROWS" --data "$OBD" --out "$DATA"
fi
mkdir -p "$OUT"
rm -f "$OUT"/*.time "$OUT"/*.json
cat "$LOGS" "$POLICY" > /dev/null   # same warm page cache for every run

# 3. runs, one heavy process at a time.
for i in $(seq "$RUNS"); do
  for mode in ipw_snipw ipw_snipw_dr; do
    est="${mode//_/,}"
    step "run $i $mode: funnel"
    /usr/bin/time -v -o "$OUT/funnel.$mode.$i.time" \
      "$FUNNEL" ope --logs "$LOGS" --log-format obd --policy "$POLICY" \
      --estimators "$est" --bootstrap 0 --format json > "$OUT/funnel.$mode.$i.json"
    step "run $i $mode: obp"
    /usr/bin/time -v -o "$OUT/obp.$mode.$i.time" \
      "$PY" bench/ope/obp_bench.py --logs "$LOGS" --policy "$POLICY" \
      --estimators "$est" > "$OUT/obp.$mode.$i.json" 2> "$OUT/obp.$mode.$i.stderr"
  done
done
step "done"

# 4. comparison.
"$PY" - "$OUT" "$RUNS" <<'EOF'
import json, pathlib, statistics, sys
out, runs = pathlib.Path(sys.argv[1]), int(sys.argv[2])
TOL = 1e-9

def usage(path):  # `/usr/bin/time -v` -> wall s, cpu s, peak RSS MiB
    f = {k.strip(): v.strip() for k, _, v in (l.rpartition(": ") for l in path.read_text().splitlines())}
    wall = sum(float(x) * 60 ** i for i, x in enumerate(reversed(
        f["Elapsed (wall clock) time (h:mm:ss or m:ss)"].split(":"))))
    cpu = float(f["User time (seconds)"]) + float(f["System time (seconds)"])
    return wall, cpu, int(f["Maximum resident set size (kbytes)"]) / 1024

def rel(a, b):
    return abs(a - b) / max(abs(a), abs(b)) if a != b else 0.0

failures = []
for mode in ("ipw_snipw", "ipw_snipw_dr"):
    res = {t: [usage(out / f"{t}.{mode}.{i}.time") for i in range(1, runs + 1)] for t in ("funnel", "obp")}
    docs = {t: [json.loads((out / f"{t}.{mode}.{i}.json").read_text()) for i in range(1, runs + 1)]
            for t in ("funnel", "obp")}
    f0, o0 = docs["funnel"][0], docs["obp"][0]
    print(f"\n### estimators {mode.replace('_', ', ')} — {f0['rounds']:,} rounds, {f0['items']} items, "
          f"{f0['positions']} positions\n")
    if f0["rounds"] != o0["rounds"]:
        failures.append(f"{mode}: rounds differ: funnel {f0['rounds']} obp {o0['rounds']}")
    print("| estimator | funnel | obp | relative difference |")
    print("|---|---|---|---|")
    for e in o0["estimates"]:
        for i in range(runs):
            fv = docs["funnel"][i]["estimates"][e]["value"]
            ov = docs["obp"][i]["estimates"][e]
            d = rel(fv, ov)
            if e in ("ipw", "snipw") and not d <= TOL:
                failures.append(f"{mode} run {i + 1}: {e} funnel {fv!r} obp {ov!r} relative difference {d:.3g} > {TOL}")
        fv, ov = f0["estimates"][e]["value"], o0["estimates"][e]
        print(f"| {e} | {fv!r} | {ov!r} | {rel(fv, ov):.3g} |")
    med = {t: statistics.median(w for w, _, _ in r) for t, r in res.items()}
    print("\n| tool | median wall s | CPU (user+sys)/wall | peak RSS MiB (max of runs) | walls s |")
    print("|---|---|---|---|---|")
    for t, r in res.items():
        util = statistics.median(c / w for w, c, _ in r)
        print(f"| {t} | {med[t]:.2f} | {util:.2f} | {max(m for *_, m in r):.0f} | "
              + ", ".join(f"{w:.2f}" for w, _, _ in r) + " |")
    print(f"\nratio obp / funnel (median wall): **{med['obp'] / med['funnel']:.2f}**")
    print("obp stages (s, run 1): " + ", ".join(f"{k} {v:.2f}" for k, v in o0["timings_s"].items()))
    if o0.get("reward_model"):
        m = o0["reward_model"]
        print(f"obp reward model: {m['position_models']} per-position models × {m['folds']} folds, "
              f"{m['features_per_model']} features, {m['base_model']}, lbfgs iterations (last fold) "
              f"{m['last_fold_lbfgs_iterations']}, convergence warnings {m['convergence_warnings']}; "
              f"q_hat {m['q_hat_mib']:.0f} MiB; mean q̂ at logged (item, position) {m['mean_q_hat_logged']:.6f} "
              f"vs mean click {m['mean_reward']:.6f}")
        print(f"funnel reward model: {f0['settings']['reward_model']}")
    warn = f0["diagnostics"]["warnings"]
    print(f"funnel diagnostics: ESS {f0['diagnostics']['ess']:.1f}, max weight {f0['diagnostics']['max_weight']:.4f}"
          + (f"; warnings: {warn}" if warn else ""))

print()
if failures:
    print("FAILED: IPW/SNIPW must agree to 1e-9 relative")
    for f in failures:
        print("  - " + f)
    sys.exit(1)
print(f"IPW and SNIPW agree to {TOL:g} relative in every run; DR differs by the reward models (see above).")
EOF
cat <<EOF

Commands (each $RUNS time(s), tools alternating, one process at a time, under \`/usr/bin/time -v\`; page cache warm):
- \`$FUNNEL ope --logs $LOGS --log-format obd --policy $POLICY --estimators ipw,snipw[,dr] --bootstrap 0 --format json\`
- \`$PY bench/ope/obp_bench.py --logs $LOGS --policy $POLICY --estimators ipw,snipw[,dr]\`
- data: \`$PY bench/ope/make_obd_1m.py --rows $ROWS\` (seed 7; manifest in $DATA/obd_random_all_$ROWS.manifest.json)
- reproduce: \`bash bench/ope/run_ope_bench.sh $FUNNEL\`

Machine: \`$(uname -srm)\`; nproc $(nproc); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //');
$(free -g | awk '/Mem:/ {print $2 " GiB RAM"}'); $("$PY" -c 'import obp, sklearn, numpy, pandas; print(f"obp {obp.__version__}, scikit-learn {sklearn.__version__}, numpy {numpy.__version__}, pandas {pandas.__version__}")' 2>/dev/null);
funnel binary $FUNNEL (commit of the tree it was built from not recorded here); repo HEAD $(git rev-parse --short HEAD 2>/dev/null || echo none).
EOF
