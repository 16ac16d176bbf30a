"""Running per-agent statistics folded from observed outcomes, so routing adapts to how agents really behave.

Each of latency, success and quality is an exponentially weighted moving average (weight ``alpha`` per new
observation), which forgets old behaviour at a known rate instead of freezing after many requests. A batch of k
observations of one agent is folded in closed form, x' = (1-a)^k x + sum_i a (1-a)^(k-i) x_i, which equals k
sequential updates. p99 moves toward the batch's own 99th percentile with the weight the batch carries,
1 - (1-a)^k: a cheap streaming estimate, not an exact quantile.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

#: The running statistics a fold updates (plus total_requests, a count).
STATS = ("avg_latency_ms", "p99_latency_ms", "success_rate", "quality_score")


def ewma_fold(start: float, observations: np.ndarray, alpha: float) -> float:
    """k sequential EWMA updates of ``start`` by ``observations`` (float64 (k,), in arrival order)."""
    k = len(observations)
    if k == 0:
        return start
    weights = alpha * (1.0 - alpha) ** np.arange(k - 1, -1, -1)
    return float((1.0 - alpha) ** k * start + weights @ observations)


def fold_observations(current: pa.Table, names: Sequence[str], latency_ms: np.ndarray, success: np.ndarray,
                      quality: np.ndarray, *, alpha: float) -> dict[str, list]:
    """New stats per distinct agent in ``names``.

    current : agents rows aligned with ``names`` (as Registry.get returns).
    latency_ms, success, quality : float64/bool (n,) observations in arrival order; NaN quality means unobserved.
    Returns columns name, avg_latency_ms, p99_latency_ms, success_rate, quality_score, total_requests.
    """
    names_array = np.asarray(names, dtype=object)
    out: dict[str, list] = {key: [] for key in ("name", "avg_latency_ms", "p99_latency_ms", "success_rate",
                                                 "quality_score", "total_requests")}
    first_row = {}
    for i, name in enumerate(names):
        first_row.setdefault(name, i)
    for name, row in first_row.items():  # one pass per distinct agent, vectorized within it
        mine = names_array == name
        lat, ok, q = latency_ms[mine], success[mine].astype(np.float64), quality[mine]
        q = q[~np.isnan(q)]
        old = {key: current[key][row].as_py() for key in
               ("avg_latency_ms", "p99_latency_ms", "success_rate", "quality_score", "total_requests")}
        carried = 1.0 - (1.0 - alpha) ** len(lat)
        out["name"].append(name)
        out["avg_latency_ms"].append(ewma_fold(old["avg_latency_ms"], lat, alpha))
        out["p99_latency_ms"].append((1 - carried) * old["p99_latency_ms"] + carried * float(np.quantile(lat, 0.99)))
        out["success_rate"].append(ewma_fold(old["success_rate"], ok, alpha))
        out["quality_score"].append(ewma_fold(old["quality_score"], q, alpha))
        out["total_requests"].append(int(old["total_requests"] or 0) + len(lat))
    return out


@dataclass
class AffineFold:
    """One agent's events folded as a per-stat affine map ``x -> decay * x + offset`` (an EWMA over k events is
    affine in its starting value), plus the event count for total_requests. A bulk ingest folds a whole file per
    agent and applies the maps to the stored stats in one write, composing with any update made meanwhile."""

    decay: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATS, 1.0))
    offset: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STATS, 0.0))
    count: int = 0

    def then(self, stat: str, decay: float, offset: float) -> None:
        self.decay[stat] *= decay
        self.offset[stat] = decay * self.offset[stat] + offset

    def apply(self, stat: str, old: float) -> float:
        if stat == "total_requests":
            return (0.0 if np.isnan(old) else old) + self.count
        return self.decay[stat] * old + self.offset[stat]


def fold_batch(folds: dict[str, AffineFold], rows: pa.Table, alpha: float) -> None:
    """Fold one batch of usage rows (known agents, in time order) into ``folds``: :func:`fold_observations` from a
    zero start gives the offsets; the decay of k observations is (1 - alpha)^k (quality counts only its non-NULL
    observations)."""
    n = rows.num_rows
    zero = pa.table({stat: np.zeros(n) for stat in STATS} | {"total_requests": np.zeros(n, np.int64)})
    names = rows["agent"].to_numpy()
    quality = np.asarray(rows["quality"].to_numpy(zero_copy_only=False), dtype=np.float64)
    offsets = fold_observations(zero, names, rows["latency_ms"].to_numpy(),
                                rows["success"].to_numpy(zero_copy_only=False), quality, alpha=alpha)
    agents, owner = np.unique(names.astype(str), return_inverse=True)
    events = dict(zip(agents.tolist(), np.bincount(owner, minlength=len(agents)).tolist()))
    rated = dict(zip(agents.tolist(), np.bincount(owner, weights=~np.isnan(quality), minlength=len(agents)).tolist()))
    for i, name in enumerate(offsets["name"]):
        k, kq = events[name], rated[name]
        fold = folds.setdefault(name, AffineFold())
        for stat in STATS:
            decay = (1.0 - alpha) ** (kq if stat == "quality_score" else k)
            fold.then(stat, decay, offsets[stat][i])
        fold.count += k
