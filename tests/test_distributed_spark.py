"""Spark: mapInArrow over 2 local cores writes the SQL path's decisions (needs pyspark and a Java runtime)."""

from __future__ import annotations

import shutil

import pytest
from _distributed import assert_same_decisions, request_log, routing_engine, sql_decisions

pytest.importorskip("pyspark", reason='PySpark is not installed: pip install "tinydancer_duck[spark]"')
if shutil.which("java") is None:
    pytest.skip("Spark needs a Java runtime and none is on PATH (apt-get install openjdk-17-jre-headless)",
                allow_module_level=True)

from tinydancer_duck.distributed import read_routed, route_parquet


def test_spark_two_workers_equal_the_sql_path(tmp_path):
    engine = routing_engine(tmp_path / "store")
    log = request_log(tmp_path / "log.parquet", 10_000)
    want = sql_decisions(engine, log)
    report = route_parquet(log, tmp_path / "out", engine.snapshot(), engine="spark", workers=2,
                           keep=["request_id"], batch_rows=4096)
    assert report.rows == 10_000
    assert_same_decisions(read_routed(tmp_path / "out"), want)
