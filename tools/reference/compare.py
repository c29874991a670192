#!/usr/bin/env python3
"""Compare the Funnel binary's counts with the reference implementation on generated logs.

    python3 compare.py --funnel PATH_TO_FUNNEL_BINARY --seeds 1-50 [--csv] [--users N] [--stats]
                       [--rounds]

For each seed: generate a log (gen_logs.py; every third seed gzip-compressed), then for each of a
few configs run the reference (in-process) and
    FUNNEL report --events LOG --format json --output OUT.json [--config CFG]
and compare every count of the contract exactly (revenue to 1e-9 relative).  Keys of the Swift
report that the reference does not produce (metrics, srm, ctr, comparisons, ...) are ignored.
Segment and position cells missing on one side are read as all zeros.  When the reference stops
with an error (experiment: null with two experiments), the binary must fail too.
Ends with `compare: N passed, M failed` (per seed) and exits 1 if any failed.

With --rounds, each seed and config also runs
    FUNNEL export-training --events LOG --out ROUNDS.csv [--config CFG]
and compares its rows with the reference's rounds (funnel_reference.rounds, DESIGN §7 "Rounds for
off-policy evaluation and position bias"): the header exactly (click,user_id,ts,item_id,position,
surface, one context.<key> column per context key seen on rounds sorted by name,
user_impressions_before,user_clicks_before); then per user the sorted list of tuples (ts, item_id,
position, surface, click, user_impressions_before, user_clicks_before, context cells...) exactly,
cells compared as written (%, comma, quote, CR and LF escaped as %25 %2C %22 %0D %0A); then that a
user's rows are together and in (ts, input order).  When the reference has no rounds, a non-zero
exit agrees; a zero exit must write only the header.  The logs then also hold gen_logs' text-edge
user (cells that need every escape, two rounds at one ts, a re-shown item clicked on its second
showing, context keys only on a non-viewable impression or a duplicate line).

With --stats, the statistics of DESIGN §4/§5/§7 are compared too (stats_reference.py; needs
numpy, scipy, statsmodels): every variant's metrics {value, ci}, every comparison field matched
by (metric, variant, segment) with missing and extra comparisons reported, data_quality.srm and
diagnosis.verdict.  Numbers agree to 1e-9 relative (1e-12 absolute near zero), null only with
null, booleans and strings exactly.  Logs then default to 400 users (enough per variant and
segment value for the statistics to be defined), even seeds are generated with a 1 % leak rate
(so the verdict is not always `inconclusive` on leaks), and more configs run (STATS_CONFIGS).
"""

import argparse
import gzip
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import funnel_reference as ref  # noqa: E402
import gen_logs  # noqa: E402

stats_ref = None  # stats_reference, imported by main() only with --stats

COUNT_KEYS = ref.COUNT_KEYS
FLOAT_KEYS = {"revenue", "order_revenue"}
DQ_KEYS = ["events_read", "duplicate_events", "bot_users", "non_viewable_impressions",
           "collapsed_impressions", "orphan_clicks", "late_clicks", "unattributed_conversions",
           "leaked_users", "variant_mismatches", "non_viewable_clicks", "duplicate_clicks"]

# Configs each seed runs under.  None = no --config (all defaults, experiment auto-detected).
CONFIGS = {
    "default": None,
    "view_through": {
        "click_attribution": {"view_through": True, "view_through_window_hours": 48,
                              "dedup_clicks": False, "conversion_window_hours": 1},
        "ab_testing": {"experiment": "recs-v2"},
    },
    "no_bots_short": {
        "impression_tracking": {"bot_filter": False, "dedup_window_seconds": 600,
                                "viewability_threshold": 0.7, "viewability_duration_ms": 2000},
        "click_attribution": {"click_window_seconds": 60, "clock_skew_seconds": 0},
        "ab_testing": {"experiment": "recs-v2", "control": "treatment"},
    },
    "strict_bots": {
        "impression_tracking": {"bot_max_clicks_per_minute": 5, "dedup_window_seconds": 0},
        "click_attribution": {"clock_skew_seconds": 10, "click_window_seconds": 3600,
                              "conversion_window_hours": 48, "view_through": True},
        "ab_testing": {"experiment": "recs-v2"},
    },
}


# Extra configs under --stats: the corrections, alpha, expected_split, SRM threshold, metrics.
STATS_CONFIGS = {
    "stats_bh": {  # the treatment's higher CTR is usually a `ship` on low-leak (even) seeds
        "ab_testing": {"experiment": "recs-v2", "correction": "benjamini_hochberg",
                       "significance_level": 0.1, "srm_p_threshold": 0.01,
                       "primary_metric": "ctr", "guardrail_metrics": []},
    },
    "stats_bonferroni": {  # uneven expected split, a listed variant that may have no users
        "click_attribution": {"view_through": True},
        "ab_testing": {"experiment": "recs-v2", "correction": "bonferroni",
                       "significance_level": 0.01, "primary_metric": "revenue_per_user",
                       "guardrail_metrics": [],
                       "expected_split": {"control": 2, "treatment": 1, "treatment_b": 1}},
    },
    "stats_none": {  # another control; an observed variant missing from expected_split
        "ab_testing": {"experiment": "recs-v2", "correction": "none", "control": "treatment",
                       "expected_split": {"control": 0.5, "treatment": 0.5},
                       "primary_metric": "user_conversion_rate",
                       "guardrail_metrics": ["aov", "ctr", "cart_rate"]},
    },
}


def parse_seeds(text):
    seeds = []
    for part in text.split(","):
        if "-" in part.strip()[1:]:
            lo, hi = part.split("-", 1)
            seeds.extend(range(int(lo), int(hi) + 1))
        else:
            seeds.append(int(part))
    return seeds


# ------------------------------------------------------------------------------ comparison
def same_number(key, a, b):
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) \
            or not isinstance(b, (int, float)):
        return False
    if key in FLOAT_KEYS:
        return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b)) or (
            abs(a) < 1e-12 and abs(b) < 1e-12)
    return a == b and (not isinstance(b, float) or b.is_integer())


def compare_reports(expected, got):
    """Returns a list of (path, reference value, funnel value) differences."""
    diffs = []

    def check(path, key, e, g):
        if not same_number(key, e, g):
            diffs.append((path, e, g))

    for key in ("experiment", "control"):
        if expected[key] != got.get(key):
            diffs.append((key, expected[key], got.get(key)))

    # variants: the set of names is a counting fact (users > 0), so compared strictly
    gv = got.get("variants") or {}
    for name in sorted(set(expected["variants"]) | set(gv)):
        ev, fv = expected["variants"].get(name), gv.get(name)
        if ev is None or fv is None:
            diffs.append((f"variants.{name}", "present" if ev else "absent",
                          "present" if fv else "absent"))
            continue
        for k in COUNT_KEYS:
            check(f"variants.{name}.{k}", k, ev[k], fv.get(k))

    edq, gdq = expected["data_quality"], got.get("data_quality") or {}
    for k in DQ_KEYS:
        check(f"data_quality.{k}", k, edq[k], gdq.get(k))
    gq = gdq.get("quarantined") or {}
    for reason in ref.REASONS:  # §7: quarantined always lists all six reasons
        check(f"data_quality.quarantined.{reason}", reason, edq["quarantined"][reason], gq.get(reason))

    zeros = ref.zero_counts()
    es, gs = expected["segments"], got.get("segments") or {}
    for dim in sorted(set(es) | set(gs)):
        for value in sorted(set(es.get(dim, {})) | set(gs.get(dim, {}))):
            ecell, gcell = es.get(dim, {}).get(value, {}), gs.get(dim, {}).get(value, {})
            for name in sorted(set(ecell) | set(gcell)):
                for k in COUNT_KEYS:
                    check(f"segments.{dim}.{value}.{name}.{k}", k,
                          ecell.get(name, zeros)[k], gcell.get(name, zeros).get(k))

    ep, gp = expected["positions"], got.get("positions") or {}
    for name in sorted(set(ep) | set(gp)):
        for pos in sorted(set(ep.get(name, {})) | set(gp.get(name, {})), key=lambda p: (len(p), p)):
            ecell = ep.get(name, {}).get(pos, {"impressions": 0, "clicks": 0})
            gcell = gp.get(name, {}).get(pos, {"impressions": 0, "clicks": 0})
            for k in ("impressions", "clicks"):
                check(f"positions.{name}.{pos}.{k}", k, ecell[k], gcell.get(k))
    return diffs


# ------------------------------------------------------------------------------ statistics
def same_stat(a, b):
    """null only with null; numbers to 1e-9 relative or 1e-12 absolute; booleans are not numbers."""
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool) or not isinstance(a, (int, float)) \
            or not isinstance(b, (int, float)):
        return False
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def same_interval(a, b):
    if a is None or b is None:
        return a is None and b is None
    return (isinstance(b, list) and len(b) == 2 and isinstance(a, list)
            and all(same_stat(x, y) for x, y in zip(a, b)))


def compare_stats(expected, got):
    """Differences in the statistics (--stats): a list of (path, reference value, funnel value)."""
    diffs = []
    gv = got.get("variants") or {}
    for name, ev in sorted(expected["variants"].items()):
        fv = gv.get(name)
        if not isinstance(fv, dict):
            continue  # already reported by compare_reports
        gm = fv.get("metrics") if isinstance(fv.get("metrics"), dict) else {}
        for metric in stats_ref.METRIC_NAMES:
            e = ev["metrics"][metric]
            g = gm.get(metric)
            path = f"variants.{name}.metrics.{metric}"
            if not isinstance(g, dict):
                diffs.append((path, e, g))
                continue
            if not same_stat(e["value"], g.get("value", "absent")):
                diffs.append((path + ".value", e["value"], g.get("value", "absent")))
            if not same_interval(e["ci"], g.get("ci", "absent")):
                diffs.append((path + ".ci", e["ci"], g.get("ci", "absent")))

    def key_of(c):
        return (c.get("metric"), c.get("variant"), c.get("segment"))

    def label(k):
        return f"comparisons[{k[0]}, {k[1]}, {k[2] if k[2] is not None else 'overall'}]"

    exp = {key_of(c): c for c in expected["comparisons"]}
    got_list = got.get("comparisons")
    got_list = got_list if isinstance(got_list, list) else []
    gotc = {}
    for c in got_list:
        if not isinstance(c, dict):
            diffs.append(("comparisons[?]", "an object", c))
            continue
        k = key_of(c)
        if k in gotc:
            diffs.append((label(k), "once", "repeated"))
        gotc[k] = c
    for k in sorted(set(exp) - set(gotc), key=repr):
        diffs.append((label(k), "present", "missing"))
    for k in sorted(set(gotc) - set(exp), key=repr):
        diffs.append((label(k), "absent", "extra"))
    for k in sorted(set(exp) & set(gotc), key=repr):
        e, g = exp[k], gotc[k]
        for field in ("absolute_diff", "relative_lift", "p_value", "adjusted_p_value"):
            if not same_stat(e[field], g.get(field, "absent")):
                diffs.append((f"{label(k)}.{field}", e[field], g.get(field, "absent")))
        for field in ("ci", "relative_ci"):
            if not same_interval(e[field], g.get(field, "absent")):
                diffs.append((f"{label(k)}.{field}", e[field], g.get(field, "absent")))
        if g.get("significant", "absent") is not e["significant"]:
            diffs.append((f"{label(k)}.significant", e["significant"], g.get("significant", "absent")))

    esrm = expected["data_quality"]["srm"]
    gsrm = (got.get("data_quality") or {}).get("srm")
    gsrm = gsrm if isinstance(gsrm, dict) else {}
    if not same_stat(esrm["p_value"], gsrm.get("p_value", "absent")):
        diffs.append(("data_quality.srm.p_value", esrm["p_value"], gsrm.get("p_value", "absent")))
    if gsrm.get("flag", "absent") is not esrm["flag"]:
        diffs.append(("data_quality.srm.flag", esrm["flag"], gsrm.get("flag", "absent")))
    gdiag = got.get("diagnosis") if isinstance(got.get("diagnosis"), dict) else {}
    if gdiag.get("verdict") != expected["diagnosis"]["verdict"]:
        diffs.append(("diagnosis.verdict", expected["diagnosis"]["verdict"], gdiag.get("verdict")))
    return diffs


def reference_report(log, config_path, with_stats):
    """The reference's report (with the statistics when asked) for one log and config."""
    cfg = ref.load_config(config_path)
    if not with_stats:
        return ref.run(log, cfg)
    users = []
    report = ref.run(log, cfg, users_out=users)
    return stats_ref.add_stats(report, users, cfg)


# ------------------------------------------------------------------------------ rounds
EXPORT_ESCAPES = [("%", "%25"), (",", "%2C"), ('"', "%22"), ("\r", "%0D"), ("\n", "%0A")]
ROUND_FIELDS = ["ts", "item_id", "position", "surface", "click", "user_impressions_before",
                "user_clicks_before"]


def export_cell(value):
    """A cell as export-training writes it: % first, then comma, quote, CR, LF."""
    text = str(value)
    for raw, escaped in EXPORT_ESCAPES:
        text = text.replace(raw, escaped)
    return text


def expected_export(rounds):
    """(header cells, context keys, {user cell: [row tuple in (ts, input order)]}) of the
    reference's rounds, every cell as the export writes it."""
    keys = sorted({k for r in rounds for k in r["context"]})
    header = (["click", "user_id", "ts", "item_id", "position", "surface"]
              + ["context." + export_cell(k) for k in keys]
              + ["user_impressions_before", "user_clicks_before"])
    users = {}
    for r in rounds:  # already in (user_id, ts, input order)
        row = (str(r["ts"]), export_cell(r["item_id"]), str(r["position"]),
               export_cell(r["surface"]), str(r["clicked"]), str(r["user_impressions_before"]),
               str(r["user_clicks_before"]))
        row += tuple(export_cell(r["context"][k]) if k in r["context"] else "" for k in keys)
        users.setdefault(export_cell(r["user_id"]), []).append(row)
    return header, keys, users


def read_export(path, expected_header, keys):
    """Parses export-training's CSV (no quoting: the escapes leave no comma, quote or line break
    in a cell).  Returns (header, {user cell: [row tuples in file order]}, problems)."""
    problems = []
    with open(path, "rb") as f:
        data = f.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        return None, {}, [f"not UTF-8: {err}"]
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the last line's end
    lines = [line[:-1] if line.endswith("\r") else line for line in lines]  # CRLF accepted
    if not lines:
        return None, {}, ["empty file (no header)"]
    header = lines[0].split(",")
    if header != expected_header:
        problems.append(f"header: reference {','.join(expected_header)!r}\n"
                        f"             funnel    {lines[0]!r}")
    col = {name: i for i, name in enumerate(header)}
    missing = [c for c in ["user_id"] + ROUND_FIELDS if c not in col]
    if missing:
        problems.append(f"columns missing: {', '.join(missing)}")
        return header, {}, problems
    wanted = ROUND_FIELDS + ["context." + export_cell(k) for k in keys]
    users, last_user, bad_rows, scattered = {}, None, 0, 0
    for n, line in enumerate(lines[1:], start=2):
        cells = line.split(",")
        if len(cells) != len(header):
            bad_rows += 1
            if bad_rows <= 3:
                problems.append(f"line {n}: {len(cells)} cells for {len(header)} columns: {line[:200]!r}")
            continue
        user = cells[col["user_id"]]
        if user != last_user:
            if user in users:
                scattered += 1
                if scattered <= 3:
                    problems.append(f"line {n}: user {user!r}'s rows are not together")
            last_user = user
        users.setdefault(user, []).append(
            tuple(cells[col[c]] if c in col else "<no column>" for c in wanted))
    if bad_rows > 3:
        problems.append(f"... {bad_rows - 3} more rows with the wrong number of cells")
    if scattered > 3:
        problems.append(f"... {scattered - 3} more breaks in users' runs of rows")
    return header, users, problems


def compare_rounds(rounds, out_path, max_diffs):
    """Differences between the reference's rounds and export-training's CSV: a list of lines."""
    header, keys, expected = expected_export(rounds)
    got_header, got, problems = read_export(out_path, header, keys)
    diffs = list(problems)
    legend = "(" + ", ".join(ROUND_FIELDS + ["context." + export_cell(k) for k in keys]) + ")"
    shown = 0
    for user in sorted(set(expected) | set(got)):
        e, g = expected.get(user, []), got.get(user, [])
        es, gs = sorted(e), sorted(g)
        if es == gs:
            if e != g:  # same rows, another order within the user: (ts, input order) broken
                i = next(k for k in range(len(e)) if e[k] != g[k])
                diffs.append(f"user {user!r}: rows not in (ts, input order); row {i + 1} of "
                             f"{len(e)}:\n        reference {e[i]}\n        funnel    {g[i]}")
            continue
        shown += 1
        if shown > max_diffs:
            continue
        i = next((k for k in range(min(len(es), len(gs))) if es[k] != gs[k]), min(len(es), len(gs)))
        diffs.append(f"user {user!r}: {len(e)} reference rounds, {len(g)} funnel rows; first "
                     f"difference (sorted row {i + 1}):\n"
                     f"        reference {es[i] if i < len(es) else '(none)'}\n"
                     f"        funnel    {gs[i] if i < len(gs) else '(none)'}")
    if shown > max_diffs:
        diffs.append(f"... {shown - max_diffs} more users differ")
    if len(diffs) > len(problems):
        diffs.insert(len(problems), f"tuples: {legend}")
    return diffs


def run_export(funnel, log, config_path, out_path, timeout):
    cmd = [funnel, "export-training", "--events", log, "--out", out_path]
    if config_path:
        cmd += ["--config", config_path]
    return run_command(cmd, timeout)


def check_rounds(args, log, config_path, name, workdir):
    """The failure message for one seed's config under --rounds, or None when it agrees."""
    rounds = ref.rounds(log, config_path)
    out_path = os.path.join(workdir, f"rounds-{name}.csv")
    cmd, code, stderr = run_export(args.funnel, log, config_path, out_path, args.timeout)
    where = f"config {name} (rounds)\n    repro: {' '.join(cmd)}"
    hint = (f"    rounds: python3 {os.path.join(HERE, 'funnel_reference.py')} --events {log}"
            + (f" --config {config_path}" if config_path else "") + " --rounds")
    if code != 0:
        if not rounds and code is not None:
            return None  # no rounds: failing with a message agrees
        return f"{where}\n    export-training exit status {code}: {stderr.strip()[-600:]}\n{hint}"
    if not os.path.isfile(out_path):
        return f"{where}\n    export-training exited 0 but wrote no {out_path}"
    diffs = compare_rounds(rounds, out_path, args.max_diffs)
    if not diffs:
        return None
    users = len({r["user_id"] for r in rounds})
    lines = [f"{where}\n    reference: {len(rounds)} rounds of {users} users; differences, "
             "reference vs funnel:"]
    lines += ["    " + d for d in diffs]
    lines.append(hint)
    return "\n".join(lines)


# ------------------------------------------------------------------------------ one seed
def run_funnel(funnel, log, config_path, out_path, timeout):
    cmd = [funnel, "report", "--events", log, "--format", "json", "--output", out_path]
    if config_path:
        cmd += ["--config", config_path]
    return run_command(cmd, timeout)


def run_command(cmd, timeout):
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return cmd, None, f"timed out after {timeout} s"
    except OSError as err:
        return cmd, None, f"could not run: {err}"
    return cmd, proc.returncode, (proc.stderr or "")[-2000:]


def run_seed(args, seed, workdir):
    """Returns a list of failure messages for this seed (empty = passed)."""
    failures = []
    suffix = ".csv" if args.csv else ".jsonl"
    if seed % 3 == 0:
        suffix += ".gz"
    log = os.path.join(workdir, f"seed{seed}{suffix}")
    leak_rate = 0.01 if args.stats and seed % 2 == 0 else None
    data, _ = gen_logs.generate(seed, args.users, args.csv, leak_rate, text_edges=args.rounds)
    with open(log, "wb") as f:
        f.write(gzip.compress(data, mtime=0) if suffix.endswith(".gz") else data)

    configs = dict(CONFIGS, **(STATS_CONFIGS if args.stats else {}))
    for name, config in configs.items():
        config_path = None
        if config is not None:
            config_path = os.path.join(workdir, f"{name}.yaml")
            with open(config_path, "w") as f:
                yaml.safe_dump(config, f, sort_keys=False)
        if args.rounds:
            failure = check_rounds(args, log, config_path, name, workdir)
            if failure:
                failures.append(f"seed {seed} {failure}")
        out_path = os.path.join(workdir, f"out-{name}.json")
        try:
            expected, ref_error = reference_report(log, config_path, args.stats), None
        except ref.FunnelError as err:
            expected, ref_error = None, str(err)
        cmd, code, stderr = run_funnel(args.funnel, log, config_path, out_path, args.timeout)
        where = f"seed {seed} config {name}\n    repro: {' '.join(cmd)}"
        if ref_error is not None:
            if code == 0:
                failures.append(f"{where}\n    reference stops ({ref_error}) but funnel exited 0")
            continue
        if code != 0:
            failures.append(f"{where}\n    funnel exit status {code}: {stderr.strip()[-600:]}")
            continue
        try:
            with open(out_path) as f:
                got = json.load(f)
        except (OSError, ValueError) as err:
            failures.append(f"{where}\n    cannot read funnel output {out_path}: {err}")
            continue
        diffs = compare_reports(expected, got)
        if args.stats:
            diffs += compare_stats(expected, got)
        if diffs:
            lines = [f"{where}\n    {len(diffs)} difference(s); path: reference vs funnel"]
            for path, e, g in diffs[: args.max_diffs]:
                lines.append(f"    {path}: {e!r} vs {g!r}")
            if len(diffs) > args.max_diffs:
                lines.append(f"    ... {len(diffs) - args.max_diffs} more")
            lines.append(f"    decisions: python3 {os.path.join(HERE, 'funnel_reference.py')} --events {log}"
                         + (f" --config {config_path}" if config_path else "")
                         + (" --stats" if args.stats else "")
                         + f" --trace {os.path.join(workdir, 'trace-' + name + '.jsonl')}")
            failures.append("\n".join(lines))
    return failures


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--funnel", required=True, help="path to the funnel executable")
    ap.add_argument("--seeds", default="1-50", help="e.g. 1-50 or 1,4,9-12")
    ap.add_argument("--csv", action="store_true", help="generate CSV logs instead of JSON Lines")
    ap.add_argument("--users", type=int, help="users per log (default 40, or 400 with --stats)")
    ap.add_argument("--stats", action="store_true",
                    help="also compare metrics, comparisons, srm and verdict (needs scipy, statsmodels)")
    ap.add_argument("--rounds", action="store_true",
                    help="also compare `funnel export-training` rows with the reference's rounds")
    ap.add_argument("--max-diffs", type=int, default=12, help="differences shown per seed/config")
    ap.add_argument("--timeout", type=float, default=300)
    ap.add_argument("--workdir", help="where each seed's log, configs and outputs are written; "
                    "a seed's directory is removed when it passes and kept when it fails",
                    default=os.path.join(tempfile.gettempdir(), "funnel-compare"))
    args = ap.parse_args(argv)
    if args.users is None:
        args.users = 400 if args.stats else 40
    if args.stats:
        global stats_ref
        import stats_reference as stats_ref  # numpy, scipy, statsmodels: only for --stats
    if not (os.path.isfile(args.funnel) and os.access(args.funnel, os.X_OK)):
        print(f"compare: --funnel {args.funnel} is not an executable file; build it first "
              f"(e.g. swift build -c release, then .build/release/funnel)", file=sys.stderr)
        return 2

    passed = failed = 0
    for seed in parse_seeds(args.seeds):
        workdir = os.path.join(args.workdir, f"seed{seed}{'-csv' if args.csv else ''}")
        shutil.rmtree(workdir, ignore_errors=True)
        os.makedirs(workdir)
        failures = run_seed(args, seed, workdir)
        if failures:
            failed += 1
            print(f"seed {seed}: FAIL (log, configs and outputs kept in {workdir})")
            for msg in failures:
                print("  " + msg.replace("\n", "\n  "))
        else:
            passed += 1
            print(f"seed {seed}: ok")
            shutil.rmtree(workdir, ignore_errors=True)
        sys.stdout.flush()
    print(f"compare: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
