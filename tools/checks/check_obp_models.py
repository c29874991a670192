#!/usr/bin/env python3
"""Click models on data from a generator the team did not write: Open Bandit Pipeline's.

    python tools/checks/check_obp_models.py DIR

DIR holds the committed fixture Tests/FunnelModelsTests/Fixtures/obp_cubic (obp's
SyntheticBanditDataset with its degree-3 polynomial click function, written by
bench/criteo/make_obp_clicks.py; 40,000 training rows, obp's true click probability of every test
row) after bench/criteo/run_obp_check.sh: DIR/M.eval.json for lr, fm, deepfm and dcnv2 and
DIR/sklearn.json with scikit-learn's logistic regressions (main_effects: the same features;
well_specified: told the truth's form, each item's own cubic in x) and the Bayes-optimal scores.

Asserted: Funnel's FTRL-LR agrees with scikit-learn's LR on the same features (0.002 AUC, 1 % log
loss); FM, DeepFM and DCN-v2 beat it (by more than 0.03 AUC, and on log loss); the two networks
come within 0.005 AUC of the well-specified regression and stay below the Bayes-optimal AUC; every
calibration ratio is within 0.8-1.2.
"""
import sys

import checklib

MODELS = ("lr", "fm", "deepfm", "dcnv2")


def body(c, d):
    e = {m: checklib.load(f"{d}/{m}.eval.json") for m in MODELS}
    s = checklib.load(f"{d}/sklearn.json")
    main, spec, bayes = s["main_effects"], s["well_specified"], s["bayes_optimal"]
    c.check(abs(e["lr"]["auc"] - main["auc"]) <= 0.002 and abs(e["lr"]["logloss"] / main["logloss"] - 1) <= 0.01,
            f"FTRL-LR {e['lr']} vs scikit-learn's LR {main}")
    for m in ("fm", "deepfm", "dcnv2"):
        c.check(e[m]["auc"] > e["lr"]["auc"] + 0.03 and e[m]["logloss"] < e["lr"]["logloss"],
                f"{m} does not beat FTRL-LR: {e[m]['auc']} vs {e['lr']['auc']}")
    for m in ("deepfm", "dcnv2"):
        c.check(spec["auc"] - 0.005 <= e[m]["auc"] < bayes["auc"],
                f"{m}: AUC {e[m]['auc']:.4f}, well-specified LR {spec['auc']:.4f}, Bayes {bayes['auc']:.4f}")
    for m in e:
        c.within(e[m]["calibration_ratio"], 0.8, 1.2, f"{m}: calibration ratio")


if __name__ == "__main__":
    checklib.usage(__doc__, 1)
    checklib.main("click models on obp's generator", body, sys.argv[1])
