#!/usr/bin/env python3
"""Checks of the statistics reference (stats_reference.py, `funnel_reference.py --stats`).

Hand-worked numbers in comments; the scipy/statsmodels fixtures of tools/fixtures (written by
make_stats_fixtures.py with separately written formulas) must be reproduced by the reference's
own functions.  Run with `python3 -m pytest tools/reference`.
"""

import json
import math
import os
import subprocess
import sys
import tempfile
import unittest

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import funnel_reference as ref  # noqa: E402
import gen_logs  # noqa: E402
import stats_reference as sr  # noqa: E402
from test_reference import T, H, S, exposure, impression, click, purchase, run  # noqa: E402

FIXTURES = os.path.join(ROOT, "Tests", "FunnelStatsTests", "Fixtures", "stats_fixtures.json")
Z95 = 1.959963984540054


def close(a, b, rel=1e-12):
    return math.isclose(a, b, rel_tol=rel, abs_tol=1e-15)


def user(**counts):
    c = ref.zero_counts()
    c["users"] = 1
    c.update(counts)
    return c


def comparison(metric="purchases_per_user", variant="treatment", segment=None, diff=0.1,
               significant=False):
    return {"metric": metric, "variant": variant, "segment": segment, "absolute_diff": diff,
            "significant": significant}


class HandWorked(unittest.TestCase):
    def test_delta_ratio_variance(self):
        # x = [1, 0, 2], y = [3, 1, 4]: R = 3/8; x − R·y = [−0.125, −0.375, 0.5] (mean 0);
        # var ddof 1 = (0.015625 + 0.140625 + 0.25)/2 = 0.203125; n·ȳ² = 3·(8/3)² = 64/3;
        # Var = 0.203125 · 3/64 = 0.009521484375.
        e = sr.ratio_estimate(np.array([1.0, 0, 2]), np.array([3.0, 1, 4]), Z95)
        self.assertEqual(e.value, 0.375)
        self.assertTrue(close(e.var, 0.009521484375))
        half = Z95 * math.sqrt(0.009521484375)
        self.assertTrue(close(e.ci[0], 0.375 - half) and close(e.ci[1], 0.375 + half))

    def test_undefined_is_none(self):
        # zero denominator
        e = sr.ratio_estimate(np.array([0.0, 0]), np.array([0.0, 0]), Z95)
        self.assertEqual((e.value, e.ci, e.var), (None, None, None))
        # one user: a value, no variance
        e = sr.ratio_estimate(np.array([1.0]), np.array([2.0]), Z95)
        self.assertEqual((e.value, e.ci, e.var), (0.5, None, None))
        # zero variance: every user has ratio 1/2 -> Var 0, interval null
        e = sr.ratio_estimate(np.array([1.0, 2, 0]), np.array([2.0, 4, 0]), Z95)
        self.assertEqual((e.value, e.var, e.ci), (0.5, 0.0, None))
        e = sr.mean_estimate(np.array([3.0, 3.0]), 0.05)
        self.assertEqual((e.value, e.var, e.ci), (3.0, 0.0, None))
        e = sr.mean_estimate(np.array([3.0]), 0.05)
        self.assertEqual((e.value, e.var, e.ci), (3.0, None, None))
        # Wilson is defined for any n >= 1, k = 0 included
        e = sr.proportion_estimate(0, 1, 0.05)
        self.assertEqual(e.value, 0.0)
        self.assertTrue(close(e.ci[1], 0.7934506856227627, 1e-9))

    def test_zero_variance_comparisons_are_null(self):
        # both groups constant: Welch t would be ±inf (scipy says p = 0); the contract says null
        t = sr.mean_estimate(np.array([2.0, 2.0]), 0.05)
        c = sr.mean_estimate(np.array([1.0, 1.0]), 0.05)
        out = sr.compare(t, c, 0.05)
        self.assertEqual(out["absolute_diff"], 1.0)
        self.assertEqual(out["relative_lift"], 1.0)
        self.assertEqual((out["p_value"], out["ci"], out["relative_ci"]), (None, None, None))
        # both proportions 0: pooled z-test undefined, Wald interval of width 0 -> null; lift null
        t, c = sr.proportion_estimate(0, 5, 0.05), sr.proportion_estimate(0, 7, 0.05)
        out = sr.compare(t, c, 0.05)
        self.assertEqual(out["absolute_diff"], 0.0)
        self.assertEqual((out["p_value"], out["ci"], out["relative_lift"]), (None, None, None))

    def test_proportion_comparison(self):
        # 150/1000 vs 100/1000: statsmodels z = 3.3806..., p = 0.000723...; Wald half-width
        # z·√(0.15·0.85/1000 + 0.1·0.9/1000); relative: √(V_t/m_c² + m_t²V_c/m_c⁴).
        t, c = sr.proportion_estimate(150, 1000, 0.05), sr.proportion_estimate(100, 1000, 0.05)
        out = sr.compare(t, c, 0.05)
        self.assertTrue(close(out["p_value"], 0.0007232327164301953, 1e-9))
        half = Z95 * math.sqrt(0.15 * 0.85 / 1000 + 0.1 * 0.9 / 1000)
        self.assertTrue(close(out["ci"][0], 0.05 - half, 1e-12))
        rel = Z95 * math.sqrt(0.15 * 0.85 / 1000 / 0.01 + 0.0225 * 0.1 * 0.9 / 1000 / 1e-4)
        self.assertTrue(close(out["relative_lift"], 0.5, 1e-12))
        self.assertTrue(close(out["relative_ci"][1], 0.5 + rel, 1e-12))

    def test_corrections_and_null_p_out_of_family(self):
        fam = [{"p_value": 0.01}, {"p_value": None}, {"p_value": 0.04}, {"p_value": 0.03}]
        for c in fam:
            c.update(adjusted_p_value=None, significant=False)
        sr.correct(fam, "holm", 0.05)  # family of 3: 0.03, 0.06, 0.06
        self.assertEqual([c["adjusted_p_value"] for c in fam], [0.03, None, 0.06, 0.06])
        self.assertEqual([c["significant"] for c in fam], [True, False, False, False])
        sr.correct(fam, "none", 0.05)
        self.assertEqual([c["adjusted_p_value"] for c in fam], [0.01, None, 0.04, 0.03])
        sr.correct(fam, "benjamini_hochberg", 0.05)  # 0.03, 0.04, 0.04
        self.assertTrue(all(close(a, b) for a, b in zip(
            [fam[0]["adjusted_p_value"], fam[2]["adjusted_p_value"], fam[3]["adjusted_p_value"]],
            [0.03, 0.04, 0.04])))
        sr.correct(fam, "bonferroni", 0.05)
        self.assertEqual(fam[2]["adjusted_p_value"], 0.12)

    def test_srm(self):
        v = {"control": {"users": 1000}, "treatment": {"users": 1200}}
        out = sr.srm(v, None, 0.001)
        self.assertTrue(close(out["p_value"], 2.007865612426481e-05, 1e-9))
        self.assertTrue(out["flag"])
        out = sr.srm({"control": {"users": 310}, "treatment": {"users": 98}},
                     {"control": 3, "treatment": 1}, 0.001)
        self.assertTrue(close(out["p_value"], 0.647434185701797, 1e-9))
        self.assertFalse(out["flag"])
        # a listed variant with no users counts 0; an unlisted observed variant has weight 0
        out = sr.srm({"control": {"users": 10}}, {"control": 1, "treatment": 1}, 0.001)
        self.assertTrue(close(out["p_value"], 0.001565402258002549, 1e-9))
        out = sr.srm({"control": {"users": 10}, "b": {"users": 1}}, {"control": 1}, 0.001)
        self.assertEqual(out, {"p_value": 0.0, "flag": True})
        # one variant, equal split: no test
        self.assertEqual(sr.srm({"control": {"users": 10}}, None, 0.001),
                         {"p_value": None, "flag": False})

    def test_verdict(self):
        cfg = {"primary_metric": "purchases_per_user", "guardrail_metrics": ["ctcvr"]}
        ok_srm = {"p_value": 0.5, "flag": False}
        better = comparison(diff=0.2, significant=True)
        self.assertEqual(sr.verdict([better], ok_srm, 0, 100, cfg), "ship")
        self.assertEqual(sr.verdict([better], {"p_value": 0.0, "flag": True}, 0, 100, cfg),
                         "inconclusive")
        # 5 leaked of 100 exposed (95 analysed + 5) is not more than 5 %; 6 of 101 is
        self.assertEqual(sr.verdict([better], ok_srm, 5, 95, cfg), "ship")
        self.assertEqual(sr.verdict([better], ok_srm, 6, 95, cfg), "inconclusive")
        worse_guard = comparison("ctcvr", "treatment_b", diff=-0.01, significant=True)
        self.assertEqual(sr.verdict([better, worse_guard], ok_srm, 0, 100, cfg), "do_not_ship")
        # segments never decide; insignificant moves neither
        seg = comparison("ctcvr", segment="device=mobile", diff=-0.5, significant=True)
        self.assertEqual(sr.verdict([better, seg], ok_srm, 0, 100, cfg), "ship")
        self.assertEqual(sr.verdict([comparison(diff=0.3)], ok_srm, 0, 100, cfg), "inconclusive")
        other = comparison("ctr", diff=-0.3, significant=True)  # not watched
        self.assertEqual(sr.verdict([better, other], ok_srm, 0, 100, cfg), "ship")


class Fixtures(unittest.TestCase):
    """The reference's functions reproduce the committed scipy/statsmodels fixtures."""

    @classmethod
    def setUpClass(cls):
        with open(FIXTURES) as f:
            cls.fx = json.load(f)

    def test_wilson(self):
        for c in self.fx["wilson"]:
            e = sr.proportion_estimate(c["k"], c["n"], c["alpha"])
            self.assertTrue(close(e.ci[0], c["lo"], 1e-12) and close(e.ci[1], c["hi"], 1e-12), c)

    def test_proportions_ztest(self):
        for c in self.fx["proportions_ztest"]:
            t = sr.proportion_estimate(c["k2"], c["n2"], 0.05)
            ctl = sr.proportion_estimate(c["k1"], c["n1"], 0.05)
            self.assertTrue(close(sr.compare(t, ctl, 0.05)["p_value"], c["p"], 1e-12), c)

    def test_welch(self):
        for c in self.fx["welch"]:
            t = sr.mean_estimate(np.array(c["b"], dtype=float), c["alpha"])
            ctl = sr.mean_estimate(np.array(c["a"], dtype=float), c["alpha"])
            out = sr.compare(t, ctl, c["alpha"])
            self.assertTrue(close(out["p_value"], c["p"], 1e-12), (out, c["p"]))
            self.assertTrue(close(out["absolute_diff"], c["mean_diff"], 1e-12))
            self.assertTrue(close(out["ci"][0], c["ci_lo"], 1e-9) and close(out["ci"][1], c["ci_hi"], 1e-9))

    def test_t_interval(self):
        for c in self.fx["t_interval"]:
            e = sr.mean_estimate(np.array(c["values"], dtype=float), c["alpha"])
            self.assertTrue(close(e.value, c["mean"]))
            self.assertTrue(close(e.ci[0], c["lo"], 1e-9) and close(e.ci[1], c["hi"], 1e-9), c)

    def test_chisquare(self):
        for c in self.fx["chisquare"]:
            names = [f"v{i}" for i in range(len(c["observed"]))]
            out = sr.srm({n: {"users": o} for n, o in zip(names, c["observed"])},
                         dict(zip(names, c["weights"])), 0.001)
            self.assertTrue(close(out["p_value"], c["p"], 1e-12), c)

    def test_multipletests(self):
        names = {"holm": "holm", "bonferroni": "bonferroni", "fdr_bh": "benjamini_hochberg"}
        for c in self.fx["multipletests"]:
            fam = [{"p_value": p, "adjusted_p_value": None, "significant": False} for p in c["p"]]
            sr.correct(fam, names[c["method"]], c["alpha"])
            self.assertEqual([x["adjusted_p_value"] for x in fam], c["adjusted"], c)
            self.assertEqual([x["significant"] for x in fam], c["reject"], c)

    def test_delta_ratio(self):
        for c in self.fx["delta_ratio"]:
            z = sr.stats.norm.ppf(1 - c["alpha"] / 2)
            e = sr.ratio_estimate(np.array(c["x"], dtype=float), np.array(c["y"], dtype=float), z)
            self.assertTrue(close(e.value, c["value"]) and close(e.var, c["variance"], 1e-12))
            self.assertTrue(close(e.ci[0], c["lo"], 1e-12) and close(e.ci[1], c["hi"], 1e-12))

    def test_relative_lift(self):
        for c in self.fx["relative_lift"]:
            z = sr.stats.norm.ppf(1 - c["alpha"] / 2)
            t = sr.ratio_estimate(np.array(c["x_t"], dtype=float), np.array(c["y_t"], dtype=float), z)
            ctl = sr.ratio_estimate(np.array(c["x_c"], dtype=float), np.array(c["y_c"], dtype=float), z)
            out = sr.compare(t, ctl, c["alpha"])
            self.assertTrue(close(out["relative_lift"], c["lift"], 1e-12))
            self.assertTrue(close(out["relative_ci"][0], c["lo"], 1e-12)
                            and close(out["relative_ci"][1], c["hi"], 1e-12), c)


class Report(unittest.TestCase):
    def stats_report(self, lines, **settings):
        users = []
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "events.jsonl")
            with open(path, "w") as f:
                for line in lines:
                    f.write(json.dumps(line) + "\n")
            cfg = ref.load_config(None)
            cfg.update(settings)
            rep = ref.run(path, cfg, users_out=users)
        return sr.add_stats(rep, users, cfg)

    def test_tiny_experiment(self):
        # control: u1 (1 impression, 1 click, order 10.0), u2 (1 impression, no click);
        # treatment: u3 (2 impressions, 1 click), u4 (no impression).  Segments: device.
        # ctr control = 1/2, treatment = 1/2; purchases_per_user control = [1, 0], mean 0.5.
        lines = [
            exposure("x1", "u1", T, context={"device": "mobile"}),
            exposure("x2", "u2", T, context={"device": "desktop"}),
            exposure("x3", "u3", T, "treatment", context={"device": "mobile"}),
            exposure("x4", "u4", T, "treatment"),
            impression("i1", "u1", T + S, "a"), click("c1", "u1", T + 2 * S, "i1"),
            purchase("p1", "u1", T + H, "o1", [("a", 1, 10.0)]),
            impression("i2", "u2", T + S, "a"),
            impression("i3", "u3", T + S, "a"), impression("i4", "u3", T + S, "b"),
            click("c3", "u3", T + 2 * S, "i3"),
        ]
        rep = self.stats_report(lines)
        m = rep["variants"]["control"]["metrics"]
        self.assertEqual(set(m), set(sr.METRIC_NAMES))
        self.assertEqual(m["ctr"]["value"], 0.5)
        self.assertEqual(m["purchases_per_user"]["value"], 0.5)
        self.assertEqual(rep["variants"]["treatment"]["metrics"]["aov"], {"value": None, "ci": None})
        overall = [c for c in rep["comparisons"] if c["segment"] is None]
        self.assertEqual([c["metric"] for c in overall], sr.METRIC_NAMES)
        ctr = overall[0]
        self.assertEqual((ctr["absolute_diff"], ctr["relative_lift"]), (0.0, 0.0))
        # only device=mobile has a user in both groups (desktop: no treatment user)
        self.assertEqual({c["segment"] for c in rep["comparisons"]}, {None, "device=mobile"})
        self.assertEqual(set(rep["comparisons"][0]), set(sr.COMPARISON_KEYS))
        self.assertEqual(rep["data_quality"]["srm"], {"p_value": 1.0, "flag": False})
        self.assertEqual(rep["diagnosis"], {"verdict": "inconclusive"})

    def test_cli_stats_on_generated_log(self):
        with tempfile.TemporaryDirectory() as d:
            log, cfg = os.path.join(d, "log.jsonl"), os.path.join(d, "funnel.yaml")
            data, _ = gen_logs.generate(2, 150, False, 0.01)
            with open(log, "wb") as f:
                f.write(data)
            with open(cfg, "w") as f:
                f.write("ab_testing:\n  experiment: recs-v2\n  correction: benjamini_hochberg\n")
            out = subprocess.run([sys.executable, os.path.join(HERE, "funnel_reference.py"),
                                  "--events", log, "--config", cfg, "--stats"],
                                 check=True, capture_output=True, text=True).stdout
        self.assertNotIn("NaN", out)
        self.assertNotIn("Infinity", out)
        rep = json.loads(out)
        self.assertIn(rep["diagnosis"]["verdict"], ("ship", "do_not_ship", "inconclusive"))
        treatments = [v for v in rep["variants"] if v != "control"]
        overall = [c for c in rep["comparisons"] if c["segment"] is None]
        self.assertEqual(len(overall), 9 * len(treatments))
        for c in rep["comparisons"]:
            if c["p_value"] is None:
                self.assertIsNone(c["adjusted_p_value"])
                self.assertFalse(c["significant"])
            else:
                self.assertGreaterEqual(c["adjusted_p_value"], c["p_value"])

    def test_bad_correction_is_an_error(self):
        with tempfile.TemporaryDirectory() as d:
            log, cfg = os.path.join(d, "log.jsonl"), os.path.join(d, "funnel.yaml")
            with open(log, "w") as f:
                f.write(json.dumps(exposure("x1", "u1", T)) + "\n")
            with open(cfg, "w") as f:
                f.write("ab_testing:\n  correction: fdr\n")
            proc = subprocess.run([sys.executable, os.path.join(HERE, "funnel_reference.py"),
                                   "--events", log, "--config", cfg, "--stats"],
                                  capture_output=True, text=True)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("correction", proc.stderr)


if __name__ == "__main__":
    unittest.main()
