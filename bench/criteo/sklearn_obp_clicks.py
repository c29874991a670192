#!/usr/bin/env python3
"""scikit-learn references for the click models on obp's generated data (make_obp_clicks.py).

Two logistic regressions, both fitted on DIR/train.csv and scored on DIR/test.csv:

- `main_effects`: one-hot of the item plus the context values x1..xD as they are (standardised
  with the training split's mean and deviation). The features Funnel's `lr` sees; it cannot
  express an item's own slope on a context value.
- `well_specified`: the same plus one-hot(item) ⊗ polynomial features of x up to --degree (1 for
  the bilinear preset, 3 for the cubic one): every item gets its own polynomial in x, which is the
  form of obp's true logit for that preset (its item vectors enter only through each item's
  coefficients). It knows the shape of the truth, which no click model is told, so it is an
  upper reference, with the Bayes-optimal scores (test_truth.txt) above it.

LogisticRegression(solver="lbfgs", C=--C, max_iter=1000) on sparse features. Prints JSON: test ROC
AUC and log loss of each, the Bayes-optimal ones, and the library versions.

    .venv-models/bin/python bench/criteo/sklearn_obp_clicks.py --data DIR --degree 1
"""
import argparse
import json
import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "2")

import numpy as np  # noqa: E402
import scipy  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import log_loss, roc_auc_score  # noqa: E402
from sklearn.preprocessing import PolynomialFeatures  # noqa: E402


def read(path):
    """Clicks, context values and item ids of a click,x1..xD,item file (make_obp_clicks.py)."""
    with open(path) as f:
        header = f.readline().rstrip("\n").split(",")
        cells = np.array([line.rstrip("\n").split(",") for line in f])
    xs = [i for i, h in enumerate(header) if h.startswith("x")]
    return cells[:, header.index("click")].astype(int), cells[:, xs].astype(float), cells[:, header.index("item")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--degree", type=int, default=1)
    ap.add_argument("--C", type=float, default=1.0)
    a = ap.parse_args()

    y_tr, x_tr, it_tr = read(os.path.join(a.data, "train.csv"))
    y_te, x_te, it_te = read(os.path.join(a.data, "test.csv"))
    items = {v: i for i, v in enumerate(sorted(set(it_tr)))}
    n_items = len(items)

    def one_hot(it):
        # An item never seen in training gets no item column (all zeros).
        idx = np.array([items.get(v, -1) for v in it])
        rows = np.nonzero(idx >= 0)[0]
        return sp.csr_matrix((np.ones(len(rows)), (rows, idx[rows])), shape=(len(it), n_items)), idx

    mu, sd = x_tr.mean(axis=0), x_tr.std(axis=0)
    poly = PolynomialFeatures(degree=a.degree, include_bias=False).fit(x_tr)

    def features(x, it, interactions):
        oh, idx = one_hot(it)
        z = (x - mu) / sd
        parts = [oh, sp.csr_matrix(z)]
        if interactions:
            px = poly.transform(x)
            k = px.shape[1]
            rows = np.repeat(np.arange(len(it)), k)
            cols = (np.repeat(idx, k) * k + np.tile(np.arange(k), len(it)))
            keep = np.repeat(idx >= 0, k)
            parts.append(sp.csr_matrix((px.ravel()[keep], (rows[keep], cols[keep])), shape=(len(it), n_items * k)))
        return sp.hstack(parts).tocsr()

    out = {"train_rows": int(len(y_tr)), "test_rows": int(len(y_te)), "test_ctr": float(y_te.mean())}
    for name, inter in (("main_effects", False), ("well_specified", True)):
        model = LogisticRegression(solver="lbfgs", C=a.C, max_iter=1000)
        model.fit(features(x_tr, it_tr, inter), y_tr)
        p = model.predict_proba(features(x_te, it_te, inter))[:, 1]
        out[name] = {"auc": float(roc_auc_score(y_te, p)), "logloss": float(log_loss(y_te, p)),
                     "iterations": int(model.n_iter_[0])}
    q = np.loadtxt(os.path.join(a.data, "test_truth.txt"))
    out["bayes_optimal"] = {"auc": float(roc_auc_score(y_te, q)), "logloss": float(log_loss(y_te, np.clip(q, 1e-15, 1 - 1e-15)))}
    out["versions"] = {"python": sys.version.split()[0], "numpy": np.__version__, "scipy": scipy.__version__,
                       "scikit-learn": sklearn.__version__}
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
