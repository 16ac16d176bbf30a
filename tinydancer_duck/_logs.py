"""Reading request logs for simulation, what-if and outcome training: column mapping and streaming.

A log is a Parquet, CSV or JSON file (by its extension: .parquet, .csv, .json/.jsonl/.ndjson), or a directory or glob
of them (one format). Fields (all optional but the request) and their default columns:

- ``request``: the request text (default: the first of ``request``, ``prompt``, ``text``, ``content``);
- ``request_id`` (else RouterBench's ``sample_id``), ``category`` (else ``eval_name``);
- the logged choice: ``agent`` (the agent that served it; else ``model``), ``cost`` (what it cost), ``quality`` (its
  outcome in [0, 1]; ``success`` is used when there is no ``quality``), ``latency_ms``, ``propensity`` (the
  probability in (0, 1] that the logging policy picked that agent; 1 for a deterministic decision) and ``policy``
  (a name for the policy that decided);
- wide per-agent outcomes (RouterBench's shape): for agent A, column ``agent_quality`` with ``{agent}`` replaced by A
  (default ``{agent}``) holds A's outcome, and ``agent_cost`` (default ``{agent}|total_cost``) its dollar cost.

``columns`` maps fields to the log's column names (JSON text or a dict); naming a column the log does not have is an
error naming it. The columns taken under another name are in :attr:`LogSpec.aliased` (the CLI prints them). A log
without wide outcomes but with ``agent`` + ``quality`` is "long": one observed (request,
agent) outcome per row, which :func:`read_outcomes` pivots to the wide shape for training.
"""

from __future__ import annotations

import glob
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from tinydancer_duck._validate import check_utf8, field_mapping
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.options import HOLDOUT

FIELDS = ("request", "request_id", "category", "agent", "cost", "quality", "latency_ms", "propensity", "policy",
          "agent_quality", "agent_cost")
ROW_FIELDS = FIELDS[:-2]  # one column each; the last two are per-agent column patterns
REQUEST_DEFAULTS = ("request", "prompt", "text", "content")
#: field -> other names a common log uses for it (RouterBench's), taken when the field's own column is absent.
ALIASES = {"request_id": ("sample_id",), "category": ("eval_name",), "agent": ("model",)}
#: file extension -> pyarrow.dataset format (JSON is read whole: Arrow's JSON reader is not a dataset format).
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "json",
           ".ndjson": "json"}
PATTERN_DEFAULTS = {"agent_quality": "{agent}", "agent_cost": "{agent}|total_cost"}
DEFAULT_BATCH_ROWS = 16_384


@dataclass(frozen=True)
class LogSpec:
    """An opened log: the dataset, the column of each field it has, and the wide per-agent columns found.

    outcome, outcome_cost : agent name -> column (only agents asked about, or inferred, that the log has).
    """

    path: str
    dataset: ds.Dataset
    fields: dict[str, str]
    outcome: dict[str, str] = field(default_factory=dict)
    outcome_cost: dict[str, str] = field(default_factory=dict)
    aliased: dict[str, str] = field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return int(self.dataset.count_rows())

    @property
    def wide(self) -> bool:
        return bool(self.outcome)


def log_dataset(argument: str, source: str | Path) -> ds.Dataset:
    """A Parquet, CSV or JSON file, or a directory or glob of them, as one dataset, the format picked by extension
    (:data:`FORMATS`); a missing, mixed or unreadable source names ``argument``."""
    if not isinstance(source, (str, Path)) or not str(source).strip():
        raise InvalidArgument(argument, source, "must be a Parquet, CSV or JSON file, directory or glob")
    text = str(source)
    try:
        if any(ch in text for ch in "*?["):
            files = sorted(glob.glob(text))
        elif Path(text).is_dir():
            files = sorted(str(p) for p in Path(text).rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
        elif Path(text).exists():
            files = [text]
        else:
            raise FileNotFoundError(text)
        if not files:
            raise FileNotFoundError(f"no {', '.join(sorted(set(FORMATS)))} files in {text}")
        kinds = {FORMATS.get(Path(f).suffix.lower(), "parquet") for f in files}
        if len(kinds) > 1:
            raise InvalidArgument(argument, text, f"mixes formats ({', '.join(sorted(kinds))}); use one")
        kind = kinds.pop()
        if kind == "json":
            return ds.dataset(pa.concat_tables([_json_table(f) for f in files], promote_options="default"))
        if Path(text).is_dir() and kind == "parquet" and not any(ch in text for ch in "*?["):
            return ds.dataset(text, format="parquet")  # keeps hive partitions
        return ds.dataset(files, format=kind)
    except (FileNotFoundError, OSError, pa.ArrowInvalid, ValueError) as exc:
        if isinstance(exc, InvalidArgument):
            raise
        what = {".csv": "CSV", ".json": "JSON", ".jsonl": "JSON", ".ndjson": "JSON"}.get(Path(text).suffix.lower(),
                                                                                          "Parquet")
        raise InvalidArgument(argument, text, f"cannot be read as {what} ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def read_batches(argument: str, source: object, batches: Iterable[Any]) -> Iterator[Any]:
    """``batches`` (read lazily) with a read failure (a CSV row that is not UTF-8 beyond the rows Arrow inferred
    types from, a damaged file) as InvalidArgument naming ``argument`` and the source, not Arrow's error."""
    try:
        yield from batches
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        raise InvalidArgument(argument, str(source), f"cannot be read ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def _json_table(path: str) -> pa.Table:
    """A JSON log: one object per line (JSON Lines), or one array of objects."""
    with open(path, "rb") as handle:
        head = handle.read(4096).lstrip()
    if head.startswith(b"["):
        with open(path, encoding="utf-8") as handle:
            rows = json.load(handle)
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError("expected an array of objects, one per request")
        return pa.Table.from_pylist(rows)
    from pyarrow import json as pa_json

    return pa_json.read_json(path)


def parse_columns(columns: Mapping[str, str] | str | None) -> dict[str, str]:
    """field -> column from JSON text, a mapping or None; unknown fields are an error naming them."""
    return field_mapping(columns, FIELDS, "log field")


def open_log(log: str | Path, *, agents: Sequence[str] | None = None,
             columns: Mapping[str, str] | str | None = None) -> LogSpec:
    """Open ``log`` and map its columns. ``agents``: the agents whose wide outcome columns to look for (None: every
    agent that has both an outcome and a cost column by the patterns)."""
    dataset = log_dataset("log", log)
    text = str(log)
    mapping = parse_columns(columns)
    available = dataset.schema.names
    have = set(available)
    fields: dict[str, str] = {}
    for name in ROW_FIELDS:
        if name in mapping:
            if mapping[name] not in have:
                raise InvalidArgument("columns", mapping[name], f"no column {mapping[name]!r} for {name!r} in {text} "
                                      f"(columns: {', '.join(available[:30])})")
            fields[name] = mapping[name]
        elif name == "request":
            found = next((c for c in REQUEST_DEFAULTS if c in have), None)
            if found is None:
                raise InvalidArgument("columns", "request", f"{text} has none of the columns "
                                      f"{', '.join(REQUEST_DEFAULTS)}; map one with columns := '{{\"request\": ...}}'")
            fields[name] = found
        elif name in have:
            fields[name] = name
        elif any(alias in have for alias in ALIASES.get(name, ())):
            fields[name] = next(alias for alias in ALIASES[name] if alias in have)
    if "quality" not in fields and "quality" not in mapping and "success" in have:
        fields["quality"] = "success"
    aliased = {column: name for name, column in fields.items() if column != name and name not in mapping}
    patterns = {key: mapping.get(key, default) for key, default in PATTERN_DEFAULTS.items()}
    for key, pattern in patterns.items():
        if "{agent}" not in pattern:
            raise InvalidArgument("columns", pattern, f"the {key} pattern must contain {{agent}}")
    if agents is None:
        agents = _infer_agents(available, patterns)
    taken = set(fields.values())
    outcome = {a: patterns["agent_quality"].format(agent=a) for a in agents}
    outcome = {a: c for a, c in outcome.items() if c in have and c not in taken}
    cost = {a: patterns["agent_cost"].format(agent=a) for a in agents}
    cost = {a: c for a, c in cost.items() if c in have and c not in taken}
    return LogSpec(text, dataset, fields, outcome, cost, aliased)


def resolved_path(path: str) -> str:
    """A log's path as a training run records it (absolute; a glob as given), so a replay can tell it is the same
    log."""
    return path if any(ch in path for ch in "*?[") else str(Path(path).resolve())


def log_agents(spec: LogSpec) -> list[str]:
    """The agents a log holds outcomes for: its wide per-agent columns, else the distinct logged agents."""
    if spec.wide:
        return list(spec.outcome)
    if "agent" not in spec.fields:
        return []
    seen: set[str] = set()
    for batch in read_batches("log", spec.path, spec.dataset.to_batches(columns=[spec.fields["agent"]])):
        check_utf8("log", batch)  # polars would panic on invalid UTF-8; Arrow's unique is enough here
        seen.update(pc.unique(batch.column(0).cast(pa.string())).drop_null().to_pylist())
    return sorted(seen)


def _infer_agents(available: Sequence[str], patterns: Mapping[str, str]) -> list[str]:
    prefix, _, suffix = patterns["agent_cost"].partition("{agent}")
    names = [c[len(prefix): len(c) - len(suffix)] for c in available
             if c.startswith(prefix) and c.endswith(suffix) and len(c) > len(prefix) + len(suffix)]
    have = set(available)
    return [n for n in names if patterns["agent_quality"].format(agent=n) in have]


@dataclass(frozen=True)
class LogBatch:
    """One batch of a log: its rows' positions in the log (int64 (n,)), the request column, optional per-row
    columns (Arrow or numpy) and the wide per-agent matrices over ``agents`` (float64 (n, len(agents)), NaN where
    the log has no value)."""

    index: np.ndarray
    request: pa.Array
    columns: dict[str, Any]
    outcome: np.ndarray
    outcome_cost: np.ndarray

    def __len__(self) -> int:
        return len(self.request)

    def take(self, keep: np.ndarray) -> LogBatch:
        """The rows where ``keep`` (bool (n,)) is true."""
        rows = pa.array(np.flatnonzero(keep), pa.int64())
        columns = {k: v.take(rows) if isinstance(v, pa.Array) else v[keep] for k, v in self.columns.items()}
        return LogBatch(self.index[keep], self.request.take(rows), columns, self.outcome[keep],
                        self.outcome_cost[keep])


_HASH_BASE = np.uint64(0x100000001B3)  # FNV-1a's 64-bit prime
_MIX = (np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB))  # splitmix64's finalizer
_SEED = np.uint64(0x9E3779B97F4A7C15)  # so the empty text does not hash to 0


def text_hash(texts: pa.Array) -> np.ndarray:
    """uint64 (n,) a hash of each text's UTF-8 bytes that is the same on every machine, process and library version
    (a polynomial over the bytes, then splitmix64's finalizer; NULL hashes like the empty text), computed from the
    Arrow buffers in numpy: holdout and fold splits by request must agree between a training run and a later
    replay."""
    texts = pc.fill_null(texts.cast(pa.large_string()), "") if texts.null_count else texts.cast(pa.large_string())
    n = len(texts)
    offsets = np.frombuffer(texts.buffers()[1], np.int64)[texts.offset: texts.offset + n + 1]
    lengths = np.diff(offsets)
    data = texts.buffers()[2]
    raw = np.frombuffer(data, np.uint8)[offsets[0]: offsets[-1]] if data is not None else np.zeros(0, np.uint8)
    filled = lengths > 0
    starts = (offsets[:-1] - offsets[0])[filled]
    step = np.ones(len(raw), np.int64)  # each byte's position within its text, as a cumulative sum of steps
    if len(raw):
        step[0] = 0
        step[starts[1:]] = 1 - lengths[filled][:-1]
    powers = np.cumprod(np.full(max(int(lengths.max(initial=0)), 1), _HASH_BASE, np.uint64))
    terms = (raw.astype(np.uint64) + np.uint64(1)) * powers[np.cumsum(step)]
    h = np.full(n, _SEED, np.uint64)
    if len(starts):
        h[filled] += np.add.reduceat(terms, starts)
    h ^= lengths.astype(np.uint64)
    h = (h ^ (h >> np.uint64(30))) * _MIX[0]
    h = (h ^ (h >> np.uint64(27))) * _MIX[1]
    return h ^ (h >> np.uint64(31))


def check_holdout(holdout: Any) -> float | None:
    """None, or the share of requests held out of training, in (0, 1) (:data:`tinydancer_duck.options.HOLDOUT`)."""
    return HOLDOUT.value(holdout)


def held_out(texts: pa.Array, fraction: float) -> np.ndarray:
    """bool (n,): the requests a ``holdout`` of ``fraction`` keeps out of training (by request text, so a request
    asked twice falls on one side, and the same on every run)."""
    return (text_hash(texts) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53 < fraction


def iter_batches(spec: LogSpec, agents: Sequence[str], *, rows: int = DEFAULT_BATCH_ROWS) -> Iterator[LogBatch]:
    """Stream the log in batches of about ``rows`` rows; per-agent matrices are ordered like ``agents``."""
    wanted = list(dict.fromkeys([*spec.fields.values(), *spec.outcome.values(), *spec.outcome_cost.values()]))
    start = 0
    for batch in read_batches("log", spec.path, spec.dataset.to_batches(columns=wanted, batch_size=rows)):
        n = batch.num_rows
        if not n:
            continue
        table = pa.Table.from_batches([batch])
        check_utf8("log", table)
        request = _one(table[spec.fields["request"]])
        if not (pa.types.is_string(request.type) or pa.types.is_large_string(request.type)):
            request = request.cast(pa.string())
        columns: dict[str, Any] = {}
        for name in ("request_id", "category", "agent", "policy"):
            if name in spec.fields:
                columns[name] = _one(table[spec.fields[name]]).cast(pa.string())
        for name in ("cost", "quality", "latency_ms", "propensity"):
            if name in spec.fields:
                columns[name] = _floats(table[spec.fields[name]], spec.fields[name], name, start)
        outcome = np.full((n, len(agents)), np.nan)
        cost = np.full((n, len(agents)), np.nan)
        for j, agent in enumerate(agents):
            if agent in spec.outcome:
                outcome[:, j] = _floats(table[spec.outcome[agent]], spec.outcome[agent], "quality", start)
            if agent in spec.outcome_cost:
                cost[:, j] = _floats(table[spec.outcome_cost[agent]], spec.outcome_cost[agent], "cost", start)
        yield LogBatch(np.arange(start, start + n), request, columns, outcome, cost)
        start += n


def _one(column: pa.ChunkedArray) -> pa.Array:
    return column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)


#: What a logged figure may be: cost and latency finite and >= 0, quality finite within [0, 1], a propensity within
#: (0, 1] (a probability the logging policy chose the agent with; 0 would mean it never could have).
_RANGES = {"cost": (0.0, np.inf), "latency_ms": (0.0, np.inf), "quality": (0.0, 1.0), "propensity": (0.0, 1.0)}


def _floats(column: pa.ChunkedArray, name: str, kind: str, start: int = 0) -> np.ndarray:
    """float64 (n,) with NaN for NULL; booleans become 0/1; anything else is an error naming the column. Values
    outside ``kind``'s range (:data:`_RANGES`; NaN and infinities too) are an error naming the column and the
    first bad row (``start``: the batch's first row in the log)."""
    array = _one(column)
    if not (pa.types.is_boolean(array.type) or pa.types.is_integer(array.type) or pa.types.is_floating(array.type)
            or pa.types.is_decimal(array.type) or pa.types.is_null(array.type)):
        raise InvalidArgument("columns", name, f"column {name!r} holds {array.type}, expected numbers or booleans")
    values = np.asarray(pc.cast(array, pa.float64(), safe=False).to_numpy(zero_copy_only=False), dtype=np.float64)
    given = np.asarray(array.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    low, high = _RANGES[kind]
    above = values > low if kind == "propensity" else values >= low
    bad = np.flatnonzero(given & ~(above & (values <= high) & np.isfinite(values)))
    if len(bad):
        why = ("must be finite and >= 0" if np.isinf(high) else "must lie within (0, 1]" if kind == "propensity"
               else f"must be finite and within [{low:g}, {high:g}]")
        raise InvalidArgument("log", name, f"column {name!r} row {start + int(bad[0])} holds "
                              f"{float(values[bad[0]])!r}; a {kind} {why}")
    return values


def read_outcomes(spec: LogSpec) -> tuple[pa.Array, np.ndarray, np.ndarray, list[str], np.ndarray | None]:
    """The whole log as (requests, outcome float64 (n, A) with NaN where unobserved, cost float64 (n, A), agents,
    propensity float64 (n, A) of each observed pair or None when the log has no propensity column) for training.
    Wide logs are read as they are; long logs (agent + quality per row, e.g. a production log of one agent per
    request) are pivoted by request_id (else by request text)."""
    if spec.wide:
        agents = list(spec.outcome)
        parts = list(iter_batches(spec, agents))
        if not parts:
            raise InvalidArgument("log", spec.path, "has no rows")
        request = pa.concat_arrays([p.request for p in parts])
        return (request, np.vstack([p.outcome for p in parts]), np.vstack([p.outcome_cost for p in parts]), agents,
                None)
    if "agent" not in spec.fields or "quality" not in spec.fields:
        raise InvalidArgument("log", spec.path, "has no per-agent outcomes: neither wide columns '<agent>' with "
                              "'<agent>|total_cost' nor long columns agent and quality (or success)")
    key = spec.fields.get("request_id", spec.fields["request"])
    values = ("quality", "cost", "propensity")
    select = [pl.col(key).cast(pl.String).alias("__key"), pl.col(spec.fields["request"]).cast(pl.String).alias("request"),
              pl.col(spec.fields["agent"]).cast(pl.String).alias("agent")]
    select += [pl.col(spec.fields[name]).cast(pl.Float64).alias(name) if name in spec.fields
               else pl.lit(None, pl.Float64).alias(name) for name in values]
    columns = list(dict.fromkeys(spec.fields.values()))
    for batch in read_batches("log", spec.path, spec.dataset.to_batches(columns=columns)):
        check_utf8("log", batch)  # polars panics on invalid UTF-8 instead of raising
    frame = pl.scan_pyarrow_dataset(spec.dataset).select(select).collect()
    for name in values:
        if name in spec.fields:
            _floats(pa.chunked_array(frame[name].to_arrow()), spec.fields[name], name)
    frame = frame.drop_nulls(["agent"])
    if frame.height == 0:
        raise InvalidArgument("log", spec.path, "has no rows")
    agents = sorted(frame["agent"].unique().to_list())
    grouped = frame.group_by("__key", "agent", maintain_order=True).agg(pl.col("request").first(),
                                                                        *(pl.col(name).mean() for name in values))
    keys = grouped.select("__key", "request").unique("__key", maintain_order=True)
    row = dict(zip(keys["__key"].to_list(), range(keys.height)))
    rows = np.array([row[k] for k in grouped["__key"].to_list()], np.int64)
    cols = np.array([agents.index(a) for a in grouped["agent"].to_list()], np.int64)
    matrices = [np.full((keys.height, len(agents)), np.nan) for _ in values]
    for matrix, name in zip(matrices, values):
        matrix[rows, cols] = grouped[name].to_numpy()
    propensity = matrices[2] if "propensity" in spec.fields else None
    return keys["request"].to_arrow(), matrices[0], matrices[1], agents, propensity
