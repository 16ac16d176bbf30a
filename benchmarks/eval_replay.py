"""Counterfactual replay of production logs, measured where the truth is known: RouterBench, every outcome logged.

Data: ../shared/datasets/routerbench/{arc_challenge,mbpp,winograde}_train.parquet (skips cleanly without them): per
prompt, 11 models' 0/1 correctness and dollar cost. Prompts missing any model's outcome are dropped (the truth needs
all of them).

A production log keeps one model per prompt: a logging policy picks it (seeded) and the log holds that model's
outcome, its cost and the policy's propensity, nothing else. Logging policies:

- ``uniform``: each model with probability 1/11;
- ``length``: context-dependent, long prompts to cheap models (p ∝ exp(-γ z_len z_price), z standardized, γ = 0.5:
  the cheapest model gets 2% of the shortest prompts); ``length-strong``: γ = 1 (0.07%: a stress test where some
  (task, model) pairs are practically never logged);
- ``category``: context-dependent, each task prefers another model (60%), the rest uniform;
- ``cheap``: low exploration, 90% to the cheapest model, 1% to each other;
- ``deterministic``: one fixed model per task (propensity 1; every other model is never tried).

Per log, as a user would: ``agents import`` (each model priced per call at its mean logged cost, scored by its mean
logged outcome), ``train-outcomes --holdout 0.2`` (the learned router and its calibration from the other 80%), then
a replay of the held-out 20% under each target policy: the router's objectives cost, quality, balanced and learned,
and synthetic ones (always GPT-4; the router at a fixed low and high willingness to pay). The truth of a cell (log,
target) is the mean correctness and cost of the target's choices on the replayed prompts, from the full matrix.
Nothing is tuned on what is printed: the estimators, shrinkage and interval methods were chosen on these train logs,
and the issue's own test logs are another split.

Printed per logging policy and estimator: mean and max |estimated - true quality| over cells, the 95% intervals'
coverage of the truth and mean width; per cell with ``--cells``; and the counterfactual cost's relative error.
``today`` is the replay before issue 24: observed, else the raw category mean, cost from the registered price.

    python benchmarks/eval_replay.py [--seeds 3] [--logs uniform,length,cheap] [--cells]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import polars as pl

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "routerbench"
FILES = ("arc_challenge", "mbpp", "winograde")
GPT4 = "gpt-4-1106-preview"
HOLDOUT = 0.2
LOGS = ("uniform", "length", "length-strong", "category", "cheap", "deterministic")
TARGETS = ("cost", "quality", "balanced", "learned", "gpt-4", "w-low", "w-high")


def load() -> tuple[pl.DataFrame, list[str]] | None:
    paths = [DATA / f"{name}_train.parquet" for name in FILES]
    if not all(p.exists() for p in paths):
        return None
    data = pl.concat([pl.read_parquet(p) for p in paths], how="vertical_relaxed")
    models = [c[: -len("|total_cost")] for c in data.columns if c.endswith("|total_cost")]
    return data.drop_nulls(models).filter(pl.all_horizontal(pl.col(models).is_not_nan())), models


def logging_policy(kind: str, data: pl.DataFrame, models: list[str]) -> np.ndarray:
    """float (n, A): the probability that the logging policy ``kind`` picks each model for each prompt."""
    n, a = data.height, len(models)
    price = np.log(data.select([f"{m}|total_cost" for m in models]).mean().to_numpy()[0])
    cheapest = int(np.argmin(price))
    if kind == "uniform":
        return np.full((n, a), 1.0 / a)
    if kind.startswith("length"):
        length = np.log(data["prompt"].str.len_bytes().to_numpy().astype(float))
        z, s = (length - length.mean()) / length.std(), (price - price.mean()) / price.std()
        logits = -(1.0 if kind == "length-strong" else 0.5) * np.outer(z, s)
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)
    task = data["eval_name"].to_numpy()
    tasks = sorted(set(task))
    if kind == "cheap":
        p = np.full((n, a), 0.1 / (a - 1))
        p[:, cheapest] = 0.9
        return p
    favourite = {t: (cheapest + 3 * (k + 1)) % a for k, t in enumerate(tasks)}
    p = np.zeros((n, a)) if kind == "deterministic" else np.full((n, a), 0.4 / (a - 1))
    for t, m in favourite.items():
        p[task == t] = 0.0 if kind == "deterministic" else 0.4 / (a - 1)
        p[task == t, m] = 1.0 if kind == "deterministic" else 0.6
    return p


def bandit_log(data: pl.DataFrame, models: list[str], p: np.ndarray, rng: np.random.Generator,
               propensity: bool = True) -> pl.DataFrame:
    """The production log: per prompt one model drawn from ``p``, its outcome, cost and propensity."""
    u = rng.random(len(p))[:, None]
    chosen = np.minimum((np.cumsum(p, axis=1) < u).sum(axis=1), len(models) - 1)
    rows = np.arange(len(p))
    quality = data.select(models).to_numpy()[rows, chosen]
    cost = data.select([f"{m}|total_cost" for m in models]).to_numpy()[rows, chosen]
    log = pl.DataFrame({"sample_id": data["sample_id"], "prompt": data["prompt"], "eval_name": data["eval_name"],
                        "agent": np.array(models, dtype=object)[chosen].tolist(), "quality": quality, "cost": cost})
    return log.with_columns(pl.Series("propensity", p[rows, chosen])) if propensity else log


def target_options(name: str, models: list[str], knob: float) -> dict:
    if name == "gpt-4":
        return {"optimize_for": "quality", "excluded_agents": [m for m in models if m != GPT4]}
    if name in ("w-low", "w-high"):
        return {"optimize_for": "balanced", "willingness_to_pay": knob * (0.1 if name == "w-low" else 10.0)}
    return {"optimize_for": name}


def replay_cell(engine, log: str, options: dict, truth: tuple[np.ndarray, np.ndarray], old: dict,
                holdout: float | None) -> dict:
    """Every estimator and interval of one (log, target) cell, from one pass over the held-out rows."""
    from tinydancer_duck._offpolicy import one_hot
    from tinydancer_duck.options import INTERVALS, Policy
    from tinydancer_duck.replay._evaluation import Evaluation
    from tinydancer_duck.replay._frames import Replay
    from tinydancer_duck.replay._intervals import FigureSums
    from tinydancer_duck.replay._simulate import simulate_frames

    policy = Policy.of(holdout=holdout, **options)
    replay = Replay(engine.snapshot(), log, policy)
    figures = FigureSums(replay.evidence.cells, keep_terms=True)
    rows, picks, old_q, old_c = [], [], [], []
    for frame, agent, _, _ in simulate_frames(replay, optimize_for=policy.optimize_for, budget=None):
        figures.add(frame, one_hot(agent, replay.agents.size))
        rows.append(frame.log.index)
        picks.append(agent)
        old_q.append(old["quality"](frame, agent))
        old_c.append(old["cost"](frame, agent))
    row, pick = np.concatenate(rows), np.concatenate(picks)
    column = np.array([old["models"].index(name) for name in replay.names])[pick]  # snapshot order -> data's
    q_true, c_true = truth[0][row, column].mean(), truth[1][row, column].mean()
    out = {"truth": q_true, "cost_truth": c_true, "today": float(np.concatenate(old_q).mean()),
           "today_cost": float(np.concatenate(old_c).mean()), "n": len(row),
           "ess": figures.effective_sample_size(), "untried": figures.positivity}
    estimators = ("dm", "ips", "snips", "dr", "blend") if replay.evidence.propensities else ("dm",)
    for estimator in estimators:
        for method in (INTERVALS if estimator != "blend" else ("model",)):
            ev = Evaluation(estimator, 0.95, method, "logged")
            out[(estimator, method)] = ev.quality(figures, replay.evidence)
    out["cost"] = Evaluation("dm", 0.95, "model", "logged").cost(figures, replay.evidence)
    return out


def old_evaluation(log: pl.DataFrame, models: list[str]) -> dict:
    """The replay before issue 24: the logged outcome, else the raw mean of the category (whole log), and the
    registered price (the router's estimate) for a cost the log does not hold."""
    means = log.group_by("eval_name", "agent").agg(pl.col("quality").mean())
    table = {(c, a): q for c, a, q in means.iter_rows()}

    names = sorted(models)  # the snapshot's order

    def quality(frame, agent):
        category = frame.log.columns["category"].to_pylist()
        rows = np.arange(len(agent))
        fallback = np.array([table.get((c, names[a]), np.nan) for c, a in zip(category, agent)])
        prior = np.array([frame.quality[i, a] for i, a in enumerate(agent)])
        fallback = np.where(np.isnan(fallback), prior, fallback)
        return np.where(frame.actual == agent, frame.reward, fallback)[rows]

    def cost(frame, agent):
        rows = np.arange(len(agent))
        logged = frame.log.columns["cost"]
        return np.where(frame.actual == agent, logged, frame.estimated[rows, agent])

    return {"quality": quality, "cost": cost, "models": models}


def run_log(kind: str, seed: int, data: pl.DataFrame, models: list[str], work: Path, protocol: str
            ) -> dict[str, dict]:
    """One production log and every target replayed over it. ``protocol`` "holdout": the store is built from the
    production log itself (agents import, train-outcomes --holdout 0.2) and its held-out 20% is replayed; "split":
    the store is built from a RouterBench-shaped log of 60% of the prompts (every outcome known) and the production
    log of the other 40% is replayed whole (a router trained elsewhere, evaluated on new traffic)."""
    import tinydancer_duck as td

    engine = td.Engine(work / f"store-{kind}-{seed}-{protocol}")
    holdout = HOLDOUT
    if protocol == "split":
        test = _split(data)
        data.filter(~pl.Series(test)).write_parquet(work / "train.parquet")
        data, holdout = data.filter(pl.Series(test)), None
        engine.import_agents(str(work / "train.parquet"))
        engine.outcomes.train_log(str(work / "train.parquet"))
    truth = (data.select(models).to_numpy(), data.select([f"{m}|total_cost" for m in models]).to_numpy())
    log = bandit_log(data, models, logging_policy(kind, data, models), np.random.default_rng(seed))
    path = work / f"{kind}-{seed}-{protocol}.parquet"
    log.write_parquet(path)
    if protocol == "holdout":
        engine.import_agents(str(path))
        engine.outcomes.train_log(str(path), holdout=HOLDOUT)
    knob = engine.outcomes.knob()["willingness_to_pay"]
    old = old_evaluation(log, models)
    return {target: replay_cell(engine, str(path), target_options(target, models, knob), truth, old, holdout)
            for target in TARGETS}


def _split(data: pl.DataFrame, share: float = 0.4) -> np.ndarray:
    """bool (n,): the prompts of the test split (by a hash of the prompt, the same on every run)."""
    from tinydancer_duck._logs import held_out

    return held_out(data["prompt"].to_arrow(), share)


def report(results: dict[tuple[str, int], dict[str, dict]], show_cells: bool) -> None:
    by_log: dict[str, list[dict]] = defaultdict(list)
    for (kind, _), cells in results.items():
        by_log[kind].extend(cells.values())
    print(f"\n{'log':14} {'estimator':18} {'cells':>5} {'mean |err|':>10} {'max |err|':>10} "
          f"{'coverage':>9} {'width':>7}")
    for kind, cells in by_log.items():
        keys = sorted({k for c in cells for k in c if isinstance(k, tuple)})
        errors = np.array([c["today"] - c["truth"] for c in cells])
        print(f"{kind:14} {'today':18} {len(cells):5} {np.abs(errors).mean():10.4f} {np.abs(errors).max():10.4f}")
        for key in keys:
            est = np.array([c[key][0] for c in cells], float)
            low = np.array([np.nan if c[key][1] is None else c[key][1] for c in cells], float)
            high = np.array([np.nan if c[key][2] is None else c[key][2] for c in cells], float)
            truth = np.array([c["truth"] for c in cells])
            err = np.abs(est - truth)
            cover = np.mean((low <= truth + 1e-12) & (truth <= high + 1e-12))
            print(f"{'':14} {key[0] + '/' + key[1]:18} {len(cells):5} {np.nanmean(err):10.4f} {np.nanmax(err):10.4f} "
                  f"{cover:9.2f} {np.nanmean(high - low):7.3f}")
        priced = [c for c in cells if c["cost"][0] is not None]
        rel = np.array([abs(c["cost"][0] - c["cost_truth"]) / c["cost_truth"] for c in priced])
        old = np.array([abs(c["today_cost"] - c["cost_truth"]) / c["cost_truth"] for c in priced])
        covered = np.mean([c["cost"][1] <= c["cost_truth"] <= c["cost"][2] for c in priced])
        print(f"{'':14} cost: relative error mean {rel.mean():.1%} max {rel.max():.1%} (today {old.mean():.1%}, "
              f"max {old.max():.1%}); interval coverage {covered:.2f}")
    if show_cells:
        print(f"\n{'log':14} {'seed':>4} {'target':9} {'truth':>6} {'today':>6} {'dm':>6} {'dr':>6} {'ess':>6} "
              f"{'untried':>7} {'cost':>8} {'true':>8}")
        for (kind, seed), cells in results.items():
            for target, c in cells.items():
                dr = c.get(("dr", "influence"), (np.nan,))[0]
                print(f"{kind:14} {seed:4} {target:9} {c['truth']:6.3f} {c['today']:6.3f} "
                      f"{c[('dm', 'model')][0] or np.nan:6.3f} {dr or np.nan:6.3f} {c['ess']:6.0f} "
                      f"{c['untried']:7.0f} {1000 * (c['cost'][0] or np.nan):8.4f} {1000 * c['cost_truth']:8.4f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--logs", default=",".join(LOGS))
    parser.add_argument("--cells", action="store_true", help="print every (log, seed, target) cell")
    parser.add_argument("--protocol", choices=("holdout", "split"), default="holdout",
                        help="holdout: the store learns from the production log's other 80%%; split: from a "
                             "RouterBench-shaped log of other prompts (run_log)")
    parser.add_argument("--save", default=None, metavar="PATH", help="pickle the cells' results to PATH")
    args = parser.parse_args()
    loaded = load()
    if loaded is None:
        print(f"skipped: RouterBench files not found under {DATA}")
        return 0
    data, models = loaded
    started = time.perf_counter()
    results = {}
    with tempfile.TemporaryDirectory(prefix="eval-replay-") as tmp:
        for kind in args.logs.split(","):
            for seed in range(args.seeds):
                results[(kind, seed)] = run_log(kind, seed, data, models, Path(tmp), args.protocol)
                print(f"{kind} seed {seed}: {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    replayed = np.mean([c["n"] for r in results.values() for c in r.values()])
    print(f"RouterBench train logs: {data.height} prompts, {len(models)} models; {args.seeds} seeds per logging "
          f"policy; protocol {args.protocol}: {replayed:.0f} prompts replayed per log")
    report(results, args.cells)
    if args.save:
        import pickle

        Path(args.save).write_bytes(pickle.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
