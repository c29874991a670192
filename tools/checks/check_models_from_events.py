#!/usr/bin/env python3
"""Click models from Funnel events: the training table, ranking and the position feature.

    python tools/checks/check_models_from_events.py PB

PB is the prefix scripts/test writes: PB-train.csv (`funnel export-training` of the
position-bias scenario, 15,000 users, seed 31), PB-lr.stderr (`funnel train --data-format funnel
--model lr --epochs 2` on the same events), PB-lr.eval.json (`funnel evaluate` on 4,000 held-out
users, seed 32), and `funnel predict` of that model and of one trained with `--position-feature
none` at position 1 (PB-lr.p1.csv, PB-lr-none.p1.csv) and at position 5 (--position 5:
PB-lr.p5.csv, PB-lr-none.p5.csv).

Asserted: the training table has one row per round and the model trained on exactly those rows; a
model trained on the position-bias scenario ranks held-out impressions (AUC above 0.7, calibration
ratio within 0.8-1.2, GAUC defined); scoring at a fixed position changes every prediction of a
model with the position feature (position 1 above position 5) but none of a model without it.
"""
import re
import sys

import numpy as np

import checklib


def body(c, pb):
    rows = sum(1 for _ in open(pb + "-train.csv")) - 1
    trained = int(re.search(r"over ([0-9]+) rows", open(pb + "-lr.stderr").read()).group(1))
    c.check(rows == trained > 0, f"training table rows {rows} vs rows trained {trained}")
    e = checklib.load(pb + "-lr.eval.json")
    c.check(e["auc"] > 0.7 and 0.8 < e["calibration_ratio"] < 1.2 and e["gauc"] is not None, e)
    p1, p5 = np.loadtxt(pb + "-lr.p1.csv", skiprows=1), np.loadtxt(pb + "-lr.p5.csv", skiprows=1)
    c.check(np.all(p1 > p5), "a model with the position feature must score position 1 above position 5")
    n1, n5 = np.loadtxt(pb + "-lr-none.p1.csv", skiprows=1), np.loadtxt(pb + "-lr-none.p5.csv", skiprows=1)
    c.check(np.array_equal(n1, n5), "--position-feature none: the position must not change a prediction")


if __name__ == "__main__":
    checklib.usage(__doc__, 1)
    checklib.main("click models from events", body, sys.argv[1])
