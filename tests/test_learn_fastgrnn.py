"""FastGRNN kernel, gradients and trainer: values against a plain transcription of the paper's equations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.learn._fastgrnn import FastGRNNParams, forward, init_params, step
from tinydancer_duck.learn._fastgrnn_grad import backward, forward_cache
from tinydancer_duck.learn._train import loss_and_grads, predict_logits, predict_proba, train

MODES = [("full", None), ("lowrank", 3), ("separate", None)]
D, H = 7, 5


def _random_params(mode: str, rank: int | None, seed: int = 0, dtype=np.float32, d: int = D, h: int = H):
    """init_params plus noise on every array, so biases, zeta and nu are not at their defaults."""
    rng = np.random.default_rng(seed + 100)
    p = init_params(d, h, mode=mode, rank=rank, random_state=seed, dtype=np.float64)
    noisy = {k: v + 0.5 * rng.standard_normal(v.shape) for k, v in p.arrays.items()}
    return FastGRNNParams(mode, {k: v.astype(dtype) for k, v in noisy.items()})


def _paper_step(x: np.ndarray, h: np.ndarray | None, p: FastGRNNParams) -> np.ndarray:
    """The paper's cell for each row and each hidden unit, written out with Python floats."""
    a = {k: v.astype(np.float64) for k, v in p.arrays.items()}
    if p.mode == "full":
        w_z = w_h = a["W"]
        u_z = u_h = a["U"]
    elif p.mode == "lowrank":
        w_z = w_h = a["W1"] @ a["W2"]
        u_z = u_h = a["U1"] @ a["U2"]
    else:
        w_z, u_z, w_h, u_h = a["W_z"], a["U_z"], a["W_h"], a["U_h"]
    zeta = 1.0 / (1.0 + math.exp(-float(a["zeta_raw"])))
    nu = 1.0 / (1.0 + math.exp(-float(a["nu_raw"])))
    n, hid = x.shape[0], a["b_z"].shape[0]
    out = np.zeros((n, hid))
    for i in range(n):
        prev = [0.0] * hid if h is None else [float(v) for v in h[i]]
        for j in range(hid):
            pre_z = sum(w_z[j, k] * float(x[i, k]) for k in range(x.shape[1]))
            pre_z += sum(u_z[j, k] * prev[k] for k in range(hid)) + a["b_z"][j]
            pre_h = sum(w_h[j, k] * float(x[i, k]) for k in range(x.shape[1]))
            pre_h += sum(u_h[j, k] * prev[k] for k in range(hid)) + a["b_h"][j]
            z = 1.0 / (1.0 + math.exp(-pre_z))
            cand = math.tanh(pre_h)
            out[i, j] = (zeta * (1.0 - z) + nu) * cand + z * prev[j]
    return out


@pytest.mark.parametrize("mode,rank", MODES)
@pytest.mark.parametrize("n", [1, 1000])
@pytest.mark.parametrize("with_state", [False, True])
def test_step_matches_paper_equations(mode, rank, n, with_state):
    rng = np.random.default_rng(n)
    p = _random_params(mode, rank)
    x = rng.standard_normal((n, D)).astype(np.float32)
    h = rng.uniform(-1, 1, (n, H)).astype(np.float32) if with_state else None
    got = step(x, h, p)
    assert got.dtype == np.float32 and got.shape == (n, H)
    np.testing.assert_allclose(got, _paper_step(x, h, p), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("mode,rank", MODES)
def test_step_across_row_chunks_and_in_place(mode, rank):
    # 2500 rows cross the kernel's 1024-row chunks (1024, 1024, 452).
    rng = np.random.default_rng(5)
    p = _random_params(mode, rank, dtype=np.float64, d=40, h=16)
    x = rng.standard_normal((2500, 40))
    h = rng.uniform(-1, 1, (2500, 16))
    expect = _paper_step(x[:300], h[:300], p)
    full = step(x, h, p)
    np.testing.assert_allclose(full[:300], expect, rtol=1e-10, atol=1e-12)
    # rows 2000.. as their own call: the same values, up to the summation order of a GEMM of another shape
    np.testing.assert_allclose(full[2000:], step(x[2000:], h[2000:], p), rtol=1e-12, atol=1e-14)
    in_place = h.copy()
    step(x, in_place, p, out=in_place)
    np.testing.assert_array_equal(in_place, full)


@pytest.mark.parametrize("mode,rank", MODES)
def test_sequence_forward_equals_single_steps(mode, rank):
    rng = np.random.default_rng(2)
    p = _random_params(mode, rank)
    x_seq = rng.standard_normal((50, 4, D)).astype(np.float32)
    h = None
    for t in range(4):
        h = step(x_seq[:, t], h, p)
    np.testing.assert_array_equal(forward(x_seq, p), h)
    np.testing.assert_array_equal(forward(x_seq[:, 0], p), step(x_seq[:, 0], None, p))
    h0 = rng.uniform(-1, 1, (50, H)).astype(np.float32)
    np.testing.assert_array_equal(forward(x_seq[:, :1], p, h0=h0), step(x_seq[:, 0], h0, p))


def test_lowrank_equals_full_rank_with_product_weights():
    rng = np.random.default_rng(3)
    low = _random_params("lowrank", 3, dtype=np.float64)
    a = low.arrays
    full = FastGRNNParams("full", {"W": a["W1"] @ a["W2"], "U": a["U1"] @ a["U2"], "b_z": a["b_z"],
                                   "b_h": a["b_h"], "zeta_raw": a["zeta_raw"], "nu_raw": a["nu_raw"]})
    x_seq = rng.standard_normal((200, 3, D))
    np.testing.assert_allclose(forward(x_seq, low), forward(x_seq, full), rtol=1e-12, atol=1e-13)
    h = rng.uniform(-1, 1, (200, H))
    np.testing.assert_allclose(step(x_seq[:, 0], h, low), step(x_seq[:, 0], h, full), rtol=1e-12, atol=1e-13)


def _numeric_grad(f, v: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    out = np.zeros(v.shape)
    for i in np.ndindex(v.shape):
        plus, minus = v.copy(), v.copy()
        plus[i] += eps
        minus[i] -= eps
        out[i] = (f(plus) - f(minus)) / (2 * eps)
    return out


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


@pytest.mark.parametrize("mode,rank", MODES)
@pytest.mark.parametrize("steps", [None, 3])
@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_gradients_match_finite_differences(mode, rank, steps, task):
    rng = np.random.default_rng(11)
    c, n = 4, 6
    p = _random_params(mode, rank, dtype=np.float64)
    x = rng.standard_normal((n, D) if steps is None else (n, steps, D))
    y = rng.integers(0, c, n) if task == "multiclass" else rng.integers(0, 2, (n, c)).astype(np.float64)
    w, b = rng.standard_normal((c, H)), rng.standard_normal(c)
    _, grads = loss_and_grads(x, y, p, w, b, task)
    assert set(grads) == set(p.arrays) | {"head_weight", "head_bias"}
    for name, value in p.arrays.items():
        num = _numeric_grad(lambda v, name=name: loss_and_grads(x, y, p.replace(**{name: v}), w, b, task)[0], value)
        assert _rel_err(num, grads[name]) < 1e-3, name
        if steps == 3 or not name.startswith("U"):  # with one step from h = 0, U has no effect
            assert np.abs(num).max() > 1e-8, name
    assert _rel_err(_numeric_grad(lambda v: loss_and_grads(x, y, p, v, b, task)[0], w), grads["head_weight"]) < 1e-3
    assert _rel_err(_numeric_grad(lambda v: loss_and_grads(x, y, p, w, v, task)[0], b), grads["head_bias"]) < 1e-3


@pytest.mark.parametrize("mode,rank", MODES)
def test_gradient_with_respect_to_initial_state(mode, rank):
    rng = np.random.default_rng(12)
    p = _random_params(mode, rank, dtype=np.float64)
    x = rng.standard_normal((4, 3, D))
    h0 = rng.uniform(-1, 1, (4, H))
    target = rng.standard_normal((4, H))

    def loss(h_init):
        return float(np.sum(forward_cache(x, p, h_init)[0] * target))

    _, caches = forward_cache(x, p, h0)
    _, dh0 = backward(target, caches, p)
    assert _rel_err(_numeric_grad(loss, h0), dh0) < 1e-6


#: A small problem's training options: a larger step and no weight decay (the config's defaults are the route
#: classifier's, tuned for CLINC150).
FAST = {"learning_rate": 1e-2, "weight_decay": 0.0, "batch_size": 256, "patience": 5}


def _blobs(n: int, seed: int, c: int = 4, d: int = 16, draw: int = 0):
    """Gaussian blobs around ``seed``'s centers; ``draw`` picks fresh labels and noise around the same centers."""
    centers = np.random.default_rng(seed).standard_normal((c, d)) * 2
    rng = np.random.default_rng([seed, draw])
    y = rng.integers(0, c, n)
    return (centers[y] + rng.standard_normal((n, d))).astype(np.float32), y


@pytest.mark.parametrize("mode,rank", MODES)
def test_training_separable_problem_is_accurate_and_reproducible(mode, rank):
    x, y = _blobs(1200, seed=1)
    kwargs = {"n_classes": 4, "hidden_dim": 8, "mode": mode, "rank": rank, "epochs": 15, **FAST}
    first = train(x, y, random_state=7, **kwargs)
    assert first.history["val_accuracy"][first.best_epoch - 1] >= 0.95
    x_test, y_test = _blobs(500, seed=1, draw=1)
    assert np.mean(np.argmax(predict_logits(x_test, first), axis=1) == y_test) >= 0.95
    again = train(x, y, random_state=7, **kwargs)
    other = train(x, y, random_state=8, **kwargs)
    for name in first.params.arrays:
        np.testing.assert_array_equal(first.params[name], again.params[name])
    np.testing.assert_array_equal(first.head_weight, again.head_weight)
    assert first.history == again.history
    assert not np.array_equal(first.head_weight, other.head_weight)
    assert not all(np.array_equal(first.params[k], other.params[k]) for k in first.params.arrays)


def test_training_multilabel_and_sequences():
    x, y = _blobs(1000, seed=2)
    labels = np.stack([y == 0, y == 1, (y == 1) | (y == 2)], axis=1).astype(np.float32)
    res = train(x, labels, task="multilabel", n_classes=3, hidden_dim=8, epochs=20, **FAST)
    assert res.history["val_accuracy"][res.best_epoch - 1] >= 0.95
    prob = predict_proba(x[:5], res)
    assert prob.shape == (5, 3) and ((prob > 0) & (prob < 1)).all()
    seq = np.stack([x, np.roll(x, 1, axis=0)], axis=1)  # (n, 2, d); the label comes from the first step
    res = train(seq, y, n_classes=4, hidden_dim=8, epochs=20, **{**FAST, "learning_rate": 2e-2})
    assert res.history["val_accuracy"][res.best_epoch - 1] >= 0.9
    prob = predict_proba(seq[:10], res)
    np.testing.assert_allclose(prob.sum(axis=1), 1.0, rtol=1e-5)


def test_early_stopping_restores_best_epoch():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((300, 16)).astype(np.float32)
    y = rng.integers(0, 3, 300)  # noise labels: validation loss gets worse as the model memorizes
    x_val = rng.standard_normal((200, 16)).astype(np.float32)
    y_val = rng.integers(0, 3, 200)
    seen = []
    res = train(x, y, n_classes=3, hidden_dim=32, epochs=60, batch_size=32, learning_rate=3e-2, x_val=x_val,
                y_val=y_val, patience=3, progress=lambda e, total, m: seen.append((e, total, sorted(m))))
    assert res.epochs_run < 60
    assert res.epochs_run == res.best_epoch + 3
    assert res.best_epoch == int(np.argmin(res.history["val_loss"])) + 1
    logits = predict_logits(x_val, res).astype(np.float64)
    shifted = logits - logits.max(axis=1, keepdims=True)
    val_loss = np.mean(np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(200), y_val])
    assert val_loss == pytest.approx(res.history["val_loss"][res.best_epoch - 1], rel=1e-5)
    assert seen[0] == (1, 60, ["train_loss", "val_accuracy", "val_loss"]) and len(seen) == res.epochs_run


@pytest.mark.parametrize(
    "kwargs,argument",
    [
        ({"hidden_dim": 0}, "hidden_dim"),
        ({"mode": "lowrank", "rank": 17}, "rank"),
        ({"mode": "lowrank", "rank": 0}, "rank"),
        ({"mode": "lowrank"}, "rank"),
        ({"mode": "diagonal"}, "mode"),
        ({"task": "regression"}, "task"),
        ({"epochs": 0}, "epochs"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"validation_fraction": 1.0}, "validation_fraction"),
    ],
)
def test_bad_training_arguments_name_the_argument(kwargs, argument):
    x, y = _blobs(50, seed=3)
    with pytest.raises(InvalidArgument) as info:
        train(x, y, **{"n_classes": 4, "hidden_dim": 8, **kwargs})
    assert info.value.argument == argument
    assert argument in str(info.value)


def test_bad_data_names_the_argument():
    x, y = _blobs(50, seed=3)
    bad_x = x.copy()
    bad_x[3, 2] = np.nan
    with pytest.raises(InvalidArgument, match="x=") as info:
        train(bad_x, y, n_classes=4)
    assert info.value.argument == "x"
    with pytest.raises(InvalidArgument) as info:
        train(x, np.where(y == 0, 4, y), n_classes=4)
    assert info.value.argument == "y"
    with pytest.raises(InvalidArgument) as info:
        train(x, y - 1, n_classes=4)
    assert info.value.argument == "y"
    with pytest.raises(InvalidArgument) as info:
        train(x, np.full((50, 4), 2.0), task="multilabel", n_classes=4)
    assert info.value.argument == "y"
    with pytest.raises(InvalidArgument) as info:
        init_params(8, 4, mode="lowrank", rank=5)
    assert info.value.argument == "rank"
    with pytest.raises(InvalidArgument) as info:
        step(np.zeros((3, 9), np.float32), None, init_params(8, 4))
    assert info.value.argument == "x"


def test_params_are_read_only_values():
    p = init_params(D, H, random_state=np.random.default_rng(0))
    assert p.dtype == np.float32 and (p.input_dim, p.hidden_dim, p.rank) == (D, H, None)
    assert init_params(D, H, mode="lowrank", rank=2).rank == 2
    with pytest.raises(ValueError):
        p["W"][0, 0] = 1.0
    np.testing.assert_array_equal(init_params(D, H, random_state=3)["W"], init_params(D, H, random_state=3)["W"])
    x = np.ones((2, D), np.float32)
    before = step(x, None, p)
    changed = p.replace(W=p["W"] * 2)
    assert not np.array_equal(step(x, None, changed), before)
    np.testing.assert_array_equal(step(x, None, p), before)
    assert p.astype(np.float64).dtype == np.float64


@settings(max_examples=60, deadline=None)
@given(
    x=arrays(np.float32, (8, D), elements=st.floats(-1e4, 1e4, width=32)),
    h=arrays(np.float32, (8, H), elements=st.floats(-1, 1, width=32)),
    mode_index=st.integers(0, 2),
    seed=st.integers(0, 2**16),
)
def test_state_stays_finite_and_bounded(x, h, mode_index, seed):
    mode, rank = MODES[mode_index]
    p = _random_params(mode, rank, seed=seed)
    # |h~| <= 1 and |h| <= 1 give |h'| <= zeta (1 - z) + nu + z <= 1 + nu; from h = 0, |h'| <= zeta + nu.
    out = step(x, h, p)
    assert np.isfinite(out).all()
    assert np.abs(out).max() <= 1.0 + p.nu + 1e-5
    cold = step(x, None, p)
    assert np.isfinite(cold).all() and np.abs(cold).max() <= p.zeta + p.nu + 1e-5
