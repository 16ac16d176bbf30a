"""The outcome router: predict each agent's expected quality for a request, learned from logged outcomes.

Model over the engine's unit-norm embeddings x (n, D): with ``hidden_dim`` H > 0 a one-hidden-layer network
h = tanh(x W1 + b1), logits = h W2 + b2; with H = 0 logits = x W2 + b2 (a linear head). q̂ = sigmoid(logits), one
output per agent, trained with the mean over observed (request, agent) pairs of the binary cross-entropy
max(l, 0) - l·y + log1p(exp(-|l|)) (y in [0, 1]; unobserved pairs of a long log are masked out), Adam, decoupled
weight decay on the weight matrices, full-batch epochs, early stopping on a seeded validation split. Output biases
start at logit(mean outcome per agent), so an untrained model predicts each agent's average.

Saved in the store's ``models`` table with kind ``outcome_router`` and the agent names as labels, versioned by
name. The active outcome model is the newest of that kind that fits the engine's embedder; while one is active the
router uses q̂ instead of quality_score for the agents it knows (:meth:`OutcomeRouters.quality`).
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck._numeric import Adam, bce_with_logits, normalize_random_state, sigmoid, validation_split
from tinydancer_duck._validate import check_int, check_names, check_number
from tinydancer_duck.embed import Embedder
from tinydancer_duck.errors import InvalidArgument, ModelError
from tinydancer_duck.store import Store, newest_row, save_model

from ._fastgrnn import MAX_EPOCHS, MAX_HIDDEN_DIM

KIND = "outcome_router"
Progress = Callable[[int, int, dict[str, float]], None]
METRICS_TYPE = pa.struct([("model", pa.string()), ("version", pa.int64()), ("kind", pa.string()),
                          ("name", pa.string()), ("n", pa.int64()), ("auc", pa.float64()),
                          ("accuracy", pa.float64()), ("brier", pa.float64()), ("log_loss", pa.float64()),
                          ("quality", pa.float64()), ("cost", pa.float64())])
_EPS = 1e-7


@dataclass(frozen=True)
class OutcomeModel:
    """Weights (w1 (D, H) and b1 (H,) when hidden, w2 (H or D, A), b2 (A,)), agent labels, embedder identity."""

    weights: dict[str, np.ndarray]
    labels: tuple[str, ...]
    embedder: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int((self.weights["w1"] if "w1" in self.weights else self.weights["w2"]).shape[0])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float64 (n, A) expected quality in (0, 1) for float32 x (n, D)."""
        logits = _logits(self.weights, np.asarray(x, np.float32)).astype(np.float64)
        return sigmoid(logits, out=logits)

    def expected_quality(self, x: np.ndarray, columns: np.ndarray, default: np.ndarray) -> np.ndarray:
        """float64 (n, A) expected quality of A agents for float32 x (n, D): the prediction of column
        ``columns[a]``, or ``default[a]`` (their quality_score) where ``columns[a]`` is -1 (an agent this model
        does not know)."""
        known = columns >= 0
        predicted = self.predict(x)[:, np.maximum(columns, 0)]
        return predicted if known.all() else np.where(known[None, :], predicted, np.asarray(default, np.float64))

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **self.weights)
        return buffer.getvalue()

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> OutcomeModel:
        try:
            with np.load(io.BytesIO(row["weights"])) as data:
                weights = {k: data[k] for k in data.files}
            metrics = json.loads(row["metrics"] or "{}")
        except Exception as exc:
            raise ModelError(f"outcome model {row['name']!r} version {row['version']} cannot be loaded: {exc}") from exc
        metrics.update(name=row["name"], version=row["version"])
        return cls(weights, tuple(row["labels"]), metrics.get("embedder", ""), metrics)


def _logits(w: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    h = np.tanh(x @ w["w1"] + w["b1"]) if "w1" in w else x
    return h @ w["w2"] + w["b2"]


def fit(x: np.ndarray, y: np.ndarray, *, hidden_dim: int = 0, epochs: int = 300, learning_rate: float = 0.01,
        weight_decay: float = 1e-3, validation_fraction: float = 0.2, patience: int = 30,
        random_state: int | np.random.Generator | None = 0, progress: Progress | None = None
        ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Train on x float32 (n, D), y float64 (n, A) in [0, 1] with NaN where unobserved (module docstring).

    Returns (weights, report) with the validation rows' indices under report["validation_rows"].
    """
    rng = normalize_random_state(random_state)
    n, d = x.shape
    tr, val = validation_split(n, validation_fraction, rng, min_rows=5)
    mask = ~np.isnan(y)
    target = np.where(mask, y, 0.0).astype(np.float32)
    mean = np.clip(np.nanmean(np.where(mask[tr], y[tr], np.nan), axis=0), 0.02, 0.98)
    mean = np.where(np.isnan(mean), 0.5, mean)
    a = y.shape[1]
    w: dict[str, np.ndarray] = {}
    width = d
    if hidden_dim:
        w["w1"] = (rng.standard_normal((d, hidden_dim)) / np.sqrt(d)).astype(np.float32)
        w["b1"] = np.zeros(hidden_dim, np.float32)
        width = hidden_dim
    w["w2"] = np.zeros((width, a), np.float32)
    w["b2"] = np.log(mean / (1 - mean)).astype(np.float32)
    adam = Adam(w, learning_rate=learning_rate, weight_decay=weight_decay)
    xs = (x * np.float32(np.sqrt(d))).astype(np.float32)  # unit rows -> unit-variance features

    def loss_of(rows: np.ndarray) -> float:
        return bce_with_logits(_logits(w, xs[rows]), target[rows], mask[rows])[0]

    best, best_loss, best_epoch, waited, started = {k: p.copy() for k, p in w.items()}, np.inf, 0, 0, time.perf_counter()
    x_tr, t_tr, m_tr = xs[tr], target[tr], mask[tr]
    epoch = 0
    for epoch in range(1, epochs + 1):
        h = np.tanh(x_tr @ w["w1"] + w["b1"]) if hidden_dim else x_tr
        logits = h @ w["w2"] + w["b2"]
        d_logits = bce_with_logits(logits, t_tr, m_tr)[1]
        grads = {"w2": h.T @ d_logits, "b2": d_logits.sum(axis=0)}
        if hidden_dim:
            d_h = (d_logits @ w["w2"].T) * (1 - h * h)
            grads["w1"], grads["b1"] = x_tr.T @ d_h, d_h.sum(axis=0)
        adam.step(grads)
        current = loss_of(val) if len(val) else loss_of(tr)
        if not np.isfinite(current):
            raise ModelError(f"outcome training diverged at epoch {epoch} (loss {current}); lower learning_rate")
        if current < best_loss - 1e-6:
            best, best_loss, best_epoch, waited = {k: p.copy() for k, p in w.items()}, current, epoch, 0
        else:
            waited += 1
        if progress is not None:
            progress(epoch, epochs, {"val_loss": current})
        if waited >= patience:
            break
    scale = np.float32(np.sqrt(d))  # fold the input scale into the first matrix
    best["w1" if hidden_dim else "w2"] = best["w1" if hidden_dim else "w2"] * scale
    return best, {"validation_rows": val, "train_rows": tr, "epochs_run": epoch, "best_epoch": best_epoch,
                  "seconds": time.perf_counter() - started, "validation_loss": best_loss}


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


class OutcomeRouters:
    """Train, save, load (cached by ``models`` version) and apply outcome routers over one store."""

    def __init__(self, store: Store, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    # -- loading ------------------------------------------------------------------------------------------------
    def _newest(self, table: pa.Table) -> OutcomeModel | None:
        row = newest_row(table, KIND)
        return None if row is None else OutcomeModel.from_row(row)

    def active(self) -> OutcomeModel | None:
        """The newest saved outcome model if it fits this engine's embedder, else None."""
        model = self.store.snapshot("models", "outcome:active", self._newest)
        if model is None or model.embedder != self.embedder.identity or model.dim != self.embedder.dim:
            return None
        return model

    # -- training -----------------------------------------------------------------------------------------------
    def train(self, requests: Any, outcomes: np.ndarray, agents: Sequence[str], *, costs: np.ndarray | None = None,
              model: str = "outcomes", hidden_dim: int = 0, epochs: int = 300, learning_rate: float = 0.01,
              weight_decay: float = 1e-3, validation_fraction: float = 0.2,
              random_state: int | np.random.Generator | None = 0, progress: Progress | None = None) -> pa.Table:
        """Fit on requests (texts or (n, D) embeddings) and outcomes float (n, A) in [0, 1] (NaN: unobserved), save
        as the next version of ``model`` (it becomes active) and return the validation metrics (:data:`METRICS_TYPE`,
        one row per agent, one pooled, and routing rows)."""
        check_names("model", [model])
        agents = check_names("agents", agents)
        check_int("hidden_dim", hidden_dim, minimum=0, maximum=MAX_HIDDEN_DIM)
        check_int("epochs", epochs, minimum=1, maximum=MAX_EPOCHS)
        check_number("learning_rate", learning_rate, above=0, maximum=10)
        check_number("weight_decay", weight_decay, minimum=0, maximum=1e6)
        if random_state is not None and not isinstance(random_state, np.random.Generator):
            check_int("random_state", random_state, minimum=0, maximum=2**32 - 1)
        if not (isinstance(validation_fraction, (int, float)) and 0 <= validation_fraction < 1):
            raise InvalidArgument("validation_fraction", validation_fraction, "must lie in [0, 1)")
        y = np.asarray(outcomes, np.float64)
        if y.ndim != 2 or y.shape[1] != len(agents) or not len(y):
            raise InvalidArgument("outcomes", getattr(y, "shape", None), f"expected (n, {len(agents)}) with n >= 1")
        observed = y[~np.isnan(y)]
        if not len(observed) or (observed < 0).any() or (observed > 1).any():
            raise InvalidArgument("outcomes", "values", "need observed outcomes within [0, 1]")
        if isinstance(requests, np.ndarray):
            x = np.asarray(requests, np.float32)
        else:
            x = self.embedder.embed(requests)
        if x.shape != (len(y), self.embedder.dim):
            raise InvalidArgument("requests", x.shape, f"expected ({len(y)}, {self.embedder.dim})")
        weights, report = fit(x, y, hidden_dim=int(hidden_dim), epochs=int(epochs), learning_rate=learning_rate,
                              weight_decay=weight_decay, validation_fraction=validation_fraction,
                              random_state=random_state, progress=progress)
        fitted = OutcomeModel(weights, tuple(agents), self.embedder.identity)
        val = report["validation_rows"] if len(report["validation_rows"]) else report["train_rows"]
        metrics = evaluate(fitted.predict(x[val]), y[val], None if costs is None else np.asarray(costs)[val], agents)
        summary = {"embedder": self.embedder.identity, "dim": self.embedder.dim, "hidden_dim": int(hidden_dim),
                   "epochs_run": report["epochs_run"], "best_epoch": report["best_epoch"],
                   "n_train": len(report["train_rows"]), "n_validation": len(report["validation_rows"]),
                   "validation": [m for m in metrics if m["kind"] != "agent"]}
        version = save_model(self.store, {"name": model, "kind": KIND, "weights": fitted.to_bytes(),
                                         "labels": list(agents), "metrics": json.dumps(summary, default=float)})
        return pa.Table.from_pylist([dict(m, model=model, version=version) for m in metrics],
                                    schema=pa.schema(list(METRICS_TYPE)))

    def train_log(self, log: Any, *, columns: Any = None, **options: Any) -> pa.Table:
        """Train from a log with per-agent outcomes (wide or long, see :mod:`tinydancer_duck._logs`)."""
        from tinydancer_duck._logs import open_log, read_outcomes

        spec = open_log(log, columns=columns)
        requests, outcomes, costs, agents = read_outcomes(spec)
        if np.isnan(costs).all():
            costs = None
        return self.train(requests, outcomes, agents, costs=costs, **options)
