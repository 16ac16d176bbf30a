"""`tinydancer doctor`: check a store and say what is wrong with it in plain words.

Checks, table by table: that it opens and reads in full; that its files still match the checksums they were
written with (truncated or bit-flipped files) and its newest version is the highest ever committed (lost
manifests); the columns and types against the schemas this version writes; one embedder identity (and dimension)
for every vector table; versions and fragments (many small fragments: reads are slow until compacted); duplicate or
empty names in ``agents`` and ``routes``; route examples whose route is gone; models whose weights fail to load; a
table without any checksum record (a store copied without its ``.integrity`` folder: unverified). Across tables:
writes a killed process left half done (or that could not be finished and were set aside), agents' stats and the
budget ledger against the usage table in both directions (:mod:`._doctor_usage`), and the routing snapshot itself
(built as routing builds it). A store on object storage (``s3://...`` with ``storage_options``) is checked through
LanceDB (an emptied bucket is reported). Warnings
(:mod:`._doctor_warnings`) say where routing may not do what was meant. :func:`check_store` returns a
:class:`DoctorReport`; the command prints it and exits 0 when it found no problem (warnings or not), 1 otherwise.
``--repair`` (:mod:`tinydancer_duck.cli._repair`) fixes what can be fixed safely, after a backup.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.errors import TinydancerError
from tinydancer_duck.store import (
    COMPACT_FRAGMENTS,
    IDENTITY_KEY,
    TABLES,
    default_store_path,
    expected_schema,
    inspect_store,
    pending_writes,
    set_aside_writes,
    side_files,
    store_location,
)

from ._doctor_usage import Counted, counted, ledger_problems, stats_problems, usage_lost_at
from ._doctor_warnings import store_warnings

VECTOR_TABLES = ("agents", "routes", "route_examples")
KEYED_TABLES = {"agents": "name", "routes": "name"}


@dataclass
class DoctorReport:
    """What the doctor saw (``lines``: one per table) and the problems it found (plain sentences).

    facts : the store's facts (:func:`inspect_store`), for ``--repair``; counted : agents whose stats disagree
    with usage (:mod:`._doctor_usage`); identity, dim : the embedder that made the store's vectors (None when
    unknown); orphaned_routes : routes that are gone but still have examples; remote : whether the store is on
    object storage (opened with ``storage_options``).
    """

    path: Path | str
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    facts: dict[str, dict[str, Any]] = field(default_factory=dict)
    counted: dict[str, Counted] = field(default_factory=dict)
    identity: str | None = None
    dim: int | None = None
    orphaned_routes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    remote: bool = False
    storage_options: dict[str, str] | None = None

    @property
    def healthy(self) -> bool:
        return not self.problems

    def text(self) -> str:
        out = [f"store {self.path}", *(f"  {line}" for line in self.lines)]
        if self.warnings:
            out.append(f"{len(self.warnings)} warning(s) (the store is sound; routing may not do what you meant):")
            out.extend(f"  - {warning}" for warning in self.warnings)
        if self.problems:
            out.append(f"{len(self.problems)} problem(s):")
            out.extend(f"  - {problem}" for problem in self.problems)
        else:
            out.append("healthy: no problems found")
        return "\n".join(out)


def check_store(path: str | Path, storage_options: dict[str, str] | None = None) -> DoctorReport:
    """Inspect the store at ``path`` (a folder, or an object-store URI with ``storage_options``; read only) and
    list its problems."""
    location, remote = store_location(path, default_store_path())
    report = DoctorReport(location, remote=remote, storage_options=storage_options)
    if not remote and not location.is_dir():
        report.problems.append(f"there is no store at {report.path} (not a directory)")
        return report
    try:
        report.facts = facts = inspect_store(location, storage_options)
    except TinydancerError as exc:
        report.problems.append(str(exc))
        return report
    if not facts:
        report.lines.append("empty store: no tables yet (they are created on first use)")
        _check_emptied(report)
    report.identity, report.dim = identity, dim = _identity(facts, report)
    for name, fact in facts.items():
        if "error" in fact:
            report.problems.append(f"table {name!r} cannot be opened ({fact['error']}); --repair moves its newest "
                                   "manifest(s) aside until it opens (the writes they made are lost), or says to "
                                   "restore it from a backup when none opens")
            continue
        _check_table(name, fact, identity, dim, report)
    _check_writes(report)
    _check_keys(facts, report)
    _check_examples(facts, report)
    _check_models(facts, identity, report)
    side = side_files(location)
    report.counted = counted(facts, usage_lost_at(location, side))
    problems, lines = stats_problems(report.counted)
    report.problems += problems + ledger_problems(side, facts)
    report.lines += lines
    _check_snapshot(report, identity)
    report.warnings = store_warnings(facts)
    return report


def _check_writes(report: DoctorReport) -> None:
    """Half-done writes: pending (finished by the next write, or --repair), or set aside as unfinishable."""
    for line in pending_writes(report.path):
        report.problems.append(f"a write is in progress or was left half done by a killed process ({line}); the "
                               "next write finishes it, and so does --repair")
    for line in set_aside_writes(report.path):
        report.problems.append(f"a half-done write could not be finished and was set aside ({line}); --repair "
                               "recounts agent stats from the usage that survived and files it under .quarantine")


def _check_emptied(report: DoctorReport) -> None:
    """A store with no tables whose side files on this machine say it had some: its bucket or folder emptied."""
    side = side_files(report.path)
    if pending_writes(report.path) or (side / ".ledger.json").exists() or any((side / ".locks").glob("*.lock")):
        report.problems.append(f"the store at {report.path} holds no tables, but this machine recorded writes to it "
                               f"(in {side}): its bucket, prefix or folder was emptied or moved; routing starts "
                               "from an empty store")


def _check_table(name: str, fact: dict[str, Any], identity: str | None, dim: int | None,
                 report: DoctorReport) -> None:
    info = fact["info"]
    report.lines.append(f"{name}: {info['rows']} rows, version {info['version']} ({info['versions']} kept), "
                        f"{info['fragments']} fragments")
    for _, damage in fact["damaged"]:
        report.problems.append(f"table {name!r} is damaged: {damage}; --repair goes back to its newest version "
                               "that does not need it")
    if fact["lost"] is not None:
        newest, committed = fact["lost"]
        report.problems.append(f"table {name!r} reads as version {newest}, but version {committed} was committed: "
                               f"the manifest(s) of its last {committed - newest} write(s) are lost, so those writes "
                               "are silently undone; --repair accepts version "
                               f"{newest} as the newest")
    if "read_error" in fact:
        report.problems.append(f"table {name!r} cannot be read in full: {fact['read_error']}")
    if fact["unverified"] and not fact["recorded"]:
        report.problems.append(f"table {name!r} is unverified: none of its {len(fact['unverified'])} file(s) has a "
                               "checksum (a store copied without its .integrity folder?), so damage in them would "
                               "be read silently; --repair reads it in full and records them")
    elif fact["unverified"]:
        report.lines.append(f"{name}: {len(fact['unverified'])} file(s) have no checksum (written before checksums "
                            "were kept, or by a process killed right after its commit); --repair records them")
    if name not in TABLES:
        report.lines.append(f"{name}: not a tinydancer table (ignored)")
        return
    _check_schema(name, fact["schema"], identity, dim, report)
    if info["small_fragments"] >= 2 * COMPACT_FRAGMENTS:
        report.problems.append(f"table {name!r} has {info['small_fragments']} small fragments, so reads are "
                               "slow; compact it with engine.store.compact()")


def _check_snapshot(report: DoctorReport, identity: str | None) -> None:
    """Build the routing snapshot as routing does (only on a store with every table readable and nothing half
    done, since opening an Engine would otherwise create or finish something)."""
    facts = report.facts
    if identity is None or report.problems or any(name not in facts for name in TABLES):
        return
    kind = identity.split(":", 1)[0]
    try:
        from tinydancer_duck.embed import make_embedder
        from tinydancer_duck.engine import Engine

        embedder = make_embedder(kind)
        if embedder.identity != identity:
            report.lines.append(f"routing snapshot not built: this installation's {kind} embedder is "
                                f"{embedder.identity!r}, the store's {identity!r}")
            return
        engine = Engine(report.path, embedder=embedder, storage_options=report.storage_options)
        snapshot = engine.snapshot()
        engine.routes.table()
        engine.budgets.status()
        engine.health.table()
    except Exception as exc:  # noqa: BLE001 - whatever stops routing is the problem being reported
        report.problems.append(f"routing cannot build its snapshot of this store: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}")
        return
    report.lines.append(f"routing snapshot: {snapshot.agents.size} agents, {snapshot.routes.size} routes, "
                        f"classifier {'yes' if snapshot.classifier is not None else 'none'}")


def _identity(facts: dict[str, dict[str, Any]], report: DoctorReport) -> tuple[str | None, int | None]:
    """The embedder identity and dimension of the vector tables; a disagreement is a problem."""
    seen: dict[str, list[str]] = {}
    for name in VECTOR_TABLES:
        schema = facts.get(name, {}).get("schema")
        if schema is None:
            continue
        value = (schema.metadata or {}).get(IDENTITY_KEY)
        if value is None:
            report.problems.append(f"table {name!r} does not record which embedder made its vectors")
            continue
        seen.setdefault(value.decode(), []).append(name)
    if not seen:
        return None, None
    if len(seen) > 1:
        parts = "; ".join(f"{', '.join(tables)} by {identity!r}" for identity, tables in seen.items())
        report.problems.append(f"vector tables were made by different embedders ({parts}): their vectors cannot be "
                               "compared")
    identity = next(iter(seen))
    dim = _dimension(facts, identity)
    report.lines.insert(0, f"embedder: {identity} ({dim if dim is not None else '?'} dimensions)")
    return identity, dim


def _dimension(facts: dict[str, dict[str, Any]], identity: str) -> int | None:
    for name, column in (("agents", "capability_embedding"), ("routes", "embedding")):
        schema = facts.get(name, {}).get("schema")
        if schema is not None and column in schema.names and pa.types.is_fixed_size_list(schema.field(column).type):
            return int(schema.field(column).type.list_size)
    tail = identity.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _check_schema(name: str, found: pa.Schema, identity: str | None, dim: int | None, report: DoctorReport) -> None:
    expected = expected_schema(name, dim or 1, identity or "")
    missing = [f.name for f in expected if f.name not in found.names]
    extra = [n for n in found.names if n not in expected.names]
    if missing:
        report.problems.append(f"table {name!r} lacks column(s) {', '.join(missing)}: it was written by an "
                               "incompatible version")
    if extra:
        report.problems.append(f"table {name!r} has unexpected column(s) {', '.join(extra)}")
    for want in expected:
        if want.name not in found.names or (dim is None and pa.types.is_fixed_size_list(want.type)):
            continue
        have = found.field(want.name).type
        if not have.equals(want.type):
            report.problems.append(f"column {name}.{want.name} has type {have}, expected {want.type}")


def _check_keys(facts: dict[str, dict[str, Any]], report: DoctorReport) -> None:
    for name, key in KEYED_TABLES.items():
        data = facts.get(name, {}).get("data")
        if data is None or key not in data.column_names:
            continue
        values = data[key].to_pylist()
        blank = sum(1 for v in values if v is None or not str(v).strip())
        if blank:
            report.problems.append(f"{blank} row(s) of {name!r} have an empty {key}")
        duplicated = sorted(v for v, count in Counter(values).items() if count > 1 and v is not None)
        if duplicated:
            shown = ", ".join(repr(v) for v in duplicated[:5]) + (" ..." if len(duplicated) > 5 else "")
            report.problems.append(f"{len(duplicated)} {key}(s) appear more than once in {name!r}: {shown}; "
                                   "lookups by name are ambiguous")


def _check_examples(facts: dict[str, dict[str, Any]], report: DoctorReport) -> None:
    examples = facts.get("route_examples", {}).get("data")
    routes = facts.get("routes", {}).get("data")
    if examples is None or examples.num_rows == 0 or "route" not in examples.column_names:
        return
    known = routes["name"] if routes is not None and "name" in routes.column_names else pa.array([], pa.string())
    orphaned = pc.unique(examples["route"].filter(pc.invert(pc.is_in(examples["route"], value_set=known))))
    if len(orphaned):
        report.orphaned_routes = orphaned.to_pylist()
        count = int(pc.sum(pc.invert(pc.is_in(examples["route"], value_set=known))).as_py())
        report.problems.append(f"{count} route example(s) belong to {len(orphaned)} route(s) that no longer exist: "
                               f"{', '.join(repr(v) for v in orphaned.to_pylist()[:5])}")


def _load_classifier(row: dict[str, Any]) -> Any:
    from tinydancer_duck.learn import row_model

    return row_model(row)


def _load_npz(row: dict[str, Any]) -> Any:
    with np.load(io.BytesIO(row["weights"]), allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


#: kind -> loader; a kind without one must at least be a readable npz archive.
LOADERS: dict[str, Callable[[dict[str, Any]], Any]] = {"route_classifier": _load_classifier}


def _check_models(facts: dict[str, dict[str, Any]], identity: str | None, report: DoctorReport) -> None:
    models = facts.get("models", {}).get("data")
    if models is None or models.num_rows == 0:
        return
    for row in models.to_pylist():
        label = f"model {row.get('name')!r} version {row.get('version')} ({row.get('kind')})"
        if not row.get("weights"):
            report.problems.append(f"{label} has no weights")
            continue
        try:
            model = LOADERS.get(row.get("kind"), _load_npz)(row)
        except Exception as exc:  # noqa: BLE001 - any failure to load is the problem being reported
            report.problems.append(f"{label} fails to load: {str(exc).splitlines()[0] if str(exc) else exc!r}")
            continue
        made_by = getattr(model, "embedder", None)
        if identity is not None and isinstance(made_by, str) and made_by != identity:
            report.lines.append(f"{label} was trained for embedder {made_by!r}, not the store's; it is unused")
