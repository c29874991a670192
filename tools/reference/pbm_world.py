#!/usr/bin/env python3
"""A position-based-model (PBM) world with recurring items, logged by a stochastic policy.

    python3 pbm_world.py --seed 1 --users 30000 --out DIR
    python3 pbm_world.py --self-check DIR

Written from the event contract (shared/DESIGN.md sections 2 and 7) only, as an independent oracle
for off-policy evaluation (OPE) and position-bias estimation.

The world
- 2,000 items; attractiveness alpha(item) ~ Beta(1.2, 8), capped at 0.9; popularity weight of the
  item of rank r is proportional to 1 / r^1.1 (Zipf-like).
- Examination theta(position) for positions 1..8 (EXAMINATION below). An impression at position k of
  item i is clicked with probability theta_k * alpha_i, independently of every other impression,
  re-shown items included.
- Each user: one `exposure` (experiment "pbm-world", variant control/treatment 50/50, context
  {"device": mobile|desktop}); the variant has no effect on the world (an A/A split). 1-3 sessions, at
  least 4 h apart. A session draws ONE set of 24 distinct candidates (by popularity, without
  replacement) and serves 2-8 requests 30 s to 10 min apart, so one user sees the same items several
  times within an hour at different positions.
- Logging policy, per request: noisy scores s_i = log alpha_i + Normal(0, 0.5) are drawn for the 24
  candidates first (they are part of the request's context). Then with probability 0.3 the request
  shows 8 candidates as a uniformly random ordered subset (context ranker "random"), else the top 8
  by score, in score order (ranker "model"). The exact probability of item i at position k is
      p = 0.3/24 + 0.7 * [i is k-th in score order]   (0.0125 or 0.7125),
  logged as the impression's `propensity` and listed for every candidate x position in
  logging_policy.csv.
- Evaluation policy (deterministic): the top 8 candidates by TRUE alpha (ties by item id).

Output files in DIR
- events.jsonl: exposure, impression and click events (ts half RFC 3339 with ms and Z, half epoch ms;
  clicks 1..600 s after their impression, inside the 1800 s click window; no viewability fields).
- evaluation_policy.csv, logging_policy.csv: request_id,item_id,position,probability.
- truth.json: examination, evaluation_value V and logging_value L (expected clicks per impression:
  (1/m) * sum over requests of sum_k theta_k * alpha(item at k), in expectation over the policy),
  counts, recurring_impressions (impressions whose (user, item) was shown to that user < 3600 s
  earlier), seed, and the item attractiveness table.
"""

import argparse
import csv
import datetime as dt
import json
import math
import os
import time

import numpy as np

N_ITEMS, N_CANDIDATES, SLOTS = 2000, 24, 8
EXAMINATION = [1.0, 0.74, 0.58, 0.47, 0.40, 0.35, 0.31, 0.28]
RANDOM_SHARE, SCORE_NOISE = 0.3, 0.5
P_OFF, P_TOP = 0.0125, 0.7125          # 0.3/24 and 0.3/24 + 0.7, written as exact decimals
EXPERIMENT, SURFACE = "pbm-world", "home"
T0 = 1_772_323_200_000                 # 2026-03-01T00:00:00Z in epoch ms
SEC, HOUR = 1000, 3_600_000
RECUR_MS = 3600 * SEC
SESSION_P = [0.55, 0.30, 0.15]         # 1, 2 or 3 sessions
REQUESTS_P = np.array([7, 6, 5, 4, 3, 2, 1]) / 28.0   # 2..8 requests per session (mean 4)


def rfc3339(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def generate(seed, n_users, out, logging_file=True):
    rng = np.random.default_rng(seed)
    alpha = np.minimum(rng.beta(1.2, 8.0, N_ITEMS), 0.9)
    pop = 1.0 / np.arange(1, N_ITEMS + 1) ** 1.1
    pop = pop[rng.permutation(N_ITEMS)]  # popularity rank independent of item index and alpha
    pop /= pop.sum()
    log_alpha, item_ids = np.log(alpha), [f"i{j:04d}" for j in range(N_ITEMS)]
    alpha_l = alpha.tolist()
    theta = np.array(EXAMINATION)
    # per score rank j, the "position,probability" cells of that candidate's 8 logging rows
    cells = [[f"{k + 1},{P_TOP if k == j else P_OFF}" for k in range(SLOTS)] for j in range(N_CANDIDATES)]
    n_req = n_imp = n_clicks = n_recur = 0
    v_sum = l_sum = 0.0
    dumps = json.JSONEncoder(separators=(",", ":")).encode
    with open(os.path.join(out, "events.jsonl"), "w") as ev, \
            open(os.path.join(out, "evaluation_policy.csv"), "w") as ep, \
            open(os.path.join(out, "logging_policy.csv") if logging_file else os.devnull, "w") as lp:
        ep.write("request_id,item_id,position,probability\n")
        lp.write("request_id,item_id,position,probability\n")
        for u in range(n_users):
            uid = f"u{u:06d}"
            n_sessions = 1 + int(rng.choice(3, p=SESSION_P))
            start = T0 + int(rng.integers(0, 7 * 24 * HOUR))
            exp_ts = start - int(rng.integers(1 * SEC, 30 * SEC))
            ev.write(dumps({"type": "exposure", "event_id": f"x-{uid}",
                            "ts": rfc3339(exp_ts) if rng.random() < 0.5 else exp_ts, "user_id": uid,
                            "experiment": EXPERIMENT,
                            "variant": "control" if rng.random() < 0.5 else "treatment",
                            "context": {"device": "mobile" if rng.random() < 0.5 else "desktop"}}) + "\n")
            last_seen = {}
            for _ in range(n_sessions):
                cands = rng.choice(N_ITEMS, N_CANDIDATES, replace=False, p=pop)
                r = 2 + int(rng.choice(7, p=REQUESTS_P))
                gaps = rng.integers(30 * SEC, 600 * SEC + 1, r)
                gaps[0] = 0
                req_ts = (start + np.cumsum(gaps)).tolist()
                scores = log_alpha[cands] + rng.normal(0.0, SCORE_NOISE, (r, N_CANDIDATES))
                order = np.argsort(-scores, axis=1, kind="stable")             # score order (cand index)
                is_random = (rng.random(r) < RANDOM_SHARE).tolist()
                perm = np.argsort(rng.random((r, N_CANDIDATES)), axis=1)[:, :SLOTS]
                click_u = rng.random((r, SLOTS)).tolist()
                delay = rng.integers(1 * SEC, 600 * SEC + 1, (r, SLOTS)).tolist()
                fmt = (rng.random((r, 2 * SLOTS)) < 0.5).tolist()
                ev_order = np.lexsort((cands, -alpha[cands]))[:SLOTS]         # evaluation policy
                a_c = alpha[cands]
                v_req = float(theta @ a_c[ev_order])
                l_rand = RANDOM_SHARE * float(theta.sum()) * float(a_c.mean())
                l_model = ((1 - RANDOM_SHARE) * (a_c[order[:, :SLOTS]] @ theta)).tolist()
                cand_l, order_l, perm_l = cands.tolist(), order.tolist(), perm.tolist()
                eval_rows = [(item_ids[cand_l[c]], k + 1) for k, c in enumerate(ev_order.tolist())]
                for q in range(r):
                    rid, ts = f"r{n_req:07d}", req_ts[q]
                    n_req += 1
                    v_sum += v_req
                    l_sum += l_rand + l_model[q]
                    ep.write("".join(f"{rid},{i},{k},1\n" for i, k in eval_rows))
                    rank = {c: j for j, c in enumerate(order_l[q])}
                    lp.write("".join(f"{rid},{item_ids[cand_l[c]]},"
                                     + f"\n{rid},{item_ids[cand_l[c]]},".join(cells[rank[c]]) + "\n"
                                     for c in range(N_CANDIDATES)))
                    shown = perm_l[q] if is_random[q] else order_l[q][:SLOTS]
                    ranker = "random" if is_random[q] else "model"
                    lines = []
                    for k in range(SLOTS):
                        c = shown[k]
                        item = cand_l[c]
                        iid = item_ids[item]
                        eid = f"{rid}-{k + 1}"
                        prev = last_seen.get(item)
                        if prev is not None and ts - prev < RECUR_MS:
                            n_recur += 1
                        last_seen[item] = ts
                        lines.append(dumps({
                            "type": "impression", "event_id": eid,
                            "ts": rfc3339(ts) if fmt[q][k] else ts, "user_id": uid, "item_id": iid,
                            "position": k + 1, "surface": SURFACE, "request_id": rid,
                            "propensity": P_TOP if order_l[q][k] == c else P_OFF,
                            "context": {"ranker": ranker}}))
                        if click_u[q][k] < EXAMINATION[k] * alpha_l[item]:
                            n_clicks += 1
                            cts = ts + delay[q][k]
                            lines.append(dumps({
                                "type": "click", "event_id": f"{eid}-c",
                                "ts": rfc3339(cts) if fmt[q][SLOTS + k] else cts,
                                "user_id": uid, "item_id": iid, "impression_id": eid}))
                    n_imp += SLOTS
                    ev.write("\n".join(lines) + "\n")
                start = req_ts[-1] + 4 * HOUR + int(rng.integers(0, 20 * HOUR))
    truth = {"examination": EXAMINATION, "evaluation_value": v_sum / n_imp,
             "logging_value": l_sum / n_imp, "requests": n_req, "impressions": n_imp,
             "users": n_users, "recurring_impressions": n_recur, "clicks": n_clicks, "seed": seed,
             "generator": "pbm_world.py", "candidates": N_CANDIDATES, "random_share": RANDOM_SHARE,
             "attractiveness": {item_ids[j]: alpha_l[j] for j in range(N_ITEMS)}}
    with open(os.path.join(out, "truth.json"), "w") as f:
        json.dump(truth, f, indent=1)
        f.write("\n")
    return truth


def parse_ts(v):
    if isinstance(v, int):
        return v
    return int(dt.datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000 + 0.5)


def self_check(d):
    """Read a generated DIR back and check IPW against the truth, propensities and recurrence."""
    truth = json.load(open(os.path.join(d, "truth.json")))
    imps, clicked = {}, {}
    with open(os.path.join(d, "events.jsonl")) as f:
        for line in f:
            e = json.loads(line)
            if e["type"] == "impression":
                imps[e["event_id"]] = (e["request_id"], e["item_id"], e["position"], e["propensity"],
                                       e["user_id"], parse_ts(e["ts"]))
            elif e["type"] == "click":
                i = imps[e["impression_id"]]
                delta = parse_ts(e["ts"]) - i[5]
                assert 0 <= delta <= 1_800_000 and e["user_id"] == i[4], e
                clicked[e["impression_id"]] = 1
    m = len(imps)
    evalp = {}
    with open(os.path.join(d, "evaluation_policy.csv")) as f:
        for row in csv.DictReader(f):
            evalp[(row["request_id"], int(row["position"]))] = (row["item_id"], float(row["probability"]))
    # (a) IPW over rounds, standard error clustered by request (impressions of a request are dependent)
    per_req = {}
    for eid, (rid, item, pos, prop, _, _) in imps.items():
        e_item, e_p = evalp[(rid, pos)]
        w = e_p / prop if e_item == item else 0.0
        per_req[rid] = per_req.get(rid, 0.0) + w * clicked.get(eid, 0)
    ys = list(per_req.values())
    n = len(ys)
    mean_y = sum(ys) / n
    sd_y = math.sqrt(sum((y - mean_y) ** 2 for y in ys) / (n - 1))
    ipw, se = n * mean_y / m, n * sd_y / math.sqrt(n) / m
    v = truth["evaluation_value"]
    ctr = sum(clicked.values()) / m
    print(f"impressions {m}  requests {n}  clicks {sum(clicked.values())}")
    print(f"(a) IPW {ipw:.5f} ± {se:.5f} (SE)   truth V {v:.5f}   z = {(ipw - v) / se:+.2f}")
    print(f"    logged CTR {ctr:.5f}   truth L {truth['logging_value']:.5f}")
    # (b) logged propensities = logging_policy.csv; each (request, position) column sums to 1
    key = {(rid, item, pos): prop for rid, item, pos, prop, _, _ in imps.values()}
    found = mismatched = bad_sums = 0
    col, cur = {}, None
    with open(os.path.join(d, "logging_policy.csv")) as f:
        next(f)
        for line in f:
            rid, item, pos, p = line.rstrip("\n").split(",")
            pos, p = int(pos), float(p)
            if rid != cur:
                bad_sums += sum(abs(s - 1) > 1e-9 for s in col.values())
                col, cur = {}, rid
            col[pos] = col.get(pos, 0.0) + p
            lp = key.get((rid, item, pos))
            if lp is not None:
                found += 1
                mismatched += lp != p
    bad_sums += sum(abs(s - 1) > 1e-9 for s in col.values())
    print(f"(b) propensities found {found}/{m}, mismatched {mismatched}, position columns not summing to 1: {bad_sums}")
    # (c) recurring impressions, recomputed from the events
    by_user = {}
    for rid, item, pos, prop, uid, ts in imps.values():
        by_user.setdefault(uid, []).append((ts, item))
    recur = 0
    for evs in by_user.values():
        last = {}
        for ts, item in sorted(evs):
            if item in last and ts - last[item] < RECUR_MS:
                recur += 1
            last[item] = ts
    print(f"(c) recurring impressions {recur} ({recur / m:.1%}); truth says {truth['recurring_impressions']}")
    ok = abs(ipw - v) < 4 * se and found == m and not mismatched and not bad_sums \
        and recur == truth["recurring_impressions"] and 0.3 <= recur / m <= 0.6
    print("self-check", "OK" if ok else "FAILED")
    return ok


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--users", type=int, default=30000)
    ap.add_argument("--out", help="output directory (created if missing)")
    ap.add_argument("--no-logging-policy", action="store_true",
                    help="skip logging_policy.csv (192 rows per request; about 900 MB at 30,000 users)")
    ap.add_argument("--self-check", metavar="DIR", help="verify a generated DIR instead of generating")
    args = ap.parse_args()
    if args.self_check:
        raise SystemExit(0 if self_check(args.self_check) else 1)
    if not args.out:
        ap.error("--out DIR is required")
    os.makedirs(args.out, exist_ok=True)
    t = generate(args.seed, args.users, args.out, logging_file=not args.no_logging_policy)
    print(json.dumps({k: v for k, v in t.items() if k != "attractiveness"}))
