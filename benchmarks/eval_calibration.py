"""Choose the calibration levels on training data only, then report them on held-out data (issue 13).

Semantic routes (CLINC150, 150 routes, each its intent name + 5 train utterances, no fitting): the default threshold
is the null's ROUTE_LEVEL quantile (tinydancer_duck/embed/_calibration.py). For each candidate level this script
measures in-scope accuracy (the right route first; a rejected in-scope query is wrong) and out-of-scope rejection on
CLINC150 *train* (other train utterances, oos_train), picks the lowest level that rejects >= 80% of out-of-scope
queries there, and reports that level on val + oos_val, which played no part in the choice.

Capability matching (9 agents described by 4-7 capability words each, one per CLINC150 domain with banking and
credit cards merged, equal prices so the match alone decides): MATCH_LEVEL is chosen on CLINC150 train the same way
(the lowest level under which at most 20% of out-of-scope train queries match some agent), and reported on val,
oos_val and the 10,003 Banking77 queries (all banking).

Usage: ``python benchmarks/eval_calibration.py [--embedder static]`` (needs ../shared/datasets for Banking77).
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

from tinydancer_duck.embed import background, make_embedder, null_scores

SHARED = REPO.parent / "shared" / "datasets"
LEVELS = (0.5, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 0.995, 0.999)
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
    clinc = json.loads((REPO / "datasets" / "clinc150_train_val.json").read_text())
    domains = json.loads((REPO / "datasets" / "clinc150_domains.json").read_text())
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
    null = null_scores(background(embedder), score)
    return {"null": null, "train": split(train), "val": split(val)}


def route_quality(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """(in-scope accuracy, out-of-scope rejection) of 'the best route if it clears the threshold'."""
    best, top = scores.argmax(axis=1), scores.max(axis=1)
    predicted = np.where(top >= threshold, best, -1)
    inside = labels >= 0
    return float((predicted[inside] == labels[inside]).mean()), float((predicted[~inside] == -1).mean())


def agent_scores(embedder, clinc: dict, domain_of: dict[str, str]) -> dict[str, object]:
    names = list(AGENTS)
    texts = [c for caps in AGENTS.values() for c in caps]
    owner = np.repeat(np.arange(len(names)), [len(c) for c in AGENTS.values()])
    vectors = embedder.embed(texts)
    starts = np.r_[0, np.flatnonzero(np.diff(owner)) + 1]

    def score(x: np.ndarray) -> np.ndarray:
        return np.maximum.reduceat(x @ vectors.T, starts, axis=1)

    def split(pairs: list[tuple[str, str]]) -> tuple[np.ndarray, np.ndarray]:
        labels = np.array([names.index(domain_of[i]) if i in domain_of else -1 for _, i in pairs])
        return score(embedder.embed([t for t, _ in pairs])), labels

    out = {"null": null_scores(background(embedder), score),
           "train": split([tuple(p) for p in clinc["train"][::3]] + [(t, "oos") for t, _ in clinc["oos_train"]]),
           "val": split([tuple(p) for p in clinc["val"]] + [(t, "oos") for t, _ in clinc["oos_val"]])}
    banking = SHARED / "intents" / "banking77_train.csv"
    if banking.exists():
        with banking.open(newline="", encoding="utf-8") as handle:
            b77 = [row["text"] for row in csv.DictReader(handle)]
        out["banking77"] = (score(embedder.embed(b77)), np.zeros(len(b77), np.int64))
    return out


def agent_quality(scores: np.ndarray, labels: np.ndarray, threshold: float) -> tuple[float, float]:
    """(right agent among in-domain queries, out-of-scope queries matching no agent)."""
    best, top = scores.argmax(axis=1), scores.max(axis=1)
    predicted = np.where(top >= threshold, best, -1)
    inside = labels >= 0
    right = float((predicted[inside] == labels[inside]).mean()) if inside.any() else float("nan")
    rejected = float((predicted[~inside] == -1).mean()) if (~inside).any() else float("nan")
    return right, rejected


def choose(null, train: tuple[np.ndarray, np.ndarray], quality) -> float:
    """The lowest level whose threshold rejects >= OOS_TARGET of the out-of-scope train queries."""
    for level in LEVELS:
        if quality(*train, null.threshold(level))[1] >= OOS_TARGET:
            return level
    return LEVELS[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embedder", default="static")
    args = parser.parse_args()
    embedder = make_embedder(args.embedder)
    clinc, domain_of = load()
    print(f"embedder {embedder.identity}")
    routes = route_scores(embedder, clinc)
    print("semantic routes (in-scope accuracy / out-of-scope rejection):")
    print(f"  no threshold          val {route_quality(*routes['val'], -np.inf)[0]:.3f} / 0.000")
    for level in LEVELS:
        threshold = routes["null"].threshold(level)
        train, val = route_quality(*routes["train"], threshold), route_quality(*routes["val"], threshold)
        print(f"  level {level:<6} thr {threshold:.3f}  train {train[0]:.3f} / {train[1]:.3f}   "
              f"val {val[0]:.3f} / {val[1]:.3f}")
    level = choose(routes["null"], routes["train"], route_quality)
    print(f"  chosen on train: ROUTE_LEVEL = {level}")
    agents = agent_scores(embedder, clinc, domain_of)
    print("capability matching (right agent / out-of-scope matching none):")
    print(f"  no threshold          val {agent_quality(*agents['val'], -np.inf)[0]:.3f}" +
          (f"  banking77 {agent_quality(*agents['banking77'], -np.inf)[0]:.3f}" if "banking77" in agents else ""))
    for level in LEVELS:
        threshold = agents["null"].threshold(level)
        train, val = agent_quality(*agents["train"], threshold), agent_quality(*agents["val"], threshold)
        extra = f"  banking77 {agent_quality(*agents['banking77'], threshold)[0]:.3f}" if "banking77" in agents else ""
        print(f"  level {level:<6} thr {threshold:.3f}  train {train[0]:.3f} / {train[1]:.3f}   "
              f"val {val[0]:.3f} / {val[1]:.3f}{extra}")
    print(f"  chosen on train: MATCH_LEVEL = {choose(agents['null'], agents['train'], agent_quality)}")


if __name__ == "__main__":
    main()
