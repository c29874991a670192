#!/usr/bin/env python3
"""PyTorch peers of Funnel's click models on a Criteo-layout split, for accuracy and speed comparisons.

Features as Funnel builds them for the Criteo layout with a vocabulary: each row gives 39 fields,
the 26 categorical fields C1..C26 first, then the 13 integer fields I1..I13 (the order matters for
the concatenated embedding input of DeepFM's and DCN-v2's networks).

- Categorical column j: every value seen at least `--min-count` times in training is its own
  feature (value 1); rarer values and values not seen in training share one "other" feature per
  column. The empty cell is a value like any other.
- Integer column j: one feature whose value is sign(x)·log(1 + |x|); an empty cell is instead a
  separate "missing" feature of that column with value 1. (Funnel's vocabulary treats these two
  like values: one seen fewer than --min-count times in training is replaced by the column's
  "other" feature, keeping its value; with the generated data this never happens.)

Models (S feature indices, K = --factors; for field f of a row: index i_f, value x_f, embedding
e_f = V[i_f]·x_f; x0 = the concatenation of the 39 embeddings, width D = 39·K):

- `lr`:     logit = b + Σ_f w[i_f]·x_f
- `fm`:     lr + ½ Σ_k [(Σ_f e_fk)² − Σ_f e_fk²]
- `deepfm`: fm + MLP(x0)
- `dcnv2`:  x_{l+1} = x0 ⊙ (x_l·C_l + d_l) + x_l for l < --cross-layers (full D × D matrices C_l),
            logit = MLP(x_L); no separate bias and no linear weights.

MLP(h): h = relu(h·W + c) for each width of --hidden, then a linear layer to one output; with
`--dropout p` (deepfm, dcnv2; default 0) each hidden ReLU's output is passed through inverted
dropout (torch.nn.functional.dropout in training mode: each unit zeroed with probability p, the rest
scaled by 1/(1 − p)); not the MLP's output, not the cross layers or the embeddings, and never when
predicting the validation or test split.
Initialisation as in Funnel: V ~ N(0, 0.01²); w starts at 0; every dense layer's weight and bias
(MLP and cross layers) ~ U(−1/√inputs, 1/√inputs), drawn in that order from --seed. The bias
(`--bias-init`, default `ctr`): b of lr, fm, deepfm and dcnv2 --wide, or, in dcnv2 without --wide,
the last MLP layer's bias, starts at log(c/(1 − c)) with c the mean label of the training split
(clamped to [1e-6, 1 − 1e-6]); `--bias-init zero` leaves the initialisation as it was before the
click rate was used: b at 0, dcnv2's last MLP bias at its uniform draw, as `funnel train
--bias-init zero` does. The random draws are the same either way. With --init-from the file's
weights win.

Training: mean log loss (binary cross-entropy on logits) per mini-batch of --batch-size rows
(default 256), in file order without shuffling, for --epochs passes (default 2), or with early
stopping (below). Optimiser: Adagrad (lr 0.05, ε 1e-10) for lr and
fm, Adam (lr 0.001, ε 1e-8, β 0.9/0.999) for deepfm and dcnv2, as `funnel train` defaults them.
By default all parameters are plain dense tensors, so torch.optim.Adam sees dense gradients: it
decays the moments of embedding rows a batch did not touch and keeps moving them by their
momentum -- the common PyTorch baseline. Funnel updates only the embedding rows (and DeepFM linear
weights) a batch touched, with the optimiser's step count in the bias correction, which is what
`--sparse` does here: sparse embedding gradients, torch.optim.SparseAdam for w and V and Adam for
the dense layers (the same optimiser as Funnel's, for the accuracy comparison).
With Adagrad an untouched row receives no update in either, so lr and fm follow the same rule.
(Funnel's `lr` is FTRL-Proximal; this `lr` peer is the same model trained with Adagrad.)
`--linear-ftrl` (fm, deepfm) trains the linear weights w as `funnel train --linear-optimizer ftrl`
does, the wide part of Wide & Deep: after each batch, for every feature the batch touched, with g
its gradient of the batch's summed loss (the mean-loss gradient times the batch's rows),
σ = (√(n + g²) − √n)/α, z += g − σ·w, n += g², then w = 0 if |z| ≤ λ1, else
−(z − sign(z)·λ1)/((β + √n)/α + λ2) (FTRL-Proximal; --alpha, --beta, --l1, --l2). The bias and V
keep the --optimizer.

Regularisation (all default 0, i.e. off):
- `--embedding-l2 λe`: at every step, each embedding row V[i] and linear weight w[i] that at least
  one row of the batch names (whatever its value x; a name is an index, so a value of 0 still
  names it) receives g_i + λe·p_i in place of g_i, g_i being the gradient of the batch's mean log
  loss. The batch's objective is mean_r logloss_r + (λe/2)·Σ_{distinct i named by the batch}
  (‖V_i‖² + w_i²), built as that loss term over torch.unique of the batch's indices, so with
  --sparse the gradient is sparse on exactly the named rows and the rows the batch does not name
  get no update (SparseAdam, sparse Adagrad); without --sparse they get zero L2 gradient (dense
  Adam still moves them by their momentum, as above). w gets no λe when --linear-ftrl trains it
  (FTRL has its own --l2); the bias b never gets it. lr's w, trained here by Adagrad or Adam, takes
  λe like the other models' linear weights (Funnel's lr is FTRL, where --l2 is the counterpart).
- `--dense-l2 λd` (deepfm, dcnv2): every dense parameter -- the cross layers' C_l and d_l, every
  MLP weight and bias, the last one included -- receives g + λd·p at every step: the dense
  parameter group's weight_decay in torch.optim.Adam / Adagrad (w, V and b are in groups without
  it).
- `--embedding-decay δ`: decoupled decay of the tables. After every optimiser step (the bias, the
  dense layers and the rows the batch names have taken their update, with λe on the named rows,
  and FTRL its step), every row of V and every linear weight w -- all of them, named by the batch
  or not -- is multiplied by (1 − lr·δ), lr being --lr: `with torch.no_grad(): V.mul_(1 − lr·δ)`,
  and w.mul_ likewise unless --linear-ftrl trains w (FTRL's weights follow from its own state).
  The bias and the dense layers are never decayed by δ, and the optimisers' state (Adam moments,
  Adagrad sums) is not touched. The same with --sparse and without (with --sparse the optimiser
  stays lazy, only the decay reaches every row). Funnel applies it lazily -- a row skipped for k
  steps is multiplied by (1 − lr·δ)^k before its next use -- which equals this up to rounding.
  lr·δ must be below 1.

Validation and early stopping: `--valid-file PATH` names a validation split in the training
layout; after every epoch its log loss and AUC are computed (no dropout). `--max-epochs N`
(excludes --epochs) trains up to N epochs and stops when `--patience P` (default 2) epochs in a
row bring no strictly lower validation log loss than the best so far (stop after epoch e when
e − best ≥ P, as `funnel train --valid --patience` does), then restores the best epoch's weights
(all parameters) before the test evaluation. With --max-epochs, --valid-file defaults to
DATA/valid.txt (CSV mode DATA/valid.csv) when it exists, and one is required. --valid-file with
--epochs only reports the per-epoch validation metrics; the last epoch's weights are tested.

Self-check: after training, the logits of the first test rows are recomputed in float64 NumPy by a
direct transcription of the formulas above (explicit pairwise sum over fields for the FM term, one
loop per cross and MLP layer) and compared with the batched PyTorch forward; the largest difference
is reported as "self_check_max_abs_diff" and the script exits with status 1 if it exceeds 1e-4.

`--init-from FILE` starts from the weights of a Funnel model file written by `funnel train
--initial-out FILE` (same model, factors, widths, cross layers, --vocabulary-min-count and seed)
instead of this script's own random draws: each of this script's feature indices takes the row of
Funnel's slot for the same (column, value), found through the 64-bit keys the model file lists
(FNV-1a over the field number and the value's bytes, as Funnel computes them), and the dense
layers are copied from Funnel's layout (cross layer W[i·D + o], MLP W[i·outputs + o]). Both sides
then differ only in the order and rounding of their floating-point sums, which separates an
implementation difference from the spread that the random initial draw alone causes.

CSV mode (`--csv-numeric x1,x2 --csv-categorical item [--csv-label click]`): DATA/train.csv and
DATA/test.csv with a header, the named columns taken as `funnel train --numeric/--categorical`
takes them (categorical fields first, then numeric ones, as above); `--numeric-transform
standardize` gives each numeric value as (x − mean)/deviation with the training split's mean and
population deviation, as Funnel's `standardize` does. `--init-from` is Criteo-layout only.

Output: one JSON line with test AUC and log loss, training and prediction speed (rows/s; the
prediction speed is a no-grad forward over the whole test split in batches of 4096 after a
warm-up, data already in memory) and the process's peak resident memory. With a validation split
also: "epochs_run" (epochs trained), "best_epoch" (the epoch with the lowest validation log loss,
the first of equals), "valid_logloss" and "valid_auc" (of the tested weights: the best epoch's
with --max-epochs, else the last epoch's), "train_logloss" (the same epoch's mean batch log loss,
without the L2 term), "train_logloss_per_epoch", "valid_logloss_per_epoch" and
"valid_auc_per_epoch"; "train_s" counts training passes only, "valid_s" the validation passes.

In-process use (bench/criteo/torch_tune.py): `args = parse_args(argv)`, `data = load_data(args)`
(the vocabulary and encoded splits, reusable by every run with the same --data, --valid-file,
--min-count and CSV options), `result = train_and_evaluate(args, data)` (the JSON line's dict);
`model, record = fit(args, data)` trains (and early-stops) without touching the test split, and
`evaluate(args, data, model, record)` then scores it (train_and_evaluate is the two).

    .venv-torch/bin/python bench/criteo/torch_models.py --data bench/data/criteo --model deepfm --factors 8 --hidden 256,128 --epochs 1
    .venv-torch/bin/python bench/criteo/torch_models.py --data bench/data/criteo --model deepfm --factors 8 --sparse \\
        --embedding-l2 1e-5 --dense-l2 1e-6 --dropout 0.1 --max-epochs 20 --patience 2 --batch-size 4096
"""
import argparse
import base64
import itertools
import json
import math
import os
import resource
import sys
import time
from collections import Counter

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_criteo_like import auc  # noqa: E402  (the generator's rank AUC)

NUMERIC, CATEGORICAL = 13, 26
FIELDS = CATEGORICAL + NUMERIC
CHUNK = 10_000
# CSV mode (--csv-numeric/--csv-categorical): None for the Criteo layout, else (label, numeric,
# categorical) column names; main() then sets NUMERIC and CATEGORICAL to their counts.
CSV = None
TRANSFORM = "log"


def chunks(path):
    """Rows of `path` as lists of 1 + NUMERIC + CATEGORICAL cells (label, integers, categoricals: the
    Criteo order; a CSV's named columns are put in that order), CHUNK rows at a time."""
    with open(path) as fh:
        line_no = 0
        order = None
        if CSV is not None:
            header = fh.readline().rstrip("\n").rstrip("\r").split(",")
            line_no = 1
            label, numeric, categorical = CSV
            missing = [c for c in [label, *numeric, *categorical] if c not in header]
            if missing:
                raise SystemExit(f"{path}: line 1: no column {missing[0]!r} in the header")
            order = [header.index(c) for c in [label, *numeric, *categorical]]
            width = len(header)
        else:
            width = 1 + NUMERIC + CATEGORICAL
        while True:
            rows = []
            for line in itertools.islice(fh, CHUNK):
                line_no += 1
                cells = line.rstrip("\n").rstrip("\r").split("," if order else "\t")
                if len(cells) != width:
                    raise SystemExit(f"{path}: line {line_no}: {len(cells)} cells, expected {width}")
                rows.append([cells[i] for i in order] if order else cells)
            if not rows:
                return
            yield rows


class Vocabulary:
    """Feature indices: per categorical column its "other" index then its kept values (in order of
    first appearance in training); then per integer column its "other" index, its value index and
    its missing index (each of the last two only when seen at least min_count times in training,
    else the column's "other" index takes its place, as in Funnel's vocabulary). The count of
    indices is Funnel's slot count: the kept (column, value) pairs plus one "other" per field."""

    def __init__(self, train_path, min_count):
        counts = [Counter() for _ in range(CATEGORICAL)]
        present, missing = [0] * NUMERIC, [0] * NUMERIC
        sums = np.zeros(NUMERIC)   # for --numeric-transform standardize's means
        for rows in chunks(train_path):
            cols = list(zip(*rows))
            for j in range(CATEGORICAL):
                counts[j].update(cols[1 + NUMERIC + j])
            for j in range(NUMERIC):
                empty = cols[1 + j].count("")
                missing[j] += empty
                present[j] += len(rows) - empty
                if TRANSFORM == "standardize":
                    sums[j] += sum(float(c) for c in cols[1 + j] if c)
        size = 0
        self.other, self.values = [], []
        for j in range(CATEGORICAL):
            self.other.append(size)
            size += 1
            kept = {}
            for value, n in counts[j].items():
                if n >= min_count:
                    kept[value] = size
                    size += 1
            self.values.append(kept)
        self.numeric_value, self.numeric_missing, self.numeric_other = [], [], []
        for j in range(NUMERIC):
            other = size
            self.numeric_other.append(other)
            size += 1
            for seen, indices in ((present[j], self.numeric_value), (missing[j], self.numeric_missing)):
                if seen >= min_count:
                    indices.append(size)
                    size += 1
                else:
                    indices.append(other)
        self.size = size
        self.rare = sum(sum(1 for n in c.values() if n < min_count) for c in counts)
        # --numeric-transform standardize: the training mean and (population) deviation of each
        # integer column's present values, a column without spread taking deviation 1 (Funnel's rule).
        self.mean, self.scale = [0.0] * NUMERIC, [1.0] * NUMERIC
        if TRANSFORM == "standardize":
            squares = np.zeros(NUMERIC)
            self.mean = [sums[j] / present[j] if present[j] else 0.0 for j in range(NUMERIC)]
            for rows in chunks(train_path):
                cols = list(zip(*rows))
                for j in range(NUMERIC):
                    squares[j] += sum((float(c) - self.mean[j]) ** 2 for c in cols[1 + j] if c)
            for j in range(NUMERIC):
                sd = (squares[j] / present[j]) ** 0.5 if present[j] else 0.0
                self.scale[j] = sd if sd > 0 and np.isfinite(sd) else 1.0

    def encode(self, path):
        """(labels float32 [n], indices int32 [n, 39], values float32 [n, 39]) of the rows of `path`,
        filled chunk by chunk into arrays allocated once (4 + 4 bytes per cell, like Funnel's table)."""
        with open(path) as fh:
            n = sum(1 for _ in fh) - (1 if CSV is not None else 0)   # a CSV's header is not a row
        y = np.empty(n, dtype=np.float32)
        idx = np.empty((n, FIELDS), dtype=np.int32)
        val = np.ones((n, FIELDS), dtype=np.float32)
        start = 0
        for rows in chunks(path):
            cols = list(zip(*rows))
            m = len(rows)
            stop = start + m
            y[start:stop] = np.array(cols[0], dtype=np.float32)
            for j in range(CATEGORICAL):
                kept, other = self.values[j], self.other[j]
                idx[start:stop, j] = np.fromiter((kept.get(v, other) for v in cols[1 + NUMERIC + j]), dtype=np.int32, count=m)
            for j in range(NUMERIC):
                raw = np.array([float(c) if c else np.nan for c in cols[1 + j]], dtype=np.float64)
                missing = np.isnan(raw)
                if TRANSFORM == "standardize":
                    x = (raw - self.mean[j]) / self.scale[j]
                else:
                    x = np.sign(raw) * np.log1p(np.abs(raw))
                idx[start:stop, CATEGORICAL + j] = np.where(missing, self.numeric_missing[j], self.numeric_value[j])
                val[start:stop, CATEGORICAL + j] = np.where(missing, 1.0, x)
            start = stop
        if start != n:
            raise SystemExit(f"{path}: {start} rows read, {n} lines counted (empty lines are not rows)")
        if not np.all((y == 0) | (y == 1)):
            raise SystemExit(f"{path}: labels must be 0 or 1")
        return torch.from_numpy(y), torch.from_numpy(idx), torch.from_numpy(val)


def funnel_key(field, data):
    """Funnel's 64-bit key of a (column, value): FNV-1a over the field number's two bytes and the
    value's bytes, then h ^= h >> 29 (FeatureSpec.key)."""
    mask, prime = (1 << 64) - 1, 0x100000001B3
    h = 0xCBF29CE484222325
    for b in (field & 0xFF, field >> 8, *data):
        h = ((h ^ b) * prime) & mask
    return h ^ (h >> 29)


def funnel_features(lines, keys):
    """Funnel's slot and value of each of the 39 fields of each Criteo-layout line, for a model
    whose vocabulary holds `keys` (uint64, in slot order): a categorical value's slot or its
    column's shared slot (vocabulary size + column) when unseen; a number's column slot with
    sign(x)·log(1 + |x|), or the column's `missing` slot with 1. Keys are computed once per
    distinct (column, value). Returns (int64 index tensor, float32 value tensor), rows × 39."""
    position = {int(key): s for s, key in enumerate(keys)}
    n_vocab = len(keys)
    memo = {}

    def slot(field, token):
        found = memo.get((field, token))
        if found is None:
            found = memo[(field, token)] = position.get(funnel_key(field, token.encode()), n_vocab + field)
        return found

    index = np.empty((len(lines), FIELDS), dtype=np.int64)
    value = np.ones((len(lines), FIELDS), dtype=np.float32)
    for r, line in enumerate(lines):
        cells = line.rstrip("\n").split("\t")
        for j, token in enumerate(cells[1 + NUMERIC:]):
            index[r, j] = slot(j, token)
        for j, cell in enumerate(cells[1:1 + NUMERIC]):
            f = CATEGORICAL + j
            if cell == "":
                index[r, f] = slot(f, "missing")
            else:
                x = float(cell)
                index[r, f] = slot(f, "")
                value[r, f] = math.copysign(math.log1p(abs(x)), x)
    return torch.from_numpy(index), torch.from_numpy(value)


def load_funnel_initial(path, model, vocab, args, hidden):
    """Copies the weights of a Funnel model file (`funnel train --initial-out`) into `model`."""
    with open(path) as fh:
        doc = json.load(fh)
    if doc.get("format") != "funnel-ctr-model":
        raise SystemExit(f"{path}: not a Funnel click-model file")
    arch = doc.get("architecture") or {}
    want = {"model": args.model, "factors": args.factors,
            "vocabularyMinCount": args.min_count, "hidden": hidden if arch else [],
            "crossLayers": args.cross_layers if args.model == "dcnv2" else 0, "wide": args.wide}
    got = {"model": doc["model"], "factors": doc.get("factors", 0), "vocabularyMinCount": doc["spec"].get("vocabularyMinCount", 0),
           "hidden": arch.get("hidden", []), "crossLayers": arch.get("crossLayers", 0), "wide": arch.get("wide", False)}
    if want != got:
        raise SystemExit(f"{path}: the model file's settings {got} differ from this run's {want}")
    if doc["spec"].get("numericTransform") != "log" or doc.get("dataFormat") != "criteo":
        raise SystemExit(f"{path}: this peer reads Criteo-layout models with the log numeric transform")
    weights = np.frombuffer(base64.b64decode(doc["weights"]), dtype="<f4")
    keys = np.frombuffer(base64.b64decode(doc["vocabulary"]), dtype="<u8")
    slot_of = {int(k): s for s, k in enumerate(keys)}
    n_vocab = len(keys)
    # Funnel's slot of each of this script's feature indices. Both keep the same (column, value)
    # pairs from the same training file, so a kept pair missing from Funnel's vocabulary means the
    # model file was trained on other data.
    def slot(field, token):
        found = slot_of.get(funnel_key(field, token))
        if found is None:
            raise SystemExit(f"{path}: column {field + 1} value {token!r} is kept here but not in the model file's vocabulary: "
                             "train both on the same file with the same --min-count / --vocabulary-min-count")
        return found
    slots = np.empty(vocab.size, dtype=np.int64)
    for j in range(CATEGORICAL):
        slots[vocab.other[j]] = n_vocab + j
        for value, index in vocab.values[j].items():
            slots[index] = slot(j, value.encode())
    for j in range(NUMERIC):
        f = CATEGORICAL + j
        slots[vocab.numeric_other[j]] = n_vocab + f
        for index, token in ((vocab.numeric_value[j], b""), (vocab.numeric_missing[j], b"missing")):
            if index != vocab.numeric_other[j]:
                slots[index] = slot(f, token)
    if len(keys) != vocab.size - FIELDS:
        raise SystemExit(f"{path}: {len(keys)} vocabulary keys, {vocab.size - FIELDS} kept values here: trained on other data?")
    copy_funnel_weights(model, weights, n_vocab + FIELDS, args.factors, slots, path)


def copy_funnel_weights(model, weights, n_slots, k, order, path):
    """Copies a Funnel model file's weights (file order: w for models with linear weights, the
    bias, V (all but lr), then the dense layers in Funnel's layout: cross layer W[i·D + o], MLP W[i·outputs + o])
    into `model`; this script's feature index i takes Funnel's slot order[i] (`order` None: the
    same index)."""
    pick = (lambda a: a) if order is None else (lambda a: a[order])
    linear = model.has_linear
    nw = n_slots if linear else 0
    off = nw + 1                                      # w (models with linear weights), the bias, then V
    with torch.no_grad():
        if linear:
            model.w.copy_(torch.from_numpy(pick(weights[:n_slots]).copy()).unsqueeze(1))
            model.b.fill_(float(weights[nw]))
        o = off
        if model.kind != "lr":
            v = weights[off:off + n_slots * k].reshape(n_slots, k)
            model.V.copy_(torch.from_numpy(pick(v).copy()))
            o += n_slots * k
        width = FIELDS * k
        for l in range(len(model.C)):
            model.C[l].copy_(torch.from_numpy(weights[o:o + width * width].reshape(width, width).copy()))
            model.d[l].copy_(torch.from_numpy(weights[o + width * width:o + width * width + width].copy()))
            o += width * width + width
        for layer in model.mlp:
            outputs, inputs = layer.weight.shape
            layer.weight.copy_(torch.from_numpy(weights[o:o + inputs * outputs].reshape(inputs, outputs).T.copy()))
            layer.bias.copy_(torch.from_numpy(weights[o + inputs * outputs:o + inputs * outputs + outputs].copy()))
            o += inputs * outputs + outputs
    if o != len(weights):
        raise SystemExit(f"{path}: {len(weights)} weights, expected {o} for this model")


def uniform_layer(inputs, outputs):
    """A dense layer inputs → outputs with weight and bias ~ U(−1/√inputs, 1/√inputs)."""
    layer = nn.Linear(inputs, outputs)
    bound = 1 / inputs ** 0.5
    nn.init.uniform_(layer.weight, -bound, bound)
    nn.init.uniform_(layer.bias, -bound, bound)
    return layer


class Peer(nn.Module):
    def __init__(self, kind, features, factors, hidden, cross_layers, sparse=False, wide=False, dropout=0.0):
        super().__init__()
        self.kind = kind
        self.sparse = sparse
        self.dropout = dropout
        self.has_linear = kind in ("lr", "fm", "deepfm") or (kind == "dcnv2" and wide)
        self.has_fm = kind in ("fm", "deepfm")
        self.has_mlp = kind in ("deepfm", "dcnv2")
        self.cross_layers = cross_layers if kind == "dcnv2" else 0
        width = FIELDS * factors
        if self.has_linear:
            self.b = nn.Parameter(torch.zeros(1))
            self.w = nn.Parameter(torch.zeros(features, 1))
        if kind != "lr":
            self.V = nn.Parameter(0.01 * torch.randn(features, factors))
        bound = 1 / width ** 0.5
        self.C = nn.ParameterList([nn.Parameter(torch.empty(width, width).uniform_(-bound, bound)) for _ in range(self.cross_layers)])
        self.d = nn.ParameterList([nn.Parameter(torch.empty(width).uniform_(-bound, bound)) for _ in range(self.cross_layers)])
        layers = []
        if self.has_mlp:
            inputs = width
            for h in hidden:
                layers.append(uniform_layer(inputs, h))
                inputs = h
            layers.append(uniform_layer(inputs, 1))
        self.mlp = nn.ModuleList(layers)

    def forward(self, i, x):
        z = torch.zeros(i.shape[0])
        if self.has_linear:
            z = self.b + (F.embedding(i, self.w, sparse=self.sparse).squeeze(2) * x).sum(1)
        if self.kind == "lr":
            return z
        e = F.embedding(i, self.V, sparse=self.sparse) * x.unsqueeze(2)                     # rows × fields × K
        if self.has_fm:
            z = z + 0.5 * (e.sum(1).pow(2) - e.pow(2).sum(1)).sum(1)
        if self.has_mlp:
            x0 = e.reshape(e.shape[0], -1)                               # rows × D, field-major
            h = x0
            for C, d in zip(self.C, self.d):
                h = x0 * torch.addmm(d, h, C) + h
            for m, layer in enumerate(self.mlp):
                h = layer(h)
                if m + 1 < len(self.mlp):
                    h = torch.relu(h)
                    if self.dropout > 0:                                 # inverted dropout, training only
                        h = F.dropout(h, self.dropout, training=self.training)
            z = z + h.squeeze(1)
        return z

    @torch.no_grad()
    def init_bias(self, logit):
        """Puts the model's output bias at `logit` (--bias-init): b where the model has one, else
        (dcnv2 without --wide) the last MLP layer's bias."""
        if self.has_linear:
            self.b.fill_(logit)
        elif self.has_mlp:
            self.mlp[-1].bias.fill_(logit)

    def embedding_penalty(self, indices, linear=True):
        """½ Σ over the distinct feature indices named in `indices` of ‖V_i‖² (+ w_i² when `linear`
        and the model has linear weights): its gradient is p_i on exactly those rows of V and w,
        sparse when the model's embeddings are, and nothing on the other rows or on b."""
        named = torch.unique(indices)
        total = torch.zeros(())
        if self.kind != "lr":
            total = total + F.embedding(named, self.V, sparse=self.sparse).pow(2).sum()
        if linear and self.has_linear:
            total = total + F.embedding(named, self.w, sparse=self.sparse).pow(2).sum()
        return 0.5 * total

    def reference_logits(self, i, x):
        """The model's formulas transcribed row by row in float64 NumPy (for the self-check)."""
        p = {name: t.detach().double().numpy() for name, t in self.named_parameters()}
        out = []
        for r in range(i.shape[0]):
            idx, val = i[r].numpy(), x[r].double().numpy()
            z = 0.0
            if self.has_linear:
                z = p["b"][0] + sum(p["w"][idx[f], 0] * val[f] for f in range(FIELDS))
            if self.kind != "lr":
                e = [p["V"][idx[f]] * val[f] for f in range(FIELDS)]
                if self.has_fm:
                    z += sum(float(e[f] @ e[g]) for f in range(FIELDS) for g in range(f + 1, FIELDS))
                if self.has_mlp:
                    x0 = np.concatenate(e)
                    h = x0
                    for l in range(self.cross_layers):
                        h = x0 * (h @ p[f"C.{l}"] + p[f"d.{l}"]) + h
                    for m in range(len(self.mlp)):
                        h = h @ p[f"mlp.{m}.weight"].T + p[f"mlp.{m}.bias"]   # nn.Linear stores outputs × inputs
                        if m + 1 < len(self.mlp):
                            h = np.maximum(h, 0)
                    z += h[0]
            out.append(z)
        return np.array(out)


class LinearFTRL:
    """FTRL-Proximal on the rows of w a batch touched (see --linear-ftrl above), in float32."""

    def __init__(self, w, alpha, beta, l1, l2):
        self.w, self.alpha, self.beta, self.l1, self.l2 = w, alpha, beta, l1, l2
        self.z = torch.zeros_like(w.data)
        self.n = torch.zeros_like(w.data)

    def zero_grad(self):
        self.w.grad = None

    @torch.no_grad()
    def step(self, batch_indices, rows):
        grad = self.w.grad
        if grad.is_sparse:                       # a sparse gradient lists exactly the touched rows
            grad = grad.coalesce()
            touched, g = grad.indices()[0], grad.values() * rows
        else:
            touched = torch.unique(batch_indices)
            g = grad[touched] * rows
        n_old = self.n[touched]
        n_new = n_old + g * g
        sigma = (n_new.sqrt() - n_old.sqrt()) / self.alpha
        z = self.z[touched] + g - sigma * self.w.data[touched]
        self.z[touched] = z
        self.n[touched] = n_new
        w = -(z - torch.sign(z) * self.l1) / ((self.beta + n_new.sqrt()) / self.alpha + self.l2)
        self.w.data[touched] = torch.where(z.abs() <= self.l1, torch.zeros_like(w), w)


def build_parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="bench/data/criteo", help="directory with train.txt and test.txt (CSV mode: train.csv and test.csv)")
    ap.add_argument("--model", choices=["lr", "fm", "deepfm", "dcnv2"], default="fm")
    ap.add_argument("--factors", type=int, default=4, help="embedding size K")
    ap.add_argument("--hidden", default="256,128", help="deepfm, dcnv2: comma-separated MLP hidden widths")
    ap.add_argument("--cross-layers", type=int, default=2, help="dcnv2: cross layers")
    ap.add_argument("--min-count", type=int, default=1, help="categorical values seen fewer times in training share the column's 'other' feature")
    ap.add_argument("--epochs", type=int, help="fixed count of passes over the training split when --max-epochs is not given (default 2)")
    ap.add_argument("--max-epochs", type=int,
                    help="early stopping: at most this many epochs, stopping after --patience epochs without a lower validation log loss; "
                         "the best epoch's weights are restored before the test evaluation")
    ap.add_argument("--patience", type=int, default=2, help="--max-epochs: epochs without a strictly lower validation log loss before stopping")
    ap.add_argument("--valid-file", help="validation split, evaluated after every epoch (default with --max-epochs: DATA/valid.txt, "
                                         "CSV mode DATA/valid.csv, when it exists)")
    ap.add_argument("--optimizer", choices=["adam", "adagrad"], help="default: adagrad for lr and fm, adam for deepfm and dcnv2")
    ap.add_argument("--lr", type=float, help="learning rate (default: 0.05 for lr and fm, 0.001 for deepfm and dcnv2)")
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--embedding-l2", type=float, default=0.0,
                    help="λe: L2 on the embedding rows (and linear weights, unless --linear-ftrl) each batch names, as (λe/2)·Σ‖p‖² added to the batch's mean log loss")
    ap.add_argument("--dense-l2", type=float, default=0.0,
                    help="λd: L2 on the cross and MLP layers' weights and biases (the optimiser's weight_decay), every step")
    ap.add_argument("--embedding-decay", type=float, default=0.0,
                    help="δ: after every step, every row of V and w (not w under --linear-ftrl), named by the batch or not, "
                         "is multiplied by 1 − lr·δ; the bias and dense layers are not")
    ap.add_argument("--dropout", type=float, default=0.0, help="deepfm, dcnv2: inverted dropout rate after each hidden ReLU of the MLP, in training only")
    ap.add_argument("--bias-init", choices=["zero", "ctr"], default="ctr",
                    help="ctr: the bias (dcnv2 without --wide: the last MLP layer's bias) starts at the log-odds of the training click rate")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--wide", action="store_true", help="dcnv2: add per-slot linear weights w and a bias b to the logit (Funnel's --wide)")
    ap.add_argument("--linear-ftrl", action="store_true", help="fm, deepfm, dcnv2 --wide: FTRL-Proximal for the linear weights w")
    ap.add_argument("--alpha", type=float, default=0.05, help="--linear-ftrl: FTRL α")
    ap.add_argument("--beta", type=float, default=1.0, help="--linear-ftrl: FTRL β")
    ap.add_argument("--l1", type=float, default=1.0, help="--linear-ftrl: FTRL λ1")
    ap.add_argument("--l2", type=float, default=1.0, help="--linear-ftrl: FTRL λ2")
    ap.add_argument("--predictions-out", help="write the test split's probabilities here, one per line after a header line")
    ap.add_argument("--init-from", help="start from the weights of a Funnel model file written by funnel train --initial-out")
    ap.add_argument("--table-weight-decay", type=float, default=0.0,
                    help="dense Adam only: weight_decay on the whole tables w and V every step (every row, named or not: "
                         "Adam(weight_decay=λ) as a PyTorch user writes it)")
    ap.add_argument("--sparse", action="store_true",
                    help="sparse embedding gradients: SparseAdam (or sparse Adagrad) for w and V, Adam for the dense layers")
    ap.add_argument("--flush-denormal", action="store_true",
                    help="torch.set_flush_denormal(True): subnormal floats flushed to zero (Funnel's Adam sets its tiny first moments to zero)")
    ap.add_argument("--csv-label", default="click", help="CSV mode: the label column")
    ap.add_argument("--csv-numeric", default="", help="CSV mode: comma-separated numeric columns (as funnel train --numeric)")
    ap.add_argument("--csv-categorical", default="", help="CSV mode: comma-separated categorical columns (as funnel train --categorical)")
    ap.add_argument("--numeric-transform", choices=["log", "standardize"], default="log",
                    help="numeric values: sign(x)·log(1 + |x|), or (x − training mean)/training deviation (funnel train --numeric-transform)")
    return ap


def parse_args(argv=None):
    """The command line `argv` (default sys.argv[1:]) parsed and checked, with the derived settings
    added (split, valid_file, hidden_widths, optimizer, lr, epochs); sets the module's layout
    (Criteo or CSV columns) as a side effect. A bad combination exits through argparse."""
    global CSV, NUMERIC, CATEGORICAL, FIELDS, TRANSFORM
    ap = build_parser()
    args = ap.parse_args(argv)
    TRANSFORM = args.numeric_transform
    split = "train.txt", "valid.txt", "test.txt"
    CSV, NUMERIC, CATEGORICAL = None, 13, 26
    if args.csv_numeric or args.csv_categorical:
        numeric = [c for c in args.csv_numeric.split(",") if c]
        categorical = [c for c in args.csv_categorical.split(",") if c]
        CSV = (args.csv_label, numeric, categorical)
        NUMERIC, CATEGORICAL = len(numeric), len(categorical)
        split = "train.csv", "valid.csv", "test.csv"
        if args.init_from:
            ap.error("--init-from reads the Criteo layout's keys; CSV mode does not support it")
    FIELDS = NUMERIC + CATEGORICAL
    args.split = split
    deep = args.model in ("deepfm", "dcnv2")
    hidden = [int(h) for h in args.hidden.split(",") if h.strip()] if deep else []
    if deep and (not hidden or min(hidden) < 1):
        ap.error("--hidden must be comma-separated positive widths")
    args.hidden_widths = hidden
    if args.epochs is not None and args.max_epochs is not None:
        ap.error("--epochs (a fixed count) and --max-epochs (early stopping) exclude each other")
    if args.epochs is None:
        args.epochs = 2
    if args.min_count < 1 or args.factors < 1 or args.batch_size < 1 or args.epochs < 1 or args.cross_layers < 0:
        ap.error("--min-count, --factors, --batch-size and --epochs must be >= 1 and --cross-layers >= 0")
    if (args.max_epochs is not None and args.max_epochs < 1) or args.patience < 1:
        ap.error("--max-epochs and --patience must be >= 1")
    if args.valid_file is None and args.max_epochs is not None and os.path.exists(f"{args.data}/{split[1]}"):
        args.valid_file = f"{args.data}/{split[1]}"
    if args.max_epochs is not None and args.valid_file is None:
        ap.error(f"--max-epochs stops on the validation log loss: pass --valid-file (no {args.data}/{split[1]})")
    if not (args.embedding_l2 >= 0 and args.dense_l2 >= 0):
        ap.error("--embedding-l2 and --dense-l2 must be >= 0")
    if not 0 <= args.dropout < 1:
        ap.error("--dropout must be in [0, 1)")
    if args.dropout > 0 and not deep:
        ap.error("--dropout applies to the MLP of deepfm and dcnv2")
    if args.dense_l2 > 0 and not deep:
        ap.error("--dense-l2 applies to the dense layers of deepfm and dcnv2")
    if args.wide and args.model != "dcnv2":
        ap.error("--wide applies to dcnv2")
    if args.init_from and args.model == "lr":
        ap.error("--init-from applies to fm, deepfm and dcnv2 (lr starts at zero on both sides)")
    if args.linear_ftrl and not (args.model in ("fm", "deepfm") or args.wide):
        ap.error("--linear-ftrl applies to fm, deepfm and dcnv2 --wide")
    args.optimizer = args.optimizer or ("adam" if deep else "adagrad")
    args.lr = args.lr if args.lr is not None else (0.001 if deep else 0.05)
    if not (args.embedding_decay >= 0 and args.lr * args.embedding_decay < 1):
        ap.error("--embedding-decay must be >= 0 with --lr × --embedding-decay below 1")
    if args.flush_denormal and not torch.set_flush_denormal(True):
        ap.error("--flush-denormal: this processor does not support flushing subnormal floats")
    return args


def load_data(args):
    """The vocabulary and the encoded splits of `args` (as parse_args returned it): a dict with
    vocab, train, valid (None without a validation file), test (each (labels, indices, values))
    and load_s. Depends only on --data, --valid-file, --min-count and the CSV options, so one load
    serves every training that shares them."""
    t0 = time.perf_counter()
    vocab = Vocabulary(f"{args.data}/{args.split[0]}", args.min_count)
    data = {"vocab": vocab, "train": vocab.encode(f"{args.data}/{args.split[0]}"),
            "valid": vocab.encode(args.valid_file) if args.valid_file else None,
            "test": vocab.encode(f"{args.data}/{args.split[2]}")}
    data["load_s"] = time.perf_counter() - t0
    return data


class Optimisers:
    """The torch optimisers (and the FTRL of w) of one model, stepped together. Parameter groups:
    the tables w and V and the bias b never get weight decay; the dense layers (cross layers' C and
    d, MLP weights and biases) get weight_decay = --dense-l2, i.e. g + λd·p, every step. With
    --embedding-decay δ, after all of them have stepped, every row of V and w (w only when it is
    not FTRL's) is multiplied by 1 − lr·δ."""

    def __init__(self, model, args):
        own = ("w",) if args.linear_ftrl else ()              # parameters not left to the torch optimisers
        params = [(n, p) for n, p in model.named_parameters() if n not in own]
        tables = [p for n, p in params if n in ("w", "V")]
        bias = [p for n, p in params if n == "b"]
        dense = [p for n, p in params if n not in ("w", "V", "b")]

        def groups(*pairs):
            return [{"params": ps, "weight_decay": wd} for ps, wd in pairs if ps]
        lr = args.lr
        if args.sparse and args.optimizer == "adam":
            self.opts = [torch.optim.SparseAdam(tables, lr=lr, betas=(0.9, 0.999), eps=1e-8)] if tables else []
            if bias or dense:
                self.opts.append(torch.optim.Adam(groups((bias, 0.0), (dense, args.dense_l2)), lr=lr, betas=(0.9, 0.999), eps=1e-8))
        elif args.optimizer == "adam":
            self.opts = [torch.optim.Adam(groups((tables, args.table_weight_decay), (bias, 0.0), (dense, args.dense_l2)), lr=lr,
                                          betas=(0.9, 0.999), eps=1e-8)]
        else:
            self.opts = [torch.optim.Adagrad(groups((tables + bias, 0.0), (dense, args.dense_l2)), lr=lr, eps=1e-10)]
        if args.linear_ftrl:
            self.opts.append(LinearFTRL(model.w, args.alpha, args.beta, args.l1, args.l2))
        # --embedding-decay: the tables scaled after each step (every row; w only when not FTRL's).
        self.keep = 1.0 - lr * args.embedding_decay
        self.decayed = tables if args.embedding_decay > 0 else []

    def zero_grad(self):
        for o in self.opts:
            o.zero_grad()

    def step(self, batch_indices, rows):
        for o in self.opts:
            if isinstance(o, LinearFTRL):
                o.step(batch_indices, rows)
            else:
                o.step()
        if self.decayed:
            with torch.no_grad():
                for p in self.decayed:
                    p.mul_(self.keep)


def batch_objective(model, i, x, y, embedding_l2=0.0, linear_l2=True):
    """(the batch's mean log loss, the objective to differentiate): the loss plus
    (λe/2)·Σ ‖V_i‖² (+ w_i² when `linear_l2`) over the distinct indices the batch names."""
    loss = F.binary_cross_entropy_with_logits(model(i, x), y)
    if embedding_l2 > 0:
        return loss, loss + embedding_l2 * model.embedding_penalty(i, linear=linear_l2)
    return loss, loss


def train_epoch(model, opt, train, args):
    """One pass over `train` in file order; returns the mean (data) log loss of its batches."""
    y, ix, vx = train
    model.train()
    total = 0.0
    for s in range(0, len(y), args.batch_size):
        e = min(s + args.batch_size, len(y))
        opt.zero_grad()
        loss, objective = batch_objective(model, ix[s:e], vx[s:e], y[s:e], args.embedding_l2, not args.linear_ftrl)
        objective.backward()
        opt.step(ix[s:e], e - s)
        total += loss.item() * (e - s)
    return total / len(y)


@torch.no_grad()
def predict_logits(model, i, x, block=4096):
    """The model's logits (evaluation mode: no dropout) over (i, x), in batches of `block` rows."""
    model.eval()
    return torch.cat([model(i[s:s + block], x[s:s + block]) for s in range(0, len(i), block)])


def metrics(y, z):
    """(probabilities, log loss, AUC) of logits z against labels y."""
    p = torch.sigmoid(z.double()).numpy()
    yt = y.double().numpy()
    pc = np.clip(p, 1e-15, 1 - 1e-15)
    ll = float(-np.mean(yt * np.log(pc) + (1 - yt) * np.log(1 - pc)))
    return p, ll, float(auc(yt, p))


def fit(args, data):
    """Builds the model `args` describes and trains it on `data` (load_data's), validating after
    each epoch when there is a validation split and, with --max-epochs, stopping early and
    restoring the best epoch's weights. Returns (model, the training record for the JSON line)."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    vocab = data["vocab"]
    y = data["train"][0]
    valid = data["valid"]
    hidden = args.hidden_widths
    if args.max_epochs is not None and valid is None:
        raise SystemExit("--max-epochs: the data were loaded without a validation split")

    model = Peer(args.model, vocab.size, args.factors, hidden, args.cross_layers, sparse=args.sparse, wide=args.wide, dropout=args.dropout)
    click_rate = float(y.double().mean())
    if args.init_from:
        load_funnel_initial(args.init_from, model, vocab, args, hidden)
    else:
        c = min(max(click_rate, 1e-6), 1 - 1e-6)
        if args.bias_init == "ctr":
            model.init_bias(math.log(c / (1 - c)))
    opt = Optimisers(model, args)

    early = args.max_epochs is not None
    epochs = args.max_epochs if early else args.epochs
    train_losses, valid_losses, valid_aucs = [], [], []
    best_epoch, best_state = None, None
    train_s = valid_s = 0.0
    for epoch in range(1, epochs + 1):
        t1 = time.perf_counter()
        train_losses.append(train_epoch(model, opt, data["train"], args))
        train_s += time.perf_counter() - t1
        if valid is None:
            continue
        t1 = time.perf_counter()
        _, vll, vauc = metrics(valid[0], predict_logits(model, valid[1], valid[2]))
        valid_s += time.perf_counter() - t1
        valid_losses.append(vll)
        valid_aucs.append(vauc)
        if best_epoch is None or vll < valid_losses[best_epoch - 1]:   # strictly lower
            best_epoch = epoch
            if early:
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if early and epoch - best_epoch >= args.patience:
            break
    epochs_run = len(train_losses)
    kept = best_epoch if early else epochs_run             # the epoch whose weights are tested
    if best_state is not None:
        model.load_state_dict(best_state)
    return model, {
        "epochs": epochs, "max_epochs": args.max_epochs, "patience": args.patience if early else None,
        "epochs_run": epochs_run, "best_epoch": best_epoch,
        "bias_init": "file" if args.init_from else args.bias_init, "train_click_rate": click_rate,
        "valid_file": args.valid_file, "valid_rows": len(valid[0]) if valid is not None else 0,
        "train_logloss": train_losses[kept - 1],
        "valid_logloss": valid_losses[kept - 1] if valid is not None else None,
        "valid_auc": valid_aucs[kept - 1] if valid is not None else None,
        "train_logloss_per_epoch": train_losses, "valid_logloss_per_epoch": valid_losses, "valid_auc_per_epoch": valid_aucs,
        "train_s": train_s, "train_rows_per_s": len(y) * epochs_run / train_s, "valid_s": valid_s}


def train_and_evaluate(args, data):
    """Trains the model `args` describes on `data` (load_data's, see fit) and evaluates it on the
    test split: the result dict that main prints as one JSON line."""
    return evaluate(args, data, *fit(args, data))


def evaluate(args, data, model, record):
    """The test evaluation and self-check of `model` (as fit trained it, with its `record`): the
    result dict that main prints as one JSON line."""
    vocab = data["vocab"]
    y = data["train"][0]
    ty, tix, tvx = data["test"]
    hidden = args.hidden_widths
    block = 4096
    with torch.no_grad():
        model.eval()
        model(tix[:block], tvx[:block])                                  # warm-up
        t2 = time.perf_counter()
        z = predict_logits(model, tix, tvx, block)
        predict_s = time.perf_counter() - t2
    p, ll, test_auc = metrics(ty, z)
    if args.predictions_out:
        np.savetxt(args.predictions_out, p, fmt="%.9g", header="probability", comments="")

    rows = min(8, len(ty))
    check = float(np.max(np.abs(model.reference_logits(tix[:rows], tvx[:rows]) - z[:rows].double().numpy())))
    return {
        "model": args.model, "factors": args.factors if args.model != "lr" else 0, "hidden": hidden,
        "cross_layers": args.cross_layers if args.model == "dcnv2" else 0, "min_count": args.min_count,
        "seed": args.seed, "optimizer": args.optimizer, "lr": args.lr, "batch_size": args.batch_size,
        "embedding_l2": args.embedding_l2, "embedding_decay": args.embedding_decay, "dense_l2": args.dense_l2, "dropout": args.dropout,
        "features": vocab.size, "rare_values": vocab.rare, "train_rows": len(y), "test_rows": len(ty),
        **record, "test_auc": test_auc, "test_logloss": ll, "load_s": data["load_s"],
        "predict_s": predict_s, "predict_rows_per_s": len(ty) / predict_s,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(), "sparse": args.sparse, "wide": args.wide, "linear_ftrl": args.linear_ftrl,
        "init_from": args.init_from, "self_check_max_abs_diff": check, "torch": torch.__version__}


def main(argv=None):
    args = parse_args(argv)
    result = train_and_evaluate(args, load_data(args))
    print(json.dumps(result))
    check = result["self_check_max_abs_diff"]
    if not check <= 1e-4:
        print(f"self-check failed: batched logits differ from the reference formulas by {check:g}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
