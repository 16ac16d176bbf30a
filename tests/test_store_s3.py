"""`tinydancer doctor` and `--repair` on a store on object storage (moto on loopback), issue 25.

Before: the doctor called an ``s3://`` store "not a directory"; a half-done write whose usage table another machine
had appended to, or whose bucket was emptied, made every ``Engine()`` raise.
"""

from __future__ import annotations

import json

import pytest

pytest.importorskip("moto.server", reason='moto is not installed: pip install "tinydancer_duck[s3]"')
boto3 = pytest.importorskip("boto3", reason='boto3 is not installed: pip install "tinydancer_duck[s3]"')

from test_distributed_s3 import s3
from test_store_journal import _crash_between_commits, _usage_rows

import tinydancer_duck as td
from tinydancer_duck import cli
from tinydancer_duck.cli._doctor import check_store

#: The moto server fixture, shared with test_distributed_s3: pytest finds it by its module-level name.
SHARED_FIXTURES = (s3,)


@pytest.fixture
def remote(s3, tmp_path, monkeypatch, request):
    """A fresh store URI on the bucket, its side files (journal, locks) under this test's own cache folder."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    uri = f"s3://tinydancer/{request.node.name[:40]}"
    engine = td.Engine(uri, embedder="hashing", storage_options=s3)
    engine.register_agent("bot", "llm", ["chat"], cost_per_call=0.01)
    engine.usage.record("bot", 0.5, True, 10.0, request_id="first")
    return uri, engine


def _doctor(uri: str, s3: dict, *more: str) -> int:
    return cli.main(["doctor", "--store", uri, "--storage-options", json.dumps(s3), *more])


def test_the_doctor_checks_an_s3_store(remote, s3, capsys):
    uri, _ = remote
    assert _doctor(uri, s3) == 0
    out = capsys.readouterr().out
    assert "healthy" in out and "agents: 1 rows" in out and "usage: 1 rows" in out


def test_a_half_done_write_on_s3_is_finished_after_another_machine_appended(remote, s3, monkeypatch, capsys):
    uri, engine = remote
    _crash_between_commits(monkeypatch, engine, lambda: engine.usage.record("bot", 0.5, True, 42.0,
                                                                            request_id="the-event"))
    import lancedb

    lancedb.connect(uri, storage_options=s3).open_table("usage").add(_usage_rows(["from-elsewhere"]))
    assert any("half done" in p for p in check_store(uri, s3).problems)
    assert _doctor(uri, s3, "--repair") == 0
    assert "is on object storage: it is not copied" in capsys.readouterr().out
    reopened = td.Engine(uri, embedder="hashing", storage_options=s3)
    assert sorted(reopened.store.read("usage")["request_id"].to_pylist()) == ["first", "from-elsewhere",
                                                                              "the-event"]
    assert reopened.get_agent("bot")["total_requests"] == 2 and check_store(uri, s3).healthy


def test_an_emptied_bucket_is_reported_not_wedged(remote, s3, monkeypatch):
    uri, engine = remote
    _crash_between_commits(monkeypatch, engine, lambda: engine.usage.record("bot", 0.5, True, 42.0))
    bucket = boto3.resource("s3", endpoint_url=s3["aws_endpoint"], aws_access_key_id="test",
                            aws_secret_access_key="test", region_name="us-east-1").Bucket("tinydancer")
    bucket.objects.filter(Prefix=uri.removeprefix("s3://tinydancer/")).delete()
    report = check_store(uri, s3)
    assert any("holds no tables, but this machine recorded writes to it" in p for p in report.problems), \
        report.text()
    reopened = td.Engine(uri, embedder="hashing", storage_options=s3)  # opens: the write is set aside
    assert "replaced or emptied" in " ".join(reopened.store.recovery_notes)
    assert reopened.list_agents().num_rows == 0
    assert _doctor(uri, s3, "--repair") == 0 and check_store(uri, s3).healthy
