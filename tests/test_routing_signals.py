"""What other services feed the router: open circuits, budgets (per agent and global), a capability classifier."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from conftest import SEED_ROUTES_SQL, rows

import tinydancer_duck as td

DATA = Path(__file__).resolve().parents[1] / "tinydancer_duck" / "datasets" / "clinc150_train_val.json"


@pytest.fixture
def pair(engine):
    """Two interchangeable agents; 'primary' wins on quality until something takes it out."""
    engine.register_agent("primary", "llm", ["answers"], cost_per_call=0.01, quality_score=0.95)
    engine.register_agent("backup", "llm", ["answers"], cost_per_call=0.002, quality_score=0.7)
    return engine


def decide(engine, text="answer my question", **options):
    return engine.route([text], optimize_for="quality", **options).to_pylist()[0]


def test_open_circuit_is_skipped_with_a_reason_and_recovers(pair, con):
    assert decide(pair)["agent_name"] == "primary"
    now = datetime.now(timezone.utc)
    failures = pair.settings.breaker_failures
    con.execute("SELECT ruvector_record_usage('primary', 0.01, false, 900, ts := t) "
                "FROM (SELECT ?::TIMESTAMPTZ - to_seconds(i) AS t FROM range(?) r(i))",
                [now.isoformat(), failures]).fetchall()
    skipped = decide(pair)
    assert skipped["agent_name"] == "backup" and "primary (circuit_open)" in skipped["reasoning"]
    assert rows(con, "SELECT state FROM ruvector_agent_health() WHERE agent = 'primary'")[0]["state"] == "open"
    # after the cool-down the circuit is half-open: probes go through again, and successes close it
    later = now + timedelta(seconds=pair.settings.breaker_cooldown_s + 1)
    health = pair.health.states(["primary"], later)
    assert health[0] == 2
    for i in range(pair.settings.breaker_recovery_successes):
        pair.usage.record(agent=["primary"], cost=[0.01], success=[True], latency_ms=[500.0],
                          ts=[later + timedelta(seconds=i)])
    assert pair.health.states(["primary"], later + timedelta(seconds=10))[0] == 0


def test_an_agent_budget_stops_routing_to_it_once_spent(pair, con):
    con.execute("SELECT ruvector_set_budget(0.05, agent := 'primary')").fetchall()
    assert decide(pair)["agent_name"] == "primary"
    con.execute("SELECT ruvector_record_usage('primary', 0.01, true, 800) FROM range(5)").fetchall()
    after = decide(pair)
    assert after["agent_name"] == "backup" and "primary (agent_budget)" in after["reasoning"]
    status = rows(con, "SELECT * FROM ruvector_budget_status() WHERE agent = 'primary'")[0]
    assert status["spent"] == pytest.approx(0.05) and status["remaining"] == pytest.approx(0.0)


def test_a_global_budget_caps_budget_remaining(pair, con):
    con.execute("SELECT ruvector_set_budget(0.012)").fetchall()
    con.execute("SELECT ruvector_record_usage('backup', 0.004, true, 300)").fetchall()
    capped = decide(pair)  # 0.008 left: primary (0.01) no longer fits
    assert capped["agent_name"] == "backup" and "primary (budget_remaining)" in capped["reasoning"]
    assert decide(pair, budget_remaining=0.001)["agent_name"] is None  # the tighter of the two wins


def test_seed_budget_aware_route_with_history(seed_con):
    seed_con.execute("SELECT ruvector_record_usage('gpt-4', 0.02, true, 2400) FROM range(3)").fetchall()
    (decision,) = rows(seed_con, """
SELECT * FROM ruvector_route(
request := 'Summarize this article',
budget_remaining := 10.00,
optimize_for := 'quality_per_dollar'
);""")
    assert decision["agent_name"] is not None and 0 < decision["estimated_cost"] <= 10.0


def test_a_capability_classifier_drives_the_match(engine, con):
    data = json.loads(DATA.read_text())
    labels = ("weather", "balance", "timer")
    picked = [row for row in data["train"] if row[1] in labels]
    for label, kind in zip(labels, ("api", "tool", "tool")):
        engine.register_agent(f"{label}-agent", kind, [label], cost_per_call=0.001, quality_score=0.9)
    before = decide(engine, "will i need an umbrella in boston today")
    engine.classifier.train([t for t, _ in picked], [lab for _, lab in picked], model="capabilities", epochs=20)
    after = decide(engine, "will i need an umbrella in boston today")
    assert after["agent_name"] == "weather-agent"
    assert after["confidence"] > before["confidence"]  # a probability mass separates agents more than cosine
    assert decide(engine, "how much money is in my checking account")["agent_name"] == "balance-agent"
    # a model whose labels are not all capability names does not replace cosine matching
    engine.register_agent("other", "llm", ["poetry"], cost_per_call=0.001, quality_score=0.9)
    engine.remove_agent("timer-agent")
    assert engine.route(["set a timer for ten minutes"]).num_rows == 1


def test_hashing_embedder_has_no_classifier_and_still_routes(tmp_path):
    engine = td.Engine(tmp_path / "hashing", embedder="hashing")
    engine.register_agent("a", "llm", ["weather forecasts"], cost_per_call=0.01)
    assert engine.route(["weather forecasts for tomorrow"]).to_pylist()[0]["agent_name"] == "a"



def test_semantic_routes_decide_first_and_the_reasoning_says_so(seed_con, engine):
    seed_con.execute(SEED_ROUTES_SQL).fetchall()
    seed_con.execute("SELECT ruvector_add_route_example('customer_support', 'I forgot my password and cannot log "
                     "in')").fetchall()  # an example makes the route's match plain (the description alone leads)
    question = "How do I reset my password?"
    unregistered = decide(engine, question)
    assert unregistered["agent_name"] in {"gpt-4", "claude-3-haiku", "code-specialist"}
    assert unregistered["reasoning"].startswith(
        "semantic route 'customer_support' matched but its target is not a registered agent; ")
    engine.register_agent("support-agent", "human", ["customer support"], cost_per_call=2.0, quality_score=0.7)
    routed = decide(engine, question)
    assert routed["agent_name"] == "support-agent"
    assert routed["reasoning"].startswith("semantic route 'customer_support' decided: support-agent (similarity ")
    # a constraint still binds: the route's target is removed, so the agent router decides
    capped = decide(engine, question, max_cost=0.5)
    assert capped["agent_name"] != "support-agent"
    assert capped["reasoning"].startswith("semantic route 'customer_support' matched but its target is not a "
                                          "candidate; ")
    engine.set_agent_active("support-agent", False)
    assert decide(engine, question)["agent_name"] != "support-agent"
    sql = seed_con.execute("SELECT ruvector_route(?, optimize_for := 'quality').agent_name", [question]).fetchone()[0]
    assert sql == decide(engine, question)["agent_name"]


def test_routes_do_not_hijack_unrelated_requests(seed_con, engine):
    """With the README's two routes and their targets registered (a $2-per-call human behind customer_support),
    requests about other things are decided by the agents, not captured by a route below its threshold."""
    seed_con.execute(SEED_ROUTES_SQL).fetchall()
    engine.register_agent("support-agent", "human", ["customer support"], cost_per_call=2.0, quality_score=0.9)
    engine.register_agent("docs-agent", "tool", ["documentation"], cost_per_call=0.01, quality_score=0.9)
    unrelated = ["Write a Python function to calculate Fibonacci numbers", "what's the weather in paris tomorrow",
                 "set a timer for ten minutes", "book a table for two at an italian restaurant",
                 "how many calories are in an apple", "play some jazz", "translate hello into spanish"]
    decided = engine.route(unrelated, optimize_for="cost").to_pylist()
    assert all(d["agent_name"] != "support-agent" for d in decided)
    assert not any(d["reasoning"].startswith("semantic route") for d in decided)
    # a request the route really is about still goes there
    seed_con.execute("SELECT ruvector_add_route_example('customer_support', 'I want to complain about my "
                     "order')").fetchall()
    complaint = engine.route(["I want to file a complaint about my last order"], optimize_for="cost").to_pylist()[0]
    assert complaint["agent_name"] == "support-agent"
