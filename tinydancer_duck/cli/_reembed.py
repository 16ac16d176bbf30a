"""``tinydancer reembed``: move a store to the current embedder, so vectors from two embedders are never mixed.

A store records which embedder made its vectors and refuses another (a new default table is another embedder).
Re-embedding recomputes every vector from its text: each agent's capability embedding from its capabilities, each
route's from its description, each example's from its text. What has no text cannot be recomputed and is reported:
a route created from an explicit embedding without a description is dropped, and so is an example given as a
vector. Usage, budgets and models need no change (a model records its own embedder and is refused, not mixed, if
it does not match; train it again). The store folder is backed up first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.embed import Embedder
from tinydancer_duck.registry import capability_text
from tinydancer_duck.store import read_tables, rewrite_tables

VECTOR_COLUMNS = {"agents": "capability_embedding", "routes": "embedding", "route_examples": "embedding"}


@dataclass
class ReembedReport:
    """What a re-embedding did: rows re-embedded per table, what could not be, and the backup folder."""

    backup: Path
    reembedded: dict[str, int] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [f"re-embedded {rows} row(s) of {name}" for name, rows in self.reembedded.items()]
        lines += [f"dropped: {why}" for why in self.dropped]
        if self.reembedded.get("routes"):
            lines.append("routes were re-embedded from their descriptions: re-create any that was made from another "
                         "text's embedding")
        lines.append(f"the store as it was is backed up in {self.backup}")
        return "\n".join(lines)


def reembed_store(path: str | Path, embedder: Embedder) -> ReembedReport:
    """Re-embed the vector tables of the store at ``path`` with ``embedder`` (module docstring)."""
    tables = read_tables(path, tuple(VECTOR_COLUMNS))
    dropped: list[str] = []
    new = {}
    if "agents" in tables:
        agents = tables["agents"]
        texts = [capability_text(caps or []) for caps in agents["capabilities"].to_pylist()]
        new["agents"] = _with_vectors(agents, "capability_embedding", embedder.embed(texts), embedder.dim)
    if "routes" in tables:
        routes = tables["routes"]
        has_text = pc.fill_null(pc.greater(pc.utf8_length(pc.utf8_trim_whitespace(routes["description"])), 0),
                                False)
        dropped += [f"route {name!r} (created from an embedding, with no description to embed)"
                    for name in routes["name"].filter(pc.invert(has_text)).to_pylist()]
        routes = routes.filter(has_text)
        new["routes"] = _with_vectors(routes, "embedding", embedder.embed(routes["description"].to_pylist()),
                                      embedder.dim)
    if "route_examples" in tables:
        examples = tables["route_examples"]
        has_text = pc.fill_null(pc.is_valid(examples["text"]), False)
        gone = int(examples.num_rows - pc.sum(has_text).as_py()) if examples.num_rows else 0
        if gone:
            dropped.append(f"{gone} route example(s) given as embeddings, with no text to embed")
        examples = examples.filter(has_text)
        new["route_examples"] = _with_vectors(examples, "embedding", embedder.embed(examples["text"].to_pylist()),
                                              embedder.dim)
    backup = rewrite_tables(path, new, dim=embedder.dim, identity=embedder.identity)
    return ReembedReport(backup, {name: table.num_rows for name, table in new.items()}, dropped)


def _with_vectors(table: pa.Table, column: str, vectors: np.ndarray, dim: int) -> pa.Table:
    """``table`` with ``column`` replaced by the float32 (n, dim) ``vectors``."""
    values = pa.FixedSizeListArray.from_arrays(pa.array(np.asarray(vectors, np.float32).reshape(-1)), dim)
    return table.set_column(table.schema.get_field_index(column), column, values)
