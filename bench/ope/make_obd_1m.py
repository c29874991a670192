#!/usr/bin/env python3
"""Generates the data of the off-policy evaluation benchmark (bench/ope/run_ope_bench.sh).

    .venv-obp/bin/python bench/ope/make_obd_1m.py [--rows 1000000] [--seed 7]
        [--data ../shared/data/obd] [--out bench/data/ope]

Writes, under --out (bench/data/ is gitignored; nothing is written into the tracked tree):
- obd_random_all_<rows>.csv: logged rounds in the Open Bandit CSV layout that
  `funnel ope --log-format obd` reads: the header of <data>/random/all/all.csv verbatim, then
  `rows` rows drawn uniformly with replacement (numpy default_rng(seed)) from that file's rows.
  The draws are sorted, so the output stays in timestamp order like a real log; every cell after
  the first is copied byte for byte from the drawn source line, and the unnamed first column is
  renumbered 0..rows-1.
- policy_bts_all.csv: the evaluation policy as item_id,position,probability (positions 1-based),
  from <data>/bts_action_dist_all.csv: the probability of each item at each slot under the
  Bernoulli Thompson sampling policy, checked to cover every (item, position) once with each
  position summing to 1.
- obd_random_all_<rows>.manifest.json: seed, sizes, clicks and SHA-256 of the outputs.

--data defaults to $FUNNEL_SHARED_DATA/obd, else ../shared/data/obd beside the repository (a
relative FUNNEL_SHARED_DATA is taken from the repository root).

Needs numpy and pandas only (the obp venv has both); deterministic for a given seed.
"""

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
# The shared data sets sit beside the repository (../shared/data) unless FUNNEL_SHARED_DATA names them.
SHARED_DATA = ROOT / (os.environ.get("FUNNEL_SHARED_DATA") or "../shared/data")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def write_logs(src, dst, rows, seed):
    """Resamples the data lines of `src` into `dst`; returns (drawn source row indices, clicks)."""
    with open(src, "rb") as f:
        header = f.readline()
        body = f.read().splitlines()
    cols = header.rstrip(b"\r\n").split(b",")
    assert cols[0] == b"", "the first column of an Open Bandit CSV is the unnamed row index"
    click_col = cols.index(b"click")
    # Keep each line without its index cell; the cell count must match the header.
    tails = []
    for k, line in enumerate(body):
        cells = line.split(b",")
        assert len(cells) == len(cols), f"{src}: line {k + 2}: {len(cells)} cells, header has {len(cols)}"
        tails.append(line[line.index(b",") :])
    clicks_src = np.array([int(line.split(b",")[click_col]) for line in body])

    rng = np.random.default_rng(seed)
    drawn = np.sort(rng.integers(0, len(tails), size=rows))
    tmp = dst.with_suffix(".tmp")
    with open(tmp, "wb") as out:
        out.write(header)
        chunk = 100_000
        for start in range(0, rows, chunk):
            part = drawn[start : start + chunk]
            out.write(b"".join(b"%d%s\n" % (start + j, tails[i]) for j, i in enumerate(part)))
    os.replace(tmp, dst)
    return drawn, int(clicks_src[drawn].sum())


def write_policy(src, dst, n_items, n_positions=3):
    """Checks bts_action_dist_<c>.csv covers every (item, position) once with each position
    summing to 1, and writes it as Funnel's policy CSV (item_id,position,probability)."""
    d = pd.read_csv(src)
    assert list(d.columns) == ["item_id", "position", "probability"], list(d.columns)
    assert len(d) == n_items * n_positions, (len(d), n_items)
    table = np.full((n_items, n_positions), np.nan)
    table[d["item_id"].to_numpy(), d["position"].to_numpy() - 1] = d["probability"].to_numpy()
    assert not np.isnan(table).any(), "an (item, position) pair is missing"
    assert np.allclose(table.sum(axis=0), 1.0, rtol=0, atol=1e-6), table.sum(axis=0)
    with open(dst, "w") as f:
        f.write("item_id,position,probability\n")
        for pos in range(n_positions):
            for item in range(n_items):
                f.write(f"{item},{pos + 1},{table[item, pos]!r}\n")
    return table


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--data", default=str((SHARED_DATA / "obd").resolve()))
    ap.add_argument("--out", default=str(ROOT / "bench" / "data" / "ope"))
    ap.add_argument("--verify", action="store_true",
                    help="read the written CSV back with pandas and compare it with the drawn source rows")
    args = ap.parse_args()
    data, out = Path(args.data), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    src_logs = data / "random" / "all" / "all.csv"
    logs = out / f"obd_random_all_{args.rows}.csv"
    drawn, clicks = write_logs(src_logs, logs, args.rows, args.seed)
    t_logs = time.perf_counter()

    n_items = len(pd.read_csv(data / "random" / "all" / "item_context.csv"))
    policy = out / "policy_bts_all.csv"
    write_policy(data / "bts_action_dist_all.csv", policy, n_items)

    if args.verify:
        src = pd.read_csv(src_logs, index_col=0)
        got = pd.read_csv(logs, index_col=0)
        assert got.index.equals(pd.RangeIndex(args.rows))
        want = src.iloc[drawn].reset_index(drop=True)
        pd.testing.assert_frame_equal(got, want, check_exact=True)
        assert got["timestamp"].is_monotonic_increasing
        print(f"verified: {args.rows} rows equal the drawn source rows")

    manifest = dict(
        generator="bench/ope/make_obd_1m.py",
        seed=args.seed,
        rows=args.rows,
        source=str(src_logs),
        source_sha256=sha256(src_logs),
        distinct_source_rows_drawn=int(len(np.unique(drawn))),
        clicks=clicks,
        items=n_items,
        logs=logs.name,
        logs_bytes=logs.stat().st_size,
        logs_sha256=sha256(logs),
        policy=policy.name,
        policy_source=str(data / "bts_action_dist_all.csv"),
        policy_sha256=sha256(policy),
        numpy_version=np.__version__,
    )
    manifest_path = out / f"obd_random_all_{args.rows}.manifest.json"
    manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"wrote {logs} ({args.rows} rows, {clicks} clicks, {logs.stat().st_size / 2**20:.0f} MiB) "
          f"in {t_logs - t0:.1f} s; {policy}; {manifest_path}")


if __name__ == "__main__":
    main()
