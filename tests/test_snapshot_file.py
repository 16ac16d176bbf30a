"""Snapshot files are data, never code (DESIGN §12, issue 25): a crafted file runs nothing, any changed byte is
refused, a signed file needs its key, an old pickled file is refused with how to re-create it, and every part of a
snapshot round-trips exactly, so a loaded snapshot routes every row as the original does."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import pickle
import random
import re
import zipfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from _distributed import assert_same_decisions, request_log, routing_engine, sql_decisions

import tinydancer_duck as td
from tinydancer_duck import _snapshot_file
from tinydancer_duck.cli._main import main
from tinydancer_duck.datasets.generate_log import agent_specs, generate_log
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.learn._classify import fit
from tinydancer_duck.options import FastGRNNConfig
from tinydancer_duck.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FLIPS = 20


@pytest.fixture(scope="module")
def rich(tmp_path_factory):
    """A snapshot with every part set: agents, a semantic route, a classifier over the agents' capabilities, an
    outcome model, settings other than the defaults, an open circuit breaker, agent and global budgets."""
    folder = tmp_path_factory.mktemp("snapfile")
    settings = Settings(breaker_failures=3, confidence_temperature=0.2, balanced_weights=(0.5, 0.2, 0.3))
    engine = td.Engine(folder / "store", settings=settings)
    engine.register_agents(agent_specs())
    engine.register_agent("coder", "llm", ["code", "math"], cost_per_1k_tokens=0.002, quality_score=0.7)
    pq.write_table(generate_log(600, seed=3), folder / "train.parquet")
    engine.outcomes.train_log(str(folder / "train.parquet"))
    engine.routes.create_route("weather", "questions about the weather forecast", "generalist")
    x = engine.embed(["solve this equation", "write a function", "integrate x squared", "fix my code"] * 10)
    model, _ = fit(x, ["math", "code", "math", "code"] * 10, FastGRNNConfig(hidden_dim=8, epochs=2),
                   identity=engine.embedder.identity)
    engine.classifier.save(model, "caps")
    for i in range(3):
        engine.usage.record("coder", 0.001, False, 10.0, request_id=f"fail-{i}")
    engine.budgets.set(100.0)
    engine.budgets.set(0.5, agent="premium")
    snapshot = engine.snapshot()
    assert snapshot.classifier is not None and snapshot.classifier_matches and snapshot.outcome is not None
    assert snapshot.circuit_open.any() and snapshot.budget_left is not None and snapshot.valid_until_us
    log = folder / "log.parquet"
    pq.write_table(generate_log(3000, seed=4).select(["request_id", "request"]), log)
    return snapshot, log


def assert_same(a, b, where="snapshot"):
    """Every part equal: the same types, array dtypes and shapes, values (NaN equal to NaN), Arrow types."""
    if dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            if f.init:
                assert_same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray) and a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"), where
    elif isinstance(a, (pa.Array, pa.ChunkedArray, pa.Table)):
        assert type(a) is type(b) and a.equals(b), where
        if isinstance(a, pa.Table):
            assert a.schema.equals(b.schema, check_metadata=True), where
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert type(a) is type(b) and list(a) == list(b), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, float) and np.isnan(a):
        assert type(a) is type(b) and np.isnan(b), where
    elif hasattr(a, "identity") and hasattr(a, "embed"):
        assert a.identity == b.identity and getattr(a, "max_tokens", 0) == getattr(b, "max_tokens", 0), where
    else:
        assert type(a) is type(b) and a == b, f"{where}: {a!r} != {b!r}"


def _routed(snapshot, log):
    table = pq.read_table(log)
    return pa.Table.from_batches([td.route_batch(snapshot, table.slice(s, 700), keep=["request_id"])
                                  for s in range(0, table.num_rows, 700)])


def test_every_part_round_trips_exactly_and_routes_every_row_identically(rich, tmp_path):
    snapshot, log = rich
    loaded = td.RoutingSnapshot.load(snapshot.save(tmp_path / "snap.tds"))
    assert_same(snapshot, loaded)
    assert loaded.embedder is snapshot.embedder  # the packaged table by fingerprint: this process's own
    assert _routed(loaded, log).equals(_routed(snapshot, log))


def test_a_loaded_snapshot_decides_like_sql(tmp_path):
    engine = routing_engine(tmp_path / "store")
    log = request_log(tmp_path / "log.parquet", 2500)
    loaded = td.RoutingSnapshot.load(engine.snapshot().save(tmp_path / "s.tds"))
    assert_same_decisions(pa.Table.from_batches([td.route_batch(loaded, pq.read_table(log))]),
                          sql_decisions(engine, log))


def test_the_same_snapshot_gives_the_same_bytes(rich, tmp_path):
    snapshot, _ = rich
    assert snapshot.save(tmp_path / "a.tds").read_bytes() == snapshot.save(tmp_path / "b.tds").read_bytes()


@pytest.mark.parametrize("embedder", ["hashing", "custom-static"])
def test_other_embedders_round_trip(tmp_path, embedder):
    if embedder == "custom-static":
        from tinydancer_duck.embed._embedders import STATIC_TABLE

        table = np.load(STATIC_TABLE)[:, :32].copy()
        np.save(tmp_path / "mini.npy", table)
        embedder = td.StaticEmbedder(tmp_path / "mini.npy")
    engine = td.Engine(tmp_path / "store", embedder=embedder)
    engine.register_agent("a", "llm", ["code"], cost_per_call=0.01)
    engine.register_agent("b", "llm", ["weather"], cost_per_call=0.02)
    snapshot = engine.snapshot()
    loaded = td.RoutingSnapshot.load(snapshot.save(tmp_path / "s.tds"))
    assert_same(snapshot, loaded)
    requests = pa.record_batch({"request": ["write code", "will it rain", None]})
    assert td.route_batch(loaded, requests).equals(td.route_batch(snapshot, requests))
    assert np.array_equal(loaded.embedder.embed(["hello world"]), snapshot.embedder.embed(["hello world"]))


# -- attacks -----------------------------------------------------------------------------------------------------
class _Payload:
    """What an attacker's pickle does when unpickled: create a file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


def _old_format(header: dict, body: bytes) -> bytes:
    return _snapshot_file.MAGIC + json.dumps(header).encode() + b"\n" + body


def test_a_crafted_pickle_runs_nothing_and_an_old_snapshot_says_how_to_remake_it(rich, tmp_path):
    snapshot, _ = rich
    marker = tmp_path / "pwned"
    header = {"format": 1, "version": td.__version__, "embedder": snapshot.embedder_identity}
    crafted = tmp_path / "crafted.tds"
    crafted.write_bytes(_old_format(header, pickle.dumps(_Payload(marker))))
    with pytest.raises(InvalidArgument, match=r"old pickled format .*tinydancer snapshot --store"):
        td.RoutingSnapshot.load(crafted)
    assert not marker.exists()
    # the new header over a pickle body: the checksum line is missing, refused before anything is read
    good = snapshot.save(tmp_path / "good.tds").read_bytes()
    head = good[: good.index(b"\n", len(_snapshot_file.MAGIC)) + 1]
    crafted.write_bytes(head + pickle.dumps(_Payload(marker)))
    with pytest.raises(InvalidArgument, match="damaged snapshot file"):
        td.RoutingSnapshot.load(crafted)
    assert not marker.exists()
    assert main(["route-parquet", str(tmp_path / "none.parquet"), str(tmp_path / "out"), "--snapshot",
                 str(crafted)]) == 2
    assert not marker.exists() and not (tmp_path / "out").exists()


def test_any_changed_byte_is_refused(rich, tmp_path):
    """Before: 20 of 20 one-byte flips in the body loaded silently. Now each is refused, naming the file."""
    snapshot, _ = rich
    data = snapshot.save(tmp_path / "good.tds").read_bytes()
    rng = random.Random(25)
    body_start = data.index(b"\n", len(_snapshot_file.MAGIC)) + 1
    positions = [rng.randrange(body_start, len(data)) for _ in range(FLIPS - 2)] + [3, body_start - 5]
    path = tmp_path / "flipped.tds"
    for position in positions:
        flipped = bytearray(data)
        flipped[position] ^= 1 << rng.randrange(8)
        path.write_bytes(bytes(flipped))
        with pytest.raises(InvalidArgument) as caught:
            td.RoutingSnapshot.load(path)
        assert caught.value.argument == "path" and str(path) in str(caught.value), position
        assert re.search(r"damaged|not a tinydancer snapshot|format", str(caught.value)), str(caught.value)


@pytest.mark.parametrize("cut", ["empty", "magic only", "half", "no trailer", "garbage"])
def test_truncated_or_garbage_files_give_one_clear_error(rich, tmp_path, cut):
    snapshot, _ = rich
    data = snapshot.save(tmp_path / "good.tds").read_bytes()
    damaged = {"empty": b"", "magic only": _snapshot_file.MAGIC, "half": data[: len(data) // 2],
               "no trailer": data[: data.rindex(b"\n", 0, len(data) - 1)],
               "garbage": _snapshot_file.MAGIC + bytes(range(256)) * 4}[cut]
    (tmp_path / "bad.tds").write_bytes(damaged)
    with pytest.raises(InvalidArgument, match="bad.tds"):
        td.RoutingSnapshot.load(tmp_path / "bad.tds")


def _resealed(data: bytes, tree_edit) -> bytes:
    """``data`` with its tree edited and the plain checksum recomputed, as an attacker can."""
    start = data.index(b"\n", len(_snapshot_file.MAGIC)) + 1
    end = data.rindex(b"\n", 0, len(data) - 1)
    import io

    old = zipfile.ZipFile(io.BytesIO(data[start:end]))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as new:
        for info in old.infolist():
            content = old.read(info)
            if info.filename == "snapshot.json":
                content = json.dumps(tree_edit(json.loads(content))).encode()
            new.writestr(info, content)
        new.writestr(zipfile.ZipInfo("../outside.npy"), b"x")
    content = data[:start] + out.getvalue()
    return content + b"\ntds-sha256 " + hashlib.sha256(content).hexdigest().encode() + b"\n"


def test_a_resealed_file_naming_foreign_types_or_paths_is_refused(rich, tmp_path):
    snapshot, _ = rich
    data = snapshot.save(tmp_path / "good.tds").read_bytes()
    edits = {
        "a type not in the list": lambda t: {**t, "$value": "Popen"},
        "a member path": lambda t: {**t, "fields": {**t["fields"], "route_target": {"$npy": "../outside"}}},
        "an unknown marker": lambda t: {**t, "fields": {**t["fields"], "as_of_us": {"$call": "os.system"}}},
        "a missing field": lambda t: {**t, "fields": {k: v for k, v in t["fields"].items() if k != "settings"}},
        "an embedder kind": lambda t: {**t, "fields": {**t["fields"], "embedder": {"$embedder": {
            "kind": "module:attr", "identity": "x"}}}},
    }
    for what, edit in edits.items():
        (tmp_path / "resealed.tds").write_bytes(_resealed(data, edit))
        with pytest.raises(InvalidArgument, match="resealed.tds") as caught:
            td.RoutingSnapshot.load(tmp_path / "resealed.tds")
        assert "holds" in str(caught.value) or "readable" in str(caught.value), what
    assert not (tmp_path.parent / "outside.npy").exists()


def test_a_signed_file_needs_its_key(rich, tmp_path):
    snapshot, log = rich
    path = snapshot.save(tmp_path / "signed.tds", key="s3cret")
    with pytest.raises(InvalidArgument, match="is signed: load it with the key"):
        td.RoutingSnapshot.load(path)
    with pytest.raises(InvalidArgument, match="key is wrong"):
        td.RoutingSnapshot.load(path, key=b"other")
    assert_same(snapshot, td.RoutingSnapshot.load(path, key=b"s3cret"))
    plain = snapshot.save(tmp_path / "plain.tds")
    with pytest.raises(InvalidArgument, match="not signed, but a key was given"):
        td.RoutingSnapshot.load(plain, key="s3cret")
    forged = _resealed(plain.read_bytes(), lambda t: t)  # an attacker can reseal a plain file, not sign it
    (tmp_path / "forged.tds").write_bytes(forged)
    with pytest.raises(InvalidArgument, match="not signed"):
        td.RoutingSnapshot.load(tmp_path / "forged.tds", key="s3cret")
    with pytest.raises(InvalidArgument, match="key"):
        snapshot.save(tmp_path / "x.tds", key="")
    (tmp_path / "key").write_text("s3cret\n")
    assert main(["route-parquet", str(log), str(tmp_path / "out"), "--snapshot", str(path), "--key-file",
                 str(tmp_path / "key")]) == 0
    assert main(["route-parquet", str(log), str(tmp_path / "out2"), "--snapshot", str(path)]) == 2


def test_another_package_version_is_refused(rich, tmp_path, monkeypatch):
    snapshot, _ = rich
    from tinydancer_duck import snapshot as snapshot_module

    monkeypatch.setattr(snapshot_module, "_package_version", lambda: "0.0.0-old")
    path = snapshot.save(tmp_path / "old.tds")
    monkeypatch.undo()
    with pytest.raises(InvalidArgument, match="was written by tinydancer_duck 0.0.0-old"):
        td.RoutingSnapshot.load(path)


def test_no_module_unpickles():
    """The rule a hook checks: no module of the package unpickles or allows pickles in numpy files."""
    found = [str(p.relative_to(ROOT)) for p in (ROOT / "tinydancer_duck").rglob("*.py")
             if re.search(r"pickle\.loads?\(|allow_pickle\s*=\s*True", p.read_text())]
    assert found == []
