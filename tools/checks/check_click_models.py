#!/usr/bin/env python3
"""Click models on generated Criteo-layout data whose click probabilities are known.

    python tools/checks/check_click_models.py CRIT

CRIT is the split of bench/criteo/make_criteo_like.py --rows 120000 --seed 11 (train.txt,
valid.txt, test.txt), with CRIT-generator.txt its printout (the Bayes-optimal AUC of the test
split) and, per model M of lr, fm, deepfm and dcnv2, CRIT/M.eval.json (`funnel evaluate --format
json` on test.txt), CRIT/M.stdout and CRIT/M.stderr (`funnel train` with --valid); CRIT/deepfm.p.csv
is `funnel predict` of the DeepFM model on test.txt.

Asserted: every model learns (test AUC above 0.65, well above chance, and below the Bayes bound);
the networks, trained with early stopping, keep the best validation epoch (the final validation log
loss is the smallest of the epochs', to 2e-5); and a model file predicts what evaluate scores
(the AUC of `funnel predict`'s probabilities on the test labels is evaluate's, to 1e-6).
"""
import json
import re
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

import checklib


def body(c, crit):
    bayes = float(re.search(r"AUC ([0-9.]+)", open(crit + "-generator.txt").read()).group(1))
    for m in ("lr", "fm", "deepfm", "dcnv2"):
        auc = checklib.load(f"{crit}/{m}.eval.json")["auc"]
        c.check(0.65 < auc < bayes, f"{m}: test AUC {auc} not in (0.65, Bayes {bayes})")
        print(f"  {m}: test AUC {auc:.4f} (Bayes-optimal {bayes:.4f})")
        if m in ("deepfm", "dcnv2"):
            err = open(f"{crit}/{m}.stderr").read()
            epochs = [float(x) for x in re.findall(r"validation log loss ([0-9.]+)", err)]
            final = float(re.search(r"logloss ([0-9.]+)", open(f"{crit}/{m}.stdout").read()).group(1))
            c.check(epochs and abs(final - min(epochs)) < 2e-5,
                    f"{m}: kept validation log loss {final} is not the best epoch's {min(epochs) if epochs else None}")
    # predict writes what evaluate scored: its AUC on the test labels is evaluate's.
    labels = np.array([int(line.split("\t", 1)[0]) for line in open(f"{crit}/test.txt")])
    p = np.loadtxt(f"{crit}/deepfm.p.csv", skiprows=1)
    auc = roc_auc_score(labels, p)
    evaluated = checklib.load(f"{crit}/deepfm.eval.json")["auc"]
    c.check(abs(auc - evaluated) < 1e-6, f"deepfm: AUC of predict's probabilities {auc} vs evaluate's {evaluated}")


if __name__ == "__main__":
    checklib.usage(__doc__, 1)
    checklib.main("click models", body, sys.argv[1])
