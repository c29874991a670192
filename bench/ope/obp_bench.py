#!/usr/bin/env python3
"""The obp side of the off-policy evaluation benchmark (bench/ope/run_ope_bench.sh): the same
estimates as `funnel ope --log-format obd --estimators ipw,snipw,dr --bootstrap 0`, computed with
obp 0.5.7 on the same CSV and policy file, with each stage timed by time.perf_counter.

    .venv-obp/bin/python bench/ope/obp_bench.py --logs bench/data/ope/obd_random_all_1000000.csv \
        --policy bench/data/ope/policy_bts_all.csv [--estimators ipw,snipw,dr]

Prints one JSON document: values, stage timings (seconds), the reward model's settings and fit
summary, versions, and the process's peak RSS.

Stages:
  import        numpy, pandas, scikit-learn and obp (obp pulls in torch and matplotlib);
  load          pandas.read_csv(index_col=0) of the log, as obp's Open Bandit loader reads it;
  prep          the bandit arrays (action = item_id, position = position - 1, reward = click,
                pscore = propensity_score) and action_dist, the dense (rounds, items, positions)
                array of evaluation-policy probabilities that obp's estimators take;
  ipw, snipw    obp InverseProbabilityWeighting / SelfNormalizedInverseProbabilityWeighting;
  context       the reward model's context matrix: one-hot user_feature_* columns followed by
                the user-item_affinity_* columns (obp's own Open Bandit context);
  reward_model  obp RegressionModel.fit_predict with scikit-learn LogisticRegression, 3-fold
                cross-fitting: q_hat of shape (rounds, items, positions);
  dm, dr        obp DirectMethod / DoublyRobust.estimate_policy_value with that q_hat (dm only
                when asked for; the benchmark runs ipw, snipw, dr).
end_to_end runs from interpreter start of this script (before the imports) to the last stage.

Reward model vs Funnel's: Funnel fits one L2 logistic regression on one-hot context, one-hot item,
one-hot position and the shown item's affinity (Adagrad, 30 epochs, l2 = 1e-4 per round, 3 folds by
round index mod 3). obp's RegressionModel cannot take a position feature: with len_list = 3 it fits
one base model per position, each on its own position's rounds, with features [context, one-hot
action]; predictions loop over every (action, position) pair. The per-round penalty is matched:
Funnel minimises mean log loss + (l2/2)|w|^2, which is scikit-learn's
C * sum log loss + (1/2)|w|^2 with C = 1 / (l2 * n), n the rounds one model is fitted on
(here about rounds * 2/3 / 3 per position model). Both leave the intercept unpenalised.
"""

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import sklearn  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402

import obp  # noqa: E402
from obp.ope import (  # noqa: E402
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    RegressionModel,
    SelfNormalizedInverseProbabilityWeighting,
)

T_IMPORTED = time.perf_counter()

ESTIMATORS = ("ipw", "snipw", "dm", "dr")


class Clock:
    """Named stage timings, each from the end of the previous stage."""

    def __init__(self, start):
        self.last = start
        self.stages = {}

    def lap(self, name):
        now = time.perf_counter()
        self.stages[name] = now - self.last
        self.last = now


def policy_table(path, n_items, n_positions):
    """item_id,position,probability (positions 1-based) -> array (items, positions)."""
    d = pd.read_csv(path)
    table = np.zeros((n_items, n_positions))
    table[d["item_id"].to_numpy(), d["position"].to_numpy() - 1] = d["probability"].to_numpy()
    return table


def blas_info():
    try:
        from threadpoolctl import threadpool_info

        return [
            {k: i.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for i in threadpool_info()
            if i.get("user_api") == "blas"
        ]
    except Exception as e:  # informational only
        return str(e)


def main():
    ap = argparse.ArgumentParser(description="obp side of the funnel ope benchmark")
    ap.add_argument("--logs", required=True, help="Open Bandit layout CSV")
    ap.add_argument("--policy", required=True, help="item_id,position,probability CSV")
    ap.add_argument("--estimators", default="ipw,snipw,dr")
    ap.add_argument("--l2", type=float, default=1e-4, help="per-round L2 strength (Funnel's default)")
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=12345, help="KFold shuffle seed")
    ap.add_argument("--max-iter", type=int, default=1000, help="LogisticRegression max_iter")
    args = ap.parse_args()
    chosen = args.estimators.split(",")
    unknown = [e for e in chosen if e not in ESTIMATORS]
    if unknown:
        sys.exit(f"--estimators: unknown {unknown}; choose from {','.join(ESTIMATORS)}")

    clock = Clock(T_IMPORTED)
    df = pd.read_csv(args.logs, index_col=0)
    clock.lap("load")

    action = df["item_id"].to_numpy()
    position = df["position"].to_numpy() - 1
    reward = df["click"].to_numpy()
    pscore = df["propensity_score"].to_numpy()
    affinity_cols = [c for c in df.columns if c.startswith("user-item_affinity_")]
    n = len(df)
    # Item space as Funnel reads it: ids 0 .. max(item id, affinity column id).
    n_actions = max(int(action.max()), *(int(c.rsplit("_", 1)[1]) for c in affinity_cols)) + 1
    len_list = int(position.max()) + 1
    table = policy_table(args.policy, n_actions, len_list)
    action_dist = np.broadcast_to(table, (n, n_actions, len_list)).copy()
    clock.lap("prep")

    feedback = dict(reward=reward, action=action, position=position, pscore=pscore, action_dist=action_dist)
    estimates = {}
    if "ipw" in chosen:
        estimates["ipw"] = float(InverseProbabilityWeighting().estimate_policy_value(**feedback))
        clock.lap("ipw")
    if "snipw" in chosen:
        estimates["snipw"] = float(SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**feedback))
        clock.lap("snipw")

    model_info = None
    if "dm" in chosen or "dr" in chosen:
        user_cols = [c for c in df.columns if c.startswith("user_feature_")]
        onehot = pd.get_dummies(df[user_cols], drop_first=False)
        context = np.c_[onehot.to_numpy(dtype=float), df[affinity_cols].to_numpy(dtype=float)]
        clock.lap("context")

        rounds_per_model = n * (args.folds - 1) / args.folds / len_list
        C = 1.0 / (args.l2 * rounds_per_model)
        base = LogisticRegression(penalty="l2", C=C, solver="lbfgs", max_iter=args.max_iter)
        reg = RegressionModel(n_actions=n_actions, len_list=len_list, base_model=base, fitting_method="normal")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            q_hat = reg.fit_predict(
                context=context,
                action=action,
                reward=reward,
                position=position,
                pscore=pscore,
                n_folds=args.folds,
                random_state=args.seed,
            )
        clock.lap("reward_model")

        if "dm" in chosen:
            estimates["dm"] = float(
                DirectMethod().estimate_policy_value(estimated_rewards_by_reg_model=q_hat, **feedback)
            )
            clock.lap("dm")
        if "dr" in chosen:
            estimates["dr"] = float(
                DoublyRobust().estimate_policy_value(estimated_rewards_by_reg_model=q_hat, **feedback)
            )
            clock.lap("dr")
        factual = q_hat[np.arange(n), action, position]
        model_info = dict(
            base_model=f"sklearn LogisticRegression(penalty='l2', C={C!r}, solver='lbfgs', max_iter={args.max_iter})",
            per_round_l2=args.l2,
            position_models=len(reg.base_model_list),
            folds=args.folds,
            kfold_seed=args.seed,
            context_columns=int(context.shape[1]),
            onehot_columns=int(onehot.shape[1]),
            affinity_columns=len(affinity_cols),
            features_per_model=int(context.shape[1] + n_actions),
            last_fold_lbfgs_iterations=[int(m.n_iter_[0]) for m in reg.base_model_list],
            convergence_warnings=sum(issubclass(w.category, ConvergenceWarning) for w in caught),
            q_hat_shape=list(q_hat.shape),
            q_hat_mib=q_hat.nbytes / 2**20,
            mean_q_hat_logged=float(factual.mean()),
            mean_reward=float(reward.mean()),
        )

    timings = dict(import_=T_IMPORTED - T_START, **clock.stages)
    timings["end_to_end"] = clock.last - T_START
    timings = {k.rstrip("_"): v for k, v in timings.items()}
    out = dict(
        tool="obp",
        logs=args.logs,
        policy=args.policy,
        rounds=n,
        items=n_actions,
        positions=len_list,
        estimates=estimates,
        timings_s=timings,
        reward_model=model_info,
        action_dist_mib=action_dist.nbytes / 2**20,
        peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        versions=dict(
            python=platform.python_version(),
            obp=obp.__version__,
            numpy=np.__version__,
            pandas=pd.__version__,
            sklearn=sklearn.__version__,
        ),
        blas=blas_info(),
    )
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
