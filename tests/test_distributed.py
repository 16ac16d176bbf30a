"""route_batch and its siblings: pure Arrow batch -> batch functions of a snapshot that decide like the SQL path,
whatever the batch boundaries; the snapshot pickles small and round-trips through a file; what is not map-only is
refused with an error that says why; route-parquet on the local engine."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _distributed import assert_same_decisions, request_log, routing_engine, sql_decisions

import tinydancer_duck as td
from tinydancer_duck.cli._main import main
from tinydancer_duck.distributed import read_routed, route_parquet
from tinydancer_duck.errors import InvalidArgument, ModelError
from tinydancer_duck.routing import ROUTE_FIELDS


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    engine = routing_engine(folder / "store")
    log = request_log(folder / "log.parquet", 5000)
    return engine, engine.snapshot(), log, sql_decisions(engine, log)


def test_route_batch_equals_the_sql_path_whatever_the_batch_boundaries(setup):
    _, snapshot, log, want = setup
    table = pq.read_table(log)
    for size in (5000, 2048, 999, 1):
        parts = [td.route_batch(snapshot, table.slice(start, size) if size > 1 else table.slice(start, 1))
                 for start in range(0, table.num_rows if size > 1 else 40, size)]
        got = pa.Table.from_batches(parts)
        if size == 1:
            assert_same_decisions(got, want.slice(0, 40))
        else:
            assert_same_decisions(got, want)
    assert want["agent_name"].null_count >= 2  # the NULL and the empty request: no agent, with a reason


def test_output_keeps_the_asked_columns_then_the_decision_fields(setup):
    _, snapshot, log, _ = setup
    batch = pq.read_table(log).slice(0, 10)
    assert td.route_batch(snapshot, batch).schema.names == [*batch.schema.names, *ROUTE_FIELDS]
    assert td.route_batch(snapshot, batch, keep=["request_id"]).schema.names == ["request_id", *ROUTE_FIELDS]
    assert td.route_batch(snapshot, batch, keep=[]).num_rows == 10
    empty = td.route_batch(snapshot, batch.slice(0, 0), keep=["request_id"])
    assert empty.num_rows == 0 and empty.schema.names == ["request_id", *ROUTE_FIELDS]
    cheap = td.route_batch(snapshot, batch, optimize_for="cost", max_cost=0.01)
    assert np.nanmax(cheap.column("estimated_cost").to_numpy(zero_copy_only=False)) <= 0.01


def test_bad_arguments_name_the_argument(setup):
    _, snapshot, log, _ = setup
    batch = pq.read_table(log).slice(0, 10)
    cases = [({"request": "prompt"}, "request"), ({"keep": ["nope"]}, "keep"), ({"keep": ["agent_name"]}, "keep"),
             ({"optimize_for": "cheapest"}, "optimize_for"), ({"max_cost": -1.0}, "max_cost"),
             ({"num_fallbacks": -1}, "num_fallbacks"), ({"optimize_for": "total_cost"}, "optimize_for"),
             ({"budget": 10.0}, "budget"), ({"max_costs": 1.0}, "max_costs")]
    for kwargs, argument in cases:
        with pytest.raises(InvalidArgument) as caught:
            td.route_batch(snapshot, batch, **kwargs)
        assert caught.value.argument == argument, kwargs
    with pytest.raises(InvalidArgument, match="one λ for the whole log"):
        td.route_batch(snapshot, batch, budget=10.0)


def test_rate_limited_routes_are_refused_with_the_reason(tmp_path):
    engine = routing_engine(tmp_path / "store")
    engine.routes.create_route("limited", "billing questions", engine.list_agents()["name"][0].as_py(),
                               conditions='{"rate_limit_per_min": 5}')
    batch = pa.record_batch({"request": ["hello"]})
    with pytest.raises(InvalidArgument, match="rate_limit_per_min=5.*whole log in order"):
        td.route_batch(engine.snapshot(), batch)


def test_classify_and_semantic_batches_equal_the_engine(setup):
    engine, snapshot, log, _ = setup
    table = pq.read_table(log).slice(0, 3000)
    classified = pa.Table.from_batches([td.classify_batch(snapshot, table.slice(s, 1000), keep=["request_id"])
                                        for s in range(0, 3000, 1000)])
    want = engine.classify_struct(table["request"])
    assert classified["top_category"].to_pylist() == want.field("top_category").to_pylist()
    matched = td.semantic_route_batch(snapshot, table, keep=["request_id"], top_k=2)
    assert matched.column("routes").to_pylist() == engine.semantic_match(table["request"], 2).to_pylist()
    assert any(matched.column("routes").to_pylist())  # the weather route matched someone


def test_snapshot_pickles_small_and_unpickles_to_the_same_decisions(setup):
    _, snapshot, log, want = setup
    data = pickle.dumps(snapshot)
    assert len(data) < 4_000_000  # the packaged 30522 x 256 table travels by fingerprint, not as 31 MB
    again = pickle.loads(data)
    assert again.embedder is snapshot.embedder  # this process's shared embedder
    assert_same_decisions(pa.Table.from_batches([td.route_batch(again, pq.read_table(log))]), want)


def test_snapshot_file_round_trips_and_refuses_other_files(setup, tmp_path):
    _, snapshot, log, want = setup
    path = snapshot.save(tmp_path / "snap.tds")
    loaded = td.RoutingSnapshot.load(path)
    assert loaded.as_of_us == snapshot.as_of_us and loaded.agents.names.equals(snapshot.agents.names)
    assert_same_decisions(pa.Table.from_batches([td.route_batch(loaded, pq.read_table(log))]), want)
    (tmp_path / "other.tds").write_bytes(b"PAR1 not a snapshot")
    with pytest.raises(InvalidArgument, match="not a tinydancer snapshot file"):
        td.RoutingSnapshot.load(tmp_path / "other.tds")
    data = path.read_bytes()  # an edited header no longer matches the file's checksum
    (tmp_path / "old.tds").write_bytes(data.replace(b'"version": "', b'"version": "0.0.0-', 1))
    with pytest.raises(InvalidArgument, match="is damaged: its bytes do not match the checksum"):
        td.RoutingSnapshot.load(tmp_path / "old.tds")
    with pytest.raises(InvalidArgument, match="cannot be read"):
        td.RoutingSnapshot.load(tmp_path / "missing.tds")


def test_a_snapshot_of_another_embedder_table_is_refused(setup, monkeypatch):
    _, snapshot, _, _ = setup
    from tinydancer_duck.embed import _embedders

    data = pickle.dumps(snapshot)
    monkeypatch.setattr(_embedders, "_fingerprint", ["0" * 32])  # as if this installation shipped another table
    with pytest.raises(ModelError, match="install the same tinydancer_duck version on every worker"):
        pickle.loads(data)


def test_a_worker_imports_only_numpy_and_pyarrow():
    code = ("import sys, time; t = time.perf_counter(); from tinydancer_duck import route_batch; "
            "import tinydancer_duck.distributed; print(round(time.perf_counter() - t, 2), "
            "*(m for m in ('duckdb', 'lancedb', 'polars', 'ray', 'pyspark') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[1:] == [], out


def test_route_parquet_local_and_the_cli(setup, tmp_path, capsys):
    engine, snapshot, log, want = setup
    report = route_parquet(log, tmp_path / "out", snapshot, keep=["request_id"], batch_rows=1500)
    assert report.rows == 5000
    assert_same_decisions(read_routed(tmp_path / "out"), want)
    assert main(["snapshot", "--store", str(engine.store.path), "-o", str(tmp_path / "snap.tds")]) == 0
    assert main(["route-parquet", str(log), str(tmp_path / "cli"), "--snapshot", str(tmp_path / "snap.tds"),
                 "--keep", "request_id", "--batch-rows", "4096"]) == 0
    assert "routed 5,000 rows on local" in capsys.readouterr().out
    assert_same_decisions(read_routed(tmp_path / "cli"), want)
    cost = main(["route-parquet", str(log), str(tmp_path / "cost"), "--store", str(engine.store.path),
                 "--optimize-for", "cost", "--keep", "request_id"])
    assert cost == 0
    by_cost = read_routed(tmp_path / "cost").sort_by("request_id")
    # the option reached the router: the decisions differ from balanced, and each says it was by cost (the total
    # need not be lower: cost takes the cheapest agent that can serve a request, a specialist for its own kind)
    assert by_cost["agent_name"].to_pylist() != want["agent_name"].to_pylist()
    assert all(" best by cost " in r or r.startswith(("semantic route", "no agent")) for r in
               by_cost["reasoning"].to_pylist())


def test_route_parquet_local_reports_progress_in_order_and_raises_a_batchs_error(setup, tmp_path):
    """Batches are routed on threads: progress still counts up in row order, and an error in a batch is raised."""
    _, snapshot, log, _ = setup
    seen: list[tuple[int, int]] = []
    route_parquet(log, tmp_path / "out", snapshot, keep=["request_id"], batch_rows=700,
                  progress=lambda done, total: seen.append((done, total)))
    done = [d for d, _ in seen]
    assert len(seen) >= 8 and done == sorted(done) and seen[-1] == (5000, 5000)
    assert read_routed(tmp_path / "out")["request_id"].to_pylist() == list(range(5000))
    with pytest.raises(InvalidArgument, match="request"):
        route_parquet(log, tmp_path / "bad", snapshot, request="no_such_column", batch_rows=700)


def test_route_parquet_errors_are_one_clean_line(setup, tmp_path, capsys):
    engine, _, log, _ = setup
    store = str(engine.store.path)
    code = main(["route-parquet", str(log), str(tmp_path / "o"), "--store", store, "--engine", "local",
                 "--workers", "2"])
    assert code == 2 and "invalid workers=2" in capsys.readouterr().err
    code = main(["route-parquet", str(tmp_path / "none"), str(tmp_path / "o"), "--store", store])
    assert code == 2 and "has no Parquet files" in capsys.readouterr().err
    code = main(["route-parquet", str(log), str(log.parent), "--store", store])
    assert code == 2 and "already holds Parquet files" in capsys.readouterr().err
    code = main(["route-parquet", str(log), str(tmp_path / "o"), "--store", str(tmp_path / "s")])
    assert code == 2 and "no store at" in capsys.readouterr().err and not (tmp_path / "s").exists()


def test_a_snapshot_with_an_outcome_model_routes_like_sql(tmp_path):
    from tinydancer_duck.datasets.generate_log import agent_specs, generate_log

    engine = td.Engine(tmp_path / "store")
    engine.register_agents(agent_specs())
    pq.write_table(generate_log(1200, seed=7), tmp_path / "train.parquet")
    engine.outcomes.train_log(str(tmp_path / "train.parquet"))
    log = tmp_path / "log.parquet"
    pq.write_table(generate_log(3000, seed=8).select(["request_id", "request"]), log)
    from _distributed import sql_decisions

    want = sql_decisions(engine, log)
    snapshot = pickle.loads(pickle.dumps(engine.snapshot()))
    assert snapshot.outcome is not None
    table = pq.read_table(log)
    got = pa.Table.from_batches([td.route_batch(snapshot, table.slice(s, 700), keep=["request_id"])
                                 for s in range(0, table.num_rows, 700)])
    assert_same_decisions(got, want)
