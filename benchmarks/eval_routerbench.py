"""The outcome router on RouterBench (Hu et al. 2024): validation accuracy vs cost against single models and the
oracle, AIQ of the router and of the zero router, and the cost at which the router reaches 95% of GPT-4's accuracy.

Data: ../shared/datasets/routerbench/{arc_challenge,mbpp,winograde}_train.parquet (skips cleanly without them).
Split: distinct prompts, 80% train / 20% validation, seed 0. Agents: the 11 models, priced at their mean train cost
per request (cost_per_call) with their train accuracy as quality_score and one shared capability (so the learned
quality, not a capability match, decides). The outcome router (linear head over the static embedder) learns from the
train split; the curve sweeps λ in argmax q̂ - λ·ĉ over the validation split, measured with the logged cost and
correctness of every model.

    python benchmarks/eval_routerbench.py
"""

from __future__ import annotations

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


def main() -> int:
    import tinydancer_duck as td
    from tinydancer_duck.replay._curves import cost_at_quality, curve

    data = load()
    if data is None:
        print(f"skipped: RouterBench files not found under {DATA}")
        return 0
    models = [c[: -len("|total_cost")] for c in data.columns if c.endswith("|total_cost")]
    prompts = data["prompt"].unique(maintain_order=True).to_list()
    order = np.random.default_rng(0).permutation(len(prompts))
    val_prompts = {prompts[i] for i in order[: len(prompts) // 5]}
    is_val = data["prompt"].is_in(list(val_prompts))
    train, val = data.filter(~is_val), data.filter(is_val)
    work = Path(tempfile.mkdtemp(prefix="routerbench-"))
    train.write_parquet(work / "train.parquet")
    val.write_parquet(work / "val.parquet")
    engine = td.Engine(work / "store")
    engine.register_agents([{"name": m, "agent_type": "llm", "capabilities": ["general"],
                             "cost_per_call": float(train[f"{m}|total_cost"].mean()),
                             "quality_score": float(train[m].mean())} for m in models])
    started = time.perf_counter()
    report = engine.outcomes.train_log(str(work / "train.parquet"), model="routerbench")
    trained = time.perf_counter() - started
    overall = next(r for r in report.to_pylist() if r["kind"] == "overall")
    table, result = curve(engine, str(work / "val.parquet"), points=80)
    rows = table.to_pylist()
    router = [r for r in rows if r["series"] == "router"]
    single = {r["label"]: r for r in rows if r["series"] == "zero_router"}
    oracle = next(r for r in rows if r["series"] == "oracle")
    gpt4 = single[GPT4]
    per_dollar = max(single.values(), key=lambda r: r["quality"] / r["cost"])
    best = max(single.values(), key=lambda r: r["quality"])
    r_cost = [r["cost"] for r in router]
    r_quality = [r["quality"] for r in router]
    target = 0.95 * gpt4["quality"]
    at95 = cost_at_quality(r_cost, r_quality, target)
    top = max(router, key=lambda r: (r["quality"], -r["cost"]))

    print(f"RouterBench validation: {val.height} prompts ({len(val_prompts)} distinct), train {train.height}; "
          f"outcome router trained in {trained:.1f} s, validation AUC {overall['auc']:.3f}, Brier {overall['brier']:.3f}")
    print(f"\n{'policy':52} {'accuracy':>9} {'$/1k requests':>14}")
    show = [("always GPT-4 (" + GPT4 + ")", gpt4), (f"best single model ({best['label']})", best),
            (f"best single model per dollar ({per_dollar['label']})", per_dollar)]
    show += [(f"router, {r['label']}", r) for r in router if r["on_hull"]]
    show += [("router, best accuracy on the curve", top), ("oracle", oracle)]
    for label, r in show:
        print(f"{label[:52]:52} {r['quality']:9.4f} {1000 * r['cost']:14.4f}")
    print(f"\nAIQ router {result['aiq_router']:.4f}   AIQ zero router {result['aiq_zero_router']:.4f}   "
          f"(cost range ${1000 * result['c_min']:.4f} .. ${1000 * result['c_max']:.4f} per 1k requests)")
    if np.isnan(at95):
        print(f"router never reaches 95% of GPT-4's accuracy ({target:.4f})")
    else:
        print(f"router reaches 95% of GPT-4's accuracy ({target:.4f}) at ${1000 * at95:.4f} per 1k requests, "
              f"{at95 / gpt4['cost']:.1%} of GPT-4's ${1000 * gpt4['cost']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
