"""How good an outcome router is: per-agent and pooled classification metrics, and what routing by it realizes.

Computed on out-of-fold predictions (:mod:`tinydancer_duck.learn._calibrate`), so they say how the model does on
requests it did not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

_EPS = 1e-7


def auc(score: np.ndarray, label: np.ndarray) -> float:
    """ROC AUC by the rank-sum (Mann-Whitney) formula with average ranks for ties; NaN with one class only."""
    positive = label > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(score, kind="mergesort")
    ranks = np.empty(len(score))
    sorted_scores = score[order]
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def evaluate(pred: np.ndarray, y: np.ndarray, cost: np.ndarray | None, agents: Sequence[str]) -> list[dict[str, Any]]:
    """Validation metrics: per agent and pooled (AUC, accuracy at 0.5, Brier, log loss), and routing on the rows
    where every agent's outcome is known: the router (argmax q̂), the best single agent and the oracle, each with
    mean realized quality and mean cost per request."""
    rows: list[dict[str, Any]] = []

    def scores(kind: str, name: str, p: np.ndarray, t: np.ndarray) -> dict[str, Any]:
        pc_ = np.clip(p, _EPS, 1 - _EPS)
        return {"kind": kind, "name": name, "n": len(t), "auc": auc(p, t) if len(t) else float("nan"),
                "accuracy": float(np.mean((p > 0.5) == (t > 0.5))) if len(t) else float("nan"),
                "brier": float(np.mean((p - t) ** 2)) if len(t) else float("nan"),
                "log_loss": float(-np.mean(t * np.log(pc_) + (1 - t) * np.log(1 - pc_))) if len(t) else float("nan"),
                "quality": float(np.mean(t)) if len(t) else float("nan"), "cost": None}

    mask = ~np.isnan(y)
    for j, agent in enumerate(agents):
        rows.append(scores("agent", agent, pred[mask[:, j], j], y[mask[:, j], j]))
    rows.append(scores("overall", "all agents", pred[mask], y[mask]))
    full = mask.all(axis=1) & (np.ones(len(y), bool) if cost is None else ~np.isnan(cost).any(axis=1))
    if full.any():
        q, p = y[full], pred[full]
        c = np.zeros_like(q) if cost is None else cost[full]
        r = np.arange(len(q))

        def route_row(name: str, pick: np.ndarray) -> dict[str, Any]:
            return {"kind": "routing", "name": name, "n": len(q), "auc": None, "accuracy": None, "brier": None,
                    "log_loss": None, "quality": float(q[r, pick].mean()), "cost": float(c[r, pick].mean())}

        rows.append(route_row("router (argmax predicted quality)", np.argmax(p - 1e-9 * c, axis=1)))
        best = int(np.argmax(q.mean(axis=0)))
        rows.append(route_row(f"best single agent ({agents[best]})", np.full(len(q), best)))
        rows.append(route_row("oracle", np.argmax(q - 1e-9 * c, axis=1)))
    return rows
