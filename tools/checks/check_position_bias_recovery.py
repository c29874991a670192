#!/usr/bin/env python3
"""Position-bias propensities recovered on one large simulated log, and the simulator's policy file.

    python tools/checks/check_position_bias_recovery.py SIM_PREFIX

Reads, as scripts/test writes them for SIM_PREFIX:
- SIM_PREFIX-truth.json: `funnel simulate --scenario position-bias --users 150000 --seed 21 --truth`
  (about 3.1 million rounds);
- SIM_PREFIX-randomized.json, -em.json, -harvesting.json: `funnel position-bias --method M
  --format json` on that log (em and harvesting with --bootstrap 0);
- SIM_PREFIX-ope.json: `funnel ope --estimators ipw --bootstrap 0` on a small log of the same
  scenario (3,000 users, seed 22) with the simulator's own logging-policy file as the policy.

Asserted (docs/debiasing.md, "Recovery against the truth"; stated value in brackets): at about
100,000 impressions the clicks themselves limit precision, so the 3 % and 6 % bounds are checked on
a log large enough for them to be meaningful:
- randomized within 3 % (largest 1.9 %), em within 6 % (1.8 %) and harvesting within 4 % (2.9 %:
  0.706, 0.539, 0.445, 0.379, 0.329, 0.292, 0.268 for positions 2-8) of the true examination
  probability at every position;
- the naive ratios of click-through rates are 5-30 % below the truth at positions 2-8 (9-25 %):
  the ranker puts better items on top, so the naive ratio overstates the fall with position;
- the log holds 2.9-3.3 million rounds (3.1 million);
- the simulator's logging-policy file reproduces every logged propensity: all weights 1, so the
  effective sample size equals the number of rounds.
"""
import sys

import checklib

BOUNDS = (("randomized", 0.03), ("em", 0.06), ("harvesting", 0.04))


def body(c, sim):
    truth = checklib.load(sim + "-truth.json")["examination"]
    for method, bound in BOUNDS:
        got = checklib.load(f"{sim}-{method}.json")["positions"]
        if not c.check(len(got) == len(truth), f"{method}: {len(got)} positions estimated, the truth has {len(truth)}"):
            continue
        for k, t in enumerate(truth, start=1):
            p = got[str(k)]["propensity"]
            c.check(p is not None and abs(p / t - 1) <= bound, f"{method}: position {k}: {p} vs {t} (bound {bound:.0%})")
    randomized = checklib.load(sim + "-randomized.json")
    for k, t in enumerate(truth[1:], start=2):
        naive = randomized["positions"][str(k)]["naive"]
        c.within(naive / t - 1, -0.30, -0.05, f"position {k}: naive ratio's relative error")
    c.within(randomized["rounds"], 2_900_000, 3_300_000, "rounds of the large log")
    ope = checklib.load(sim + "-ope.json")
    d = ope["diagnostics"]
    c.check(d["max_weight"] == 1 and abs(d["ess"] - ope["rounds"]) < 1e-6, d)


if __name__ == "__main__":
    checklib.usage(__doc__, 1)
    checklib.main("position bias and policy files", body, sys.argv[1])
