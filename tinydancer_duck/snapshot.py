"""The routing snapshot: everything a decision reads, frozen at one moment, with no store handle.

Live SQL calls, the Python API, replays and what-ifs all decide with the pure functions of
:mod:`tinydancer_duck._decide` over a :class:`RoutingSnapshot`, so they cannot disagree. :meth:`Engine.snapshot`
builds one from the store (and caches it by the versions of the tables it was built from); a replay receives one,
never an Engine. It holds numpy arrays, Arrow arrays and the embedder, so it pickles by value in memory (Ray,
Spark); a file is data only (:meth:`RoutingSnapshot.save`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.settings import Settings

if TYPE_CHECKING:
    from tinydancer_duck.embed import Embedder
    from tinydancer_duck.learn import OutcomeModel, RouteClassifier
    from tinydancer_duck.registry import AgentSnapshot
    from tinydancer_duck.semantic import RouteSnapshot

#: The store tables a snapshot is built from; their versions key a cached snapshot.
SNAPSHOT_TABLES = ("agents", "routes", "route_examples", "models", "usage", "budgets")


@dataclass(frozen=True)
class RoutingSnapshot:
    """Agents, semantic routes, models and live state as of ``as_of_us``.

    agents : the A registered agents (sorted by name).
    routes : the R semantic routes; route_target : int64 (R,) the agent index each route names, -1 when its target
        is not a registered agent; route_names : the R route names.
    classifier : the active route classifier when it fits the embedder, else None; classifier_matches : whether
        its labels are all capabilities of registered agents (then it replaces cosine as the match).
    outcome : the active outcome router when it fits the embedder and knows one of the agents, else None;
        outcome_columns : int64 (A,) each agent's column in its predictions, -1 for agents it does not know.
    circuit_open, over_budget : bool (A,) agents the circuit breaker or their own budget take out.
    global_remaining : what is left of the global budget (NaN: none set); it caps every request's budget.
    versions : table -> version this snapshot was built from; valid_until_us : when time alone changes the live
        state (a circuit turns half-open, a budget period ends), or None.
    budget_left : float64 (A,) what each agent's own budget has left in its period (+inf without one), or None
        when no budget is set (and in a replay). A live decision under budgets, or with rate-limited routes, also
        counts what other calls hold in the store's ledger (:func:`tinydancer_duck._decide.decide_metered`).
    """

    agents: AgentSnapshot
    routes: RouteSnapshot
    route_target: np.ndarray
    route_names: tuple[str, ...]
    classifier: RouteClassifier | None
    classifier_matches: bool
    outcome: OutcomeModel | None
    outcome_columns: np.ndarray
    circuit_open: np.ndarray
    over_budget: np.ndarray
    global_remaining: float
    settings: Settings
    embedder: Embedder
    as_of_us: int
    versions: Mapping[str, int]
    valid_until_us: int | None = None
    budget_left: np.ndarray | None = None

    @property
    def has_budgets(self) -> bool:
        """Whether any budget applies (a live decision then reserves what it spends)."""
        return self.budget_left is not None or not np.isnan(self.global_remaining)

    @property
    def metered(self) -> bool:
        """Whether a live decision must count what other calls hold: budgets, or routes with rate limits."""
        return self.has_budgets or bool(len(self.routes.conditions.limited))

    @property
    def embedder_identity(self) -> str:
        return self.embedder.identity

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def fresh_at(self, now_us: int, versions: Mapping[str, int]) -> bool:
        """Whether this snapshot still describes the store at ``now_us`` with tables at ``versions``."""
        return versions == self.versions and (self.valid_until_us is None or now_us < self.valid_until_us)

    def save(self, path: str | Path, *, key: bytes | str | None = None) -> Path:
        """Write this snapshot to one self-contained file (conventionally ``.tds``); returns the path.

        The file is data only (JSON, numpy ``.npy`` and Arrow IPC in one zip, :mod:`tinydancer_duck._snapshot_file`)
        with a checksum over every byte, so a damaged file is refused. The packaged embedder table is named by its
        fingerprint rather than copied: the file is small, and a reader with another table refuses it.

        key : sign the file with HMAC-SHA256 under this secret (bytes or text); a reader must then give the same
            key. Sign files that cross a trust boundary: a plain checksum catches accidents, not forgeries.
        """
        from tinydancer_duck import _snapshot_file

        header = {"version": _package_version(), "embedder": self.embedder_identity, "as_of_us": self.as_of_us,
                  "agents": self.agents.size, "routes": self.routes.size}
        return _snapshot_file.write(self, path, header, _snapshot_file.check_key(key))

    @classmethod
    def load(cls, path: str | Path, *, key: bytes | str | None = None) -> RoutingSnapshot:
        """Read a file written by :meth:`save`. Reading never runs code from the file.

        Raises InvalidArgument naming the file when it is not a snapshot, is damaged (any changed byte), is signed
        and ``key`` does not verify it (or is not signed and a key was given), was written by another version of
        the package, or is an old pickled snapshot (with how to re-create it); ModelError when this installation
        has another embedder table.
        """
        from tinydancer_duck import _snapshot_file

        header, snapshot = _snapshot_file.read(path, _snapshot_file.check_key(key), _package_version(), cls)
        if not isinstance(snapshot, cls) or snapshot.embedder_identity != header.get("embedder"):
            raise InvalidArgument("path", str(path), "holds no routing snapshot of the embedder its header names")
        return snapshot

    def for_replay(self) -> RoutingSnapshot:
        """The same snapshot without live state: a replay of the past ignores today's breakers and budgets."""
        size = self.agents.size
        return replace(self, circuit_open=np.zeros(size, bool), over_budget=np.zeros(size, bool),
                       global_remaining=float("nan"), valid_until_us=None, budget_left=None)


def build_routing_snapshot(*, agents: AgentSnapshot, routes: RouteSnapshot, classifier: RouteClassifier | None,
                           outcome: OutcomeModel | None, circuit_open: np.ndarray, over_budget: np.ndarray,
                           global_remaining: float, settings: Settings, embedder: Embedder, as_of_us: int,
                           versions: Mapping[str, int], valid_until_us: int | None = None,
                           budget_left: np.ndarray | None = None) -> RoutingSnapshot:
    """A snapshot from its parts, with what depends on several of them worked out once: which agent each route
    names, whether the classifier predicts capabilities, and each agent's column in the outcome model. Takes many
    parameters because they are the snapshot's parts, each built by another service (keyword-only)."""
    names = agents.names
    route_target = (pc.index_in(routes.targets, value_set=names).fill_null(-1).to_numpy(zero_copy_only=False)
                    .astype(np.int64) if routes.size else np.zeros(0, np.int64))
    labels = set(classifier.labels) if classifier is not None else set()
    matches = bool(labels) and labels <= set(agents.capability_vocab.to_pylist())
    columns = np.full(agents.size, -1, np.int64)
    if outcome is not None and agents.size:
        position = pc.index_in(names, value_set=pa.array(outcome.labels, pa.string()))
        columns = position.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
        if not (columns >= 0).any():
            outcome = None
    return RoutingSnapshot(agents=agents, routes=routes, route_target=route_target,
                           route_names=tuple(routes.names.to_pylist()), classifier=classifier,
                           classifier_matches=matches, outcome=outcome, outcome_columns=columns,
                           circuit_open=circuit_open, over_budget=over_budget, global_remaining=global_remaining,
                           settings=settings, embedder=embedder, as_of_us=as_of_us, versions=dict(versions),
                           valid_until_us=valid_until_us, budget_left=budget_left)


def _package_version() -> str:
    from tinydancer_duck import __version__

    return __version__
