#!/usr/bin/env python3
"""Differential-test fixture for Funnel's RFC 4180 CSV tokenizer, with Python's `csv` module as
the independent reference.

Regenerate the committed fixture (standard library only; the output depends only on the seed and
the case count):

    python3 tools/reference/csv_fuzz.py --seed 1 --cases 3000 \\
        --out Tests/FunnelBaseTests/Fixtures/csv_fuzz.jsonl

A summary of the case kinds is printed to stderr.  The committed fixture was made with Python 3.11.

Output: one JSON object per line, one per random CSV file:

    {"case": i, "bytes_hex": "<the file's bytes, lowercase hex>", "rows": [[cell, ...], ...],
     "error_row": null or k}

Reference semantics (what "rows" and "error_row" mean):
  * The bytes are decoded as UTF-8 with one leading byte-order mark removed ('utf-8-sig'), then
    parsed with `csv.reader(io.StringIO(text, newline=''), strict=True)` in the default dialect:
    delimiter ',', quotechar '"', doublequote=True, no skipinitialspace (spaces are cell text).
  * "rows" holds the records Python yields, cells as strings, with blank records dropped: Python
    yields [] for an empty line and the tokenizer under test skips those too.  A record made of one
    empty quoted cell `""` is not blank: Python yields [''] and it is kept as [""].  (A record made
    of one empty unquoted cell is an empty line, so it is dropped.)
  * "error_row": when Python raises csv.Error, the 0-based index, counting only non-blank records
    (i.e. the index it would have had in "rows"), of the record being parsed when it raised;
    "rows" then holds only the records before it.  Otherwise null.  strict=True raises for the two
    RFC 4180 violations generated here: text after a closing quote (`"ab"c`, `"ab" ,x`) and a quoted
    cell still open at end of file (`a,"bc` or `a,"bc<LF>d,e<LF>`).

What is generated (mixed by a random.Random seeded with --seed): 0-6 records of 1-6 short cells
each (ragged or fixed width per file); cells empty, plain ASCII words, words with spaces (also
leading/trailing), unicode (é, 漢字, emoji, combining marks), cells that need quotes (comma, doubled
quote, LF, CRLF, lone CR inside) written quoted with inner quotes doubled, quoted cells that need no
quoting, and the empty quoted cell ""; records joined by ',' and ended by LF or CRLF (chosen per
file or per record), the last record sometimes without a line break; sometimes a UTF-8 byte-order
mark; sometimes blank lines before, between or after records; about 10 % of files malformed in one
of the two ways above.

Deliberately NOT generated, because Python and the tokenizer under test are meant to differ there
(or the input is out of scope):
  * a lone CR (not followed by LF) outside a quoted cell.  Python treats it as a line end; the
    tokenizer treats only LF and CRLF as record ends (a lone CR inside a quoted cell is cell text
    for both, and is generated).  The script asserts that no case contains one.
  * a quote character inside an unquoted cell (`ab"c`); Python keeps it literally.
  * NUL bytes, invalid UTF-8, UTF-16.
Before writing a case the script also checks Python's parse against the rows the generator meant
to write, so the generator and the reference agree on every case.
"""

import argparse
import csv
import io
import json
import os
import random
import sys
from collections import Counter

BOM = b"\xef\xbb\xbf"
WORD_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.:;/+=@#%&*()[]{}<>!?'$"
UNICODE_PIECES = ["é", "café", "naïve", "漢字", "日本語", "Ελλάδα", "Привет", "😀", "👍🏽", "🇫🇷",
                  "e\u0301", "ß", "€", "中"]
# Text put after a closing quote in a malformed file: anything but '"', ',', CR and LF.
JUNK = ["x", "ab", " ", "  ", "\t", "é", "漢", "😀", "1", " y"]
SPECIALS = [",", '"', "\n", "\r\n", "\r"]


def word(rng, lo=1, hi=6):
    return "".join(rng.choice(WORD_CHARS) for _ in range(rng.randint(lo, hi)))


def plain_text(rng):
    """Text that may be written unquoted (no comma, quote, CR or LF)."""
    kind = rng.random()
    if kind < 0.55:
        return word(rng)
    if kind < 0.8:
        parts = [word(rng, 1, 4) for _ in range(rng.randint(1, 3))]
        text = " ".join(parts)
        r = rng.random()
        if r < 0.15:
            text = " " + text
        elif r < 0.3:
            text = text + " "
        return text
    return "".join(rng.choice(UNICODE_PIECES + [word(rng, 1, 3)]) for _ in range(rng.randint(1, 2)))


def needs_quotes_text(rng):
    pieces = []
    for _ in range(rng.randint(1, 3)):
        if rng.random() < 0.5:
            pieces.append(plain_text(rng) if rng.random() < 0.7 else "")
        pieces.append(rng.choice(SPECIALS))
    if rng.random() < 0.5:
        pieces.append(plain_text(rng))
    return "".join(pieces)


def quote(value):
    return '"' + value.replace('"', '""') + '"'


def gen_cell(rng):
    """(written text, value, quoted)."""
    r = rng.random()
    if r < 0.12:
        return "", "", False
    if r < 0.55:
        v = plain_text(rng)
        return v, v, False
    if r < 0.80:
        v = needs_quotes_text(rng)
        return quote(v), v, True
    if r < 0.92:
        v = plain_text(rng)
        return quote(v), v, True
    return '""', "", True


def is_blank(cells):
    """Whether a record's written form is an empty line (Python yields [] for it)."""
    return len(cells) == 0 or (len(cells) == 1 and cells[0][0] == "")


def gen_case(rng):
    """Returns (bytes, expected rows, expected error_row, info)."""
    info = Counter()
    n_records = rng.randint(0, 6)
    ragged = rng.random() < 0.5
    width = rng.randint(1, 6)
    term_mode = rng.choice(["lf", "lf", "crlf", "crlf", "mixed"])

    def term():
        if term_mode == "lf":
            return "\n"
        if term_mode == "crlf":
            return "\r\n"
        return rng.choice(["\n", "\r\n"])

    # items: ("rec", cells) or ("blank",), each followed by its line break
    records = [[gen_cell(rng) for _ in range(rng.randint(1, 6) if ragged else width)]
               for _ in range(n_records)]
    items = []
    with_blanks = rng.random() < 0.2
    for rec in records:
        if with_blanks and rng.random() < 0.4:
            items.extend([("blank", None)] * rng.randint(1, 2))
        items.append(("rec", rec))
    if with_blanks and rng.random() < 0.4:
        items.extend([("blank", None)] * rng.randint(1, 2))

    malformed = None
    rec_positions = [i for i, it in enumerate(items) if it[0] == "rec"]
    if rec_positions and rng.random() < 0.1:
        malformed = rng.choice(["after_quote", "unterminated"])
    error_item = None
    tail = ""  # text after an unterminated quote, to end of file
    if malformed == "after_quote":
        error_item = rng.choice(rec_positions)
        cells = list(items[error_item][1])
        k = rng.randrange(len(cells))
        _, value, quoted = cells[k]
        if not quoted:
            value = value if rng.random() < 0.5 else needs_quotes_text(rng)
        cells[k] = (quote(value) + rng.choice(JUNK), value, True)
        items[error_item] = ("rec", cells)
    elif malformed == "unterminated":
        error_item = rng.choice(rec_positions)
        items = items[: error_item + 1]
        cells = list(items[error_item][1])
        value = rng.choice(["", plain_text(rng), needs_quotes_text(rng)])
        written = quote(value)[:-1]  # drop the closing quote; a doubled "" inside stays doubled
        if rng.random() < 0.4:  # lines swallowed by the open quote (no quotes in them)
            for _ in range(rng.randint(1, 2)):
                tail += term() + ",".join(plain_text(rng) for _ in range(rng.randint(1, 3)))
            if rng.random() < 0.5:
                tail += term()
        cells[-1] = (written, value, True)
        items[error_item] = ("rec", cells)

    text_parts = []
    expected = []
    expected_error = None
    for idx, (kind, cells) in enumerate(items):
        last = idx == len(items) - 1
        if kind == "blank":
            line = ""
            info["blank_lines"] += 1
        else:
            line = ",".join(c[0] for c in cells)
            if idx == error_item:
                expected_error = len(expected)
            elif not is_blank(cells) and expected_error is None:
                expected.append([c[1] for c in cells])
            for c in cells:
                if c[2] and ("\n" in c[1] or "\r" in c[1]):
                    info["quoted_line_break"] += 1
                if c[2] and "\r" in c[1].replace("\r\n", ""):
                    info["quoted_lone_cr"] += 1
        if last and malformed == "unterminated":
            text_parts.append(line + tail)
        elif last and rng.random() < 0.3:
            text_parts.append(line)  # no line break after the last line
            info["no_final_break"] += 1
        else:
            t = term()
            if t == "\r\n":
                info["crlf_break"] += 1
            text_parts.append(line + t)
    text = "".join(text_parts)
    data = text.encode("utf-8")
    if rng.random() < 0.15:
        data = BOM + data
        info["bom"] += 1
    if malformed:
        info["malformed_" + malformed] += 1
    return data, expected, expected_error, info


def check_no_lone_cr_outside_quotes(text):
    """No CR outside a quoted cell unless followed by LF.  Quote parity suffices: generated files
    have no quote inside unquoted cells and inner quotes are doubled."""
    in_quotes = False
    for i, ch in enumerate(text):
        if ch == '"':
            in_quotes = not in_quotes
        elif ch == "\r" and not in_quotes:
            assert text[i + 1 : i + 2] == "\n", f"lone CR outside quotes at {i}: {text!r}"
        assert ch != "\x00"


def reference_parse(data):
    """Python's csv module, as the docstring states: (rows without blank records, error_row)."""
    text = data.decode("utf-8-sig")
    rows = []
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for row in reader:
            if row:
                rows.append(row)
    except csv.Error:
        return rows, len(rows)
    return rows, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", type=int, default=3000)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    rng = random.Random(args.seed)
    totals = Counter()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8", newline="\n") as f:
        for i in range(args.cases):
            data, expected, expected_error, info = gen_case(rng)
            text = data.decode("utf-8-sig")
            check_no_lone_cr_outside_quotes(text)
            rows, error_row = reference_parse(data)
            assert (rows, error_row) == (expected, expected_error), (i, data, rows, error_row, expected,
                                                                     expected_error)
            obj = {"case": i, "bytes_hex": data.hex(), "rows": rows, "error_row": error_row}
            f.write(json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n")
            totals["cases"] += 1
            totals["error"] += error_row is not None
            totals["bom"] += bool(info["bom"])
            totals["crlf_break"] += bool(info["crlf_break"])
            totals["any_crlf_bytes"] += b"\r\n" in data
            totals["quoted_line_break"] += bool(info["quoted_line_break"])
            totals["quoted_lone_cr"] += bool(info["quoted_lone_cr"])
            totals["blank_lines"] += bool(info["blank_lines"])
            totals["no_final_break"] += bool(info["no_final_break"])
            totals["malformed_after_quote"] += bool(info["malformed_after_quote"])
            totals["malformed_unterminated"] += bool(info["malformed_unterminated"])
            totals["ragged"] += len({len(r) for r in rows}) > 1
            totals["no_rows"] += not rows
            totals["empty_quoted_row"] += [""] in rows
    size = os.path.getsize(args.out)
    print(f"wrote {args.out}: {size} bytes", file=sys.stderr)
    for k, v in totals.items():
        print(f"  {k}: {v}", file=sys.stderr)


if __name__ == "__main__":
    main()
