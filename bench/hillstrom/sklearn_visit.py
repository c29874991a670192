#!/usr/bin/env python3
"""scikit-learn logistic-regression baseline for `visit` on the Hillstrom e-mail data.

Reference numbers for Funnel's `lr` model on the same split and the same features:

- Split: validation = rows whose row_id % 5 == 0 (12,800 rows), training = the other 51,200.
- Features: one-hot of every distinct training value of history_segment, mens, womens, zip_code,
  newbie, channel and segment (mens, womens and newbie are 0/1 but are categories here, two
  columns each); recency and history as one column each, sign(x)·log(1 + |x|) (Funnel's
  `--numeric-transform log`). No scaling. Label: `visit`.
- Model: LogisticRegression(solver="lbfgs", max_iter=2000), L2 penalty, intercept not penalized,
  at C = 0.1, 1 and 10 (C is the inverse of the penalty strength on the summed training loss).

Prints JSON: validation ROC AUC and log loss per C, the numbers of training and validation rows, the
validation visit rate and the library versions.

    .venv-models/bin/python bench/hillstrom/sklearn_visit.py --split bench/data/hillstrom_split

With `--split DIR` the script also writes DIR/train.csv and DIR/valid.csv (the input's header and
all of its columns, rows in input order) for Funnel to train and evaluate on. The rows are written
with the `csv` module in the input's quoting and line ending, so the files are byte-identical to
these two awk commands (row_id is the first, never-quoted column; the data has no line breaks
inside cells; checked on the 64,000-row file with `cmp`):

    awk -F, 'NR==1 || $1 % 5 != 0' hillstrom.csv > train.csv
    awk -F, 'NR==1 || $1 % 5 == 0' hillstrom.csv > valid.csv

The JSON's `csv_round_trip_identical` says whether writing every input row back with the `csv`
module reproduces the input byte for byte (if it does, so do the split files).
"""
import argparse
import csv
import io
import json
import math
import os
import platform
import sys

# Small problem: one thread is enough and keeps the run from competing for CPU.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import sklearn  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import log_loss, roc_auc_score  # noqa: E402

CATEGORICAL = ["history_segment", "mens", "womens", "zip_code", "newbie", "channel", "segment"]
NUMERIC = ["recency", "history"]
LABEL = "visit"
CS = [0.1, 1.0, 10.0]
MAX_ITER = 2000


def read(path):
    """Header, rows (lists of cell strings) and the input's line ending."""
    with open(path, "rb") as f:
        first = f.readline()
    newline = "\r\n" if first.endswith(b"\r\n") else "\n"
    with open(path, newline="", encoding="utf-8") as f:
        text = f.read()
    rows = list(csv.reader(io.StringIO(text, newline="")))
    return rows[0], rows[1:], newline, text


def is_valid(row):
    return int(row[0]) % 5 == 0


def write(path, header, rows, newline):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, lineterminator=newline)
        w.writerow(header)
        w.writerows(rows)


def signed_log(x):
    return math.copysign(math.log1p(abs(x)), x)


def features(header, rows, vocab):
    """Dense design matrix: one-hot blocks for CATEGORICAL (vocab order), then NUMERIC."""
    col = {name: i for i, name in enumerate(header)}
    width = sum(len(v) for v in vocab) + len(NUMERIC)
    X = np.zeros((len(rows), width))
    unseen = 0
    for r, row in enumerate(rows):
        offset = 0
        for name, values in zip(CATEGORICAL, vocab):
            j = values.get(row[col[name]])
            if j is None:
                unseen += 1
            else:
                X[r, offset + j] = 1.0
            offset += len(values)
        for k, name in enumerate(NUMERIC):
            X[r, offset + k] = signed_log(float(row[col[name]]))
    y = np.array([int(row[col[LABEL]]) for row in rows])
    return X, y, unseen


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    shared = os.path.join(root, os.environ.get("FUNNEL_SHARED_DATA") or "../shared/data")
    ap.add_argument("--data", default=os.path.normpath(os.path.join(shared, "hillstrom", "hillstrom.csv")),
                    help="Hillstrom CSV (default: hillstrom/hillstrom.csv in $FUNNEL_SHARED_DATA, else in "
                         "../shared/data beside the repository; a relative FUNNEL_SHARED_DATA is taken from "
                         "the repository root)")
    ap.add_argument("--split", metavar="DIR", help="also write DIR/train.csv and DIR/valid.csv")
    args = ap.parse_args()

    header, rows, newline, text = read(args.data)
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator=newline)
    w.writerow(header)
    w.writerows(rows)
    round_trip = buf.getvalue() == text

    train = [row for row in rows if not is_valid(row)]
    valid = [row for row in rows if is_valid(row)]
    if args.split:
        os.makedirs(args.split, exist_ok=True)
        write(os.path.join(args.split, "train.csv"), header, train, newline)
        write(os.path.join(args.split, "valid.csv"), header, valid, newline)

    col = {name: i for i, name in enumerate(header)}
    vocab = []
    for name in CATEGORICAL:
        values = sorted({row[col[name]] for row in train})
        vocab.append({v: j for j, v in enumerate(values)})
    X_train, y_train, _ = features(header, train, vocab)
    X_valid, y_valid, unseen = features(header, valid, vocab)

    base_rate = float(y_train.mean())
    results = []
    for c in CS:
        model = LogisticRegression(C=c, solver="lbfgs", max_iter=MAX_ITER)
        model.fit(X_train, y_train)
        p = model.predict_proba(X_valid)[:, 1]
        results.append({
            "C": c,
            "valid_auc": float(roc_auc_score(y_valid, p)),
            "valid_log_loss": float(log_loss(y_valid, p)),
            "iterations": int(model.n_iter_[0]),
        })

    out = {
        "data": args.data,
        "split_dir": args.split,
        "csv_round_trip_identical": round_trip,
        "train_rows": len(train),
        "valid_rows": len(valid),
        "train_visit_rate": base_rate,
        "valid_visit_rate": float(y_valid.mean()),
        "valid_log_loss_of_train_rate": float(log_loss(y_valid, np.full(len(y_valid), base_rate))),
        "feature_columns": X_train.shape[1],
        "categorical_values": {name: len(v) for name, v in zip(CATEGORICAL, vocab)},
        "valid_cells_unseen_in_train": unseen,
        "model": {"solver": "lbfgs", "penalty": "l2", "max_iter": MAX_ITER},
        "results": results,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "scikit-learn": sklearn.__version__,
        },
    }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
