#!/usr/bin/env python3
"""How fast Funnel reads a Criteo-layout text file into its training table, against PyArrow's
multithreaded CSV reader and NumPy building the same table.

    python3 -m venv .venv-read && .venv-read/bin/pip install -r bench/criteo/requirements-read.txt
    .venv-read/bin/python bench/criteo/read_bench.py --funnel .build/release/funnel --data DATA/train.txt

Alternating the two, --repeat rounds:

- Funnel: `funnel train --data FILE --data-format criteo --model lr --epochs 1
  --vocabulary-min-count 1` (a fresh process); the time is its "read N rows of 39 fields from FILE
  in X s" line: reading the file, parsing it on both cores, counting every value for the
  vocabulary, and laying out the table (each cell's slot and value).
- PyArrow: `pyarrow.csv.read_csv` (tab-separated, no header; the 13 integer columns as float64,
  empty cells null; the 26 categorical ones as strings; 2 threads), then the same table:
  each categorical column's distinct values by `pyarrow.compute.dictionary_encode` (min count 1:
  every value seen gets a slot), its codes offset past the columns before it; each integer column
  a slot for present cells, one for empty ones, and the value sign(x)·log(1 + |x|) (1 when
  empty); int32 slots and float32 values, rows × 39, categorical columns first, as Funnel lays
  them out. In this process, after one untimed warm-up.

It checks that both tables have the same number of rows and of slots (vocabulary values), and
prints the median seconds of each and their ratio.
"""
import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv

NUMERIC, CATEGORICAL = 13, 26


def arrow_table(path):
    """(slots int32 rows × 39, values float32 rows × 39, labels, number of vocabulary slots)."""
    names = ["label"] + [f"i{j}" for j in range(NUMERIC)] + [f"c{j}" for j in range(CATEGORICAL)]
    types = {"label": pa.int8()} | {f"i{j}": pa.float64() for j in range(NUMERIC)} | {f"c{j}": pa.string() for j in range(CATEGORICAL)}
    t = pv.read_csv(path, read_options=pv.ReadOptions(column_names=names, use_threads=True),
                    parse_options=pv.ParseOptions(delimiter="\t", quote_char=False),
                    convert_options=pv.ConvertOptions(column_types=types, strings_can_be_null=False))
    n = t.num_rows
    slots = np.empty((n, CATEGORICAL + NUMERIC), dtype=np.int32)
    values = np.ones((n, CATEGORICAL + NUMERIC), dtype=np.float32)
    offset = 0
    for j in range(CATEGORICAL):
        encoded = pc.dictionary_encode(t.column(f"c{j}")).combine_chunks()
        slots[:, j] = encoded.indices.to_numpy(zero_copy_only=False) + offset
        offset += len(encoded.dictionary)
    for j in range(NUMERIC):
        column = t.column(f"i{j}")
        missing = column.is_null().to_numpy(zero_copy_only=False)
        x = column.fill_null(0).to_numpy()
        present_slot, missing_slot = offset, offset + int(not missing.all())
        offset = missing_slot + int(missing.any())
        slots[:, CATEGORICAL + j] = np.where(missing, missing_slot, present_slot)
        values[:, CATEGORICAL + j] = np.where(missing, 1.0, np.sign(x) * np.log1p(np.abs(x)))
    labels = t.column("label").to_numpy()
    return slots, values, labels, offset


def funnel_read(funnel, path, model):
    run = subprocess.run([funnel, "train", "--data", path, "--data-format", "criteo", "--model", "lr", "--epochs", "1",
                          "--vocabulary-min-count", "1", "--out", model], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"funnel train failed: {run.stderr.strip()}")
    found = re.search(r"read ([0-9]+) rows of ([0-9]+) fields from .* in ([0-9.]+) s", run.stderr)
    if not found:
        raise SystemExit(f"no 'read N rows' line from funnel train: {run.stderr.strip()}")
    return int(found.group(1)), float(found.group(3))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--funnel", required=True, help="the funnel binary")
    ap.add_argument("--data", required=True, help="a Criteo-layout file (e.g. the training split)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    pa.set_cpu_count(args.threads)
    pa.set_io_thread_count(args.threads)
    arrow_table(args.data)                                             # warm-up
    funnel_s, arrow_s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        model = os.path.join(tmp, "lr.json")
        for _ in range(args.repeat):
            rows, seconds = funnel_read(args.funnel, args.data, model)
            funnel_s.append(seconds)
            t0 = time.perf_counter()
            slots, values, labels, vocabulary = arrow_table(args.data)
            arrow_s.append(time.perf_counter() - t0)
        with open(model) as fh:
            funnel_vocabulary = len(base64.b64decode(json.load(fh)["vocabulary"])) // 8
    if rows != len(labels) or funnel_vocabulary != vocabulary:
        raise SystemExit(f"different tables: Funnel {rows} rows and {funnel_vocabulary} slots, PyArrow {len(labels)} rows and {vocabulary} slots")
    f, a = statistics.median(funnel_s), statistics.median(arrow_s)
    print("| file | rows | vocabulary slots | Funnel s | PyArrow + NumPy s | PyArrow ÷ Funnel |")
    print("|---|---|---|---|---|---|")
    print(f"| {os.path.basename(args.data)} | {rows:,} | {vocabulary:,} | {f:.2f} | {a:.2f} | {a / f:.2f}× |")


if __name__ == "__main__":
    main()
