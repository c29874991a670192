#!/usr/bin/env python3
"""Random small event logs that hit every counting rule at and around its boundaries.

    python3 gen_logs.py --seed S --out PATH [--users N] [--csv] [--leak-rate F] [--text-edges]

PATH ending in .gz is gzip-compressed.  The log mixes ordinary browsing with "stories" aimed at one
rule each (click window ±, dedup window edges, bots, viewability thresholds, 24 h conversions,
view-through, leaks, mismatches, exposure instants, duplicates, quarantine reasons).  `generate()`
also returns the quarantine tally and duplicate count the log was built to contain, so tests can
check the reference's validation against the generator's intent.
"""

import argparse
import csv
import datetime as dt
import gzip
import io
import json
import random
from collections import Counter

T0 = 1_772_366_400_000  # 2026-03-01T12:00:00Z in epoch ms
S, MIN, H = 1000, 60_000, 3_600_000
EXP, OTHER_EXP = "recs-v2", "search-v1"
TS_MIN_MS, TS_MAX_MS = -62_135_596_800_000, 253_402_300_799_999
RAW = "\x00RAW\x00"  # placeholder for a raw JSON number text (1e400, huge integers)
CSV_COLUMNS = ["type", "event_id", "ts", "user_id", "experiment", "variant", "item_id", "position",
               "surface", "request_id", "propensity", "price", "viewable_fraction", "viewable_ms",
               "bot", "impression_id", "quantity", "order_id", "items"]


class Gen:
    def __init__(self, seed, n_users, csv_mode, leak_rate=None, text_edges=False):
        self.rng = random.Random(seed)
        self.text_edges = text_edges  # add st_text_edges' user (off: the same log as before)
        # share of users exposed to a second variant (None: the default 8 %, same log as before);
        # compare.py --stats lowers it on some seeds so the verdict is not always `inconclusive`
        self.leak_until = 0.14 if leak_rate is None else 0.06 + leak_rate
        self.csv = csv_mode
        self.n_users = n_users
        self.events = []            # intended-valid events: dicts with int "ts", "_key", "_seq"
        self.extra = []             # (position hint, kind, payload) inserted after sorting
        self.expected = Counter()   # quarantine reasons and duplicates the log was built with
        self.counter = 0
        self.users = []
        self.imp_pool = []          # (user, impression id) of emitted impressions
        rng = self.rng
        self.variants = ["control", "treatment"] + (["treatment_b"] if rng.random() < 0.3 else [])
        self.multi_exp = rng.random() < 0.2  # exposures to a second experiment as well
        self.items = [f"i{k}" for k in range(1, 31)] + ["0042", "sku,with,commas", "ünï-cödé"]

    # ---------------------------------------------------------------- ids, items, values
    def new_id(self, prefix):
        self.counter += 1
        if self.rng.random() < 0.1:
            return f"{self.rng.getrandbits(64):016x}-{self.counter}"
        return f"{prefix}{self.counter}"

    def item(self):
        return self.rng.choice(self.items)

    def fresh_item(self):
        self.counter += 1
        return f"x{self.counter}"

    def price(self):
        return self.rng.choice([round(self.rng.uniform(1, 300), 2), 0, 9.99, 0.1, 19.5, 1e-05, 120])

    # ---------------------------------------------------------------- event builders
    def emit(self, ev, key=None):
        ev["_key"] = ev["ts"] if key is None else key  # file position follows _key, not ts
        ev["_seq"] = len(self.events)
        self.events.append(ev)
        return ev

    def decorate(self, ev):
        """Random fields that must not change counts: bot false, nulls, unknown or unlisted fields."""
        r = self.rng.random
        if r() < 0.05:
            ev["bot"] = False
        if r() < 0.04 and not self.csv:
            ev["bot"] = None  # null = absent
        if r() < 0.05:
            ev["app_version"] = self.rng.choice(["1.2.3", "2.0", "10"])
        if r() < 0.03 and not self.csv:
            ev["debug"] = {"trace": [1, 2.5, None], "title": "Infinity War NaN"}
        if r() < 0.03:
            ev["title"] = "Infinity War"  # the word is not the literal
        if r() < 0.01 and not self.csv:
            ev["deep"] = nested_arrays(127)  # with the event's object, 128 containers: accepted
        if ev["type"] == "click" and r() < 0.05:
            ev["position"] = "top"  # not listed for clicks: kept, not validated
        if ev["type"] == "purchase" and r() < 0.05 and not self.csv:
            ev["context"] = 5  # not listed for purchases
        if ev["type"] == "exposure" and r() < 0.05:
            ev["item_id"] = 7 if not self.csv else "7"
        if ev["type"] == "add_to_cart" and r() < 0.05:
            ev["price"] = "free"  # not listed for add_to_cart
        return ev

    def exposure(self, u, ts, variant, context="auto", experiment=EXP, key=None):
        ev = {"type": "exposure", "event_id": self.new_id("x"), "ts": ts, "user_id": u,
              "experiment": experiment, "variant": variant}
        if context == "auto":
            context = self.context()
        if context is not None:
            ev["context"] = context
        return self.emit(self.decorate(ev), key)

    def context(self):
        r = self.rng
        if r.random() < 0.1:
            return None if r.random() < 0.5 or self.csv else {}
        c = {"device": r.choice(["mobile", "desktop", "tablet"])}
        if r.random() < 0.8:
            c["user_type"] = r.choice(["new", "returning"])
        if r.random() < 0.15:
            c["country"] = r.choice(["de", "us", "fr"])
        if r.random() < 0.05:
            c["région"] = "île"
        return c

    def impression(self, u, ts, item, vis="auto", key=None, **kw):
        r = self.rng
        ev = {"type": "impression", "event_id": self.new_id("imp"), "ts": ts, "user_id": u,
              "item_id": item, "position": r.randint(1, 10)}
        if r.random() < 0.05:
            ev["position"] = float(ev["position"])  # 3.0 is an integer
        surface = r.choice(["home", "search", None, None])
        if surface:
            ev["surface"] = surface
        elif r.random() < 0.2 and not self.csv:
            ev["surface"] = None  # null = absent = "default"
        if r.random() < 0.3:
            ev["request_id"] = f"req{r.randint(1, 50)}"
        if r.random() < 0.3:
            ev["propensity"] = r.choice([1, 1.0, 0.5, round(r.uniform(0.01, 1), 4), 1e-9])
        if r.random() < 0.4:
            ev["price"] = self.price()
        if vis == "auto":
            roll = r.random()
            if roll < 0.6:
                vis = (None, None)
            elif roll < 0.7:
                vis = r.choice([(0.3, None), (None, 10)])
            elif roll < 0.92:
                vis = (r.choice([0.5, 0.8, 1, 1.0]), r.choice([1000, 1500, 2000.5, 40000]))
            else:
                vis = (r.choice([0.1, 0.49, 0.5]), r.choice([0, 999, 999.9, 400]))
        vf, vms = vis
        if vf is not None:
            ev["viewable_fraction"] = vf
        if vms is not None:
            ev["viewable_ms"] = vms
        if r.random() < 0.3:
            ev["context"] = self.context() or {"device": "mobile"}
        if r.random() < 0.03:
            ev["position"] = 2_147_483_647  # the largest valid position
        ev.update({k: v for k, v in kw.items()})
        self.imp_pool.append((u, ev["event_id"]))
        return self.emit(self.decorate(ev), key)

    def click(self, u, ts, imp, key=None):
        imp_id = imp if isinstance(imp, str) else imp["event_id"]
        ev = {"type": "click", "event_id": self.new_id("c"), "ts": ts, "user_id": u,
              "impression_id": imp_id}
        if not isinstance(imp, str) and self.rng.random() < 0.2:
            ev["item_id"] = imp["item_id"] if self.rng.random() < 0.7 else "other-item"  # ignored
        return self.emit(self.decorate(ev), key)

    def cart(self, u, ts, item, key=None, imp=None):
        ev = {"type": "add_to_cart", "event_id": self.new_id("a"), "ts": ts, "user_id": u,
              "item_id": item}
        q = self.rng.choice([None, None, 1, 2, 3.0])
        if q is not None:
            ev["quantity"] = q
        if imp is not None:
            ev["impression_id"] = imp["event_id"]  # informational only
        return self.emit(self.decorate(ev), key)

    def purchase(self, u, ts, lines, order_id=None, key=None):
        items = []
        for item, qty, price in lines:
            line = {"item_id": item, "price": price}
            if qty is not None:
                line["quantity"] = qty
            if self.rng.random() < 0.05:
                line["sku_name"] = "extra"  # unknown item fields are ignored
            items.append(line)
        ev = {"type": "purchase", "event_id": self.new_id("p"), "ts": ts, "user_id": u,
              "order_id": order_id or self.new_id("o"), "items": items}
        return self.emit(self.decorate(ev), key)

    def line(self, item):
        return (item, self.rng.choice([None, 1, 1, 2, 3, 2.0]), self.price())

    # ---------------------------------------------------------------- stories (one rule each)
    def st_browse(self, u, E, v):
        r = self.rng
        t = E + r.randint(0, 2 * H)
        for _ in range(r.randint(1, 5)):
            item = self.item()
            t += r.randint(S, 20 * MIN)
            imp = self.impression(u, t, item)
            if r.random() < (0.35 if v == "control" else 0.45):
                c = t + r.choice([r.randint(-5 * S, 0), r.randint(0, MIN), r.randint(0, 1800 * S)])
                self.click(u, c, imp)
                if r.random() < 0.4:
                    self.cart(u, c + r.randint(0, 30 * H), item, imp=imp if r.random() < 0.3 else None)
                if r.random() < (0.3 if v == "control" else 0.2):
                    lines = [self.line(item)] + ([self.line(self.item())] if r.random() < 0.3 else [])
                    shared = "o-shared" if r.random() < 0.15 else None  # orders: distinct per user
                    self.purchase(u, c + r.randint(1, 26 * H), lines, order_id=shared)

    def st_click_bounds(self, u, E, v):
        r = self.rng
        for _ in range(r.randint(2, 4)):
            item = self.fresh_item()
            t = E + r.randint(0, 3 * H)
            imp = self.impression(u, t, item, vis=(None, None))
            off = r.choice([-6000, -5001, -5000, -4999, -1, 0, 1, 1_799_999, 1_800_000, 1_800_001,
                            1_801_000, 60_000, 60_001, 61_000, -1000])
            self.click(u, t + off, imp)
            if r.random() < 0.6:  # a conversion that only a counted click can attribute
                self.cart(u, t + off + r.randint(0, 2 * H), item)

    def st_dedup(self, u, E, v):
        r = self.rng
        item, surface = self.fresh_item(), r.choice(["home", "search", None])
        kw = {"surface": surface} if surface else {}
        t = E + r.randint(-10 * MIN, 2 * H)
        gaps = [0, 1000, 3_599_000, 3_599_999, 3_600_000, 3_600_001, 3_601_000, 599_000, 600_000,
                601_000, 3_000_000]
        times = [t]
        for _ in range(r.randint(1, 3)):
            times.append(times[-1] + r.choice(gaps))
        imps = []
        for k, ts in enumerate(times):
            extra = dict(kw)
            if k > 0 and r.random() < 0.3:  # a collapsed one's own attributes are ignored
                extra["variant"] = r.choice(self.variants)
                extra["position"] = r.randint(1, 3)
            imps.append(self.impression(u, ts, item, vis=(None, None), **extra))
        if r.random() < 0.3:  # a non-viewable one never opens a window
            self.impression(u, t - 500, item, vis=(0.1, 10), **kw)
        if r.random() < 0.4:  # same item on another surface: its own group
            self.impression(u, times[-1], item, vis=(None, None), surface="pdp")
        for imp in imps:
            if r.random() < 0.5:
                self.click(u, imp["ts"] + r.choice([-5000, 0, 10 * S, 1_800_000, 1_800_001]), imp)
        if r.random() < 0.7:
            self.purchase(u, times[-1] + r.randint(0, 3 * H), [self.line(item)])

    def st_dup_clicks(self, u, E, v):
        r = self.rng
        item = self.item()
        t = E + r.randint(0, 2 * H)
        imp = self.impression(u, t, item, vis=(None, None))
        later = self.impression(u, t + r.choice([10 * S, 3_600_000]), item, vis=(None, None),
                                surface=imp.get("surface"))
        c = t + r.randint(-5000, 60 * S)
        for _ in range(r.randint(2, 4)):
            target = imp if r.random() < 0.7 else later
            self.click(u, r.choice([c, c + r.randint(1, 600 * S), c - r.randint(0, 3000)]), target)
        if r.random() < 0.5:
            self.cart(u, c + r.randint(0, 25 * H), item)

    def st_orphans(self, u, E, v):
        r = self.rng
        t = E + r.randint(0, 3 * H)
        self.click(u, t, f"nope-{self.new_id('z')}")
        others = [(w, i) for w, i in self.imp_pool if w != u]
        if others:
            w, imp_id = r.choice(others)
            self.click(u, t + 5, imp_id)  # another user's impression: orphan
        if self.events:
            self.click(u, t + 9, r.choice(self.events)["event_id"])  # often not an impression
        imp = self.impression(u, t, self.item(), vis=(0.2, 5000))  # non-viewable
        self.click(u, t + r.choice([10 * S, 1_900 * S]), imp)  # non_viewable_clicks only

    def st_viewability(self, u, E, v):
        r = self.rng
        choices = [(None, None), (0.1, None), (None, 0), (0.5, 1000), (0.49, 1000), (0.5, 999),
                   (1, 5000), (0, 0), (0.5, 999.9), (1.0, 1000.0), (0.7, 2000), (0.69, 2000),
                   (0.7, 1999), (0.4999999, 1e9), (1, 0)]
        for _ in range(r.randint(2, 5)):
            item = self.item()
            t = E + r.randint(0, 4 * H)
            imp = self.impression(u, t, item, vis=r.choice(choices))
            if r.random() < 0.6:
                self.click(u, t + r.randint(0, 100 * S), imp)
                if r.random() < 0.5:
                    self.purchase(u, t + r.randint(200 * S, 3 * H), [self.line(item)])

    def st_conversions(self, u, E, v):
        r = self.rng
        item = self.fresh_item()
        t = E + r.randint(0, 2 * H)
        imp = self.impression(u, t, item, vis=(None, None))
        c = t + r.randint(0, 60 * S)
        self.click(u, c, imp)
        deltas = [0, -1, 86_400_000, 86_400_001, 3_600_000, 3_600_001, 90_000_000, 1_000]
        for _ in range(r.randint(1, 3)):
            self.cart(u, c + r.choice(deltas), item)
        never = self.fresh_item()
        lines = [self.line(item), self.line(never)]  # an item never clicked, never shown
        if r.random() < 0.5:
            shown = self.fresh_item()  # shown, never clicked
            self.impression(u, t + 1, shown, vis=(None, None))
            lines.append(self.line(shown))
        r.shuffle(lines)
        self.purchase(u, c + r.choice(deltas), lines)
        if r.random() < 0.5:  # two clicked impressions of one item: latest click wins
            imp2 = self.impression(u, t + r.choice([30 * S, 2 * H]), item, vis=(None, None),
                                   surface="search" if imp.get("surface") != "search" else "home")
            c2 = r.choice([c, imp2["ts"] + 1000])  # equal click times: later impression ts wins
            self.click(u, c2, imp2)
            self.cart(u, max(c, c2) + r.choice([0, 1, 600 * S]), item)
            self.cart(u, min(c, c2) + r.randint(0, 20 * S), item)

    def st_tie_across_exposure(self, u, E, v):
        """Equal click times on a pre-exposure and a post-exposure impression of one item."""
        item = self.fresh_item()
        pre = self.impression(u, E - 2000, item, vis=(None, None), surface="home")
        post = self.impression(u, E, item, vis=(None, None), surface="search")
        c = E + 1000
        first, second = (pre, post) if self.rng.random() < 0.5 else (post, pre)
        self.click(u, c, first)
        self.click(u, c, second)
        self.purchase(u, c + 5 * MIN, [self.line(item)])

    def st_view_through(self, u, E, v):
        r = self.rng
        item = self.fresh_item()
        t = E + r.randint(0, 2 * H)
        imp = self.impression(u, t, item, vis=(None, None))
        if r.random() < 0.3:
            self.click(u, t + 1_900 * S, imp)  # late: not a click candidate
        if r.random() < 0.4:  # an older clicked impression, more than 24 h before the purchase
            old = self.impression(u, t - 30 * H, item, vis=(None, None))
            self.click(u, old["ts"] + 5 * S, old)
        deltas = [0, H, 47 * H, 48 * H, 48 * H + 1, 167 * H, 168 * H, 168 * H + 1, 24 * H + 1]
        if r.random() < 0.5:
            self.cart(u, t + r.choice(deltas), item)
        else:
            self.purchase(u, t + r.choice(deltas), [self.line(item)])

    def st_mismatch(self, u, E, v):
        r = self.rng
        others = [w for w in self.variants if w != v]
        for _ in range(r.randint(2, 4)):
            item = self.item()
            t = E + r.randint(0, 3 * H)
            kw = {"variant": r.choice(others + [v])}
            exp_choice = r.choice(["absent", EXP, OTHER_EXP])
            if exp_choice != "absent":
                kw["experiment"] = exp_choice
            imp = self.impression(u, t, item, **kw)
            if r.random() < 0.6:
                self.click(u, t + r.randint(0, 30 * S), imp)
                if r.random() < 0.6:
                    self.purchase(u, t + r.randint(MIN, 5 * H), [self.line(item)])
        pre = self.impression(u, E - r.randint(1, 10 * MIN), self.item(), variant=others[0])
        self.click(u, pre["ts"] + 1000, pre)  # before exposure: neither counted nor a mismatch

    def st_exposure_edges(self, u, E, v):
        r = self.rng
        for d in (-1, 0, 1):
            item = self.item()
            imp = self.impression(u, E + d, item, vis=(None, None))
            if r.random() < 0.6:
                self.click(u, E + d + r.choice([-5000, 0, 1000]), imp)
                self.cart(u, E + d + 2000, item)
        order = self.new_id("o")
        self.purchase(u, E - 1, [self.line(self.item())], order_id=order)
        self.purchase(u, E, [self.line(self.item())], order_id=order if r.random() < 0.5 else None)
        self.purchase(u, E + 7 * S, [self.line(self.item())], order_id=order)  # same order twice
        if not self.csv and r.random() < 0.5:
            self.purchase(u, E + 8 * S, [self.line(self.item())], order_id="")
        item = self.fresh_item()  # kept before exposure, collapsed after: the group is excluded
        kept = self.impression(u, E - 1000, item, vis=(None, None), surface="home")
        coll = self.impression(u, E + 10 * S, item, vis=(None, None), surface="home")
        self.click(u, coll["ts"] + 1000, coll)
        self.click(u, kept["ts"] + 900_000, kept, key=E + 5 * H)  # written out of order

    def st_out_of_order(self, u, E, v):
        """Clicks and conversions written before their impressions in the file."""
        r = self.rng
        item = self.item()
        t = E + r.randint(0, 2 * H)
        imp = self.impression(u, t, item, key=t + 2 * H)
        self.click(u, t + r.randint(-5000, 60 * S), imp, key=t - H)
        self.cart(u, t + 3 * MIN, item, key=t - 2 * H)

    STORIES = ["st_click_bounds", "st_dedup", "st_dup_clicks", "st_orphans", "st_viewability",
               "st_conversions", "st_tie_across_exposure", "st_view_through", "st_mismatch",
               "st_exposure_edges", "st_out_of_order"]

    # ---------------------------------------------------------------- users
    def make_users(self):
        r = self.rng
        for k in range(self.n_users):
            u = f"u{k}" if r.random() < 0.9 else f"{1000 + k}"
            self.users.append(u)
            # whole seconds, whole tenths or any millisecond: fractions of 0 to 9 digits all occur
            E = T0 + r.randint(0, 5 * 24 * H) // 1000 * 1000 + r.choice([0, 100 * r.randint(0, 9),
                                                                      r.randint(0, 999)])
            v = r.choice(self.variants)
            kind = r.random()
            if kind < 0.06:  # never exposed: counters only
                self.st_browse(u, E, v)
                self.st_conversions(u, E, v)
                continue
            self.exposure(u, E, v)
            if self.multi_exp and r.random() < 0.3:
                self.exposure(u, E + r.randint(-H, H), "on", experiment=OTHER_EXP)
            if kind < self.leak_until:  # leaked: a second variant, before or after the first exposure
                w = r.choice([x for x in self.variants if x != v])
                self.exposure(u, E + r.choice([-H, 0, 1, H]), w)
            elif kind < 0.22:  # exposed again to the same variant (other context; first wins)
                self.exposure(u, E + r.choice([0, 1, 10 * MIN]), v)
                if r.random() < 0.5:  # an earlier exposure written later in the file
                    self.exposure(u, E - 5 * MIN, v, key=E + 3 * H)
                    E -= 5 * MIN
            elif kind < 0.28:
                self.st_bot_flag(u, E, v)
            elif kind < 0.34:
                self.st_bot_rate(u, E, v)
            self.st_browse(u, E, v)
            for name in r.sample(self.STORIES, r.randint(1, 3)):
                getattr(self, name)(u, E, v)

    def st_bot_flag(self, u, E, v):
        self.st_browse(u, E, v)
        mine = [e for e in self.events if e["user_id"] == u]
        how = self.rng.random()
        if how < 0.6:
            self.rng.choice(mine)["bot"] = True  # a bot
        elif how < 0.8:  # bot: true only on a duplicate line: dropped, so not a bot
            self.extra.append(("dup_of", self.rng.choice(mine), {"bot": True}))
        else:  # bot: true only on a quarantined line: not a bot
            bad = dict(self.rng.choice(mine), bot=True)
            bad.pop("user_id" if self.rng.random() < 0.5 else "ts")
            self.extra.append(("junk_event", bad, "missing_field"))

    def st_bot_rate(self, u, E, v):
        r = self.rng
        n, span = r.choice([(21, 60_000), (20, 60_000), (21, 60_001), (21, 30_000), (22, 59_999),
                            (6, 60_000), (5, 10_000), (21, 120_000)])
        start = E + 8 * 24 * H  # away from this user's other clicks, so the count is the story's
        imps = [self.impression(u, start - 10 * S + k, self.item(), vis=(None, None)) for k in range(2)]
        times = sorted([start, start + span] + [start + r.randint(0, span) for _ in range(n - 2)])
        for ts in times:
            target = r.choice(imps + ["ghost-" + u])  # orphan clicks count toward the rate too
            c = self.click(u, ts, target)
        if n == 20 and r.random() < 0.7:  # a duplicate click line is not a 21st click
            self.extra.append(("dup_of", c, {}))

    # ---------------------------------------------------------------- junk (quarantine)
    def junk_base(self, etype=None):
        r = self.rng
        etype = etype or r.choice(["exposure", "impression", "click", "add_to_cart", "purchase"])
        ts = self.ts_value(T0 + r.randint(0, 5 * 24 * H))  # rendered now: junk is never re-rendered
        ev = {"type": etype, "event_id": self.new_id("q"), "ts": ts,
              "user_id": r.choice(self.users) if self.users and r.random() < 0.7 else f"qu{r.randint(1, 9)}"}
        if etype == "exposure":
            ev.update(experiment=EXP, variant=r.choice(self.variants))
        elif etype == "impression":
            ev.update(item_id=self.item(), position=r.randint(1, 10))
        elif etype == "click":
            ev.update(impression_id=self.new_id("imp"))
        elif etype == "add_to_cart":
            ev.update(item_id=self.item())
        else:
            ev.update(order_id=self.new_id("o"), items=[{"item_id": self.item(), "quantity": 1,
                                                         "price": 9.99}])
        return ev

    def json_junk(self):
        """One quarantined JSON line: (reason, event dict with raw ts, or bytes)."""
        r = self.rng
        jb = self.junk_base
        cases = [
            # invalid_json
            ("invalid_json", lambda: json.dumps(self.clean(jb()))[:-3].encode()),
            ("invalid_json", lambda: b"hello, world"),
            ("invalid_json", lambda: b"{'type': 'click'}"),
            ("invalid_json", lambda: r.choice([b"[1, 2, 3]", b'"impression"', b"42", b"null",
                                               b"true", b"[{}]"])),
            ("invalid_json", lambda: json.dumps([self.clean(jb())]).encode()),
            ("invalid_json", lambda: self.raw_line(dict(jb("impression"), price=RAW), "NaN")),
            ("invalid_json", lambda: self.raw_line(dict(jb("impression"), propensity=RAW), "Infinity")),
            ("invalid_json", lambda: self.raw_line(dict(jb(), ts=RAW), "-Infinity")),
            ("invalid_json", lambda: self.raw_line(dict(jb(), extra=RAW), "[1, NaN]")),
            ("invalid_json", lambda: json.dumps(self.clean(jb()))[:-1].encode() + b', }'),
            ("invalid_json", lambda: (json.dumps(self.clean(jb())) + " " + json.dumps(self.clean(jb()))).encode()),
            ("invalid_json", lambda: json.dumps(self.clean(jb()))[:-1].encode() + b', "note": "caf\xe9"}'),
            ("invalid_json", lambda: json.dumps(self.clean(jb())).encode().replace(b'"type"', b'"ty\xc3pe"')),
            ("invalid_json", lambda: "\ufeff".encode() + json.dumps(self.clean(jb())).encode()),
            # 129 containers with the event's object: deeper than the contract accepts
            ("invalid_json", lambda: self.raw_line(dict(jb(), extra=RAW), "[" * 128 + "]" * 128)),
            # type
            ("missing_field", lambda: self.without(jb(), "type")),
            ("missing_field", lambda: dict(jb(), type=None)),
            ("wrong_type", lambda: dict(jb(), type=r.choice([5, True, ["click"], {"t": 1}]))),
            ("unknown_type", lambda: dict(jb(), type=r.choice(["view", "Click", "", "purchase ",
                                                               "exposures", "IMPRESSION"]))),
            ("unknown_type", lambda: self.without(dict(jb(), type="conversion"), "user_id")),
            # missing_field
            ("missing_field", lambda: self.without(jb(), r.choice(["event_id", "ts", "user_id"]))),
            ("missing_field", lambda: dict(jb(), **{r.choice(["event_id", "ts", "user_id"]): None})),
            ("missing_field", lambda: self.without(jb("exposure"), r.choice(["variant", "experiment"]))),
            ("missing_field", lambda: self.without(jb("impression"), r.choice(["item_id", "position"]))),
            ("missing_field", lambda: self.without(jb("click"), "impression_id")),
            ("missing_field", lambda: dict(jb("add_to_cart"), item_id=None)),
            ("missing_field", lambda: self.without(jb("purchase"), r.choice(["order_id", "items"]))),
            ("missing_field", lambda: dict(jb("purchase"), items=[{"item_id": "i1", "quantity": 2}])),
            ("missing_field", lambda: dict(jb("purchase"), items=[{"item_id": None, "price": 1}])),
            ("missing_field", lambda: dict(self.without(jb("impression"), "user_id"), position="x")),
            ("missing_field", lambda: dict(self.without(jb("click"), "impression_id"), ts="bad")),
            # wrong_type
            ("wrong_type", lambda: dict(jb(), **{r.choice(["event_id", "user_id"]): r.choice([123, True, ["a"]])})),
            ("wrong_type", lambda: dict(jb(), ts=r.choice([True, False, [T0], {"ms": T0}]))),
            ("wrong_type", lambda: dict(jb("impression"), position=r.choice([True, "3", 2.5, [1], 1.0000001]))),
            ("wrong_type", lambda: dict(jb("impression"), **r.choice([
                {"price": "9.99"}, {"price": True}, {"propensity": False}, {"viewable_ms": "100"},
                {"viewable_fraction": True}, {"surface": 3}, {"request_id": 7}, {"variant": False},
                {"experiment": 1}, {"context": "mobile"}, {"context": {"device": 1}},
                {"context": {"device": None}}, {"context": ["mobile"]}, {"item_id": 17}]))),
            ("wrong_type", lambda: dict(jb("exposure"), **r.choice([{"variant": 2}, {"experiment": True},
                                                                    {"context": {"a": "b", "c": False}}]))),
            ("wrong_type", lambda: dict(jb(), bot=r.choice(["true", 1, 0, "yes"]))),
            ("wrong_type", lambda: dict(jb("click"), **r.choice([{"impression_id": 77}, {"item_id": 5}]))),
            ("wrong_type", lambda: dict(jb("add_to_cart"), quantity=r.choice([1.5, "2", True, [1]]))),
            ("wrong_type", lambda: dict(jb("purchase"), order_id=r.choice([12345, True]))),
            ("wrong_type", lambda: dict(jb("purchase"), items=r.choice([
                {}, "[]", [5], ["i1"], [{"item_id": 5, "price": 1}], [{"item_id": "a", "price": "1"}],
                [{"item_id": "a", "price": 1, "quantity": 1.5}], [{"item_id": "a", "price": 1, "quantity": True}],
                [{"item_id": "a", "price": True}]]))),
            ("wrong_type", lambda: dict(jb("impression"), position="x", ts="not a time")),
            ("wrong_type", lambda: dict(jb("impression"), propensity="x", price=-5)),
            # invalid_timestamp
            ("invalid_timestamp", lambda: dict(jb(), ts=r.choice([
                "2026-03-01T12:00:00", "2026-03-01 12:00:00Z", "2026-13-01T00:00:00Z",
                "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-03-01T24:00:00Z",
                "2026-03-01T12:60:00Z", "2026-03-01T12:00:60Z", "2026-03-01T12:00:00+24:00",
                "2026-03-01T12:00:00+05:60", "2026-03-01T12:00:00.Z", "2026-03-01T12:00:00+0530",
                "1772366400000", "", "2026-3-1T12:00:00Z", "2026-03-01T12:00Z", "yesterday",
                "2026-03-01T12:00:00.123ZZ", " 2026-03-01T12:00:00Z", "2026-00-10T00:00:00Z",
                "2026-03-00T00:00:00Z", "2100-02-29T00:00:00Z", "2026-03-01T12:00:00 Z",
                "2026-03-01T12:00:00+05", "2026-03-01T12:00:00.5+5:30", "2026-03-01T12:00:00.12a3Z"]))),
            ("invalid_timestamp", lambda: dict(jb(), ts=r.choice([T0 + 0.5, float(T0) + 0.25,
                                                                 TS_MIN_MS - 1, TS_MAX_MS + 1, 1e20, -1e19]))),
            ("invalid_timestamp", lambda: self.raw_line(dict(jb(), ts=RAW), r.choice(["1e400", "-1e400", "1" * 30]))),
            ("invalid_timestamp", lambda: dict(jb("impression"), ts="2026-02-30T00:00:00Z", position=0)),
            # invalid_value
            ("invalid_value", lambda: dict(jb("impression"), **r.choice([
                {"position": 0}, {"position": -1}, {"position": 2_147_483_648}, {"position": 1e10},
                {"position": 0.0}, {"propensity": 0}, {"propensity": 1.0000001}, {"propensity": -0.5},
                {"price": -0.01}, {"viewable_fraction": 1.0001}, {"viewable_fraction": -0.1},
                {"viewable_ms": -1}, {"propensity": 0.0}]))),
            ("invalid_value", lambda: self.raw_line(dict(jb("impression"), **{r.choice(["position", "price", "viewable_ms"]): RAW}),
                                                    r.choice(["1e400", "-1e400", "9" * 5000]))),
            ("invalid_value", lambda: dict(jb("add_to_cart"), quantity=r.choice([0, -2, 2_147_483_648, 0.0]))),
            ("invalid_value", lambda: dict(jb("purchase"), items=r.choice([
                [], [{"item_id": "a", "price": 1, "quantity": 0}], [{"item_id": "a", "price": -1}],
                [{"item_id": "a", "price": 1}, {"item_id": "b", "price": 2, "quantity": 2_147_483_648}]]))),
            ("invalid_value", lambda: dict(jb(), **{r.choice(["event_id", "user_id"]): ""})),
        ]
        reason, build = r.choice(cases)
        payload = build()
        return reason, ("bytes" if isinstance(payload, bytes) else "raw"), payload

    def csv_junk(self):
        """One quarantined CSV record: (reason, {column: cell})."""
        r = self.rng

        def cells(etype=None, **changes):
            c = self.cells(self.clean(self.junk_base(etype)))
            c.update(changes)
            return c

        cases = [
            ("missing_field", lambda: cells(type="")),
            ("missing_field", lambda: cells(**{r.choice(["event_id", "ts", "user_id"]): ""})),
            ("missing_field", lambda: cells("exposure", **{r.choice(["variant", "experiment"]): ""})),
            ("missing_field", lambda: cells("impression", **{r.choice(["item_id", "position"]): ""})),
            ("missing_field", lambda: cells("click", impression_id="")),
            ("missing_field", lambda: cells("add_to_cart", item_id="")),
            ("missing_field", lambda: cells("purchase", **{r.choice(["order_id", "items"]): ""})),
            ("missing_field", lambda: cells("purchase", items='[{"item_id": "a"}]')),
            ("missing_field", lambda: cells("impression", user_id="", position="x")),
            ("unknown_type", lambda: cells(type=r.choice(["view", "Click", "5", "true"]))),
            ("wrong_type", lambda: cells("impression", position=r.choice(["abc", "true", "2.5", "3x", "1,5"]))),
            ("wrong_type", lambda: cells("impression", **r.choice([
                {"price": "9.99€"}, {"price": "true"}, {"propensity": "false"}, {"viewable_ms": "long"},
                {"viewable_fraction": "half"}]))),
            ("wrong_type", lambda: cells(bot=r.choice(["yes", "1", "0", "True"]))),
            ("wrong_type", lambda: cells("add_to_cart", quantity=r.choice(["1.5", "two", "false"]))),
            ("wrong_type", lambda: cells("purchase", items=r.choice([
                "{}", "[5]", '[{"item_id": 5, "price": 1}]', '[{"item_id": "a", "price": "1"}]',
                '[{"item_id": "a", "price": 1, "quantity": 1.5}]', '"x"']))),
            ("invalid_timestamp", lambda: cells(ts=r.choice([
                "2026-03-01T12:00:00", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
                "2026-03-01T24:00:00Z", "2026-03-01T12:00:00+0530", "yesterday", "1772366400000.5",
                str(TS_MIN_MS - 1), str(TS_MAX_MS + 1), "1e400", "2026-03-01T12:00:00.Z"]))),
            ("invalid_value", lambda: cells("impression", **r.choice([
                {"position": "0"}, {"position": "2147483648"}, {"position": "-1"}, {"propensity": "0"},
                {"propensity": "1.0000001"}, {"price": "-0.01"}, {"price": "1e400"},
                {"viewable_fraction": "1.5"}, {"viewable_ms": "-1"}]))),
            ("invalid_value", lambda: cells("add_to_cart", quantity=r.choice(["0", "-3"]))),
            # an items cell that is not JSON (or nests deeper than 128) stays text: wrong_type
            ("wrong_type", lambda: cells("purchase", items=r.choice([
                "not json", "[1,", "{'item_id': 'a'}", "[" * 129 + "]" * 129]))),
            # a JSON items cell of 128 containers: with the event's object, one too many
            ("invalid_json", lambda: cells("purchase", items="[" * 128 + "]" * 128)),
            # more cells than the header names
            ("invalid_json", lambda: dict(cells(), __extra__=r.choice([["surplus"], ["", "x"]]))),
            # text after the closing quote of a cell (RFC 4180 forbids it)
            ("invalid_json", lambda: dict(cells("impression"), __badquote__=r.choice(["event_id", "user_id", "type"]))),
            ("invalid_value", lambda: cells("purchase", items=r.choice([
                "[]", '[{"item_id": "a", "price": 1, "quantity": 0}]', '[{"item_id": "a", "price": -1}]']))),
        ]
        reason, build = r.choice(cases)
        return reason, "cells", build()

    @staticmethod
    def without(ev, key):
        ev = dict(ev)
        ev.pop(key, None)
        return ev

    def raw_line(self, ev, raw_text):
        return json.dumps(self.clean(ev)).replace(json.dumps(RAW), raw_text).encode()

    # ---------------------------------------------------------------- serialisation
    def ts_value(self, ms):
        """The JSON value of a timestamp: integer ms, 3.0-style float, or RFC 3339 text."""
        r = self.rng
        roll = r.random()
        if roll < 0.3 or not 0 <= ms <= 4_000_000_000_000:  # extremes stay numbers
            return ms
        if roll < 0.4 and not self.csv:
            return float(ms)
        offset_min = r.choice([0, 0, 0, 0, 330, -480, 60, -225, 840, -720, 23 * 60 + 59])
        local = dt.datetime(1970, 1, 1) + dt.timedelta(milliseconds=ms + offset_min * MIN)
        text = local.strftime("%Y-%m-%d") + r.choice("TTTt") + local.strftime("%H:%M:%S")
        frac = f"{ms % 1000:03d}"
        options = [frac, frac + "".join(r.choice("0123456789") for _ in range(r.randint(1, 6)))]
        if frac.endswith("00"):
            options.append(frac[0])
        if frac.endswith("0"):
            options.append(frac[:2])
        if frac == "000":
            options += ["", "", "0"]
        chosen = r.choice(options)
        text += "." + chosen if chosen else ""
        if offset_min == 0:
            text += r.choice(["Z", "Z", "Z", "z", "+00:00", "-00:00"])
        else:
            sign = "+" if offset_min > 0 else "-"
            text += f"{sign}{abs(offset_min) // 60:02d}:{abs(offset_min) % 60:02d}"
        return text

    @staticmethod
    def clean(ev):
        return {k: v for k, v in ev.items() if not k.startswith("_")}

    def ser(self, ev):
        """Event dict -> JSON-ready dict (private keys dropped, ts rendered)."""
        out = {k: v for k, v in ev.items() if not k.startswith("_")}
        if isinstance(out.get("ts"), int) and not isinstance(out.get("ts"), bool):
            out["ts"] = self.ts_value(out["ts"])
        return out

    @staticmethod
    def cells(obj):
        """JSON-ready dict -> CSV cells (context.<key> columns, items as one JSON cell)."""
        out = {}
        for k, v in obj.items():
            if v is None:
                continue
            if k == "context" and isinstance(v, dict):
                for ck, cv in v.items():
                    out[f"context.{ck}"] = cv
            elif isinstance(v, bool):
                out[k] = "true" if v else "false"
            elif isinstance(v, (int, float)):
                out[k] = repr(v)
            elif isinstance(v, list) and len(v) >= 2:
                out[k] = json.dumps(v, ensure_ascii=False, indent=1)  # a quoted cell over several lines
            elif isinstance(v, (list, dict)):
                out[k] = json.dumps(v, ensure_ascii=False)
            else:
                out[k] = v
        return out

    # ---------------------------------------------------------------- assembly
    def build(self):
        r = self.rng
        self.make_users()
        self.st_edges()
        if self.text_edges:
            self.st_text_edges()
        ordered = sorted(self.events, key=lambda e: (e["_key"], e["_seq"]))
        for _ in range(len(ordered) // 30):  # a few adjacent swaps: input order ≠ time order
            i = r.randrange(len(ordered) - 1)
            ordered[i], ordered[i + 1] = ordered[i + 1], ordered[i]
        rows = [("event", e) for e in ordered]  # ("event", dict) | ("junk", reason, payload)

        def index_of(ev):
            return next(i for i, row in enumerate(rows) if row[0] == "event" and row[1] is ev)

        # duplicates: same line, same id with another type, or after a quarantined line with that id
        dup_sources = r.sample(ordered, max(3, len(ordered) // 25))
        for ev in dup_sources:
            i = index_of(ev)
            how = r.random()
            if how < 0.5:
                dup = dict(ev)
            elif how < 0.8:
                dup = self.other_type_with_id(ev)
            else:
                dup = dict(ev)
                if r.random() < 0.5:
                    reason, bad = "wrong_type", dict(ev, bot="x")
                else:
                    reason, bad = "missing_field", self.without(ev, "user_id")
                rows.insert(i, ("junk", reason, "event", bad))  # quarantined first: registers no id
                i += 1
            rows.insert(r.randint(i + 1, len(rows)), ("dup", dup))
        for kind, ev, extra in self.extra:
            if kind == "dup_of":
                i = index_of(ev)
                rows.insert(r.randint(i + 1, len(rows)), ("dup", dict(ev, **extra)))
            else:
                rows.insert(r.randint(0, len(rows)), ("junk", extra, "event", ev))
        # junk lines at random places
        for _ in range(r.randint(15, 40)):
            reason, form, payload = self.csv_junk() if self.csv else self.json_junk()
            rows.insert(r.randint(0, len(rows)), ("junk", reason, form, payload))
        if not self.csv and r.random() < 0.15:
            for size, reason in ((1_048_576, None), (1_048_577, "invalid_json")):
                rows.insert(r.randint(0, len(rows)), ("big", reason, size))
        return self.render(rows)

    def other_type_with_id(self, ev):
        """A valid event of another type that reuses ev's event_id: a duplicate all the same."""
        base = self.junk_base(self.rng.choice([t for t in ("click", "add_to_cart", "impression")
                                               if t != ev["type"]]))
        base.update(event_id=ev["event_id"], user_id=ev["user_id"], ts=ev["ts"])
        return base

    def st_edges(self):
        """Valid events at the limits of the ranges: extreme timestamps, leap day, max position."""
        u = "edge-user"
        self.click(u, TS_MIN_MS, "ghost-1")
        self.impression(u, TS_MAX_MS, "i1", vis=(None, None))
        self.cart(u, 1_709_251_199_999, "i2")  # 2024-02-29T23:59:59.999Z (leap day)
        self.impression(u, T0, "i3", vis=(0, 0), propensity=1, price=0)
        leap = self.cart(u, 0, "i4")  # a literal leap-day time with an extreme offset, 9 digits
        leap["ts"] = "2024-02-29T23:59:59.999999999+23:59"

    def st_text_edges(self):
        """One unexposed user whose cells need the training export's escapes (%, comma, quote, CR,
        LF), plus fixed round cases: two rounds at one ts (input order decides), an item re-shown
        within the dedup window and clicked on its second showing, context keys seen only on a
        non-viewable impression or a duplicate line (so never on a round).  Built without the
        random generator's help, apart from where the duplicate line lands."""
        u = 'text,"edge"%2C\r\nuser'
        t = T0 + 6 * 24 * H + 123

        def imp(eid, ts, item, position, **kw):
            ev = {"type": "impression", "event_id": eid, "ts": ts, "user_id": u, "item_id": item,
                  "position": position, **kw}
            return self.emit(ev)

        def clk(eid, ts, target):
            return self.emit({"type": "click", "event_id": eid, "ts": ts, "user_id": u,
                              "impression_id": target["event_id"]})

        i1 = imp("txt-i1", t, 'it%em,"q"\r\nx', 2, surface="sur,face%", propensity=0.25,
                 request_id="rq,1", context={'k,ey%"': 'v\r\nal"', "device": "mo,bile"})
        clk("txt-c1", t + S, i1)
        i2 = imp("txt-i2", t, "plain", 1, context={"note": "100%25"})  # same ts, later input order
        i3 = imp("txt-i3", t + MIN, "plain", 3, context={})  # re-shown: collapsed in the report
        clk("txt-c3", t + MIN + 10 * S, i3)  # rewards i3's round, not i2's
        hidden = imp("txt-i4", t + 2 * MIN, "hidden", 1, viewable_fraction=0.1, viewable_ms=10,
                     context={"only_hidden": "x"})
        clk("txt-c4", t + 2 * MIN + S, hidden)  # non-viewable: no round
        self.extra.append(("dup_of", i2, {"context": {"only_dup": "y"}}))  # a dropped duplicate

    def render(self, rows):
        r = self.rng
        out_lines = []  # bytes without newline
        for row in rows:
            kind = row[0]
            if kind in ("event", "dup"):
                self.expected["duplicate_events"] += kind == "dup"
                obj = self.ser(row[1])
                out_lines.append(self.cells(obj) if self.csv else self.render_obj(obj))
            elif kind == "junk":
                _, reason, form, payload = row
                self.expected[reason] += 1
                if form == "bytes":
                    out_lines.append(payload)
                elif form == "cells":
                    out_lines.append(payload)
                else:
                    obj = self.ser(payload) if form == "event" else self.clean(payload)
                    out_lines.append(self.cells(obj) if self.csv else self.render_obj(obj))
            elif kind == "big":
                _, reason, size = row
                ev = self.clean(self.junk_base("add_to_cart"))
                ev["ts"] = T0
                ev["pad"] = ""
                ev["pad"] = "p" * (size - len(json.dumps(ev).encode()))
                line = json.dumps(ev).encode()
                assert len(line) == size
                if reason:
                    self.expected[reason] += 1
                out_lines.append(("big", line))
        self.expected["events_read"] = len(out_lines)
        if self.csv:
            return self.render_csv(out_lines)
        eol = r.choice([b"\n", b"\n", b"\r\n", "mixed"])
        first = out_lines[0] if not isinstance(out_lines[0], tuple) else b""
        # a file-level BOM is skipped; a BOM-led junk line in first place needs one before it
        buf = bytearray(b"\xef\xbb\xbf" if r.random() < 0.2 or first.startswith(b"\xef\xbb\xbf") else b"")
        for line in out_lines:
            big = isinstance(line, tuple)
            if big:
                line = line[1]
            if r.random() < 0.02:
                buf += r.choice([b"", b"   ", b"\t", b" \t "]) + b"\n"  # blank lines
            end = b"\n" if big else (eol if eol != "mixed" else r.choice([b"\n", b"\r\n"]))
            buf += line + end
        if r.random() < 0.3:
            buf = buf.rstrip(b"\r\n")  # no newline at the end of the file
        return bytes(buf)

    def render_obj(self, obj):
        r = self.rng
        text = json.dumps(obj, ensure_ascii=r.random() < 0.5,
                          separators=r.choice([(",", ":"), (", ", ": ")]))
        if r.random() < 0.03:
            text = " " + text + "\t"  # whitespace around the object is JSON
        return text.encode("utf-8")

    def render_csv(self, records):
        r = self.rng
        columns = list(CSV_COLUMNS)
        for rec in records:
            for k in rec:
                if k not in columns and not k.startswith("__"):
                    columns.append(k)
        r.shuffle(columns)
        sio = io.StringIO(newline="")
        terminator = r.choice(["\n", "\r\n"])
        w = csv.writer(sio, lineterminator=terminator)
        w.writerow(columns)
        for rec in records:
            if r.random() < 0.02:
                sio.write("\n")  # an empty line
            row = [rec.get(c, "") for c in columns] + rec.get("__extra__", [])
            bad = rec.get("__badquote__")
            if bad is None:
                w.writerow(row)
            else:
                # the cell written as "value"x: a quoted cell with text after its closing quote
                row[columns.index(bad)] = "QQBADQUOTEQQ"
                one = io.StringIO(newline="")
                csv.writer(one, lineterminator=terminator).writerow(row)
                sio.write(one.getvalue().replace("QQBADQUOTEQQ", '"' + str(rec.get(bad, "v")).replace('"', '""') + '"x'))
        data = sio.getvalue().encode("utf-8")
        return (b"\xef\xbb\xbf" if r.random() < 0.2 else b"") + data


def nested_arrays(depth):
    """depth nested empty arrays: [[[...]]]."""
    value = []
    for _ in range(depth - 1):
        value = [value]
    return value


def generate(seed, n_users=40, csv_mode=False, leak_rate=None, text_edges=False):
    """Returns (log bytes, Counter of expected events_read, duplicate_events, quarantine reasons).
    text_edges adds st_text_edges' user (compare.py --rounds); without it the log is unchanged."""
    g = Gen(seed, n_users, csv_mode, leak_rate, text_edges)
    data = g.build()
    return data, g.expected


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--users", type=int, default=40)
    ap.add_argument("--csv", action="store_true")
    ap.add_argument("--leak-rate", type=float, help="share of users leaked (default 0.08, max 0.16)")
    ap.add_argument("--text-edges", action="store_true",
                    help="add a user whose cells need the training export's escapes")
    args = ap.parse_args(argv)
    data, _ = generate(args.seed, args.users, args.csv, args.leak_rate, args.text_edges)
    if args.out.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with open(args.out, "wb") as f:
        f.write(data)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
