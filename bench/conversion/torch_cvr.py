#!/usr/bin/env python3
"""Entire-space conversion models in PyTorch on Funnel's selection-bias simulation (or any CSV of
impressions with a click and a purchase label): the twin of Funnel's conversion models
(`funnel train --model naive-cvr|esmm|escm2-ips|escm2-dr|dcmt|choruscvr`, whose names here are
naive-shared, esmm, escm2-ipw, escm2-dr, dcmt, choruscvr), and a first look at which model undoes
the bias of a conversion model trained on clicked rows. bench/conversion/run_conversion_bench.sh
runs both side by side.

usage: torch_cvr.py --data impressions.csv [--truth truth.csv] [--test-data … [--test-truth …]]
                    [--label click] [--conversion-label purchase] [--categorical f1,f2,…]
                    [--models naive,naive-shared,esmm,escm2-ipw,escm2-dr,dcmt,choruscvr]
                    [--epochs 1] [--patience 0] [--batch-size 1024] [--lr 1e-3] [--dim 8]
                    [--hidden 64,32] [--clip 0.05] [--lambda 1] [--seed 1] [--threads 2]
                    [--order shuffle|file] [--bias-init default|rates] [--sparse]

Data: `funnel simulate --scenario selection-bias --out impressions.csv --truth truth.csv` (the
columns are in docs/conversion-models.md), or any comma-separated file with a header, 0/1 click
and purchase columns (--label, --conversion-label; a purchase without a click is an error) and
the categorical columns named by --categorical (default: the simulator's six fields). Every such
column is a field; each value seen in training gets an embedding row (unseen test values share a
row per field). Other columns are ignored. The truth file (p_click,p_cvr,convert_if_clicked, one
row per impression) is optional: without it the truth-based metrics are left out. Without
--test-data the training file is also the test file (with --truth as its truth); with --test-data
only --test-truth gives the test truth.

Every model shares one embedding table (--dim per value, 8 by default, concatenated over the
fields) and has MLP towers (--hidden, 64, 32 by default, ReLU) from it, each ending in one logit.
o = click, r = purchase (0 when not clicked), ô = pCTR, r̂ = pCVR, δ(y, p) the binary
cross-entropy, sg the stop-gradient, means over the batch's rows (D) unless said otherwise:

- naive: a click model and, beside it, a conversion model with embeddings of its own; δ(o, ô)
  over D + δ(r, r̂) over the clicked rows only (mean over them).
- naive-shared: the same losses with one shared embedding table (the click loss trains the
  embeddings the conversion tower reads: ESMM's representation transfer without its loss).
- esmm (Ma et al. 2018, eq. 3): δ(o, ô) + δ(o·r, ô·r̂), both over D.
- escm2-ipw (Wang et al. 2022): esmm + λ·(1/|D|) Σ_D o·δ(r, r̂)/max(sg(ô), clip), λ = 1.
- escm2-dr: esmm + λ·(1/|D|) Σ_D [ê + o·(δ(r, r̂) − ê)/max(sg(ô), clip)] with ê = sg(imputation
  tower), plus the imputation tower's (1/|D|) Σ_D o·(sg(δ(r, r̂)) − ê)²/max(sg(ô), clip).
- dcmt (Zhu et al. 2023): a factual CVR tower r̂ and a counterfactual tower r̂*; δ(o, ô) +
  δ(o·r, ô·r̂) + (1/|D|) Σ_D [o·δ(r, r̂)/max(sg ô, clip) + (1 − o)·δ(1 − r, r̂*)/max(1 − sg ô, clip)]
  + 0.001·mean |1 − (r̂ + r̂*)|; r̂ is the pCVR.
- choruscvr (Cheng et al. 2025; the alignment's weighting is Funnel's reading, see
  docs/conversion-models.md, as the paper's method section could not be read): an
  unCVR tower û; δ(o, ô) + δ(o·r, ô·r̂) + δ(o·(1 − r), ô·û) over D, and on the unclicked rows the
  soft alignment δ(1 − sg(û), r̂) + δ(1 − sg(r̂), û), each weighted 1/max(1 − sg ô, clip), summed
  over the unclicked rows and divided by |D|.

With --patience, the last tenth of the training rows is held out and each model trains until its
validation CTCVR log loss (observable on every row, depending on both heads: one criterion for
every model) has not improved for that many epochs; the best epoch is kept.

Metrics on the test split: CTR-AUC (all rows), CVR-AUC on clicked rows, CTCVR-AUC (all rows),
their log losses; with a test truth also the entire-space CVR-AUC (pCVR against each impression's
conversion-if-clicked draw, all rows) and the calibration ratio mean(pCVR)/mean(true pCVR) over the
unclicked and over the clicked impressions.
Prints a header JSON line (row counts; with a test truth also the true unclicked/clicked CVR ratio
and the Bayes entire-space CVR-AUC), then one JSON line per model with its metrics, training
seconds, epochs, best epoch, "seed" and "tool": "pytorch".
"""
import argparse
import json
import time

import numpy as np
import torch
import torch.nn as nn

FIELDS = ["user_segment", "item_id", "category", "price_bucket", "position", "device"]


def read(path, truth_path, label="click", conversion_label="purchase", fields=FIELDS):
    """Labels, the fields' values (as text) and the truth (None without a truth file)."""
    with open(path) as f:
        header = f.readline().strip().split(",")
        cols = {name: i for i, name in enumerate(header)}
        rows = [line.rstrip("\n").split(",") for line in f]
    missing = [c for c in [label, conversion_label, *fields] if c not in cols]
    if missing:
        raise SystemExit(f"{path}: no column {', '.join(missing)}")
    click = np.array([int(r[cols[label]]) for r in rows], dtype=np.float32)
    purchase = np.array([int(r[cols[conversion_label]]) for r in rows], dtype=np.float32)
    if np.any((purchase == 1) & (click == 0)):
        raise SystemExit(f"{path}: a purchase without a click ({conversion_label}=1 with {label}=0)")
    values = [[r[cols[f]] for r in rows] for f in fields]
    truth = None
    if truth_path:
        truth = np.loadtxt(truth_path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
        if len(truth) != len(rows):
            raise SystemExit(f"{truth_path}: {len(truth)} rows, {path} has {len(rows)}")
    return click, purchase, values, truth


class Vocabulary:
    def __init__(self, values):
        self.maps, self.offsets, total = [], [], 0
        for column in values:
            m = {v: i + 1 for i, v in enumerate(sorted(set(column)))}  # 0: unseen
            self.maps.append(m)
            self.offsets.append(total)
            total += len(m) + 1
        self.size = total

    def encode(self, values):
        return torch.tensor(np.stack([[off + m.get(v, 0) for v in column]
                                      for column, m, off in zip(values, self.maps, self.offsets)], axis=1), dtype=torch.long)


def tower(width, hidden=(64, 32)):
    layers, n = [], width
    for h in hidden:
        layers += [nn.Linear(n, h), nn.ReLU()]
        n = h
    layers.append(nn.Linear(n, 1))
    return nn.Sequential(*layers)


class Model(nn.Module):
    def __init__(self, kind, size, fields=len(FIELDS), dim=8, hidden=(64, 32), sparse=False):
        super().__init__()
        self.kind = kind
        self.embedding = nn.Embedding(size, dim, sparse=sparse)
        nn.init.normal_(self.embedding.weight, std=0.01)
        width = dim * fields
        self.ctr, self.cvr = tower(width, hidden), tower(width, hidden)
        self.extra = tower(width, hidden) if kind in ("escm2-dr", "dcmt", "choruscvr") else None
        # The naive baseline is a conversion model of its own beside the click model: its own
        # embeddings, trained on the clicked rows only.
        self.cvr_embedding = None
        if kind == "naive":
            self.cvr_embedding = nn.Embedding(size, dim, sparse=sparse)
            nn.init.normal_(self.cvr_embedding.weight, std=0.01)

    def forward(self, x):
        e = self.embedding(x).flatten(1)
        ec = e if self.cvr_embedding is None else self.cvr_embedding(x).flatten(1)
        out = [self.ctr(e).squeeze(1), self.cvr(ec).squeeze(1)]
        if self.extra is not None:
            out.append(self.extra(e).squeeze(1))
        return out


def bce(p, y):
    p = p.clamp(1e-7, 1 - 1e-7)
    return -(y * torch.log(p) + (1 - y) * torch.log(1 - p))


def loss(model, x, o, r, clip, lam):
    logits = model(x)
    ctr, cvr = torch.sigmoid(logits[0]), torch.sigmoid(logits[1])
    n = len(o)
    l_ctr = nn.functional.binary_cross_entropy_with_logits(logits[0], o)
    if model.kind in ("naive", "naive-shared"):
        clicked = o > 0
        l_cvr = nn.functional.binary_cross_entropy_with_logits(logits[1][clicked], r[clicked]) if clicked.any() else 0 * l_ctr
        return l_ctr + l_cvr
    l_ctcvr = bce(ctr * cvr, o * r).mean()
    if model.kind == "esmm":
        return l_ctr + l_ctcvr
    w = o / ctr.detach().clamp(min=clip)
    d = bce(cvr, r)
    if model.kind == "escm2-ipw":
        return l_ctr + l_ctcvr + lam * (w * d).sum() / n
    if model.kind == "escm2-dr":
        e = logits[2]  # the imputed error, unbounded
        dr = (e.detach() + w * (d - e.detach())).sum() / n
        imputation = (w * (d.detach() - e) ** 2).sum() / n
        return l_ctr + l_ctcvr + lam * dr + imputation
    if model.kind == "dcmt":
        cf = torch.sigmoid(logits[2])
        w_cf = (1 - o) / (1 - ctr.detach()).clamp(min=clip)
        factual = (w * d).sum() / n
        counterfactual = (w_cf * bce(cf, 1 - r)).sum() / n
        constraint = (1 - (cvr + cf)).abs().mean()
        return l_ctr + l_ctcvr + factual + counterfactual + 0.001 * constraint
    if model.kind == "choruscvr":
        un = torch.sigmoid(logits[2])
        l_ctuncvr = bce(ctr * un, o * (1 - r)).mean()
        w_u = (1 - o) / (1 - ctr.detach()).clamp(min=clip)
        sam = (w_u * (bce(cvr, 1 - un.detach()) + bce(un, 1 - cvr.detach()))).sum() / n
        return l_ctr + l_ctcvr + l_ctuncvr + sam
    raise ValueError(model.kind)


def auc(score, label):
    """Mann–Whitney AUC with tied scores given their average rank."""
    score, label = np.asarray(score, dtype=np.float64), np.asarray(label, dtype=np.float64)
    order = np.argsort(score, kind="mergesort")
    _, first, counts = np.unique(score[order], return_index=True, return_counts=True)
    ranks = np.empty(len(score))
    ranks[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    pos = label.sum()
    neg = len(label) - pos
    return float((ranks[label == 1].sum() - pos * (pos + 1) / 2) / (pos * neg))


def logloss(p, y):
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--truth", help="the truth of --data (optional; without a test truth no truth-based metrics)")
    ap.add_argument("--test-data")
    ap.add_argument("--test-truth", help="the truth of --test-data (optional)")
    ap.add_argument("--label", default="click", help="the click column (0/1)")
    ap.add_argument("--conversion-label", default="purchase", help="the purchase column (0/1, only where clicked)")
    ap.add_argument("--categorical", default=",".join(FIELDS),
                    help="comma-separated categorical columns, each an embedded field")
    ap.add_argument("--models", default="naive,naive-shared,esmm,escm2-ipw,escm2-dr,dcmt,choruscvr")
    ap.add_argument("--epochs", type=int, default=1, help="epochs, or the most epochs with --patience")
    ap.add_argument("--patience", type=int, default=0,
                    help="hold out the last tenth of the training rows and stop after this many epochs without a "
                         "better validation CTCVR log loss, keeping the best epoch (0: train --epochs, no hold-out)")
    ap.add_argument("--batch-size", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--dim", type=int, default=8, help="embedding size per field")
    ap.add_argument("--hidden", default="64,32", help="comma-separated hidden layer widths of every tower")
    ap.add_argument("--clip", type=float, default=0.05)
    ap.add_argument("--lambda", dest="lam", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--sparse", action="store_true",
                    help="sparse embedding gradients with SparseAdam (only the rows a batch names are updated, as Funnel "
                         "does), Adam on the towers; default: dense Adam on every parameter")
    ap.add_argument("--order", choices=["shuffle", "file"], default="shuffle",
                    help="rows of an epoch: a fresh seeded permutation each epoch (shuffle), or in file order as Funnel trains (file)")
    ap.add_argument("--bias-init", choices=["default", "rates"], default="default",
                    help="the towers' last biases: PyTorch's default draw, or each label's rate as Funnel starts them "
                         "(click: logit of the click rate; conversion: of the conversion rate over clicks; DCMT's and "
                         "ChorusCVR's third tower: of its complement; ESCM2-DR's imputed error: 0)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fields = [c for c in args.categorical.split(",") if c]
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    if not fields:
        raise SystemExit("--categorical: no columns")
    if args.test_truth and not args.test_data:
        raise SystemExit("--test-truth needs --test-data")
    columns = dict(label=args.label, conversion_label=args.conversion_label, fields=fields)

    o, r, values, _ = read(args.data, args.truth, **columns)
    # The last tenth of the training rows (the last users: rows come user by user) is the
    # validation split of early stopping when --patience is given.
    held = len(o) // 10 if args.patience else 0
    if held:
        vo, vr, vvalues = o[-held:], r[-held:], [column[-held:] for column in values]
        o, r, values = o[:-held], r[:-held], [column[:-held] for column in values]
    if args.test_data:
        to, tr, tvalues, ttruth = read(args.test_data, args.test_truth, **columns)
    else:
        to, tr, tvalues, ttruth = read(args.data, args.truth, **columns)
    vocab = Vocabulary(values)
    x, tx = vocab.encode(values), vocab.encode(tvalues)
    vx = vocab.encode(vvalues) if held else None
    o_t, r_t = torch.tensor(o), torch.tensor(r)
    clicked, unclicked = to == 1, to == 0
    summary = {"rows": len(o), "test_rows": len(to), "clicks": int(o.sum()), "purchases": int(r.sum())}
    if ttruth is not None:
        p_cvr_true, convert_if_clicked = ttruth[:, 1], ttruth[:, 2]
        summary["true_unclicked_over_clicked_cvr"] = float(p_cvr_true[unclicked].mean() / p_cvr_true[clicked].mean())
        summary["bayes_entire_space_cvr_auc"] = auc(p_cvr_true, convert_if_clicked)
    print(json.dumps(summary))
    for kind in args.models.split(","):
        torch.manual_seed(args.seed)
        model = Model(kind, vocab.size, len(fields), args.dim, hidden, sparse=args.sparse)
        if args.bias_init == "rates":
            def logit(p):
                p = min(max(p, 1e-6), 1 - 1e-6)
                return float(np.log(p / (1 - p)))
            ctr, cvr = float(o.mean()), float(r.sum() / max(o.sum(), 1))
            with torch.no_grad():
                model.ctr[-1].bias.fill_(logit(ctr))
                model.cvr[-1].bias.fill_(logit(cvr))
                if model.extra is not None:
                    model.extra[-1].bias.fill_(0.0 if kind == "escm2-dr" else logit(1 - cvr))
        if args.sparse:
            # Lazy Adam on the embedding rows a batch names (as Funnel updates them), Adam on the rest.
            tables = [p for name, p in model.named_parameters() if "embedding" in name]
            dense = [p for name, p in model.named_parameters() if "embedding" not in name]
            optimizers = [torch.optim.SparseAdam(tables, lr=args.lr), torch.optim.Adam(dense, lr=args.lr)]
        else:
            optimizers = [torch.optim.Adam(model.parameters(), lr=args.lr)]
        started = time.time()
        g = torch.Generator().manual_seed(args.seed)
        best, best_state, best_epoch, epochs = float("inf"), None, 0, 0
        for epoch in range(1, args.epochs + 1):
            perm = torch.randperm(len(o), generator=g) if args.order == "shuffle" else torch.arange(len(o))
            for b in range(0, len(o), args.batch_size):
                idx = perm[b:b + args.batch_size]
                for opt in optimizers:
                    opt.zero_grad()
                loss(model, x[idx], o_t[idx], r_t[idx], args.clip, args.lam).backward()
                for opt in optimizers:
                    opt.step()
            epochs = epoch
            if not held:
                continue
            # Early stopping on the validation CTCVR log loss: observable on every row and
            # depending on both heads, so the same criterion serves every model.
            with torch.no_grad():
                out = model(vx)
                p = (torch.sigmoid(out[0]) * torch.sigmoid(out[1])).numpy().astype(np.float64)
            value = logloss(p, vo * vr)
            if value < best:
                best, best_epoch = value, epoch
                best_state = {k: v.clone() for k, v in model.state_dict().items()}
            elif epoch - best_epoch >= args.patience:
                break
        if best_state is not None:
            model.load_state_dict(best_state)
        seconds = time.time() - started
        with torch.no_grad():
            out = model(tx)
            p_ctr = torch.sigmoid(out[0]).numpy().astype(np.float64)
            p_cvr = torch.sigmoid(out[1]).numpy().astype(np.float64)
        p_ctcvr = p_ctr * p_cvr
        result = {
            "tool": "pytorch", "model": kind, "seed": args.seed,
            "train_seconds": round(seconds, 1), "epochs": epochs, "best_epoch": best_epoch or epochs,
            "ctr_auc": auc(p_ctr, to), "ctr_logloss": logloss(p_ctr, to),
            "cvr_auc_clicked": auc(p_cvr[clicked], tr[clicked]), "cvr_logloss_clicked": logloss(p_cvr[clicked], tr[clicked]),
            "ctcvr_auc": auc(p_ctcvr, to * tr), "ctcvr_logloss": logloss(p_ctcvr, to * tr),
        }
        if ttruth is not None:
            result["entire_space_cvr_auc"] = auc(p_cvr, convert_if_clicked)
            result["unclicked_calibration_ratio"] = float(p_cvr[unclicked].mean() / p_cvr_true[unclicked].mean())
            result["clicked_calibration_ratio"] = float(p_cvr[clicked].mean() / p_cvr_true[clicked].mean())
        print(json.dumps(result))


if __name__ == "__main__":
    main()
