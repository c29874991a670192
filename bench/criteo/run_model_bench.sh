#!/usr/bin/env bash
# Funnel's click models against their PyTorch peers (bench/criteo/torch_models.py) on one
# Criteo-layout split written by bench/criteo/make_criteo_like.py:
#
#   bash bench/criteo/run_model_bench.sh FUNNEL_BINARY DATA_DIR
#
# For each of lr, fm, deepfm and dcnv2 it trains Funnel (1 epoch, batches of 256, 8 factors,
# hidden 256,128, 2 cross layers, vocabulary with min count 1), evaluates it on DATA_DIR/test.txt,
# times `funnel predict` on it, then runs the PyTorch peer with the same settings, one after the
# other, and prints one markdown table row per model. Progress and logs go to stderr; the table to
# stdout. Environment: MODELS (default "lr fm deepfm dcnv2"), THREADS (default 2), PYTHON (default
# .venv-torch/bin/python of the repository), WORK (directory for model files and logs; default a
# new temporary directory, kept).
#
# fm-ftrl, deepfm-ftrl and dcnv2-wide-ftrl (not in the default MODELS): the linear weights trained
# by FTRL-Proximal (`--linear-optimizer ftrl`, the peer's --linear-ftrl; DCN-v2 gains them with
# `--wide`), the rest by Adagrad 0.002 (fm), Adam 0.0003 (deepfm) or Adam 0.0001 (dcnv2): the
# settings with which they beat the LR on generated data (chosen on its validation split).
#
# TORCH_EXTRA: extra peer options, e.g. --sparse (SparseAdam for the embeddings, as Funnel updates them).
#
# REPEAT (default 1): train each model REPEAT times with each tool, alternating Funnel and the peer,
# so that both see the machine's slow and fast minutes alike. The table then shows the median of
# each tool's training rates and their ratio, and a line below it lists every pair's ratio and the
# median of those. Accuracy, prediction and memory come from the first round (training is
# deterministic for a fixed seed and thread count on both sides).
#
# Funnel's lr is FTRL-Proximal; the PyTorch lr peer is the same model trained with Adagrad.
# PyTorch's Adam is the dense torch.optim.Adam (see torch_models.py), Funnel's updates only touched
# embedding rows.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: bash bench/criteo/run_model_bench.sh FUNNEL_BINARY DATA_DIR" >&2
  exit 2
fi
FUNNEL="$1"
DATA="${2%/}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv-torch/bin/python}"
PEER="$ROOT/bench/criteo/torch_models.py"
MODELS="${MODELS:-lr fm deepfm dcnv2}"
THREADS="${THREADS:-2}"
REPEAT="${REPEAT:-1}"
WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/funnel-model-bench.XXXXXX")}"
mkdir -p "$WORK"

die() { echo "run_model_bench: $*" >&2; exit 1; }
[ -x "$FUNNEL" ] || die "$FUNNEL is not an executable (pass the funnel binary, e.g. .build/release/funnel)"
[ -f "$DATA/train.txt" ] && [ -f "$DATA/test.txt" ] || die "$DATA must hold train.txt and test.txt (bench/criteo/make_criteo_like.py --out $DATA)"
[ -x "$PYTHON" ] || die "$PYTHON not found (set PYTHON to a Python with torch and numpy)"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is needed for Funnel's peak memory"
command -v python3 > /dev/null || die "python3 is needed to read JSON"

TRAIN_ROWS=$(wc -l < "$DATA/train.txt" | tr -d ' ')
TEST_ROWS=$(wc -l < "$DATA/test.txt" | tr -d ' ')
cat "$DATA/train.txt" "$DATA/test.txt" > /dev/null   # same warm page cache for both tools

# run LOG_PREFIX CMD...: runs CMD with stdout and stderr to LOG_PREFIX.out/.err and its peak RSS
# (KiB) in LOG_PREFIX.rss; on failure shows the end of stderr and stops.
run() {
  local prefix="$1"; shift
  if ! /usr/bin/time -f "%M" -o "$prefix.rss" "$@" > "$prefix.out" 2> "$prefix.err"; then
    echo "run_model_bench: failed: $*" >&2
    tail -n 20 "$prefix.err" >&2
    exit 1
  fi
}

echo "Criteo-layout data $DATA: $TRAIN_ROWS training rows, $TEST_ROWS test rows; 1 epoch, batches of 256, $THREADS threads; logs in $WORK" >&2
rm -f "$WORK/rounds.md"
echo
echo "| model | Funnel AUC | PyTorch AUC | Funnel log loss | PyTorch log loss | Funnel train rows/s | PyTorch train rows/s | train ratio | Funnel predict rows/s | PyTorch predict rows/s | predict ratio | Funnel peak RSS MB | PyTorch peak RSS MB |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|---|"

for m in $MODELS; do
  case "$m" in
    lr)     funnel_args=(--model lr --epochs 1)
            torch_args=(--model lr --epochs 1) ;;
    fm)     funnel_args=(--model fm --factors 8 --optimizer adagrad --learning-rate 0.05 --epochs 1 --batch-size 256)
            torch_args=(--model fm --factors 8 --optimizer adagrad --lr 0.05 --epochs 1 --batch-size 256) ;;
    deepfm) funnel_args=(--model deepfm --factors 8 --hidden 256,128 --epochs 1 --batch-size 256)
            torch_args=(--model deepfm --factors 8 --hidden 256,128 --epochs 1 --batch-size 256) ;;
    fm-ftrl)
            funnel_args=(--model fm --factors 8 --optimizer adagrad --learning-rate 0.002 --linear-optimizer ftrl --epochs 1 --batch-size 256)
            torch_args=(--model fm --factors 8 --optimizer adagrad --lr 0.002 --linear-ftrl --epochs 1 --batch-size 256) ;;
    deepfm-ftrl)
            funnel_args=(--model deepfm --factors 8 --hidden 256,128 --learning-rate 0.0003 --linear-optimizer ftrl --epochs 1 --batch-size 256)
            torch_args=(--model deepfm --factors 8 --hidden 256,128 --lr 0.0003 --linear-ftrl --epochs 1 --batch-size 256) ;;
    dcnv2)  funnel_args=(--model dcnv2 --factors 8 --hidden 256,128 --cross-layers 2 --epochs 1 --batch-size 256)
            torch_args=(--model dcnv2 --factors 8 --hidden 256,128 --cross-layers 2 --epochs 1 --batch-size 256) ;;
    dcnv2-wide-ftrl)
            funnel_args=(--model dcnv2 --wide --factors 8 --hidden 256,128 --cross-layers 2 --learning-rate 0.0001 --linear-optimizer ftrl --epochs 1 --batch-size 256)
            torch_args=(--model dcnv2 --wide --factors 8 --hidden 256,128 --cross-layers 2 --lr 0.0001 --linear-ftrl --epochs 1 --batch-size 256) ;;
    *) die "unknown model '$m' in MODELS (lr, fm, deepfm, dcnv2, fm-ftrl, deepfm-ftrl, dcnv2-wide-ftrl)" ;;
  esac
  W="$WORK/$m"

  # funnel_train PREFIX MODEL_OUT: trains Funnel's model; sets train_s to its "trained in X s".
  funnel_train() {
    run "$1" "$FUNNEL" train --data "$DATA/train.txt" --data-format criteo "${funnel_args[@]}" \
      --threads "$THREADS" --vocabulary-min-count 1 --embedding-l2 0 --bias-init zero --out "$2"
    train_s=$(sed -n 's/.*trained in \([0-9.]*\) s.*/\1/p' "$1.err" | tail -n 1)
    [ -n "$train_s" ] || die "no 'trained in X s' line in $1.err"
  }
  echo "== $m: funnel train" >&2
  funnel_train "$W.train" "$W.model.json"
  train_times="$train_s"

  echo "== $m: funnel evaluate" >&2
  run "$W.evaluate" "$FUNNEL" evaluate --model "$W.model.json" --data "$DATA/test.txt" --format json

  echo "== $m: funnel predict" >&2
  t0=$(date +%s.%N)
  run "$W.predict" "$FUNNEL" predict --model "$W.model.json" --data "$DATA/test.txt" --out "$W.predictions.csv"
  t1=$(date +%s.%N)
  predict_line=$(grep -E 'predicted [0-9]+ rows in [0-9.]+ s' "$W.predict.err" | tail -n 1 || true)
  if [ -n "$predict_line" ]; then
    predict_rows=$(echo "$predict_line" | sed -E 's/.*predicted ([0-9]+) rows in ([0-9.]+) s.*/\1/')
    predict_s=$(echo "$predict_line" | sed -E 's/.*predicted ([0-9]+) rows in ([0-9.]+) s.*/\2/')
    predict_note=""
  else
    # No timing line: the whole command's wall time (reading the model and the file included).
    predict_rows="$TEST_ROWS"
    predict_s=$(python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$t1")
    predict_note="wall"
  fi

  echo "== $m: PyTorch peer" >&2
  run "$W.torch" "$PYTHON" "$PEER" --data "$DATA" "${torch_args[@]}" --threads "$THREADS" --min-count 1 --bias-init zero ${TORCH_EXTRA:-}
  peer_outputs="$W.torch.out"

  for ((round = 2; round <= REPEAT; round++)); do
    echo "== $m: round $round of $REPEAT: funnel train, then the PyTorch peer" >&2
    funnel_train "$W.train.$round" "$W.model.$round.json"
    train_times="$train_times,$train_s"
    run "$W.torch.$round" "$PYTHON" "$PEER" --data "$DATA" "${torch_args[@]}" --threads "$THREADS" --min-count 1 --bias-init zero ${TORCH_EXTRA:-}
    peer_outputs="$peer_outputs,$W.torch.$round.out"
  done

  python3 -c '
import json, statistics, sys
(model, eval_path, train_times, train_rows, predict_rows, predict_s, predict_note,
 rss_train, rss_predict, torch_paths, rounds_path) = sys.argv[1:12]
funnel = json.load(open(eval_path))
peers = [json.loads(open(p).read().strip().splitlines()[-1]) for p in torch_paths.split(",")]
peer = peers[0]
f_rates = [int(train_rows) / float(t) for t in train_times.split(",")]
t_rates = [p["train_rows_per_s"] for p in peers]

def num(x, digits):
    return "—" if x is None else f"{x:.{digits}f}"

def rate(rows, seconds):
    return rows / seconds if seconds > 0 else None

def big(x):
    return "—" if x is None else f"{x:,.0f}"

def ratio(a, b):
    return "—" if a is None or not b else f"{a / b:.2f}×"

f_train, t_train = statistics.median(f_rates), statistics.median(t_rates)
f_pred = rate(int(predict_rows), float(predict_s))
t_pred = peer["predict_rows_per_s"]
f_rss, t_rss = max(int(rss_train), int(rss_predict)) / 1024, peer["peak_rss_mb"]
cells = [model, num(funnel.get("auc"), 4), num(peer["test_auc"], 4),
         num(funnel.get("logloss"), 5), num(peer["test_logloss"], 5),
         big(f_train), big(t_train), ratio(f_train, t_train),
         big(f_pred) + (" (wall)" if predict_note else ""), big(t_pred), ratio(f_pred, t_pred),
         f"{f_rss:.0f}", f"{t_rss:.0f}"]
print("| " + " | ".join(cells) + " |")
if len(f_rates) > 1:
    pairs = [f / t for f, t in zip(f_rates, t_rates)]
    with open(rounds_path, "a") as fh:
        print(f"- {model}: {len(pairs)} alternating rounds. Funnel train rows/s " + ", ".join(f"{x:,.0f}" for x in f_rates)
              + "; PyTorch " + ", ".join(f"{x:,.0f}" for x in t_rates) + "; ratio per round " + ", ".join(f"{x:.2f}×" for x in pairs)
              + f"; median of the rounds\x27 ratios {statistics.median(pairs):.2f}×.", file=fh)
' "$m" "$W.evaluate.out" "$train_times" "$TRAIN_ROWS" "$predict_rows" "$predict_s" "$predict_note" \
    "$(tail -n 1 "$W.train.rss")" "$(tail -n 1 "$W.predict.rss")" "$peer_outputs" "$WORK/rounds.md"
done

if [ "$REPEAT" -gt 1 ] && [ -f "$WORK/rounds.md" ]; then
  echo
  cat "$WORK/rounds.md"
fi
echo
echo "Ratios are Funnel / PyTorch (above 1: Funnel faster). Funnel's peak RSS is the larger of its train and predict processes;"
echo "PyTorch's is its one process (interpreter and torch, both splits, training and prediction). Funnel lr is FTRL, the PyTorch lr peer Adagrad."
