#!/usr/bin/env python3
"""Statistics calibrated by simulation: the JSON of `funnel calibrate --simulations 500 --users 5000`.

    python tools/checks/check_calibration.py CALIBRATION_JSON

`funnel calibrate` simulates 500 A/A experiments and 500 with the clickbait effect (5,000 users
each, no traps; the true lifts come from a 200,000-user run's expected counts) and records how
often the primary metric is significant on A/A and how often the 95 % intervals of the ctr and
ctcvr lifts cover the true lift: per-user delta method, with CUPED, and treating impressions as
independent (wrong on purpose). Intervals that treat impressions as independent cover less,
because one user's impressions are correlated (users differ in how much they click and buy).

Asserted, the figures of docs/statistics.md ("Calibration") and the README (stated value in
brackets; the run is seeded, so it gives the same figures every time):

- A/A false-positive rate of the primary metric (purchases_per_user) in [0.035, 0.065]
  (0.050); with CUPED in the same bounds (0.052): CUPED stays unbiased on A/A.
- ctr and ctcvr lift intervals cover the true lift 93-97 % of the time on both scenarios, with
  the per-user delta method (0.942-0.964) and with CUPED (0.948-0.960).
- Intervals that treat impressions as independent cover less than the per-user ones on the
  clickbait scenario, and under-cover on both: coverage in [0.70, 0.93) (0.776-0.912, "78-91 %").
- CUPED's mean variance reduction on both scenarios: ctr >= 0.12 ("about 15 %": 0.145 and
  0.151), ctcvr >= 0.02 (0.032, 0.026), purchases_per_user >= 0.01 (0.017, 0.015),
  revenue_per_user >= 0.008 (0.015, 0.012).
- The true lifts the coverage is measured against: ctr +0.4290 and ctcvr -0.4493, within 0.005.
"""
import sys

import checklib

SCENARIOS = ("aa", "clickbait")
CUPED_REDUCTION_FLOOR = {"ctr": 0.12, "ctcvr": 0.02, "purchases_per_user": 0.01, "revenue_per_user": 0.008}
TRUE_LIFTS = {"ctr": 0.4290, "ctcvr": -0.4493}


def body(c, path):
    doc = checklib.load(path)
    cov = doc["coverage"]
    c.within(doc["aa_primary_false_positive_rate"], 0.035, 0.065, "A/A false-positive rate")
    c.within(doc["aa_primary_false_positive_rate_cuped"], 0.035, 0.065, "A/A false-positive rate with CUPED")
    for key in ("ctr", "ctcvr"):
        for scenario in SCENARIOS:
            c.within(cov[key][scenario], 0.93, 0.97, f"{key} coverage ({scenario})")
            c.within(cov["cuped_" + key][scenario], 0.93, 0.97, f"CUPED {key} coverage ({scenario})")
            naive = cov["naive_" + key][scenario]
            c.check(naive is not None and 0.70 <= naive < 0.93,
                    f"{key} coverage treating impressions as independent {naive} ({scenario}) outside [0.70, 0.93)")
        c.check(cov["naive_" + key]["clickbait"] < cov[key]["clickbait"],
                f"{key}: impressions-as-independent coverage {cov['naive_' + key]['clickbait']} not below "
                f"the per-user coverage {cov[key]['clickbait']} (clickbait)")
    for key, floor in CUPED_REDUCTION_FLOOR.items():
        for scenario in SCENARIOS:
            r = doc["cuped_variance_reduction"][key][scenario]
            c.check(r is not None and r >= floor, f"CUPED variance reduction of {key} {r} ({scenario}) below {floor}")
    for key, lift in TRUE_LIFTS.items():
        c.close(doc["true_lifts"][key], lift, 0.005, f"true {key} lift")


if __name__ == "__main__":
    checklib.usage(__doc__, 1)
    checklib.main("calibration", body, sys.argv[1])
