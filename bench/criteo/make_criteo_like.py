#!/usr/bin/env python3
"""Seeded generator of click logs in the Criteo text layout, with known click probabilities.

Each row: label, 13 integer fields (I1..I13, some empty), 26 categorical fields (C1..C26, hashed
8-hex-digit tokens, some empty), tab-separated. Categorical vocabularies are Zipf-distributed with
sizes from 10 to 100,000. The log-odds of a click are

    bias + Σ_f w_f[value_f] + Σ_j u_j · log1p(I_j) + Σ_(f,g) in P  <v_f[value_f], v_g[value_g]>

with per-value weights w, per-field slopes u and rank-4 interaction vectors v for 12 field pairs P:
the pairwise terms are what a factorization machine can learn and a linear model cannot. The bias
is set so that the click-through rate is about 4 %.

Writes <out>/train.txt, valid.txt, test.txt and test_probabilities.txt (the true probability of each
test row) and prints the Bayes-optimal AUC and log loss of the test split.

    python bench/criteo/make_criteo_like.py --rows 1200000 --out bench/data/criteo --seed 1
"""
import argparse
import os

import numpy as np

NUMERIC, CATEGORICAL, RANK = 13, 26, 4


def auc(labels, scores):
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j + 1 < len(s) and s[j + 1] == s[i]:
            j += 1
        ranks[i:j + 1] = (i + j) / 2 + 1
        i = j + 1
    y = labels[order]
    pos = y.sum()
    neg = len(y) - pos
    return (ranks[y == 1].sum() - pos * (pos + 1) / 2) / (pos * neg)


def parse_arguments(rows, out, seed, ctr):
    """The options both generators in this folder take (--rows, --out, --seed, --ctr), with the
    given defaults."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=rows, help="total rows (train 5/6, valid and test 1/12 each)")
    ap.add_argument("--out", default=out)
    ap.add_argument("--seed", type=int, default=seed)
    ap.add_argument("--ctr", type=float, default=ctr)
    return ap.parse_args()


def main():
    args = parse_arguments(rows=1_200_000, out="bench/data/criteo", seed=1, ctr=0.04)
    rng = np.random.default_rng(args.seed)

    sizes = np.unique(np.geomspace(10, 100_000, CATEGORICAL).astype(int))
    sizes = np.resize(sizes, CATEGORICAL)
    rng.shuffle(sizes)
    # Model parameters (the "truth").
    w = [rng.normal(0, 0.2, size=s) for s in sizes]
    v = [rng.normal(0, 0.3, size=(s, RANK)) for s in sizes]
    u = rng.normal(0, 0.15, size=NUMERIC)
    pairs = set()
    while len(pairs) < 12:
        f, g = sorted(rng.choice(CATEGORICAL, size=2, replace=False))
        pairs.add((int(f), int(g)))
    pairs = sorted(pairs)
    tokens = [rng.integers(0, 2**32, size=s, dtype=np.uint64) for s in sizes]

    n = args.rows
    # Zipf-like draws: value k with probability ∝ 1/(k+1)^1.1, k < size.
    cats = np.empty((n, CATEGORICAL), dtype=np.int64)
    for f, s in enumerate(sizes):
        p = 1.0 / np.arange(1, s + 1) ** 1.1
        p /= p.sum()
        cats[:, f] = rng.choice(s, size=n, p=p)
    nums = rng.negative_binomial(1, 0.05, size=(n, NUMERIC)).astype(np.int64)
    logit = np.zeros(n)
    for f in range(CATEGORICAL):
        logit += w[f][cats[:, f]]
    logit += (np.log1p(nums) * u).sum(axis=1)
    for f, g in pairs:
        logit += (v[f][cats[:, f]] * v[g][cats[:, g]]).sum(axis=1)
    # Missing cells: 3 % of numeric and 2 % of categorical values are written empty.
    write_splits(rng, logit, nums, cats, tokens, args.ctr, args.out, num_missing=0.03, cat_missing=0.02, bound=20.0)


def write_splits(rng, logit, nums, cats, tokens, ctr, out, num_missing, cat_missing, bound):
    """From the true log-odds without bias (one per row): sets the bias by bisection in
    [-bound, bound] so that the mean probability is `ctr`, draws the labels, blanks the given
    shares of numeric and categorical cells, writes <out>/train.txt, valid.txt, test.txt (5/6,
    1/12, 1/12 of the rows) and test_probabilities.txt, and prints the Bayes-optimal AUC and log
    loss of the test split. Shared by the generators in this folder."""
    n = len(logit)
    lo, hi = -bound, bound
    for _ in range(60):
        mid = (lo + hi) / 2
        if (1 / (1 + np.exp(-(logit + mid)))).mean() > ctr:
            hi = mid
        else:
            lo = mid
    prob = 1 / (1 + np.exp(-(logit + (lo + hi) / 2)))
    labels = (rng.random(n) < prob).astype(np.int64)
    num_blank = rng.random((n, NUMERIC)) < num_missing
    cat_blank = rng.random((n, CATEGORICAL)) < cat_missing

    os.makedirs(out, exist_ok=True)
    n_train = n * 5 // 6
    n_valid = (n - n_train) // 2
    splits = {"train": (0, n_train), "valid": (n_train, n_train + n_valid), "test": (n_train + n_valid, n)}
    for name, (a, b) in splits.items():
        with open(os.path.join(out, f"{name}.txt"), "w") as fh:
            for r in range(a, b):
                cells = [str(labels[r])]
                cells += ["" if num_blank[r, j] else str(nums[r, j]) for j in range(NUMERIC)]
                cells += ["" if cat_blank[r, f] else format(int(tokens[f][cats[r, f]]), "08x")[:8] for f in range(CATEGORICAL)]
                fh.write("\t".join(cells) + "\n")
    a, b = splits["test"]
    with open(os.path.join(out, "test_probabilities.txt"), "w") as fh:
        for r in range(a, b):
            fh.write(repr(float(prob[r])) + "\n")
    y, p = labels[a:b], prob[a:b]
    ll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    print(f"rows {n} (train {n_train}, valid {n_valid}, test {b - a}); CTR {labels.mean():.4f}")
    print(f"Bayes-optimal on test (true probabilities): AUC {auc(y, p):.4f}, log loss {ll:.5f}")
    print("note: missing cells are written empty, but the true probabilities use the hidden values")


if __name__ == "__main__":
    main()
