"""Analytic gradients of the FastGRNN cell: a forward pass that keeps what backprop needs, and BPTT over T steps.

For one step (see :mod:`tinydancer_duck.learn._fastgrnn`), with g = zeta (1 - z) + nu and the upstream gradient dh'::

    dh~     = dh' * g                        dz      = dh' * (h - zeta h~)
    dzeta   = sum(dh' * (1 - z) * h~)        dnu     = sum(dh' * h~)
    du_z    = dz * z (1 - z)                 du_h    = dh~ * (1 - h~^2)      (u = pre-activation + bias)
    db_z    = sum_rows(du_z)                 db_h    = sum_rows(du_h)
    shared modes: da = du_z + du_h;  dW = da^T x;  dU = da^T h;  dh = dh' * z + da U
    lowrank: p = x W2^T: dW1 = da^T p, dW2 = (da W1)^T x;  q = h U2^T: dU1 = da^T q, dU2 = (da U1)^T h
    separate: dW_z = du_z^T x, dW_h = du_h^T x, dU_z = du_z^T h, dU_h = du_h^T h, dh = dh' * z + du_z U_z + du_h U_h
    dzeta_raw = dzeta * zeta (1 - zeta),  dnu_raw = dnu * nu (1 - nu)

Written for clarity over speed: training batches are small, and inference uses the chunked kernel in fastgrnn.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinydancer_duck._numeric import sigmoid

from ._fastgrnn import FastGRNNParams

__all__ = ["StepCache", "backward", "forward_cache"]


@dataclass
class StepCache:
    """What one step keeps for backprop; every array has n rows."""

    x: np.ndarray              # (n, d) input
    h: np.ndarray | None       # (n, H) previous state, None for the zero state
    z: np.ndarray              # (n, H) gate
    cand: np.ndarray           # (n, H) candidate h~
    p: np.ndarray | None       # (n, r) x W2^T ("lowrank" only)
    q: np.ndarray | None       # (n, r) h U2^T ("lowrank" with a state only)


def _step_cache(x: np.ndarray, h: np.ndarray | None, prm: FastGRNNParams) -> tuple[np.ndarray, StepCache]:
    a = prm.arrays
    p = q = None
    if prm.mode == "full":
        a_z = x @ a["W"].T + (0.0 if h is None else h @ a["U"].T)
        a_h = a_z
    elif prm.mode == "lowrank":
        p = x @ a["W2"].T
        a_z = p @ a["W1"].T
        if h is not None:
            q = h @ a["U2"].T
            a_z = a_z + q @ a["U1"].T
        a_h = a_z
    else:
        a_z = x @ a["W_z"].T + (0.0 if h is None else h @ a["U_z"].T)
        a_h = x @ a["W_h"].T + (0.0 if h is None else h @ a["U_h"].T)
    z = sigmoid(a_z + a["b_z"])                               # z = sigmoid(a_z + b_z)
    cand = np.tanh(a_h + a["b_h"])                            # h~ = tanh(a_h + b_h)
    h_new = (prm.zeta * (1.0 - z) + prm.nu) * cand           # h' = (zeta (1 - z) + nu) h~ + z h
    if h is not None:
        h_new = h_new + z * h
    return h_new.astype(prm.dtype, copy=False), StepCache(x, h, z, cand, p, q)


def forward_cache(x_seq: np.ndarray, params: FastGRNNParams,
                  h0: np.ndarray | None = None) -> tuple[np.ndarray, list[StepCache]]:
    """Forward over x_seq (n, d) or (n, T, d) keeping one :class:`StepCache` per step; returns (h_T, caches)."""
    x_seq = np.asarray(x_seq, dtype=params.dtype)
    steps = [x_seq] if x_seq.ndim == 2 else [x_seq[:, t] for t in range(x_seq.shape[1])]
    h = None if h0 is None else np.asarray(h0, dtype=params.dtype)
    caches = []
    for x in steps:
        h, cache = _step_cache(x, h, params)
        caches.append(cache)
    assert h is not None
    return h, caches


def backward(dh_last: np.ndarray, caches: list[StepCache],
             params: FastGRNNParams) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """BPTT: gradients of a loss with respect to every array of ``params`` given dL/dh_T, shape (n, H).

    Returns (grads, dh0): grads has the same names and shapes as ``params.arrays``; dh0 is dL/dh0, or None when the
    sequence started from the zero state.
    """
    a = params.arrays
    grads = {k: np.zeros_like(v) for k, v in a.items()}
    zeta, nu = params.zeta, params.nu
    dzeta = dnu = 0.0
    dh: np.ndarray | None = dh_last
    for c in reversed(caches):
        assert dh is not None
        g = zeta * (1.0 - c.z) + nu
        d_cand = dh * g                                            # dh~ = dh' * g
        dz = dh * ((0.0 if c.h is None else c.h) - zeta * c.cand)  # dz = dh' * (h - zeta h~)
        dzeta += float(np.sum(dh * (1.0 - c.z) * c.cand))
        dnu += float(np.sum(dh * c.cand))
        du_z = dz * c.z * (1.0 - c.z)
        du_h = d_cand * (1.0 - c.cand * c.cand)
        grads["b_z"] += du_z.sum(axis=0)
        grads["b_h"] += du_h.sum(axis=0)
        dh_prev = None if c.h is None else dh * c.z
        if params.mode == "full":
            da = du_z + du_h
            grads["W"] += da.T @ c.x
            if c.h is not None:
                grads["U"] += da.T @ c.h
                dh_prev = dh_prev + da @ a["U"]
        elif params.mode == "lowrank":
            da = du_z + du_h
            grads["W1"] += da.T @ c.p
            grads["W2"] += (da @ a["W1"]).T @ c.x
            if c.h is not None:
                grads["U1"] += da.T @ c.q
                dq = da @ a["U1"]
                grads["U2"] += dq.T @ c.h
                dh_prev = dh_prev + dq @ a["U2"]
        else:
            grads["W_z"] += du_z.T @ c.x
            grads["W_h"] += du_h.T @ c.x
            if c.h is not None:
                grads["U_z"] += du_z.T @ c.h
                grads["U_h"] += du_h.T @ c.h
                dh_prev = dh_prev + du_z @ a["U_z"] + du_h @ a["U_h"]
        dh = dh_prev
    grads["zeta_raw"] += dzeta * zeta * (1.0 - zeta)
    grads["nu_raw"] += dnu * nu * (1.0 - nu)
    return grads, dh
