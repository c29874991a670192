#!/usr/bin/env python3
"""Prediction speed of Funnel's click models against PyTorch running the same weights.

For each Funnel model file given (lr, fm, deepfm or dcnv2 on the Criteo layout with a vocabulary,
as `run_model_bench.sh` trains them), this builds torch_models.py's `Peer` with the file's weights
(in Funnel's slot order), turns the test file's rows into Funnel's slots and values, and times,
alternating the tools, --repeat rounds of scoring every row (σ of the logit included on both
sides; reading the text excluded on both):

- Funnel: `funnel predict --model FILE --data TEST`; the time is its own "predicted N rows in X s"
  line (2 threads, as the funnel binary always scores; each a fresh process, so thread start-up and
  first touches of the output are included), with --funnel-before also another binary's;
- PyTorch, the module: the Peer's no-grad forward, as trained and as `run_model_bench.sh` times it;
- PyTorch, fused (lr and fm only): the same logits from `F.embedding_bag` with per-sample weights,
  one fused gather-and-sum per row (b + Σ w·x; for the FM Σ V·x and Σ V²·x² as two bags), the
  fastest way PyTorch offers to score these models.

Each PyTorch variant runs in blocks of 4,096 rows and in one block of the whole file, and is
credited with the faster of the two. Prints one Markdown table row per file with the median rows
per second of each and the ratios Funnel / PyTorch, and checks that every PyTorch variant gives
every row the probability `funnel predict` wrote (to 1e-5).

    .venv-torch/bin/python bench/criteo/predict_bench.py --funnel .build/release/funnel --data DATA/test.txt MODEL.json ...
"""
import argparse
import base64
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402  (the peer network and Funnel's feature keys)


def peer_from_funnel(path):
    """(Peer with the file's weights, vocabulary keys as uint64 array, model kind)."""
    with open(path) as fh:
        doc = json.load(fh)
    kind = doc.get("model")
    if doc.get("format") != "funnel-ctr-model" or kind not in ("lr", "fm", "deepfm", "dcnv2"):
        raise SystemExit(f"{path}: expected a Funnel lr, fm, deepfm or dcnv2 model file")
    if doc.get("dataFormat") != "criteo" or "vocabulary" not in doc or doc["spec"].get("numericTransform") != "log":
        raise SystemExit(f"{path}: expected a Criteo-layout model with a vocabulary and the log transform")
    arch = doc.get("architecture") or {}
    weights = np.frombuffer(base64.b64decode(doc["weights"]), dtype="<f4")
    keys = np.frombuffer(base64.b64decode(doc["vocabulary"]), dtype="<u8")
    slots = len(keys) + torch_models.FIELDS
    k = arch.get("dim", doc.get("factors", 0))
    model = torch_models.Peer(kind, slots, max(k, 1), arch.get("hidden", []), arch.get("crossLayers", 0), wide=arch.get("wide", False))
    torch_models.copy_funnel_weights(model, weights, slots, k, None, path)
    model.eval()
    return model, keys, kind


def fused(model):
    """The lr or fm model's logits through F.embedding_bag (per-sample weights, mode sum)."""
    w, b = model.w.detach(), model.b.detach()
    if model.kind == "lr":
        return lambda i, x: b + F.embedding_bag(i, w, per_sample_weights=x, mode="sum").squeeze(1)
    V = model.V.detach()
    V2 = V * V

    def fm(i, x):
        linear = b + F.embedding_bag(i, w, per_sample_weights=x, mode="sum").squeeze(1)
        s = F.embedding_bag(i, V, per_sample_weights=x, mode="sum")
        q = F.embedding_bag(i, V2, per_sample_weights=x * x, mode="sum")
        return linear + 0.5 * (s * s - q).sum(1)
    return fm


def torch_rate(score, i, x, block):
    """(rows/s, probabilities) of scoring all rows in blocks of `block` (σ included)."""
    with torch.no_grad():
        score(i[:block], x[:block])                                      # warm-up
        t0 = time.perf_counter()
        p = torch.cat([torch.sigmoid(score(i[s:s + block], x[s:s + block])) for s in range(0, len(i), block)])
        seconds = time.perf_counter() - t0
    return len(i) / seconds, p


def funnel_rate(funnel, model_path, data, out):
    run = subprocess.run([funnel, "predict", "--model", model_path, "--data", data, "--out", out], capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"funnel predict failed on {model_path}: {run.stderr.strip()}")
    found = re.search(r"predicted ([0-9]+) rows in ([0-9.]+) s", run.stderr)
    if not found:
        raise SystemExit(f"no 'predicted N rows in X s' line from funnel predict: {run.stderr.strip()}")
    return int(found.group(1)) / float(found.group(2))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--funnel", required=True, help="the funnel binary")
    ap.add_argument("--data", required=True, help="a Criteo-layout file to score (e.g. the test split)")
    ap.add_argument("--funnel-before", help="another funnel binary, timed the same way in the same rounds (a before/after column)")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("models", nargs="+", help="Funnel model files (lr, fm, deepfm or dcnv2; Criteo layout, vocabulary)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with open(args.data) as fh:
        lines = fh.readlines()
    before = "| Funnel rows/s, --funnel-before " if args.funnel_before else ""
    print(f"| model | rows {before}| Funnel rows/s | PyTorch module rows/s | Funnel ÷ module | PyTorch fused rows/s | Funnel ÷ fused | largest probability difference |")
    print("|---" * (8 + bool(args.funnel_before)) + "|")
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "p.csv")
        for path in args.models:
            model, keys, kind = peer_from_funnel(path)
            i, x = torch_models.funnel_features(lines, keys)
            variants = {"module": model}
            if kind in ("lr", "fm"):
                variants["fused"] = fused(model)
            rates = {"funnel": [], "before": []} | {name: [] for name in variants}
            largest = 0.0
            for _ in range(args.repeat):
                if args.funnel_before:
                    rates["before"].append(funnel_rate(args.funnel_before, path, args.data, out))
                rates["funnel"].append(funnel_rate(args.funnel, path, args.data, out))
                p_funnel = torch.from_numpy(np.loadtxt(out, skiprows=1))
                for name, score in variants.items():
                    best = 0.0
                    for block in (4096, len(i)):
                        rate, p = torch_rate(score, i, x, block)
                        best = max(best, rate)
                        gap = (p.double() - p_funnel).abs().max().item()
                        if gap > 1e-5:
                            raise SystemExit(f"{path}: PyTorch's {name} scores differ from funnel predict's by {gap:.3g}")
                        largest = max(largest, gap)
                    rates[name].append(best)
            med = {name: statistics.median(v) for name, v in rates.items() if v}
            f = med["funnel"]
            fused_cells = f"| {med['fused']:,.0f} | {f / med['fused']:.2f}× " if "fused" in med else "| — | — "
            was = f"| {med['before']:,.0f} " if "before" in med else ""
            print(f"| {kind} | {len(i):,} {was}| {f:,.0f} | {med['module']:,.0f} | {f / med['module']:.2f}× {fused_cells}| {largest:.1e} |", flush=True)


if __name__ == "__main__":
    main()
