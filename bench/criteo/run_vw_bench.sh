#!/usr/bin/env bash
# Funnel's FTRL logistic regression against Vowpal Wabbit's FTRL-Proximal on one Criteo-layout
# split written by bench/criteo/make_criteo_like.py:
#
#   bash bench/criteo/run_vw_bench.sh FUNNEL_BINARY DATA_DIR
#
# Setup (once): python3 -m venv .venv-vw && .venv-vw/bin/pip install -r bench/criteo/requirements-vw.txt
#
# What it does
# - Converts DATA_DIR/train.txt and test.txt to VW text with bench/criteo/to_vw.py (the same
#   features Funnel builds: Cj=<value>, Ij with value sign(x)·log(1+|x|), Ij=missing), once: the
#   files are kept in DATA_DIR/vw/ and rebuilt only when the source or to_vw.py is newer. Not timed.
# - Funnel: `funnel train --data-format criteo --model lr --epochs 1 --alpha 0.05 --beta 1 --l1 1
#   --l2 1 --hash-bits 20`, timed as a whole (reading and parsing the text file, training, writing
#   the model: "train wall") and by its own "trained in X s" line (training only); then `funnel
#   evaluate --format json` on test.txt gives the test AUC and log loss.
# - VW, three training runs with the same flags:
#   1. on train.vw (text): VW parses while it trains; timed as "train wall". Its model is the one
#      evaluated.
#   2. on train.vw with -k --cache_file: writes VW's binary cache (parsed, hashed examples). Not timed.
#   3. from that cache: mostly training (reading the cache is cheap); timed as "train-only",
#      also shown net of VW's fixed cost (the same command on a one-row file: launcher start,
#      allocating the 2^20-weight tables, writing the model).
#   Then `-t -i model.vw -p preds.txt` scores test.vw, and AUC (the rank AUC of
#   make_criteo_like.py) and log loss (probabilities clipped to [1e-15, 1 − 1e-15], as Funnel
#   does) are computed in Python.
# - The fair speed comparison is train wall against train wall: each tool parses its own native
#   input and trains. The train-only columns are each tool's best view of the learning loop alone
#   (Funnel's in-process timer; VW's wall time from its cache, which still includes reading the cache
#   and writing the model).
#
# VW flags and why they give the same model as Funnel's
#   --ftrl --ftrl_alpha 0.05 --ftrl_beta 1 --l1 1 --l2 1 -b 20 --loss_function logistic --link logistic
# - --ftrl is VW's FTRL-Proximal (McMahan et al.): per coordinate it keeps z and n (the sum of
#   squared gradients), updates z += g − σ·w with σ = (√(n + g²) − √n)/α, and sets
#   w = 0 if |z| ≤ λ1, else −(z − sign(z)·λ1) / ((β + √n)/α + λ2). That is Funnel's FTRLTrainer
#   update, term for term. In this mode VW uses --l1 and --l2 directly as λ1 and λ2 of that closed
#   form: they are not scaled per example or by a learning rate as they are in VW's default SGD
#   learner (where --l1 is truncated gradient and --l2 a per-update decay), so λ1 = 1, λ2 = 1 are
#   passed unchanged. VW's own FTRL defaults are α = 0.005, β = 0.1, hence the explicit values.
# - The bias: VW adds a constant feature (value 1) and, in --ftrl mode, regularizes it like every
#   other weight; Funnel's bias is one more FTRL coordinate with the same λ1, λ2. So neither
#   --noconstant nor --no_bias_regularization is passed.
# - --loss_function logistic with labels −1/1 has gradient −y/(1 + e^{y·s}) = p − y01, Funnel's
#   gradient. VW clamps the raw score to [−50, 50], Funnel to [−35, 35]: no difference in practice.
# - -b 20: 2^20 hashed weights, Funnel's --hash-bits 20 (the hash functions differ, so the rare
#   collisions differ). --link logistic makes -p write probabilities.
# - One pass, in file order, no holdout (VW holds out only with --passes > 1), float weights in VW
#   and double state in Funnel. On the same rows the two progressive (online) training log losses,
#   VW's "average loss" and Funnel's "progressive log loss", should agree to about 4 decimals; the
#   script prints both as a check.
#
# VW comes from the `vowpalwabbit` pip package, which has no `vw` executable: it is run as
# `python -m vowpalwabbit ARGS`, VW's own command-line driver behind a Python launcher. The launcher
# (interpreter start and loading the library) is counted in VW's wall times and printed separately.
# Set VW to a command (e.g. VW=vw) to use a stand-alone binary instead.
#
# Output: progress and logs on stderr, the markdown table and notes on stdout. Environment:
# PYTHON (default .venv-vw/bin/python of the repository; needs vowpalwabbit and numpy), VW (default
# "$PYTHON -m vowpalwabbit"), WORK (directory for models and logs; default a new temporary
# directory, kept), CPUS (a CPU list for taskset, e.g. CPUS=0, to pin every timed command to those
# cores; unset: no pinning. VW parses text on a second thread, so without pinning it may use two
# cores where Funnel uses one; the CPU-seconds column shows it).
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: bash bench/criteo/run_vw_bench.sh FUNNEL_BINARY DATA_DIR" >&2
  exit 2
fi
FUNNEL="$1"
DATA="${2%/}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv-vw/bin/python}"
TO_VW="$ROOT/bench/criteo/to_vw.py"
WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/funnel-vw-bench.XXXXXX")}"
mkdir -p "$WORK"

die() { echo "run_vw_bench: $*" >&2; exit 1; }
[ -x "$FUNNEL" ] || die "$FUNNEL is not an executable (pass the funnel binary, e.g. .build/release/funnel)"
[ -f "$DATA/train.txt" ] && [ -f "$DATA/test.txt" ] || die "$DATA must hold train.txt and test.txt (bench/criteo/make_criteo_like.py --out $DATA)"
[ -x "$PYTHON" ] || die "$PYTHON not found (python3 -m venv .venv-vw && .venv-vw/bin/pip install -r bench/criteo/requirements-vw.txt)"
"$PYTHON" -c 'import numpy, vowpalwabbit' 2> /dev/null || die "$PYTHON lacks numpy or vowpalwabbit (pip install -r bench/criteo/requirements-vw.txt)"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed for peak memory"
read -r -a VW_CMD <<< "${VW:-$PYTHON -m vowpalwabbit}"
PIN=()
if [ -n "${CPUS:-}" ]; then
  command -v taskset > /dev/null || die "CPUS is set but taskset is not installed"
  PIN=(taskset -c "$CPUS")
fi

# 1. VW text files, converted once and cached next to the data.
mkdir -p "$DATA/vw"
for split in train test; do
  src="$DATA/$split.txt" dst="$DATA/vw/$split.vw"
  if [ ! -s "$dst" ] || [ "$src" -nt "$dst" ] || [ "$TO_VW" -nt "$dst" ]; then
    echo "== converting $src to $dst" >&2
    "$PYTHON" "$TO_VW" "$src" "$dst.tmp" || die "conversion of $src failed"
    mv "$dst.tmp" "$dst"
  fi
done

TRAIN_ROWS=$(wc -l < "$DATA/train.txt" | tr -d ' ')
TEST_ROWS=$(wc -l < "$DATA/test.txt" | tr -d ' ')
cat "$DATA/train.txt" "$DATA/test.txt" "$DATA/vw/train.vw" "$DATA/vw/test.vw" > /dev/null   # warm page cache

# run PREFIX CMD...: runs CMD with stdout and stderr to PREFIX.out/.err, its peak RSS (KiB), user
# and system CPU seconds to PREFIX.res and its wall seconds to PREFIX.wall; on failure shows the
# end of stderr and stops.
run() {
  local prefix="$1"; shift
  local t0 t1
  t0=$(date +%s.%N)
  if ! /usr/bin/time -f "%M %U %S" -o "$prefix.res" "${PIN[@]}" "$@" > "$prefix.out" 2> "$prefix.err"; then
    echo "run_vw_bench: failed: $*" >&2
    tail -n 20 "$prefix.err" >&2
    exit 1
  fi
  t1=$(date +%s.%N)
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f\n", b - a }' > "$prefix.wall"
}

VW_FLAGS=(--ftrl --ftrl_alpha 0.05 --ftrl_beta 1 --l1 1 --l2 1 -b 20 --loss_function logistic --link logistic)
echo "Criteo-layout data $DATA: $TRAIN_ROWS training rows, $TEST_ROWS test rows; 1 epoch, FTRL α 0.05, β 1, λ1 1, λ2 1, 2^20 hashed weights; pinned to CPUs ${CPUS:-none}; logs in $WORK" >&2

echo "== funnel train" >&2
run "$WORK/funnel.train" "$FUNNEL" train --data "$DATA/train.txt" --data-format criteo --model lr --epochs 1 \
  --alpha 0.05 --beta 1 --l1 1 --l2 1 --hash-bits 20 --vocabulary-min-count 0 --out "$WORK/funnel.model.json"
echo "== funnel evaluate" >&2
run "$WORK/funnel.evaluate" "$FUNNEL" evaluate --model "$WORK/funnel.model.json" --data "$DATA/test.txt" --format json
echo "== funnel predict (for the same-metric-code check)" >&2
run "$WORK/funnel.predict" "$FUNNEL" predict --model "$WORK/funnel.model.json" --data "$DATA/test.txt" \
  --out "$WORK/funnel.predictions.csv"

echo "== vw launcher overhead" >&2
run "$WORK/vw.launcher" "${VW_CMD[@]}" --version
echo "== vw train on text" >&2
run "$WORK/vw.train" "${VW_CMD[@]}" "${VW_FLAGS[@]}" -d "$DATA/vw/train.vw" -f "$WORK/vw.model"
echo "== vw writes its cache (not timed)" >&2
rm -f "$WORK/vw.cache"
run "$WORK/vw.mkcache" "${VW_CMD[@]}" "${VW_FLAGS[@]}" -d "$DATA/vw/train.vw" -k --cache_file "$WORK/vw.cache" \
  -f "$WORK/vw.cache-model-1"
echo "== vw train from its cache" >&2
run "$WORK/vw.train-cache" "${VW_CMD[@]}" "${VW_FLAGS[@]}" -d "$DATA/vw/train.vw" --cache_file "$WORK/vw.cache" \
  -f "$WORK/vw.cache-model"
grep -q "using cache_file" "$WORK/vw.train-cache.err" || die "VW did not read its cache (see $WORK/vw.train-cache.err)"
echo "== vw fixed cost: the same training command on one row (start, 2^20-weight tables, model write)" >&2
head -n 1 "$DATA/vw/train.vw" > "$WORK/vw.one-row.vw"
run "$WORK/vw.fixed" "${VW_CMD[@]}" "${VW_FLAGS[@]}" -d "$WORK/vw.one-row.vw" -f "$WORK/vw.one-row.model"
echo "== vw predict" >&2
run "$WORK/vw.predict" "${VW_CMD[@]}" -t -i "$WORK/vw.model" -d "$DATA/vw/test.vw" -p "$WORK/vw.predictions.txt"

"$PYTHON" - "$ROOT/bench/criteo" "$WORK" "$DATA/test.txt" "$TRAIN_ROWS" << 'EOF'
import json
import re
import sys

import numpy as np

crit_dir, work, test_path, train_rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, crit_dir)
from make_criteo_like import auc  # noqa: E402


def read(name):
    with open(f"{work}/{name}") as fh:
        return fh.read()


def wall(prefix):
    return float(read(f"{prefix}.wall"))


def resources(prefix):
    rss_kib, user, system = read(f"{prefix}.res").strip().splitlines()[-1].split()
    return int(rss_kib) / 1024, float(user) + float(system)


def logloss(y, p):
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def last_float(pattern, text):
    found = re.findall(pattern, text)
    return float(found[-1]) if found else None


labels = []
with open(test_path) as fh:
    for line in fh:
        if line.strip():
            labels.append(int(float(line.split("\t", 1)[0])))
y = np.array(labels, dtype=np.float64)

funnel_eval = json.loads(read("funnel.evaluate.out"))
funnel_err = read("funnel.train.err")
funnel_train_only = last_float(r"trained in ([0-9.]+) s", funnel_err)
funnel_progressive = last_float(r"progressive log loss ([0-9.]+)", funnel_err)
funnel_pred = np.loadtxt(f"{work}/funnel.predictions.csv", skiprows=1, ndmin=1)

vw_pred = np.loadtxt(f"{work}/vw.predictions.txt", usecols=0, ndmin=1)
if len(vw_pred) != len(y) or len(funnel_pred) != len(y):
    sys.exit(f"run_vw_bench: {len(y)} test labels, {len(vw_pred)} VW and {len(funnel_pred)} Funnel predictions")
vw_progressive = last_float(r"average loss = ([0-9.]+)", read("vw.train.err"))
vw_cache_progressive = last_float(r"average loss = ([0-9.]+)", read("vw.train-cache.err"))

f_wall, v_wall, v_cache = wall("funnel.train"), wall("vw.train"), wall("vw.train-cache")
f_rss, f_cpu = resources("funnel.train")
v_rss, v_cpu = resources("vw.train")
v_cache_rss, v_cache_cpu = resources("vw.train-cache")
launcher, fixed = wall("vw.launcher"), wall("vw.fixed")


def rate(seconds):
    return f"{train_rows / seconds:,.0f}" if seconds and seconds > 0 else "—"


print()
print("| tool | test AUC | test log loss | train wall s (parse+train) | train-only s | rows/s (parse+train) | train CPU s | peak RSS MB |")
print("|---|---|---|---|---|---|---|---|")
print(f"| Funnel lr (FTRL) | {funnel_eval['auc']:.4f} | {funnel_eval['logloss']:.5f} | {f_wall:.2f} | "
      f"{funnel_train_only:.2f} (in-process timer) | {rate(f_wall)} | {f_cpu:.2f} | {f_rss:.0f} |")
print(f"| VW --ftrl | {auc(y, vw_pred):.4f} | {logloss(y, vw_pred):.5f} | {v_wall:.2f} | "
      f"{v_cache:.2f} (wall, from cache; {max(v_cache - fixed, 0):.2f} net of fixed cost) | {rate(v_wall)} | "
      f"{v_cpu:.2f} | {v_rss:.0f} |")
print()
print(f"- Train wall ratio VW / Funnel: {v_wall / f_wall:.2f}× (above 1: Funnel faster); "
      f"train-only ratio VW-from-cache / Funnel: "
      + (f"{v_cache / funnel_train_only:.2f}× ({max(v_cache - fixed, 0) / funnel_train_only:.2f}× net of VW's fixed cost)"
         if funnel_train_only else "—")
      + f". {train_rows:,} training rows, {len(y):,} test rows.")
print(f"- VW's wall times include its Python launcher (`python -m vowpalwabbit --version` alone: {launcher:.2f} s) "
      f"and writing its model; its fixed cost, the same training command on a one-row file, is {fixed:.2f} s "
      f"(subtracted in \"net of fixed cost\"). Funnel's train wall includes writing its JSON model. "
      f"VW from cache: CPU {v_cache_cpu:.2f} s, peak RSS {v_cache_rss:.0f} MB.")
print(f"- Progressive training log loss on the same rows: Funnel {funnel_progressive}, VW {vw_progressive} "
      f"(from cache {vw_cache_progressive}); equal to ~4 decimals means the same FTRL-Proximal.")
print(f"- Same metric code on both (make_criteo_like.auc, clipped log loss): Funnel AUC {auc(y, funnel_pred):.4f}, "
      f"log loss {logloss(y, funnel_pred):.5f} (its `evaluate` says {funnel_eval['auc']:.4f}, {funnel_eval['logloss']:.5f}). "
      f"VW writes probabilities with 6 decimals, which can tie a few test rows.")
EOF
