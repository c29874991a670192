#!/usr/bin/env python3
"""Single-log off-policy figures quoted by the docs: the true value and which intervals cover it.

    python tools/checks/check_ope_examples.py CASE TRUTH_JSON OPE_JSON

CASE is one of the logs below; TRUTH_JSON is its truth file and OPE_JSON the output of `funnel ope
--policy .../evaluation_policy.csv --format json` on it (default seed and 200 bootstrap draws):

- position-bias-seed3: `funnel simulate --scenario position-bias --users 20000 --seed 3 --policies`,
  `funnel ope` with every estimator: the example of docs/debiasing.md ("Off-policy evaluation")
  and the README. The policies' true values are 0.1754 (evaluation) and 0.1613 (logging); every
  unbiased estimator's interval (IPW, SNIPW, DR, SNDR, Switch-DR) covers the true value and the
  direct method alone is biased low (its logistic model has no item x position interaction, and
  the truth multiplies them): its value and its whole interval are below the truth.
- recurring-seed21: `funnel simulate --scenario position-bias-recurring --users 30000 --seed 21
  --policies`, `funnel ope --estimators ipw,snipw,dr`: docs/debiasing.md ("Calibration of the
  estimators"): 1.9 M rounds, the truth 0.16558 inside the IPW, SNIPW and DR intervals (IPW
  [0.16444, 0.17021]).
- pbm-world-seed1: `tools/reference/pbm_world.py --seed 1 --users 30000` (a recurring world
  written apart from the simulator), `funnel ope --estimators ipw,snipw,dr --bootstrap 200`: 1.5 M
  rounds, every one of the world's impressions, the truth 0.12773 inside the IPW, SNIPW and DR
  intervals (IPW [0.12326, 0.13219]).

The true values are checked to the digits the docs print them with, the ends of the IPW interval the
docs quote (0.168629 and 0.181279 in the example) to 2e-4, the round counts to 5 %.
"""
import sys

import checklib

CASES = {
    "position-bias-seed3": {
        "truth_keys": ("policies", "evaluation_value"), "value": 0.1754, "tolerance": 5e-5,
        "logging_value": 0.1613, "rounds": None, "ipw_ci": (0.168629, 0.181279),
        "cover": ("ipw", "snipw", "dr", "sndr", "switch-dr"), "biased_low": ("dm",),
    },
    "recurring-seed21": {
        "truth_keys": ("policies", "evaluation_value"), "value": 0.16558, "tolerance": 5e-6,
        "logging_value": None, "rounds": 1_900_000, "ipw_ci": (0.16444, 0.17021),
        "cover": ("ipw", "snipw", "dr"), "biased_low": (),
    },
    "pbm-world-seed1": {
        "truth_keys": ("evaluation_value",), "value": 0.12773, "tolerance": 5e-6,
        "logging_value": None, "rounds": 1_500_000, "ipw_ci": (0.12326, 0.13219),
        "cover": ("ipw", "snipw", "dr"), "biased_low": (),
    },
}


def body(c, case, truth_path, ope_path):
    spec = CASES[case]
    truth = checklib.load(truth_path)
    value = truth
    for key in spec["truth_keys"]:
        value = value[key]
    ope = checklib.load(ope_path)
    c.close(value, spec["value"], spec["tolerance"], "the evaluation policy's true value")
    if spec["logging_value"] is not None:
        c.close(truth["policies"]["logging_value"], spec["logging_value"], 5e-5, "the logging policy's true value")
    if spec["rounds"] is not None:
        c.within(ope["rounds"], 0.95 * spec["rounds"], 1.05 * spec["rounds"], "logged rounds")
    if "impressions" in truth:  # the independent world counts its impressions: every one is a round
        c.check(ope["rounds"] == truth["impressions"], f"rounds {ope['rounds']} vs the world's impressions {truth['impressions']}")
    for end, stated in zip(ope["estimates"]["ipw"]["ci"], spec["ipw_ci"]):
        c.close(end, stated, 2e-4, "an end of the IPW interval")
    for name in spec["cover"]:
        lo, hi = ope["estimates"][name]["ci"]
        c.check(lo <= value <= hi, f"{name}: [{lo}, {hi}] misses the true value {value}")
    for name in spec["biased_low"]:
        e = ope["estimates"][name]
        c.check(e["value"] < value and e["ci"][1] < value, f"{name}: {e['value']} {e['ci']} is not below the true value {value}")


if __name__ == "__main__":
    checklib.usage(__doc__, 3)
    if sys.argv[1] not in CASES:
        print(f"unknown case {sys.argv[1]!r} (cases: {', '.join(CASES)})", file=sys.stderr)
        sys.exit(2)
    checklib.main(f"off-policy example {sys.argv[1]}", body, *sys.argv[1:4])
