#!/usr/bin/env python3
"""Hand-worked checks of the reference implementation.

Run with `python3 -m pytest tools/reference` or `python3 tools/reference/test_reference.py`.
Each test is a tiny log whose expected counts are worked out by hand in the comments.
T is 2026-03-01T12:00:00Z; times are written as T + milliseconds.
"""

import json
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import funnel_reference as ref  # noqa: E402
import gen_logs  # noqa: E402

T = 1_772_366_400_000
S, MIN, H = 1000, 60_000, 3_600_000


# ---------------------------------------------------------------- tiny event builders
def exposure(eid, user, ts, variant="control", **kw):
    return {"type": "exposure", "event_id": eid, "ts": ts, "user_id": user,
            "experiment": "recs-v2", "variant": variant, **kw}


def impression(eid, user, ts, item, position=1, **kw):
    return {"type": "impression", "event_id": eid, "ts": ts, "user_id": user, "item_id": item,
            "position": position, **kw}


def click(eid, user, ts, imp_id, **kw):
    return {"type": "click", "event_id": eid, "ts": ts, "user_id": user, "impression_id": imp_id, **kw}


def cart(eid, user, ts, item, **kw):
    return {"type": "add_to_cart", "event_id": eid, "ts": ts, "user_id": user, "item_id": item, **kw}


def purchase(eid, user, ts, order, lines, **kw):
    return {"type": "purchase", "event_id": eid, "ts": ts, "user_id": user, "order_id": order,
            "items": [{"item_id": i, "quantity": q, "price": p} for i, q, p in lines], **kw}


def run(lines, suffix=".jsonl", **settings):
    """Writes the lines (dicts or raw bytes/str) to a temp file and returns the reference report."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "events" + suffix)
        with open(path, "wb") as f:
            for line in lines:
                if isinstance(line, dict):
                    line = json.dumps(line)
                if isinstance(line, str):
                    line = line.encode("utf-8")
                f.write(line + b"\n")
        cfg = ref.load_config(None)
        for key, value in settings.items():
            assert key in cfg, key
            cfg[key] = value
        return ref.run(path, cfg)


def reason_of(line):
    """The quarantine reason of a single JSON line, or None when it is valid."""
    report = run([line, exposure("anchor", "anchor", T)])
    reasons = [r for r, n in report["data_quality"]["quarantined"].items() if n]
    return reasons[0] if reasons else None


class CountingRules(unittest.TestCase):

    def test_click_window_upper_bound(self):
        # u1 exposed at T.  Impressions of items a, b, c at T+1s.
        # Click on a at +1800 s exactly: in window (inclusive) -> counts.
        # Click on b at +1801 s, click on c at +1800.001 s: outside -> late_clicks = 2.
        rep = run([
            exposure("x1", "u1", T),
            impression("ia", "u1", T + S, "a"), impression("ib", "u1", T + S, "b"),
            impression("ic", "u1", T + S, "c"),
            click("ca", "u1", T + S + 1_800_000, "ia"),
            click("cb", "u1", T + S + 1_801_000, "ib"),
            click("cc", "u1", T + S + 1_800_001, "ic"),
        ])
        v = rep["variants"]["control"]
        self.assertEqual((v["impressions"], v["clicks"]), (3, 1))
        self.assertEqual(rep["data_quality"]["late_clicks"], 2)

    def test_click_clock_skew_lower_bound(self):
        # Impressions at T+10 s.  Click on a at T+5 s (−5 s exactly): counts.
        # Click on b at T+4 s (−6 s) and on c at T+4.999 s (−5.001 s): late -> 2.
        rep = run([
            exposure("x1", "u1", T),
            impression("ia", "u1", T + 10 * S, "a"), impression("ib", "u1", T + 10 * S, "b"),
            impression("ic", "u1", T + 10 * S, "c"),
            click("ca", "u1", T + 5 * S, "ia"),
            click("cb", "u1", T + 4 * S, "ib"),
            click("cc", "u1", T + 4999, "ic"),
        ])
        self.assertEqual(rep["variants"]["control"]["clicks"], 1)
        self.assertEqual(rep["data_quality"]["late_clicks"], 2)

    def test_impression_dedup_window_edges(self):
        # Same (user, item a, surface default): i1 at T opens [T, T+3600 s].
        # i2 at +3599 s and i3 at +3600 s collapse into i1; i4 at +3601 s is kept and opens
        # [T+3601 s, T+7201 s]; i5 at +7200 s collapses into i4 (the window is the kept one's,
        # not sliding).  i6: same item on surface "search" -> its own group, kept.
        # Kept: i1, i4, i6 -> impressions 3; collapsed 3.
        # Clicks: on i2 at i2+10 s and on i3 at i3+1800 s (window from i3's own ts: in) both
        # attach to i1; with dedup_clicks the earliest (the one on i2) counts, the other is a
        # duplicate_click.  Without dedup_clicks both count.
        lines = [
            exposure("x1", "u1", T),
            impression("i1", "u1", T, "a"),
            impression("i2", "u1", T + 3_599_000, "a"),
            impression("i3", "u1", T + 3_600_000, "a"),
            impression("i4", "u1", T + 3_601_000, "a"),
            impression("i5", "u1", T + 7_200_000, "a"),
            impression("i6", "u1", T + 3_600_000, "a", surface="search"),
            click("c2", "u1", T + 3_609_000, "i2"),
            click("c3", "u1", T + 3_600_000 + 1_800_000, "i3"),
        ]
        rep = run(lines)
        v, dq = rep["variants"]["control"], rep["data_quality"]
        self.assertEqual((v["impressions"], v["clicks"]), (3, 1))
        self.assertEqual((dq["collapsed_impressions"], dq["duplicate_clicks"]), (3, 1))
        rep = run(lines, dedup_clicks=False)
        self.assertEqual(rep["variants"]["control"]["clicks"], 2)
        self.assertEqual(rep["data_quality"]["duplicate_clicks"], 0)

    def test_collapsed_impression_attributes_ignored(self):
        # i2 collapses into i1; its variant "treatment" (user is control) is ignored, so it is
        # not a mismatch; its position 7 is ignored (positions only has "1").
        rep = run([exposure("x1", "u1", T), impression("i1", "u1", T + 1, "a"),
                   impression("i2", "u1", T + 2, "a", position=7, variant="treatment")])
        self.assertEqual(rep["data_quality"]["variant_mismatches"], 0)
        self.assertEqual(rep["positions"], {"control": {"1": {"impressions": 1, "clicks": 0}}})

    def test_bot_click_rate_20_is_not_21_is(self):
        # b20: 20 clicks from T+100 s to T+160 s (first..last = 60 000 ms): not more than 20 -> human.
        # b21: 21 clicks spanning exactly 60 000 ms (window inclusive) -> bot.
        # b21w: 21 clicks spanning 60 001 ms -> any 21 of them span > 60 s -> human.
        # b20d: 20 clicks + a duplicate line of one of them: duplicates are dropped first -> human.
        # flag: bot: true on a click -> bot.  notflag: bot: true only on a duplicate line and on a
        # quarantined line -> human.
        # bot_users = 2.  Humans b20, b20d, b21w, notflag are users (4).  Each of b20, b20d, b21w
        # clicks one impression many times in its window: 1 counted click each, the others are
        # duplicate_clicks: 19 + 19 + 20 = 58.
        lines = []
        for user, n, span in (("b20", 20, 60_000), ("b21", 21, 60_000), ("b21w", 21, 60_001),
                              ("b20d", 20, 60_000)):
            lines += [exposure("x" + user, user, T), impression("i" + user, user, T + 99 * S, "a")]
            for k in range(n):
                ts = T + 100 * S + (span if k == n - 1 else k * 1000)
                lines.append(click(f"c{user}{k}", user, ts, "i" + user))
        lines.append(click("cb20d0", "b20d", T + 100 * S, "ib20d"))  # duplicate line
        lines += [exposure("xflag", "flag", T), impression("iflag", "flag", T + 1, "a"),
                  click("cflag", "flag", T + 2, "iflag", bot=True)]
        lines += [exposure("xnot", "notflag", T), impression("inot", "notflag", T + 1, "a"),
                  dict(impression("inot", "notflag", T + 1, "a"), bot=True),  # duplicate line
                  dict(click("cq", "notflag", T + 2, "inot", bot=True), ts="not a time")]  # quarantined
        rep = run(lines)
        dq = rep["data_quality"]
        self.assertEqual(dq["bot_users"], 2)
        self.assertEqual(rep["variants"]["control"]["users"], 4)
        self.assertEqual(dq["duplicate_clicks"], 58)
        self.assertEqual(dq["quarantined"]["invalid_timestamp"], 1)

    def test_bot_filter_off(self):
        rep = run([exposure("x1", "u1", T, bot=True)], bot_filter=False)
        self.assertEqual(rep["data_quality"]["bot_users"], 0)
        self.assertEqual(rep["variants"]["control"]["users"], 1)

    def test_conversion_window_24h_inclusive(self):
        # a: clicked at T+2 s; cart at exactly +24 h -> attributed (carts 1).
        # b: clicked at T+2 s; cart at +24 h + 1 ms -> unattributed.
        # a: a cart 1 ms before the click -> unattributed (the click must be ≤ t).  -> 2 unattributed.
        rep = run([
            exposure("x1", "u1", T),
            impression("ia", "u1", T + S, "a"), impression("ib", "u1", T + S, "b"),
            click("ca", "u1", T + 2 * S, "ia"), click("cb", "u1", T + 2 * S, "ib"),
            cart("k1", "u1", T + 2 * S + 24 * H, "a"),
            cart("k2", "u1", T + 2 * S + 24 * H + 1, "b"),
            cart("k3", "u1", T + 2 * S - 1, "a"),
        ])
        self.assertEqual(rep["variants"]["control"]["carts"], 1)
        self.assertEqual(rep["data_quality"]["unattributed_conversions"], 2)

    def test_multi_line_purchase(self):
        # Order o1 at T+1 h: a ×2 @ 3.5 (a clicked) -> attributed, revenue 7.0;
        # z ×1 @ 10 (never shown) -> unattributed.  order_revenue = 7 + 10 = 17, orders 1.
        rep = run([
            exposure("x1", "u1", T), impression("ia", "u1", T + S, "a"),
            click("ca", "u1", T + 2 * S, "ia"),
            purchase("p1", "u1", T + H, "o1", [("a", 2, 3.5), ("z", 1, 10)]),
        ])
        v = rep["variants"]["control"]
        self.assertEqual((v["purchases"], v["revenue"], v["orders"], v["order_revenue"]),
                         (1, 7.0, 1, 17.0))
        self.assertEqual(v["converting_users"], 1)
        self.assertEqual(rep["data_quality"]["unattributed_conversions"], 1)

    def test_view_through_on_off(self):
        # a: shown at T+1 s, never clicked; purchase a ×2 @ 5.0 at T+2 h.
        #   off: unattributed (1), purchases 0, revenue 0; orders 1, order_revenue 10 regardless.
        #   on (168 h window): attributed to ia -> purchases 1, revenue 10.
        #   on with a 1 h window: 2 h is outside -> unattributed again.
        # b: ib1 clicked at T+2 s, ib2 shown later at T+3 s (a mismatch: variant treatment).
        #   Cart b at T+4 s: a click candidate exists (ib1), so view-through is never consulted
        #   -> carts 1 in every setting (view-through would pick ib2 and lose it).
        lines = [
            exposure("x1", "u1", T),
            impression("ia", "u1", T + S, "a"),
            impression("ib1", "u1", T + S, "b"), click("cb1", "u1", T + 2 * S, "ib1"),
            impression("ib2", "u1", T + 3 * S, "b", variant="treatment"),
            cart("k1", "u1", T + 4 * S, "b"),
            purchase("p1", "u1", T + 2 * H, "o1", [("a", 2, 5.0)]),
        ]
        off = run(lines)
        on = run(lines, view_through=True)
        short = run(lines, view_through=True, view_through_window_hours=1)
        for rep, purchases, revenue, unattributed in ((off, 0, 0.0, 1), (on, 1, 10.0, 0),
                                                      (short, 0, 0.0, 1)):
            v = rep["variants"]["control"]
            self.assertEqual((v["purchases"], v["revenue"], v["carts"]), (purchases, revenue, 1))
            self.assertEqual((v["orders"], v["order_revenue"]), (1, 10.0))
            self.assertEqual(rep["data_quality"]["unattributed_conversions"], unattributed)

    def test_leaked_user(self):
        # u1 exposed to control then treatment -> leaked, out of the analysis entirely
        # (its impression is not counted, no "treatment" variant appears).  Rules 3–6 still ran
        # over u1: its click on an unknown impression is an orphan.  u2: control, 0 impressions.
        rep = run([
            exposure("x1", "u1", T), exposure("x2", "u1", T + H, "treatment"),
            impression("i1", "u1", T + S, "a"), click("c1", "u1", T + 2 * S, "nope"),
            exposure("x3", "u2", T),
        ])
        self.assertEqual(rep["data_quality"]["leaked_users"], 1)
        self.assertEqual(rep["data_quality"]["orphan_clicks"], 1)
        self.assertEqual(list(rep["variants"]), ["control"])
        self.assertEqual((rep["variants"]["control"]["users"],
                          rep["variants"]["control"]["impressions"]), (1, 0))

    def test_variant_mismatch(self):
        # u1 assigned control at T.  After T:
        #   m1 variant treatment, no experiment      -> mismatch
        #   m2 variant treatment, experiment recs-v2 -> mismatch
        #   m3 variant treatment, experiment search-v1 (another test) -> counted
        #   m4 variant control -> counted;  m5 no variant -> counted
        #   m6 variant treatment at T−1 (before exposure) -> neither counted nor a mismatch
        # Item g: g1 (fine) clicked at T+10 s, g2 (variant treatment) clicked at T+20 s; cart g at
        # T+30 s goes to the last click, g2, which is then excluded: carts 0 and the cart is not
        # re-attributed to g1 (and not unattributed either).
        rep = run([
            exposure("x1", "u1", T),
            impression("m1", "u1", T + S, "a", variant="treatment"),
            impression("m2", "u1", T + S, "b", variant="treatment", experiment="recs-v2"),
            impression("m3", "u1", T + S, "c", variant="treatment", experiment="search-v1"),
            impression("m4", "u1", T + S, "d", variant="control"),
            impression("m5", "u1", T + S, "e"),
            impression("m6", "u1", T - 1, "f", variant="treatment"),
            impression("g1", "u1", T + 5 * S, "g"), click("cg1", "u1", T + 10 * S, "g1"),
            impression("g2", "u1", T + 6 * S, "g", variant="treatment", surface="search"),
            click("cg2", "u1", T + 20 * S, "g2"),
            cart("k1", "u1", T + 30 * S, "g"),
        ])
        v, dq = rep["variants"]["control"], rep["data_quality"]
        self.assertEqual(dq["variant_mismatches"], 3)  # m1, m2, g2
        self.assertEqual((v["impressions"], v["clicks"], v["carts"]), (4, 1, 0))  # m3 m4 m5 g1
        self.assertEqual(dq["unattributed_conversions"], 0)

    def test_event_at_exposure_instant_is_included(self):
        # Exposure at T.  Impression at T (ts ≥ exposure) counts; impression at T−1 does not,
        # nor does its click at T+5 s (clicks go with their impression).
        # Purchase at T counts for orders/order_revenue (o1, 4.0); purchase at T−1 (o0) does not.
        rep = run([
            exposure("x1", "u1", T),
            impression("i1", "u1", T, "a"), impression("i0", "u1", T - 1, "b"),
            click("c0", "u1", T + 5 * S, "i0"),
            purchase("p1", "u1", T, "o1", [("q", 1, 4.0)]),
            purchase("p0", "u1", T - 1, "o0", [("q", 1, 100.0)]),
        ])
        v = rep["variants"]["control"]
        self.assertEqual((v["impressions"], v["clicks"]), (1, 0))
        self.assertEqual((v["orders"], v["order_revenue"], v["converting_users"]), (1, 4.0, 1))

    def test_first_exposure_context_defines_segment(self):
        # u1's earliest exposure (T−5 min, written second) has device tablet; the later one mobile.
        rep = run([
            exposure("x1", "u1", T, context={"device": "mobile"}),
            exposure("x2", "u1", T - 5 * MIN, context={"device": "tablet", "user_type": "new"}),
            impression("i1", "u1", T - MIN, "a"),
        ])
        self.assertEqual(set(rep["segments"]["device"]), {"tablet"})
        self.assertEqual(rep["segments"]["device"]["tablet"]["control"]["impressions"], 1)
        self.assertEqual(rep["segments"]["user_type"]["new"]["control"]["users"], 1)

    def test_viewability(self):
        # ia (0.5, 1000): on both thresholds -> viewable.  ib (0.49, 5000) and ic (0.9, 999):
        # non-viewable.  id has only viewable_fraction 0.1 -> counts.  A click on ib is a
        # non_viewable_click only.  Cart b: ib is never a candidate -> unattributed.
        rep = run([
            exposure("x1", "u1", T),
            impression("ia", "u1", T + 1, "a", viewable_fraction=0.5, viewable_ms=1000),
            impression("ib", "u1", T + 1, "b", viewable_fraction=0.49, viewable_ms=5000),
            impression("ic", "u1", T + 1, "c", viewable_fraction=0.9, viewable_ms=999),
            impression("id", "u1", T + 1, "d", viewable_fraction=0.1),
            click("cb", "u1", T + 2, "ib"), cart("k", "u1", T + 3, "b"),
        ])
        dq = rep["data_quality"]
        self.assertEqual(rep["variants"]["control"]["impressions"], 2)
        self.assertEqual((dq["non_viewable_impressions"], dq["non_viewable_clicks"],
                          dq["orphan_clicks"], dq["unattributed_conversions"]), (2, 1, 0, 1))

    def test_orphans(self):
        # A click naming u2's impression is an orphan for u1, as is an unknown id.
        rep = run([exposure("x1", "u1", T), impression("i2", "u2", T, "a"),
                   click("c1", "u1", T + 1, "i2"), click("c2", "u1", T + 1, "zzz")])
        self.assertEqual(rep["data_quality"]["orphan_clicks"], 2)

    def test_duplicates(self):
        # l1: quarantined (no user_id), id e1: registers no id.  l2: valid impression e1 -> kept.
        # l3: a click reusing e1 -> duplicate (across types).  l4: exact copy of l2 -> duplicate.
        # events_read 4 (+ the exposure line = 5).
        imp = impression("e1", "u1", T, "a")
        bad = dict(imp)
        del bad["user_id"]
        rep = run([exposure("x1", "u1", T), bad, imp, click("e1", "u1", T + 1, "e1"), imp])
        dq = rep["data_quality"]
        self.assertEqual((dq["events_read"], dq["duplicate_events"]), (5, 2))
        self.assertEqual(dq["quarantined"]["missing_field"], 1)
        self.assertEqual(rep["variants"]["control"]["impressions"], 1)

    def test_experiment_null_needs_exactly_one(self):
        with self.assertRaises(ref.FunnelError):
            run([exposure("x1", "u1", T), dict(exposure("x2", "u2", T), experiment="other")])
        rep = run([exposure("x1", "u1", T), dict(exposure("x2", "u2", T), experiment="other")],
                  experiment="other")
        self.assertEqual(rep["variants"]["control"]["users"], 1)


class Rounds(unittest.TestCase):
    """ref.rounds(): DESIGN §7 "Rounds for off-policy evaluation and position bias"."""

    @staticmethod
    def rounds(lines, **settings):
        return ref.rounds(lines, settings)

    @staticmethod
    def brief(rows):
        return [(r["user_id"], r["impression_id"], r["clicked"]) for r in rows]

    def test_reshown_item_within_dedup_window_is_two_rounds(self):
        # i1 and i2: same (user, item a, surface default), 10 min apart: i2 collapses into i1 in the
        # report (1 impression, 1 collapsed) but both are decisions of the logging policy: 2 rounds.
        lines = [exposure("x1", "u1", T), impression("i1", "u1", T + S, "a", position=1),
                 impression("i2", "u1", T + S + 10 * MIN, "a", position=4)]
        rep = run(lines)
        self.assertEqual((rep["variants"]["control"]["impressions"],
                          rep["data_quality"]["collapsed_impressions"]), (1, 1))
        rows = self.rounds(lines)
        self.assertEqual(self.brief(rows), [("u1", "i1", 0), ("u1", "i2", 0)])
        self.assertEqual([r["position"] for r in rows], [1, 4])  # each round keeps its own position

    def test_click_on_reshown_impression_rewards_that_round(self):
        # i2 (re-shown at T+10 min, collapsed into i1 in the report) clicked at T+10 min+30 s:
        # the report gives i1 the click; the rounds give it to i2 and none to i1.
        # i4 (re-shown 20 min after i3, item b) clicked at i4 + 1800 s = i3 + 50 min: inside i4's
        # own window, outside i3's (which would have made it late): i4 rewarded.
        lines = [exposure("x1", "u1", T),
                 impression("i1", "u1", T, "a"), impression("i2", "u1", T + 10 * MIN, "a"),
                 click("c2", "u1", T + 10 * MIN + 30 * S, "i2"),
                 impression("i3", "u1", T, "b"), impression("i4", "u1", T + 20 * MIN, "b"),
                 click("c4", "u1", T + 20 * MIN + 1800 * S, "i4")]
        rep = run(lines)
        self.assertEqual((rep["variants"]["control"]["impressions"],
                          rep["variants"]["control"]["clicks"]), (2, 2))
        rows = {r["impression_id"]: r for r in self.rounds(lines)}
        self.assertEqual({k: r["clicked"] for k, r in rows.items()},
                         {"i1": 0, "i2": 1, "i3": 0, "i4": 1})
        self.assertEqual((rows["i2"]["click_id"], rows["i4"]["click_id"]), ("c2", "c4"))

    def test_click_window_bounds(self):
        # Impressions at T+10 s (default window 1800 s, skew 5 s), one click each at:
        #   a +1800 s -> 1;  b +1801 s -> 0;  c +1800.001 s -> 0
        #   d −5 s    -> 1;  e −6 s    -> 0;  f −5.001 s    -> 0
        offsets = {"a": 1_800_000, "b": 1_801_000, "c": 1_800_001,
                   "d": -5_000, "e": -6_000, "f": -5_001}
        lines = []
        for item, off in offsets.items():
            lines += [impression("i" + item, "u1", T + 10 * S, item),
                      click("c" + item, "u1", T + 10 * S + off, "i" + item)]
        got = {r["item_id"]: r["clicked"] for r in self.rounds(lines)}
        self.assertEqual(got, {"a": 1, "b": 0, "c": 0, "d": 1, "e": 0, "f": 0})
        # Other settings move the bounds: (window 1801 s, skew 6 s), then (1800 s, skew 0).
        got = {r["item_id"]: r["clicked"]
               for r in self.rounds(lines, click_window_seconds=1801, clock_skew_seconds=6)}
        self.assertEqual(got, {"a": 1, "b": 1, "c": 1, "d": 1, "e": 1, "f": 1})
        got = {r["item_id"]: r["clicked"]
               for r in self.rounds(lines, click_window_seconds=1800, clock_skew_seconds=0)}
        self.assertEqual(got, {"a": 1, "b": 0, "c": 0, "d": 0, "e": 0, "f": 0})

    def test_bot_users_give_no_rounds(self):
        # flag: bot: true on an exposure -> bot.  rate: 21 clicks within 60 s on its impression ->
        # bot.  human: one impression -> 1 round.  With bot_filter false all three users have rounds.
        lines = [exposure("xf", "flag", T, bot=True), impression("if", "flag", T + S, "a"),
                 impression("ir", "rate", T + S, "a"), impression("ih", "human", T + S, "a")]
        lines += [click(f"cr{k}", "rate", T + 2 * S + k * 3000, "ir") for k in range(21)]
        self.assertEqual(self.brief(self.rounds(lines)), [("human", "ih", 0)])
        self.assertEqual(self.brief(self.rounds(lines, bot_filter=False)),
                         [("flag", "if", 0), ("human", "ih", 0), ("rate", "ir", 1)])
        self.assertEqual(self.brief(self.rounds(lines, bot_max_clicks_per_minute=21)),
                         [("human", "ih", 0), ("rate", "ir", 1)])

    def test_non_viewable_impression_gives_no_round(self):
        # ia (0.5, 1000): on both thresholds -> a round, clicked.  ib (0.49, 5000) and ic (0.9, 999):
        # no round, their clicks reward nothing.  id (only viewable_fraction 0.1): a round.
        lines = [impression("ia", "u1", T, "a", viewable_fraction=0.5, viewable_ms=1000),
                 impression("ib", "u1", T, "b", viewable_fraction=0.49, viewable_ms=5000),
                 impression("ic", "u1", T, "c", viewable_fraction=0.9, viewable_ms=999),
                 impression("id", "u1", T, "d", viewable_fraction=0.1),
                 click("ca", "u1", T + S, "ia"), click("cb", "u1", T + S, "ib"),
                 click("cc", "u1", T + S, "ic")]
        self.assertEqual(self.brief(self.rounds(lines)), [("u1", "ia", 1), ("u1", "id", 0)])
        # A lower threshold makes ib viewable (and rewarded by its click).
        self.assertEqual(self.brief(self.rounds(lines, viewability_threshold=0.4)),
                         [("u1", "ia", 1), ("u1", "ib", 1), ("u1", "id", 0)])

    def test_duplicate_event_id_is_not_a_second_round(self):
        # i1 written twice (the copy with another position), and a click reusing id "i1": one
        # round.  The click c1 (valid) rewards it; a quarantined line with id "i9" registers no id,
        # so the valid impression i9 after it is a round.
        imp = impression("i1", "u1", T, "a")
        bad = dict(impression("i9", "u1", T, "b"), ts="not a time")
        lines = [imp, dict(imp, position=5), click("i1", "u1", T + S, "i1"),
                 click("c1", "u1", T + 2 * S, "i1"), bad, impression("i9", "u1", T + 1, "b")]
        rows = self.rounds(lines)
        self.assertEqual(self.brief(rows), [("u1", "i1", 1), ("u1", "i9", 0)])
        self.assertEqual((rows[0]["position"], rows[0]["click_id"]), (1, "c1"))

    def test_two_clicks_on_one_impression_give_one_reward(self):
        # c2 (T+20 s) is written before c1 (T+10 s): the earliest by ts is the reward's click; one
        # round with clicked 1, whatever dedup_clicks says.  A tie on ts goes to input order.
        lines = [impression("i1", "u1", T, "a"), click("c2", "u1", T + 20 * S, "i1"),
                 click("c1", "u1", T + 10 * S, "i1"),
                 impression("j1", "u1", T, "b"), click("d2", "u1", T + 5 * S, "j1"),
                 click("d1", "u1", T + 5 * S, "j1")]
        for dedup in (True, False):
            rows = self.rounds(lines, dedup_clicks=dedup)
            self.assertEqual(self.brief(rows), [("u1", "i1", 1), ("u1", "j1", 1)])
            self.assertEqual([(r["click_id"], r["click_ts"]) for r in rows],
                             [("c1", T + 10 * S), ("d2", T + 5 * S)])
            self.assertEqual(rows[1]["user_clicks_before"], 1)

    def test_no_experiment_rules(self):
        # Rounds ignore assignment: an unexposed user, an impression before exposure, a leaked
        # user and a variant mismatch all give rounds; two experiments with experiment: null
        # (an error for the report) are no error here.
        lines = [impression("iu", "unexposed", T, "a"),
                 exposure("x1", "u1", T), impression("ipre", "u1", T - MIN, "a"),
                 impression("imm", "u1", T + S, "b", variant="treatment"),
                 exposure("x2", "leak", T), dict(exposure("x3", "leak", T), variant="treatment"),
                 impression("il", "leak", T + S, "a"),
                 dict(exposure("x4", "other", T), experiment="search-v1")]
        with self.assertRaises(ref.FunnelError):
            run(lines)
        self.assertEqual(self.brief(self.rounds(lines)),
                         [("leak", "il", 0), ("u1", "ipre", 0), ("u1", "imm", 0),
                          ("unexposed", "iu", 0)])

    def test_orphans_and_another_users_impression(self):
        # u2's click names u1's impression i1: orphan, no reward for i1.
        lines = [impression("i1", "u1", T, "a"), click("c1", "u2", T + S, "i1"),
                 click("c2", "u1", T + S, "nope")]
        self.assertEqual(self.brief(self.rounds(lines)), [("u1", "i1", 0)])

    def test_fields_order_and_counters_before(self):
        # u2 before u1 in the file; rows come in user_id order, then (ts, input order).
        # u1: p (T+1 s) clicked; q and r at T+2 s: q first in input order; q clicked; s at T+3 s.
        #   user_impressions_before: 0, 1, 2, 3; user_clicks_before: 0, 1, 2, 2 (r is not clicked).
        # Fields: ts from RFC 3339 (epoch ms), position 3.0 -> 3, surface absent -> "default",
        # context (the impression's own), propensity and request_id.
        lines = [impression("z", "u2", T, "a"),
                 impression("s", "u1", T + 3 * S, "d"),
                 impression("q", "u1", "2026-03-01T13:00:02.000+01:00", "b", position=3.0,
                            context={"device": "mobile", "k,1": "v%"}, propensity=0.25,
                            request_id="rq1"),
                 impression("r", "u1", T + 2 * S, "c", surface="search"),
                 impression("p", "u1", T + S, "a"),
                 click("cq", "u1", T + 9 * S, "q"), click("cp", "u1", T + 9 * S, "p")]
        rows = self.rounds(lines)
        self.assertEqual([r["impression_id"] for r in rows], ["p", "q", "r", "s", "z"])
        self.assertEqual([(r["user_impressions_before"], r["user_clicks_before"], r["clicked"])
                          for r in rows], [(0, 0, 1), (1, 1, 1), (2, 2, 0), (3, 2, 0), (0, 0, 0)])
        q = rows[1]
        self.assertEqual((q["ts"], q["position"], q["surface"], q["context"], q["propensity"],
                          q["request_id"], q["item_id"]),
                         (T + 2 * S, 3, "default", {"device": "mobile", "k,1": "v%"}, 0.25, "rq1",
                          "b"))
        self.assertEqual((rows[2]["surface"], rows[2]["context"], rows[2]["propensity"]),
                         ("search", {}, None))
        self.assertEqual([r["order"] for r in rows], [4, 2, 3, 1, 0])  # input order of each

    def test_log_files_and_configs(self):
        # The same events from a JSON Lines file, a CSV file (context.<key> columns), and the list;
        # the config as a YAML path, a flat dict or a dict by section.
        events = [impression("i1", "u1", T, "a", context={"device": "mobile"}),
                  impression("i2", "u1", T + S, "0042", position=2),
                  click("c1", "u1", T + 1801 * S, "i1")]
        header = "type,event_id,ts,user_id,item_id,position,context.device,impression_id"
        rows = [header, f"impression,i1,{T},u1,a,1,mobile,", f"impression,i2,{T + S},u1,0042,2,,",
                f"click,c1,{T + 1801 * S},u1,,,,i1"]
        with tempfile.TemporaryDirectory() as d:
            jl, cs, cfg = (os.path.join(d, n) for n in ("e.jsonl", "e.csv", "f.yaml"))
            with open(jl, "w") as f:
                f.write("\n".join(json.dumps(e) for e in events) + "\n")
            with open(cs, "w") as f:
                f.write("\n".join(rows) + "\n")
            with open(cfg, "w") as f:
                f.write("click_attribution:\n  click_window_seconds: 1801\n")
            strip = [{k: v for k, v in r.items() if k != "line"} for r in ref.rounds(events)]
            for source in (jl, cs):
                got = [{k: v for k, v in r.items() if k != "line"} for r in ref.rounds(source)]
                self.assertEqual(got, strip, source)
            self.assertEqual([r["clicked"] for r in strip], [0, 0])
            for config in (cfg, {"click_window_seconds": 1801},
                           {"click_attribution": {"click_window_seconds": 1801}}):
                self.assertEqual([r["clicked"] for r in ref.rounds(jl, config)], [1, 0], config)

    def test_cli_rounds(self):
        with tempfile.TemporaryDirectory() as d:
            log = os.path.join(d, "e.jsonl")
            with open(log, "w") as f:
                f.write(json.dumps(impression("i1", "u1", T, "a")) + "\n")
                f.write(json.dumps(click("c1", "u1", T + S, "i1")) + "\n")
            out = subprocess.run([sys.executable, os.path.join(HERE, "funnel_reference.py"),
                                  "--events", log, "--rounds"],
                                 check=True, capture_output=True, text=True).stdout
            rows = [json.loads(line) for line in out.splitlines()]
            self.assertEqual([(r["impression_id"], r["clicked"], r["ts"]) for r in rows],
                             [("i1", 1, T)])


class Validation(unittest.TestCase):
    BASE = impression("v1", "u1", T, "a")

    def variant(self, **changes):
        ev = dict(self.BASE)
        for k, v in changes.items():
            if v is KeyError:
                ev.pop(k, None)
            else:
                ev[k] = v
        return json.dumps(ev)

    def test_reasons(self):
        cases = [
            (self.variant(), None),
            ("{not json", "invalid_json"), ("[1, 2]", "invalid_json"), ("42", "invalid_json"),
            (self.variant(price=float("nan")).replace("NaN", "NaN"), "invalid_json"),
            (self.variant(price="X").replace('"X"', "Infinity"), "invalid_json"),
            (self.variant(price="X").replace('"X"', "1e400"), "invalid_value"),
            (self.variant(price="X").replace('"X"', "9" * 5000), "invalid_value"),
            (self.variant(title="Infinity War NaN"), None),
            (self.variant(type=KeyError), "missing_field"), (self.variant(type=None), "missing_field"),
            (self.variant(type=3), "wrong_type"), (self.variant(type="view"), "unknown_type"),
            (self.variant(type="view", user_id=KeyError), "unknown_type"),
            (self.variant(position=KeyError), "missing_field"),
            (self.variant(user_id=None, position="x"), "missing_field"),
            (self.variant(position=True), "wrong_type"), (self.variant(position=2.5), "wrong_type"),
            (self.variant(position=3.0), None), (self.variant(position=0), "invalid_value"),
            (self.variant(position=2_147_483_647), None),
            (self.variant(position=2_147_483_648), "invalid_value"),
            (self.variant(position="x", ts="bad"), "wrong_type"),
            (self.variant(ts="bad", position=0), "invalid_timestamp"),
            (self.variant(ts=True), "wrong_type"),
            (self.variant(ts=float(T)), None), (self.variant(ts=T + 0.5), "invalid_timestamp"),
            (self.variant(ts=-62_135_596_800_000), None),
            (self.variant(ts=-62_135_596_800_001), "invalid_timestamp"),
            (self.variant(ts=253_402_300_799_999), None),
            (self.variant(ts=253_402_300_800_000), "invalid_timestamp"),
            (self.variant(ts="2026-03-01T12:00:00"), "invalid_timestamp"),
            (self.variant(ts="2026-03-01t12:00:00.1z"), None),
            (self.variant(ts="2026-03-01T12:00:00.123456789+05:30"), None),
            (self.variant(ts="2024-02-29T00:00:00Z"), None),
            (self.variant(ts="2026-02-29T00:00:00Z"), "invalid_timestamp"),
            (self.variant(ts="2026-03-01T12:00:60Z"), "invalid_timestamp"),
            (self.variant(ts="2026-03-01T12:00:00+24:00"), "invalid_timestamp"),
            (self.variant(ts="2026-03-01T12:00:00+23:59"), None),
            (self.variant(propensity=0), "invalid_value"), (self.variant(propensity=1), None),
            (self.variant(price=0), None), (self.variant(price=-0.01), "invalid_value"),
            (self.variant(viewable_fraction=1.01), "invalid_value"),
            (self.variant(context={"device": None}), "wrong_type"),
            (self.variant(context="x"), "wrong_type"),
            (self.variant(event_id=""), "invalid_value"), (self.variant(user_id=""), "invalid_value"),
            (self.variant(bot="true"), "wrong_type"), (self.variant(quantity="x"), None),
            (self.variant(variant=""), None),
            (json.dumps(purchase("p", "u", T, "o", [])), "invalid_value"),
            (json.dumps(dict(purchase("p", "u", T, "o", []), items=[{"item_id": "a"}])), "missing_field"),
            (json.dumps(dict(purchase("p", "u", T, "o", []), items=[5])), "wrong_type"),
            (json.dumps(dict(purchase("p", "u", T, "o", []), items=[{"item_id": "a", "price": 1}])), None),
            (json.dumps(dict(cart("k", "u", T, "a"), quantity=1.5)), "wrong_type"),
            (json.dumps(dict(click("c", "u", T, "i"), position="top", context=5)), None),
        ]
        for line, want in cases:
            with self.subTest(line=line[:120]):
                self.assertEqual(reason_of(line), want)

    def test_bytes_and_blank_lines(self):
        good = json.dumps(exposure("x1", "u1", T)).encode()
        rep = run([b"\xef\xbb\xbf" + good, b"   \t", b"", b'{"type": "caf\xe9"}',
                   good.replace(b"x1", b"x2") + b"\r"])
        dq = rep["data_quality"]
        self.assertEqual((dq["events_read"], dq["quarantined"]["invalid_json"]), (3, 1))
        self.assertEqual(rep["variants"]["control"]["users"], 1)  # x2 is a valid exposure

    def test_line_length_limit(self):
        def padded(size):
            ev = dict(exposure("x", "u9", T), pad="")
            ev["pad"] = "p" * (size - len(json.dumps(ev)))
            return json.dumps(ev)
        rep = run([padded(1_048_576), dict(exposure("y", "u8", T)), padded(1_048_577)])
        self.assertEqual(rep["data_quality"]["quarantined"]["invalid_json"], 1)
        self.assertEqual(rep["variants"]["control"]["users"], 2)


class CsvInput(unittest.TestCase):
    def test_csv_matches_jsonl(self):
        # The same events in both forms give the same report (apart from nothing).
        events = [
            exposure("x1", "u1", T, context={"device": "mobile"}),
            impression("i1", "u1", T + S, "0042", position=3, price=2.5, surface="home"),
            click("c1", "u1", T + 2 * S, "i1"),
            purchase("p1", "u1", T + H, "o1", [("0042", 2, 2.5)]),
        ]
        jsonl = run(events)
        header = ["type", "event_id", "ts", "user_id", "experiment", "variant", "context.device",
                  "item_id", "position", "price", "surface", "impression_id", "order_id", "items",
                  "bot"]
        rows = [",".join(header),
                f"exposure,x1,{T},u1,recs-v2,control,mobile,,,,,,,,false",
                f"impression,i1,2026-03-01T12:00:01Z,u1,,,,0042,3.0,2.5,home,,,,",
                f"click,c1,{T + 2 * S},u1,,,,,top,,,i1,,,",
                'purchase,p1,2026-03-01T13:00:00.000+00:00,u1,,,,,,,,,o1,'
                '"[{""item_id"": ""0042"", ""quantity"": 2, ""price"": 2.5}]",',
                "impression,i9,2026-03-01T12:00:01Z,u1,,,,a,abc,,,,,,",  # wrong_type
                ",i8,2026-03-01T12:00:01Z,u1,,,,a,1,,,,,,"]  # missing_field (type)
        csv_rep = run(rows, suffix=".csv")
        self.assertEqual(csv_rep["variants"], jsonl["variants"])
        self.assertEqual(csv_rep["segments"], jsonl["segments"])
        q = csv_rep["data_quality"]["quarantined"]
        self.assertEqual((q["wrong_type"], q["missing_field"]), (1, 1))
        self.assertEqual(jsonl["variants"]["control"]["revenue"], 5.0)


    def test_csv_record_rules(self):
        # One RFC 4180 reading, strict: a refused record is invalid_json and the next one is read;
        # more cells than the header is invalid_json; an items cell that is not JSON stays text.
        header = "type,event_id,ts,user_id,experiment,variant,item_id,order_id,items"
        rows = [header,
                f"exposure,x1,{T},u1,recs-v2,control,,,",
                f"exposure,x2,{T},u2,recs-v2,control,,,,surplus",          # 10 cells for 9
                f'exposure,"x3"z,{T},u3,recs-v2,control,,,',              # text after the quote
                f"exposure,x4,{T},u4,recs-v2,control,,,",
                f"purchase,p1,{T},u1,,,,o1,not json",                    # wrong_type
                f"purchase,p2,{T},u1,,,,o2,\"[\n {{\"\"item_id\"\": \"\"a\"\", \"\"price\"\": 2}}\n]\"",
                f"purchase,p3,{T},u1,,,,o3,{'[' * 128}{']' * 128}",        # 129 containers
                f"purchase,p4,{T},u1,,,,o4,{'[' * 129}{']' * 129}",        # not JSON: text
                f'exposure,x5,{T},u5,recs-v2,"control']                    # open at the end
        rep = run(rows, suffix=".csv")
        dq = rep["data_quality"]
        self.assertEqual(dq["events_read"], 9)
        self.assertEqual(dq["quarantined"]["invalid_json"], 4)
        self.assertEqual(dq["quarantined"]["wrong_type"], 2)
        self.assertEqual(rep["variants"]["control"]["users"], 2)  # u1 and u4
        self.assertEqual(rep["variants"]["control"]["order_revenue"], 2.0)  # p2, items over 3 lines
        self.assertEqual(rep["variants"]["control"]["orders"], 1)

    def test_json_nesting_limit(self):
        # 128 containers with the event's object are accepted; 129 are invalid_json.
        ok = json.dumps(exposure("x1", "u1", T))[:-1] + ', "deep": ' + "[" * 127 + "]" * 127 + "}"
        deep = json.dumps(exposure("x2", "u2", T))[:-1] + ', "deep": ' + "[" * 128 + "]" * 128 + "}"
        self.assertIsNone(reason_of(ok))
        self.assertEqual(reason_of(deep), "invalid_json")


class Tools(unittest.TestCase):
    def test_generator_intent_matches_reference(self):
        # gen_logs records which quarantine reason each junk line was built for; the reference
        # must find exactly those, plus the duplicates and the line count.
        for csv_mode in (False, True):
            for seed in (1, 2, 3, 7):
                data, expected = gen_logs.generate(seed, 25, csv_mode)
                with tempfile.TemporaryDirectory() as d:
                    path = os.path.join(d, "log.csv" if csv_mode else "log.jsonl")
                    with open(path, "wb") as f:
                        f.write(data)
                    cfg = ref.load_config(None)
                    cfg["experiment"] = "recs-v2"
                    dq = ref.run(path, cfg)["data_quality"]
                for key in ("events_read", "duplicate_events"):
                    self.assertEqual(dq[key], expected[key], (seed, csv_mode, key))
                for reason in ref.REASONS:
                    self.assertEqual(dq["quarantined"][reason], expected[reason],
                                     (seed, csv_mode, reason))

    def test_generator_text_edges(self):
        # gen_logs' text-edge user (compare.py --rounds), in both forms: i1 clicked, i2 (same ts,
        # later input order) not, i3 (i2's item re-shown 1 min later) clicked, i4 non-viewable: no
        # round; the duplicate line of i2 (with context only_dup) is dropped.  Counts as intended.
        for csv_mode in (False, True):
            data, expected = gen_logs.generate(3, 10, csv_mode, text_edges=True)
            with tempfile.TemporaryDirectory() as d:
                path = os.path.join(d, "log.csv" if csv_mode else "log.jsonl")
                with open(path, "wb") as f:
                    f.write(data)
                rows = [r for r in ref.rounds(path) if r["user_id"].startswith("text,")]
                cfg = ref.load_config(None)
                cfg["experiment"] = "recs-v2"
                dq = ref.run(path, cfg)["data_quality"]
            self.assertEqual(rows[0]["user_id"], 'text,"edge"%2C\r\nuser')
            self.assertEqual([(r["impression_id"], r["clicked"], r["user_impressions_before"],
                               r["user_clicks_before"]) for r in rows],
                             [("txt-i1", 1, 0, 0), ("txt-i2", 0, 1, 1), ("txt-i3", 1, 2, 1)])
            self.assertEqual((rows[0]["item_id"], rows[0]["surface"], rows[0]["context"]),
                             ('it%em,"q"\r\nx', "sur,face%", {'k,ey%"': 'v\r\nal"', "device": "mo,bile"}))
            self.assertEqual(rows[1]["context"], {"note": "100%25"}, csv_mode)
            for key in ("events_read", "duplicate_events"):
                self.assertEqual(dq[key], expected[key], (csv_mode, key))
        self.assertEqual(gen_logs.generate(3, 10)[0], gen_logs.generate(3, 10, text_edges=False)[0])

    def test_compare_rounds_against_hand_written_export(self):
        # The export of this log, written by hand from the contract: user "u,1"; i1 (item a%"b,
        # context k = "x<LF>y", clicked at +1 s) and i2 (item c, surface search, no context) 1 s
        # later; columns sorted, cells escaped (% first).  v1 has one unclicked round.
        import compare
        lines = [impression("i1", "u,1", T, 'a%"b', context={"k": "x\ny"}),
                 impression("i2", "u,1", T + S, "c", position=2, surface="search"),
                 click("c1", "u,1", T + S, "i1"), impression("j1", "v1", T, "a")]
        good = ["click,user_id,ts,item_id,position,surface,context.k,user_impressions_before,"
                "user_clicks_before",
                f"1,u%2C1,{T},a%25%22b,1,default,x%0Ay,0,0",
                f"0,u%2C1,{T + S},c,2,search,,1,1",
                f"0,v1,{T},a,1,default,,0,0"]
        rounds = ref.rounds(lines)
        with tempfile.TemporaryDirectory() as d:
            out = os.path.join(d, "t.csv")

            def diffs(rows, eol="\n", given=rounds):
                with open(out, "w", newline="") as f:
                    f.write(eol.join(rows) + eol)
                return compare.compare_rounds(given, out, 5)

            self.assertEqual(diffs(good), [])
            self.assertEqual(diffs(good, "\r\n"), [])
            wrong = diffs([good[0], good[1].replace("1,u", "0,u", 1), good[2], good[3]])
            self.assertTrue(any("user 'u%2C1'" in d for d in wrong), wrong)
            self.assertTrue(diffs([good[0], good[2], good[1], good[3]]))  # (ts, input order)
            self.assertTrue(diffs([good[0], good[1], good[3], good[2]]))  # a user's rows together
            self.assertTrue(diffs([good[0].replace("context.k,", ""),
                                   *(r.replace(",x%0Ay,", ",").replace(",,", ",", 1)
                                     for r in good[1:])]))  # header
            # No rounds: only the header (without context columns) agrees.
            empty = ["click,user_id,ts,item_id,position,surface,user_impressions_before,"
                     "user_clicks_before"]
            self.assertEqual(diffs(empty, given=[]), [])
            self.assertTrue(diffs(good, given=[]))

    def test_cli_with_config_and_gzip(self):
        with tempfile.TemporaryDirectory() as d:
            log, cfg = os.path.join(d, "log.jsonl.gz"), os.path.join(d, "funnel.yaml")
            subprocess.run([sys.executable, os.path.join(HERE, "gen_logs.py"), "--seed", "5",
                            "--out", log, "--users", "10"], check=True)
            with open(cfg, "w") as f:
                f.write("ab_testing:\n  experiment: recs-v2\n  control: treatment\n"
                        "click_attribution:\n  view_through: true\n")
            out = subprocess.run([sys.executable, os.path.join(HERE, "funnel_reference.py"),
                                  "--events", log, "--config", cfg],
                                 check=True, capture_output=True, text=True).stdout
            rep = json.loads(out)
            self.assertEqual((rep["experiment"], rep["control"]), ("recs-v2", "treatment"))
            self.assertEqual(set(rep), {"experiment", "control", "variants", "data_quality",
                                        "segments", "positions"})
            self.assertEqual(set(rep["data_quality"]["quarantined"]), set(ref.REASONS))


if __name__ == "__main__":
    unittest.main()
