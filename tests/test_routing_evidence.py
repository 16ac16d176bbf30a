"""The probability of serving (issue 23): calibrated evidence, scope, text the embedder cannot read, examples, and
objectives over expected quality with no gate by a weak match."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from conftest import rows

import tinydancer_duck as td
from tinydancer_duck.embed import evidence_calibration, make_embedder


@pytest.fixture
def mixed(engine):
    """A general LLM and two cheap, fast specialists: a weather tool and a $1.20 human desk."""
    engine.register_agents([
        {"name": "llm", "agent_type": "llm", "capabilities": ["general knowledge"], "cost_per_1k_tokens": 0.0005,
         "avg_latency_ms": 800, "quality_score": 0.8},
        {"name": "weather-tool", "agent_type": "tool", "capabilities": ["weather", "forecasts", "temperature"],
         "cost_per_call": 0.0001, "avg_latency_ms": 50, "quality_score": 0.9},
        {"name": "desk", "agent_type": "human", "capabilities": ["complaints", "escalation", "customer support"],
         "cost_per_second": 0.01, "avg_latency_ms": 120_000, "quality_score": 0.98},
    ])
    return engine


def scores(engine, text: str, objective: str) -> dict[str, dict]:
    return {s["agent_name"]: s for s in engine.route_one(text, optimize_for=objective)["scores"]}


def test_a_specialist_wins_on_evidence_and_a_general_agent_keeps_the_rest(mixed):
    weather = scores(mixed, "will it rain in boston tomorrow", "cost")
    unrelated = scores(mixed, "write a haiku about autumn leaves", "cost")
    for found in (weather, unrelated):
        p = {name: s["p_serve"] for name, s in found.items()}
        assert all(0 <= v <= 1 for v in p.values())
        assert p["llm"] == pytest.approx(1 - p["weather-tool"] - p["desk"], abs=1e-6)  # what no specialist claims
    assert weather["weather-tool"]["p_serve"] > 0.5 > unrelated["weather-tool"]["p_serve"]
    for objective in ("cost", "latency", "balanced", "quality"):
        assert mixed.route_one("will it rain in boston tomorrow", optimize_for=objective)["agent_name"] == \
            "weather-tool"
        # the cheapest and fastest agent never wins a request it has no evidence for
        assert mixed.route_one("write a haiku about autumn leaves", optimize_for=objective)["agent_name"] == "llm"


def test_a_specialist_that_cannot_take_the_request_claims_nothing(mixed, tmp_path):
    """Excluded (or out of budget, its circuit open, removed by a constraint), a specialist leaves its requests to
    the general agents: the decisions and their probabilities are those of a fleet without it."""
    requests = ["will it rain in boston tomorrow", "I want to complain about my bill", "write a haiku"]
    without = td.Engine(tmp_path / "without")
    without.register_agents([row for row in mixed.list_agents().to_pylist() if row["name"] != "weather-tool"])
    for objective in ("cost", "balanced", "quality"):
        excluded = mixed.route(requests, optimize_for=objective, excluded_agents=["weather-tool"], explain=True)
        alone = without.route(requests, optimize_for=objective, explain=True)
        assert excluded["agent_name"].to_pylist() == alone["agent_name"].to_pylist()
        for got, want in zip(excluded["scores"].to_pylist(), alone["scores"].to_pylist()):
            assert {s["agent_name"]: s["p_serve"] for s in got} == pytest.approx(
                {s["agent_name"]: s["p_serve"] for s in want}, abs=1e-6)
    weather = scores(mixed, "will it rain in boston tomorrow", "cost")
    assert weather["llm"]["p_serve"] < 0.5  # with the tool available, the request is the tool's


def test_balanced_weighs_price_and_speed_by_the_probability_of_serving(mixed):
    """balanced = p (0.3 Cmin/C + 0.3 Lmin/L) + 0.4 p q: a cheap, fast tool with no evidence scores ~0, not 0.6."""
    for name, s in scores(mixed, "write a haiku about autumn leaves", "balanced").items():
        p = s["p_serve"]
        want = p * (0.3 / s["cost_vs_cheapest"] + 0.3 / s["latency_vs_fastest"]) + 0.4 * p * s["quality"]
        assert s["score"] == pytest.approx(want, rel=1e-6, abs=1e-9) and s["expected_quality"] == pytest.approx(
            p * s["quality"], rel=1e-6)
        if name == "weather-tool":  # the cheapest and fastest: an additive balanced would give it >= 0.6
            assert s["cost_vs_cheapest"] == 1.0 and s["latency_vs_fastest"] == 1.0
            assert s["score"] <= p < 0.5


def test_cost_takes_the_cheapest_agent_that_clears_the_level(mixed):
    level = mixed.snapshot().agents.calibration.clear_level
    found = scores(mixed, "will it rain in boston tomorrow", "cost")
    clearing = {name for name, s in found.items() if s["p_serve"] >= level}
    winner = mixed.route_one("will it rain in boston tomorrow", optimize_for="cost")["agent_name"]
    assert clearing and winner in clearing
    assert found[winner]["cost_vs_cheapest"] == min(found[n]["cost_vs_cheapest"] for n in clearing)
    assert all(found[n]["score"] < 0 for n in set(found) - clearing)  # below every agent that clears


def test_text_the_embedder_cannot_read_is_no_evidence(mixed, engine):
    decision = mixed.route_one("🙂🙂🙂", optimize_for="cost")
    assert decision["agent_name"] == "llm"
    assert "no evidence: 0 of 3 tokens known, P(serve) 1 as a general agent" in decision["reasoning"]
    for blank in (None, "", "  "):
        assert mixed.route_one(blank)["reasoning"] == "no agent: the request is NULL or empty"
    chinese = mixed.route_one("我的银行账户余额是多少？")
    assert "no evidence: 0 of 12 tokens known" in chinese["reasoning"]
    assert {s["agent_name"]: s["p_serve"] for s in chinese["scores"]}["desk"] == 0.0
    # with no general agent, nobody has evidence: the objective alone decides, and the reasoning says so
    engine.remove_agent("llm")
    alone = engine.route_one("🙂🙂🙂", optimize_for="cost")
    assert alone["agent_name"] == "weather-tool"
    assert "the objective alone decided" in alone["reasoning"] and "no evidence: 0 of 3 tokens known" in alone[
        "reasoning"]


def test_a_word_known_only_as_pieces_counts_half():
    embedder = make_embedder("static")
    texts = ["what will i need to make lasagna", "🙂🙂🙂", "我的银行账户余额是多少？", "set an alarm", None]
    x, counts, known, total = embedder.embed_read(texts)
    assert known.tolist() == [7.5, 0, 0, 3, 0] and total.tolist() == [9, 3, 12, 3, 0]  # las ##ag ##na: 3 halves
    # what the router reads about a text changes nothing about its embedding, bit for bit
    assert np.array_equal(x, embedder.embed(texts)) and np.array_equal(counts, embedder.embed_counted(texts)[1])
    many = pa.array(texts * 900)
    assert np.array_equal(embedder.embed_read(many)[0], embedder.embed(many))
    assert embedder.embed_read(many)[2].tolist() == known.tolist() * 900


def test_examples_lift_the_probability_of_serving(engine):
    request = "my flight got cancelled, can you rebook me on the next one"
    common = {"agent_type": "tool", "cost_per_call": 0.001, "avg_latency_ms": 200, "quality_score": 0.9}
    engine.register_agents([{"name": "llm", "agent_type": "llm", "capabilities": ["general knowledge"]},
                            {"name": "trips", "capabilities": ["travel"], **common}])
    before = scores(engine, request, "quality")["trips"]["p_serve"]
    engine.register_agents([{"name": "trips", "capabilities": ["travel"], **common, "examples": [
        "rebook my cancelled flight", "change my flight to tomorrow", "book a hotel in rome", "my luggage is lost"]}])
    after = scores(engine, request, "quality")["trips"]
    assert after["p_serve"] > before + 0.3 and after["matched_on"] == "example: rebook my cancelled flight"
    assert f"P(serve) {round(after['p_serve'], 2):g} from 'example: rebook my cancelled flight'" in \
        engine.route_one(request, optimize_for="quality")["reasoning"]


def test_scope_is_registered_stored_listed_and_decides(con, engine):
    con.execute("SELECT ruvector_register_agent('bot', 'llm', ['chat'], cost_per_call := 0.001)").fetchall()
    con.execute("SELECT ruvector_register_agent('desk', 'human', ['complaints'], cost_per_call := 1.0)").fetchall()
    con.execute("SELECT ruvector_register_agent('wiki', 'tool', ['encyclopedia'], cost_per_call := 0.002, "
                "scope := 'general')").fetchall()
    listed = {r["name"]: r["scope"] for r in rows(con, "SELECT name, scope FROM ruvector_list_agents()")}
    assert listed == {"bot": "general", "desk": "specialist", "wiki": "general"}
    assert engine.snapshot().agents.general.tolist() == [True, False, True]  # bot, desk, wiki
    p = {s["agent_name"]: s["p_serve"] for s in engine.route_one("write a haiku about autumn")["scores"]}
    assert p["wiki"] == p["bot"] > 0.5  # a general tool serves what no specialist claims, like the LLM
    with pytest.raises(duckdb.Error, match="invalid scope='expert'"):
        con.execute("SELECT ruvector_register_agent('x', 'tool', ['a'], scope := 'expert')").fetchall()
    engine.register_agent_full({"name": "desk", "agent_type": "human", "capabilities": ["complaints"],
                                "scope": "general"})
    assert engine.get_agent("desk")["scope"] == "general"


def test_the_shipped_calibration_reads_for_every_embedder(tmp_path):
    static = evidence_calibration(make_embedder("static").identity)
    assert 0 < static.clear_level < 1 and 0 < static.read_level < static.full_read_level <= 1
    assert static.phrase_weight > 0 and static.example_weight > 0 and static.margin_weight > 0
    assert evidence_calibration("hashing:anything:512") == evidence_calibration()  # the default's weights
    hashing = td.Engine(tmp_path / "hashing", embedder="hashing")  # in its own spread: the weights carry over
    hashing.register_agents([{"name": "a", "agent_type": "tool", "capabilities": ["weather forecasts"]},
                             {"name": "b", "agent_type": "llm", "capabilities": ["chat"]}])
    assert hashing.route_one("weather forecasts for tomorrow")["agent_name"] == "a"
    assert hashing.route_one("tell me a joke about cats")["agent_name"] == "b"
