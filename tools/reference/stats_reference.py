"""Independent reference of Funnel's statistics: DESIGN.md §4 (metrics), §5 (report keys) and §7
"Statistics", computed with scipy and statsmodels wherever the contract names a function.

    funnel_reference.py --events PATH [--config funnel.yaml] --stats

adds to the counting report: per variant "metrics" ({metric: {"value", "ci"}}), "comparisons",
data_quality.srm {"p_value", "flag"} and diagnosis.verdict.  The choices where the contract
leaves room are written down in docs/statistics-choices.md and marked "SC" in comments here.

Needs numpy, scipy and statsmodels (tools/reference/requirements.txt).
"""

import gc
import math
import warnings

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

# §4 table, in its order: (metric, kind, numerator count, denominator count).
METRICS = [
    ("ctr", "ratio", "clicks", "impressions"),
    ("cart_rate", "ratio", "carts", "clicks"),
    ("post_click_cvr", "ratio", "purchases", "clicks"),
    ("ctcvr", "ratio", "purchases", "impressions"),
    ("revenue_per_impression", "ratio", "revenue", "impressions"),
    ("user_conversion_rate", "proportion", "converting_users", "users"),
    ("purchases_per_user", "mean", "orders", "users"),
    ("revenue_per_user", "mean", "order_revenue", "users"),
    ("aov", "ratio", "order_revenue", "orders"),
]
METRIC_NAMES = [m[0] for m in METRICS]

# §3 config `correction` -> statsmodels multipletests method ("none": adjusted = raw p).
CORRECTIONS = {"holm": "holm", "bonferroni": "bonferroni", "benjamini_hochberg": "fdr_bh",
               "none": None}

COMPARISON_KEYS = ["metric", "variant", "segment", "absolute_diff", "relative_lift", "ci",
                   "relative_ci", "p_value", "adjusted_p_value", "significant"]


class StatsConfigError(ValueError):
    """A config value the statistics cannot use (e.g. an unknown correction)."""


def finite_or_none(v):
    """§7: an undefined statistic is null, never NaN (nor ±inf)."""
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def interval(center, half):
    lo, hi = finite_or_none(center - half), finite_or_none(center + half)
    return None if lo is None or hi is None else [lo, hi]


# --------------------------------------------------------------------------------------------
# One group's estimate of one metric
# --------------------------------------------------------------------------------------------

class Estimate:
    """value, ci (per-variant interval), var (V of §7: the variance of the estimate, used for
    the difference and the relative interval), and what the tests need."""

    def __init__(self, kind, value, ci, var, n, x, y=None):
        self.kind, self.value, self.ci, self.var, self.n, self.x, self.y = kind, value, ci, var, n, x, y


def ratio_estimate(x, y, z):
    """§7 ratio metrics: R = Σx/Σy; Var = var(x − R·y, ddof=1) / (n·ȳ²) (Deng et al. 2018);
    normal interval R ± z·√Var."""
    n = len(x)
    sy = float(np.sum(y))
    if n == 0 or sy == 0:
        return Estimate("ratio", None, None, None, n, x, y)  # zero denominator: undefined
    r = float(np.sum(x)) / sy
    var = None
    if n >= 2:  # ddof = 1 needs two users
        d = x - r * y  # SC: the residuals exactly as written, then a two-pass sample variance
        var = finite_or_none(np.var(d, ddof=1) / (n * (sy / n) ** 2))
    ci = None
    if var is not None and var > 0:  # §7: zero variance -> undefined (SC: the interval too)
        ci = interval(r, z * math.sqrt(var))
    return Estimate("ratio", finite_or_none(r), ci, var, n, x, y)


def proportion_estimate(k, n, alpha):
    """§7 user_conversion_rate: Wilson interval (statsmodels) per variant; V = p(1−p)/n."""
    if n == 0:
        return Estimate("proportion", None, None, None, 0, k)
    p = k / n
    lo, hi = proportion_confint(k, n, alpha=alpha, method="wilson")
    ci = None if finite_or_none(lo) is None or finite_or_none(hi) is None else [float(lo), float(hi)]
    return Estimate("proportion", p, ci, p * (1 - p) / n, n, k)


def mean_estimate(x, alpha):
    """§7 mean metrics: Student t interval (ddof = 1) per variant; V = s²/n."""
    n = len(x)
    if n == 0:
        return Estimate("mean", None, None, None, 0, x)
    mean = float(np.mean(x))
    if n < 2:
        return Estimate("mean", mean, None, None, n, x)
    s2 = float(np.var(x, ddof=1))
    v = s2 / n
    ci = None
    if s2 > 0:  # zero variance -> undefined
        ci = interval(mean, stats.t.ppf(1 - alpha / 2, n - 1) * math.sqrt(v))
    return Estimate("mean", mean, ci, v, n, x)


def group_arrays(users):
    """Per-user count arrays (one entry per user, zeros included: §7) for a list of count dicts."""
    keys = {"clicks", "impressions", "carts", "purchases", "revenue", "orders", "order_revenue",
            "converting_users"}
    return {k: np.array([u[k] for u in users], dtype=float) for k in keys}


def estimates(users, alpha):
    """{metric: Estimate} for one group of users."""
    arr = group_arrays(users)
    n = len(users)
    z = stats.norm.ppf(1 - alpha / 2)
    out = {}
    for name, kind, num, den in METRICS:
        if kind == "ratio":
            out[name] = ratio_estimate(arr[num], arr[den], z)
        elif kind == "proportion":
            out[name] = proportion_estimate(int(round(arr[num].sum())), n, alpha)
        else:
            out[name] = mean_estimate(arr[num], alpha)
    return out


# --------------------------------------------------------------------------------------------
# A treatment-vs-control comparison of one metric
# --------------------------------------------------------------------------------------------

def compare(t, c, alpha):
    """The §5 comparison fields for treatment estimate t against control estimate c, before the
    multiple-testing correction (adjusted_p_value and significant are set later)."""
    z = stats.norm.ppf(1 - alpha / 2)
    diff = None
    if t.value is not None and c.value is not None:
        diff = finite_or_none(t.value - c.value)
    ci = p = None

    if t.kind == "ratio":
        if diff is not None and t.var is not None and c.var is not None:
            se2 = t.var + c.var  # §7: the difference's variance is the sum of the two
            if se2 > 0:
                se = math.sqrt(se2)
                ci = interval(diff, z * se)
                p = finite_or_none(2 * stats.norm.sf(abs(diff) / se))

    elif t.kind == "proportion":
        if diff is not None:
            se2 = t.var + c.var  # unpooled Wald: p_t(1−p_t)/n_t + p_c(1−p_c)/n_c
            if se2 > 0:
                ci = interval(diff, z * math.sqrt(se2))
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore", RuntimeWarning)
                # pooled two-proportion z-test, treatment first (the sign of z is not reported)
                _, pv = proportions_ztest([t.x, c.x], [t.n, c.n])
            p = finite_or_none(pv)

    else:  # mean: Welch
        if diff is not None and t.var is not None and c.var is not None:  # n >= 2 in both
            se2 = t.var + c.var
            if se2 > 0:  # SC: zero variance in both groups -> null (scipy would say t = ±inf)
                with warnings.catch_warnings():  # "precision loss" on near-constant samples
                    warnings.simplefilter("ignore", RuntimeWarning)
                    res = stats.ttest_ind(t.x, c.x, equal_var=False)
                p = finite_or_none(res.pvalue)
                df = float(res.df)  # Welch–Satterthwaite
                ci = interval(diff, stats.t.ppf(1 - alpha / 2, df) * math.sqrt(se2))

    lift = rel_ci = None
    if t.value is not None and c.value is not None and c.value != 0:
        lift = finite_or_none(t.value / c.value - 1)
        if lift is not None and t.var is not None and c.var is not None:
            mt, mc = t.value, c.value
            q = t.var / mc ** 2 + mt ** 2 * c.var / mc ** 4
            if q > 0:  # SC: a zero relative variance -> null, like every zero-variance interval
                rel_ci = interval(lift, z * math.sqrt(q))
    return {"absolute_diff": diff, "relative_lift": lift, "ci": ci, "relative_ci": rel_ci,
            "p_value": p, "adjusted_p_value": None, "significant": False}


def correct(family, method, alpha):
    """§7: adjust the p-values of one family in place; null p-values stay out of it."""
    members = [c for c in family if c["p_value"] is not None]
    if not members:
        return
    raw = [c["p_value"] for c in members]
    if CORRECTIONS[method] is None:
        adjusted = raw
    else:
        adjusted = [float(a) for a in multipletests(raw, alpha=alpha, method=CORRECTIONS[method])[1]]
    for c, a in zip(members, adjusted):
        c["adjusted_p_value"] = finite_or_none(a)
        c["significant"] = c["adjusted_p_value"] is not None and c["adjusted_p_value"] <= alpha


# --------------------------------------------------------------------------------------------
# SRM and verdict
# --------------------------------------------------------------------------------------------

def srm(variants, expected_split, threshold):
    """§7: chisquare of analysed user counts against expected_split weights normalised to the
    total (equal split over observed variants when null); flag = p < srm_p_threshold."""
    observed_names = sorted(variants)
    if expected_split:
        # SC: the categories are the variants of expected_split and the observed ones; a
        # variant missing from expected_split has weight 0 (observed users there give p = 0).
        names = sorted(set(observed_names) | set(expected_split))
        weights = [float(expected_split.get(v, 0.0)) for v in names]
    else:
        names = observed_names
        weights = [1.0] * len(names)
    obs = np.array([float(variants[v]["users"]) if v in variants else 0.0 for v in names])
    total = obs.sum()
    p = None
    if len(names) >= 2 and total > 0 and sum(weights) > 0:
        w = np.array(weights)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            p = finite_or_none(stats.chisquare(obs, f_exp=w / w.sum() * total).pvalue)
    return {"p_value": p, "flag": p is not None and p < threshold}


def verdict(comparisons, srm_result, leaked_users, analysed_users, cfg):
    """§7 verdict, over the overall comparisons (segment null) after correction."""
    exposed = analysed_users + leaked_users  # CC: exposed = non-bot users exposed, leaked included
    if srm_result["flag"] or (exposed > 0 and leaked_users > 0.05 * exposed):
        return "inconclusive"
    primary = cfg.get("primary_metric", "purchases_per_user")
    watched = {primary, *(cfg.get("guardrail_metrics") or [])}
    overall = [c for c in comparisons if c["segment"] is None]
    # SC: every metric is "higher is better"; worse = significant with absolute_diff < 0.
    if any(c["metric"] in watched and c["significant"] and c["absolute_diff"] is not None
           and c["absolute_diff"] < 0 for c in overall):
        return "do_not_ship"
    if any(c["metric"] == primary and c["significant"] and c["absolute_diff"] is not None
           and c["absolute_diff"] > 0 for c in overall):
        return "ship"
    return "inconclusive"


# --------------------------------------------------------------------------------------------
# The whole statistics part of the report
# --------------------------------------------------------------------------------------------

def add_stats(report, users, cfg):
    """Adds the statistics to `report` (from funnel_reference.run) in place and returns it.

    `users` lists the analysed users as (variant, first-exposure context, per-user counts).
    """
    alpha = float(cfg.get("significance_level", 0.05))
    if not 0 < alpha < 1:
        raise StatsConfigError(f"ab_testing.significance_level must be in (0, 1), got {alpha!r}")
    method = cfg.get("correction", "holm")
    if method not in CORRECTIONS:
        raise StatsConfigError(f"ab_testing.correction must be one of {', '.join(CORRECTIONS)}; "
                               f"got {method!r}")
    control = report["control"]

    by_variant = {}
    by_segment = {}  # (dimension, value) -> variant -> users
    for variant, context, counts in users:
        by_variant.setdefault(variant, []).append(counts)
        for dim, value in (context or {}).items():
            by_segment.setdefault((dim, value), {}).setdefault(variant, []).append(counts)

    overall_est = {v: estimates(us, alpha) for v, us in by_variant.items()}
    for v, est in overall_est.items():
        report["variants"][v]["metrics"] = {
            name: {"value": est[name].value, "ci": est[name].ci} for name in METRIC_NAMES}

    treatments = sorted(v for v in by_variant if v != control)
    comparisons = []
    overall_families = {name: [] for name in METRIC_NAMES}
    segment_family = []
    if control in by_variant:
        for name in METRIC_NAMES:
            for v in treatments:
                c = {"metric": name, "variant": v, "segment": None,
                     **compare(overall_est[v][name], overall_est[control][name], alpha)}
                comparisons.append(c)
                overall_families[name].append(c)
        for (dim, value) in sorted(by_segment):
            cell = by_segment[(dim, value)]
            if control not in cell:
                continue  # a group with no user: skipped
            est_c = estimates(cell[control], alpha)
            for v in treatments:
                if v not in cell:
                    continue
                est_t = estimates(cell[v], alpha)
                for name in METRIC_NAMES:
                    c = {"metric": name, "variant": v, "segment": f"{dim}={value}",
                         **compare(est_t[name], est_c[name], alpha)}
                    comparisons.append(c)
                    segment_family.append(c)
    gc.freeze()  # statsmodels' holm calls gc.collect(); frozen objects make that cheap
    try:
        for family in overall_families.values():
            correct(family, method, alpha)  # one family per metric across treatments
        correct(segment_family, method, alpha)  # one family of all segment comparisons
    finally:
        gc.unfreeze()

    report["comparisons"] = [{k: c[k] for k in COMPARISON_KEYS} for c in comparisons]
    srm_result = srm(report["variants"], cfg.get("expected_split"),
                     float(cfg.get("srm_p_threshold", 0.001)))
    report["data_quality"]["srm"] = srm_result
    report["diagnosis"] = {"verdict": verdict(report["comparisons"], srm_result,
                                              report["data_quality"]["leaked_users"], len(users),
                                              cfg)}
    return report
