"""Outcome models (head, knn, mf, ensemble, Platt calibration) on synthetic data with known structure."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tinydancer_duck.errors import InvalidArgument, ModelError
from tinydancer_duck.learn._outcome_metrics import auc
from tinydancer_duck.learn._outcome_models import (
    KINDS,
    _fit_platt,
    fit_outcome_model,
    predict_outcome_model,
)
from tinydancer_duck.options import OutcomeModelConfig

FAST_MF = {"dim": 4, "epochs": 150}
SMALL = {"head": {}, "knn": {}, "mf": FAST_MF, "ensemble": {"members": (("knn", {}), ("mf", FAST_MF))}}
CASES = [(kind, calibration) for kind in KINDS for calibration in (None, "platt")]


def clusters(n: int = 300, d: int = 24, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two clusters of unit rows; agent A is right exactly on cluster 0, agent B exactly on cluster 1."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((2, d))
    label = rng.integers(0, 2, n)
    x = centers[label] + 0.35 * rng.standard_normal((n, d))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    return x, np.stack([label == 0, label == 1], axis=1).astype(np.float64), label


@pytest.fixture(scope="module")
def data():
    return clusters()


@pytest.mark.parametrize(("kind", "calibration"), CASES)
def test_every_kind_learns_which_agent_is_right_where(data, kind, calibration):
    x, y, _ = data
    y = y.copy()
    y[np.random.default_rng(1).random(y.shape) < 0.25] = np.nan  # a quarter unobserved: masked, not zeros
    weights = fit_outcome_model(kind, x, y, random_state=0, calibration=calibration, **SMALL[kind])
    test_x, _, test_label = clusters(200, seed=0)  # fresh rows around the same centers
    p = predict_outcome_model(weights, test_x)
    assert p.shape == (200, 2) and p.dtype == np.float64
    assert auc(p[:, 0], test_label == 0) > 0.98 and auc(p[:, 1], test_label == 1) > 0.98
    assert (p[test_label == 0, 0] > 0.8).mean() > 0.9 and (p[test_label == 0, 1] < 0.2).mean() > 0.9


@pytest.mark.parametrize(("kind", "calibration"), CASES)
def test_weights_roundtrip_through_savez_without_pickle(tmp_path, data, kind, calibration):
    x, y, _ = data
    weights = fit_outcome_model(kind, x, y, random_state=3, calibration=calibration, **SMALL[kind])
    path = tmp_path / "w.npz"
    np.savez(path, **weights)
    with np.load(path, allow_pickle=False) as loaded:
        restored = {name: loaded[name] for name in loaded.files}
    assert str(restored["kind"]) == kind and ("calibration" in restored) == (calibration is not None)
    np.testing.assert_array_equal(predict_outcome_model(restored, x), predict_outcome_model(weights, x))


def test_predict_spans_batches_and_stays_inside_the_unit_interval(data):
    x, y, _ = data
    big = np.resize(x, (2500, x.shape[1]))  # knn works in blocks of 1024 query rows: 1024, 1024, 452
    for kind in KINDS:
        weights = fit_outcome_model(kind, x, y, **SMALL[kind])
        p = predict_outcome_model(weights, big)
        assert p.shape == (2500, 2) and np.isfinite(p).all() and (p > 0).all() and (p < 1).all()
        np.testing.assert_allclose(p[:300], predict_outcome_model(weights, x), rtol=1e-5, atol=1e-7)


def test_an_unobserved_outcome_is_not_a_failure(data):
    x, y, label = data
    y = y[:, :1].copy()  # one agent, so no model can borrow another agent's pattern for the unobserved rows
    y[label == 1] = np.nan  # never observed on cluster 1; where observed it is always right
    for kind in KINDS:
        p = predict_outcome_model(fit_outcome_model(kind, x, y, **SMALL[kind]), x)
        assert np.isfinite(p).all() and p[label == 0].mean() > 0.9
        assert p[label == 1].mean() > 0.5, kind  # read as zeros it would be near 0
    weights = fit_outcome_model("knn", x, y, k=5, temperature=0.1, prior_strength=1.0)
    far = predict_outcome_model(weights, x[label == 1])[:, 0]
    np.testing.assert_allclose(far, 0.98, rtol=1e-4)  # no neighbour observed it: exactly its (clipped) mean


def test_knn_stores_a_bounded_float16_table_and_chooses_its_hyperparameters(data):
    x, y, _ = data
    weights = fit_outcome_model("knn", x, y, max_rows=50, random_state=0)
    assert weights["x"].shape == (50, x.shape[1]) and weights["x"].dtype == np.float16
    assert weights["y"].shape == (50, 2) and 1 <= int(weights["k"]) <= 49
    assert float(weights["temperature"]) > 0 and float(weights["prior_strength"]) > 0


def test_same_seed_same_weights(data):
    x, y, _ = data
    a = fit_outcome_model("mf", x, y, random_state=7, calibration="platt", dim=4, epochs=60)
    b = fit_outcome_model("mf", x, y, random_state=7, calibration="platt", dim=4, epochs=60)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_platt_recovers_a_known_miscalibration():
    rng = np.random.default_rng(0)
    true = rng.normal(0, 2, (20_000, 2))
    y = (rng.random(true.shape) < 1 / (1 + np.exp(-true))).astype(float)
    y[:100, 1] = np.nan
    fitted = _fit_platt(3 * true + 1, y)  # logits three times too sharp and shifted
    np.testing.assert_allclose(fitted["platt_a"], 1 / 3, atol=0.02)
    np.testing.assert_allclose(fitted["platt_b"], -1 / 3, atol=0.05)


def test_default_kind_fits(data):
    x, y, label = data
    p = predict_outcome_model(fit_outcome_model(OutcomeModelConfig().kind, x, y, calibration=OutcomeModelConfig().calibration), x)
    assert auc(p[:, 0], label == 0) > 0.98


@pytest.mark.parametrize(("call", "argument", "value"), [
    (lambda x, y: fit_outcome_model("forest", x, y), "kind", "forest"),
    (lambda x, y: fit_outcome_model("knn", x, y, depth=3), "depth", 3),
    (lambda x, y: fit_outcome_model("knn", x, y, k=0), "k", 0),
    (lambda x, y: fit_outcome_model("mf", x, y, learning_rate=-1.0), "learning_rate", -1.0),
    (lambda x, y: fit_outcome_model("head", x, y, calibration="isotonic"), "calibration", "isotonic"),
    (lambda x, y: fit_outcome_model("ensemble", x, y, members=("knn",)), "members", ("knn",)),
    (lambda x, y: fit_outcome_model("knn", x, y * 2), "y", 2.0),
    (lambda x, y: fit_outcome_model("knn", x[:, :, None], y), "x", (300, 24, 1)),
    (lambda x, y: predict_outcome_model(fit_outcome_model("mf", x, y, epochs=2), x[:, :5]), "x", (300, 5)),
])
def test_bad_input_names_the_argument_and_value(data, call, argument, value):
    x, y, _ = data
    with pytest.raises(InvalidArgument) as caught:
        call(x, y)
    assert caught.value.argument == argument and caught.value.value == value
    assert argument in str(caught.value)


def test_weights_of_an_unknown_kind_are_a_model_error(data):
    x, y, _ = data
    weights = dict(fit_outcome_model("mf", x, y, epochs=2), kind=np.array("forest"))
    with pytest.raises(ModelError, match="forest"):
        predict_outcome_model(weights, x)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=24, max_size=24), st.sampled_from(["knn", "mf", "head"]))
def test_any_finite_request_gets_probabilities(row, kind):
    p = predict_outcome_model(_fitted(kind), np.asarray([row], np.float32))
    assert p.shape == (1, 2) and np.isfinite(p).all() and (p > 0).all() and (p < 1).all()


_CACHE: dict[str, dict[str, np.ndarray]] = {}


def _fitted(kind: str) -> dict[str, np.ndarray]:
    if kind not in _CACHE:
        x, y, _ = clusters(60, seed=2)
        _CACHE[kind] = fit_outcome_model(kind, x, y, **SMALL[kind])
    return _CACHE[kind]
