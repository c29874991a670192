"""Shared helpers of the checks that scripts/test runs (tools/checks/check_*.py).

Each check script reads the outputs of one step of scripts/test, asserts the figures the README and
docs/ state about it, and ends with one summary line, "<what>: N passed, M failed". A failed check
prints "FAILED: <what failed>" to standard error and the script exits 1 once every check has run;
an input that cannot be read (a missing file or key) is a failure too (traceback, exit 1).

    import checklib
    def body(c, path):
        doc = checklib.load(path)
        c.within(doc["rate"], 0.035, 0.065, "A/A false-positive rate")
    checklib.main("calibration", body, sys.argv[1])
"""
import json
import sys
import traceback


def load(path):
    """The JSON document at path."""
    with open(path) as f:
        return json.load(f)


class Checks:
    """Counts passed checks and records failed ones (their messages)."""

    def __init__(self, label):
        self.label = label
        self.passed = 0
        self.failures = []

    def check(self, ok, message):
        """One assertion: ok must be true; message says what failed. Returns ok."""
        if ok:
            self.passed += 1
        else:
            self.failures.append(str(message))
            print(f"FAILED: {message}", file=sys.stderr)
        return bool(ok)

    def within(self, value, lo, hi, what):
        """lo <= value <= hi (a NaN or missing value fails)."""
        ok = value is not None and lo <= value <= hi
        return self.check(ok, f"{what} {value} outside [{lo}, {hi}]")

    def close(self, value, target, tolerance, what):
        """|value - target| <= tolerance."""
        ok = value is not None and abs(value - target) <= tolerance
        return self.check(ok, f"{what} {value} is not within {tolerance} of {target}")


def main(label, body, *args):
    """Runs body(checks, *args), prints the summary line and exits 1 if anything failed."""
    c = Checks(label)
    try:
        body(c, *args)
    except Exception:  # an unreadable input: counted as a failure, with its traceback
        traceback.print_exc()
        c.failures.append("error reading the inputs")
    print(f"{label}: {c.passed} passed, {len(c.failures)} failed")
    sys.exit(1 if c.failures else 0)


def usage(doc, count):
    """Exits 2 with the module docstring's usage unless exactly count arguments were given."""
    if len(sys.argv) - 1 != count:
        print(doc.strip().split("\n\n")[1] if "\n\n" in doc else doc, file=sys.stderr)
        sys.exit(2)
