#!/usr/bin/env python3
"""Writes Hillstrom's e-mail experiment (../shared/data/hillstrom/hillstrom.csv) as Funnel events.

The e-mail is the exposure and the one impression (position 1) per customer, a visit is the click
and a conversion is a purchase of `spend` dollars, as the data's README describes. The arms are the
variants: `control` = No E-Mail, `mens` = Mens E-Mail, `womens` = Womens E-Mail. The customer's
zip_code, channel, newbie flag and history segment go in the exposure's context (segments for the
report). The file has no time stamps: every customer is exposed on 2008-03-01 at a time spread over
the day by row, the visit follows 10 minutes later and the purchase 30 minutes after that, inside
Funnel's default windows. There are no add-to-cart events.

Usage: hillstrom_events.py [CSV] > events.jsonl   (CSV defaults to $FUNNEL_SHARED_DATA or ../shared/data)
"""
import csv, json, os, sys
from datetime import datetime, timedelta, timezone

ARMS = {"No E-Mail": "control", "Mens E-Mail": "mens", "Womens E-Mail": "womens"}


def main():
    shared = os.environ.get("FUNNEL_SHARED_DATA") or os.path.join(os.path.dirname(__file__), "..", "..", "..", "shared", "data")
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(shared, "hillstrom", "hillstrom.csv")
    start = datetime(2008, 3, 1, tzinfo=timezone.utc)
    out = sys.stdout
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            i = int(row["row_id"])
            user = f"c{i}"
            arm = ARMS[row["segment"]]
            t0 = start + timedelta(seconds=i)  # 64,000 rows fit in one day
            def ts(t):
                return t.strftime("%Y-%m-%dT%H:%M:%SZ")
            context = {"zip_code": row["zip_code"], "channel": row["channel"],
                       "newbie": "yes" if row["newbie"] == "1" else "no",
                       "history_segment": row["history_segment"].split(")")[0]}
            events = [
                {"type": "exposure", "event_id": f"e{i}", "ts": ts(t0), "user_id": user,
                 "experiment": "hillstrom-email", "variant": arm, "context": context},
                {"type": "impression", "event_id": f"i{i}", "ts": ts(t0), "user_id": user,
                 "experiment": "hillstrom-email", "variant": arm, "item_id": f"email-{arm}", "position": 1,
                 "surface": "email", "price": float(row["spend"]) if row["conversion"] == "1" else 0.0},
            ]
            if row["visit"] == "1":
                events.append({"type": "click", "event_id": f"k{i}", "ts": ts(t0 + timedelta(minutes=10)),
                               "user_id": user, "impression_id": f"i{i}", "item_id": f"email-{arm}"})
            if row["conversion"] == "1":
                events.append({"type": "purchase", "event_id": f"p{i}", "ts": ts(t0 + timedelta(minutes=40)),
                               "user_id": user, "order_id": f"o{i}",
                               "items": [{"item_id": f"email-{arm}", "quantity": 1, "price": float(row["spend"])}]})
            for e in events:
                out.write(json.dumps(e, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
