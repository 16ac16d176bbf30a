"""The store on object storage: an S3-compatible server (moto) on loopback, started and stopped by a fixture;
Engine/connect/snapshot/route-parquet on ``s3://`` with storage_options, the same decisions as a local store."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request

import pytest
from _distributed import assert_same_decisions, request_log, routing_engine, sql_decisions

pytest.importorskip("moto.server", reason='moto is not installed: pip install "tinydancer_duck[s3]"')
boto3 = pytest.importorskip("boto3", reason='boto3 is not installed: pip install "tinydancer_duck[s3]"')

from tinydancer_duck.cli._main import main
from tinydancer_duck.distributed import read_routed


@pytest.fixture(scope="module")
def s3():
    """storage_options for a fresh bucket on a moto server at 127.0.0.1 (stopped after the module)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("moto server did not start") from None
                time.sleep(0.1)
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                     region_name="us-east-1").create_bucket(Bucket="tinydancer")
        yield {"aws_access_key_id": "test", "aws_secret_access_key": "test", "aws_region": "us-east-1",
               "aws_endpoint": endpoint, "allow_http": "true"}
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_a_store_on_s3_routes_like_a_local_one(s3, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # Engine("s3://...") once created a local ./s3: directory: it must not
    remote = routing_engine("s3://tinydancer/store", storage_options=s3)
    local = routing_engine(tmp_path / "local")
    log = request_log(tmp_path / "log.parquet", 3000)
    assert_same_decisions(sql_decisions(remote, log), sql_decisions(local, log))
    assert not (tmp_path / "s3:").exists()
    import tinydancer_duck as td

    con = td.connect("s3://tinydancer/store", storage_options=s3)  # another connection sees the agents
    assert con.execute("SELECT count(*) FROM ruvector_list_agents()").fetchone()[0] == local.list_agents().num_rows


def test_snapshot_and_route_parquet_from_an_s3_store(s3, tmp_path):
    import json

    engine = routing_engine("s3://tinydancer/cli", storage_options=s3)
    log = request_log(tmp_path / "log.parquet", 2000)
    want = sql_decisions(engine, log)
    options = json.dumps(s3)
    assert main(["snapshot", "--store", "s3://tinydancer/cli", "--storage-options", options,
                 "-o", str(tmp_path / "snap.tds")]) == 0
    assert main(["route-parquet", str(log), str(tmp_path / "out"), "--snapshot", str(tmp_path / "snap.tds"),
                 "--keep", "request_id"]) == 0
    assert_same_decisions(read_routed(tmp_path / "out"), want)
    assert main(["route-parquet", str(log), str(tmp_path / "direct"), "--store", "s3://tinydancer/cli",
                 "--storage-options", options, "--keep", "request_id"]) == 0
    assert_same_decisions(read_routed(tmp_path / "direct"), want)


def test_usage_appends_from_two_processes_are_all_kept(s3, tmp_path):
    """What is safe on object storage (README "Beyond one machine"): appends are LanceDB commits and none is lost;
    the agents' running stats, a read-modify-write, hold among one machine's processes (the lock files of a remote
    store are kept on the local machine), which is what two processes here are."""
    engine = routing_engine("s3://tinydancer/usage", storage_options=s3)
    agent = engine.list_agents()["name"][0].as_py()
    code = (f"import tinydancer_duck as td\ne = td.Engine('s3://tinydancer/usage', storage_options={s3!r})\n"
            f"for _ in range(8):\n    e.usage.record([{agent!r}], [0.001], [True], [100.0])\n")
    writers = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(2)]
    assert [w.wait(timeout=300) for w in writers] == [0, 0]
    assert engine.store.count("usage") == 16
    stats = engine.list_agents().to_pylist()
    assert next(a["total_requests"] for a in stats if a["name"] == agent) == 16
