#!/usr/bin/env python3
"""How long a trained click model takes to load: Funnel's model file against torch.load.

For each Funnel model file given (DeepFM or DCN-v2 on the Criteo layout with a vocabulary, as
`run_model_bench.sh` trains them), this builds the same network as torch_models.py's `Peer` with
the file's weights (in Funnel's slot order) and saves it with torch.save in two ways a PyTorch team
might ship it:

- `tensor`: the state_dict and the vocabulary's 64-bit keys as one int64 tensor (Funnel's layout);
- `dict`: the state_dict and the vocabulary as a Python dict key → slot (pickled by torch.save).

Then it times, alternating the tools, --repeat loads of each:

- Funnel: `funnel predict --model FILE` on a one-row file; the time is its own "loaded the model in
  X s" line (reading the file, parsing it, decoding the weights and the vocabulary);
- PyTorch: torch.load of the saved file and load_state_dict into a freshly built Peer, in this
  process (torch already imported); once the common way (build the Peer, which draws its random
  initial weights, then copy the loaded tensors in), once the quickest (build it on the meta device
  and take the loaded tensors as they are, `assign=True`; the dict file is loaded this way too).

Both read from the page cache after the first round. Each Funnel time is a fresh process; the
PyTorch times are of one warm process, whose first loads (printed to stderr) also pay one-time
costs. Prints one Markdown table row per file and
with the median load times, the file sizes and Funnel's whole `predict` process time for the row
(process start included; with --funnel-before, also that of another binary, for a before/after),
and checks that every model PyTorch loaded gives the row the same
probability as `funnel predict` (to 1e-5).

    .venv-torch/bin/python bench/criteo/load_bench.py --funnel .build/release/funnel --row-from DATA/test.txt MODEL.json ...
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

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_models  # noqa: E402  (the peer network)


def peer_from_funnel(path):
    """(Peer with the file's weights, vocabulary keys as uint64 array, the file's JSON document)."""
    with open(path) as fh:
        doc = json.load(fh)
    if doc.get("format") != "funnel-ctr-model" or doc.get("model") not in ("deepfm", "dcnv2"):
        raise SystemExit(f"{path}: expected a Funnel deepfm or dcnv2 model file")
    arch = doc["architecture"]
    if arch["fields"] != torch_models.FIELDS or doc.get("dataFormat") != "criteo":
        raise SystemExit(f"{path}: expected a Criteo-layout model (39 fields)")
    weights = np.frombuffer(base64.b64decode(doc["weights"]), dtype="<f4")
    keys = np.frombuffer(base64.b64decode(doc["vocabulary"]), dtype="<u8")
    slots, k = len(keys) + arch["fields"], arch["dim"]
    model = torch_models.Peer(doc["model"], slots, k, arch["hidden"], arch.get("crossLayers", 0), wide=arch.get("wide", False))
    torch_models.copy_funnel_weights(model, weights, slots, k, None, path)
    return model, keys, doc


def funnel_load(funnel, model_path, row_file, out):
    t0 = time.perf_counter()
    run = subprocess.run([funnel, "predict", "--model", model_path, "--data", row_file, "--out", out],
                         capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if run.returncode != 0:
        raise SystemExit(f"funnel predict failed on {model_path}: {run.stderr.strip()}")
    found = re.search(r"loaded the model in ([0-9.]+) s", run.stderr)
    if not found:
        raise SystemExit(f"no 'loaded the model in' line from funnel predict: {run.stderr.strip()}")
    return float(found.group(1)), wall


def torch_load(path, doc, meta):
    """Seconds to torch.load `path` and put its state_dict into a Peer, and the Peer. With `meta`
    the Peer is built on the meta device (no memory, no random initial draw) and takes the loaded
    tensors as they are (load_state_dict(assign=True)): the quickest way PyTorch offers."""
    arch = doc["architecture"]
    t0 = time.perf_counter()
    saved = torch.load(path)
    slots = len(saved["vocabulary"]) + arch["fields"]
    shape = (doc["model"], slots, arch["dim"], arch["hidden"], arch.get("crossLayers", 0))
    if meta:
        with torch.device("meta"):
            model = torch_models.Peer(*shape, wide=arch.get("wide", False))
        model.load_state_dict(saved["state_dict"], assign=True)
    else:
        model = torch_models.Peer(*shape, wide=arch.get("wide", False))
        model.load_state_dict(saved["state_dict"])
    return time.perf_counter() - t0, model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--funnel", required=True, help="the funnel binary")
    ap.add_argument("--row-from", required=True, help="a Criteo-layout file; its first row is scored")
    ap.add_argument("--funnel-before", help="another funnel binary (one without the 'loaded the model in' line): its whole predict process time for the row is reported too")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("models", nargs="+", help="Funnel model files (deepfm or dcnv2, Criteo layout, vocabulary)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        row_file = os.path.join(tmp, "row.txt")
        with open(args.row_from) as fh:
            line = fh.readline()
        with open(row_file, "w") as fh:
            fh.write(line)
        before = "| Funnel predict process ms, --funnel-before " if args.funnel_before else ""
        print(f"| model | Funnel file MB | Funnel load ms | Funnel predict process ms {before}| PyTorch file MB | PyTorch load ms | ÷ Funnel "
              "| PyTorch load ms, meta device | ÷ Funnel | PyTorch file MB, dict vocabulary | PyTorch load ms, dict vocabulary | ÷ Funnel |")
        print("|---" * (12 + bool(args.funnel_before)) + "|")
        for path in args.models:
            model, keys, doc = peer_from_funnel(path)
            tensor_path, dict_path = os.path.join(tmp, "tensor.pt"), os.path.join(tmp, "dict.pt")
            torch.save({"state_dict": model.state_dict(), "vocabulary": torch.from_numpy(keys.astype(np.int64))}, tensor_path)
            torch.save({"state_dict": model.state_dict(), "vocabulary": {int(key): s for s, key in enumerate(keys)}}, dict_path)
            del model
            out = os.path.join(tmp, "p.csv")
            variants = {"plain": (tensor_path, False), "meta": (tensor_path, True), "dict": (dict_path, True)}
            i, x = torch_models.funnel_features([line], keys)
            funnel_times, walls, walls_before, torch_times = [], [], [], {name: [] for name in variants}
            for _ in range(args.repeat):
                if args.funnel_before:
                    t0 = time.perf_counter()
                    subprocess.run([args.funnel_before, "predict", "--model", path, "--data", row_file, "--out", out], check=True, capture_output=True)
                    walls_before.append(time.perf_counter() - t0)
                t, wall = funnel_load(args.funnel, path, row_file, out)
                funnel_times.append(t)
                walls.append(wall)
                with open(out) as fh:
                    p_funnel = float(fh.read().split()[1])
                for name, (p, meta) in variants.items():
                    t, loaded = torch_load(p, doc, meta)
                    torch_times[name].append(t)
                    # Each loaded model scores the row as funnel predict does.
                    with torch.no_grad():
                        p_torch = torch.sigmoid(loaded(i, x)).item()
                    if abs(p_funnel - p_torch) > 1e-5:
                        raise SystemExit(f"{path}: funnel predict gives {p_funnel}, PyTorch's {name} load {p_torch}")
            if path == args.models[0]:
                first = ", ".join(f"{name} {1000 * v[0]:.1f} ms" for name, v in torch_times.items())
                print(f"PyTorch's first load of each kind in this process, one-time costs included: {first}", file=sys.stderr)
            f_ms = 1000 * statistics.median(funnel_times)
            t_ms = {name: 1000 * statistics.median(v) for name, v in torch_times.items()}
            was = f"| {1000 * statistics.median(walls_before):.0f} " if walls_before else ""
            print(f"| {os.path.basename(path)} | {os.path.getsize(path) / 1e6:.1f} | {f_ms:.1f} | {1000 * statistics.median(walls):.0f} {was}"
                  f"| {os.path.getsize(tensor_path) / 1e6:.1f} | {t_ms['plain']:.1f} | {t_ms['plain'] / f_ms:.2f} "
                  f"| {t_ms['meta']:.1f} | {t_ms['meta'] / f_ms:.2f} "
                  f"| {os.path.getsize(dict_path) / 1e6:.1f} | {t_ms['dict']:.1f} | {t_ms['dict'] / f_ms:.2f} |", flush=True)


if __name__ == "__main__":
    main()
