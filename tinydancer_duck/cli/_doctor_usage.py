"""The doctor's checks of what is derived from usage against the usage table itself, in both directions.

An agent's ``total_requests`` counts the events folded into its stats since it was registered, so it is at least
its events stamped since its registration (each was recorded, hence counted, after it): below, the stats of some
events were never applied (a write cut short before writes were journaled). Above all of its events, the stats
count requests usage does not hold: usage lost rows (a repair went back to an older version, moving files or
manifests under ``.quarantine/usage``, or a half-done write was set aside), or ``update_agent_metrics`` reported
outcomes without usage rows. The first is a problem when the agent's stats were last written before the loss;
otherwise the surplus is shown, not counted as a problem. Budget spend is read from usage; what the budget ledger
holds besides (recorded spend tagged with a usage version) must not be tagged with a version the usage table never
reached. ``--repair`` brings each back in line (:mod:`tinydancer_duck.cli._repair`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ._doctor_warnings import usable


@dataclass(frozen=True)
class Counted:
    """One agent's total_requests against its usage: events stamped since registration, all of them, and whether
    usage lost rows after its stats were last written."""

    total: int
    since: int
    events: int
    lost_after: bool = False

    @property
    def lagging(self) -> int:
        """Events since registration whose stats were never applied."""
        return max(self.since - self.total, 0)

    @property
    def extra(self) -> int:
        """Requests counted that usage does not hold."""
        return max(self.total - self.events, 0)

    @property
    def problem(self) -> bool:
        return bool(self.lagging or (self.extra and self.lost_after))


def usage_lost_at(root: Path | str, side: Path) -> datetime | None:
    """When usage last lost rows, by what repairs leave behind: files under ``<store>/.quarantine/usage`` and
    half-done writes set aside (None when nothing says so)."""
    places = [*(side / ".journal-quarantine").glob("*"), *(side / ".quarantine" / "journal").glob("*")]
    if isinstance(root, Path):
        places += list((root / ".quarantine" / "usage").rglob("*"))
    stamps = [p.stat().st_mtime for p in places if p.exists()]
    return datetime.fromtimestamp(max(stamps), timezone.utc) if stamps else None


def counted(facts: dict[str, dict[str, Any]], lost_at: datetime | None = None) -> dict[str, Counted]:
    """Agent -> :class:`Counted` for every agent whose total_requests lies outside what usage holds."""
    agents, usage = usable(facts, "agents"), usable(facts, "usage")
    if agents is None or usage is None or not agents.num_rows:
        return {}
    out = {}
    for name, created, updated, total in zip(agents["name"].to_pylist(), agents["created_at"].to_pylist(),
                                             agents["updated_at"].to_pylist(), agents["total_requests"].to_pylist()):
        mine = pc.fill_null(pc.equal(usage["agent"], pa.scalar(name, pa.string())), False)
        since = pc.and_(mine, pc.fill_null(pc.greater_equal(usage["ts"], pa.scalar(created, usage["ts"].type)),
                                           False))
        found = Counted(int(total or 0), int(pc.sum(pc.cast(since, pa.int64())).as_py() or 0),
                        int(pc.sum(pc.cast(mine, pa.int64())).as_py() or 0),
                        lost_at is not None and (updated is None or updated < lost_at))
        if found.lagging or found.extra:
            out[name] = found
    return out


def stats_problems(found: dict[str, Counted]) -> tuple[list[str], list[str]]:
    """(problems, lines) in plain sentences for :func:`counted`'s agents."""
    problems, lines = [], []
    for name, c in sorted(found.items()):
        if c.lagging:
            problems.append(f"agent {name!r} counts {c.total} requests, but the usage table holds {c.since} for it "
                            f"since it was registered: the stats of {c.lagging} event(s) were never applied; "
                            "--repair folds them in")
        elif c.lost_after:
            problems.append(f"agent {name!r} counts {c.total} requests, but the usage table holds only {c.events} "
                            f"for it: usage lost rows after its stats were written (a repair or a write set "
                            f"aside); --repair recounts it from the usage that survived")
        else:
            lines.append(f"agent {name!r} counts {c.extra} request(s) more than the usage table holds "
                         "(update_agent_metrics reports outcomes without usage rows)")
    return problems, lines


def ledger_problems(side: Path, facts: dict[str, dict[str, Any]]) -> list[str]:
    """The budget ledger's recorded spend tagged with a usage version past the table's newest (usage went back:
    budgets would count that spend twice, or for events that are gone)."""
    usage = facts.get("usage", {}).get("info")
    try:
        state = json.loads((side / ".ledger.json").read_bytes() or b"{}")
        settled = [entry for entry in state.get("settled", []) if int(entry[2]) > usage["version"]]
    except (OSError, ValueError, TypeError, KeyError, IndexError, AttributeError):
        return []
    if not settled:
        return []
    spend = sum(float(entry[1]) for entry in settled)
    return [(f"the budget ledger holds ${spend:.4g} of recorded spend tagged with usage version(s) up to "
            f"{max(int(e[2]) for e in settled)}, but usage is at version {usage['version']}: usage went back after "
            "it was recorded; --repair drops those entries (budgets then count the spend usage holds)")]
