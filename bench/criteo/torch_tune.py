#!/usr/bin/env python3
"""Grid search over the PyTorch peers' training settings, chosen on the validation log loss.

Every configuration of the grid -- learning rates (--lrs) × embedding L2 (--embedding-l2s) ×
embedding decay (--embedding-decays, default 0 alone) × optionally embedding sizes
(--factors-list), dense L2 (--dense-l2s) and dropout rates (--dropouts), all comma-separated -- is
one training of torch_models.py's peer, run in this process: the vocabulary and the encoded train,
validation and test splits are read once and shared by all trainings (torch_models.load_data), and
each training (torch_models.fit) starts from --seed as a separate `torch_models.py` run with the
same options would, with early stopping on the validation split (--max-epochs, --patience; the
best epoch's weights are kept). The meaning of each setting is torch_models.py's (see its
docstring: --embedding-l2, --embedding-decay, --dense-l2, --dropout).

--budget N caps the number of trainings: when the grid has more than N configurations, a random
subset of N of them (seeded by --grid-seed, kept in grid order) is trained. The configuration with
the lowest validation log loss (the first in grid order among equals) is chosen; only then is the
test split scored, for that model alone (torch_models.evaluate, with the peer's self-check).

Output: one line per training as it finishes -- the configuration, epochs run, best epoch,
validation log loss and AUC (of the best epoch) and training seconds (training passes only) --
then the table again sorted by validation log loss, then one JSON line: the chosen configuration,
its torch_models.py command-line options, epochs, validation and TEST AUC and log loss, and the
count of configurations in the grid and trained. --out FILE also writes every training's record
as JSON lines. Exit status 1 when the chosen model fails the peer's self-check.

Options this script does not define are passed to every training unchanged (--hidden,
--cross-layers, --sparse, --optimizer, --wide, --linear-ftrl, --bias-init, --valid-file,
--min-count, --seed, --csv-*, ...); the options the grid sets (--lr, --embedding-l2,
--embedding-decay, and --factors with --factors-list) may not be passed that way.

    .venv-torch/bin/python bench/criteo/torch_tune.py --model deepfm --data bench/data/criteo --sparse \\
        --lrs 3e-4,1e-3,3e-3 --embedding-l2s 0,1e-6,1e-5,1e-4 --factors-list 8,16 --dense-l2s 0,1e-5 \\
        --dropouts 0,0.1 --max-epochs 20 --patience 2 --batch-size 4096 --threads 2 --budget 24
    .venv-torch/bin/python bench/criteo/torch_tune.py --model fm --data bench/data/criteo \\
        --lrs 0.01,0.05 --embedding-l2s 0,1e-5 --max-epochs 10
"""
import argparse
import itertools
import json
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402  (the peers, their options and training)

# The grid's dimensions: (tuner option's destination, torch_models.py option, column title).
DIMENSIONS = [("lrs", "--lr", "lr"), ("embedding_l2s", "--embedding-l2", "emb_l2"),
              ("embedding_decays", "--embedding-decay", "emb_decay"), ("factors_list", "--factors", "factors"),
              ("dense_l2s", "--dense-l2", "dense_l2"), ("dropouts", "--dropout", "dropout")]
# torch_models.py options the tuner sets itself, so not accepted among the passed-through ones.
OWN = {"--lr", "--embedding-l2", "--embedding-decay", "--factors", "--dense-l2", "--dropout", "--model", "--data", "--epochs",
       "--max-epochs", "--patience", "--batch-size", "--threads", "--predictions-out"}


def values(text, kind, name):
    try:
        out = [kind(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise SystemExit(f"{name}: expected comma-separated numbers, got {text!r}")
    if not out:
        raise SystemExit(f"{name}: no values")
    return out


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0], allow_abbrev=False,
                                 epilog="Other options are passed to torch_models.py's training unchanged.")
    ap.add_argument("--model", required=True, choices=["lr", "fm", "deepfm", "dcnv2"])
    ap.add_argument("--data", default="bench/data/criteo", help="directory with train.txt, valid.txt and test.txt")
    ap.add_argument("--lrs", default="3e-4,1e-3,3e-3", help="learning rates")
    ap.add_argument("--embedding-l2s", default="0,1e-6,1e-5,1e-4", help="embedding L2 values (torch_models.py --embedding-l2)")
    ap.add_argument("--embedding-decays", default="0", help="embedding decay values δ (torch_models.py --embedding-decay)")
    ap.add_argument("--factors-list", help="embedding sizes (default: --factors, passed through, or torch_models.py's default)")
    ap.add_argument("--dense-l2s", "--dense-l2", dest="dense_l2s", help="dense L2 values, deepfm and dcnv2 (default: 0)")
    ap.add_argument("--dropouts", "--dropout", dest="dropouts", help="MLP dropout rates, deepfm and dcnv2 (default: 0)")
    ap.add_argument("--max-epochs", type=int, default=20)
    ap.add_argument("--patience", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--budget", type=int, help="at most this many trainings: a seeded random subset of a larger grid (default: the whole grid)")
    ap.add_argument("--grid-seed", type=int, default=1, help="seed of the random subset under --budget")
    ap.add_argument("--out", help="write every training's record here as JSON lines")
    return ap


def grid(args):
    """The grid's configurations in grid order: lists of (torch_models.py option, value, title)."""
    dims = []
    for dest, option, title in DIMENSIONS:
        text = getattr(args, dest)
        if text is None:
            continue
        kind = int if dest == "factors_list" else float
        dims.append([(option, v, title) for v in values(text, kind, "--" + dest.replace("_", "-"))])
    return [list(c) for c in itertools.product(*dims)]


def describe(config):
    return " ".join(f"{title}={value:g}" for _, value, title in config)


def main(argv=None):
    ap = build_parser()
    args, passed = ap.parse_known_args(argv)
    for token in passed:
        if token.split("=", 1)[0] in OWN:
            ap.error(f"{token.split('=', 1)[0]} is set by the tuner (see its own options)")
    if args.budget is not None and args.budget < 1:
        ap.error("--budget must be >= 1")
    configs = grid(args)
    chosen = list(range(len(configs)))
    if args.budget is not None and args.budget < len(configs):
        chosen = sorted(random.Random(args.grid_seed).sample(chosen, args.budget))
    common = ["--model", args.model, "--data", args.data, "--max-epochs", str(args.max_epochs), "--patience", str(args.patience),
              "--batch-size", str(args.batch_size), "--threads", str(args.threads), *passed]

    def argv_of(config):
        return common + [token for option, value, _ in config for token in (option, repr(value))]

    first = torch_models.parse_args(argv_of(configs[chosen[0]]))
    print(f"grid: {len(configs)} configurations, training {len(chosen)}; data {args.data} "
          f"(validation {first.valid_file}); options {' '.join(passed) or '(none passed)'}", flush=True)
    t0 = time.perf_counter()
    data = torch_models.load_data(first)
    print(f"read and encoded the splits in {time.perf_counter() - t0:.1f} s: {data['vocab'].size} features, "
          f"{len(data['train'][0])} train, {len(data['valid'][0])} valid, {len(data['test'][0])} test rows", flush=True)

    width = max(len(describe(configs[k])) for k in chosen)
    header = f"{'run':>4}  {'config':<{width}}  {'epochs':>6}  {'best':>4}  {'valid_logloss':>13}  {'valid_auc':>9}  {'train_s':>8}"

    def line(n, config, rec):
        return (f"{n:>4}  {describe(config):<{width}}  {rec['epochs_run']:>6}  {rec['best_epoch']:>4}  "
                f"{rec['valid_logloss']:>13.6f}  {rec['valid_auc']:>9.5f}  {rec['train_s']:>8.1f}")

    print(header, flush=True)
    out = open(args.out, "w") if args.out else None
    runs, best = [], None
    for n, k in enumerate(chosen, 1):
        config = configs[k]
        targs = torch_models.parse_args(argv_of(config))
        model, rec = torch_models.fit(targs, data)
        runs.append((n, config, rec))
        print(line(n, config, rec), flush=True)
        if out:
            out.write(json.dumps({"run": n, "config": {t: v for _, v, t in config}, "argv": argv_of(config), **rec}) + "\n")
            out.flush()
        if best is None or rec["valid_logloss"] < best[2]["valid_logloss"]:
            best = (n, config, rec, model, targs)
        else:
            del model
    if out:
        out.close()

    print("\nby validation log loss:")
    print(header)
    for n, config, rec in sorted(runs, key=lambda r: (r[2]["valid_logloss"], r[0])):
        print(line(n, config, rec) + ("  <- chosen" if n == best[0] else ""))
    n, config, rec, model, targs = best
    result = torch_models.evaluate(targs, data, model, rec)
    print(json.dumps({
        "model": args.model, "chosen_run": n, "config": {title: value for _, value, title in config},
        "argv": argv_of(config), "epochs_run": rec["epochs_run"], "best_epoch": rec["best_epoch"],
        "valid_logloss": rec["valid_logloss"], "valid_auc": rec["valid_auc"],
        "test_auc": result["test_auc"], "test_logloss": result["test_logloss"],
        "grid_size": len(configs), "trained": len(chosen), "budget": args.budget, "grid_seed": args.grid_seed,
        "max_epochs": args.max_epochs, "patience": args.patience, "batch_size": args.batch_size, "threads": args.threads,
        "total_train_s": sum(r[2]["train_s"] for r in runs), "self_check_max_abs_diff": result["self_check_max_abs_diff"]}))
    if not result["self_check_max_abs_diff"] <= 1e-4:
        print(f"self-check failed: batched logits differ from the reference formulas by {result['self_check_max_abs_diff']:g}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
