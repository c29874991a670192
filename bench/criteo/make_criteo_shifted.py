#!/usr/bin/env python3
"""A second seeded generator of click logs in the Criteo text layout, built differently from
make_criteo_like.py so that the click models are not checked only on the structure they were
tuned on. Same layout (label, I1..I13, C1..C26, tab-separated, some cells empty), different truth:

    bias + Σ_f w_f[value_f]                       heavy-tailed (Laplace) main effects
         + Σ_j s_j · [I_j > t_j]                  step functions of the integers, not log-linear
         + Σ_(f,g,h) in T  z[hash(b_f, b_g, b_h)] three-way interactions of value buckets
         + Σ_(f,j) in M    a_f[value_f] · log1p(I_j)  categorical-by-numeric interactions

Vocabulary sizes from 5 to 100,000 with Zipf exponents between 0.9 and 1.4 per field; integers from
a mixture of a geometric and a log-normal; 6 field triples T, each bucket b = value mod 64 (so
the rare tail shares buckets with the head); 4 (categorical, numeric) pairs M. The bias is set by
bisection so that the click-through rate is about 3 %.

Writes <out>/train.txt, valid.txt, test.txt and test_probabilities.txt, and prints the
Bayes-optimal AUC and log loss of the test split.

    python bench/criteo/make_criteo_shifted.py --rows 600000 --out bench/data/criteo-shifted --seed 7
"""
import numpy as np

from make_criteo_like import CATEGORICAL, NUMERIC, parse_arguments, write_splits


def main():
    args = parse_arguments(rows=600_000, out="bench/data/criteo-shifted", seed=7, ctr=0.03)
    rng = np.random.default_rng(args.seed)

    sizes = np.exp(rng.uniform(np.log(5), np.log(100_000), size=CATEGORICAL)).astype(int)
    exponents = rng.uniform(0.9, 1.4, size=CATEGORICAL)
    w = [rng.laplace(0, 0.15, size=s) for s in sizes]
    steps = rng.normal(0, 0.3, size=NUMERIC)
    triples = [tuple(sorted(int(x) for x in rng.choice(CATEGORICAL, size=3, replace=False))) for _ in range(6)]
    z = [rng.normal(0, 0.6, size=64 ** 3) for _ in triples]
    mixed = [(int(rng.integers(CATEGORICAL)), int(rng.integers(NUMERIC))) for _ in range(4)]
    a = [rng.normal(0, 0.25, size=sizes[f]) for f, _ in mixed]
    tokens = [rng.integers(0, 2**32, size=s, dtype=np.uint64) for s in sizes]

    n = args.rows
    cats = np.empty((n, CATEGORICAL), dtype=np.int64)
    for f, s in enumerate(sizes):
        p = 1.0 / np.arange(1, s + 1) ** exponents[f]
        p /= p.sum()
        cats[:, f] = rng.choice(s, size=n, p=p)
    geometric = rng.geometric(0.2, size=(n, NUMERIC)) - 1
    lognormal = np.floor(rng.lognormal(2.0, 1.2, size=(n, NUMERIC)))
    nums = np.where(rng.random((n, NUMERIC)) < 0.5, geometric, lognormal).astype(np.int64)
    thresholds = np.median(nums, axis=0)

    logit = np.zeros(n)
    for f in range(CATEGORICAL):
        logit += w[f][cats[:, f]]
    logit += ((nums > thresholds) * steps).sum(axis=1)
    for (f, g, h), table in zip(triples, z):
        logit += table[(cats[:, f] % 64) * 4096 + (cats[:, g] % 64) * 64 + cats[:, h] % 64]
    for (f, j), slope in zip(mixed, a):
        logit += slope[cats[:, f]] * np.log1p(nums[:, j])
    write_splits(rng, logit, nums, cats, tokens, args.ctr, args.out, num_missing=0.05, cat_missing=0.01, bound=30.0)


if __name__ == "__main__":
    main()
