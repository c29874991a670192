#!/usr/bin/env python3
"""Converts a Criteo-layout file (as bench/criteo/make_criteo_like.py writes it) to Vowpal Wabbit's
text format, with the same features that `funnel train --data-format criteo` builds.

Input rows: tab-separated label (0 or 1), 13 integer cells I1..I13 and 26 categorical cells
C1..C26; any cell but the label may be empty. Output rows, all features in the one namespace `f`:

    <-1|1> |f I1:<v> I2=missing ... I13:<v> C1=<value> ... C26=<value>

- label 0 becomes -1 and label 1 becomes 1 (VW's logistic loss wants -1/1 labels);
- categorical column Cj becomes the feature `Cj=<value>` with value 1; an empty cell is the
  value "" and so the feature `Cj=` (Funnel likewise hashes the empty string as a value);
- integer column Ij with a number x becomes the feature `Ij` with value sign(x)·log(1+|x|), Funnel's
  `--numeric-transform log`; an empty cell becomes the feature `Ij=missing` with value 1, Funnel's
  token "missing". A present 0 gives `Ij:0`, which VW drops when it parses the line: a zero-valued
  feature contributes nothing to the score and gets a zero gradient, in Funnel as well.

VW's text format has no escape sequence, so the characters it reserves in a feature name (space,
tab, `|`, `:`) and `%` itself are percent-encoded in values (`%20`, `%09`, `%7C`, `%3A`, `%25`);
the mapping is one-to-one, so distinct values stay distinct features. Criteo tokens are hexadecimal
and never need it.

Funnel hashes these tokens into 2^hash-bits slots with its own hash function and VW hashes them
with murmurhash into 2^b slots, so the two have different (rare, at 2^20 slots) collisions; the
features themselves are the same.

    python bench/criteo/to_vw.py DATA_DIR/train.txt DATA_DIR/vw/train.vw
"""
import argparse
import math
import sys

NUMERIC, CATEGORICAL = 13, 26
_RESERVED = {"%": "%25", " ": "%20", "\t": "%09", "|": "%7C", ":": "%3A"}


def escape(value):
    """Percent-encodes the characters VW reserves in feature names (see the module docstring)."""
    if not any(c in value for c in _RESERVED):
        return value
    return "".join(_RESERVED.get(c, c) for c in value)


def convert_line(line, line_no, path):
    cells = line.rstrip("\r\n").split("\t")
    if len(cells) != 1 + NUMERIC + CATEGORICAL:
        raise ValueError(f"{path}: line {line_no}: {len(cells)} cells, the Criteo layout has {1 + NUMERIC + CATEGORICAL}")
    try:
        y = float(cells[0])
    except ValueError:
        y = None
    if y not in (0.0, 1.0):
        raise ValueError(f"{path}: line {line_no}: label '{cells[0]}' must be 0 or 1")
    out = ["1" if y == 1.0 else "-1", "|f"]
    for j in range(NUMERIC):
        text = cells[1 + j]
        if text == "":
            out.append(f"I{j + 1}=missing")
            continue
        try:
            x = float(text)
        except ValueError:
            raise ValueError(f"{path}: line {line_no}, column I{j + 1}: '{text}' is not a number") from None
        if not math.isfinite(x):
            raise ValueError(f"{path}: line {line_no}, column I{j + 1}: '{text}' is not a finite number")
        v = math.copysign(math.log1p(abs(x)), x) if x != 0 else 0.0
        out.append(f"I{j + 1}:{v:.9g}")
    for f in range(CATEGORICAL):
        out.append(f"C{f + 1}={escape(cells[1 + NUMERIC + f])}")
    return " ".join(out)


def convert(src, dst):
    rows = 0
    with open(src, encoding="utf-8") as fin, open(dst, "w", encoding="utf-8") as fout:
        for line_no, line in enumerate(fin, start=1):
            if line.strip() == "":
                continue
            fout.write(convert_line(line, line_no, src))
            fout.write("\n")
            rows += 1
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("input", help="Criteo-layout file (train.txt, valid.txt or test.txt)")
    ap.add_argument("output", help="VW text file to write")
    args = ap.parse_args()
    try:
        rows = convert(args.input, args.output)
    except ValueError as e:
        print(f"to_vw: {e}", file=sys.stderr)
        sys.exit(1)
    print(f"to_vw: wrote {rows} rows to {args.output}", file=sys.stderr)


if __name__ == "__main__":
    main()
