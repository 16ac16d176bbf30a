"""The outcome router: predict each agent's expected quality for a request, learned from logged outcomes.

Over the engine's unit-norm embeddings, one of the kinds of :mod:`tinydancer_duck.learn._outcome_models` (default
kNN with per-agent Platt calibration: on RouterBench it routed to 95% of GPT-4's accuracy at the lowest held-out cost
of the kinds compared, ``benchmarks/eval_outcome_models.py``); unobserved (request, agent) pairs of a long log are
masked out. A production log (one agent per request) with propensities weighs each outcome by 1/propensity (kNN
and the Platt step), so an agent's mean is its mean over every request, not over those its logging policy chose. Training cross-fits ``folds`` models first, so its metrics and the willingness to pay it is calibrated to
(:mod:`tinydancer_duck.learn._calibrate`) are out-of-fold; the model saved is then fitted on every row.

Saved in the store's ``models`` table with kind ``outcome_router`` and the agent names as labels, versioned by
name. The active outcome model is the newest of that kind that fits the engine's embedder; while one is active the
router uses q̂ instead of quality_score for the agents it knows (:meth:`OutcomeRouters.quality`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from tinydancer_duck._numeric import normalize_random_state
from tinydancer_duck._validate import as_texts, check_names
from tinydancer_duck.embed import Embedder
from tinydancer_duck.errors import InvalidArgument, ModelError
from tinydancer_duck.options import OutcomeModelConfig, Text
from tinydancer_duck.store import Store, named_row, newest_row, save_model

from ._calibrate import Calibration, calibrate, cross_fit, fold_ids
from ._outcome_metrics import evaluate
from ._outcome_models import (
    check_kind,
    fit_outcome_model,
    predict_outcome_model,
)

KIND = "outcome_router"
Progress = Callable[[int, int, dict[str, float]], None]
#: prepare(requests, agents) -> (embeddings float32 (n, D), the router's cost estimate float64 (n, A) or None).
Prepare = Callable[[Any, Sequence[str]], tuple[np.ndarray, "np.ndarray | None"]]
METRICS_TYPE = pa.struct([("model", pa.string()), ("version", pa.int64()), ("kind", pa.string()),
                          ("name", pa.string()), ("n", pa.int64()), ("auc", pa.float64()),
                          ("accuracy", pa.float64()), ("brier", pa.float64()), ("log_loss", pa.float64()),
                          ("quality", pa.float64()), ("cost", pa.float64())])


@dataclass(frozen=True)
class OutcomeModel:
    """Weights of one outcome model kind (:func:`~._outcome_models.predict_outcome_model`), agent labels, the
    embedder identity and what training measured."""

    weights: dict[str, np.ndarray]
    labels: tuple[str, ...]
    embedder: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.weights["input_dim"])

    @property
    def calibration(self) -> Calibration | None:
        """The out-of-fold cost-quality curve saved with the model (None for a model saved before calibration)."""
        data = self.metrics.get("calibration")
        return None if not data else Calibration.from_json(data)

    @property
    def default_willingness_to_pay(self) -> float | None:
        """The knob ``optimize_for := 'learned'`` routes with (:data:`~._calibrate.DEFAULT_TARGET`)."""
        knob = self.metrics.get("willingness_to_pay")
        return None if not knob else float(knob["willingness_to_pay"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """float64 (n, A) expected quality in (0, 1) for float32 x (n, D)."""
        return predict_outcome_model(self.weights, x)

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
            with np.load(io.BytesIO(row["weights"]), allow_pickle=False) as data:
                weights = _with_kind({k: data[k] for k in data.files})
            metrics = json.loads(row["metrics"] or "{}")
        except Exception as exc:
            raise ModelError(f"outcome model {row['name']!r} version {row['version']} cannot be loaded: {exc}") from exc
        metrics.update(name=row["name"], version=row["version"])
        return cls(weights, tuple(row["labels"]), metrics.get("embedder", ""), metrics)


def _with_kind(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Weights saved before outcome models had kinds are a linear or one-hidden-layer head: say so."""
    if "kind" in weights:
        return weights
    first = weights["w1"] if "w1" in weights else weights["w2"]
    return {**weights, "kind": np.array("head"), "input_dim": np.array(first.shape[0]),
            "n_agents": np.array(weights["b2"].shape[0])}


def _predictor(weights: dict[str, np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    return OutcomeModel(weights, (), "").predict


def _checked_outcomes(outcomes: Any, agents: Sequence[str], folds: int) -> np.ndarray:
    y = np.asarray(outcomes, np.float64)
    if y.ndim != 2 or y.shape[1] != len(agents) or len(y) < folds:
        raise InvalidArgument("outcomes", getattr(y, "shape", None),
                              f"expected (n, {len(agents)}) with n >= folds ({folds})")
    observed = y[~np.isnan(y)]
    if not len(observed):
        raise InvalidArgument("outcomes", "all NaN", "need at least one observed outcome (NaN: unobserved)")
    outside = observed[(observed < 0) | (observed > 1)]
    if len(outside):
        raise InvalidArgument("outcomes", float(outside[0]), "need observed outcomes within [0, 1]")
    return y


def _checked_propensity(propensity: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    """None, or float64 ``shape`` with every known value within (0, 1] (NaN: unknown)."""
    if propensity is None:
        return None
    p = np.asarray(propensity, np.float64)
    if p.shape != shape:
        raise InvalidArgument("propensity", p.shape, f"expected {shape}, like the outcomes")
    known = p[~np.isnan(p)]
    bad = known[~((known > 0) & (known <= 1))]
    if len(bad):
        raise InvalidArgument("propensity", float(bad[0]), "must lie within (0, 1] (NaN: unknown)")
    return p


def _inverse_propensity(propensity: np.ndarray | None) -> np.ndarray | None:
    """float64 (n, A) sample weights 1/p of the observed pairs with a known propensity (1 otherwise), scaled so each
    agent's weights average 1 over its outcomes (the kNN prior's strength keeps its meaning); None without
    propensities."""
    if propensity is None:
        return None
    w = np.where(np.isfinite(propensity), 1.0 / np.where(np.isfinite(propensity), propensity, 1.0), 1.0)
    known = np.isfinite(propensity)
    mean = np.divide((w * known).sum(axis=0), known.sum(axis=0), out=np.ones(w.shape[1]), where=known.any(axis=0))
    return np.where(known, w / mean, 1.0)


def _mean_logged_cost(logged: np.ndarray) -> np.ndarray:
    """float64 (n, A): each agent's mean logged cost on every row (0 for an agent the log never prices): the
    estimate an agent registered from this log (``tinydancer agents import``) gets."""
    priced = (~np.isnan(logged)).sum(axis=0)
    mean = np.where(priced > 0, np.nansum(logged, axis=0) / np.maximum(priced, 1), 0.0)
    return np.broadcast_to(np.nan_to_num(mean, nan=0.0), logged.shape)


class _Stages:
    """One progress over the cross-fitted models and the final one: (fits done, folds + 1)."""

    def __init__(self, progress: Progress | None, stages: int, kind: str, hyperparameters: dict[str, Any]) -> None:
        self.progress, self.stages, self.done = progress, stages, 0
        self.kind, self.hyperparameters = kind, hyperparameters

    def fitted(self, x: np.ndarray, y: np.ndarray, rng: np.random.Generator,
               weight: np.ndarray | None = None) -> dict[str, np.ndarray]:
        weights = fit_outcome_model(self.kind, x, y, random_state=rng, sample_weight=weight, **self.hyperparameters)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.stages, {"fold": float(min(self.done, self.stages - 1))})
        return weights


class OutcomeRouters:
    """Train, save, load (cached by ``models`` version) and apply outcome routers over one store."""

    def __init__(self, store: Store, embedder: Embedder, prepare: Prepare | None = None) -> None:
        self.store = store
        self.embedder = embedder
        self.prepare = prepare

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

    def named(self, model: str | None = None) -> OutcomeModel:
        """The active outcome router (``model`` None) or the newest version of ``model``; ModelError when none."""
        if model is None:
            fitted = self.active()
            if fitted is None:
                raise ModelError("no outcome router is active for this store's embedder; train one "
                                 "(ruvector_train_outcome_router or tinydancer train-outcomes)")
            return fitted
        check_names("model", [model])
        row = named_row(self.store.read("models"), model)
        if row is None or row["kind"] != KIND:
            raise InvalidArgument("model", model, "is not a saved outcome router")
        return OutcomeModel.from_row(row)

    def calibration(self, model: str | None = None) -> tuple[OutcomeModel, Calibration]:
        """The model and its out-of-fold cost-quality curve; ModelError when it has none."""
        fitted = self.named(model)
        curve = fitted.calibration
        if curve is None:
            raise ModelError(f"outcome router {fitted.metrics.get('name')!r} version {fitted.metrics.get('version')} "
                             "has no calibration (saved by an older version, or its log has no request with every "
                             "agent's outcome); train it again")
        return fitted, curve

    def knob(self, *, quality_share: float | None = None, cost_per_1k: float | None = None,
             strongest_share: float | None = None, model: str | None = None) -> dict[str, Any]:
        """The willingness to pay that meets one target on the model's out-of-fold curve
        (:meth:`Calibration.knob`); no target gives the default one ``optimize_for='learned'`` uses."""
        given = {k: v for k, v in (("quality_share", quality_share), ("cost_per_1k", cost_per_1k),
                                   ("strongest_share", strongest_share)) if v is not None}
        if len(given) > 1:
            second = sorted(given)[1]
            raise InvalidArgument(second, given[second], f"give one target, not {' and '.join(sorted(given))}")
        fitted, curve = self.calibration(model)
        knob = curve.knob(*next(iter(given.items()))) if given else curve.default()
        return {**knob, "model": fitted.metrics.get("name"), "version": fitted.metrics.get("version"),
                "strongest": curve.strongest, "cost_estimate": curve.cost_estimate}

    def curve_rows(self, model: str | None = None) -> list[dict[str, Any]]:
        """The model's out-of-fold cost-quality curve (:data:`~._calibrate.CALIBRATION_TYPE` rows)."""
        return self.calibration(model)[1].points()

    # -- training -----------------------------------------------------------------------------------------------
    def train(self, requests: Any, outcomes: np.ndarray, agents: Sequence[str],
              config: OutcomeModelConfig | None = None, *, costs: np.ndarray | None = None, model: str = "outcomes",
              progress: Progress | None = None, source: dict[str, Any] | None = None,
              propensity: np.ndarray | None = None, **values: Any) -> pa.Table:
        """Fit on requests (texts or (n, D) embeddings) and outcomes float (n, A) in [0, 1] (NaN: unobserved), save
        as the next version of ``model`` (it becomes active) and return its metrics (:data:`METRICS_TYPE`, one row
        per agent, one pooled, and routing rows), all measured out-of-fold.

        ``folds`` models are cross-fitted first (:mod:`tinydancer_duck.learn._calibrate`): their out-of-fold
        predictions give the metrics and the calibrated willingness to pay saved with the model; the model saved
        is then fitted on every row.

        config, values : :class:`~tinydancer_duck.options.OutcomeModelConfig` (kind, the kind's hyperparameters,
            calibration, random_state, folds), or its fields by name applied over it.
        source : the log trained on ({"path", "rows", "holdout"}), so a replay can tell it is in-sample.
        propensity : float (n, A) the logging policy's probability of each observed (request, agent) pair (NaN:
            unknown), from a production log: its calibration then estimates the curve doubly robustly.

        It takes nine parameters because a log's outcomes, costs and propensities are three aligned (n, A) arrays
        and the model's settings already travel as one ``config``.
        """
        Text().scalar("model", model)
        agents = check_names("agents", agents)
        config = OutcomeModelConfig.of(config, **values)
        kind, folds, calibration = config.kind, config.folds, None if config.calibration == "none" else "platt"
        hyperparameters = config.hyperparameters()
        check_kind(kind, calibration, hyperparameters)  # before any embedding work
        hyperparameters["calibration"] = calibration
        y, p = _checked_outcomes(outcomes, agents, folds), _checked_propensity(propensity, np.shape(outcomes))
        x, estimated = self._prepared(requests, agents)
        if x.shape != (len(y), self.embedder.dim):
            raise InvalidArgument("requests", x.shape, f"expected ({len(y)}, {self.embedder.dim})")
        logged = np.full(y.shape, np.nan) if costs is None else np.asarray(costs, np.float64)
        cost_estimate = "the registered agents' prices"
        if estimated is None:
            estimated, cost_estimate = _mean_logged_cost(logged), "each agent's mean logged cost"
        rng = normalize_random_state(config.random_state)
        from tinydancer_duck._logs import text_hash  # polars stays out of the decision path's imports

        hashes = None if isinstance(requests, np.ndarray) else text_hash(as_texts("requests", requests))
        stages = _Stages(progress, folds + 1, kind, hyperparameters)
        fold = fold_ids(hashes, len(y), folds, rng)
        weight = _inverse_propensity(p)
        predicted = cross_fit(lambda *fit: _predictor(stages.fitted(*fit)), x, y, fold, rng, weight=weight)
        metrics = evaluate(predicted, y, None if costs is None else logged, agents)
        calibration = calibrate(predicted, y, logged, estimated, list(agents), folds, cost_estimate, propensity=p)
        weights = stages.fitted(x, y, rng, weight)
        summary = {"embedder": self.embedder.identity, "dim": self.embedder.dim, "kind": kind,
                   "hyperparameters": {k: v for k, v in hyperparameters.items() if v is not None}, "n_train": len(y),
                   "folds": folds, "log": source, "out_of_fold": [m for m in metrics if m["kind"] != "agent"],
                   "calibration": None if calibration is None else calibration.to_json(),
                   "willingness_to_pay": None if calibration is None else calibration.default()}
        version = save_model(self.store, {"name": model, "kind": KIND,
                                         "weights": OutcomeModel(weights, tuple(agents), "").to_bytes(),
                                         "labels": list(agents), "metrics": json.dumps(summary, default=float)})
        return pa.Table.from_pylist([dict(m, model=model, version=version) for m in metrics],
                                    schema=pa.schema(list(METRICS_TYPE)))

    def _prepared(self, requests: Any, agents: Sequence[str]) -> tuple[np.ndarray, np.ndarray | None]:
        """The requests' embeddings and the router's cost estimate per (request, agent), None when some agent is
        not registered (the engine's ``prepare`` knows the prices; without it, embeddings only)."""
        if self.prepare is not None:
            return self.prepare(requests, agents)
        if isinstance(requests, np.ndarray):
            return np.asarray(requests, np.float32), None
        return self.embedder.embed(requests), None

    def train_log(self, log: Any, *, columns: Any = None, holdout: Any = None, **options: Any) -> pa.Table:
        """Train from a log with per-agent outcomes (wide or long, see :mod:`tinydancer_duck._logs`).

        holdout : a share of the requests (chosen by text, the same on every run) kept out of training, so a
            replay with the same ``holdout`` is out-of-sample. The model records the log and the holdout, and a
            replay of that log without them warns that it is in-sample.
        """
        from tinydancer_duck._logs import check_holdout, held_out, open_log, read_outcomes, resolved_path

        fraction = check_holdout(holdout)
        spec = open_log(log, columns=columns)
        requests, outcomes, costs, agents, propensity = read_outcomes(spec)
        if fraction is not None:
            keep = ~held_out(requests, fraction)
            requests, outcomes, costs = requests.filter(pa.array(keep)), outcomes[keep], costs[keep]
            propensity = None if propensity is None else propensity[keep]
        if np.isnan(costs).all():
            costs = None
        source = {"path": resolved_path(spec.path), "rows": spec.n_rows, "holdout": fraction}
        return self.train(requests, outcomes, agents, costs=costs, source=source, propensity=propensity, **options)
