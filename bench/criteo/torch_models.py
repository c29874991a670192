#!/usr/bin/env python3
"""PyTorch peers of Funnel's click models on a Criteo-layout split, for accuracy comparisons.

Features as Funnel builds them for the Criteo layout: every categorical value is its own feature
(one embedding row per (column, value) seen in training; unseen values share one row per column),
and each integer column is one feature whose value is sign(x)·log(1 + |x|) (a missing cell: its own
"missing" feature with value 1). Models: `lr` (logistic regression) and `fm` (factorization
machine), trained in order in mini-batches on the mean log loss with Adagrad, like
`funnel train --model fm`.

    .venv-torch/bin/python bench/criteo/torch_models.py --data bench/data/criteo --model fm --factors 4 --epochs 2
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_criteo_like import auc  # noqa: E402  (the generator's rank AUC)


def load(path, vocab, fit):
    labels, idx, val = [], [], []
    with open(path) as fh:
        for line in fh:
            cells = line.rstrip("\n").split("\t")
            labels.append(int(cells[0]))
            row_i, row_v = [], []
            for j in range(13):
                c = cells[1 + j]
                key = ("I", j, "missing" if c == "" else "")
                if key not in vocab:
                    vocab[key] = len(vocab) if fit else vocab.setdefault(("I", j, "unseen"), len(vocab))
                row_i.append(vocab[key])
                x = 0.0 if c == "" else float(c)
                row_v.append(1.0 if c == "" else float(np.sign(x) * np.log1p(abs(x))))
            for j in range(26):
                key = ("C", j, cells[14 + j])
                if key not in vocab:
                    if fit:
                        vocab[key] = len(vocab)
                    else:
                        key = ("C", j, "<unseen>")
                        vocab.setdefault(key, len(vocab))
                row_i.append(vocab[key])
                row_v.append(1.0)
            idx.append(row_i)
            val.append(row_v)
    return torch.tensor(labels, dtype=torch.float32), torch.tensor(idx), torch.tensor(val, dtype=torch.float32)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="bench/data/criteo")
    ap.add_argument("--model", choices=["lr", "fm"], default="fm")
    ap.add_argument("--factors", type=int, default=4)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=0.05)
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    vocab = {}
    t0 = time.perf_counter()
    y, ix, vx = load(f"{args.data}/train.txt", vocab, True)
    ty, tix, tvx = load(f"{args.data}/test.txt", vocab, False)
    n_feat = len(vocab) + 64
    bias = torch.zeros(1, requires_grad=True)
    w = torch.zeros(n_feat, requires_grad=True)
    params = [bias, w]
    V = None
    if args.model == "fm":
        V = (0.01 * torch.randn(n_feat, args.factors)).requires_grad_()
        params.append(V)
    opt = torch.optim.Adagrad(params, lr=args.lr, eps=1e-10)

    def logits(i, v):
        z = bias + (w[i] * v).sum(1)
        if V is not None:
            e = V[i] * v.unsqueeze(2)
            z = z + 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1)
        return z

    load_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    for _ in range(args.epochs):
        for s in range(0, len(y), args.batch_size):
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits(ix[s:s + args.batch_size], vx[s:s + args.batch_size]), y[s:s + args.batch_size])
            loss.backward()
            opt.step()
    train_s = time.perf_counter() - t1
    with torch.no_grad():
        p = torch.sigmoid(logits(tix, tvx)).double().numpy()
    yt = ty.double().numpy()
    pc = np.clip(p, 1e-15, 1 - 1e-15)
    ll = float(-np.mean(yt * np.log(pc) + (1 - yt) * np.log(1 - pc)))
    print(json.dumps({"model": args.model, "factors": args.factors, "epochs": args.epochs, "train_rows": len(y),
                      "test_auc": float(auc(yt, p)), "test_logloss": ll, "load_s": load_s, "train_s": train_s,
                      "train_rows_per_s": len(y) * args.epochs / train_s, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
