#!/usr/bin/env python3
"""Sequential inference calibrated by simulation: the JSON of
`funnel calibrate --sequential --simulations 2000 --lift 0.2 [--metric ctr --rate 0.05 --users-per-day 100]`.

    python tools/checks/check_sequential_calibration.py SEQUENTIAL_JSON

`funnel calibrate --sequential` simulates A/A experiments and as many with a known lift, users
arriving every day, and looks at each experiment every day for 28 days with the report's own
comparison: the fixed-horizon test, the confidence sequence and the mSPRT.

Asserted (figures of docs/statistics.md, "Sequential tests"; the run is seeded):
- Peeking breaks the fixed-horizon test: its A/A "ever significant" share is above 0.15 (five
  sevenths of the way to the 28.5 % measured), while at the last look alone it is 5 % within
  simulation error (0.035-0.065).
- Both sequential methods keep "ever significant" at most 5 % plus three standard errors of a
  5 % share over the experiments.
- Their intervals cover the truth at every look at once in at least 95 % of experiments, less
  three standard errors, on A/A and with the lift; the fixed-horizon intervals do not (< 0.9).
- With the lift, both sequential methods detect it in more than half the experiments by day 28,
  later (median day) than the peeking fixed-horizon test.
"""
import math
import sys

import checklib


def body(c, path):
    doc = checklib.load(path)
    n = doc["experiments"]
    slack = 3 * math.sqrt(0.05 * 0.95 / n)
    methods = {m["method"]: m for m in doc["methods"]}
    fixed = methods["none"]
    c.check(fixed["aa_ever_significant"] > 0.15, f"fixed horizon A/A ever significant {fixed['aa_ever_significant']} not above 0.15")
    c.within(fixed["aa_significant_at_end"], 0.035, 0.065, "fixed horizon A/A significant at the last look")
    c.check(fixed["aa_all_looks_coverage"] < 0.9, f"fixed horizon all-looks coverage {fixed['aa_all_looks_coverage']} not below 0.9")
    for name in ("confidence-sequence", "msprt"):
        m = methods[name]
        c.check(m["aa_ever_significant"] <= 0.05 + slack,
                f"{name}: A/A ever significant {m['aa_ever_significant']} above 0.05 + {slack:.4f}")
        c.check(m["aa_all_looks_coverage"] >= 0.95 - slack, f"{name}: A/A all-looks coverage {m['aa_all_looks_coverage']} below 0.95")
        c.check(m["effect_all_looks_coverage"] >= 0.95 - slack,
                f"{name}: all-looks coverage with the lift {m['effect_all_looks_coverage']} below 0.95")
        c.check(m["power"] > 0.5, f"{name}: detected the lift in only {m['power']} of experiments by the last day")
        c.check(m["median_detection_day"] is not None and m["median_detection_day"] > fixed["median_detection_day"],
                f"{name}: median detection day {m['median_detection_day']} not later than the peeking test's {fixed['median_detection_day']}")


if __name__ == "__main__":
    checklib.usage(__doc__, 1)
    checklib.main("sequential calibration", body, sys.argv[1])
