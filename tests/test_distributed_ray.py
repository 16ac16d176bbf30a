"""Ray Data: 2 workers route a 20K-row Parquet log with map_batches and write the SQL path's decisions."""

from __future__ import annotations

import pytest
from _distributed import assert_same_decisions, request_log, routing_engine, sql_decisions

ray = pytest.importorskip("ray", reason='Ray is not installed: pip install "tinydancer_duck[ray]"')

from tinydancer_duck.distributed import read_routed, route_parquet


def test_ray_two_workers_equal_the_sql_path(tmp_path):
    engine = routing_engine(tmp_path / "store")
    log = request_log(tmp_path / "log.parquet", 20_000)
    want = sql_decisions(engine, log)
    report = route_parquet(log, tmp_path / "out", engine.snapshot(), engine="ray", workers=2,
                           keep=["request_id"], batch_rows=4096)
    assert report.rows == 20_000 and report.workers == 2
    got = read_routed(tmp_path / "out")
    assert len(list((tmp_path / "out").glob("*.parquet"))) >= 2  # written by more than one task
    assert_same_decisions(got, want)
