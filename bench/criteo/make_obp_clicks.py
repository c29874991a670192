#!/usr/bin/env python3
"""Click data from a generator Funnel's team did not write: Open Bandit Pipeline's
`obp.dataset.SyntheticBanditDataset` (obp 0.5.7, the `.venv-obp` environment).

Each logged round is one impression: a context vector x (obp draws it from a standard normal),
the item a the logging policy showed (obp's default: softmax of β times the true click
probabilities over all items), and a click drawn from Bernoulli(q(x, a)). q is obp's own reward
function; this script only chooses which one and its sizes, and gives items obp-style random
feature vectors (standard normal) because obp's default one-hot item vectors make the polynomial
reward functions' matrices items × C(items + 3, 3) wide. The model sees the context values as
numeric columns and the item only by its id (a categorical column), so it has to learn each
item's effect and how it interacts with the context from the clicks.

Presets (--preset):
  bilinear   obp.dataset.logistic_reward_function: logit = 3·(θₓ·[1,x] + θₐ·[1,a] + [1,x]ᵀ M [1,a]),
             so every item has its own slope on each context value: an interaction a logistic
             regression on (item, x) cannot express. 1,000 items, 10 context values, 5 item features.
  cubic      obp.dataset.logistic_polynomial_reward_function: the same with degree-3 polynomial
             features of x and a (squares, cubes and products). 200 items, 3 context values,
             2 item features. Clicks are close to deterministic (Bayes-optimal AUC near 0.99).

obp builds the truth for a whole batch at once and standardises the logits with that batch's mean
and spread, so rows come in batches of --batch rounds from one dataset object: the reward
coefficients are drawn from the same seed in every batch (obp's documented way of resampling
from one distribution), and q of each row is exactly the probability its click was drawn from.

Writes train.csv, valid.csv and test.csv (header: click,x1,…,xD,item) in file order, then
test_truth.txt (q of each test row, one per line), and prints the test split's Bayes-optimal AUC
and log loss (q scored against the drawn clicks).

    .venv-obp/bin/python bench/criteo/make_obp_clicks.py --preset bilinear --out DIR

The CI fixture Tests/FunnelModelsTests/Fixtures/obp_cubic (scripts/test) is this script's output,
each file compressed with `gzip -9 -n`:

    .venv-obp/bin/python bench/criteo/make_obp_clicks.py --preset cubic --out DIR \
        --train 40000 --valid 10000 --test 10000 --batch 10000
"""
import argparse
import os
import sys

import numpy as np

PRESETS = {
    "bilinear": dict(function="logistic_reward_function", items=1000, context=10, item_features=5),
    "cubic": dict(function="logistic_polynomial_reward_function", items=200, context=3, item_features=2),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="bilinear")
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=400_000)
    ap.add_argument("--valid", type=int, default=100_000)
    ap.add_argument("--test", type=int, default=100_000)
    ap.add_argument("--batch", type=int, default=50_000, help="rounds per obp batch")
    ap.add_argument("--beta", type=float, default=1.0, help="obp's logging policy: softmax(β·q) over items")
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()

    import obp.dataset as od
    from sklearn.metrics import log_loss, roc_auc_score

    p = PRESETS[a.preset]
    rng = np.random.RandomState(a.seed)
    item_features = rng.normal(size=(p["items"], p["item_features"]))
    ds = od.SyntheticBanditDataset(
        n_actions=p["items"], dim_context=p["context"], reward_type="binary",
        reward_function=getattr(od, p["function"]), action_context=item_features,
        beta=a.beta, random_state=a.seed)

    os.makedirs(a.out, exist_ok=True)
    header = "click," + ",".join(f"x{j + 1}" for j in range(p["context"])) + ",item\n"
    splits = [("train", a.train), ("valid", a.valid), ("test", a.test)]
    truth, clicks = [], []
    for name, rows in splits:
        with open(os.path.join(a.out, f"{name}.csv"), "w") as f:
            f.write(header)
            left = rows
            while left > 0:
                n = min(a.batch, left)
                fb = ds.obtain_batch_bandit_feedback(n_rounds=n)
                q = fb["expected_reward"][np.arange(n), fb["action"]]
                for x, item, r in zip(fb["context"], fb["action"], fb["reward"]):
                    f.write(f"{int(r)}," + ",".join(f"{v:.6f}" for v in x) + f",i{int(item)}\n")
                if name == "test":
                    truth.append(q)
                    clicks.append(fb["reward"])
                left -= n
    q = np.concatenate(truth)
    y = np.concatenate(clicks)
    np.savetxt(os.path.join(a.out, "test_truth.txt"), q, fmt="%.9g")
    auc = roc_auc_score(y, q)
    ll = log_loss(y, np.clip(q, 1e-15, 1 - 1e-15))
    print(f"obp {p['function']}: {p['items']} items, {p['context']} context values; "
          f"test CTR {y.mean():.4f}; Bayes-optimal test AUC {auc:.4f}, log loss {ll:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
