"""Outcome models on RouterBench: head vs kNN vs matrix factorization vs ensemble, with and without Platt calibration.

Data: ../shared/datasets/routerbench/{arc_challenge,mbpp,winograde}_train.parquet (2,225 prompts, 11 models; skips
cleanly without them). Input: the engine's default embedding of the prompt text only (eval_name is never an input).

Protocol (seed 0): 5 outer folds by distinct prompt. Per model and outer fold: fit on the outer-train rows, predict
the outer-test rows (out-of-fold, OOF). Metrics on the OOF predictions: per-agent AUC, pooled Brier and log loss over
observed outcomes; the routing curve: for willingness to pay w on a fixed grid (0, 121 log-spaced values 1e-5..1 dollars
per unit of quality, ∞) each request takes argmax_a q̂[a] - ĉ[a]/w, ĉ[a] agent a's mean cost on the fold's training
rows; realized quality and logged cost of the chosen agents give one point per w (rows with every outcome observed).
AIQ (RouterBench's, :func:`tinydancer_duck.replay._curves.aiq`) of that curve and of the zero router (single agents)
over their shared cost range. Headline (nested): in each outer fold, a 4-fold cross-fit on the outer-train rows gives
their OOF predictions; the cheapest w whose OOF curve reaches 95% of GPT-4's accuracy on those rows is kept (else the
most accurate w); the model refit on all outer-train rows routes the outer-test fold with that w. Reported: held-out
accuracy / GPT-4 accuracy and cost / GPT-4 cost on the test folds (mean and per fold). Task oracle (a ceiling for pure
task identification; it uses eval_name and labels): per task the agent maximizing train accuracy - cost/w, w chosen
the same way. Predict throughput: 10,000 requests x 11 agents, one thread.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/eval_outcome_models.py [--only knn,mf] [--folds 5]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "routerbench"
FILES = ("arc_challenge", "mbpp", "winograde")
GPT4 = "gpt-4-1106-preview"
W_GRID = np.concatenate([[0.0], np.geomspace(1e-5, 1.0, 121), [np.inf]])
TARGET = 0.95
KNN = ("knn", {})
MF = ("mf", {"dim": 16})
H64 = ("head", {"hidden_dim": 64})
CONFIGS: list[tuple[str, str, dict[str, Any]]] = [
    ("head linear", "head", {}),
    ("head h64", "head", {"hidden_dim": 64}),
    ("head h128", "head", {"hidden_dim": 128}),
    ("knn", "knn", {}),
    ("mf d16", "mf", {"dim": 16}),
    ("ensemble knn+mf+h64", "ensemble", {"members": (KNN, MF, H64)}),
]
CONFIGS += [(f"{label} +platt", kind, {**hp, "calibration": "platt"}) for label, kind, hp in CONFIGS]


@dataclass
class Data:
    x: np.ndarray  # float32 (n, D) embeddings
    y: np.ndarray  # float64 (n, A) correctness, NaN unobserved
    cost: np.ndarray  # float64 (n, A) logged dollars
    task: np.ndarray  # (n,) eval_name: references only, never a model input
    group: np.ndarray  # (n,) distinct-prompt id
    agents: list[str]

    @property
    def full(self) -> np.ndarray:
        return ~np.isnan(self.y).any(axis=1)


def load() -> Data | None:
    paths = [DATA / f"{name}_train.parquet" for name in FILES]
    if not all(p.exists() for p in paths):
        return None
    from tinydancer_duck.embed import make_embedder

    frame = pl.concat([pl.read_parquet(p) for p in paths], how="vertical_relaxed")
    agents = [c[: -len("|total_cost")] for c in frame.columns if c.endswith("|total_cost")]
    x = make_embedder().embed(frame["prompt"].to_list())  # the engine's default (static) embedder
    group = np.unique(frame["prompt"].to_numpy(), return_inverse=True)[1]
    return Data(np.asarray(x, np.float32), frame.select(agents).to_numpy().astype(np.float64),
                frame.select([f"{a}|total_cost" for a in agents]).to_numpy().astype(np.float64),
                frame["eval_name"].to_numpy(), group, agents)


def folds_by_group(group: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Fold id (n,) per row: distinct groups dealt into k folds in a seeded order."""
    ids = np.unique(group)
    rank = np.empty(len(ids), np.int64)
    rank[np.random.default_rng(seed).permutation(len(ids))] = np.arange(len(ids))
    return rank[np.searchsorted(ids, group)] % k


# -- routing ----------------------------------------------------------------------------------------------------
def picks(q: np.ndarray, c_hat: np.ndarray) -> np.ndarray:
    """Chosen agent (len(W_GRID), n) for predicted quality q (n, A) and cost estimates c_hat (A,), scored as the
    router scores (:func:`tinydancer_duck._numeric.value_scores`: w = 0 cheapest, w = inf best quality)."""
    from tinydancer_duck._numeric import value_scores

    cost = np.broadcast_to(c_hat, q.shape)
    return np.stack([np.argmax(value_scores(q, cost, w), axis=1) for w in W_GRID])


def realized(pick: np.ndarray, y: np.ndarray, cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean observed quality and mean logged cost per grid point, (len(W_GRID),) each."""
    rows = np.arange(y.shape[0])[None, :]
    return y[rows, pick].mean(axis=1), cost[rows, pick].mean(axis=1)


def choose_w(quality: np.ndarray, cost: np.ndarray, target: float) -> int:
    """Grid index of the cheapest point reaching ``target``, else of the most accurate point."""
    ok = quality >= target
    return int(np.flatnonzero(ok)[np.argmin(cost[ok])]) if ok.any() else int(np.argmax(quality))


def curve_aiq(r_cost: np.ndarray, r_quality: np.ndarray, s_cost: np.ndarray, s_quality: np.ndarray
              ) -> tuple[float, float]:
    from tinydancer_duck.replay._curves import aiq

    everything = np.concatenate([r_cost, s_cost])
    lo, hi = float(everything.min()), float(everything.max())
    return aiq(r_cost, r_quality, lo, hi), aiq(s_cost, s_quality, lo, hi)


# -- models -----------------------------------------------------------------------------------------------------
Fitter = Callable[[np.ndarray, int], Callable[[np.ndarray], np.ndarray]]


def model_fitter(data: Data, kind: str, hyperparameters: dict[str, Any]) -> Fitter:
    """fitter(train_rows, seed) -> predict(rows) for one outcome model configuration."""
    from tinydancer_duck.learn._outcome_models import fit_outcome_model, predict_outcome_model

    def fitter(train: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
        weights = fit_outcome_model(kind, data.x[train], data.y[train], random_state=seed, **hyperparameters)
        return lambda rows: predict_outcome_model(weights, data.x[rows])
    return fitter


def task_oracle_fitter(data: Data) -> Fitter:
    """The task oracle as a 'model': each row's q̂ is its task's mean observed accuracy on the training rows."""
    def fitter(train: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
        tasks = np.unique(data.task)
        table = np.stack([np.nanmean(data.y[train][data.task[train] == t], axis=0) for t in tasks])
        return lambda rows: table[np.searchsorted(tasks, data.task[rows])]
    return fitter


def mean_fitter(data: Data) -> Fitter:
    """No features: every row gets each agent's mean training accuracy."""
    def fitter(train: np.ndarray, seed: int) -> Callable[[np.ndarray], np.ndarray]:
        mean = np.nanmean(data.y[train], axis=0)
        return lambda rows: np.broadcast_to(mean, (len(rows), len(mean)))
    return fitter


# -- protocol ---------------------------------------------------------------------------------------------------
def fold_sums(data: Data, q: np.ndarray, rows: np.ndarray, c_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed realized quality and cost per grid point over the fully observed ``rows`` (q: their predictions)."""
    keep = data.full[rows]
    quality, cost = realized(picks(q[keep], c_hat), data.y[rows[keep]], data.cost[rows[keep]])
    return quality * keep.sum(), cost * keep.sum()


def inner_choice(data: Data, fitter: Fitter, train: np.ndarray, k: int, seed: int) -> int:
    """Grid index of w chosen on ``train`` only: cross-fit OOF curve, cheapest w reaching 95% of GPT-4."""
    fold = folds_by_group(data.group[train], k, seed)
    quality, cost = np.zeros(len(W_GRID)), np.zeros(len(W_GRID))
    for g in range(k):
        tr, te = train[fold != g], train[fold == g]
        q_sum, c_sum = fold_sums(data, fitter(tr, seed + g)(te), te, data.cost[tr].mean(axis=0))
        quality, cost = quality + q_sum, cost + c_sum
    n = data.full[train].sum()
    gpt4 = data.agents.index(GPT4)
    return choose_w(quality / n, cost / n, TARGET * data.y[train][data.full[train], gpt4].mean())


def evaluate(data: Data, fitter: Fitter, outer: int, inner: int, seed: int) -> dict[str, Any]:
    """OOF predictions, OOF routing curve and the nested headline (module docstring) for one model."""
    fold = folds_by_group(data.group, outer, seed)
    pred = np.empty(data.y.shape)
    quality, cost, heads, seconds = np.zeros(len(W_GRID)), np.zeros(len(W_GRID)), [], 0.0
    gpt4 = data.agents.index(GPT4)
    for f in range(outer):
        train, test = np.flatnonzero(fold != f), np.flatnonzero(fold == f)
        started = time.perf_counter()
        pred[test] = fitter(train, seed + 10 * f)(test)
        seconds += time.perf_counter() - started
        c_hat = data.cost[train].mean(axis=0)
        q_sum, c_sum = fold_sums(data, pred[test], test, c_hat)
        quality, cost = quality + q_sum, cost + c_sum
        chosen = inner_choice(data, fitter, train, inner, seed + 10 * f + 1)
        full = test[data.full[test]]
        pick = picks(pred[full], c_hat)[chosen]
        q, c = data.y[full, pick].mean(), data.cost[full, pick].mean()
        heads.append((q / data.y[full, gpt4].mean(), c / data.cost[full, gpt4].mean(), W_GRID[chosen]))
    n = data.full.sum()
    return {"pred": pred, "quality": quality / n, "cost": cost / n, "folds": heads, "fit_seconds": seconds / outer}


def scores(data: Data, result: dict[str, Any]) -> dict[str, Any]:
    """Per-agent AUC, pooled Brier and log loss, AIQ, cost at 95% of GPT-4 on the OOF curve, headline means."""
    from tinydancer_duck.learn._outcome_metrics import auc
    from tinydancer_duck.replay._curves import cost_at_quality

    pred, y = result["pred"], data.y
    mask = ~np.isnan(y)
    aucs = np.array([auc(pred[mask[:, a], a], y[mask[:, a], a]) for a in range(y.shape[1])])
    p, t = np.clip(pred[mask], 1e-7, 1 - 1e-7), y[mask]
    full = data.full
    s_quality, s_cost = y[full].mean(axis=0), data.cost[full].mean(axis=0)
    aiq_router, aiq_zero = curve_aiq(result["cost"], result["quality"], s_cost, s_quality)
    gpt4 = data.agents.index(GPT4)
    at95 = cost_at_quality(result["cost"], result["quality"], TARGET * s_quality[gpt4])
    heads = np.array([h[:2] for h in result["folds"]])
    return {"auc": aucs, "brier": float(np.mean((p - t) ** 2)),
            "log_loss": float(-np.mean(t * np.log(p) + (1 - t) * np.log(1 - p))), "aiq": aiq_router,
            "aiq_zero": aiq_zero, "cost95": at95 / s_cost[gpt4], "head_quality": heads[:, 0].mean(),
            "head_cost": heads[:, 1].mean(), "folds": result["folds"], "fit_seconds": result["fit_seconds"]}


def throughput(data: Data, kind: str, hyperparameters: dict[str, Any], rows: int = 10_000) -> float:
    """Predicted rows per second for ``rows`` requests (embeddings tiled from the data), best of 3."""
    from tinydancer_duck.learn._outcome_models import fit_outcome_model, predict_outcome_model

    weights = fit_outcome_model(kind, data.x, data.y, random_state=0, **hyperparameters)
    x = np.resize(data.x, (rows, data.x.shape[1]))
    best = np.inf
    with threadpool_limits(1):  # the product runs BLAS at one thread inside DuckDB's UDFs
        for _ in range(3):
            started = time.perf_counter()
            predict_outcome_model(weights, x)
            best = min(best, time.perf_counter() - started)
    return rows / best


# -- report -----------------------------------------------------------------------------------------------------
def print_row(label: str, s: dict[str, Any], rate: float | None) -> None:
    auc = s["auc"]
    auc_text = "   -      -      -  " if np.isnan(auc).all() else \
        f"{np.nanmean(auc):6.3f} {np.nanmin(auc):6.3f} {np.nanmax(auc):6.3f}"
    cost95 = "never" if np.isnan(s["cost95"]) else f"{100 * s['cost95']:5.1f}%"
    print(f"{label:28} {auc_text} {s['brier']:6.4f} {s['log_loss']:6.4f} {s['aiq']:7.4f} {s['aiq_zero']:7.4f} "
          f"{cost95:>7} {100 * s['head_quality']:7.1f}% {100 * s['head_cost']:6.1f}% "
          f"{s['fit_seconds']:6.2f} {'' if rate is None else f'{rate:10,.0f}'}")


def print_header() -> None:
    print(f"{'model':28} {'AUC mean   min    max':20} {'Brier':>6} {'logloss':>6} {'AIQ':>7} {'AIQ0':>7} "
          f"{'OOF@95':>7} {'held-out acc':>8} {'cost':>7} {'fit s':>6} {'predict/s':>10}")


def selected(only: str | None) -> list[tuple[str, str, dict[str, Any]]]:
    if not only:
        return CONFIGS
    wanted = [w.strip() for w in only.split(",")]
    return [c for c in CONFIGS if any(w == c[0] or c[0].startswith(w + " ") or w == c[1] for w in wanted)]


def summary(results: dict[str, dict[str, Any]]) -> None:
    """Which models meet the product target, the best held-out figure, and the task-oracle reference."""
    models = {k: v for k, v in results.items() if k not in REFERENCES}
    met = [k for k, s in models.items() if s["head_quality"] >= TARGET and s["head_cost"] <= 0.25
           and s["aiq"] > s["aiq_zero"]]
    reaching = {k: s for k, s in models.items() if s["head_quality"] >= TARGET} or models
    best = min(reaching, key=lambda k: reaching[k]["head_cost"])
    top_aiq = max(models, key=lambda k: models[k]["aiq"])
    oracle = results[REFERENCES[1]]
    print(f"\ntarget: held-out >= 95% of GPT-4's accuracy at <= 25% of its cost, AIQ above the zero router: "
          f"{'met by ' + ', '.join(met) if met else 'met by no model'}")
    print(f"cheapest held-out at >= 95%: {best} ({100 * models[best]['head_quality']:.1f}% accuracy, "
          f"{100 * models[best]['head_cost']:.1f}% cost); best OOF AIQ: {top_aiq} ({models[top_aiq]['aiq']:.4f}, "
          f"zero router {models[top_aiq]['aiq_zero']:.4f})")
    print(f"task oracle (labels, per-task constant agent): held-out {100 * oracle['head_quality']:.1f}% accuracy at "
          f"{100 * oracle['head_cost']:.1f}% cost; OOF hull reaches 95% at {100 * oracle['cost95']:.1f}% cost "
          f"(random mixing of two w); AIQ {oracle['aiq']:.4f}")


REFERENCES = ("agent means (no features)", "task oracle (labels)")


def print_agent_aucs(results: dict[str, dict[str, Any]], agents: list[str]) -> None:
    print("\nper-agent OOF AUC: " + ", ".join(f"a{j} {name}" for j, name in enumerate(agents)))
    print(f"{'model':28} " + " ".join(f"{'a' + str(j):>5}" for j in range(len(agents))))
    for label, s in results.items():
        print(f"{label:28} " + " ".join(f"{v:5.3f}" for v in s["auc"]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated model labels or kinds (default: all)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--inner-folds", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = load()
    if data is None:
        print(f"skipped: RouterBench files not found under {DATA}")
        return 0
    gpt4 = data.agents.index(GPT4)
    print(f"RouterBench: {len(data.y)} prompts, {len(data.agents)} agents, {data.full.sum()} fully observed; "
          f"GPT-4 accuracy {np.nanmean(data.y[:, gpt4]):.3f}, ${1000 * data.cost[:, gpt4].mean():.2f}/1k requests; "
          f"{args.folds} outer x {args.inner_folds} inner folds, seed {args.seed}\n")
    print_header()
    runs = [(REFERENCES[0], mean_fitter(data), None), (REFERENCES[1], task_oracle_fitter(data), None)]
    runs += [(label, model_fitter(data, kind, hp), (kind, hp)) for label, kind, hp in selected(args.only)]
    results = {}
    for label, fitter, config in runs:
        results[label] = s = scores(data, evaluate(data, fitter, args.folds, args.inner_folds, args.seed))
        print_row(label, s, None if config is None else throughput(data, *config))
        print(" " * 4 + "per fold (acc%, cost%, w): " + ", ".join(
            f"{100 * q:.1f}/{100 * c:.1f}/{w:.2g}" for q, c, w in s["folds"]), flush=True)
    print_agent_aucs(results, data.agents)
    summary(results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
