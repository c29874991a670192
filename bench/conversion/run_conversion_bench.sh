#!/usr/bin/env bash
# The conversion models, Funnel against its PyTorch twin (bench/conversion/torch_cvr.py), on the
# selection-bias simulation (or Hillstrom's e-mail experiment), at equal settings: Adam 1e-3,
# batches of 1,024, embeddings of 8 per value (one row per value seen in training, unseen values
# sharing one per column), towers 64-32, no L2, propensity clip 0.05, λ 1, early stopping on the
# validation CTCVR log loss (the last tenth of the training rows, patience 2, at most 10 epochs,
# the best epoch kept), 2 threads each. One JSON line per tool × model × seed goes to OUT/results.jsonl
# (OUT/$RESULTS_NAME when set); bench/conversion/summarize.py OUT/results.jsonl prints the tables.
# The twin trains as a PyTorch user would set it up: rows shuffled each epoch, PyTorch's default
# initial biases. TORCH_ARGS="--order file --bias-init rates" makes it train as Funnel does (rows in
# file order, each tower's output bias at its label's rate); add --sparse for Funnel's lazy updates of
# the embedding rows (SparseAdam) where PyTorch's Adam moves every row every step.
#
# usage: bench/conversion/run_conversion_bench.sh FUNNEL OUT [USERS] [SEEDS] [MODELS] [TOOLS]
#   USERS   simulated users per training log (default 45000: about 1.08 M impressions)
#   SEEDS   comma-separated seeds of the training logs and models (default 11,12,13)
#   MODELS  Funnel's names (default naive-cvr,naive-cvr-shared,esmm,escm2-ips,escm2-dr,dcmt,choruscvr;
#           naive-cvr-shared is naive-cvr --shared-embedding)
#   TOOLS   funnel,pytorch (default both)
# With USERS=hillstrom the data are Hillstrom's (bench/conversion/prepare_hillstrom.py: 70 % to
# train, 30 % to test; no truth), and SEEDS only seed the models.
set -euo pipefail
FUNNEL=$(realpath "$1"); OUT=$2; USERS=${3:-45000}; SEEDS=${4:-11,12,13}
MODELS=${5:-naive-cvr,naive-cvr-shared,esmm,escm2-ips,escm2-dr,dcmt,choruscvr}; TOOLS=${6:-funnel,pytorch}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=$ROOT/.venv-torch/bin/python
SHARED=${FUNNEL_SHARED_DATA:-$ROOT/../shared/data}
mkdir -p "$OUT"
OUT=$(realpath "$OUT")
RESULTS=$OUT/${RESULTS_NAME:-results.jsonl}

# PyTorch's names of the same models.
torch_name() { case $1 in naive-cvr) echo naive;; naive-cvr-shared) echo naive-shared;; escm2-ips) echo escm2-ipw;; *) echo "$1";; esac; }
TORCH_MODELS=$(IFS=,; for m in $MODELS; do printf '%s,' "$(torch_name "$m")"; done); TORCH_MODELS=${TORCH_MODELS%,}

if [ "$USERS" = hillstrom ]; then
  CATEGORICAL=recency,history_segment,mens,womens,zip_code,newbie,channel,segment
  "$PY" "$ROOT/bench/conversion/prepare_hillstrom.py" --data "$SHARED/hillstrom/hillstrom.csv" --out "$OUT/hillstrom" >&2
  TEST=$OUT/hillstrom/test.csv; TEST_TRUTH=
else
  CATEGORICAL=user_segment,item_id,category,price_bucket,position,device
  TEST=$OUT/test.csv; TEST_TRUTH=$OUT/test-truth.csv
  [ -f "$TEST" ] || "$FUNNEL" simulate --scenario selection-bias --users 20000 --seed 2 --out "$TEST" --truth "$TEST_TRUTH" >&2
fi

for SEED in ${SEEDS//,/ }; do
  if [ "$USERS" = hillstrom ]; then
    TRAIN=$OUT/hillstrom/train.csv; TRAIN_TRUTH=
  else
    TRAIN=$OUT/train$SEED.csv; TRAIN_TRUTH=$OUT/train$SEED-truth.csv
    [ -f "$TRAIN" ] || "$FUNNEL" simulate --scenario selection-bias --users "$USERS" --seed "$SEED" --out "$TRAIN" --truth "$TRAIN_TRUTH" >&2
  fi
  # The validation split of early stopping: the last tenth of the training rows, as the twin holds out.
  FIT=${TRAIN%.csv}-fit.csv; VALID=${TRAIN%.csv}-valid.csv
  if [ ! -f "$VALID" ]; then
    "$PY" - "$TRAIN" "$FIT" "$VALID" <<'EOF'
import sys
src, fit, valid = sys.argv[1:]
with open(src) as f:
    header, rows = f.readline(), f.readlines()
held = len(rows) // 10
open(fit, "w").write(header + "".join(rows[:len(rows) - held]))
open(valid, "w").write(header + "".join(rows[len(rows) - held:]))
EOF
  fi
  if [[ $TOOLS == *funnel* ]]; then
    for M in ${MODELS//,/ }; do
      LOG=$OUT/funnel-$M-$SEED.log
      MODEL=$M; EXTRA=
      if [ "$M" = naive-cvr-shared ]; then MODEL=naive-cvr; EXTRA=--shared-embedding; fi
      "$FUNNEL" train --data "$FIT" --valid "$VALID" --label click --conversion-label purchase --categorical "$CATEGORICAL" \
        --model "$MODEL" $EXTRA --batch-size 1024 --learning-rate 0.001 --factors 8 --hidden 64,32 --embedding-l2 0 --vocabulary-min-count 1 \
        --max-epochs 10 --patience 2 --threads 2 --seed "$SEED" --out "$OUT/funnel-$M-$SEED.json" 2> "$LOG" > /dev/null
      "$FUNNEL" evaluate --model "$OUT/funnel-$M-$SEED.json" --data "$TEST" ${TEST_TRUTH:+--truth "$TEST_TRUTH"} --format json 2>/dev/null \
        > "$OUT/funnel-$M-$SEED-eval.json"
      "$PY" - "$OUT/funnel-$M-$SEED-eval.json" "$LOG" "$M" "$SEED" >> "$RESULTS" <<'EOF'
import json, re, sys
doc, log, model, seed = json.load(open(sys.argv[1])), open(sys.argv[2]).read(), sys.argv[3], int(sys.argv[4])
epochs = re.findall(r"^epoch (\d+):", log, re.M)
kept = re.search(r"keeping epoch (\d+)", log)
row = {"tool": "funnel", "model": model, "seed": seed,
       "train_seconds": float(re.search(r"trained in ([0-9.]+) s", log).group(1)),
       "epochs": int(epochs[-1]), "best_epoch": int(kept.group(1)) if kept else int(epochs[-1]),
       "ctr_auc": doc["ctr"]["auc"], "ctr_logloss": doc["ctr"]["logloss"],
       "cvr_auc_clicked": doc["cvr"]["auc"], "cvr_logloss_clicked": doc["cvr"]["logloss"],
       "ctcvr_auc": doc["ctcvr"]["auc"], "ctcvr_logloss": doc["ctcvr"]["logloss"]}
if "truth" in doc:
    t = doc["truth"]
    row.update(entire_space_cvr_auc=t["entire_space_cvr_auc"], unclicked_calibration_ratio=t["unclicked_cvr_calibration_ratio"],
               clicked_calibration_ratio=t["clicked_cvr_calibration_ratio"])
print(json.dumps(row))
EOF
      echo "funnel $M seed $SEED: $(tail -1 "$RESULTS")" >&2
    done
  fi
  if [[ $TOOLS == *pytorch* ]]; then
    "$PY" "$ROOT/bench/conversion/torch_cvr.py" --data "$TRAIN" ${TRAIN_TRUTH:+--truth "$TRAIN_TRUTH"} --test-data "$TEST" \
      ${TEST_TRUTH:+--test-truth "$TEST_TRUTH"} --categorical "$CATEGORICAL" --models "$TORCH_MODELS" \
      --epochs 10 --patience 2 --batch-size 1024 --lr 0.001 --threads 2 --seed "$SEED" ${TORCH_ARGS:-} | grep '"model"' | tee -a "$RESULTS" >&2
  fi
done
"$PY" "$ROOT/bench/conversion/summarize.py" "$RESULTS"
