#!/usr/bin/env python3
"""Seeded generator of click logs in the Criteo text layout with long-tailed vocabularies and
interactions of order 2 and 3, with known click probabilities.

Each row: label, 13 integer fields (I1..I13, some empty), 26 categorical fields (C1..C26, hashed
8-hex-digit tokens, some empty), tab-separated, 40 columns. Unlike make_criteo_like.py an empty
cell is part of the truth, not a hidden value: the click probability depends only on what the row
shows, so the Bayes-optimal figures below are reachable in principle.

Truth. For a row with categorical values c_1..c_26 (c_f = ∅ when C_f is empty) and integers
x_j = log1p(I_j), the log-odds of a click are

    b + Σ_f w_f[c_f]                                         main effects, one per value and ∅
      + Σ_j (u_j · x_j  if I_j is present, else m_j)           numeric slopes, one effect for ∅
      + Σ_(f,g) in P   Σ_k v_fk[c_f] · v_gk[c_g]               pairwise, rank R2 = 4
      + Σ_(f,g,h) in T Σ_k p_tk[c_f] · q_tk[c_g] · r_tk[c_h]   three-way, rank R3 = 2

- Vocabularies: field sizes 10^(1 + 4·√(i/25)), i = 0..25 (10 to 100,000, most of them large),
  shuffled over C1..C26; value k (k = 1..size) has probability ∝ k^-a_f with a_f ~ U(1.1, 1.5).
  Each value's token is a distinct random 32-bit number written as 8 hex digits.
- Empty cells: each field has its own missing rate; categorical U(0, 5 %) with 6 fields at
  U(20, 45 %), integer U(0, 10 %) with 4 fields at U(20, 50 %); independent of everything else.
- Integers: per field either negative binomial (shape U(0.5, 3), mean 10^U(0.3, 2.3)) or
  floor(lognormal(μ U(0, 4), σ U(0.8, 1.8))), half of the fields each.
- Main effects: w_f[value] i.i.d. normal for every value of the vocabulary, the rarest included, so
  a value seen once or twice in training has a real effect that one or two labels cannot pin down
  (memorising it overfits, ignoring it loses signal); w_f[∅] is drawn the same way. Each field's
  w_f is scaled so that its variance under the field's value distribution is its share
  (Dirichlet(2, …, 2)) of V_main = 0.45.
- Numeric slopes: u_j = ±1/sd(x_j) and m_j = u_j · mean(x_j) + N(0, 1), both then scaled so that
  field j's term has variance s_j · V_num (shares s_j ~ Dirichlet(2, …, 2), V_num = 0.15) in a
  200,000-row sample of the integers and their empty cells.
- Pairwise: |P| = 8 distinct field pairs, each with one field drawn among those with at most
  2,000 values and the other among all fields; one rank-4 vector per value per field
  (shared by every pair the field is in, the factorization-machine structure), drawn N(0, 1),
  centred by the field's value distribution (so a pair adds nothing a linear model can take
  up as main effects) and normalised to a common mean square; the vector of ∅ is 0. One common
  scale sets the summed variance of the pair terms to V_pair = 1.1.
- Three-way: |T| = 4 distinct field triples, drawn among the fields with at most 1,000 values (so
  that 1 M rows can show them); rank-2 vectors per triple, drawn and centred as above (so a triple
  has no pairwise or main-effect part: a factorization machine cannot represent it, a deep or
  cross network can), the vector of ∅ is 0; each triple is scaled to variance V_tri/|T|,
  V_tri = 0.9.
- Bias: b is set by bisection so that the mean probability over a 200,000-row calibration sample
  is --ctr (default 4 %).

All parameters (the truth, b included) are drawn from the seed alone, so two runs with the same
--seed and different split sizes share the same truth; the rows come from a separate stream.

Writes <out>/train.txt, valid.txt, test.txt (in that order from one i.i.d. stream),
test_probabilities.txt (the true probability of each test row) and truth.json: rows and CTR per
split, the Bayes-optimal AUC and log loss of the test split, the test AUC of parts of the true
log-odds (main + numeric: roughly the ceiling of a linear model; plus the pairs: roughly that of a
factorization machine), the variance of each part, and vocabulary statistics of the training split
(distinct values, share of them seen once and at most twice; share of test cells whose value
training never shows or shows at most twice; per field as well; share of test rows with a value
training never shows). With the defaults the Bayes-optimal test AUC is about 0.855, the
interaction-free part of the log-odds reaches about 0.67 and with the pairs about 0.79: most of
the signal is in the interactions, which a linear model cannot take up.

    python bench/criteo/make_criteo_longtail.py --out bench/data/longtail1m --seed 11
    python bench/criteo/make_criteo_longtail.py --train 200000 --valid 50000 --test 50000 \\
        --out bench/data/longtail200k --seed 12
"""
import argparse
import json
import os
import time

import numpy as np

from make_criteo_like import CATEGORICAL, NUMERIC, auc

RANK2, RANK3 = 4, 2
N_PAIRS, N_TRIPLES = 8, 4
V_MAIN, V_NUM, V_PAIR, V_TRI = 0.45, 0.15, 1.1, 0.9
PAIR_MAX_SIZE, TRIPLE_MAX_SIZE = 2_000, 1_000
CALIBRATION_ROWS = 200_000
CHUNK = 50_000


def parse_arguments():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--train", type=int, default=1_000_000)
    ap.add_argument("--valid", type=int, default=100_000)
    ap.add_argument("--test", type=int, default=200_000)
    ap.add_argument("--out", default="bench/data/longtail")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--ctr", type=float, default=0.04)
    ap.add_argument("--pairs-among-small", action="store_true",
                    help="draw both fields of every pair among those with at most 2,000 values (by default the "
                         "second field of a pair may be any field, up to 100,000 values, whose rare values' "
                         "interaction vectors 1 M rows cannot pin down)")
    return ap.parse_args()


class Truth:
    """The parameters of the click model, drawn from `rng` alone."""

    def __init__(self, rng, ctr, pairs_among_small=False):
        sizes = np.round(10 ** (1 + 4 * np.sqrt(np.linspace(0, 1, CATEGORICAL)))).astype(np.int64)
        rng.shuffle(sizes)
        self.sizes = sizes
        self.exponents = rng.uniform(1.1, 1.5, size=CATEGORICAL)
        # Value probabilities (Zipf) and their cumulative sums for inverse-CDF draws.
        self.probs, self.cdfs = [], []
        for s, a in zip(sizes, self.exponents):
            p = np.arange(1, s + 1, dtype=np.float64) ** -a
            p /= p.sum()
            self.probs.append(p)
            self.cdfs.append(np.cumsum(p))
        self.cat_missing = rng.uniform(0, 0.05, size=CATEGORICAL)
        self.cat_missing[rng.choice(CATEGORICAL, size=6, replace=False)] = rng.uniform(0.20, 0.45, size=6)
        self.num_missing = rng.uniform(0, 0.10, size=NUMERIC)
        self.num_missing[rng.choice(NUMERIC, size=4, replace=False)] = rng.uniform(0.20, 0.50, size=4)
        kinds = np.array([0] * (NUMERIC // 2) + [1] * (NUMERIC - NUMERIC // 2))
        rng.shuffle(kinds)
        self.num_kind = kinds  # 0: negative binomial, 1: floor of a log-normal
        self.nb_shape = rng.uniform(0.5, 3.0, size=NUMERIC)
        self.nb_mean = 10 ** rng.uniform(0.3, 2.3, size=NUMERIC)
        self.ln_mu = rng.uniform(0.0, 4.0, size=NUMERIC)
        self.ln_sigma = rng.uniform(0.8, 1.8, size=NUMERIC)
        self.tokens = [distinct_tokens(rng, s) for s in sizes]

        # Main effects: index `size` of each table is the empty cell ∅.
        shares = rng.dirichlet(np.full(CATEGORICAL, 2.0))
        self.w = []
        for f in range(CATEGORICAL):
            w = rng.normal(0, 1, size=self.sizes[f] + 1)
            q = self.value_weights(f)
            w -= q @ w
            w *= np.sqrt(shares[f] * V_MAIN / (q @ w**2))
            self.w.append(w)

        # Numeric: slope and empty-cell effect of field j scaled together so that the field's
        # term has variance s_j · V_num in a sample of the integers.
        x = np.log1p(self.draw_integers(rng, CALIBRATION_ROWS))
        blank = rng.random(x.shape) < self.num_missing
        shares = rng.dirichlet(np.full(NUMERIC, 2.0))
        self.u = rng.choice([-1.0, 1.0], size=NUMERIC) / x.std(axis=0)
        self.m = self.u * x.mean(axis=0) + rng.normal(0, 1, size=NUMERIC)
        scale = np.sqrt(shares * V_NUM / np.where(blank, self.m, x * self.u).var(axis=0))
        self.u *= scale
        self.m *= scale

        # Pairwise: one rank-4 vector per value per field, centred, common mean square.
        pairs = set()
        small = np.flatnonzero(self.sizes <= PAIR_MAX_SIZE)
        while len(pairs) < N_PAIRS:
            f = int(rng.choice(small))
            g = int(rng.choice(small if pairs_among_small else CATEGORICAL))
            if f != g:
                pairs.add((min(f, g), max(f, g)))
        self.pairs = sorted(pairs)
        self.v = [self.centred_vectors(rng, f, RANK2) for f in range(CATEGORICAL)]
        for f in range(CATEGORICAL):
            q = self.value_weights(f)
            self.v[f] /= np.sqrt(q @ (self.v[f] ** 2).sum(axis=1))
        covariance = [self.covariance(f, self.v[f]) for f in range(CATEGORICAL)]
        variance = sum((covariance[f] * covariance[g]).sum() for f, g in self.pairs)
        scale = (V_PAIR / variance) ** 0.25
        for f in range(CATEGORICAL):
            self.v[f] *= scale

        # Three-way: rank-2 vectors per triple among the small fields, each triple to V_TRI/|T|.
        small = np.flatnonzero(self.sizes <= TRIPLE_MAX_SIZE)
        triples = set()
        while len(triples) < N_TRIPLES:
            triples.add(tuple(sorted(int(x) for x in rng.choice(small, size=3, replace=False))))
        self.triples = sorted(triples)
        self.t = []
        for triple in self.triples:
            factors = [self.centred_vectors(rng, f, RANK3) for f in triple]
            cov = [self.covariance(f, x) for f, x in zip(triple, factors)]
            variance = (cov[0] * cov[1] * cov[2]).sum()
            scale = (V_TRI / N_TRIPLES / variance) ** (1 / 6)
            self.t.append([x * scale for x in factors])

        # Bias: mean probability `ctr` over a calibration sample.
        cats, nums, num_blank = self.draw_rows(rng, CALIBRATION_ROWS)
        logit = self.log_odds(cats, nums, num_blank).sum(axis=0)
        lo, hi = -30.0, 30.0
        for _ in range(60):
            mid = (lo + hi) / 2
            if sigmoid(logit + mid).mean() > ctr:
                hi = mid
            else:
                lo = mid
        self.bias = (lo + hi) / 2

    def value_weights(self, f):
        """Probabilities of the values of field f and, last, of the empty cell."""
        return np.append(self.probs[f] * (1 - self.cat_missing[f]), self.cat_missing[f])

    def centred_vectors(self, rng, f, rank):
        """N(0, 1) vectors for the values of field f, minus their mean under the value
        distribution; the empty cell (last row) gets 0."""
        x = rng.normal(0, 1, size=(self.sizes[f] + 1, rank))
        x[:-1] -= self.probs[f] @ x[:-1]
        x[-1] = 0
        return x

    def covariance(self, f, x):
        """E[x[c] x[c]ᵀ] under field f's value distribution (empty cell included)."""
        q = self.value_weights(f)
        return (x * q[:, None]).T @ x

    def draw_integers(self, rng, n):
        nums = np.empty((n, NUMERIC), dtype=np.int64)
        for j in range(NUMERIC):
            if self.num_kind[j] == 0:
                r = self.nb_shape[j]
                nums[:, j] = rng.negative_binomial(r, r / (r + self.nb_mean[j]), size=n)
            else:
                nums[:, j] = np.floor(rng.lognormal(self.ln_mu[j], self.ln_sigma[j], size=n))
        return nums

    def draw_rows(self, rng, n):
        """Categorical value indices (`size` for an empty cell), integers, integer blanks."""
        cats = np.empty((n, CATEGORICAL), dtype=np.int32)
        for f in range(CATEGORICAL):
            k = np.searchsorted(self.cdfs[f], rng.random(n) * self.cdfs[f][-1], side="right")
            k = np.minimum(k, self.sizes[f] - 1)
            k[rng.random(n) < self.cat_missing[f]] = self.sizes[f]
            cats[:, f] = k
        nums = self.draw_integers(rng, n)
        num_blank = rng.random((n, NUMERIC)) < self.num_missing
        return cats, nums, num_blank

    def log_odds(self, cats, nums, num_blank):
        """The four parts of the log-odds without the bias: main, numeric, pairs, triples."""
        n = len(cats)
        parts = np.zeros((4, n))
        for f in range(CATEGORICAL):
            parts[0] += self.w[f][cats[:, f]]
        parts[1] = np.where(num_blank, self.m, np.log1p(nums) * self.u).sum(axis=1)
        for f, g in self.pairs:
            parts[2] += np.einsum("nk,nk->n", self.v[f][cats[:, f]], self.v[g][cats[:, g]])
        for (f, g, h), (x, y, z) in zip(self.triples, self.t):
            parts[3] += np.einsum("nk,nk,nk->n", x[cats[:, f]], y[cats[:, g]], z[cats[:, h]])
        return parts


def distinct_tokens(rng, size):
    """`size` distinct random 32-bit numbers as 8-hex-digit strings, plus "" for the empty cell."""
    tokens = np.unique(rng.integers(0, 2**32, size=size, dtype=np.uint64))
    while len(tokens) < size:
        tokens = np.unique(np.append(tokens, rng.integers(0, 2**32, size=size - len(tokens), dtype=np.uint64)))
    rng.shuffle(tokens)
    return np.array([format(t, "08x") for t in tokens.tolist()] + [""], dtype=object)


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


def write_rows(path, labels, cats, nums, num_blank, truth):
    """Writes rows in the Criteo layout, CHUNK rows at a time."""
    label_text = np.array(["0", "1"], dtype=object)
    with open(path, "w") as fh:
        for a in range(0, len(labels), CHUNK):
            b = min(a + CHUNK, len(labels))
            columns = [label_text[labels[a:b]].tolist()]
            for j in range(NUMERIC):
                text = np.array(list(map(str, nums[a:b, j].tolist())), dtype=object)
                text[num_blank[a:b, j]] = ""
                columns.append(text.tolist())
            for f in range(CATEGORICAL):
                columns.append(truth.tokens[f][cats[a:b, f]].tolist())
            fh.write("\n".join(map("\t".join, zip(*columns))))
            fh.write("\n")


def vocabulary_statistics(train_cats, test_cats, truth):
    """Distinct values in training (empty cells aside), the shares of them seen once and at most
    twice, and the shares of the test split's non-empty cells whose value training shows 0 times
    or at most twice (pooled over the fields and per field), and the share of test rows with at
    least one value training never shows."""
    per_field = []
    distinct = once = twice = cells = unseen = rare = 0
    row_unseen = np.zeros(len(test_cats), dtype=bool)
    for f in range(CATEGORICAL):
        s = truth.sizes[f]
        counts = np.bincount(train_cats[:, f], minlength=s + 1)[:s]
        d, o, t = int((counts > 0).sum()), int((counts == 1).sum()), int(((counts > 0) & (counts <= 2)).sum())
        present = test_cats[:, f] < s
        test_values = test_cats[:, f][present]
        seen = counts[test_values]
        row_unseen[present] |= seen == 0
        c, un, ra = len(test_values), int((seen == 0).sum()), int((seen <= 2).sum())
        distinct, once, twice, cells, unseen, rare = distinct + d, once + o, twice + t, cells + c, unseen + un, rare + ra
        per_field.append({
            "field": f"C{f + 1}", "vocabulary": int(s), "zipf_exponent": round(float(truth.exponents[f]), 3),
            "missing_rate": round(float(truth.cat_missing[f]), 4), "train_distinct": d,
            "train_share_seen_once": round(o / max(d, 1), 4), "train_share_seen_at_most_twice": round(t / max(d, 1), 4),
            "test_cells_unseen": round(un / max(c, 1), 5), "test_cells_seen_at_most_twice": round(ra / max(c, 1), 5),
        })
    pooled = {
        "train_distinct_values": distinct,
        "train_share_of_distinct_seen_once": round(once / distinct, 4),
        "train_share_of_distinct_seen_at_most_twice": round(twice / distinct, 4),
        "test_share_of_cells_unseen_in_train": round(unseen / cells, 5),
        "test_share_of_cells_seen_at_most_twice_in_train": round(rare / cells, 5),
        "test_share_of_rows_with_an_unseen_value": round(float(row_unseen.mean()), 4),
    }
    return pooled, per_field


def main():
    args = parse_arguments()
    start = time.time()
    truth = Truth(np.random.default_rng([args.seed, 0]), args.ctr, args.pairs_among_small)
    rng = np.random.default_rng([args.seed, 1])
    n_train, n_valid, n_test = args.train, args.valid, args.test
    n = n_train + n_valid + n_test
    cats, nums, num_blank = truth.draw_rows(rng, n)
    parts = np.zeros((4, n))
    for a in range(0, n, 4 * CHUNK):
        b = min(a + 4 * CHUNK, n)
        parts[:, a:b] = truth.log_odds(cats[a:b], nums[a:b], num_blank[a:b])
    prob = sigmoid(truth.bias + parts.sum(axis=0))
    labels = (rng.random(n) < prob).astype(np.int64)
    drawn = time.time()

    os.makedirs(args.out, exist_ok=True)
    splits = {"train": (0, n_train), "valid": (n_train, n_train + n_valid), "test": (n_train + n_valid, n)}
    for name, (a, b) in splits.items():
        write_rows(os.path.join(args.out, f"{name}.txt"), labels[a:b], cats[a:b], nums[a:b], num_blank[a:b], truth)
    a, b = splits["test"]
    with open(os.path.join(args.out, "test_probabilities.txt"), "w") as fh:
        fh.write("\n".join(map(repr, prob[a:b].tolist())))
        fh.write("\n")
    written = time.time()

    y, p = labels[a:b], prob[a:b]
    ctr = y.mean()
    ll = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    ll_constant = -(ctr * np.log(ctr) + (1 - ctr) * np.log(1 - ctr))
    additive = parts[0, a:b] + parts[1, a:b]
    vocab, per_field = vocabulary_statistics(cats[:n_train], cats[a:b], truth)

    report = {
        "generator": "bench/criteo/make_criteo_longtail.py",
        "seed": args.seed,
        "rows": {name: hi - lo for name, (lo, hi) in splits.items()},
        "ctr": {name: round(float(labels[lo:hi].mean()), 5) for name, (lo, hi) in splits.items()},
        "target_ctr": args.ctr,
        "pairs_among_small": args.pairs_among_small,
        "bias": round(truth.bias, 5),
        "bayes_optimal_test": {"auc": round(float(auc(y, p)), 5), "log_loss": round(float(ll), 5),
                               "log_loss_of_constant_ctr": round(float(ll_constant), 5)},
        "test_auc_of_log_odds_parts": {
            "main_and_numeric": round(float(auc(y, additive)), 5),
            "main_numeric_and_pairs": round(float(auc(y, additive + parts[2, a:b])), 5),
            "main_numeric_and_triples": round(float(auc(y, additive + parts[3, a:b])), 5),
        },
        "test_variance_of_log_odds_parts": {
            name: round(float(parts[i, a:b].var()), 4) for i, name in enumerate(["main", "numeric", "pairs", "triples"])
        },
        "vocabulary": vocab,
        "structure": {
            "pairs": [[f"C{f + 1}", f"C{g + 1}"] for f, g in truth.pairs],
            "triples": [[f"C{f + 1}" for f in t] for t in truth.triples],
            "numeric_missing_rates": [round(float(x), 4) for x in truth.num_missing],
            "numeric_kind": ["negative_binomial" if k == 0 else "lognormal_floor" for k in truth.num_kind],
        },
        "vocabulary_per_field": per_field,
        "seconds": {"draw": round(drawn - start, 1), "write": round(written - drawn, 1),
                    "total": round(time.time() - start, 1)},
    }
    with open(os.path.join(args.out, "truth.json"), "w") as fh:
        json.dump(report, fh, indent=1)
        fh.write("\n")

    print(f"rows: train {n_train}, valid {n_valid}, test {n_test}; CTR " +
          ", ".join(f"{k} {v:.4f}" for k, v in report["ctr"].items()))
    print(f"Bayes-optimal on test (true probabilities): AUC {report['bayes_optimal_test']['auc']:.4f}, "
          f"log loss {ll:.5f} (constant CTR {ll_constant:.5f})")
    parts_auc = report["test_auc_of_log_odds_parts"]
    print(f"test AUC of the true log-odds without interactions {parts_auc['main_and_numeric']:.4f}, "
          f"with pairs only {parts_auc['main_numeric_and_pairs']:.4f}")
    print("variance of the log-odds parts on test: " +
          ", ".join(f"{k} {v}" for k, v in report["test_variance_of_log_odds_parts"].items()))
    print(f"training vocabulary: {vocab['train_distinct_values']} distinct values, "
          f"{vocab['train_share_of_distinct_seen_once']:.1%} seen once, "
          f"{vocab['train_share_of_distinct_seen_at_most_twice']:.1%} at most twice; test cells unseen "
          f"{vocab['test_share_of_cells_unseen_in_train']:.2%}, seen at most twice "
          f"{vocab['test_share_of_cells_seen_at_most_twice_in_train']:.2%}; test rows with an unseen value "
          f"{vocab['test_share_of_rows_with_an_unseen_value']:.1%}")
    print(f"wrote {args.out}/train.txt, valid.txt, test.txt, test_probabilities.txt, truth.json "
          f"in {time.time() - start:.1f} s")


if __name__ == "__main__":
    main()
