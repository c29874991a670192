#!/usr/bin/env bash
# Funnel's and PyTorch's copies of one click model trained from the same initial weights, over
# several seeds, on one Criteo-layout split (bench/criteo/make_criteo_like.py):
#
#   bash bench/criteo/run_shared_start.sh FUNNEL_BINARY DATA_DIR MODEL [extra funnel train options]
#
# For each seed in SEEDS (default "1 2 3 4") it trains Funnel (`funnel train --initial-out`, one
# epoch, batches of 256, 8 factors, vocabulary with min count 1) and evaluates it on
# DATA_DIR/test.txt, then trains the PyTorch peer twice: from Funnel's initial weights
# (`torch_models.py --init-from`) and from its own random draw with the same seed. It prints one
# markdown row per seed: the test AUC and log loss of the three, and Funnel minus the shared-start
# peer. The difference between Funnel and the shared-start peer is what the implementations
# contribute; the spread of the own-draw peer over the seeds is what the initial draw contributes.
#
# Environment: SEEDS, PYTHON (default .venv-torch/bin/python of the repository), WORK (model files
# and logs; default a new temporary directory, kept), PEER_OPTIONS (the peer's options that match
# the extra funnel train options, e.g. "--optimizer adagrad --lr 0.05").
set -euo pipefail

if [ $# -lt 3 ]; then
  echo "usage: bash bench/criteo/run_shared_start.sh FUNNEL_BINARY DATA_DIR MODEL [funnel train options]" >&2
  exit 2
fi
FUNNEL="$1"
DATA="${2%/}"
MODEL="$3"
shift 3
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PYTHON="${PYTHON:-$ROOT/.venv-torch/bin/python}"
PEER="$ROOT/bench/criteo/torch_models.py"
SEEDS="${SEEDS:-1 2 3 4}"
WORK="${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/funnel-shared-start.XXXXXX")}"
mkdir -p "$WORK"

die() { echo "run_shared_start: $*" >&2; exit 1; }
[ -x "$FUNNEL" ] || die "$FUNNEL is not an executable (pass the funnel binary, e.g. .build/release/funnel)"
[ -f "$DATA/train.txt" ] && [ -f "$DATA/test.txt" ] || die "$DATA must hold train.txt and test.txt"
[ -x "$PYTHON" ] || die "$PYTHON not found (set PYTHON to a Python with torch and numpy)"
case "$MODEL" in fm|deepfm|dcnv2) ;; *) die "MODEL must be fm, deepfm or dcnv2";; esac

field() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d[sys.argv[2]])' "$1" "$2"; }
peer_field() { python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); print(d[sys.argv[2]])' "$1" "$2"; }

echo "| seed | Funnel AUC / log loss | PyTorch, Funnel's start | PyTorch, own draw | Funnel − shared-start AUC | log loss ratio |"
echo "|---|---|---|---|---|---|"
for s in $SEEDS; do
  echo "run_shared_start: seed $s: funnel" >&2
  "$FUNNEL" train --data-format criteo --data "$DATA/train.txt" --model "$MODEL" --factors 8 --vocabulary-min-count 1 --embedding-l2 0 --bias-init zero \
    --epochs 1 --seed "$s" --initial-out "$WORK/initial-$s.json" --out "$WORK/funnel-$s.json" "$@" 2> "$WORK/funnel-$s.err" > /dev/null \
    || { tail -n 20 "$WORK/funnel-$s.err" >&2; die "funnel train failed"; }
  "$FUNNEL" evaluate --model "$WORK/funnel-$s.json" --data "$DATA/test.txt" --format json > "$WORK/funnel-$s.eval"
  echo "run_shared_start: seed $s: peer from Funnel's start" >&2
  # shellcheck disable=SC2086
  "$PYTHON" "$PEER" --data "$DATA" --model "$MODEL" --factors 8 --min-count 1 --bias-init zero --epochs 1 --seed "$s" \
    --init-from "$WORK/initial-$s.json" $PEER_OPTIONS > "$WORK/shared-$s.json" 2> "$WORK/shared-$s.err" \
    || { tail -n 20 "$WORK/shared-$s.err" >&2; die "peer failed"; }
  echo "run_shared_start: seed $s: peer from its own draw" >&2
  # shellcheck disable=SC2086
  "$PYTHON" "$PEER" --data "$DATA" --model "$MODEL" --factors 8 --min-count 1 --bias-init zero --epochs 1 --seed "$s" \
    $PEER_OPTIONS > "$WORK/own-$s.json" 2> "$WORK/own-$s.err" \
    || { tail -n 20 "$WORK/own-$s.err" >&2; die "peer failed"; }
  python3 - "$s" "$(field "$WORK/funnel-$s.eval" auc)" "$(field "$WORK/funnel-$s.eval" logloss)" \
    "$(peer_field "$WORK/shared-$s.json" test_auc)" "$(peer_field "$WORK/shared-$s.json" test_logloss)" \
    "$(peer_field "$WORK/own-$s.json" test_auc)" "$(peer_field "$WORK/own-$s.json" test_logloss)" <<'EOF'
import sys
s, fa, fl, sa, sl, oa, ol = sys.argv[1], *map(float, sys.argv[2:])
print(f"| {s} | {fa:.4f} / {fl:.5f} | {sa:.4f} / {sl:.5f} | {oa:.4f} / {ol:.5f} | {fa - sa:+.4f} | {fl / sl:.4f} |")
EOF
done
echo "run_shared_start: logs and model files in $WORK" >&2
