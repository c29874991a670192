#!/usr/bin/env python3
"""Independent reference implementation of Funnel's counting contract.

Implements ../../../shared/DESIGN.md sections 2 (events), 3 (counting rules), 5 (report keys for
counts) and 7 (precise rules), plus the choices of docs/counting-choices.md.  It is written to be
audited, not to be fast: each step is a direct transcription of one rule, and comments cite it as
"§2", "§3.4", "§7 Validation", "CC" (= docs/counting-choices.md).

    python3 funnel_reference.py --events PATH [--config funnel.yaml] [--stats]

prints a JSON object with "experiment", "control", "variants", "data_quality" (without srm),
"segments" and "positions".  Standard library only, plus PyYAML for the optional config.
With --rounds it prints instead the log's rounds for off-policy evaluation and position bias
(rounds(), §7 "Rounds ..."), one JSON object a line.
With --stats it adds the statistics of §4/§5/§7 (stats_reference.py, which needs numpy, scipy
and statsmodels): per-variant "metrics", "comparisons", data_quality.srm and diagnosis.verdict.
"""

import argparse
import csv
import gzip
import io
import json
import math
import os
import re
import sys
from collections import defaultdict

# --------------------------------------------------------------------------------------------
# Configuration (§3: every key optional; these are the defaults)
# --------------------------------------------------------------------------------------------

DEFAULT_CONFIG = {
    "impression_tracking": {
        "viewability_threshold": 0.5,
        "viewability_duration_ms": 1000,
        "dedup_window_seconds": 3600,
        "bot_filter": True,
        "bot_max_clicks_per_minute": 20,
    },
    "click_attribution": {
        "click_window_seconds": 1800,
        "clock_skew_seconds": 5,
        "dedup_clicks": True,
        "conversion_window_hours": 24,
        "view_through": False,
        "view_through_window_hours": 168,
    },
    "ab_testing": {
        "experiment": None,
        "control": "control",
        # used only by --stats (stats_reference.py)
        "expected_split": None,
        "significance_level": 0.05,
        "correction": "holm",
        "primary_metric": "purchases_per_user",
        "guardrail_metrics": ["ctcvr", "revenue_per_user"],
        "srm_p_threshold": 0.001,
    },
}


def load_config(path=None):
    """Returns a flat dict of the settings, defaults overlaid by the YAML file's keys."""
    merged = {section: dict(values) for section, values in DEFAULT_CONFIG.items()}
    if path:
        import yaml  # only for the config file

        with open(path, "r", encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
        for section, values in data.items():
            if isinstance(values, dict):
                merged.setdefault(section, {}).update(values)
    flat = {}
    for values in merged.values():
        flat.update(values)
    return flat


class FunnelError(Exception):
    """A clear error that stops the report (e.g. §7 Assignment: experiment null but not exactly one)."""


# --------------------------------------------------------------------------------------------
# Reading (§2; CC "Reading and validation")
# --------------------------------------------------------------------------------------------

MAX_LINE_BYTES = 1_048_576  # CC: a line longer than 1 MiB is invalid_json
UTF8_BOM = b"\xef\xbb\xbf"


class Quarantine(Exception):
    """Raised by validation with one of the six reason codes (§2)."""

    def __init__(self, reason, field=None):
        super().__init__(reason)
        self.reason = reason
        self.field = field


REASONS = ["invalid_json", "missing_field", "wrong_type", "invalid_value", "unknown_type",
           "invalid_timestamp"]


def _reject_constant(name):
    # CC: the literals NaN, Infinity, -Infinity anywhere in a line are invalid_json.
    raise ValueError("non-finite literal " + name)


def _parse_int_literal(text):
    # Python 3.11 refuses int() of more than 4300 digits; such a number is still valid JSON (CC:
    # "a number too large for a double is a valid JSON number"), so read it as a float (infinite).
    if len(text) > 4000:
        return float(text)
    return int(text)


# CC: a value nesting more than 128 containers (arrays and objects; an event's own object counts
# as one) is not accepted as JSON: a parser must bound its recursion, and the contract fixes where.
MAX_JSON_DEPTH = 128


def json_depth(value):
    """The number of containers on the deepest path through value (a scalar has depth 0)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        v, d = stack.pop()
        if isinstance(v, dict):
            children = v.values()
        elif isinstance(v, list):
            children = v
        else:
            continue
        deepest = max(deepest, d)
        stack.extend((c, d + 1) for c in children)
    return deepest


def parse_json_text(text):
    """json.loads, strict about NaN/Infinity and nesting; raises ValueError on anything that is
    not JSON or nests deeper than MAX_JSON_DEPTH."""
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_int=_parse_int_literal)
    except RecursionError:
        raise ValueError("nested too deep")
    if json_depth(value) > MAX_JSON_DEPTH:
        raise ValueError("nested too deep")
    return value


def read_file_bytes(path):
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":  # gzip, detected by magic bytes
        data = gzip.decompress(data)
    if data.startswith(UTF8_BOM):  # CC: a UTF-8 BOM at the start of a file is skipped
        data = data[len(UTF8_BOM):]
    return data


def is_csv_path(path):
    lower = path.lower()
    return lower.endswith(".csv") or lower.endswith(".csv.gz")


def read_jsonl_records(data):
    """Yields, per non-blank line, (line number, parsed JSON value or Quarantine(invalid_json))."""
    for line_no, line in enumerate(data.split(b"\n"), start=1):
        if line.endswith(b"\r"):  # CC: a trailing \r is stripped
            line = line[:-1]
        if all(c in b" \t\r" for c in line):  # CC: blank lines are skipped, not counted
            continue
        if len(line) > MAX_LINE_BYTES:  # CC: longer than 1 MiB (without newline / trailing \r)
            yield line_no, Quarantine("invalid_json")
            continue
        try:
            text = line.decode("utf-8")  # CC: invalid UTF-8 anywhere in a line is invalid_json
        except UnicodeDecodeError:
            yield line_no, Quarantine("invalid_json")
            continue
        try:
            yield line_no, parse_json_text(text)
        except ValueError:  # includes json.JSONDecodeError
            yield line_no, Quarantine("invalid_json")


# Field kinds, used to read CSV cells "by the field's type" (§2) and to validate (§7).
FIELD_KIND = {
    "type": "string", "event_id": "string", "ts": "ts", "user_id": "string",
    "experiment": "string", "variant": "string", "item_id": "string", "position": "integer",
    "surface": "string", "request_id": "string", "propensity": "number", "price": "number",
    "viewable_fraction": "number", "viewable_ms": "number", "context": "context", "bot": "bool",
    "impression_id": "string", "quantity": "integer", "order_id": "string", "items": "items",
}

JSON_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")


def csv_cell_value(column, cell):
    """Converts one non-empty CSV cell to the JSON value it stands for (§2 CSV rules).

    Numbers are read for numeric fields and for `ts` (a cell in JSON number syntax is a number,
    anything else stays a string and is judged by validation); `true`/`false` for `bot`; `items`
    is a JSON array in one cell.  Any other column (string fields, unknown fields) is a string.
    """
    kind = FIELD_KIND.get(column)
    if kind in ("integer", "number", "ts"):
        if JSON_NUMBER.fullmatch(cell):
            return parse_json_text(cell)
        return cell  # not a number: validation says wrong_type (or invalid_timestamp for ts)
    if kind == "bool":
        if cell == "true":
            return True
        if cell == "false":
            return False
        return cell  # wrong_type
    if kind == "items":
        try:
            return parse_json_text(cell)
        except ValueError:
            # CC: a cell that is not JSON stays text, like a numeric cell that is not a number:
            # on a purchase it is wrong_type (text where an array belongs); elsewhere not validated.
            return cell
    return cell


def read_csv_records(data):
    """Yields, per non-blank CSV record, (its first line number, event object (dict) or Quarantine).

    RFC 4180, strictly: text after a closing quote or a quoted cell left open at the end of the file
    refuses the record (invalid_json), and reading resumes on the line after the one where the
    defect was found.  A record with more cells than the header is invalid_json too.
    """
    text = data.decode("utf-8", errors="surrogateescape")
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    header = None
    while True:
        first_line = rows.line_num + 1
        try:
            row = next(rows)
        except StopIteration:
            return
        except csv.Error:
            if header is None:
                raise ValueError(f"line {first_line}: the header row is malformed CSV")
            yield first_line, Quarantine("invalid_json")
            continue
        if not row or (len(row) == 1 and all(c in " \t\r" for c in row[0])):
            continue  # blank record
        if header is None:
            header = [c.strip(" \t\r") for c in row]
            missing = [c for c in ("event_id", "ts", "user_id", "type") if c not in header]
            if missing:
                raise ValueError(f"line {first_line}: the header lacks the required columns {', '.join(missing)}")
            continue
        if any("\udc80" <= c <= "\udcff" for cell in row for c in cell):
            yield first_line, Quarantine("invalid_json")  # invalid UTF-8 in the record
            continue
        if len(row) > len(header):
            yield first_line, Quarantine("invalid_json")  # CC: more cells than the header names
            continue
        obj = {}
        for column, cell in zip(header, row):  # missing trailing cells are absent fields
            if cell == "":
                continue  # §2: an empty cell is an absent field
            if column.startswith("context."):
                # §2: a context.<key> column is that key of context
                obj.setdefault("context", {})[column[len("context."):]] = cell
            else:
                obj[column] = csv_cell_value(column, cell)
        if json_depth(obj) > MAX_JSON_DEPTH:
            yield first_line, Quarantine("invalid_json")
            continue
        yield first_line, obj


# --------------------------------------------------------------------------------------------
# Validation (§2 table, §7 Validation, CC)
# --------------------------------------------------------------------------------------------

EVENT_TYPES = ("exposure", "impression", "click", "add_to_cart", "purchase")

# CC: check order within a stage follows the order of the field table in §2.
FIELD_ORDER = ["event_id", "ts", "user_id", "experiment", "variant", "item_id", "position",
               "surface", "request_id", "propensity", "price", "viewable_fraction", "viewable_ms",
               "context", "bot", "impression_id", "quantity", "order_id", "items"]

# §2 table: which fields are listed for each type, and whether they are required.
# "req" = required, "opt" = optional (absent allowed).  Fields not listed are kept, not validated.
COMMON_FIELDS = {"event_id": "req", "ts": "req", "user_id": "req", "bot": "opt"}
TYPE_FIELDS = {
    "exposure": {"experiment": "req", "variant": "req", "context": "opt"},
    # position: the table gives no "optional"/default for it (unlike its neighbours): required.
    "impression": {"experiment": "opt", "variant": "opt", "item_id": "req", "position": "req",
                   "surface": "opt", "request_id": "opt", "propensity": "opt", "price": "opt",
                   "viewable_fraction": "opt", "viewable_ms": "opt", "context": "opt"},
    "click": {"impression_id": "req", "item_id": "opt"},
    "add_to_cart": {"item_id": "req", "impression_id": "opt", "quantity": "opt"},
    "purchase": {"order_id": "req", "items": "req"},
}

INT_MAX = 2_147_483_647                      # CC: integral values above this are invalid_value
TS_MIN_MS = -62_135_596_800_000              # CC: 0001-01-01T00:00:00.000Z
TS_MAX_MS = 253_402_300_799_999              # CC: 9999-12-31T23:59:59.999Z


def is_number(v):
    # §7: booleans are never numbers (Python's bool is a subclass of int, so exclude it).
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def to_float(v):
    """A JSON number as a double; integers too large for a double become ±infinity (CC)."""
    try:
        return float(v)
    except OverflowError:
        return math.inf if v > 0 else -math.inf


def is_integral_number(v):
    # §7: integer fields accept numbers with no fractional part (3.0).  An infinite value (from a
    # literal too large for a double) is not "fractional": it fails the range check instead (CC).
    if not is_number(v):
        return False
    if isinstance(v, int):
        return True
    return (not math.isfinite(v)) or v.is_integer()


RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))"
)


def is_leap(year):
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def parse_rfc3339_ms(s):
    """CC: YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM) -> epoch ms, or None if not acceptable."""
    m = RFC3339.fullmatch(s)
    if not m:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    fraction, zulu, sign, off_h, off_m = m.group(7), m.group(8), m.group(9), m.group(10), m.group(11)
    days_in_month = [31, 29 if is_leap(year) else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    if not 1 <= month <= 12 or not 1 <= day <= days_in_month[month - 1]:
        return None
    if hour > 23 or minute > 59 or second > 59:
        return None
    offset_s = 0
    if not zulu:
        oh, om = int(off_h), int(off_m)
        if oh > 23 or om > 59:
            return None
        offset_s = (oh * 3600 + om * 60) * (1 if sign == "+" else -1)
    # §7: sub-millisecond digits truncated (digits beyond the third are dropped).
    frac_ms = int((fraction or "").ljust(3, "0")[:3])
    local_s = days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second
    return (local_s - offset_s) * 1000 + frac_ms


def listed_fields(etype):
    fields = dict(COMMON_FIELDS)
    fields.update(TYPE_FIELDS[etype])
    return [(f, fields[f]) for f in FIELD_ORDER if f in fields]


def absent(obj, key):
    return obj.get(key) is None  # §7: JSON null means absent


def validate(obj):
    """Returns a normalised event dict, or raises Quarantine.  Stages in §7's order."""
    # Stage 1: invalid_json — not an object (NaN/Infinity and parse errors handled by the reader).
    if not isinstance(obj, dict):
        raise Quarantine("invalid_json")

    # Stage 2: type absent/null -> missing_field; not a string -> wrong_type; unknown -> unknown_type.
    if absent(obj, "type"):
        raise Quarantine("missing_field", "type")
    etype = obj["type"]
    if not isinstance(etype, str):
        raise Quarantine("wrong_type", "type")
    if etype not in EVENT_TYPES:
        raise Quarantine("unknown_type", "type")
    fields = listed_fields(etype)

    # Stage 3: a required field absent or null -> missing_field.
    for name, need in fields:
        if need == "req" and absent(obj, name):
            raise Quarantine("missing_field", name)
        if name == "items" and isinstance(obj.get("items"), list):
            # CC: an items element without item_id or price (or with null) is missing_field.
            for i, line in enumerate(obj["items"]):
                if isinstance(line, dict):
                    for sub in ("item_id", "price"):
                        if absent(line, sub):
                            raise Quarantine("missing_field", f"items[{i}].{sub}")

    # Stage 4: a present field of the wrong JSON type -> wrong_type.
    for name, _ in fields:
        if absent(obj, name):
            continue
        v = obj[name]
        kind = FIELD_KIND[name]
        if kind == "string" and not isinstance(v, str):
            raise Quarantine("wrong_type", name)
        if kind == "ts" and not (isinstance(v, str) or is_number(v)):
            raise Quarantine("wrong_type", name)  # CC: boolean / array / object ts is wrong_type
        if kind == "integer" and not is_integral_number(v):
            raise Quarantine("wrong_type", name)  # CC: a fractional number is wrong_type
        if kind == "number" and not is_number(v):
            raise Quarantine("wrong_type", name)
        if kind == "bool" and not isinstance(v, bool):
            raise Quarantine("wrong_type", name)
        if kind == "context":
            # §7 / CC: context must be an object of strings (a null value is wrong_type too).
            if not isinstance(v, dict):
                raise Quarantine("wrong_type", name)
            for key, value in v.items():
                if not isinstance(value, str):
                    raise Quarantine("wrong_type", f"context.{key}")
        if kind == "items":
            if not isinstance(v, list):
                raise Quarantine("wrong_type", name)
            for i, line in enumerate(v):
                if not isinstance(line, dict):
                    raise Quarantine("wrong_type", f"items[{i}]")  # CC
                if not isinstance(line["item_id"], str):
                    raise Quarantine("wrong_type", f"items[{i}].item_id")
                if not absent(line, "quantity") and not is_integral_number(line["quantity"]):
                    raise Quarantine("wrong_type", f"items[{i}].quantity")
                if not is_number(line["price"]):
                    raise Quarantine("wrong_type", f"items[{i}].price")

    # Stage 5: ts unparseable -> invalid_timestamp.
    raw_ts = obj["ts"]
    if isinstance(raw_ts, str):
        ts = parse_rfc3339_ms(raw_ts)
        if ts is None:
            raise Quarantine("invalid_timestamp", "ts")
    else:
        # §7: a non-integral number is invalid_timestamp; CC: must lie within years 0001–9999.
        if isinstance(raw_ts, float) and not (math.isfinite(raw_ts) and raw_ts.is_integer()):
            raise Quarantine("invalid_timestamp", "ts")
        ts = int(raw_ts)
        if not TS_MIN_MS <= ts <= TS_MAX_MS:
            raise Quarantine("invalid_timestamp", "ts")

    # Stage 6: a value out of range -> invalid_value.
    def check_int(value, minimum, name):
        if not (minimum <= value <= INT_MAX):  # CC: below the minimum or above 2^31-1
            raise Quarantine("invalid_value", name)

    def check_range(value, name, low, high=math.inf, low_open=False):
        x = to_float(value)
        ok = math.isfinite(x) and (x > low if low_open else x >= low) and x <= high
        if not ok:  # CC: a number too large for a double is invalid_value
            raise Quarantine("invalid_value", name)

    for name, _ in fields:
        if absent(obj, name):
            continue
        v = obj[name]
        if name in ("event_id", "user_id") and v == "":
            raise Quarantine("invalid_value", name)  # §7: only these two must be non-empty
        if name in ("position", "quantity"):
            check_int(v, 1, name)  # §2: position ≥ 1, quantity ≥ 1
        if name == "propensity":
            check_range(v, name, 0.0, 1.0, low_open=True)  # §2: 0 < p ≤ 1
        if name == "price":
            check_range(v, name, 0.0)  # §2: price ≥ 0
        if name == "viewable_fraction":
            check_range(v, name, 0.0, 1.0)  # §2: [0, 1]
        if name == "viewable_ms":
            check_range(v, name, 0.0)  # §2: ≥ 0
        if name == "items":
            if len(v) == 0:
                raise Quarantine("invalid_value", "items")  # CC: empty items is invalid_value
            for i, line in enumerate(v):
                if not absent(line, "quantity"):
                    check_int(line["quantity"], 1, f"items[{i}].quantity")
                check_range(line["price"], f"items[{i}].price", 0.0)

    # Valid: build the normalised event.  Only listed fields are read from here on.
    ev = {"type": etype, "event_id": obj["event_id"], "user_id": obj["user_id"], "ts": ts,
          "bot": obj.get("bot") is True}
    if etype == "exposure":
        ev.update(experiment=obj["experiment"], variant=obj["variant"],
                  context=dict(obj.get("context") or {}))
    elif etype == "impression":
        ev.update(experiment=obj.get("experiment"), variant=obj.get("variant"),
                  item_id=obj["item_id"], position=int(obj["position"]),
                  surface=obj["surface"] if not absent(obj, "surface") else "default",  # §2 default
                  context=dict(obj.get("context") or {}),
                  request_id=obj.get("request_id"),
                  propensity=None if absent(obj, "propensity") else to_float(obj["propensity"]),
                  viewable_fraction=None if absent(obj, "viewable_fraction")
                  else to_float(obj["viewable_fraction"]),
                  viewable_ms=None if absent(obj, "viewable_ms") else to_float(obj["viewable_ms"]))
    elif etype == "click":
        ev.update(impression_id=obj["impression_id"])  # §7: a click's item is its impression's
    elif etype == "add_to_cart":
        ev.update(item_id=obj["item_id"])  # §7: impression_id is informational
    elif etype == "purchase":
        ev.update(order_id=obj["order_id"],
                  items=[{"item_id": line["item_id"],
                          "quantity": 1 if absent(line, "quantity") else int(line["quantity"]),
                          "price": to_float(line["price"])}
                         for line in obj["items"]])
    return ev


# --------------------------------------------------------------------------------------------
# Counting (§3 rules 1–7 with §7 Counting)
# --------------------------------------------------------------------------------------------

COUNT_KEYS = ["users", "impressions", "clicks", "carts", "purchases", "revenue", "orders",
              "converting_users", "order_revenue"]


def zero_counts():
    return {k: (0.0 if k in ("revenue", "order_revenue") else 0) for k in COUNT_KEYS}


def new_data_quality():
    """The report's data_quality counters (§5), all zero (srm is added by --stats)."""
    return {"events_read": 0, "quarantined": {r: 0 for r in REASONS}, "duplicate_events": 0,
            "bot_users": 0, "non_viewable_impressions": 0, "collapsed_impressions": 0,
            "orphan_clicks": 0, "late_clicks": 0, "unattributed_conversions": 0, "leaked_users": 0,
            "variant_mismatches": 0, "non_viewable_clicks": 0, "duplicate_clicks": 0}


def _no_note(ev=None, **facts):
    """The `note` of a caller that keeps no trace."""


def read_records(source):
    """Yields (line number, parsed record or Quarantine) from a log file (path: JSON Lines, or CSV
    when it ends in .csv / .csv.gz; gzip detected by magic bytes), or from an in-memory list of
    events: each a dict (a JSON object), or the text / bytes of one JSON line."""
    if isinstance(source, (str, bytes, os.PathLike)):
        path = os.fsdecode(source)
        data = read_file_bytes(path)
        yield from (read_csv_records(data) if is_csv_path(path) else read_jsonl_records(data))
        return
    for line_no, item in enumerate(source, start=1):
        if isinstance(item, (str, bytes)):
            raw = item.encode("utf-8") if isinstance(item, str) else item
            yield from ((line_no, record) for _, record in read_jsonl_records(raw))
        else:
            yield line_no, item


def read_events(source, dq, note=_no_note):
    """Reads, validates and applies rule 1 (duplicates).  Returns the valid, non-duplicate events
    in input order, each with "line" and "order" (its index among them); counts events_read,
    quarantined and duplicate_events into `dq`."""
    events = []
    seen_ids = set()
    for line_no, record in read_records(source):
        dq["events_read"] += 1  # §7: every non-blank line, quarantined and duplicates included
        try:
            if isinstance(record, Quarantine):
                raise record
            ev = validate(record)
        except Quarantine as q:
            dq["quarantined"][q.reason] += 1
            note(line=line_no, quarantined=q.reason, field=q.field)
            continue  # §7: a quarantined line registers no id
        ev["line"] = line_no
        # §3.1 / §7: by event_id within a user, across types, first valid line wins.
        key = (ev["user_id"], ev["event_id"])
        if key in seen_ids:
            dq["duplicate_events"] += 1
            note(ev, duplicate=True)
            continue
        seen_ids.add(key)
        ev["order"] = len(events)  # input order among surviving events
        events.append(ev)
    return events


def find_bots(events, cfg, note=_no_note):
    """Rule 2: the set of bot users among the (valid, non-duplicate) events."""
    bots = set()
    if not cfg["bot_filter"]:  # CC: bot_filter false turns off both bot rules
        return bots
    for e in events:
        if e["bot"]:
            bots.add(e["user_id"])  # any event with bot: true
            note(e, bot_user=e["user_id"], why="bot: true")
    clicks_by_user = defaultdict(list)
    for e in events:
        if e["type"] == "click":  # §7: all valid, non-duplicate clicks
            clicks_by_user[e["user_id"]].append(e["ts"])
    limit = cfg["bot_max_clicks_per_minute"]
    for user, times in clicks_by_user.items():
        times.sort()
        # more than `limit` clicks with last.ts − first.ts ≤ 60 000 ms
        for i in range(len(times) - limit):
            if times[i + limit] - times[i] <= 60_000:
                bots.add(user)
                note(bot_user=user, why=f"{limit + 1} clicks from ts {times[i]} to {times[i + limit]}")
                break
    return bots


def is_viewable(imp, cfg):
    """Rule 3: needs both fields to judge (thresholds inclusive); one without them counts."""
    vf, vms = imp["viewable_fraction"], imp["viewable_ms"]
    if vf is not None and vms is not None:
        return vf >= cfg["viewability_threshold"] and vms >= cfg["viewability_duration_ms"]
    return True


def in_click_window(click, imp, cfg):
    """Rule 5 / §7: −clock_skew ≤ click.ts − impression.ts ≤ click_window, from the named
    impression's own ts, both bounds inclusive."""
    delta = click["ts"] - imp["ts"]
    return -cfg["clock_skew_seconds"] * 1000 <= delta <= cfg["click_window_seconds"] * 1000


def run(events_path, cfg, trace=None, users_out=None):
    """The report's counts.  If `trace` is a list, one dict per decision is appended to it.
    If `users_out` is a list, one (variant, first-exposure context, per-user counts) tuple per
    analysed user is appended to it (in user_id order), for the statistics (--stats)."""

    def note(ev=None, **facts):
        if trace is not None:
            head = {"line": ev["line"], "event_id": ev["event_id"]} if ev else {}
            trace.append({**head, **facts})

    dq = new_data_quality()

    # ---- Read, validate, and rule 1 (duplicates) --------------------------------------------
    events = read_events(events_path, dq, note)  # valid, non-duplicate events in input order

    # ---- Experiment to analyse (§7 Assignment; CC: all valid non-duplicate exposures) --------
    experiment = cfg["experiment"]
    if experiment is None:
        found = sorted({e["experiment"] for e in events if e["type"] == "exposure"})
        if len(found) != 1:
            raise FunnelError("experiment: null needs exactly one experiment in the data; found "
                              f"{found!r}; set ab_testing.experiment in the config")
        experiment = found[0]

    # ---- Rule 2: bots -------------------------------------------------------------------------
    bots = find_bots(events, cfg, note)
    dq["bot_users"] = len(bots)
    events = [e for e in events if e["user_id"] not in bots]  # all of a bot's events excluded

    # Rules 3–6 run over all non-bot users' events, before assignment (§7).
    impressions = [e for e in events if e["type"] == "impression"]
    clicks = [e for e in events if e["type"] == "click"]

    # ---- Rule 3: viewability ------------------------------------------------------------------
    for imp in impressions:
        imp["viewable"] = is_viewable(imp, cfg)
        if not imp["viewable"]:
            dq["non_viewable_impressions"] += 1
            note(imp, impression="non_viewable")

    # ---- Rule 4: impression dedup -------------------------------------------------------------
    dedup_ms = cfg["dedup_window_seconds"] * 1000
    groups = defaultdict(list)
    for imp in impressions:
        if imp["viewable"]:
            groups[(imp["user_id"], imp["item_id"], imp["surface"])].append(imp)
    kept = []  # kept impressions, in input order below
    for group in groups.values():
        group.sort(key=lambda e: (e["ts"], e["order"]))  # (ts, input order)
        window_end = None
        current = None
        for imp in group:
            if current is not None and imp["ts"] <= window_end:  # inside [ts, ts + window]
                imp["kept"] = current  # collapses into the kept one
                dq["collapsed_impressions"] += 1
                note(imp, impression="collapsed", into=current["event_id"])
            else:  # first one, or first after the window: kept, opens a new window
                current = imp
                window_end = imp["ts"] + dedup_ms
                imp["kept"] = imp
                kept.append(imp)
    kept.sort(key=lambda e: e["order"])
    for imp in kept:
        imp["counted_clicks"] = []  # click times of counted clicks
        imp["carted"] = False
        imp["purchased"] = False
        imp["revenue"] = 0.0

    # ---- Rule 5: clicks -----------------------------------------------------------------------
    by_user_and_id = {(imp["user_id"], imp["event_id"]): imp for imp in impressions}
    in_window = defaultdict(list)  # kept impression order -> in-window clicks
    for click in clicks:
        imp = by_user_and_id.get((click["user_id"], click["impression_id"]))
        if imp is None:
            dq["orphan_clicks"] += 1  # unknown impression, or another user's
            note(click, click="orphan")
            continue
        if not imp["viewable"]:
            dq["non_viewable_clicks"] += 1  # §7: counted there only
            note(click, click="non_viewable")
            continue
        delta = click["ts"] - imp["ts"]  # from the named impression's own ts
        if not in_click_window(click, imp, cfg):
            dq["late_clicks"] += 1
            note(click, click="late", delta_ms=delta)
            continue
        in_window[imp["kept"]["order"]].append(click)
    kept_by_order = {imp["order"]: imp for imp in kept}
    for order, group in in_window.items():
        target = kept_by_order[order]
        group.sort(key=lambda c: (c["ts"], c["order"]))
        if cfg["dedup_clicks"]:
            target["counted_clicks"].append(group[0]["ts"])  # earliest (ts, input order) counts
            dq["duplicate_clicks"] += len(group) - 1
            for c in group[1:]:
                note(c, click="duplicate", impression=target["event_id"])
            group = group[:1]
        else:
            target["counted_clicks"].extend(c["ts"] for c in group)  # CC: every one counts
        for c in group:
            note(c, click="counted", impression=target["event_id"])

    # ---- Rule 6: conversions (last click, optional view-through) ------------------------------
    kept_by_user_item = defaultdict(list)
    for imp in kept:
        kept_by_user_item[(imp["user_id"], imp["item_id"])].append(imp)
    conv_ms = cfg["conversion_window_hours"] * 3_600_000
    vt_ms = cfg["view_through_window_hours"] * 3_600_000

    def attribute(user, item, t):
        # §3.6 / §7: a kept impression is a candidate through any counted click c with
        # t - window <= c <= t (several only when dedup_clicks is off); its latest such c is used.
        cands = []
        for imp in kept_by_user_item[(user, item)]:
            cs = [c for c in imp["counted_clicks"] if t - conv_ms <= c <= t]
            if cs:
                cands.append((max(cs), imp))
        if cands:
            # latest c wins; ties: later impression ts, then later input order (CC)
            return max(cands, key=lambda ci: (ci[0], ci[1]["ts"], ci[1]["order"]))[1]
        if cfg["view_through"]:
            cands = [imp for imp in kept_by_user_item[(user, item)]
                     if t - vt_ms <= imp["ts"] <= t]
            if cands:
                return max(cands, key=lambda imp: (imp["ts"], imp["order"]))
        return None

    for e in events:
        if e["type"] == "add_to_cart":
            imp = attribute(e["user_id"], e["item_id"], e["ts"])
            note(e, cart=e["item_id"], attributed_to=imp and imp["event_id"])
            if imp is None:
                dq["unattributed_conversions"] += 1
            else:
                imp["carted"] = True  # only attributed add_to_cart events make it carted
        elif e["type"] == "purchase":
            for line in e["items"]:  # each item line separately
                imp = attribute(e["user_id"], line["item_id"], e["ts"])
                note(e, purchase_line=line["item_id"], attributed_to=imp and imp["event_id"])
                if imp is None:
                    dq["unattributed_conversions"] += 1
                else:
                    imp["purchased"] = True
                    imp["revenue"] += line["quantity"] * line["price"]  # the line's price

    # ---- Rule 7: assignment -------------------------------------------------------------------
    exposures = defaultdict(list)
    for e in events:  # non-bot users only
        if e["type"] == "exposure" and e["experiment"] == experiment:
            exposures[e["user_id"]].append(e)
    assigned = {}  # user -> (variant, first exposure ts, context)
    for user, exps in exposures.items():
        if len({x["variant"] for x in exps}) >= 2:
            dq["leaked_users"] += 1  # leaked: excluded entirely
            note(leaked_user=user, variants=sorted({x["variant"] for x in exps}))
            continue
        first = min(exps, key=lambda x: (x["ts"], x["order"]))  # earliest (ts, input order)
        assigned[user] = (first["variant"], first["ts"], first["context"])
        note(first, assigned_user=user, variant=first["variant"], first_exposure_ts=first["ts"])

    per_user = {u: zero_counts() for u in assigned}
    positions = defaultdict(lambda: defaultdict(lambda: {"impressions": 0, "clicks": 0}))
    for imp in kept:
        user = imp["user_id"]
        if user not in assigned:
            continue
        variant, first_ts, _ = assigned[user]
        if imp["ts"] < first_ts:
            continue  # only at or after first exposure (ts ≥ first exposure ts)
        if imp["variant"] is not None and imp["variant"] != variant and (
                imp["experiment"] is None or imp["experiment"] == experiment):
            dq["variant_mismatches"] += 1  # counted and excluded
            note(imp, impression="mismatch", variant=imp["variant"], assigned=variant)
            continue
        c = per_user[user]
        note(imp, impression="analysed", variant=variant, clicks=len(imp["counted_clicks"]),
             carted=imp["carted"], purchased=imp["purchased"], revenue=imp["revenue"])
        c["impressions"] += 1
        c["clicks"] += len(imp["counted_clicks"])  # its clicks go with it
        c["carts"] += imp["carted"]
        c["purchases"] += imp["purchased"]
        c["revenue"] += imp["revenue"]
        pos = positions[variant][str(imp["position"])]
        pos["impressions"] += 1
        pos["clicks"] += len(imp["counted_clicks"])

    orders_seen = defaultdict(set)
    for e in events:
        if e["type"] != "purchase" or e["user_id"] not in assigned:
            continue
        if e["ts"] < assigned[e["user_id"]][1]:
            continue  # purchases filtered by their ts
        c = per_user[e["user_id"]]
        orders_seen[e["user_id"]].add(e["order_id"])  # CC: distinct order_id per user
        c["converting_users"] = 1
        c["order_revenue"] += sum(line["quantity"] * line["price"] for line in e["items"])
    for user, ids in orders_seen.items():
        per_user[user]["orders"] = len(ids)

    # ---- Aggregate per variant and per segment (§4, §7 Statistics) ---------------------------
    variants = {}
    segments = defaultdict(lambda: defaultdict(dict))
    for user in sorted(assigned):
        variant, _, context = assigned[user]
        c = per_user[user]
        c["users"] = 1
        targets = [variants.setdefault(variant, zero_counts())]
        for dim, value in sorted(context.items()):  # segment = first exposure's context
            targets.append(segments[dim][value].setdefault(variant, zero_counts()))
        for t in targets:
            for k in COUNT_KEYS:
                t[k] += c[k]
        if users_out is not None:
            users_out.append((variant, dict(context or {}), dict(c)))

    return {
        "experiment": experiment,
        "control": cfg["control"],
        "variants": variants,
        "data_quality": dq,
        "segments": {d: {v: dict(vs) for v, vs in vals.items()} for d, vals in segments.items()},
        "positions": {v: dict(p) for v, p in positions.items()},
    }


# --------------------------------------------------------------------------------------------
# Rounds for off-policy evaluation and position bias (§7 "Rounds ...")
# --------------------------------------------------------------------------------------------

def config_of(config):
    """A flat settings dict from: None (defaults), a YAML path (load_config), or a dict of settings
    overlaid on the defaults (flat like load_config's result, or by section like DEFAULT_CONFIG)."""
    if config is None or isinstance(config, (str, os.PathLike)):
        return load_config(config)
    flat = load_config(None)
    for key, value in config.items():
        if key in DEFAULT_CONFIG and isinstance(value, dict):
            flat.update(value)
        else:
            flat[key] = value
    return flat


def rounds(events_or_log, config=None):
    """The rounds of a log: one per served impression left after rules 1–3 (duplicates, bots,
    viewability), never collapsed by impression dedup (rule 4); no experiment or assignment is
    involved (unexposed users, pre-exposure impressions and leaked users all give rounds).

    `events_or_log`: a log path, or a list of events (dicts, or JSON lines), read like run() reads;
    `config`: see config_of().  Returns a list of dicts in export order (user_id, then (ts, input
    order) within a user), each with
        user_id, ts (epoch ms), item_id, position, surface ("default" when absent), context (dict),
        impression_id, request_id, propensity (None when absent), line, order (the impression's
        input order among valid, non-duplicate events, as in run()),
        clicked (0/1), click_id / click_ts (the reward's click, or None),
        user_impressions_before, user_clicks_before (the user's earlier rounds in (ts, input
        order), and how many of them have clicked = 1).
    The reward is the earliest click (ts, input order) naming that very impression, looked up by
    (user_id, impression_id), with −clock_skew ≤ click.ts − impression.ts ≤ click_window (both
    inclusive).  A click on a non-viewable impression, or on another user's, gives nothing;
    dedup_clicks and dedup_window_seconds play no part (the reward is clicked or not).
    """
    cfg = config_of(config)
    events = read_events(events_or_log, new_data_quality())   # rule 1
    bots = find_bots(events, cfg)                             # rule 2
    events = [e for e in events if e["user_id"] not in bots]
    served = [e for e in events if e["type"] == "impression" and is_viewable(e, cfg)]  # rule 3
    by_user_and_id = {(imp["user_id"], imp["event_id"]): imp for imp in served}
    reward = {}  # impression order -> its earliest in-window click
    for click in events:
        if click["type"] != "click":
            continue
        imp = by_user_and_id.get((click["user_id"], click["impression_id"]))
        if imp is None or not in_click_window(click, imp, cfg):
            continue  # orphan (or another user's, or a non-viewable impression's), or late
        best = reward.get(imp["order"])
        if best is None or (click["ts"], click["order"]) < (best["ts"], best["order"]):
            reward[imp["order"]] = click

    out = []
    served.sort(key=lambda e: (e["user_id"], e["ts"], e["order"]))
    previous_user, seen, clicked_seen = None, 0, 0
    for imp in served:
        if imp["user_id"] != previous_user:
            previous_user, seen, clicked_seen = imp["user_id"], 0, 0
        click = reward.get(imp["order"])
        clicked = 1 if click is not None else 0
        out.append({"user_id": imp["user_id"], "ts": imp["ts"], "item_id": imp["item_id"],
                    "position": imp["position"], "surface": imp["surface"],
                    "context": dict(imp["context"]), "impression_id": imp["event_id"],
                    "request_id": imp["request_id"], "propensity": imp["propensity"],
                    "line": imp["line"], "order": imp["order"], "clicked": clicked,
                    "click_id": click["event_id"] if click else None,
                    "click_ts": click["ts"] if click else None,
                    "user_impressions_before": seen, "user_clicks_before": clicked_seen})
        seen += 1
        clicked_seen += clicked
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--config")
    ap.add_argument("--trace", help="write one JSON line per counting decision to this file")
    ap.add_argument("--stats", action="store_true",
                    help="add metrics, comparisons, srm and verdict (needs numpy, scipy, statsmodels)")
    ap.add_argument("--rounds", action="store_true",
                    help="print the log's rounds (off-policy evaluation / position bias), one JSON "
                    "object a line, instead of the report")
    args = ap.parse_args(argv)
    if args.rounds:
        for r in rounds(args.events, args.config):
            sys.stdout.write(json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n")
        return 0
    trace = [] if args.trace else None
    try:
        cfg = load_config(args.config)
        users = [] if args.stats else None
        report = run(args.events, cfg, trace, users)
        if args.stats:
            import stats_reference  # numpy, scipy, statsmodels: only for --stats

            try:
                stats_reference.add_stats(report, users, cfg)
            except stats_reference.StatsConfigError as err:
                raise FunnelError(str(err)) from err
    except FunnelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    finally:
        if args.trace:
            with open(args.trace, "w", encoding="utf-8") as f:
                for entry in trace:
                    f.write(json.dumps(entry, ensure_ascii=False) + "\n")
    json.dump(report, sys.stdout, indent=2, sort_keys=True, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
