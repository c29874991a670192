"""Compares two report JSON documents: counts (integers, strings, booleans, nulls) exactly, floats
to a relative tolerance (default 1e-12), the same keys and list lengths everywhere.

    python3 tools/checks/compare_reports.py A.json B.json [--rel 1e-12] [--label TEXT]

Prints the first differences with their paths and exits 1 when there are any; prints whether the
files are byte-identical otherwise.
"""
import argparse
import json
import sys


def differences(a, b, path, rel, out):
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str) or isinstance(b, str):
        if type(a) is not type(b) or a != b:
            out.append(f"{path}: {a!r} != {b!r}")
        return
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if isinstance(a, int) and isinstance(b, int):
            if a != b:
                out.append(f"{path}: {a} != {b} (a count)")
        elif a != b and abs(a - b) > rel * max(abs(a), abs(b)):
            out.append(f"{path}: {a!r} != {b!r} (relative difference {abs(a - b) / max(abs(a), abs(b)):.3g})")
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'A' if k in a else 'B'}")
            else:
                differences(a[k], b[k], f"{path}.{k}", rel, out)
        return
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} elements != {len(b)}")
            return
        for i, (x, y) in enumerate(zip(a, b)):
            differences(x, y, f"{path}[{i}]", rel, out)
        return
    out.append(f"{path}: {type(a).__name__} != {type(b).__name__}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rel", type=float, default=1e-12)
    ap.add_argument("--label", default="")
    args = ap.parse_args()
    raw_a, raw_b = open(args.a, "rb").read(), open(args.b, "rb").read()
    out = []
    differences(json.loads(raw_a), json.loads(raw_b), "$", args.rel, out)
    label = f"{args.label}: " if args.label else ""
    if out:
        print(f"{label}{args.a} and {args.b} differ in {len(out)} places:", file=sys.stderr)
        for line in out[:20]:
            print("  " + line, file=sys.stderr)
        return 1
    print(f"{label}same report ({'byte-identical' if raw_a == raw_b else f'floats within {args.rel:g} relative'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
