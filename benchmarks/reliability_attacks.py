"""The attacks of issue 25, one per function, each run in a fresh process by ``bench_reliability.py --only attacks``
against a checkout (its PYTHONPATH) and printing one line of JSON: what happened, in a few words.

Every attack uses the public API and the store's files only (no private names that a checkout may lack), so the
same function measures the code before and after; where the newer API is needed (``ts``, a lock timeout) it is
tried first and the older call used when it does not exist.

    PYTHONPATH=CHECKOUT python benchmarks/reliability_attacks.py NAME
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

MAGIC = b"TINYDANCER-SNAPSHOT\n"


class Payload:
    """What a crafted snapshot runs when unpickled: it writes a file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "code ran"))


def _engine(path, **kwargs):
    import tinydancer_duck as td

    engine = td.Engine(path, embedder="hashing", **kwargs)
    engine.register_agent("bot", "llm", ["chat"], cost_per_call=0.01)
    return engine


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0][:90] if str(exc) else ''}"


# -- snapshots --------------------------------------------------------------------------------------------------
def snapshot_pickle(scratch: Path) -> str:
    import tinydancer_duck as td

    engine = _engine(scratch / "s")
    marker = scratch / "pwned"
    header = {"format": 1, "version": td.__version__, "embedder": engine.embedder.identity, "as_of_us": 0}
    (scratch / "crafted.tds").write_bytes(MAGIC + json.dumps(header).encode() + b"\n" + pickle.dumps(
        Payload(str(marker))))
    try:
        td.RoutingSnapshot.load(scratch / "crafted.tds")
        outcome = "loaded"
    except BaseException as exc:  # noqa: BLE001 - what the user sees is the result
        outcome = _error(exc)
    return ("CODE RAN, then " if marker.exists() else "no code ran; ") + outcome


def snapshot_flips(scratch: Path, flips: int = 20) -> str:
    import tinydancer_duck as td

    data = _engine(scratch / "s").snapshot().save(scratch / "good.tds").read_bytes()
    start = data.index(b"\n", len(MAGIC)) + 1
    rng, loaded = random.Random(25), 0
    for _ in range(flips):
        flipped = bytearray(data)
        flipped[rng.randrange(start, len(data))] ^= 1 << rng.randrange(8)
        (scratch / "f.tds").write_bytes(bytes(flipped))
        with contextlib.suppress(Exception):
            td.RoutingSnapshot.load(scratch / "f.tds")
            loaded += 1
    return f"{loaded} of {flips} one-byte flips in the body loaded silently"


# -- the journal ------------------------------------------------------------------------------------------------
def _intent(store: Path, steps: list[dict], rows=None) -> None:
    from pyarrow import ipc

    folder = store / ".journal" / uuid.uuid4().hex
    folder.mkdir(parents=True)
    (folder / "intent.json").write_text(json.dumps({"pid": 1, "steps": steps}))
    if rows is not None:
        with ipc.new_file(folder / "0.arrow", rows.schema) as writer:
            writer.write_table(rows)


def journal_path(scratch: Path) -> str:
    import pyarrow as pa

    import tinydancer_duck as td

    store = scratch / "box" / "store"
    _engine(store)
    escape = f"td-escape-{uuid.uuid4().hex[:8]}"
    _intent(store, [{"table": f"../../{escape}", "op": "append", "key": "name", "saved": True, "count": 1,
                     "before": 0, "version": 1}], pa.table({"name": ["bot"]}))
    try:
        td.Engine(store, embedder="hashing")
        opened = "Engine() opened"
    except BaseException as exc:  # noqa: BLE001
        opened = f"Engine() raised {type(exc).__name__}"
    outside = sorted(str(p.relative_to(scratch)) for p in scratch.rglob(f"*{escape}*"))
    return f"{'created ' + ', '.join(outside) + ' outside the store' if outside else 'nothing created outside'}; " \
           f"{opened}"


def _crash_between_commits(engine, write) -> None:
    from tinydancer_duck.store import Store

    real = Store.upsert

    def failing(self, name, rows, key="name"):
        if name == "agents":
            raise RuntimeError("killed between the two commits")
        return real(self, name, rows, key=key)

    Store.upsert = failing
    with contextlib.suppress(Exception):
        write()
    Store.upsert = real


def journal_moved_on(scratch: Path) -> str:
    import lancedb
    import pyarrow as pa

    import tinydancer_duck as td
    from tinydancer_duck.cli import main
    from tinydancer_duck.store import USAGE_SCHEMA

    store = scratch / "s"
    engine = _engine(store)
    _crash_between_commits(engine, lambda: engine.usage.record("bot", 0.5, True, 42.0, request_id="the-event"))
    rows = pa.Table.from_pylist([{"ts": 0, "request_id": f"x{i}", "agent": "other", "cost": 0.1,
                                  "latency_ms": 1.0, "success": True} for i in range(3)], schema=USAGE_SCHEMA)
    lancedb.connect(str(store)).open_table("usage").add(rows)  # another machine appended
    try:
        reopened = td.Engine(store, embedder="hashing")
        ids = reopened.store.read("usage")["request_id"].to_pylist()
        outcome = (f"Engine() opens; the event stored {ids.count('the-event')}x, counted "
                   f"{reopened.get_agent('bot')['total_requests']}x")
    except BaseException as exc:  # noqa: BLE001
        outcome = f"every Engine() raises {_error(exc)[:60]}"
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        code = main(["doctor", "--store", str(store), "--repair"])
    return f"{outcome}; doctor --repair exits {code}"


def s3_emptied(scratch: Path) -> str:
    """Three events, a half-done write, then the bucket emptied (needs moto): the doctor, then Engine()."""
    try:
        import boto3
    except ImportError:
        return "skipped (moto/boto3 not installed)"
    import tinydancer_duck as td
    from tinydancer_duck.cli._doctor import check_store

    os.environ["XDG_CACHE_HOME"] = str(scratch / "cache")

    def doctor(uri: str, options: dict) -> str:
        try:
            report = check_store(uri, options) if "storage_options" in check_store.__code__.co_varnames \
                else check_store(uri)
            return "healthy" if report.healthy else report.problems[0][:60]
        except BaseException as exc:  # noqa: BLE001
            return f"raises {_error(exc)[:50]}"

    with _moto() as options:
        uri = "s3://tinydancer/store"
        engine = _engine(uri, storage_options=options)
        for _ in range(3):
            engine.usage.record("bot", 0.5, True, 42.0)
        _crash_between_commits(engine, lambda: engine.usage.record("bot", 0.5, True, 42.0))
        boto3.resource("s3", endpoint_url=options["aws_endpoint"], aws_access_key_id="test",
                       aws_secret_access_key="test", region_name="us-east-1").Bucket("tinydancer").objects.delete()
        first = doctor(uri, options)
        try:
            td.Engine(uri, embedder="hashing", storage_options=options)
            opened = "Engine() opens"
        except BaseException as exc:  # noqa: BLE001
            opened = f"every Engine() raises {_error(exc)[:50]}"
    return f"doctor: {first}; {opened}"


@contextlib.contextmanager
def _moto():
    import socket
    import urllib.request

    import boto3

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(endpoint, timeout=1)
                break
            time.sleep(0.1)
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                     region_name="us-east-1").create_bucket(Bucket="tinydancer")
        yield {"aws_access_key_id": "test", "aws_secret_access_key": "test", "aws_region": "us-east-1",
               "aws_endpoint": endpoint, "allow_http": "true"}
    finally:
        server.terminate()
        server.wait(timeout=30)


# -- repair -----------------------------------------------------------------------------------------------------
def _flip(path: Path, position: int | None = None, bit: int = 4) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2 if position is None else position] ^= 1 << bit
    path.write_bytes(bytes(raw))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


def _newest(folder: Path) -> Path:
    return max(folder.iterdir(), key=lambda p: p.stat().st_mtime_ns)


def usage_damage_stats(scratch: Path) -> str:
    import tinydancer_duck as td
    from tinydancer_duck.cli import main
    from tinydancer_duck.cli._doctor import check_store

    store = scratch / "s"
    engine = _engine(store)
    for w in range(7):
        engine.usage.record(["bot"] * 100, [0.01] * 100, [True] * 100, [10.0] * 100,
                            request_id=[f"r{w}-{i}" for i in range(100)])
    _flip(_newest(store / "usage.lance" / "data"))
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        main(["doctor", "--store", str(store), "--repair"])
    engine = td.Engine(store, embedder="hashing")
    return (f"after --repair: stats count {engine.get_agent('bot')['total_requests']}, usage holds "
            f"{engine.store.read('usage').num_rows}; doctor: {'healthy' if check_store(store).healthy else 'problems'}")


def manifest_flips(scratch: Path, per_table: int = 4) -> str:
    import tinydancer_duck as td
    from tinydancer_duck.cli import main

    template = scratch / "t"
    engine = _engine(template)
    engine.routes.create_route("billing", "questions about invoices", "bot")
    engine.routes.add_examples(["billing"], ["why was I charged twice"])
    engine.usage.record("bot", 0.01, True, 100.0)
    engine.usage.record("bot", 0.02, True, 100.0)
    engine.budgets.set(10.0)
    engine.budgets.set(5.0, agent="bot")
    engine.register_agent("bot2", "llm", ["code"], cost_per_call=0.02)
    import numpy as np

    from tinydancer_duck.learn._classify import fit

    x = np.random.default_rng(0).normal(size=(40, engine.dim)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    model, _ = fit(x, ["a", "b"] * 20, identity=engine.embedder.identity, hidden_dim=8, epochs=1)
    engine.classifier.save(model, "m")
    engine.classifier.save(model, "m")
    rng, unrepaired, raw, trials = random.Random(0), 0, 0, 0
    for table in ("agents", "routes", "models", "usage", "route_examples", "budgets"):
        for trial in range(per_table):
            store = scratch / f"{table}-{trial}"
            shutil.copytree(template, store)
            manifest = min((store / f"{table}.lance" / "_versions").glob("*.manifest"), key=lambda p: int(p.stem))
            _flip(manifest, rng.randrange(manifest.stat().st_size), rng.randrange(8))
            trials += 1
            try:
                td.Engine(store, embedder="hashing").store.read(table)
            except Exception:  # noqa: BLE001, S110 - a named error is what should happen
                pass
            except BaseException:  # noqa: BLE001 - a raw Rust panic reached the caller
                raw += 1
            try:
                with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
                    unrepaired += main(["doctor", "--store", str(store), "--repair"]) != 0
            except BaseException:  # noqa: BLE001
                unrepaired, raw = unrepaired + 1, raw + 1
    return f"{unrepaired} of {trials} unrepaired; {raw} raw Rust panics reached the caller"


def checksum_reread(scratch: Path) -> str:
    """A long-lived reader re-reads a data file flipped (one bit that changes a cost, found on a copy) after the
    reader checked it."""
    import lancedb

    import tinydancer_duck as td

    store = scratch / "s"
    reader = _engine(store)
    for w in range(6):
        reader.usage.record(["bot"] * 100, [600.0 + w * 100 + i for i in range(100)], [True] * 100, [10.0] * 100)
    written = reader.store.read("usage")["cost"].to_pylist()  # read, so every file is checked by this process
    probe = scratch / "probe"
    shutil.copytree(store, probe)
    name = _newest(store / "usage.lance" / "data").name
    raw = (probe / "usage.lance" / "data" / name).read_bytes()
    for position in range(len(raw) // 4, len(raw)):  # a bit that changes a value and still decodes
        flipped = bytearray(raw)
        flipped[position] ^= 1
        (probe / "usage.lance" / "data" / name).write_bytes(bytes(flipped))
        with contextlib.suppress(Exception):
            if lancedb.connect(str(probe)).open_table("usage").to_arrow()["cost"].to_pylist() != written:
                break
    else:
        return "attack failed: no single bit changes a cost"
    _flip(store / "usage.lance" / "data" / name, position, 0)
    td.Engine(store, embedder="hashing").usage.record("bot", 600.0, True, 10.0)  # another writer: a re-read
    try:
        costs = reader.store.read("usage")["cost"].to_pylist()[: len(written)]
        wrong = [(a, b) for a, b in zip(written, costs) if a != b]
        return f"re-read silently: {wrong[0][1]} for {wrong[0][0]}" if wrong else "re-read the values written"
    except BaseException as exc:  # noqa: BLE001
        return _error(exc)[:100]


def copied_without_integrity(scratch: Path) -> str:
    from tinydancer_duck.cli._doctor import check_store

    engine = _engine(scratch / "s")
    engine.usage.record("bot", 0.01, True, 10.0)
    shutil.copytree(scratch / "s", scratch / "copy", ignore=shutil.ignore_patterns(".integrity"))
    report = check_store(scratch / "copy")
    return "doctor: healthy" if report.healthy else f"doctor: {len(report.problems)} problem(s), " \
        f"{sum('unverified' in p for p in report.problems)} table(s) unverified"


# -- history ----------------------------------------------------------------------------------------------------
def _ingest(engine, path, ts=None):
    try:
        return engine.usage.ingest(path, ts=ts) if ts is not None else engine.usage.ingest(path)
    except TypeError:  # a version without ts
        return engine.usage.ingest(path)


def history_without_ts(scratch: Path, rows: int = 200_000) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    engine = _engine(scratch / "s")
    engine.budgets.set(1e9)
    pq.write_table(pa.table({"request_id": [f"r{i}" for i in range(rows)], "agent": ["bot"] * rows,
                             "cost": [0.025] * rows, "success": [i % 10 != 0 for i in range(rows)],
                             "latency_ms": [100.0] * rows}), scratch / "log.parquet")
    try:
        _ingest(engine, scratch / "log.parquet")
    except BaseException as exc:  # noqa: BLE001
        return f"refused: {_error(exc)[:80]}"
    snapshot = engine.snapshot()
    return (f"ingested as now: {int(snapshot.circuit_open.sum())} of 1 circuit open, "
            f"${float(engine.budgets.status()['spent'][0]):,.0f} in this month's budget")


def duplicate_ids(scratch: Path) -> str:
    import pyarrow as pa
    import pyarrow.parquet as pq

    engine = _engine(scratch / "s")
    pq.write_table(pa.table({"request_id": [f"r{i % 700}" for i in range(1000)], "agent": ["bot"] * 1000,
                             "cost": [0.01] * 1000, "success": [True] * 1000, "latency_ms": [1.0] * 1000,
                             "ts": pa.array([0] * 1000, pa.timestamp("us", tz="UTC"))}), scratch / "log.parquet")
    report = _ingest(engine, scratch / "log.parquet")
    said = f", report: {report.duplicates} duplicates" if hasattr(report, "duplicates") else ", nothing reported"
    return f"1,000 rows with 700 distinct ids: {engine.store.count('usage')} stored{said}"


# -- errors -----------------------------------------------------------------------------------------------------
def csv_utf8(scratch: Path) -> str:
    engine = _engine(scratch / "s")
    lines = [b"request_id,agent,cost,success,latency_ms,ts"] + [b"r%d,bot,0.1,true,10,2026-01-01T00:00:00Z" % i
                                                                for i in range(60_000)]
    (scratch / "log.csv").write_bytes(b"\n".join([*lines, b"rX,b\xffot,0.1,true,10,2026-01-01T00:00:00Z"]) + b"\n")
    try:
        _ingest(engine, scratch / "log.csv")
        return "ingested"
    except BaseException as exc:  # noqa: BLE001
        return _error(exc).replace(str(scratch), "")[:110]


def one_slash_uri(scratch: Path) -> str:
    import tinydancer_duck as td

    os.chdir(scratch)
    try:
        td.Engine("s3:/bucket/store", embedder="hashing")
        outcome = "opened"
    except BaseException as exc:  # noqa: BLE001
        outcome = _error(exc)[:70]
    return f"{'created ./s3: locally; ' if (scratch / 's3:').exists() else ''}{outcome}"


def proc_root(scratch: Path) -> str:
    import tinydancer_duck as td

    try:
        td.Engine("/proc/1/root", embedder="hashing")
        return "opened"
    except BaseException as exc:  # noqa: BLE001
        return _error(exc)[:90]


def _stop_holding(store: str, ready: str) -> None:
    import tinydancer_duck as td

    with td.Engine(store, embedder="hashing").store.locked("agents"):
        Path(ready).touch()
        os.kill(os.getpid(), signal.SIGSTOP)


def paused_holder(scratch: Path, wait_s: float = 15.0) -> str:
    import multiprocessing

    import tinydancer_duck as td

    store = scratch / "s"
    _engine(store)
    holder = multiprocessing.get_context("spawn").Process(target=_stop_holding, args=(str(store),
                                                                                     str(scratch / "ready")))
    holder.start()
    while not (scratch / "ready").exists():
        time.sleep(0.05)
    try:
        settings = td.Settings(lock_timeout_s=2.0)
    except TypeError:  # a version without the setting
        settings = td.Settings()
    engine = td.Engine(store, embedder="hashing", settings=settings)
    started = time.monotonic()
    result: list[str] = []

    def write() -> None:
        try:
            engine.register_agent("other", "llm", ["x"], cost_per_call=0.1)
            result.append("written")
        except BaseException as exc:  # noqa: BLE001
            result.append(_error(exc)[:100])

    import threading

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    thread.join(wait_s)
    os.kill(holder.pid, signal.SIGKILL)
    holder.join()
    if not result:
        return f"writer still blocked after {wait_s:.0f} s (would wait forever)"
    return f"after {time.monotonic() - started:.1f} s: {result[0]}"


ATTACKS = {f.__name__: f for f in (snapshot_pickle, snapshot_flips, journal_path, journal_moved_on, s3_emptied,
                                   usage_damage_stats, manifest_flips, checksum_reread, copied_without_integrity,
                                   history_without_ts, duplicate_ids, csv_utf8, one_slash_uri, proc_root,
                                   paused_holder)}


def main() -> None:
    name = sys.argv[1]
    with tempfile.TemporaryDirectory() as scratch:
        stderr = os.dup(2)
        with open(Path(scratch) / "stderr.txt", "w") as capture:
            os.dup2(capture.fileno(), 2)  # LanceDB's WARN lines and Rust's panic messages, counted below
            try:
                outcome = ATTACKS[name](Path(scratch))
            except BaseException as exc:  # noqa: BLE001 - the attack itself failed: say how
                outcome = f"attack failed: {_error(exc)}"
            finally:
                os.dup2(stderr, 2)
        panics = (Path(scratch) / "stderr.txt").read_text(errors="replace").count("panicked at")
    outcome = outcome.replace(str(scratch), "…")
    print(json.dumps({"attack": name, "outcome": outcome + (f" [{panics} Rust panic message(s) on stderr]"
                                                            if panics else "")}))


if __name__ == "__main__":
    main()
