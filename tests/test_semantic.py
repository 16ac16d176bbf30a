"""Semantic routes through the SQL surface (real DuckDB + LanceDB in tmp_path) and the Python API."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import SEED_ROUTES_SQL

import tinydancer_duck as td
from tinydancer_duck.semantic._conditions import parse_conditions
from tinydancer_duck.semantic._fit import fit_thresholds
from tinydancer_duck.semantic._kernels import decide, match_top_k, top_k

SEED_SQL = SEED_ROUTES_SQL
SEED_QUERY = """
SELECT * FROM ruvector_semantic_route(
query := 'How do I reset my password?',
top_k := 3
);
"""


@pytest.fixture()
def store(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture()
def con(store: Path) -> duckdb.DuckDBPyConnection:
    return td.connect(store)


def dim(con) -> int:
    return con.execute("SELECT len(ruvector_embed('x'))").fetchone()[0]


def vec(d: int, cos: float = 1.0, axis: int = 0, other: int = 1) -> list[float]:
    """A unit vector with cosine ``cos`` to e_axis (the rest along e_other)."""
    v = np.zeros(d)
    other = other if other != axis else axis + 1
    v[axis] = cos
    v[other] = math.sqrt(max(0.0, 1 - cos * cos))
    return v.tolist()


def create(con, name: str, axis: int, *, other: int = 1, **kw) -> None:
    """Route ``name`` whose embedding is e_axis (``other`` only matters if axis == other). Its threshold is -1
    (every similarity counts) unless given: these tests are about conditions and ranking, not calibration."""
    d = dim(con)
    kw.setdefault("min_similarity", -1.0)
    args = "".join(f", {k} := ?" for k in kw)
    con.execute(f"SELECT ruvector_create_route(?, 'desc', ?, embedding := ?::FLOAT[]{args})",
                [name, f"{name}-agent", vec(d, 1.0, axis, other), *kw.values()]).fetchall()


def match(con, q: list[float], top_k: int = 3, **kw) -> list[tuple]:
    args = "".join(f", {k} := ?" for k in kw)
    return con.execute(f"SELECT route_name, similarity, confidence FROM ruvector_semantic_route(?::FLOAT[], "
                       f"top_k := {top_k}{args})", [q, *kw.values()]).fetchall()


def routes(con) -> list[tuple]:
    return con.execute("SELECT name, description, target_agent, priority, min_similarity, conditions, examples "
                       "FROM ruvector_list_routes() ORDER BY name").fetchall()


# -- the seed ---------------------------------------------------------------------------------------------------
def test_seed_examples_run_verbatim(con):
    for statement in SEED_SQL.split(";"):
        if statement.strip():
            assert con.execute(statement).fetchall() == [(True,)]
    # the seed plan's answer: the password question is only 0.19 from customer support, below what unrelated text
    # reaches at the default level, but it leads technical docs (0.05) by far more than a spread, so it matches
    # (issue 23; the earlier default, a threshold alone, matched neither); an unrelated request matches neither
    (first,) = con.execute(SEED_QUERY).fetchall()
    assert first[0] == "customer_support" and first[1] == pytest.approx(0.19, abs=0.01) and first[2] == "support-agent"
    assert con.execute("SELECT * FROM ruvector_semantic_route('Write a Python function to calculate Fibonacci "
                       "numbers')").fetchall() == []
    for example in ("I forgot my password and cannot log in", "I need help with my account",
                    "I want to complain about my order"):
        con.execute("SELECT ruvector_add_route_example('customer_support', ?)", [example]).fetchall()
    rows = con.execute(SEED_QUERY).fetchall()
    cols = [d[0] for d in con.description]
    assert cols[:4] == ["route_name", "similarity", "target_agent", "confidence"]
    assert [r[0] for r in rows] == ["customer_support"] and rows[0][2] == "support-agent"
    assert 0.5 < rows[0][3] <= 1  # well above what background text reaches
    assert rows[0][4] is False  # support-agent is not a registered agent
    docs = con.execute("SELECT route_name FROM ruvector_semantic_route('where is the API reference for the REST "
                       "endpoints')").fetchall()
    assert docs == [("technical_docs",)]


def test_embedding_argument_types(con):
    d = dim(con)
    con.execute("SELECT ruvector_create_route('a', 'x', 't', embedding := ?::DOUBLE[])", [vec(d, 1, 0)])
    con.execute(f"SELECT ruvector_create_route('b', 'x', 't', embedding := ?::FLOAT[{d}])", [vec(d, 1, 1, 2)])
    con.execute("SELECT ruvector_create_route('c', 'Technical documentation', 't')")  # description's embedding
    assert match(con, vec(d, 1, 0), 1)[0][0] == "a"
    assert con.execute(f"SELECT (ruvector_semantic_route(?::DOUBLE[{d}], top_k := 1))[1].route_name",
                       [vec(d, 1, 1, 2)]).fetchone()[0] == "b"
    assert con.execute("SELECT * FROM ruvector_semantic_route('API reference documentation', top_k := 1)"
                       ).fetchone()[0] == "c"


# -- create / upsert / delete / persist ------------------------------------------------------------------------------
def test_upsert_replaces_and_keeps_created_at_and_fitted_threshold(con):
    create(con, "r", 0, min_similarity=0.5)
    created = con.execute("SELECT created_at FROM ruvector_list_routes()").fetchone()[0]
    con.execute("SELECT ruvector_create_route('r', 'new', 'other', priority := 3, embedding := ?::FLOAT[])",
                [vec(dim(con), 1, 1, 2)])
    assert routes(con) == [("r", "new", "other", 3, 0.5, None, 0)]
    assert con.execute("SELECT created_at FROM ruvector_list_routes()").fetchone()[0] == created
    assert match(con, vec(dim(con), 1, 1, 2), 1)[0][0] == "r"
    con.execute("SELECT ruvector_create_route('r', 'new', 'other', embedding := ?::FLOAT[], min_similarity := -1)",
                [vec(dim(con), 1, 1, 2)])
    assert routes(con)[0][4] == -1.0


def test_persistence_across_connections(store):
    con = td.connect(store)
    create(con, "kept", 0, priority=2, conditions='{"user_tiers": ["pro"]}', min_similarity=None)
    con.execute("SELECT ruvector_add_route_example('kept', 'an example utterance')").fetchall()
    again = td.connect(store)
    assert routes(again) == [("kept", "desc", "kept-agent", 2, None, '{"user_tiers": ["pro"]}', 1)]
    assert again.execute("SELECT ruvector_delete_route('kept')").fetchone() == (True,)
    assert routes(td.connect(store)) == []
    assert routes(con) == []  # the first connection sees the delete too


def test_examples_aggregate_by_max(con):
    d = dim(con)
    create(con, "a", 0)
    create(con, "b", 2)
    # b's example points at axis 5; a query along axis 5 matches b through the example at similarity 1
    con.execute("SELECT ruvector_add_route_example('b', ?::FLOAT[])", [vec(d, 1, 5, 6)]).fetchall()
    got = match(con, vec(d, 1, 5, 6), 3)
    assert got[0][0] == "b" and got[0][1] == pytest.approx(1.0, abs=1e-5)
    assert match(con, vec(d, 1, 2), 1)[0][1] == pytest.approx(1.0, abs=1e-5)  # its own vector still counts
    texts = pa.table({"route": ["a", "a", "a", None], "text": ["hello there", "hello there", None, "x"]})
    con.register("ex", texts)
    assert [r[0] for r in con.execute("SELECT ruvector_add_route_example(route, text) FROM ex").fetchall()] == \
        [True, True, False, False]
    assert {r[0]: r[6] for r in routes(con)} == {"a": 1, "b": 1}  # the duplicate text is stored once


def test_quoted_names_round_trip(con):
    name = "o'brien\"; DROP --"
    create(con, name, 0)
    create(con, "plain", 1)
    assert [r[0] for r in routes(con)] == [name, "plain"]
    assert match(con, vec(dim(con), 1, 0, 2), 1)[0][0] == name
    con.execute("SELECT ruvector_add_route_example(?, 'some text')", [name]).fetchall()
    con.execute("SELECT ruvector_delete_route(?)", [name]).fetchall()
    assert [r[0] for r in routes(con)] == ["plain"]


# -- thresholds, priority, confidence ---------------------------------------------------------------------------
def test_min_similarity_drops_routes_and_out_of_scope_returns_nothing(con):
    d = dim(con)
    create(con, "a", 0, min_similarity=0.9)
    create(con, "b", 2, min_similarity=0.5)
    assert [r[0] for r in match(con, vec(d, 0.95, 0, 3))] == ["a"]
    assert match(con, vec(d, 0.85, 0, 3)) == []  # 0.85 < 0.9 and ~0 to b
    assert con.execute("SELECT ruvector_semantic_route(?::FLOAT[]) = []", [vec(d, 0.85, 0, 3)]).fetchone()[0]


def test_a_route_far_ahead_of_every_other_matches_below_its_threshold(con, store):
    """The default operating point (issue 23): an unfitted route matches at or above its threshold, or, when it leads
    every other route by the lead (one spread of the embedder), at or above its lower lead threshold."""
    d = dim(con)
    for name, axis in (("a", 0), ("b", 2)):
        con.execute("SELECT ruvector_create_route(?, 'desc', ?, embedding := ?::FLOAT[])",
                    [name, f"{name}-agent", vec(d, 1.0, axis, 1)]).fetchall()
    snap = td.Engine(store).routes.snapshot()
    high, low, lead = float(snap.threshold[0]), float(snap.lead_threshold[0]), snap.lead
    assert low < high and 0 < lead < high - low + 1

    def query(to_a: float, to_b: float) -> list[float]:
        q = np.zeros(d)
        q[0], q[2] = to_a, to_b
        q[5] = math.sqrt(1 - to_a ** 2 - to_b ** 2)
        return q.tolist()

    between = (low + high) / 2
    assert [r[0] for r in match(con, query(between, between - lead - 0.01))] == ["a"]  # far ahead: matches
    assert match(con, query(between, between - lead + 0.01)) == []  # not far enough ahead, below the threshold
    assert match(con, query(low - 0.01, 0.0)) == []  # far ahead but below the lead threshold
    assert [r[0] for r in match(con, query(high + 0.01, high))] == ["a", "b"]  # above the threshold: no lead needed
    con.execute("SELECT ruvector_create_route('a', 'desc', 'a-agent', embedding := ?::FLOAT[], "
                "min_similarity := ?)", [vec(d, 1.0, 0, 1), high]).fetchall()
    assert match(con, query(between, 0.0)) == []  # a fitted min_similarity is the whole rule


def test_priority_breaks_near_ties_only(con):
    d = dim(con)
    base = np.zeros(d)
    base[0], base[1] = 1, 1
    a, b = np.zeros(d), np.zeros(d)
    a[0] = 1
    b[0], b[2] = 1, 0.1  # cos(q, b) slightly below cos(q, a)
    con.execute("SELECT ruvector_create_route('a', 'x', 't', embedding := ?::FLOAT[], priority := -1)",
                [a.tolist()])
    con.execute("SELECT ruvector_create_route('b', 'x', 't', embedding := ?::FLOAT[], priority := 5)", [b.tolist()])
    got = match(con, base.tolist())
    assert got[0][0] == "b" and got[1][0] == "a" and got[1][1] > got[0][1]  # within 0.01: priority wins
    far = np.zeros(d)
    far[0], far[2] = 1, 0.6
    con.execute("SELECT ruvector_create_route('b', 'x', 't', embedding := ?::FLOAT[], priority := 5)",
                [far.tolist()])
    assert match(con, base.tolist())[0][0] == "a"  # a clear similarity lead beats priority


def test_confidence_is_a_probability(con):
    d = dim(con)
    for i in range(5):
        create(con, f"r{i}", i, other=10)
    rng = np.random.default_rng(0)
    qs = rng.standard_normal((50, d))
    con.register("q", pa.table({"q": pa.array(qs.tolist(), pa.list_(pa.float64()))}))
    rows = con.execute("SELECT ruvector_semantic_route(q, top_k := 5) FROM q").fetchall()
    for (listed,) in rows:
        conf = [m["confidence"] for m in listed]
        assert len(listed) == 5 and all(0 <= c <= 1 for c in conf)  # every route listed, none filtered
        assert sum(conf) <= 1 + 1e-6
        sims = [m["similarity"] for m in listed]
        assert sims == sorted(sims, reverse=True)
    top2 = con.execute("SELECT ruvector_semantic_route(q, top_k := 2) FROM q").fetchall()
    assert all(sum(m["confidence"] for m in listed) <= 1 + 1e-6 for (listed,) in top2)
    # a random query is near what background text scores: its best route is not a confident match; a query on a
    # route's own vector is
    assert np.mean([listed[0]["confidence"] for (listed,) in rows]) < 0.5
    assert match(con, vec(d, 1.0, 0, 10), 1)[0][2] > 0.9


# -- conditions -------------------------------------------------------------------------------------------------------
def test_time_range_daily_and_absolute(con):
    d = dim(con)
    create(con, "office", 0, conditions='{"time_range": ["09:00", "17:00"]}')
    create(con, "night", 0, conditions='{"time_range": ["22:00", "06:00"]}')
    create(con, "q1", 0, conditions='{"time_range": ["2024-01-01T00:00:00Z", "2024-04-01"]}')
    q = vec(d, 1, 0)

    def names(ts):
        return sorted(r[0] for r in match(con, q, 5, ts=ts))

    assert names("2024-02-01 10:00:00") == ["office", "q1"]
    assert names("2024-02-01 23:30:00") == ["night", "q1"]
    assert names("2024-02-01 05:59:59") == ["night", "q1"]
    assert names("2024-02-01 17:00:00") == ["q1"]  # end is exclusive
    assert names("2024-05-01 12:00:00") == ["office"]
    # a TIMESTAMPTZ is compared in UTC whatever the session time zone; a naive TIMESTAMP is read as UTC
    con.execute("SET TimeZone = 'America/New_York'")
    got = con.execute("SELECT route_name FROM ruvector_semantic_route(?::FLOAT[], top_k := 5, "
                      "ts := TIMESTAMPTZ '2024-02-01 20:00:00-05') ORDER BY 1", [q]).fetchall()
    assert [r[0] for r in got] == ["night", "q1"]  # 20:00 in New York is 01:00 UTC
    got = con.execute("SELECT route_name FROM ruvector_semantic_route(?::FLOAT[], top_k := 5, "
                      "ts := TIMESTAMP '2024-02-01 10:00:00') ORDER BY 1", [q]).fetchall()
    assert [r[0] for r in got] == ["office", "q1"]


def test_user_tiers(con):
    d = dim(con)
    create(con, "premium", 0, conditions='{"user_tiers": ["pro", "enterprise"]}')
    create(con, "general", 1)
    q = vec(d, 0.9, 0, 1)  # premium 0.9, general ~0.44
    assert [r[0] for r in match(con, q, 1, user_tier="pro")] == ["premium"]
    assert [r[0] for r in match(con, q, 1, user_tier="free")] == ["general"]
    assert [r[0] for r in match(con, q, 1)] == ["general"]  # NULL tier does not pass a tier rule
    log = pa.table({"q": pa.array([q] * 3, pa.list_(pa.float64())), "tier": ["enterprise", None, "Pro"]})
    con.register("log", log)
    got = con.execute("SELECT ruvector_semantic_route(q, top_k := 1, user_tier := tier)[1].route_name FROM log"
                      ).fetchall()
    assert [r[0] for r in got] == ["premium", "general", "general"]  # tiers are case-sensitive


def test_rate_limit_counts_rows_per_minute_in_order(con):
    d = dim(con)
    create(con, "limited", 0, conditions='{"rate_limit_per_min": 2}')
    create(con, "fallback", 1)
    q = vec(d, 0.9, 0, 1)  # limited 0.9, fallback ~0.44
    ts = ["2024-01-01 10:00:01", "2024-01-01 10:00:05", "2024-01-01 10:00:10", "2024-01-01 10:00:59",
          "2024-01-01 10:01:00", "2024-01-01 10:01:30", "2024-01-01 10:01:31"]
    log = pa.table({"i": list(range(len(ts))), "q": pa.array([q] * len(ts), pa.list_(pa.float64())),
                    "ts": pa.array(ts).cast(pa.timestamp("us"))})
    con.register("log", log)
    got = con.execute("SELECT ruvector_semantic_route(q, ts := ts) FROM log ORDER BY i").fetchall()
    firsts = [listed[0]["route_name"] for (listed,) in got]
    assert firsts == ["limited", "limited", "fallback", "fallback", "limited", "limited", "fallback"]
    # once exhausted, the route is not listed at all for the rest of that minute
    assert [len(listed) for (listed,) in got] == [2, 2, 1, 1, 2, 2, 1]


def test_rate_limit_across_chunks_in_python_api(store):
    engine = td.Engine(store)
    d = engine.dim
    e = np.eye(d, dtype=np.float32)
    engine.routes.create_route("limited", "x", "t", embedding=e[0], conditions={"rate_limit_per_min": 3000},
                               min_similarity=-1)
    engine.routes.create_route("fallback", "x", "t", embedding=e[0] * 0.5 + e[1], min_similarity=-1)
    n = 5000
    q = np.repeat(e[:1], n, axis=0)
    ts = np.full(n, np.datetime64("2024-01-01T10:00:00", "us"))
    names = best_route_names(engine, q, ts=ts)
    assert names[:3000] == ["limited"] * 3000 and names[3000:] == ["fallback"] * 2000
    assert rate_limit_zero_blocks(engine)


def rate_limit_zero_blocks(engine) -> bool:
    engine.routes.create_route("limited", "x", "t", embedding=np.eye(engine.dim)[0],
                               conditions={"rate_limit_per_min": 0}, min_similarity=-1)
    return best_route_names(engine, np.eye(engine.dim, dtype=np.float32)[:1]) == ["fallback"]


def best_route_names(engine, queries, **options) -> list:
    """The best route's name per query (None when no route matches), as ruvector_semantic_route lists it first."""
    return [m[0]["route_name"] if m else None for m in engine.semantic_match(queries, top_k=1, **options).to_pylist()]


# -- batches, NULLs ---------------------------------------------------------------------------------------------------
def test_null_rows_and_batch_boundaries(con):
    d = dim(con)
    for i in range(4):
        create(con, f"r{i}", i, other=10)
    n = 5000
    axis = np.arange(n) % 4
    texts = pa.array([None if i % 997 == 0 else f"row {i}" for i in range(n)])
    vectors = pa.array([None if i % 1000 == 1 else vec(d, 0.9, int(axis[i]), 10) for i in range(n)],
                       pa.list_(pa.float64()))
    con.register("big", pa.table({"i": np.arange(n), "v": vectors, "t": texts}))
    got = con.execute("SELECT i, ruvector_semantic_route(v, top_k := 1) FROM big ORDER BY i").fetchall()
    for i, listed in got:
        if i % 1000 == 1:
            assert listed == []
        else:
            assert listed[0]["route_name"] == f"r{axis[i]}"
            assert listed[0]["similarity"] == pytest.approx(0.9, abs=1e-5)
    text_rows = con.execute("SELECT i, len(ruvector_semantic_route(t)) FROM big ORDER BY i").fetchall()
    assert all((n_listed == 0) == (i % 997 == 0) for i, n_listed in text_rows)


# -- bad input ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sql, params, message", [
    ("SELECT * FROM ruvector_semantic_route('hi', top_k := 0)", [], "top_k=0"),
    ("SELECT * FROM ruvector_semantic_route('hi', top_k := -2)", [], "top_k=-2"),
    ("SELECT ruvector_delete_route('nope')", [], "route 'nope' not found"),
    ("SELECT ruvector_create_route('n', 'd', 't', embedding := [1.0, 2.0, 3.0])", [], "embedding='length 3'"),
    ("SELECT ruvector_create_route('n', 'd', 't', conditions := '{bad json')", [], "conditions='{bad json'"),
    ("SELECT ruvector_create_route('n', 'd', 't', conditions := '{\"weekday\": 1}')", [], "conditions='weekday'"),
    ("SELECT ruvector_create_route('n', 'd', 't', conditions := '{\"time_range\": [\"9\", \"x\"]}')", [],
     "conditions.time_range"),
    ("SELECT ruvector_create_route('n', 'd', 't', conditions := '{\"rate_limit_per_min\": -1}')", [],
     "conditions.rate_limit_per_min=-1"),
    ("SELECT ruvector_create_route('n', 'd', 't', min_similarity := 1.5)", [], "min_similarity=1.5"),
    ("SELECT ruvector_create_route('n', 'd', 't', min_similarity := -3)", [], "min_similarity=-3.0"),
    ("SELECT ruvector_create_route('n', 'd', 't', priority := 1.5)", [], "priority=1.5"),
    ("SELECT ruvector_create_route('', 'd', 't')", [], "name=''"),
    ("SELECT ruvector_create_route('n', NULL, 't')", [], "description=None"),
    ("SELECT ruvector_create_route('n', 'd', NULL)", [], "target_agent=None"),
    ("SELECT ruvector_add_route_example('nope', 'text')", [], "route 'nope' not found"),
])
def test_bad_input_names_argument_and_leaves_store_unchanged(con, sql, params, message):
    create(con, "existing", 0, priority=1, min_similarity=0.25)
    con.execute("SELECT ruvector_add_route_example('existing', 'ex')").fetchall()
    before = routes(con)
    with pytest.raises(duckdb.Error) as info:
        con.execute(sql, params).fetchall()
    assert message in str(info.value)
    assert routes(con) == before


def test_negative_priority_is_allowed(con):
    create(con, "low", 0, priority=-3)
    assert routes(con)[0][3] == -3


def test_struct_conditions_from_sql(con):
    con.execute("SELECT ruvector_create_route('s', 'd', 't', conditions := {'user_tiers': ['pro'], "
                "'rate_limit_per_min': 10})").fetchall()
    assert routes(con)[0][5] == '{"rate_limit_per_min": 10, "user_tiers": ["pro"]}'


# -- fitting ------------------------------------------------------------------------------------------------------------
def test_fit_routes_from_parquet_persists_thresholds(con, tmp_path):
    for i, name in enumerate(["billing", "weather", "travel"]):
        con.execute("SELECT ruvector_create_route(?, ?, ?)", [name, f"{name} questions", f"{name}-agent"])
    data = pa.table({
        "question": ["why was my card charged twice", "refund my invoice", "will it rain tomorrow",
                     "how hot is it outside", "book a flight to paris", "find me a hotel in rome",
                     "what is the meaning of life", "tell me a joke about cats"],
        "label": ["billing", "billing", "weather", "weather", "travel", "travel", None, None],
    })
    path = tmp_path / "labeled.parquet"
    pq.write_table(data, path)
    report = con.execute(f"SELECT * FROM ruvector_fit_routes('{path}', text_column := 'question', "
                         "route_column := 'label', out_of_scope_weight := 5) ORDER BY route_name").fetchall()
    cols = [d[0] for d in con.description]
    rows = [dict(zip(cols, r)) for r in report]
    assert [r["route_name"] for r in rows] == ["billing", "travel", "weather"]
    assert all(r["examples"] == 8 and 0 <= r["accuracy"] <= 1 for r in rows)
    assert {r["route_name"]: r["support"] for r in rows} == {"billing": 2, "travel": 2, "weather": 2}
    stored = {r[0]: r[4] for r in routes(con)}
    assert stored == {r["route_name"]: r["min_similarity"] for r in rows}
    assert all(-1 <= v <= 1 for v in stored.values())
    # the fitted thresholds are what matching now uses: the report's predictions are reproducible
    con.register("labeled", data)
    predicted = con.execute("SELECT label, (ruvector_semantic_route(question, top_k := 1))[1].route_name "
                            "FROM labeled").fetchall()
    accuracy = np.mean([a == b for a, b in predicted])
    assert accuracy == pytest.approx(rows[0]["accuracy"])


def test_fit_rejects_unknown_label_and_changes_nothing(con):
    con.execute("SELECT ruvector_create_route('a', 'billing questions', 't')").fetchall()
    con.register("bad", pa.table({"text": ["x y", "z"], "route": ["a", "no_such_route"]}))
    before = routes(con)
    with pytest.raises(duckdb.Error, match="route_column='no_such_route'"):
        con.execute("SELECT * FROM ruvector_fit_routes('bad')").fetchall()
    assert routes(con) == before


# -- kernels --------------------------------------------------------------------------------------------------------------
def test_kernels_match_a_sort():
    rng = np.random.default_rng(3)
    q = rng.standard_normal((300, 16)).astype(np.float32)
    r = rng.standard_normal((40, 16)).astype(np.float32)
    s = q @ r.T
    for k in (1, 3, 20, 40, 50):
        idx, val = top_k(s.copy(), k)
        assert np.array_equal(idx, np.argsort(-s, axis=1, kind="stable")[:, : min(k, 40)])
        i2, v2, conf = match_top_k(q, r, k, chunk=64)
        assert np.array_equal(i2, idx)
        np.testing.assert_allclose(v2, val, rtol=1e-5, atol=1e-5)  # chunked GEMM: float32 summation order
        e = np.exp((s - s.max(1, keepdims=True)) / 0.05)
        assert np.allclose(conf, np.take_along_axis(e / e.sum(1, keepdims=True), idx, axis=1), atol=1e-5)
    scores = np.array([[0.80, 0.795, 0.5], [0.8, 0.7, -np.inf], [-np.inf] * 3])
    assert decide(scores, np.array([0.0, 1.0, 9.0]), 0.01).tolist() == [1, 0, -1]


def test_fit_thresholds_separates_out_of_scope():
    # route 0 scores 0.9 on its examples and 0.3 on out-of-scope ones: the threshold lands between
    scores = np.array([[0.9, 0.1], [0.85, 0.2], [0.3, 0.1], [0.35, 0.2], [0.1, 0.8]], np.float32)
    labels = np.array([0, 0, -1, -1, 1])
    theta, _ = fit_thresholds(scores, labels, min_gain=1.0)
    assert 0.35 < theta[0] < 0.85
    assert ((scores >= theta).argmax(1)[[0, 1, 4]] == [0, 0, 1]).all()


def test_parse_conditions_canonical():
    assert parse_conditions(None) is None and parse_conditions("{}") is None
    assert parse_conditions({"user_tiers": "pro"}) == '{"user_tiers": ["pro"]}'
    with pytest.raises(td.InvalidArgument, match="start and end must differ"):
        parse_conditions({"time_range": ["09:00", "09:00"]})
