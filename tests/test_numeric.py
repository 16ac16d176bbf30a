"""Shared numeric helpers (tinydancer_duck._numeric): values against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinydancer_duck._numeric import (
    Adam,
    bce_with_logits,
    log_softmax,
    normalize_random_state,
    sigmoid,
    softmax,
    validation_split,
)
from tinydancer_duck.errors import InvalidArgument


def test_sigmoid_is_finite_and_symmetric_at_extremes():
    x = np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0])
    with np.errstate(over="raise", invalid="raise"):  # no overflow warning either
        p = sigmoid(x)
    assert np.isfinite(p).all()
    assert p[0] == 0.0 and p[-1] == 1.0 and p[2] == 0.5
    np.testing.assert_allclose(p + sigmoid(-x), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(sigmoid(np.array([-2.0, 0.5, 3.0])), 1 / (1 + np.exp([2.0, -0.5, -3.0])), rtol=1e-15)


def test_sigmoid_scalar_dtype_and_in_place():
    assert sigmoid(0.0) == 0.5 and math.isclose(float(sigmoid(1.0)), 1 / (1 + math.e ** -1), rel_tol=1e-15)
    x = np.array([[-1.0, 2.0]], np.float32)
    expected = (1 / (1 + np.exp(-x.astype(np.float64)))).astype(np.float32)
    got = sigmoid(x, out=x)
    assert got is x and x.dtype == np.float32
    np.testing.assert_allclose(x, expected, rtol=1e-6)


def test_softmax_rows_sum_to_one_with_huge_logits():
    logits = np.array([[1e4, 1e4 - 1.0, -1e4], [-5e3, -5e3, -5e3]])
    with np.errstate(over="raise", invalid="raise"):  # underflow to 0 is the right answer
        p = softmax(logits)
    e = math.exp(-1.0)
    np.testing.assert_allclose(p[0], [1 / (1 + e), e / (1 + e), 0.0], rtol=1e-15, atol=0)
    np.testing.assert_allclose(p[1], 1 / 3, rtol=1e-15)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(np.exp(log_softmax(logits)), p, rtol=1e-12, atol=1e-300)
    assert np.isfinite(log_softmax(logits)).all() and log_softmax(logits)[0, 2] == -2e4 - math.log1p(e)


def test_softmax_in_place_and_integer_logits():
    out = np.array([[0.0, math.log(3.0)]], np.float32)
    assert softmax(out, out=out) is out and out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.25, 0.75]], rtol=1e-6)
    np.testing.assert_allclose(softmax(np.array([1, 1, 1, 1])), 0.25)


@given(arrays(np.float64, (3, 4), elements=st.floats(-1e4, 1e4)))
def test_softmax_and_sigmoid_properties(logits):
    p = softmax(logits)
    assert np.isfinite(p).all() and (p >= 0).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-12)
    s = sigmoid(logits)
    assert ((s >= 0) & (s <= 1)).all()
    np.testing.assert_allclose(s + sigmoid(-logits), 1.0, atol=1e-15)


def test_bce_with_logits_matches_hand_values():
    logits = np.array([[0.0, 2.0, -3.0]])
    y = np.array([[1.0, 0.0, 1.0]])
    terms = [math.log(2.0), 2.0 + math.log1p(math.exp(-2.0)), 3.0 + math.log1p(math.exp(-3.0))]
    loss, grad = bce_with_logits(logits, y)
    assert math.isclose(loss, sum(terms) / 3, rel_tol=1e-15)
    sig = 1 / (1 + np.exp(-logits))
    np.testing.assert_allclose(grad, (sig - y) / 3, rtol=1e-15)
    loss_rows, grad_rows = bce_with_logits(logits, y, denominator=1)  # summed over labels, one row
    assert math.isclose(loss_rows, sum(terms), rel_tol=1e-15)
    np.testing.assert_allclose(grad_rows, sig - y, rtol=1e-15)


def test_bce_with_logits_mask_ignores_unknown_targets_and_extremes_stay_finite():
    logits = np.array([[1000.0, -1000.0, 0.0]], np.float32)
    y = np.array([[1.0, 0.0, np.nan]], np.float32)
    mask = ~np.isnan(y)
    loss, grad = bce_with_logits(logits, y, mask)
    assert loss == 0.0 and grad.dtype == np.float32
    np.testing.assert_array_equal(grad, [[0.0, 0.0, 0.0]])
    loss, grad = bce_with_logits(logits, np.array([[0.0, 1.0, 0.0]], np.float32), mask)
    assert math.isclose(loss, 1000.0, rel_tol=1e-6)  # (1000 + 1000) / 2 kept entries
    np.testing.assert_allclose(grad, [[0.5, -0.5, 0.0]])
    loss, grad = bce_with_logits(logits, y, np.zeros_like(mask))  # nothing observed: no loss, no gradient
    assert loss == 0.0 and not grad.any()


def test_adam_one_step_equals_hand_computation():
    lr, wd = 0.01, 0.1
    w = np.array([[1.0, -2.0], [0.5, 0.0]], np.float32)
    b = np.array([0.3, -0.3], np.float32)
    s = np.array(0.7, np.float32)
    params = {"w": w, "b": b, "s": s}
    g = {"w": np.array([[0.2, -0.4], [1e-3, 0.0]], np.float32), "b": np.array([1.0, -2.0], np.float32),
         "s": np.array(0.5, np.float32)}
    before = {k: v.astype(np.float64) for k, v in params.items()}
    adam = Adam(params, learning_rate=lr, weight_decay=wd)
    adam.step(g)
    lr_t = lr * math.sqrt(1 - 0.999) / (1 - 0.9)
    for k, p0 in before.items():
        gk = g[k].astype(np.float64)
        m, v = 0.1 * gk, 0.001 * gk * gk
        decayed = p0 - lr * wd * p0 if p0.ndim == 2 else p0  # only matrices decay, before the step
        expected = decayed - lr_t * m / (np.sqrt(v) + 1e-8)
        np.testing.assert_allclose(params[k], expected, rtol=1e-6, atol=1e-7)
    assert params["w"] is w and adam.t == 1  # updated in place
    np.testing.assert_allclose(b, [0.3 - lr, -0.3 + lr], rtol=1e-5)  # first step moves each entry by about lr
    np.testing.assert_allclose(w[1, 1], 0.0)  # zero gradient, zero weight: no move


def test_validation_split_sizes_disjoint_sorted_reproducible():
    tr, val = validation_split(10, 0.2, np.random.default_rng(3))
    assert len(val) == 2 and len(tr) == 8
    assert not set(tr) & set(val) and sorted([*tr, *val]) == list(range(10))
    assert list(tr) == sorted(tr) and list(val) == sorted(val)
    tr2, val2 = validation_split(10, 0.2, np.random.default_rng(3))
    np.testing.assert_array_equal(tr, tr2)
    np.testing.assert_array_equal(val, val2)
    order = np.random.default_rng(3).permutation(10)
    tr3, val3 = validation_split(10, 0.2, np.random.default_rng(3), sort=False)
    np.testing.assert_array_equal(val3, order[:2])
    np.testing.assert_array_equal(tr3, order[2:])


@pytest.mark.parametrize(("n", "fraction", "min_rows", "n_val"),
                         [(2, 0.9, 2, 1), (3, 0.01, 2, 1), (4, 0.5, 5, 0), (10, 0.0, 2, 0), (1, 0.5, 2, 0)])
def test_validation_split_bounds_and_no_draw_without_holdout(n, fraction, min_rows, n_val):
    rng = np.random.default_rng(0)
    state = rng.bit_generator.state
    tr, val = validation_split(n, fraction, rng, min_rows=min_rows)
    assert len(val) == n_val and len(tr) == n - n_val
    assert (rng.bit_generator.state == state) == (n_val == 0)  # the rng is drawn from only to hold rows out
    with pytest.raises(InvalidArgument, match="min_rows"):
        validation_split(n, fraction, rng, min_rows=1)


def test_normalize_random_state():
    g = np.random.default_rng(5)
    assert normalize_random_state(g) is g
    assert normalize_random_state(7).integers(1 << 30) == np.random.default_rng(7).integers(1 << 30)
    assert normalize_random_state(None).integers(1 << 30) == np.random.default_rng(0).integers(1 << 30)
    assert normalize_random_state(np.int64(2)).integers(1 << 30) == np.random.default_rng(2).integers(1 << 30)
    for bad in (-1, True, 1.5, "3"):
        with pytest.raises(InvalidArgument, match="random_state"):
            normalize_random_state(bad)
