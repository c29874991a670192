#!/usr/bin/env bash
# Funnel's click models against their PyTorch twins on the long-tailed generator
# (bench/criteo/make_criteo_longtail.py): each model with `funnel train`'s plain defaults, with
# `funnel tune` over a grid, and the PyTorch twin (bench/criteo/torch_models.py, SparseAdam for the
# tables, the same L2 on the same rows at the same steps, the same vocabulary and early stopping)
# tuned over the same grid by bench/criteo/torch_tune.py. Prints one table row per model: test AUC
# and log loss of each, and the validation choice of each search.
#
#   bash bench/criteo/run_longtail_compare.sh FUNNEL_BINARY DATA_DIR
#   MODELS="fm deepfm" LRS=1e-3 L2S=0,1e-4,1e-3 bash bench/criteo/run_longtail_compare.sh .build/release/funnel bench/data/longtail1m
#
# DATA_DIR holds train.txt, valid.txt, test.txt and truth.json (the generator's output). MODELS
# (default "fm deepfm dcnv2"; also lr), LRS (learning rates; default: funnel tune's grid for the
# model's optimizer), L2S (default 0,1e-4,1e-3; lr: funnel tune's FTRL grid, and TORCH_LR_L2S for
# the twin), THREADS (default 2). The PyTorch side runs in .venv-torch.
set -euo pipefail
FUNNEL=${1:?usage: run_longtail_compare.sh FUNNEL_BINARY DATA_DIR}
DATA=${2:?usage: run_longtail_compare.sh FUNNEL_BINARY DATA_DIR}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PYTHON=${PYTHON:-$ROOT/.venv-torch/bin/python}
MODELS=${MODELS:-fm deepfm dcnv2}
L2S=${L2S:-0,1e-4,1e-3}
THREADS=${THREADS:-2}
WORK=$(mktemp -d)
echo "long-tailed data $DATA ($(python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print('Bayes-optimal test AUC', d['bayes_optimal_test']['auc'], 'log loss', d['bayes_optimal_test']['log_loss'])" "$DATA/truth.json")); logs in $WORK" >&2

test_metrics() {  # MODEL_FILE -> "AUC LOGLOSS"
  "$FUNNEL" evaluate --model "$1" --data "$DATA/test.txt" --format json 2>/dev/null |
    python3 -c "import json,sys; d=json.load(sys.stdin); print('%.4f %.5f' % (d['auc'], d['logloss']))"
}

echo "| model | Funnel defaults: test AUC / log loss | funnel tune: choice | test AUC / log loss | PyTorch tuned: choice | test AUC / log loss |"
echo "|---|---|---|---|---|---|"
for m in $MODELS; do
  # lr: Funnel's FTRL is tuned over funnel tune's own grid (α × FTRL L2); its twin, the same
  # model trained by Adagrad, over learning rate × L2 on the weights (TORCH_LR_L2S).
  fgrid=(--l2s "$L2S"); pl2s=$L2S
  case $m in
    lr) lrs=${LRS:-0.01,0.03,0.1}; popt=(--optimizer adagrad); fgrid=(); pl2s=${TORCH_LR_L2S:-0,1e-6,1e-5,1e-4} ;;
    fm) lrs=${LRS:-0.01,0.03,0.1}; popt=(--optimizer adagrad) ;;
    *) lrs=${LRS:-3e-4,1e-3,3e-3}; popt=(--sparse) ;;
  esac
  [ "$m" = lr ] || fgrid+=(--learning-rates "$lrs")
  "$FUNNEL" train --data "$DATA/train.txt" --valid "$DATA/valid.txt" --data-format criteo --model $m --threads "$THREADS" \
    --out "$WORK/$m.default.json" 2> "$WORK/$m.default.err" > /dev/null
  read -r dauc dll <<< "$(test_metrics "$WORK/$m.default.json")"
  "$FUNNEL" tune --data "$DATA/train.txt" --valid "$DATA/valid.txt" --data-format criteo --model $m --threads "$THREADS" \
    "${fgrid[@]}" --out "$WORK/$m.tuned.json" > "$WORK/$m.tune.txt" 2> "$WORK/$m.tune.err"
  read -r tauc tll <<< "$(test_metrics "$WORK/$m.tuned.json")"
  fchoice=$(sed -n 's/^best: trial [0-9]* (\(.*\)), validation.*/\1/p' "$WORK/$m.tune.txt")
  "$PYTHON" "$ROOT/bench/criteo/torch_tune.py" --model $m --data "$DATA" --lrs "$lrs" --embedding-l2s "$pl2s" --factors-list 8 \
    --max-epochs 20 --patience 2 --batch-size 256 --threads "$THREADS" --min-count 2 "${popt[@]}" > "$WORK/$m.torch.txt" 2>&1
  read -r pchoice pauc pll <<< "$(tail -n 1 "$WORK/$m.torch.txt" | python3 -c "
import json, sys
d = json.loads(sys.stdin.read())
c = d.get('config', d.get('best', {}))
print(str(c).replace(' ', ''), '%.4f' % d['test_auc'], '%.5f' % d['test_logloss'])")"
  echo "| $m | $dauc / $dll | $fchoice | $tauc / $tll | $pchoice | $pauc / $pll |"
done
