#!/usr/bin/env bash
# Funnel's click models on data from a generator the team did not write: Open Bandit Pipeline's
# SyntheticBanditDataset (bench/criteo/make_obp_clicks.py), beside scikit-learn logistic
# regressions and the Bayes-optimal scores of obp's own click probabilities:
#
#   bash bench/criteo/run_obp_check.sh FUNNEL_BINARY [PRESET...]      (presets: bilinear cubic)
#
# For each preset it writes DATA_ROOT/PRESET (default DATA_ROOT bench/data/obp-clicks; kept and
# reused), trains lr, fm, deepfm and dcnv2 on train.csv with valid.csv for early stopping, scores
# test.csv with `funnel evaluate`, runs bench/criteo/sklearn_obp_clicks.py, and prints one markdown
# table per preset. The settings are one set for both presets (how they were chosen: docs/models.md,
# "Other generators"):
#   all:    --numeric-transform standardize (obp's context values are standard normal), --epochs 10
#           with the default patience 2 (the best validation epoch is kept)
#   lr:     --alpha 0.2 (FTRL's default 0.05 had not converged after 10 epochs)
#   deepfm, dcnv2: --vocabulary-min-count 1
# Needs .venv-obp (bench/ope/run_ope_bench.sh or tools/fixtures/requirements-obp.txt creates it)
# and .venv-models (scripts/test creates it).
#
# PEERS=torch adds the PyTorch peers of fm, deepfm and dcnv2 (bench/criteo/torch_models.py in its
# CSV mode, .venv-torch): the same model, features (--numeric-transform standardize, vocabulary with
# min count 1, 8 factors, hidden 256,128, 2 cross layers), optimiser (Adagrad 0.05 for fm; Adam
# 0.001 with SparseAdam for the embeddings, --sparse, for the networks), batches and row order,
# trained for as many epochs as Funnel's early stopping kept, each from its own random draw.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash bench/criteo/run_obp_check.sh FUNNEL_BINARY [bilinear] [cubic]" >&2
  exit 2
fi
FUNNEL="$1"; shift
PRESETS=("$@"); [ ${#PRESETS[@]} -gt 0 ] || PRESETS=(bilinear cubic)
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DATA_ROOT="${DATA_ROOT:-$ROOT/bench/data/obp-clicks}"
OBP_PY="$ROOT/.venv-obp/bin/python"
SK_PY="$ROOT/.venv-models/bin/python"
die() { echo "run_obp_check: $*" >&2; exit 1; }
[ -x "$FUNNEL" ] || die "$FUNNEL is not an executable (pass the funnel binary, e.g. .build/release/funnel)"
[ -x "$SK_PY" ] || die "$SK_PY not found (scripts/test creates .venv-models)"
[ "${PEERS:-}" != torch ] || [ -x "$ROOT/.venv-torch/bin/python" ] || die "PEERS=torch needs $ROOT/.venv-torch (scripts/test creates it)"
step() { echo "== $(date -u +%H:%M:%S) $*" >&2; }
# Paths given relative to the caller's directory, then work from the repository's root.
FUNNEL="$(cd "$(dirname "$FUNNEL")" && pwd)/$(basename "$FUNNEL")"
mkdir -p "$DATA_ROOT"
DATA_ROOT="$(cd "$DATA_ROOT" && pwd)"
cd "$ROOT"

for preset in "${PRESETS[@]}"; do
  dir="$DATA_ROOT/$preset"
  if [ ! -s "$dir/test_truth.txt" ]; then
    "$OBP_PY" -c 'import obp' 2>/dev/null || die "$OBP_PY cannot import obp (create .venv-obp from tools/fixtures/requirements-obp.txt)"
    step "$preset: generating $dir"
    "$OBP_PY" bench/criteo/make_obp_clicks.py --preset "$preset" --out "$dir" > "$dir.generator.txt" 2> "$dir.generator.err" ||
      { tail -5 "$dir.generator.err" >&2; die "make_obp_clicks.py --preset $preset failed"; }
  fi
  header=$(head -1 "$dir/train.csv")
  numeric=$(echo "$header" | tr ',' '\n' | grep '^x' | paste -sd, -)
  degree=1; [ "$preset" = cubic ] && degree=3
  echo
  echo "### $preset: $(grep -o 'obp .*' "$dir.generator.txt" 2>/dev/null || echo "data in $dir")"
  echo
  if [ "${PEERS:-}" = torch ]; then
    echo "| model | test AUC | test log loss | ECE | calibration ratio | epochs kept / run | PyTorch AUC | PyTorch log loss |"
    echo "|---|---|---|---|---|---|---|---|"
  else
    echo "| model | test AUC | test log loss | ECE | calibration ratio | epochs kept / run |"
    echo "|---|---|---|---|---|---|"
  fi
  for m in lr fm deepfm dcnv2; do
    case $m in
      lr) extra=(--alpha 0.2 --vocabulary-min-count 0) ;;
      fm) extra=(--vocabulary-min-count 0 --embedding-l2 0 --bias-init zero) ;;
      *) extra=(--vocabulary-min-count 1 --embedding-l2 0 --bias-init zero) ;;
    esac
    step "$preset: funnel $m"
    "$FUNNEL" train --data "$dir/train.csv" --valid "$dir/valid.csv" --label click --numeric "$numeric" --categorical item \
      --numeric-transform standardize --model $m --epochs 10 ${extra[@]+"${extra[@]}"} --out "$dir/$m.json" \
      > "$dir/$m.out" 2> "$dir/$m.err" || { tail -5 "$dir/$m.err" >&2; die "funnel train $m failed"; }
    "$FUNNEL" evaluate --model "$dir/$m.json" --data "$dir/test.csv" --format json > "$dir/$m.eval.json"
    kept=$(python3 - "$dir/$m.err" <<'PY'
import re, sys
losses = [float(x) for x in re.findall(r"validation log loss ([0-9.]+)", open(sys.argv[1]).read())]
print(f"{losses.index(min(losses)) + 1 if losses else 0} {len(losses)}")
PY
)
    peer=""
    if [ "${PEERS:-}" = torch ] && [ $m != lr ]; then
      step "$preset: PyTorch $m"
      popt=(--min-count 1 --bias-init zero); [ $m = fm ] || popt+=(--sparse)
      "$ROOT/.venv-torch/bin/python" bench/criteo/torch_models.py --data "$dir" --model $m --factors 8 --epochs "${kept% *}" \
        --csv-numeric "$numeric" --csv-categorical item --numeric-transform standardize "${popt[@]}" > "$dir/$m.peer.json"
      peer="$dir/$m.peer.json"
    fi
    python3 - "$dir/$m.eval.json" "$kept" "${PEERS:-}" "$peer" <<'PY'
import json, sys
e, (kept, ran), peers, peer = json.load(open(sys.argv[1])), sys.argv[2].split(), sys.argv[3], sys.argv[4]
row = f"| Funnel {sys.argv[1].rsplit('/', 1)[1].split('.')[0]} | {e['auc']:.4f} | {e['logloss']:.5f} | {e['ece']:.4f} | {e['calibration_ratio']:.3f} | {kept} / {ran} |"
if peers == "torch":
    t = json.load(open(peer)) if peer else None
    row += f" {t['test_auc']:.4f} | {t['test_logloss']:.5f} |" if t else " | |"
print(row)
PY
  done
  step "$preset: scikit-learn"
  "$SK_PY" bench/criteo/sklearn_obp_clicks.py --data "$dir" --degree $degree > "$dir/sklearn.json"
  python3 - "$dir/sklearn.json" "${PEERS:-}" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
for key, name in (("main_effects", "scikit-learn LR, item + x"), ("well_specified", "scikit-learn LR, item ⊗ truth's polynomial of x"),
                  ("bayes_optimal", "Bayes-optimal (obp's q)")):
    print(f"| {name} | {s[key]['auc']:.4f} | {s[key]['logloss']:.5f} | | | |" + (" | |" if sys.argv[2] == "torch" else ""))
PY
done
