"""FastGRNN cell (Kusupati et al., NeurIPS 2018): pure numpy, batched, no I/O.

Shared mode ("full" and "lowrank"), one pre-activation ``a`` feeds both the gate and the candidate::

    a  = x W^T + h U^T                      x: (n, d), h: (n, H), W: (H, d), U: (H, H)
    z  = sigmoid(a + b_z)                   gate, (n, H)
    h~ = tanh(a + b_h)                      candidate, (n, H)
    h' = (zeta (1 - z) + nu) * h~ + z * h   zeta = sigmoid(zeta_raw), nu = sigmoid(nu_raw) (scalars)

``"lowrank"`` factors ``W = W1 W2`` (W1: (H, r), W2: (r, d)) and ``U = U1 U2`` (U1: (H, r), U2: (r, H)), and
evaluates ``x W^T`` as ``(x W2^T) W1^T`` so it never forms W. ``"separate"`` is the seed plan's variant with its own
weights for the gate and the update (``a_z = x W_z^T + h U_z^T``, ``a_h = x W_h^T + h U_h^T``); it stacks
``[W_z; W_h]`` so one matmul per step still serves the whole batch.

Layout is row-major: one row per request. A missing ``h`` means the zero state; then the ``h U^T`` matmul and the
``z * h`` term are skipped. The sigmoid is evaluated as ``(1 + tanh(u / 2)) / 2``: the same function, no overflow,
and numpy's float32 ``tanh`` is vectorized (numexpr measured 5-8x slower here, see benchmarks/bench_fastgrnn.py).
It is :func:`tinydancer_duck._numeric.sigmoid`'s rule, fused by hand into :func:`step`'s gate so that the kernel
allocates nothing beyond its chunk buffers.
Large batches are processed in row chunks so the pre-activation stays in cache while the gate math runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tinydancer_duck._numeric import normalize_random_state, sigmoid
from tinydancer_duck._validate import check_int
from tinydancer_duck.errors import InvalidArgument
from tinydancer_duck.options import MAX_HIDDEN_DIM

__all__ = ["MODES", "FastGRNNParams", "forward", "init_params", "step"]

#: Rows per chunk in :func:`step`: 1024 x 64 float32 is 256 KiB, so the pre-activation stays in L2 for the gate
#: math (measured best of 1K-16K rows on this machine).
CHUNK_ROWS = 1024


def _shapes_full(d: int, h: int, r: int | None) -> dict[str, tuple[int, ...]]:
    return {"W": (h, d), "U": (h, h), "b_z": (h,), "b_h": (h,), "zeta_raw": (), "nu_raw": ()}


def _shapes_lowrank(d: int, h: int, r: int | None) -> dict[str, tuple[int, ...]]:
    assert r is not None  # callers pass the rank for this mode; not user-facing validation
    return {"W1": (h, r), "W2": (r, d), "U1": (h, r), "U2": (r, h),
            "b_z": (h,), "b_h": (h,), "zeta_raw": (), "nu_raw": ()}


def _shapes_separate(d: int, h: int, r: int | None) -> dict[str, tuple[int, ...]]:
    return {"W_z": (h, d), "U_z": (h, h), "b_z": (h,), "W_h": (h, d), "U_h": (h, h), "b_h": (h,),
            "zeta_raw": (), "nu_raw": ()}


#: Parameter names and shapes per mode, given (input_dim, hidden_dim, rank).
MODES: dict[str, Callable[[int, int, int | None], dict[str, tuple[int, ...]]]] = {
    "full": _shapes_full,
    "lowrank": _shapes_lowrank,
    "separate": _shapes_separate,
}

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass(frozen=True, eq=False)
class FastGRNNParams:
    """Weights of one FastGRNN cell.

    mode : "full" | "lowrank" | "separate"
    arrays : name -> array, names and shapes as in ``MODES[mode]``; one float dtype (float32 or float64) for all.
        ``zeta_raw`` and ``nu_raw`` are 0-d arrays; zeta = sigmoid(zeta_raw), nu = sigmoid(nu_raw).

    The arrays are copied and made read-only, so derived forms (contiguous transposes, stacked weights) can be cached
    on the object safely. Use :meth:`replace` to get a cell with new weights.
    """

    mode: str
    arrays: Mapping[str, np.ndarray]
    _derived: dict[str, np.ndarray] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InvalidArgument("mode", self.mode, f"must be one of {sorted(MODES)}")
        arrays = {k: np.asarray(v) for k, v in self.arrays.items()}
        dtype = np.result_type(*arrays.values()) if arrays else np.dtype(np.float32)
        if dtype not in _FLOAT_DTYPES:
            raise InvalidArgument("arrays", str(dtype), "weights must be float32 or float64")
        key_in, key_out = {"full": ("W", "W"), "lowrank": ("W2", "W1"), "separate": ("W_z", "W_z")}[self.mode]
        if any(k not in arrays or arrays[k].ndim != 2 for k in (key_in, key_out)):
            raise InvalidArgument("arrays", sorted(arrays), f"mode {self.mode!r} needs 2-d {key_out!r}, {key_in!r}")
        rank = int(arrays["W1"].shape[1]) if self.mode == "lowrank" else None
        expected = MODES[self.mode](int(arrays[key_in].shape[1]), int(arrays[key_out].shape[0]), rank)
        if set(arrays) != set(expected):
            raise InvalidArgument("arrays", sorted(arrays), f"mode {self.mode!r} needs exactly {sorted(expected)}")
        owned = {}
        for name, shape in expected.items():
            if arrays[name].shape != shape:
                raise InvalidArgument(name, arrays[name].shape, f"expected shape {shape}")
            a = np.array(arrays[name], dtype=dtype, order="C", copy=True)
            a.setflags(write=False)
            owned[name] = a
        object.__setattr__(self, "arrays", owned)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    @property
    def dtype(self) -> np.dtype:
        return self.arrays["b_z"].dtype

    @property
    def hidden_dim(self) -> int:
        return int(self.arrays["b_z"].shape[0])

    @property
    def input_dim(self) -> int:
        key = {"full": "W", "lowrank": "W2", "separate": "W_z"}[self.mode]
        return int(self.arrays[key].shape[1])

    @property
    def rank(self) -> int | None:
        return int(self.arrays["W1"].shape[1]) if self.mode == "lowrank" else None

    @property
    def zeta(self) -> float:
        return float(sigmoid(float(self.arrays["zeta_raw"])))

    @property
    def nu(self) -> float:
        return float(sigmoid(float(self.arrays["nu_raw"])))

    def replace(self, **arrays: np.ndarray) -> FastGRNNParams:
        """A new cell with some arrays replaced (same mode, same dtype: new arrays are cast to it)."""
        new = {k: np.asarray(v, dtype=self.dtype) for k, v in arrays.items()}
        return FastGRNNParams(self.mode, {**self.arrays, **new})

    def astype(self, dtype: Any) -> FastGRNNParams:
        """The same cell with every array cast to ``dtype`` (float32 or float64)."""
        return FastGRNNParams(self.mode, {k: v.astype(dtype) for k, v in self.arrays.items()})

    def derived(self, key: str) -> np.ndarray:
        """Contiguous transposed (and, for "separate", stacked) weights, built once per cell."""
        got = self._derived.get(key)
        if got is None:
            got = _DERIVED[key](self.arrays)
            got.setflags(write=False)
            self._derived[key] = got
        return got


def _t(name: str) -> Callable[[Mapping[str, np.ndarray]], np.ndarray]:
    return lambda a: np.ascontiguousarray(a[name].T)


_DERIVED: dict[str, Callable[[Mapping[str, np.ndarray]], np.ndarray]] = {
    "WT": _t("W"), "UT": _t("U"), "W1T": _t("W1"), "W2T": _t("W2"), "U1T": _t("U1"), "U2T": _t("U2"),
    # [W_z; W_h]^T, (d, 2H): columns :H give the gate pre-activation, H: the update's.
    "WsT": lambda a: np.ascontiguousarray(np.concatenate([a["W_z"], a["W_h"]]).T),
    "UsT": lambda a: np.ascontiguousarray(np.concatenate([a["U_z"], a["U_h"]]).T),
}


#: Bounds on training sizes: a hidden layer of 4096 over 768-dim inputs is ~12 MB of weights per matrix (30000 ran
#: out of memory), and 10,000 epochs bound a run that would otherwise go on until stopped.


def _check_dims(input_dim: Any, hidden_dim: Any, mode: Any, rank: Any) -> None:
    check_int("input_dim", input_dim, minimum=1)
    check_int("hidden_dim", hidden_dim, minimum=1, maximum=MAX_HIDDEN_DIM)
    if mode not in MODES:
        raise InvalidArgument("mode", mode, f"must be one of {sorted(MODES)}")
    if mode == "lowrank":
        check_int("rank", rank, minimum=1, maximum=min(input_dim, hidden_dim))  # mode 'lowrank' needs a rank
    elif rank is not None:
        raise InvalidArgument("rank", rank, f"only mode 'lowrank' takes a rank (mode is {mode!r})")


def init_params(input_dim: int, hidden_dim: int, *, mode: str = "full", rank: int | None = None,
                random_state: int | np.random.Generator | None = 0, dtype: Any = np.float32) -> FastGRNNParams:
    """Seeded initial weights.

    Matrices are N(0, 1/fan_in) (for W1 W2 the product has that variance too); b_z = 1 (the gate starts leaning to
    keep the state), b_h = 0; zeta_raw = 1, nu_raw = -4 (EdgeML's defaults: zeta ~ 0.73, nu ~ 0.018).
    """
    _check_dims(input_dim, hidden_dim, mode, rank)
    if np.dtype(dtype) not in _FLOAT_DTYPES:
        raise InvalidArgument("dtype", dtype, "must be float32 or float64")
    rng = normalize_random_state(random_state)
    shapes = MODES[mode](int(input_dim), int(hidden_dim), None if rank is None else int(rank))
    arrays: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():  # dict order is fixed, so the draws are too
        if name == "b_z":
            arrays[name] = np.ones(shape)
        elif name == "zeta_raw":
            arrays[name] = np.array(1.0)
        elif name == "nu_raw":
            arrays[name] = np.array(-4.0)
        elif len(shape) == 1:
            arrays[name] = np.zeros(shape)
        else:
            arrays[name] = rng.standard_normal(shape) / np.sqrt(shape[1])
    return FastGRNNParams(mode, {k: v.astype(dtype) for k, v in arrays.items()})


def _as_batch(x: Any, params: FastGRNNParams, name: str, width: int) -> np.ndarray:
    x = np.asarray(x, dtype=params.dtype)
    if x.ndim != 2 or x.shape[1] != width:
        raise InvalidArgument(name, x.shape, f"expected shape (n, {width})")
    return x


def _preactivation(x: np.ndarray, h: np.ndarray | None, p: FastGRNNParams, a: np.ndarray,
                   r_buf: np.ndarray | None) -> None:
    """a = x W^T + h U^T (for "separate": a = x [W_z; W_h]^T + h [U_z; U_h]^T), written into ``a``."""
    if p.mode == "full":
        np.matmul(x, p.derived("WT"), out=a)
        if h is not None:
            a += h @ p.derived("UT")
    elif p.mode == "lowrank":
        assert r_buf is not None
        np.matmul(x, p.derived("W2T"), out=r_buf)      # x W2^T, (n, r)
        np.matmul(r_buf, p.derived("W1T"), out=a)      # (x W2^T) W1^T = x W^T
        if h is not None:
            a += (h @ p.derived("U2T")) @ p.derived("U1T")
    else:
        np.matmul(x, p.derived("WsT"), out=a)
        if h is not None:
            a += h @ p.derived("UsT")


def step(x: Any, h: Any, params: FastGRNNParams, out: np.ndarray | None = None) -> np.ndarray:
    """One FastGRNN step for a batch.

    x : array of shape (n, d), cast to ``params.dtype`` (float32 by default)
    h : array of shape (n, H), or None for the zero state
    out : optional array of shape (n, H) and ``params.dtype`` to write h' into; it may be ``h`` itself.
    Returns h' of shape (n, H)::

        z = sigmoid(a_z + b_z); h~ = tanh(a_h + b_h); h' = (zeta (1 - z) + nu) * h~ + z * h

    with a_z = a_h = x W^T + h U^T in the shared modes. Long because the code follows the equations line by line
    with in-place numpy operations (the kernel runs at the GEMM bound; helpers would add temporaries).
    """
    x = _as_batch(x, params, "x", params.input_dim)
    n, hid = x.shape[0], params.hidden_dim
    if h is not None:
        h = _as_batch(h, params, "h", hid)
        if h.shape[0] != n:
            raise InvalidArgument("h", h.shape, f"expected {n} rows like x")
    if out is None:
        out = np.empty((n, hid), dtype=params.dtype)
    elif out.shape != (n, hid) or out.dtype != params.dtype:
        raise InvalidArgument("out", (out.shape, str(out.dtype)), f"expected shape {(n, hid)} and {params.dtype}")
    dt = params.dtype.type
    zeta, nu = params.zeta, params.nu
    # zeta (1 - z) + nu with z = (1 + t) / 2, t = tanh((a_z + b_z) / 2):  = c0 - c1 t
    c1, c0 = dt(0.5 * zeta), dt(0.5 * zeta + nu)
    half_bz = params["b_z"] * dt(0.5)
    b_h = params["b_h"]
    width = 2 * hid if params.mode == "separate" else hid
    rows = min(n, CHUNK_ROWS)
    a_buf = np.empty((rows, width), dtype=params.dtype)
    t_buf = np.empty((rows, hid), dtype=params.dtype)
    c_buf = np.empty((rows, hid), dtype=params.dtype)
    r_buf = np.empty((rows, params.rank), dtype=params.dtype) if params.mode == "lowrank" else None
    for s in range(0, n, rows):
        e = min(s + rows, n)
        m = e - s
        hc = None if h is None else h[s:e]
        a = a_buf[:m]
        _preactivation(x[s:e], hc, params, a, None if r_buf is None else r_buf[:m])
        a_z, a_h = (a[:, :hid], a[:, hid:]) if params.mode == "separate" else (a, a)
        cand, t, g = c_buf[:m], t_buf[:m], None
        np.add(a_h, b_h, out=cand)
        np.tanh(cand, out=cand)                      # h~ = tanh(a_h + b_h)
        np.multiply(a_z, dt(0.5), out=t)
        t += half_bz
        np.tanh(t, out=t)                            # t = tanh((a_z + b_z) / 2), so z = (1 + t) / 2
        if hc is None:
            t *= -c1
            t += c0                                  # zeta (1 - z) + nu
            np.multiply(t, cand, out=out[s:e])       # h' = (zeta (1 - z) + nu) * h~
            continue
        g = a_buf[:m, :hid]                          # a is consumed; reuse its memory
        np.multiply(t, -c1, out=g)
        g += c0                                      # zeta (1 - z) + nu
        cand *= g                                    # (zeta (1 - z) + nu) * h~
        t += dt(1.0)
        t *= dt(0.5)                                 # z
        t *= hc                                      # z * h   (h read before out, which may alias it, is written)
        np.add(cand, t, out=out[s:e])                # h' = (zeta (1 - z) + nu) * h~ + z * h
    return out


def forward(x_seq: Any, params: FastGRNNParams, h0: Any = None) -> np.ndarray:
    """Run the cell over a sequence and return the last state.

    x_seq : array of shape (n, T, d), or (n, d) meaning T = 1
    h0 : array of shape (n, H), or None for zeros
    Returns h_T of shape (n, H). The loop is over T only; each step serves all n rows.
    """
    x_seq = np.asarray(x_seq, dtype=params.dtype)
    if x_seq.ndim == 2:
        return step(x_seq, h0, params)
    if x_seq.ndim != 3 or x_seq.shape[2] != params.input_dim or x_seq.shape[1] < 1:
        raise InvalidArgument("x_seq", x_seq.shape, f"expected shape (n, d) or (n, T, d) with d = {params.input_dim}")
    steps = x_seq.shape[1]
    h = step(x_seq[:, 0], h0, params)
    nxt = np.empty_like(h)
    for t in range(1, steps):
        step(x_seq[:, t], h, params, out=nxt)
        h, nxt = nxt, h
    return h
