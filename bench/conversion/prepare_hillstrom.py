#!/usr/bin/env python3
"""Hillstrom's e-mail experiment (MineThatData, 64,000 customers) as click/purchase impressions for
bench/conversion/torch_cvr.py and Funnel's conversion models.

usage: prepare_hillstrom.py --data ../shared/data/hillstrom/hillstrom.csv --out DIR
                            [--test-share 0.3] [--seed 1]

Input columns: row_id,recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,
visit,conversion,spend. Each row is one customer's exposure to the campaign: the e-mail (segment
says which one: Mens E-Mail, Womens E-Mail, or No E-Mail for the control third, which is kept as a
row too), a visit to the site in the following two weeks is the click, a conversion the purchase.

Output: DIR/train.csv and DIR/test.csv, a random split of the rows (seeded by --seed, so the same
arguments give the same files; --test-share of the rows, rounded down, go to the test file), each
with the header

    click,purchase,recency,history_segment,mens,womens,zip_code,newbie,channel,segment

where click = visit and purchase = conversion. The features are all categorical, their values
copied as text: recency (months since the last purchase, 1-12) is a category, not a number;
`history` (dollars spent in the past year) is left out and its bucket `history_segment` (values
such as "2) $100 - $200") kept; `spend` and `row_id` are left out. Two buckets of the published
file contain a thousands separator and are quoted there ("6) $750 - $1,000", "7) $1,000 +"): the
separator is dropped ("6) $750 - $1000", "7) $1000 +"), since the output is read by splitting on
commas. No value may contain a comma or a quote after that (asserted), so nothing is quoted.

A conversion without a visit would be a purchase without a click, which the conversion models
reject: such rows are counted, dropped from both files and their count printed (in the summary as
"dropped_conversion_without_visit"). In the published file there are none.

Prints one JSON summary line: rows, clicks and purchases per file.
"""
import argparse
import csv
import json
import os
import random
import re

FEATURES = ["recency", "history_segment", "mens", "womens", "zip_code", "newbie", "channel", "segment"]
THOUSANDS = re.compile(r"(\d),(\d{3})(?!\d)")  # "$1,000" -> "$1000"
INPUT = ["row_id", "recency", "history_segment", "history", "mens", "womens", "zip_code", "newbie", "channel",
         "segment", "visit", "conversion", "spend"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True, help="hillstrom.csv")
    ap.add_argument("--out", required=True, help="directory for train.csv and test.csv")
    ap.add_argument("--test-share", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    if not 0 < args.test_share < 1:
        raise SystemExit("--test-share must be between 0 and 1")

    with open(args.data, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        missing = [c for c in INPUT if c not in header]
        if missing:
            raise SystemExit(f"{args.data}: no column {', '.join(missing)}")
        col = {name: i for i, name in enumerate(header)}
        rows, dropped = [], 0
        for line, r in enumerate(reader, start=2):
            visit, conversion = r[col["visit"]], r[col["conversion"]]
            if visit not in ("0", "1") or conversion not in ("0", "1"):
                raise SystemExit(f"{args.data}:{line}: visit {visit!r}, conversion {conversion!r} (0 or 1 expected)")
            if conversion == "1" and visit == "0":
                dropped += 1
                continue
            values = [THOUSANDS.sub(r"\1\2", r[col[c]]) for c in FEATURES]
            assert all("," not in v and '"' not in v and "\n" not in v for v in values), (line, values)
            rows.append([visit, conversion] + values)
    if dropped:
        print(f"{args.data}: {dropped} rows with a conversion without a visit dropped")

    order = list(range(len(rows)))
    random.Random(args.seed).shuffle(order)
    n_test = int(len(rows) * args.test_share)
    test = sorted(order[:n_test])
    train = sorted(order[n_test:])

    os.makedirs(args.out, exist_ok=True)
    summary = {"dropped_conversion_without_visit": dropped}
    for name, index in (("train", train), ("test", test)):
        with open(os.path.join(args.out, f"{name}.csv"), "w") as f:
            f.write(",".join(["click", "purchase"] + FEATURES) + "\n")
            for i in index:
                f.write(",".join(rows[i]) + "\n")
        summary[name] = {"rows": len(index), "clicks": sum(rows[i][0] == "1" for i in index),
                         "purchases": sum(rows[i][1] == "1" for i in index)}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
