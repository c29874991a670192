#!/usr/bin/env python3
"""Position-bias propensities and off-policy intervals with recurring items, on two worlds.

    python tools/checks/check_recurring.py REC_PREFIX WORLD_DIR

Every served impression is a round (DESIGN.md section 7, "Rounds"), a re-shown item included; the
report's impression dedup would collapse the re-showings, which biases position-bias and
off-policy estimates whenever items recur within the hour. Two worlds, as scripts/test writes them:
- the simulator's recurring scenario: REC_PREFIX-truth.json of `funnel simulate --scenario
  position-bias-recurring --users 20000 --seed 23`, REC_PREFIX-randomized.json and
  REC_PREFIX-em.json of `funnel position-bias --method M --bootstrap 0 --format json` on it;
- a world written apart from the simulator (tools/reference/pbm_world.py --seed 3 --users 20000:
  its own catalog, popularity, examination curve and logging policy): WORLD_DIR/truth.json,
  WORLD_DIR/randomized.json and WORLD_DIR/em.json as above, and WORLD_DIR/ope.json of `funnel ope
  --policy WORLD_DIR/evaluation_policy.csv --estimators ipw,snipw,dr --bootstrap 200`.

Asserted on both worlds: the report's dedup would have collapsed over 30 % of the rounds (the
items do recur), and randomized is within 6 % and em within 4 % of the true examination
probability at every position. On the independent world: every logged impression is a round, and
the IPW, SNIPW and DR intervals cover its evaluation policy's true value.
"""
import sys

import checklib


def body(c, rec, world):
    for name, truth_file, prefix in (("simulator", rec + "-truth.json", rec + "-"),
                                     ("independent world", world + "/truth.json", world + "/")):
        truth = checklib.load(truth_file)["examination"]
        for method, bound in (("randomized", 0.06), ("em", 0.04)):
            got = checklib.load(f"{prefix}{method}.json")
            c.check(got["rounds_collapsed_by_dedup"] > 0.3 * got["rounds"],
                    f"{name}, {method}: only {got['rounds_collapsed_by_dedup']} of {got['rounds']} rounds collapsed by dedup")
            for k, t in enumerate(truth, start=1):
                p = got["positions"][str(k)]["propensity"]
                c.check(p is not None and abs(p / t - 1) <= bound, f"{name}, {method}: position {k}: {p} vs {t} (bound {bound:.0%})")
    truth = checklib.load(world + "/truth.json")
    ope = checklib.load(world + "/ope.json")
    c.check(ope["rounds"] == truth["impressions"], f"rounds {ope['rounds']} vs the world's impressions {truth['impressions']}")
    for name in ("ipw", "snipw", "dr"):
        lo, hi = ope["estimates"][name]["ci"]
        c.check(lo <= truth["evaluation_value"] <= hi, f"{name}: [{lo}, {hi}] misses {truth['evaluation_value']}")


if __name__ == "__main__":
    checklib.usage(__doc__, 2)
    checklib.main("recurring items", body, sys.argv[1], sys.argv[2])
