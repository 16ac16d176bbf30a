"""Outcome models: each agent's probability of a correct answer for a request embedding, four kinds behind one face.

x : float32 (n, D) unit rows (the engine's embeddings); y : float (n, A) in [0, 1], NaN where an outcome was not
observed (masked out of every loss and every neighbour average). Every kind produces logits l (n, A); q̂ = sigmoid(l).

- ``head``: a linear head or one-hidden-layer MLP (:mod:`tinydancer_duck.learn._outcome_head`).
- ``knn``: cosine neighbours with a prior toward each agent's mean, q̂[a] = (Σ_i w_i y_ia + m·ȳ_a) / (Σ_i w_i + m)
  over the k most similar training rows (a row that did not observe agent a adds nothing to agent a's sums),
  w_i = exp((s_i - 1) / τ), s_i the cosine similarity.
  k, m and τ not given are chosen on the training rows by leave-one-out log loss. Stores its training rows: at most
  ``max_rows`` (default 10,000, a seeded sample beyond that), D float16 + A float32 each: 5.6 MB at D=256, A=11.
  Predicting is one (requests, stored rows) GEMM in blocks of 1,024 requests, so its cost grows with the rows kept.
- ``mf``: matrix factorization as in RouteLLM's MF router (Ong et al., arXiv:2406.18665), trained pointwise:
  l = (x P) E + b with P (D, d) projecting the request, E (d, A) the agents' embeddings and b (A,) their biases;
  masked binary cross-entropy, Adam, decoupled weight decay, early stopping on a seeded validation split.
- ``ensemble``: the mean of its members' logits; members = ((kind, hyperparameters), ...).

``calibration="platt"`` fits per agent q̂ = sigmoid(α_a l + β_a) on out-of-fold logits of ``calibration_folds``
seeded folds (Newton steps, a small ridge toward α=1, β=0) of the model fitted on every row (the folds keep the
hyperparameters that fit chose). Platt keeps each
agent's ranking (its AUC) but puts agents on one probability scale, which is what routing compares across agents.

Weights are one flat dict of numpy arrays (no objects: ``np.savez`` then ``np.load(..., allow_pickle=False)``
restores them); ``weights["kind"]`` names the kind, ``input_dim`` and ``n_agents`` the shapes it expects and gives,
ensemble members sit under the prefix ``m{i}.``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from tinydancer_duck._numeric import Adam, bce_with_logits, normalize_random_state, sigmoid, validation_split
from tinydancer_duck._validate import check_int, check_number
from tinydancer_duck.errors import InvalidArgument, ModelError
from tinydancer_duck.options import MAX_EPOCHS, MAX_HIDDEN_DIM

from ._outcome_head import fit_head as _fit_head_weights
from ._outcome_head import head_logits as _head_logits
from ._platt import fit_platt as _fit_platt

Weights = dict[str, np.ndarray]
# chosen by benchmarks/eval_outcome_models.py (RouterBench, 5-fold CV by prompt, seeds 0 and 1): the best OOF AIQ
# (0.846 vs 0.837-0.845 for the others) and the cheapest cost at 95% of GPT-4's accuracy (w chosen on training folds:
# 29% of GPT-4's cost vs 31-47%); k, m and τ are chosen per fit by leave-one-out. Costs ~100x the head's predict time.
KNN_GRID = {"k": (10, 20, 40, 80, 160, 320, 640), "prior_strength": (0.5, 2.0, 8.0), "temperature": (0.05, 0.1, 0.2, 0.5)}
_SELECT_ROWS = 2000  # leave-one-out rows that choose k, m, τ: bounds that search's GEMMs at large max_rows
_CHUNK = 1024  # query rows per similarity block: 1024 x 10,000 float32 is 40 MB
_PROB = 1e-4  # probabilities are kept in [1e-4, 1 - 1e-4] before taking logits


def _agent_mean(y: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """Each agent's (weighted) mean observed outcome shrunk toward the agents' average by empirical Bayes, clipped to
    [0.02, 0.98]; 0.5 when no agent is observed. m̃_a = m̄ + B_a (m_a - m̄), B_a = τ² / (τ² + σ² / n_a), n_a the
    agent's effective outcomes, σ² the pooled outcome variance and τ² the agents' spread beyond their sampling
    noise (method of moments): an agent right on 18 of 18 requests of a production log is not taken for perfect
    (a router that believed it would send it everything), while agents observed on every request keep their means."""
    seen = ~np.isnan(y)
    w = seen.astype(float) if weight is None else np.where(seen, weight, 0.0)
    total, square = w.sum(axis=0), (w * w).sum(axis=0)
    value = np.where(seen, y, 0.0)
    mean = np.divide((value * w).sum(axis=0), total, out=np.full(y.shape[1], 0.5), where=total > 0)
    observed = total > 0
    if not observed.any():
        return np.full(y.shape[1], 0.5)
    n = np.divide(total**2, square, out=np.zeros(len(total)), where=square > 0)
    noise = float(((value - mean) ** 2 * w).sum() / total.sum())
    sampling = np.divide(noise, n, out=np.full(len(n), np.inf), where=n > 0)
    center = float(mean[observed].mean())
    tau = max(float(np.mean((mean[observed] - center) ** 2 - sampling[observed])), 1e-4)
    shrunk = np.where(observed, center + tau / (tau + sampling) * (mean - center), 0.5)
    return np.clip(shrunk, 0.02, 0.98)


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _PROB, 1 - _PROB)
    return np.log(p) - np.log1p(-p)


# -- head -------------------------------------------------------------------------------------------------------
def _fit_head(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, hidden_dim: int = 0, epochs: int = 300,
              learning_rate: float = 0.01, weight_decay: float = 1e-3, validation_fraction: float = 0.2,
              patience: int = 30) -> Weights:
    weights, _ = _fit_head_weights(x, y, hidden_dim=hidden_dim, epochs=epochs, learning_rate=learning_rate,
                                   weight_decay=weight_decay, validation_fraction=validation_fraction,
                                   patience=patience, random_state=rng)
    return weights


def _predict_head(w: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return _head_logits(dict(w), x)


# -- matrix factorization ---------------------------------------------------------------------------------------
def _descend(params: Weights, grads: Callable[[], Weights], loss: Callable[[], float], *, epochs: int,
             learning_rate: float, weight_decay: float, patience: int) -> Weights:
    """Full-batch Adam on ``params`` in place; returns a copy of the parameters with the lowest ``loss()``."""
    adam = Adam(params, learning_rate=learning_rate, weight_decay=weight_decay)
    best, best_loss, waited = {k: p.copy() for k, p in params.items()}, np.inf, 0
    for epoch in range(1, epochs + 1):
        adam.step(grads())
        current = loss()
        if not np.isfinite(current):
            raise ModelError(f"outcome training diverged at epoch {epoch} (loss {current}); lower learning_rate")
        if current < best_loss - 1e-6:
            best, best_loss, waited = {k: p.copy() for k, p in params.items()}, current, 0
        elif (waited := waited + 1) >= patience:
            break
    return best


def _fit_mf(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, dim: int = 16, epochs: int = 400,
            learning_rate: float = 0.01, weight_decay: float = 1e-3, validation_fraction: float = 0.2,
            patience: int = 30) -> Weights:
    n, d = x.shape
    tr, val = validation_split(n, validation_fraction, rng, min_rows=5)
    val = val if len(val) else tr
    mask = ~np.isnan(y)
    target = np.where(mask, y, 0.0).astype(np.float32)
    xs = (x * np.float32(np.sqrt(d))).astype(np.float32)  # unit rows -> unit-variance features
    p = {"proj": (rng.standard_normal((d, dim)) / np.sqrt(d)).astype(np.float32),
         "agents": np.zeros((dim, y.shape[1]), np.float32),  # zero: every agent starts at its mean
         "bias": _logit(_agent_mean(y[tr])).astype(np.float32)}
    x_tr, t_tr, m_tr = xs[tr], target[tr], mask[tr]

    def grads() -> Weights:
        z = x_tr @ p["proj"]
        d_l = bce_with_logits(z @ p["agents"] + p["bias"], t_tr, m_tr)[1]
        return {"proj": x_tr.T @ (d_l @ p["agents"].T), "agents": z.T @ d_l, "bias": d_l.sum(axis=0)}

    def loss() -> float:
        return bce_with_logits((xs[val] @ p["proj"]) @ p["agents"] + p["bias"], target[val], mask[val])[0]

    best = _descend(p, grads, loss, epochs=epochs, learning_rate=learning_rate, weight_decay=weight_decay,
                    patience=patience)
    best["proj"] *= np.float32(np.sqrt(d))  # fold the input scale in
    return best


def _predict_mf(w: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    return (x @ w["proj"]) @ w["agents"] + w["bias"]


# -- nearest neighbours -----------------------------------------------------------------------------------------
def _kernel_sums(query: np.ndarray, base: np.ndarray, table: np.ndarray, ks: Sequence[int],
                 temperatures: Sequence[float], exclude: np.ndarray | None = None) -> dict[tuple[int, float], np.ndarray]:
    """For each (k, τ): Σ_i w_i table_i over the k base rows most cosine-similar to each query row, (n, C) float32,
    w_i = exp((s_i - 1) / τ); rows tied with the k-th similarity are all kept. ``exclude`` (n,): a base row that is
    not query row j's neighbour (itself, for leave-one-out). Dense masked weights make every sum one GEMM."""
    sums = {(k, t): np.empty((len(query), table.shape[1]), np.float32) for k in ks for t in temperatures}
    for start in range(0, len(query), _CHUNK):  # blocks of rows bound the (block, n_base) similarity matrix
        s = query[start:start + _CHUNK] @ base.T
        if exclude is not None:
            s[np.arange(len(s)), exclude[start:start + _CHUNK]] = -np.inf
        kth = -np.partition(-s, [k - 1 for k in ks], axis=1)[:, [k - 1 for k in ks]]  # k-th similarity per row
        for t in temperatures:
            e = np.exp((s - np.float32(1)) / np.float32(t))
            for j, k in enumerate(ks):
                sums[(k, t)][start:start + len(s)] = np.where(s >= kth[:, j:j + 1], e, np.float32(0)) @ table
    return sums


def _outcome_table(y: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
    """(n, 2A) float32 [v, v·y], v = observed (times the row's sample weight): neighbour sums of it are Σ w v over
    observers and Σ w v y."""
    observed = (~np.isnan(y)).astype(np.float32)
    v = observed if weight is None else observed * weight
    return np.hstack([v, v * np.where(observed > 0, y, 0.0)]).astype(np.float32)


def _knn_probability(sums: np.ndarray, prior: np.ndarray, m: float) -> np.ndarray:
    a = len(prior)
    return (sums[:, a:] + m * prior) / (sums[:, :a] + m)


def _choose_knn(x: np.ndarray, y: np.ndarray, prior: np.ndarray, fixed: Mapping[str, Any],
                rng: np.random.Generator, weight: np.ndarray | None = None) -> dict[str, float]:
    """k, m and τ (those not in ``fixed``) minimizing the leave-one-out log loss (weighted by ``weight``) over (a
    seeded sample of at most ``_SELECT_ROWS`` of) the training rows, each row's neighbours taken among all the
    others."""
    grid = {name: (fixed[name],) if fixed.get(name) is not None else KNN_GRID[name] for name in KNN_GRID}
    ks = sorted({min(int(k), len(x) - 1) for k in grid["k"]})
    rows = np.sort(rng.choice(len(x), _SELECT_ROWS, replace=False)) if len(x) > _SELECT_ROWS else np.arange(len(x))
    sums = _kernel_sums(x[rows], x, _outcome_table(y, weight), ks, grid["temperature"], exclude=rows)
    mask = (~np.isnan(y[rows])) * (1.0 if weight is None else weight[rows])
    target = np.where(mask > 0, y[rows], 0.0)
    best, best_loss = {}, np.inf
    for (k, t), s in sums.items():
        for m in grid["prior_strength"]:
            p = np.clip(_knn_probability(s, prior, m), _PROB, 1 - _PROB)
            loss = -np.sum(mask * (target * np.log(p) + (1 - target) * np.log1p(-p))) / max(mask.sum(), 1e-12)
            if loss < best_loss:
                best, best_loss = {"k": k, "prior_strength": m, "temperature": t}, loss
    return best


def _fit_knn(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *, k: int | None = None,
             prior_strength: float | None = None, temperature: float | None = None,
             max_rows: int = 10_000, sample_weight: np.ndarray | None = None) -> Weights:
    if len(x) > max_rows:  # bound the stored table and the predict GEMM
        keep = np.sort(rng.choice(len(x), max_rows, replace=False))
        x, y = x[keep], y[keep]
        sample_weight = None if sample_weight is None else sample_weight[keep]
    prior = _agent_mean(y, sample_weight)
    x16 = x.astype(np.float16)
    chosen = _choose_knn(x16.astype(np.float32), y, prior,
                         {"k": k, "prior_strength": prior_strength, "temperature": temperature}, rng, sample_weight)
    weighted = {} if sample_weight is None else {"sample_weight": sample_weight.astype(np.float32)}
    return {"x": x16, "y": y.astype(np.float32), "prior": prior, "k": np.array(chosen["k"]),
            "prior_strength": np.array(float(chosen["prior_strength"])),
            "temperature": np.array(float(chosen["temperature"])), **weighted}


def _predict_knn(w: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))  # cosine needs unit rows
    k, t = min(int(w["k"]), len(w["x"])), float(w["temperature"])
    sums = _kernel_sums(x, w["x"].astype(np.float32), _outcome_table(w["y"], w.get("sample_weight")), (k,),
                        (t,))[(k, t)]
    return _logit(_knn_probability(sums, w["prior"], float(w["prior_strength"])))


# -- ensemble ---------------------------------------------------------------------------------------------------
def _fit_ensemble(x: np.ndarray, y: np.ndarray, rng: np.random.Generator, *,
                  members: Sequence[tuple[str, Mapping[str, Any]]] = (("knn", {}), ("mf", {}))) -> Weights:
    if isinstance(members, (str, bytes)) or not isinstance(members, Sequence) or not members or not all(
            isinstance(m, Sequence) and len(m) == 2 and isinstance(m[1], Mapping) for m in members):
        raise InvalidArgument("members", members, "expected a non-empty sequence of (kind, hyperparameters) pairs")
    weights: Weights = {"members": np.array(len(members))}
    for i, (kind, hyperparameters) in enumerate(members):
        member = fit_outcome_model(kind, x, y, random_state=rng, **hyperparameters)
        weights.update({f"m{i}.{name}": value for name, value in member.items()})
    return weights


def _member(w: Mapping[str, np.ndarray], i: int) -> Weights:
    prefix = f"m{i}."
    return {name[len(prefix):]: value for name, value in w.items() if name.startswith(prefix)}


def _predict_ensemble(w: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    n = int(w["members"])
    return sum(_calibrated_logits(_member(w, i), x) for i in range(n)) / n


# -- calibration ------------------------------------------------------------------------------------------------
def _out_of_fold_logits(kind: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator, folds: int,
                        hyperparameters: Mapping[str, Any], sample_weight: np.ndarray | None = None) -> np.ndarray:
    """Logits of every row from a model fitted on the other folds (seeded folds over rows)."""
    fold = rng.permutation(len(x)) % folds
    out = np.empty(y.shape)
    for f in range(folds):
        held = fold == f
        weighted = {} if sample_weight is None else {"sample_weight": sample_weight[~held]}
        weights = _FIT[kind](x[~held], y[~held], rng, **hyperparameters, **weighted)
        out[held] = _LOGITS[kind](weights, x[held])
    return out


# -- dispatch, validation, the public face ----------------------------------------------------------------------
_FIT: dict[str, Callable[..., Weights]] = {"head": _fit_head, "knn": _fit_knn, "mf": _fit_mf,
                                           "ensemble": _fit_ensemble}
_LOGITS: dict[str, Callable[[Mapping[str, np.ndarray], np.ndarray], np.ndarray]] = {
    "head": _predict_head, "knn": _predict_knn, "mf": _predict_mf, "ensemble": _predict_ensemble}
_CHOSEN: dict[str, Callable[[Mapping[str, np.ndarray]], dict[str, Any]]] = {
    "knn": lambda w: {"k": int(w["k"]), "prior_strength": float(w["prior_strength"]),
                      "temperature": float(w["temperature"])}}
KINDS = tuple(_FIT)
CALIBRATIONS = ("platt",)
# one table of value constraints for every kind's hyperparameters: (integer?, minimum, above, maximum)
_CONSTRAINTS: dict[str, tuple[bool, float | None, float | None, float | None]] = {
    "hidden_dim": (True, 0, None, MAX_HIDDEN_DIM), "epochs": (True, 1, None, MAX_EPOCHS),
    "patience": (True, 1, None, MAX_EPOCHS), "dim": (True, 1, None, MAX_HIDDEN_DIM), "k": (True, 1, None, None),
    "max_rows": (True, 2, None, 1_000_000),
    "learning_rate": (False, None, 0.0, 10.0), "weight_decay": (False, 0.0, None, 1e6),
    "validation_fraction": (False, 0.0, None, 0.9), "prior_strength": (False, None, 0.0, None),
    "temperature": (False, None, 0.0, None)}


def _check_hyperparameters(kind: str, hyperparameters: Mapping[str, Any]) -> None:
    allowed = [p for p in inspect.signature(_FIT[kind]).parameters.values()
               if p.kind is p.KEYWORD_ONLY and p.name != "sample_weight"]  # data, not a hyperparameter
    names = {p.name for p in allowed}
    for name, value in hyperparameters.items():
        if name not in names:
            raise InvalidArgument(name, value, f"kind {kind!r} does not take it (it takes {', '.join(sorted(names))})")
        if value is None or name not in _CONSTRAINTS:
            continue
        integer, minimum, above, maximum = _CONSTRAINTS[name]
        if integer:
            check_int(name, value, minimum=int(minimum or 0), maximum=None if maximum is None else int(maximum))
        else:
            check_number(name, value, minimum=minimum, above=above, maximum=maximum)


def _check_data(x: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, np.float32), np.asarray(y, np.float64)
    if x.ndim != 2 or len(x) < 2 or not np.isfinite(x).all():
        raise InvalidArgument("x", getattr(x, "shape", None), "expected finite float rows of shape (n, D), n >= 2")
    if y.ndim != 2 or len(y) != len(x) or y.shape[1] < 1:
        raise InvalidArgument("y", y.shape, f"expected ({len(x)}, A) with A >= 1")
    observed = y[~np.isnan(y)]
    if not len(observed):
        raise InvalidArgument("y", "all NaN", "need at least one observed outcome (NaN: unobserved)")
    outside = observed[~((observed >= 0) & (observed <= 1))]
    if len(outside):
        raise InvalidArgument("y", float(outside[0]), "need observed outcomes within [0, 1] (NaN: unobserved)")
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32), y


def _check_weight(weight: Any, y: np.ndarray) -> np.ndarray | None:
    """None, or float64 weights of y's shape, finite and > 0 wherever an outcome is observed (1 elsewhere)."""
    if weight is None:
        return None
    w = np.asarray(weight, np.float64)
    if w.shape != y.shape:
        raise InvalidArgument("sample_weight", w.shape, f"expected {y.shape}, like y")
    seen = ~np.isnan(y)
    bad = seen & ~(np.isfinite(w) & (w > 0))
    if bad.any():
        raise InvalidArgument("sample_weight", float(w[bad][0]), "must be finite and > 0 for every observed outcome")
    return np.where(seen, w, 1.0)


def check_kind(kind: Any, calibration: Any, hyperparameters: Mapping[str, Any]) -> None:
    """A known kind, calibration and that kind's hyperparameters, each error naming the argument and value."""
    if not isinstance(kind, str) or kind not in _FIT:
        raise InvalidArgument("kind", kind, f"expected one of {list(KINDS)}")
    if calibration is not None and calibration not in CALIBRATIONS:
        raise InvalidArgument("calibration", calibration, f"expected None or one of {list(CALIBRATIONS)}")
    _check_hyperparameters(kind, hyperparameters)


def fit_outcome_model(kind: str, x: np.ndarray, y: np.ndarray, *, random_state: int | np.random.Generator = 0,
                      calibration: str | None = None, calibration_folds: int = 5,
                      sample_weight: np.ndarray | None = None, **hyperparameters: Any) -> Weights:
    """Fit one outcome model (module docstring) on x float32 (n, D) and y float (n, A) in [0, 1], NaN unobserved.

    kind : one of :data:`KINDS`; hyperparameters : that kind's keyword arguments (e.g. ``hidden_dim`` for head,
    ``k`` for knn, ``dim`` for mf, ``members`` for ensemble); calibration : None or "platt".
    sample_weight : float (n, A) > 0, each observed outcome's weight (1 / its propensity in a production log): kNN's
    neighbour sums and agent means and the Platt fit are weighted by it (the other kinds fit unweighted).
    Returns the weights: a flat dict of numpy arrays for :func:`predict_outcome_model` and ``np.savez``.
    """
    check_kind(kind, calibration, hyperparameters)
    check_int("calibration_folds", calibration_folds, minimum=2)
    x, y = _check_data(x, y)
    weight = _check_weight(sample_weight, y)
    rng = normalize_random_state(random_state)
    own = {} if weight is None or kind != "knn" else {"sample_weight": weight}
    weights = _FIT[kind](x, y, rng, **hyperparameters, **own)
    calibrated: Weights = {}
    if calibration is not None:  # the folds reuse what the full fit chose (kNN's k, m, τ): one search, not 1 + folds
        fixed = {**hyperparameters, **(_CHOSEN[kind](weights) if kind in _CHOSEN else {})}
        oof = _out_of_fold_logits(kind, x, y, rng, min(calibration_folds, len(x)), fixed, own.get("sample_weight"))
        calibrated = {"calibration": np.array(calibration), **_fit_platt(oof, y, weight=weight)}
    return {"kind": np.array(kind), "input_dim": np.array(x.shape[1]), "n_agents": np.array(y.shape[1]),
            **weights, **calibrated}


def _calibrated_logits(w: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    logits = np.asarray(_LOGITS[str(w["kind"])](w, x), np.float64)
    if "calibration" in w:
        logits = w["platt_a"] * logits + w["platt_b"]
    return logits


def predict_outcome_model(weights: Mapping[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """float64 (n, A) probability of a correct answer in (0, 1) for each agent, for x float32 (n, D) unit rows."""
    kind = str(weights.get("kind", ""))
    if kind not in _LOGITS:
        raise ModelError(f"outcome model weights name kind {kind!r}, not one of {list(KINDS)}")
    x = np.asarray(x, np.float32)
    if x.ndim != 2 or x.shape[1] != int(weights["input_dim"]):
        raise InvalidArgument("x", x.shape, f"expected (n, {int(weights['input_dim'])})")
    logits = np.clip(_calibrated_logits(weights, x), -30.0, 30.0)  # sigmoid(±30) stays inside (0, 1) in float64
    return sigmoid(logits, out=logits)
