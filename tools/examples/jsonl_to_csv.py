"""Writes a Funnel JSON Lines event log as CSV in DESIGN.md section 2's layout.

    python3 tools/examples/jsonl_to_csv.py EVENTS.jsonl EVENTS.csv

Every top-level field is a column (in order of first appearance), each key of `context` a
`context.<key>` column, lists, objects and booleans a JSON cell; an absent field is an empty cell.
Lines that are not JSON objects (the simulator's deliberate junk lines) have no CSV form and are
left out, so the CSV's report counts fewer lines read and quarantined than the JSON Lines'.
"""
import csv
import json
import sys


def main(src, dst):
    rows = []
    for line in open(src, encoding="utf-8", errors="replace"):
        try:
            r = json.loads(line)
        except ValueError:
            continue
        if isinstance(r, dict) and isinstance(r.get("context", {}), dict):
            rows.append(r)
    cols, ctx = [], []
    for r in rows:
        for k, v in r.items():
            if k == "context":
                for c in v:
                    if "context." + c not in ctx:
                        ctx.append("context." + c)
            elif k not in cols:
                cols.append(k)

    def cell(v):
        if v is None:
            return ""
        return json.dumps(v, separators=(",", ":")) if isinstance(v, (list, dict, bool)) else str(v)

    with open(dst, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(cols + ctx)
        for r in rows:
            w.writerow([cell(r.get(k)) for k in cols] + [r.get("context", {}).get(c[8:], "") for c in ctx])


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: jsonl_to_csv.py EVENTS.jsonl EVENTS.csv")
    main(sys.argv[1], sys.argv[2])
