#!/usr/bin/env python3
"""Markdown tables of conversion-model runs: Funnel's against the PyTorch reference (torch_cvr.py).

usage: summarize.py FILE...

Reads JSON lines from every FILE. A line with a "model" key is one run: "tool" ("funnel" or
"pytorch"), "model", "seed" and metric keys (ctr_auc, ctr_logloss, cvr_auc_clicked,
cvr_logloss_clicked, ctcvr_auc, ctcvr_logloss; optional entire_space_cvr_auc,
unclicked_calibration_ratio, clicked_calibration_ratio, train_seconds, epochs, best_epoch). Other
lines (headers, lines that are not JSON objects) are ignored. A second run of the same tool, model
and seed replaces the first (with a warning on stderr).

Prints, per tool, a table with one row per model (in order of first appearance): each metric's
mean ± standard deviation over the seeds (sample sd, ddof = 1, shown with two or more seeds; AUC
and log loss to 4 decimals, ratios to 3, seconds and epochs to 1) and the number of seeds. Then a
comparison pairing each PyTorch model with Funnel's of the same name (PyTorch naive with Funnel
naive-cvr, naive-shared with naive-cvr-shared, i.e. `--model naive-cvr --shared-embedding`,
escm2-ipw with escm2-ips): per head, Funnel's mean AUC minus PyTorch's, and
PyTorch's mean training seconds over Funnel's. Models without a counterpart are left out.
"""
import json
import statistics
import sys

METRICS = [  # key, column title, decimals
    ("ctr_auc", "CTR AUC", 4), ("ctr_logloss", "CTR logloss", 4),
    ("cvr_auc_clicked", "CVR AUC (clicked)", 4), ("cvr_logloss_clicked", "CVR logloss (clicked)", 4),
    ("ctcvr_auc", "CTCVR AUC", 4), ("ctcvr_logloss", "CTCVR logloss", 4),
    ("entire_space_cvr_auc", "entire-space CVR AUC", 4),
    ("unclicked_calibration_ratio", "calibration unclicked", 3),
    ("clicked_calibration_ratio", "calibration clicked", 3),
    ("train_seconds", "train s", 1), ("epochs", "epochs", 1), ("best_epoch", "best epoch", 1),
]
AUCS = [("ctr_auc", "Δ CTR AUC"), ("cvr_auc_clicked", "Δ CVR AUC (clicked)"), ("ctcvr_auc", "Δ CTCVR AUC"),
        ("entire_space_cvr_auc", "Δ entire-space CVR AUC")]
TOOLS = ["pytorch", "funnel"]
FUNNEL_NAME = {"naive": "naive-cvr", "naive-shared": "naive-cvr-shared", "escm2-ipw": "escm2-ips"}  # PyTorch name -> Funnel name


def load(paths):
    """{tool: {model: {seed: run}}}, models in order of first appearance."""
    runs = {}
    for path in paths:
        with open(path) as f:
            for number, line in enumerate(f, start=1):
                try:
                    run = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if not isinstance(run, dict) or "model" not in run:
                    continue
                tool = run.get("tool")
                if tool not in TOOLS:
                    raise SystemExit(f"{path}:{number}: tool {tool!r}, expected one of {', '.join(TOOLS)}")
                seeds = runs.setdefault(tool, {}).setdefault(run["model"], {})
                seed = run.get("seed")
                if seed in seeds:
                    print(f"{path}:{number}: {tool} {run['model']} seed {seed} again; the later run is kept",
                          file=sys.stderr)
                seeds[seed] = run
    return runs


def values(seeds, key):
    return [float(run[key]) for run in seeds.values() if run.get(key) is not None]


def mean(seeds, key):
    v = values(seeds, key)
    return statistics.fmean(v) if v else None


def cell(seeds, key, decimals):
    v = values(seeds, key)
    if not v:
        return "–"
    text = f"{statistics.fmean(v):.{decimals}f}"
    if len(v) >= 2:
        text += f" ± {statistics.stdev(v):.{decimals}f}"
    return text


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def main():
    paths = sys.argv[1:]
    if not paths or paths[0] in ("-h", "--help"):
        raise SystemExit(__doc__)
    runs = load(paths)
    if not runs:
        raise SystemExit("no runs (no JSON line with a \"model\" key)")
    for tool in TOOLS:
        models = runs.get(tool)
        if not models:
            continue
        present = [m for m in METRICS if any(values(seeds, m[0]) for seeds in models.values())]
        rows = [[model, *(cell(seeds, key, decimals) for key, _, decimals in present), str(len(seeds))]
                for model, seeds in models.items()]
        print(f"### {tool}\n\n" + table(["model", *(title for _, title, _ in present), "seeds"], rows) + "\n")

    pytorch, funnel = runs.get("pytorch", {}), runs.get("funnel", {})
    pairs = [(p, FUNNEL_NAME.get(p, p)) for p in pytorch if FUNNEL_NAME.get(p, p) in funnel]
    if not pairs:
        return
    heads = [(key, title) for key, title in AUCS
             if any(mean(pytorch[p], key) is not None and mean(funnel[f], key) is not None for p, f in pairs)]
    rows = []
    for p, f in pairs:
        row = [p if p == f else f"{p} ↔ {f}"]
        for key, _ in heads:
            a, b = mean(pytorch[p], key), mean(funnel[f], key)
            row.append("–" if a is None or b is None else f"{b - a:+.4f}")
        a, b = mean(pytorch[p], "train_seconds"), mean(funnel[f], "train_seconds")
        row.append("–" if a is None or not b else f"{a / b:.2f}")
        rows.append(row)
    print("### funnel − pytorch (mean AUC); train seconds pytorch / funnel\n\n"
          + table(["model", *(title for _, title in heads), "seconds pytorch / funnel"], rows))


if __name__ == "__main__":
    main()
