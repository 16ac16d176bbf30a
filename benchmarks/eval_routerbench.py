"""The learned router on RouterBench (Hu et al. 2024), with every operating point chosen on training data only.

Data: ../shared/datasets/routerbench/{arc_challenge,mbpp,winograde}_train.parquet (skips cleanly without them):
2,225 prompts, 11 models, each model's 0/1 correctness and dollar cost per prompt.

Protocol (k-fold cross-fitting, seeded, folds by prompt): for each of ``--folds`` outer folds, a fresh store is
built from the other folds only, exactly as a user would: ``tinydancer agents import`` (each model priced at its mean
logged cost per request, its accuracy as quality_score), ``train-outcomes`` (which cross-fits its own inner folds on
those training rows and calibrates the willingness to pay on their out-of-fold curve), then ``calibrate`` for the
target (default: 95% of the best single model's accuracy, which is GPT-4's). The held-out fold is then replayed with
``simulate --willingness-to-pay w`` and measured with its logged correctness and cost. Nothing of the held-out fold is
seen before that replay. Also per fold: the held-out cost-quality curve's AIQ against the zero router (single
models), the held-out per-model AUC of the outcome router, and a check that ``ruvector_route(request,
willingness_to_pay := w)`` in SQL chooses the same model as the replay for every held-out request.

    python benchmarks/eval_routerbench.py [--folds 5] [--target 0.95] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

DATA = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "routerbench"
FILES = ("arc_challenge", "mbpp", "winograde")
GPT4 = "gpt-4-1106-preview"


def load() -> pl.DataFrame | None:
    paths = [DATA / f"{name}_train.parquet" for name in FILES]
    if not all(p.exists() for p in paths):
        return None
    return pl.concat([pl.read_parquet(p) for p in paths], how="vertical_relaxed")


def fold_of_prompt(data: pl.DataFrame, folds: int, seed: int = 0) -> np.ndarray:
    prompts = data["prompt"].unique(maintain_order=True).to_list()
    order = np.random.default_rng(seed).permutation(len(prompts))
    fold = dict(zip((prompts[i] for i in order), np.arange(len(prompts)) % folds))
    return np.array([fold[p] for p in data["prompt"].to_list()])


def held_out_auc(engine, test: pl.DataFrame, models: list[str]) -> dict[str, float]:
    from tinydancer_duck.learn._outcome_metrics import auc

    model = engine.snapshot().outcome
    predicted = model.predict(engine.embed(test["prompt"].to_list()))
    out = {}
    for j, name in enumerate(model.labels):
        observed = test[name].to_numpy().astype(float)
        known = ~np.isnan(observed)
        out[name] = auc(predicted[known, j], observed[known])
    return {m: out[m] for m in models}


def run_fold(train: pl.DataFrame, test: pl.DataFrame, work: Path, target: float, models: list[str]) -> dict:
    import tinydancer_duck as td
    from tinydancer_duck.replay import curve, simulate

    train.write_parquet(work / "train.parquet")
    test.write_parquet(work / "test.parquet")
    engine = td.Engine(work / "store")
    engine.import_agents(str(work / "train.parquet"))
    started = time.perf_counter()
    engine.outcomes.train_log(str(work / "train.parquet"))
    seconds = time.perf_counter() - started
    knob = engine.outcomes.knob(quality_share=target)
    w = knob["willingness_to_pay"]
    rows, summary = simulate(engine, str(work / "test.parquet"), willingness_to_pay=w)
    con = engine.connect()
    live = [a for (a,) in con.execute("SELECT ruvector_route(prompt, willingness_to_pay := ?).agent_name "
                                      "FROM read_parquet(?)", [w, str(work / "test.parquet")]).fetchall()]
    same = sum(a == b for a, b in zip(live, rows["agent_name"].to_pylist()))
    _, result = curve(engine, str(work / "test.parquet"), points=60)
    gpt4_quality, gpt4_cost = float(test[GPT4].mean()), float(test[f"{GPT4}|total_cost"].mean())
    return {"w": w, "train_knob": knob, "quality": summary["mean_quality"], "cost": summary["mean_cost"],
            "gpt4_quality": gpt4_quality, "gpt4_cost": gpt4_cost, "aiq_router": result["aiq_router"],
            "aiq_zero": result["aiq_zero_router"], "auc": held_out_auc(engine, test, models),
            "same_as_sql": same, "n": test.height, "seconds": seconds,
            "observed": summary["observed_rows"], "routed": summary["routed"],
            "mix": {m["agent"]: m["share"] for m in summary["agent_mix"]}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--target", type=float, default=0.95, help="share of the best model's accuracy")
    parser.add_argument("--seed", type=int, default=0, help="seeds the assignment of prompts to folds")
    args = parser.parse_args(argv)
    data = load()
    if data is None:
        print(f"skipped: RouterBench files not found under {DATA}")
        return 0
    models = [c[: -len("|total_cost")] for c in data.columns if c.endswith("|total_cost")]
    fold = fold_of_prompt(data, args.folds, args.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="routerbench-") as tmp:
        for k in range(args.folds):
            work = Path(tmp) / f"fold{k}"
            work.mkdir()
            r = run_fold(data.filter(pl.Series(fold != k)), data.filter(pl.Series(fold == k)), work, args.target,
                         models)
            results.append(r)
            print(f"fold {k}: w={r['w']:.4g} (train: {r['train_knob']['quality_share']:.1%} of the best at "
                  f"${r['train_knob']['cost_per_1k']:.3f}/1k)  held-out accuracy {r['quality']:.4f} = "
                  f"{r['quality'] / r['gpt4_quality']:.1%} of GPT-4 at ${1000 * r['cost']:.3f}/1k = "
                  f"{r['cost'] / r['gpt4_cost']:.1%} of GPT-4's cost; AIQ {r['aiq_router']:.4f} vs zero router "
                  f"{r['aiq_zero']:.4f}; SQL route = replay on {r['same_as_sql']}/{r['n']}; "
                  f"trained in {r['seconds']:.1f} s", flush=True)
    share_q = np.array([r["quality"] / r["gpt4_quality"] for r in results])
    share_c = np.array([r["cost"] / r["gpt4_cost"] for r in results])
    print(f"\nheld-out over {args.folds} folds ({sum(r['n'] for r in results)} prompts), knob chosen on training folds "
          f"for {args.target:.0%} of the best model: accuracy {share_q.mean():.1%} of GPT-4 (min {share_q.min():.1%}), "
          f"cost {share_c.mean():.1%} of GPT-4 (max {share_c.max():.1%})")
    print(f"AIQ router {np.mean([r['aiq_router'] for r in results]):.4f} vs zero router "
          f"{np.mean([r['aiq_zero'] for r in results]):.4f} (held-out curves, mean over folds)")
    print(f"quality figures observed in the log: {sum(r['observed'] for r in results)} of "
          f"{sum(r['routed'] for r in results)} decisions (the rest: outcomes missing from the file, predicted)")
    print("\nheld-out AUC of the outcome router per model (mean over folds):")
    for m in models:
        print(f"  {m:40} {np.nanmean([r['auc'][m] for r in results]):.3f}")
    mix = {m: np.mean([r["mix"].get(m, 0.0) for r in results]) for m in models}
    print("\nshare of held-out requests per model at the chosen knob: " + ", ".join(
        f"{m.split('/')[-1]} {s:.1%}" for m, s in sorted(mix.items(), key=lambda kv: -kv[1]) if s > 0.005))
    return 0


if __name__ == "__main__":
    sys.exit(main())
