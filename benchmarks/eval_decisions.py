"""Routing decisions on held-out requests: do the agents a person would pick get the requests (issue 23)?

Agents in the seed plan's style (:data:`FLEET`: a cheap, a strong and a fast general LLM; banking, travel, home and
code tools; a human desk at $1.20 a request), each specialist owning whole CLINC150 domains (banking and credit
cards; travel; home and utility), the Banking77 requests (banking), the MBPP coding prompts (code) or the requests
that ask for a person (the human desk). Two descriptions: capability lists only, and with ``examples :=`` (10 per
intent owned, drawn from TRAIN: CLINC150 train, Banking77's even rows, MBPP's even rows, :data:`PERSON_EXAMPLES`).

Requests, all held out (nothing here was used to fit or choose anything in the package): CLINC150 val (3,000, ten
domains), oos_val (100), 1,000 of Banking77's odd rows, MBPP's odd rows (150), and this file's own sets:
:data:`PERSON` (asking for a person or complaining; the human desk owns them) and :data:`OTHER` (generic requests,
other languages, emoji; no specialist owns them).

Printed:
- capability accuracy: ten agents, one per CLINC150 domain, described by short capability lists, equal prices,
  latency and quality (so only the evidence decides), 200 val requests per domain: share routed to the owner;
- per specialist precision / recall under each objective, both descriptions;
- under ``cost``: the share of ordinary requests (not asking for a person) sent to an agent >= 50x the cheapest
  candidate that does not own their domain (no specialist owns kitchen, auto, work, small talk, meta: a general LLM
  is right there, and an expensive one is "expensive and not the owner");
- the human desk's share of requests that do not ask for a person, under ``cost`` and ``balanced``;
- description-only semantic routes at the package's defaults: each CLINC150 domain's 15 intents as routes (the
  description is the intent's name), its val requests in scope, oos_val and :data:`OTHER` out of scope: in-scope top-1
  and out-of-scope rejection; and the seed plan's password example.

Runs on any checkout through the public API (``python benchmarks/eval_decisions.py``, ~2 min), so the same script
measures before and after a change.
"""

from __future__ import annotations

import argparse
import ast
import csv
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "datasets"

import tinydancer_duck as td

OBJECTIVES = ("cost", "latency", "quality", "balanced", "quality_per_dollar")
EXPENSIVE = 50.0
FLEET = [
    {"name": "cheap-llm", "agent_type": "llm", "capabilities": ["fast-response", "simple-tasks", "classification"],
     "cost_per_1k_tokens": 0.00025, "avg_latency_ms": 400, "quality_score": 0.80},
    {"name": "strong-llm", "agent_type": "llm", "capabilities": ["reasoning", "code", "analysis", "creative"],
     "cost_per_1k_tokens": 0.03, "avg_latency_ms": 2500, "quality_score": 0.95},
    {"name": "fast-llm", "agent_type": "llm", "capabilities": ["chat", "quick answers", "summaries"],
     "cost_per_1k_tokens": 0.0006, "avg_latency_ms": 250, "quality_score": 0.75},
    {"name": "bank-tool", "agent_type": "tool", "capabilities": ["banking", "account balance", "credit cards",
                                                                  "payments", "transfers", "fraud"],
     "cost_per_call": 0.0005, "avg_latency_ms": 300, "quality_score": 0.92},
    {"name": "travel-tool", "agent_type": "api", "capabilities": ["travel", "flights", "hotels", "car rental",
                                                                   "reservations", "translation"],
     "cost_per_call": 0.002, "avg_latency_ms": 900, "quality_score": 0.88},
    {"name": "home-tool", "agent_type": "tool", "capabilities": ["smart home", "alarms", "timers", "weather",
                                                                  "calendar", "music"],
     "cost_per_call": 0.0001, "avg_latency_ms": 150, "quality_score": 0.90},
    {"name": "code-tool", "agent_type": "tool", "capabilities": ["code-execution", "debugging", "testing"],
     "cost_per_call": 0.001, "avg_latency_ms": 100, "quality_score": 0.90},
    {"name": "human-desk", "agent_type": "human", "capabilities": ["complaints", "account issues", "escalation",
                                                                    "customer support"],
     "cost_per_second": 0.01, "avg_latency_ms": 120000, "quality_score": 0.98},
]
#: domain -> the specialist that owns it (other domains: no specialist; a general LLM serves them).
OWNER = {"banking": "bank-tool", "credit_cards": "bank-tool", "banking77": "bank-tool", "travel": "travel-tool",
         "home": "home-tool", "utility": "home-tool", "code": "code-tool", "person": "human-desk"}
#: Ten agents, one per CLINC150 domain, for capability accuracy (worded unlike the package's training fleets).
DOMAIN_AGENTS = {
    "banking": ["bank account", "account balance", "bill payment", "money transfer", "fraud alert"],
    "credit_cards": ["credit cards", "card rewards", "credit limit", "credit score", "card application"],
    "kitchen_and_dining": ["recipes", "cooking", "restaurants", "nutrition facts", "reservations"],
    "home": ["music playback", "shopping list", "to-do list", "calendar", "reminders", "smart home devices"],
    "auto_and_commute": ["car maintenance", "gas", "traffic", "directions", "ride sharing"],
    "travel": ["flights", "hotels", "travel advice", "visas", "luggage", "currency exchange"],
    "utility": ["weather", "alarms", "timers", "calculator", "dictionary", "phone calls"],
    "work": ["payroll", "time off", "insurance benefits", "meetings", "taxes"],
    "small_talk": ["small talk", "jokes", "questions about yourself", "greetings"],
    "meta": ["assistant settings", "voice and volume", "language settings", "yes and no"],
}
#: Requests that ask for a person or complain (the human desk owns them), held out.
PERSON = [
    "I want to talk to a real person", "can I speak with a human agent please", "get me a manager",
    "connect me to customer service", "I need to speak to someone, this bot is not helping",
    "I want to file a complaint", "I want to complain about my bill", "this is unacceptable, I want to escalate",
    "my order never arrived and I want a refund", "let me talk to your supervisor", "transfer me to an operator",
    "I'm very unhappy with your service", "your support has been terrible, I want to make a complaint",
    "is there a human I can chat with", "please escalate my issue to a person", "I demand to speak to someone in charge",
    "I've been overcharged and nobody is answering, get me a representative", "call me back, I need a human",
    "I have a complaint about one of your staff", "your product broke after a day, I want to speak to support",
]
#: Training examples for the human desk (used only as its ``examples``; not in PERSON).
PERSON_EXAMPLES = [
    "can I talk to a human", "I want to speak to an agent", "put me through to a real person",
    "I would like to make a complaint", "I'm not happy with the service I received", "escalate this please",
    "I need a supervisor", "let me speak to customer support", "this is the third time I'm complaining",
    "I want someone to call me",
]
#: Generic requests no specialist owns (an LLM serves them), other languages and unreadable text, held out.
OTHER = [
    "what will i need to make lasagna", "you can call me jason", "explain the theory of relativity simply",
    "write a haiku about autumn", "who won the battle of hastings", "summarize the plot of hamlet",
    "what is the capital of australia", "how do vaccines train the immune system", "give me three startup ideas",
    "what's the difference between a virus and a bacterium", "tell me about the history of the roman empire",
    "how many bones are in the human body", "draft a polite email declining a meeting",
    "¿Cuál es el saldo de mi cuenta bancaria?", "我的银行账户余额是多少？", "Привет, как дела?",
    "Quel temps fait-il à Paris demain ?", "🙂🙂🙂", "👍", "¯\\_(ツ)_/¯",
]


def load() -> dict[str, list[tuple[str, str, str]]]:
    """Held-out (text, domain, intent) requests, and train texts by intent for examples."""
    clinc = json.loads((REPO / "tinydancer_duck" / "datasets" / "clinc150_train_val.json").read_text())
    domains = json.loads((REPO / "tinydancer_duck" / "datasets" / "clinc150_domains.json").read_text())
    domain_of = {i: d for d, intents in domains.items() for i in intents}
    with (SHARED / "intents" / "banking77_train.csv").open(newline="", encoding="utf-8") as handle:
        b77 = [(row["text"], row["category"]) for row in csv.DictReader(handle)]
    mbpp = [ast.literal_eval(p)[0] for p in pq.read_table(SHARED / "routerbench" / "mbpp_train.parquet",
                                                          columns=["prompt"])["prompt"].to_pylist()]
    held_b77 = b77[1::2]
    picked = np.random.default_rng(0).choice(len(held_b77), 1000, replace=False)
    held = ([(t, domain_of[i], i) for t, i in clinc["val"]] + [(t, "oos", "oos") for t, _ in clinc["oos_val"]]
            + [(held_b77[k][0], "banking77", held_b77[k][1]) for k in sorted(picked)]
            + [(t, "code", "code") for t in mbpp[1::2]] + [(t, "person", "person") for t in PERSON]
            + [(t, "other", "other") for t in OTHER])
    train: dict[str, list[str]] = {}
    for text, intent in clinc["train"] + [(t, i) for t, i in b77[0::2]] + [(t, "code") for t in mbpp[0::2]] + \
            [(t, "person") for t in PERSON_EXAMPLES]:
        train.setdefault(intent, []).append(text)
    return {"held": held, "train": train, "domains": domains, "clinc_val": clinc["val"], "domain_of": domain_of}


def fleet_engine(store: Path, data: dict, examples: bool) -> td.Engine:
    """The seed-style fleet, with 10 example requests per owned intent when ``examples``."""
    engine = td.Engine(store)
    agents = [dict(agent) for agent in FLEET]
    if examples:
        owned_intents: dict[str, list[str]] = {}
        for domain, owner in OWNER.items():
            intents = data["domains"].get(domain) or sorted({i for _, d, i in data["held"] if d == domain})
            owned_intents.setdefault(owner, []).extend(intents)
        for agent in agents:
            intents = owned_intents.get(agent["name"], [])
            agent["examples"] = [t for i in intents for t in data["train"].get(i, [])[:10]] or None
    engine.register_agents(agents)
    return engine


def decisions(engine: td.Engine, texts: list[str], objective: str) -> tuple[np.ndarray, np.ndarray]:
    """(chosen agent names, their cost as a multiple of the cheapest candidate's) per request."""
    routed = engine.route_struct(texts, optimize_for=objective, explain=True).to_pylist()
    chosen = np.array([r["agent_name"] for r in routed], dtype=object)
    ratio = np.array([next((s["cost_vs_cheapest"] for s in r["scores"] if s["agent_name"] == r["agent_name"]),
                           np.nan) for r in routed])
    return chosen, ratio


def fleet_report(engine: td.Engine, data: dict, label: str) -> dict:
    """Precision/recall per specialist under each objective, expensive non-owners and the human desk's share."""
    held = data["held"]
    texts = [t for t, _, _ in held]
    owner = np.array([OWNER.get(d, "") for _, d, _ in held], dtype=object)
    person = np.array([d == "person" for _, d, _ in held])
    out: dict = {"label": label}
    print(f"\n{label}: {len(texts):,} held-out requests")
    print(f"  {'objective':<19}" + "".join(f"{n + ' P/R':>19}" for n in sorted(set(OWNER.values()))))
    for objective in OBJECTIVES:
        chosen, ratio = decisions(engine, texts, objective)
        row = {}
        for name in sorted(set(OWNER.values())):
            sent, owned = chosen == name, owner == name
            precision = float((owner[sent] == name).mean()) if sent.any() else float("nan")
            recall = float((chosen[owned] == name).mean()) if owned.any() else float("nan")
            row[name] = (precision, recall, int(sent.sum()))
        out[objective] = row
        print(f"  {objective:<19}" + "".join(f"{p:>8.2f}/{r:.2f} ({k:>4})" for p, r, k in row.values()))
        if objective in ("cost", "balanced"):
            out[f"human_{objective}"] = float((chosen[~person] == "human-desk").mean())
        if objective == "cost":
            expensive = (ratio >= EXPENSIVE) & (chosen != owner)
            out["expensive_not_owner"] = float(expensive[~person].mean())
    print(f"  cost: {out['expensive_not_owner']:.2%} of ordinary requests to an agent >= {EXPENSIVE:g}x the cheapest "
          f"that does not own them; human desk on requests not asking for a person: cost "
          f"{out['human_cost']:.2%}, balanced {out['human_balanced']:.2%}")
    return out


def capability_accuracy(store: Path, data: dict) -> float:
    """Ten domain agents at equal prices, 200 val requests per domain, balanced: share to the owner."""
    engine = td.Engine(store)
    engine.register_agents([{"name": d, "agent_type": "tool", "capabilities": caps, "cost_per_call": 0.001,
                             "avg_latency_ms": 500, "quality_score": 0.9} for d, caps in DOMAIN_AGENTS.items()])
    rows = [(t, data["domain_of"][i]) for t, i in data["clinc_val"]]
    picked = [r for d in DOMAIN_AGENTS for r in [r for r in rows if r[1] == d][:200]]
    chosen = engine.route([t for t, _ in picked], optimize_for="balanced")["agent_name"].to_pylist()
    return float(np.mean([c == d for c, (_, d) in zip(chosen, picked)]))


def semantic_routes(store: Path, data: dict) -> tuple[float, float, list]:
    """Description-only routes, one set per CLINC150 domain (its 15 intents): in-scope top-1 on that domain's val
    requests and out-of-scope rejection on oos_val + OTHER, pooled over the ten sets; and the seed's example."""
    oos = [t for t, d, _ in data["held"] if d in ("oos", "other")]
    right, inside, rejected, outside = 0, 0, 0, 0
    for n, (domain, intents) in enumerate(data["domains"].items()):
        engine = td.Engine(store / f"routes-{n}")
        for intent in intents:
            engine.routes.create_route(intent, intent.replace("_", " "), f"{intent}-agent")
        queries = [(t, i) for t, i in data["clinc_val"] if i in intents]
        first = [m[0]["route_name"] if m else None
                 for m in engine.semantic_match([t for t, _ in queries] + oos, top_k=1).to_pylist()]
        right += sum(f == i for f, (_, i) in zip(first, queries))
        inside += len(queries)
        rejected += sum(f is None for f in first[len(queries):])
        outside += len(oos)
    seed = td.connect(store / "seed")
    seed.execute(SEED_ROUTES).fetchall()
    example = seed.execute("SELECT route_name, round(similarity, 3), round(confidence, 3) FROM "
                           "ruvector_semantic_route(query := 'How do I reset my password?', top_k := 3)").fetchall()
    return right / inside, rejected / outside, example


SEED_ROUTES = """
SELECT ruvector_create_route(name := 'customer_support',
  description := 'Handle customer support inquiries, complaints, and feedback',
  embedding := ruvector_embed('Customer support and help requests'), target_agent := 'support-agent', priority := 1);
SELECT ruvector_create_route(name := 'technical_docs',
  description := 'Answer questions about technical documentation and APIs',
  embedding := ruvector_embed('Technical documentation and API reference'), target_agent := 'docs-agent',
  priority := 2);
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    data = load()
    figures: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        figures["capability_accuracy"] = capability_accuracy(root / "domains", data)
        print(f"capability accuracy (10 domain agents, equal prices, lists only, 2,000 CLINC150 val requests): "
              f"{figures['capability_accuracy']:.3f}")
        for examples in (False, True):
            label = "with examples (10 per owned intent, from train)" if examples else "capability lists only"
            figures[label] = fleet_report(fleet_engine(root / f"fleet-{examples}", data, examples), data, label)
        inside, rejected, example = semantic_routes(root, data)
        figures["semantic"] = {"in_scope_top1": inside, "out_of_scope_rejection": rejected, "seed_example": example}
        print(f"\nsemantic routes at the defaults (description only, 10 sets of 15 routes): in-scope top-1 "
              f"{inside:.3f}, out-of-scope rejection {rejected:.3f}")
        print(f"seed example 'How do I reset my password?': {example}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, default=str))


if __name__ == "__main__":
    main()
