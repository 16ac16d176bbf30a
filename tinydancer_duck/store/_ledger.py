"""The live ledger: what routing has promised but usage has not recorded yet, shared by every process on a store.

Budgets are enforced against spend read from ``usage``; a route decided now is served and recorded later, so
without more, N processes routing at once each see the same remaining budget and together overspend it. So a
route decided under a budget *reserves* its estimated cost here (with an expiry), under the ledger's lock, and the
next decision in any process counts the reservation as spent; recording usage *settles* it: the reservation is
replaced by the recorded cost, tagged with the usage version that holds it, and counted until the reader's usage
view includes that version. Semantic routes' per-minute rate limits count their matches here too, so a limit
holds across calls and processes.

State (``<store>/.ledger.json``, read and written under a flock on the file itself):

- ``reserved``: [agent, amount, requests, expires_us] per agent and expiry bucket (:data:`BUCKET_US`), so the
  document stays small however many requests are in flight;
- ``settled``: [agent, amount, usage_version, at_us] per recording; kept :data:`SETTLED_KEEP_US` (every reader's
  usage view catches up within the store's 50 ms version interval);
- ``routes``: {route: {minute: matches}} for the current and previous UTC minute.

Local file systems only, like the write locks.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

BUCKET_US = 10_000_000
SETTLED_KEEP_US = 60_000_000
US_PER_MIN = 60_000_000


@dataclass
class Held:
    """What other calls hold, as a decision must count it: reserved-or-unseen spend per agent and in all, and
    route matches in the current minute."""

    per_agent: dict[str, float] = field(default_factory=dict)
    total: float = 0.0
    routes: dict[str, int] = field(default_factory=dict)


class Ledger:
    """The ledger document of the store at ``root`` (see the module docstring).

    The file stays open for the life of the process and is locked with flock around each use, then read and
    rewritten in place (no temporary file and rename: those cost ~0.4 ms per routed request here). A process
    killed mid-write may leave it cut short; it then reads as empty, which forgets the reservations in flight.
    """

    def __init__(self, root: Path) -> None:
        self.path = root / ".ledger.json"
        self._fd: int | None = None
        self._lock = threading.RLock()

    @contextlib.contextmanager
    def open(self, now_us: int) -> Iterator[dict]:
        """The document under the ledger lock, pruned of what expired by ``now_us``; written back on exit."""
        with self._lock:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            fd = self._fd
            _flock(fd, exclusive=True)
            try:
                state = _parse(os.pread(fd, os.fstat(fd).st_size, 0))
                _prune(state, now_us)
                yield state
                payload = json.dumps(state, separators=(",", ":")).encode()
                os.pwrite(fd, payload, 0)
                os.ftruncate(fd, len(payload))
            finally:
                _flock(fd, exclusive=False)

    def exists(self) -> bool:
        return self._fd is not None or self.path.exists()


def _flock(fd: int, *, exclusive: bool) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: the threads of this process are still serialized
        return
    fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_UN)


def _parse(raw: bytes) -> dict:
    try:
        state = json.loads(raw) if raw else {}
    except ValueError:  # cut short by a kill: start afresh
        state = {}
    if not isinstance(state, dict):
        state = {}
    for key, empty in (("reserved", []), ("settled", []), ("routes", {})):
        state.setdefault(key, empty)
    return state


def held_by_others(state: Mapping, usage_version: int, now_us: int) -> Held:
    """What a decision whose usage view is at ``usage_version`` must count besides the spend it sees: unexpired
    reservations, and recorded costs its view does not include yet."""
    out = Held()
    for agent, amount, _, _ in state["reserved"]:
        out.per_agent[agent] = out.per_agent.get(agent, 0.0) + amount
        out.total += amount
    for agent, amount, version, _ in state["settled"]:
        if version > usage_version:
            out.per_agent[agent] = out.per_agent.get(agent, 0.0) + amount
            out.total += amount
    minute = str(now_us // US_PER_MIN)
    out.routes = {route: counts.get(minute, 0) for route, counts in state["routes"].items() if counts.get(minute)}
    return out


def reserve(state: dict, costs: Mapping[str, tuple[float, int]], expires_us: int) -> None:
    """Add reservations: agent -> (estimated cost, requests), expiring at ``expires_us`` (bucketed)."""
    bucket = -(-expires_us // BUCKET_US) * BUCKET_US
    index = {(entry[0], entry[3]): entry for entry in state["reserved"]}
    for agent, (amount, requests) in costs.items():
        if amount <= 0 and requests <= 0:
            continue
        entry = index.get((agent, bucket))
        if entry is None:
            entry = index[(agent, bucket)] = [agent, 0.0, 0, bucket]
            state["reserved"].append(entry)
        entry[1] += float(amount)
        entry[2] += int(requests)


def count_routes(state: dict, matches: Mapping[str, int], now_us: int) -> None:
    """Add route matches of the current minute."""
    minute = str(now_us // US_PER_MIN)
    for route, count in matches.items():
        counts = state["routes"].setdefault(route, {})
        counts[minute] = counts.get(minute, 0) + int(count)


def settle(state: dict, recorded: Mapping[str, tuple[float, int]], usage_version: int, now_us: int) -> None:
    """Recorded usage: agent -> (cost, events) now in the usage table at ``usage_version``. Each event releases one
    request's share of the agent's oldest reservation; the recorded cost counts until readers see the version."""
    for agent, (cost, events) in recorded.items():
        left = int(events)
        for entry in sorted((e for e in state["reserved"] if e[0] == agent), key=lambda e: e[3]):
            if left <= 0:
                break
            take = min(left, entry[2])
            entry[1] -= entry[1] * take / entry[2] if entry[2] else entry[1]
            entry[2] -= take
            left -= take
        state["settled"].append([agent, float(cost), int(usage_version), int(now_us)])
    state["reserved"] = [e for e in state["reserved"] if e[2] > 0 and e[1] > 0]


def _prune(state: dict, now_us: int) -> None:
    state["reserved"] = [e for e in state["reserved"] if e[3] > now_us]
    state["settled"] = [e for e in state["settled"] if e[3] > now_us - SETTLED_KEEP_US]
    keep = {str(now_us // US_PER_MIN), str(now_us // US_PER_MIN - 1)}
    state["routes"] = {route: {m: c for m, c in counts.items() if m in keep}
                       for route, counts in state["routes"].items()}
    state["routes"] = {route: counts for route, counts in state["routes"].items() if counts}
