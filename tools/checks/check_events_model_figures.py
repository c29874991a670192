#!/usr/bin/env python3
"""The accuracy docs/models.md states for a click model trained on Funnel events.

    python tools/checks/check_events_model_figures.py EVAL_JSON

EVAL_JSON is `funnel evaluate --format json` on 5,000 held-out users (`funnel simulate --scenario
position-bias --users 5000 --seed 32`) of an `lr` model with the position feature, trained 3 epochs
on 20,000 users (`--users 20000 --seed 31`, `--data-format funnel`), scored at the logged positions.

Asserted, within tolerances wider than the spread between seeds (another pair of seeds moved the
AUC by 0.001 and the log loss by 0.006): held-out AUC 0.777 within 0.005, GAUC by user 0.656 within
0.005, log loss 0.365 within 0.01, calibration ratio 0.99 within 0.96-1.02.
"""
import sys

import checklib


def body(c, path):
    e = checklib.load(path)
    c.close(e["auc"], 0.777, 0.005, "held-out AUC")
    c.close(e["gauc"], 0.656, 0.005, "held-out GAUC by user")
    c.close(e["logloss"], 0.365, 0.01, "held-out log loss")
    c.within(e["calibration_ratio"], 0.96, 1.02, "calibration ratio")
    print(f"  lr on events: AUC {e['auc']:.4f}, GAUC {e['gauc']:.4f}, log loss {e['logloss']:.4f}, calibration ratio {e['calibration_ratio']:.3f}")


if __name__ == "__main__":
    checklib.usage(__doc__, 1)
    checklib.main("click model on events, figures of docs/models.md", body, sys.argv[1])
