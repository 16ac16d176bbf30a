"""Choose the calibration levels on training data only, then report them on held-out data (issue 13).

Semantic routes (CLINC150, 150 routes, each its intent name + 5 train utterances, no fitting): the default threshold
is the background null's ROUTE_LEVEL quantile (tinydancer_duck/embed/_calibration.py). On CLINC150 *train* (other
train utterances and oos_train) the script picks the lowest level that rejects >= 80% of out-of-scope queries, then
ROUTE_MARGIN, the smallest lead over the runner-up at which 80% of the routes' decisions are right; it reports those
on val + oos_val, which played no part in the choice.

Capability matching: MATCH_LEVEL is the level under which the demo's agents (tinydancer_duck/datasets/agents.json, at their own
prices, under ``balanced``) send the most CLINC150 *train* queries of the domains they cover to the agent a person
would pick. Reported, through the product's own routing: 9 agents described by 4-7 capability words (one per CLINC150
domain, banking and credit cards merged) at equal prices, so the match alone decides, on CLINC150 val and the 10,003
Banking77 queries (all banking); and the demo's agents on Banking77.

Usage: ``python benchmarks/eval_calibration.py [--embedder static | --table T.npy]`` (Banking77 from ../shared).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinydancer_duck.embed import StaticEmbedder, background, make_embedder, null_scores

SHARED = REPO.parent / "shared" / "datasets"
LEVELS = (0.5, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.98, 0.985, 0.99, 0.995, 0.999)
MARGINS = (0.0, 0.01, 0.02, 0.03, 0.04, 0.05, 0.08)
OOS_TARGET = 0.8
#: Agents a person would write for the CLINC150 domains: short capability lists, no look at the queries.
AGENTS = {
    "banking": ["banking", "bank accounts", "payments", "money transfers", "credit cards", "bills", "fraud"],
    "kitchen_and_dining": ["cooking", "recipes", "nutrition", "restaurants", "food"],
    "home": ["music", "calendar", "reminders", "to-do lists", "shopping lists", "smart home"],
    "auto_and_commute": ["cars", "car maintenance", "driving directions", "traffic", "gas stations", "rides"],
    "travel": ["travel", "flights", "hotels", "visas", "luggage", "translation"],
    "utility": ["weather", "alarms", "timers", "time and date", "calculator", "phone calls"],
    "work": ["work", "paid time off", "payroll", "insurance", "meetings", "taxes"],
    "small_talk": ["small talk", "jokes", "chit-chat", "questions about the assistant"],
    "meta": ["assistant settings", "language", "volume", "voice", "yes or no answers"],
}


def load() -> tuple[dict, dict[str, str]]:
    clinc = json.loads((REPO / "tinydancer_duck" / "datasets" / "clinc150_train_val.json").read_text())
    domains = json.loads((REPO / "tinydancer_duck" / "datasets" / "clinc150_domains.json").read_text())
    domain_of = {i: ("banking" if d == "credit_cards" else d) for d, intents in domains.items() for i in intents}
    return clinc, domain_of


def route_scores(embedder, clinc: dict) -> dict[str, object]:
    """Route vectors, their background null, and the per-route score of train and val queries."""
    by: dict[str, list[str]] = {}
    for text, intent in clinc["train"]:
        by.setdefault(intent, []).append(text)
    intents = sorted(by)
    texts, owner = [], []
    for r, intent in enumerate(intents):
        for text in [intent.replace("_", " "), *by[intent][:5]]:
            texts.append(text)
            owner.append(r)
    vectors = embedder.embed(texts)
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]

    def score(x: np.ndarray) -> np.ndarray:
        return np.maximum.reduceat(x @ vectors.T, starts, axis=1)

    def split(pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        labels = np.array([intents.index(i) if i in intents else -1 for _, i in pairs])
        return score(embedder.embed([t for t, _ in pairs])), labels

    train = [(t, i) for i in intents for t in by[i][5:25]] + [(t, "oos") for t, _ in clinc["oos_train"]]
    val = [tuple(p) for p in clinc["val"]] + [(t, "oos") for t, _ in clinc["oos_val"]]
    null = background(embedder).text_null(6)  # every route: its name and 5 utterances
    return {"null": null, "train": split(train), "val": split(val)}


def route_quality(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """(in-scope accuracy, out-of-scope rejection) of 'the best route if it clears the threshold'."""
    best, top = scores.argmax(axis=1), scores.max(axis=1)
    predicted = np.where(top >= threshold, best, -1)
    inside = labels >= 0
    return float((predicted[inside] == labels[inside]).mean()), float((predicted[~inside] == -1).mean())


def agent_engine(embedder, store: Path, agents: dict[str, list[str]] = AGENTS):
    """An engine whose agents are ``agents`` at equal prices, latency and quality: the match alone decides."""
    import tinydancer_duck as td

    engine = td.Engine(store, embedder=embedder)
    engine.register_agents([{"name": name, "agent_type": "tool", "capabilities": caps, "cost_per_call": 0.001,
                             "avg_latency_ms": 500, "quality_score": 0.9} for name, caps in agents.items()])
    return engine


def agent_scores(engine, clinc: dict, domain_of: dict[str, str]) -> dict[str, object]:
    """The product's own similarity (AgentSnapshot.similarity) of train and val queries to the agents."""
    agents = engine.snapshot().agents
    names = agents.name_list()

    def split(pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        labels = np.array([names.index(domain_of[i]) if i in domain_of else -1 for _, i in pairs])
        return agents.similarity(engine.embed([t for t, _ in pairs])), labels

    return {"null": null_scores(background(engine.embedder).vectors, agents.similarity),
            "train": split([tuple(p) for p in clinc["train"][::3]] + [(t, "oos") for t, _ in clinc["oos_train"]]),
            "val": split([tuple(p) for p in clinc["val"]] + [(t, "oos") for t, _ in clinc["oos_val"]])}


def agent_quality(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """(right agent among in-domain queries, out-of-scope queries matching no agent)."""
    best, top = scores.argmax(axis=1), scores.max(axis=1)
    predicted = np.where(top >= threshold, best, -1)
    inside = labels >= 0
    right = float((predicted[inside] == labels[inside]).mean()) if inside.any() else float("nan")
    rejected = float((predicted[~inside] == -1).mean()) if (~inside).any() else float("nan")
    return right, rejected


DEMO_RIGHT = {"banking": "banking-assistant", "credit_cards": "banking-assistant", "travel": "travel-concierge",
              "home": "home-automation", "utility": "home-automation", "kitchen_and_dining": "gpt-4o-mini",
              "small_talk": "gpt-4o-mini"}


def demo_engine(embedder, store: Path):
    """An engine with the demo's agents (tinydancer_duck/datasets/agents.json: their real, different prices)."""
    import tinydancer_duck as td

    engine = td.Engine(store, embedder=embedder)
    engine.register_agents(json.loads((REPO / "tinydancer_duck" / "datasets" / "agents.json").read_text()))
    return engine


def choose_match_level(embedder, store: Path, clinc: dict) -> tuple[float, dict[float, float]]:
    """The level under which the demo's agents, at their own prices and under ``balanced``, route the most CLINC150
    *train* queries of the domains they cover to the agent a person would pick (DEMO_RIGHT). Swept through the
    product path by setting the registry's MATCH_LEVEL for each fresh engine."""
    import tinydancer_duck as td
    import tinydancer_duck.registry._registry as registry

    domains = json.loads((REPO / "tinydancer_duck" / "datasets" / "clinc150_domains.json").read_text())
    domain_of = {i: d for d, intents in domains.items() for i in intents}
    train = [(t, DEMO_RIGHT[domain_of[i]]) for t, i in clinc["train"][::3] if domain_of[i] in DEMO_RIGHT]
    demo_engine(embedder, store)
    shipped, shares = registry.MATCH_LEVEL, {}
    try:
        for level in LEVELS[:6]:
            registry.MATCH_LEVEL = level
            shares[level] = routed_share(td.Engine(store, embedder=embedder), [t for t, _ in train],
                                         [r for _, r in train])
    finally:
        registry.MATCH_LEVEL = shipped
    return max(shares, key=shares.get), shares


def choose_margin(scores: np.ndarray, labels: np.ndarray, threshold: float) -> float:
    """The smallest margin over the runner-up at which 80% of the routes' decisions on in-scope queries are right."""
    ordered = np.sort(scores, axis=1)
    best, first, second = scores.argmax(axis=1), ordered[:, -1], ordered[:, -2]
    inside = labels >= 0
    for margin in MARGINS:
        decided = inside & (first >= threshold) & (first - second >= margin)
        if decided.any() and (best[decided] == labels[decided]).mean() >= 0.8:
            return margin
    return MARGINS[-1]


def routed_share(engine, texts: list[str], right: str | list[str]) -> float:
    """Share of ``texts`` that ``engine.route`` (balanced, the product path) sends to the right agent(s)."""
    chosen = np.array(engine.route(texts)["agent_name"].to_pylist(), dtype=object)
    wanted = np.array(right if isinstance(right, list) else [right] * len(texts), dtype=object)
    return float(np.mean(chosen == wanted))


def choose_route_level(null, train: tuple[np.ndarray, np.ndarray]) -> float:
    """The lowest level whose threshold rejects >= OOS_TARGET of the out-of-scope train queries."""
    for level in LEVELS:
        if route_quality(*train, null.threshold(level))[1] >= OOS_TARGET:
            return level
    return LEVELS[-1]


def main() -> None:
    import tempfile

    from tinydancer_duck.embed import MATCH_LEVEL, ROUTE_LEVEL, ROUTE_MARGIN

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="static")
    parser.add_argument("--table", default=None, help="a static table (.npy) to measure instead of the packaged one")
    args = parser.parse_args()
    embedder = StaticEmbedder(args.table) if args.table else make_embedder(args.embedder)
    clinc, domain_of = load()
    print(f"embedder {embedder.identity}; shipped ROUTE_LEVEL {ROUTE_LEVEL}, ROUTE_MARGIN {ROUTE_MARGIN}, "
          f"MATCH_LEVEL {MATCH_LEVEL}")
    routes = route_scores(embedder, clinc)
    print("semantic routes, CLINC150 (in-scope accuracy / out-of-scope rejection):")
    print(f"  no threshold              val {route_quality(*routes['val'], -np.inf)[0]:.3f} / 0.000")
    for level in LEVELS:
        threshold = routes["null"].threshold(level)
        train, val = route_quality(*routes["train"], threshold), route_quality(*routes["val"], threshold)
        print(f"  level {level:<6} thr {threshold:.3f}  train {train[0]:.3f} / {train[1]:.3f}   "
              f"val {val[0]:.3f} / {val[1]:.3f}")
    level = choose_route_level(routes["null"], routes["train"])
    margin = choose_margin(*routes["train"], routes["null"].threshold(level))
    print(f"  chosen on train: ROUTE_LEVEL = {level}, ROUTE_MARGIN = {margin}")
    with tempfile.TemporaryDirectory() as folder:
        engine = agent_engine(embedder, Path(folder) / "agents")
        agents = agent_scores(engine, clinc, domain_of)
        print("capability matching, 9 agents at equal prices (right agent / out-of-scope matching none):")
        print(f"  no threshold              val {agent_quality(*agents['val'], -np.inf)[0]:.3f}")
        for level in LEVELS:
            threshold = agents["null"].threshold(level)
            train, val = agent_quality(*agents["train"], threshold), agent_quality(*agents["val"], threshold)
            print(f"  level {level:<6} thr {threshold:.3f}  train {train[0]:.3f} / {train[1]:.3f}   "
                  f"val {val[0]:.3f} / {val[1]:.3f}")
        level, shares = choose_match_level(embedder, Path(folder) / "demo", clinc)
        print("  the demo's agents at their prices, CLINC150 train queries of the domains they cover, right share: "
              + ", ".join(f"{k} {v:.3f}" for k, v in shares.items()))
        print(f"  chosen on train: MATCH_LEVEL = {level}")
        val = [tuple(p) for p in clinc["val"]]
        print(f"  routed by the product (balanced, equal prices) at the shipped MATCH_LEVEL: CLINC150 val "
              f"{routed_share(engine, [t for t, _ in val], [domain_of[i] for _, i in val]):.3f}", end="")
        banking = SHARED / "intents" / "banking77_train.csv"
        if banking.exists():
            with banking.open(newline="", encoding="utf-8") as handle:
                b77 = [row["text"] for row in csv.DictReader(handle)]
            print(f", Banking77 {routed_share(engine, b77, 'banking'):.3f}")
            share = routed_share(demo_engine(embedder, Path(folder) / "demo"), b77, "banking-assistant")
            print(f"  the demo's agents, Banking77 under balanced: {share:.3f} to banking-assistant")
        print()


if __name__ == "__main__":
    main()
