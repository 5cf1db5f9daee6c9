"""OverQ activation encoding, its inverse, and the golden model of the array.

``encode`` turns post-ReLU activations into the (value, state) pairs that the array's
``a_data`` / ``a_state`` ports carry; ``decode`` undoes the moves so the result can be
compared with the real activations; ``golden`` is the array's exact integer output.
All three share one layout: the last axis is the reduction axis, cut into tiles of
``cfg.rows`` slots, and every tile's row 0 acts as NORMAL (its PE has no row above).

The encoder is vectorised over every vector; only the left-to-right scan along the
rows of a tile is a Python loop, because the rule is greedy (earlier slots win).
``encode_reference`` is the same rule written one slot at a time, for the tests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw_ref import checks
from sw_ref.arrays import to_numpy as _to_numpy
from hw.params import (
    STATE_NORMAL,
    STATE_PRECISION,
    STATE_RANGE,
    STATE_SHIFTED,
    ArrayConfig,
)

__all__ = [
    "EncodeStats",
    "Encoded",
    "encode",
    "decode",
    "golden",
    "encode_reference",
]


@dataclass(frozen=True)
class EncodeStats:
    """Per-tensor summary of one encode call.

    ``outliers``: slots with round(x/step) > 2^b - 1; ``handled``: those that got a
    RANGE partner (the others were clipped, or moved by an earlier cascade);
    ``coverage`` = handled / outliers, 1.0 when there is no outlier; ``precise``:
    slots written with PRECISION extra bits; ``mse``: mean over all slots of
    (decoded - x)^2, in the units of x.
    """

    outliers: int
    handled: int
    coverage: float
    precise: int
    mse: float


@dataclass(frozen=True)
class Encoded:
    """Result of ``encode``: integer ``values`` and ``states`` shaped like x (int64)."""

    values: object
    states: object
    stats: EncodeStats
    step: float


def _check_step(step) -> float:
    step = float(step)
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"step must be a positive finite number, got {step}")
    return step


def _scaled(x: np.ndarray, step: float, rows: int) -> np.ndarray:
    """Slot-major x / step [rows, V] in float64, rejecting NaN, inf and x < 0.

    Dividing straight into the slot-major layout is one pass over the data.
    """
    if x.dtype.kind not in "fiub":
        raise ValueError(f"activations must be numeric, got dtype {x.dtype}")
    view = _tile(x, rows, 0)
    y = np.empty(view.shape, dtype=np.float64)
    np.divide(view, step, out=y, dtype=np.float64)
    if not (y.min() >= 0 and y.max() < np.inf):
        if np.isnan(x).any():
            raise ValueError("activations contain NaN")
        if (x < 0).any():
            raise ValueError(f"activations must be >= 0 (post-ReLU), found {x.min()}")
        raise ValueError("activations contain inf (or overflow when divided by step)")
    return y


def _tile(a: np.ndarray, rows: int, fill) -> np.ndarray:
    """[..., K] -> slot-major [rows, V] view, V = vectors * ceil(K / rows), padded."""
    k = a.shape[-1]
    tiles = max(1, -(-k // rows))
    flat = a.reshape(-1, k)
    if tiles * rows != k:
        padded = np.full((flat.shape[0], tiles * rows), fill, dtype=a.dtype)
        padded[:, :k] = flat
        flat = padded
    return flat.reshape(-1, rows).T


def _untile(a: np.ndarray, shape: tuple, dtype) -> np.ndarray:
    """Inverse of ``_tile``: slot-major [rows, V] -> [..., K] as a C-ordered array."""
    k = shape[-1]
    n = int(np.prod(shape[:-1], dtype=np.int64))
    flat = np.asarray(a.T, dtype=dtype, order="C").reshape(n, -1)
    if flat.shape[1] != k:
        flat = np.ascontiguousarray(flat[:, :k])
    return flat.reshape(shape)


def _work_dtype(cfg: ArrayConfig):
    """Smallest signed dtype for 2^(2b) and row indices: the scan is memory bound."""
    need = max(2 * cfg.act_bits + 1, (2 * cfg.rows + 2).bit_length())
    for dtype in (np.int16, np.int32):
        if need < np.iinfo(dtype).bits:
            return dtype
    return np.int64


def _blend(a, b, mask):
    """b where mask is all ones, a where it is 0: branch-free, unlike np.where."""
    return a ^ ((a ^ b) & mask)


def _mask(flags: np.ndarray, dt) -> np.ndarray:
    """bool -> 0 / -1 (all bits set) in dtype dt, for ``_blend``."""
    return np.negative(flags.view(np.int8), dtype=dt)


def _sum_squares(a: np.ndarray) -> float:
    """sum(a^2), overwriting a; numpy's own loop (a BLAS dot may spin up threads)."""
    np.square(a, out=a)
    return float(a.sum())


@dataclass
class _Tally:
    """Running sums of one encode call (in units of step)."""

    seen: int = 0
    handled: int = 0
    precise: int = 0
    sse: float = 0.0

    def fix(self, yk, old, new, where: np.ndarray):
        """Replace the squared error of slots ``where`` (old decode -> new decode)."""
        idx = np.flatnonzero(where)
        if idx.size:
            y = yk[idx]
            self.sse += float(np.sum((new[idx] - y) ** 2 - (old[idx] - y) ** 2))
        return idx.size


def _scan(y: np.ndarray, real: np.ndarray | None, cfg: ArrayConfig):
    """Encode slot-major y = x/step [R, V] -> (values, states, tally).

    One pass over the rows; per vector it keeps the scan pointer and the value and
    state pending for the next slot. A slot the pointer jumped over decodes to its
    own clipped value (it moved one right, or it was the consumed zero), so the
    squared error starts from that and is corrected where a pair was written.
    """
    rows, nvec = y.shape
    b, top, wide = cfg.act_bits, cfg.act_max, cfg.wide_max
    dt = _work_dtype(cfg)
    tally = _Tally()
    # q = round(x/step), row by row: row-sized temporaries are recycled by the
    # allocator, a full-size float temporary would be fresh memory on every call.
    # Saturating at 2^(2b) - 1 (only if needed) keeps the cast safe and changes no
    # decision: q' = min(q, 2^(2b) - 1) is all an outlier ever keeps.
    q = np.empty(y.shape, dtype=dt)
    row = np.empty(nvec, dtype=np.float64)
    bounded = y.max() <= wide
    for k in range(rows):
        np.rint(y[k] if bounded else np.minimum(y[k], float(wide), out=row), out=row)
        q[k] = row
    tally.seen = int(np.count_nonzero(q > top))
    if not cfg.overq_enabled:
        values = np.minimum(q, top)
        for k in range(rows):
            tally.sse += _sum_squares(np.subtract(values[k], y[k], out=row))
        return values, np.zeros_like(q), tally

    zero = q == 0
    if real is not None:
        zero &= real  # padding of a partial tile is never a target
    if cfg.range_enabled:  # after_zero[k]: 1 + the nearest zero after row k
        never = rows + cfg.cascade + 1
        after_zero = np.empty_like(q)
        run = np.full(nvec, never, dtype=dt)
        for k in reversed(range(rows)):
            after_zero[k] = run
            run -= (run - dt(k + 1)) * zero[k]

    values = np.empty_like(q)
    states = np.empty_like(q)
    ptr = np.zeros(nvec, dtype=dt)
    pend_v = np.zeros(nvec, dtype=dt)
    pend_f = np.zeros(nvec, dtype=dt)
    for k in range(rows):
        qk, yk = q[k], y[k]
        clipped = np.minimum(qk, top)
        tally.sse += _sum_squares(np.subtract(clipped, yk, out=row))
        active = ptr == k
        am = _mask(active, dt)
        # What an active scan writes at k (NORMAL) and k+1, and where it goes next;
        # masks are 0 / -1 so that a ^ ((a ^ b) & m) picks without branches.
        first, partner, jump = clipped, dt(0), dt(k + 1)
        partner_state = dt(STATE_SHIFTED) - am  # active: RANGE (or PRECISION below)
        if cfg.range_enabled:
            reach = (qk > top) & (after_zero[k] <= k + 1 + cfg.cascade)
            rm = _mask(reach, dt)
            first = _blend(first, qk & top, rm)
            partner = (qk >> b) & rm
            jump = _blend(jump, after_zero[k], rm)
            tally.handled += tally.fix(yk, clipped, qk, reach & active)
        if cfg.precision_enabled and k + 1 < rows:
            pair = (qk > 0) & (qk <= top) & zero[k + 1]
            pm = _mask(pair, dt)
            fine = np.rint(np.minimum(yk * float(1 << b), float(wide))).astype(dt)
            first = _blend(first, fine >> b, pm)
            partner = _blend(partner, fine & top, pm)
            jump = _blend(jump, dt(k + 2), pm)
            partner_state += pm & am & dt(STATE_PRECISION - STATE_RANGE)
            tally.precise += tally.fix(yk, clipped, fine / float(1 << b), pair & active)
        idle = ~am
        np.bitwise_or(pend_v & idle, first & am, out=values[k])
        np.bitwise_and(pend_f, idle, out=states[k])
        pend_v = (clipped & idle) | (partner & am)  # a slot passed over moves right
        pend_f = partner_state
        np.maximum(ptr, jump & am, out=ptr)  # inactive: ptr > k >= 0
    return values, states, tally


def _decode_slot_major(v: np.ndarray, f: np.ndarray, b: int) -> np.ndarray:
    """Original-position activations, in units of step, from slot-major (v, f)."""
    vf = v.astype(np.float64)
    normal = f == STATE_NORMAL
    out = np.where(normal, vf, 0.0)
    nv, nf = vf[1:], f[1:]
    out[:-1] += np.where(normal[:-1] & (nf == STATE_RANGE), nv * float(1 << b), 0.0)
    out[:-1] += np.where(normal[:-1] & (nf == STATE_PRECISION), nv / float(1 << b), 0.0)
    moved = ~normal[:-1] & (f[:-1] != STATE_PRECISION) & (nf == STATE_SHIFTED)
    out[:-1] += np.where(moved, nv, 0.0)
    return out


def _effective_states(states: np.ndarray, cfg: ArrayConfig) -> np.ndarray:
    """States as the array applies them: all NORMAL without OverQ, tile row 0 NORMAL."""
    if not cfg.overq_enabled:
        return np.zeros_like(states)
    f = states.copy()
    f[..., :: cfg.rows] = STATE_NORMAL
    return f


def _int_array(a, name: str) -> np.ndarray:
    return checks.integer_data(a, name)


def _check_ports(values, states, cfg: ArrayConfig):
    v = _int_array(values, "values")
    f = _int_array(states, "states")
    if v.shape != f.shape:
        raise ValueError(f"values {v.shape} and states {f.shape} differ in shape")
    if v.size and (v.min() < 0 or v.max() > cfg.act_max):
        raise ValueError(f"values must be in 0..{cfg.act_max} ({cfg.act_bits} bits)")
    if f.size and (f.min() < 0 or f.max() > 3):
        raise ValueError("states must be in 0..3")
    return v, f


def encode(x, step, cfg: ArrayConfig) -> Encoded:
    """OverQ-encode activations x [..., K] (numpy or torch, >= 0) on the grid ``step``.

    K may exceed ``cfg.rows``: the last axis is cut into tiles of ``rows`` slots, each
    encoded alone. A last partial tile is encoded as a shorter vector: a range
    overwrite never reaches past its end and its last slot's outlier is clipped
    (like the zero-padded rows the array sees, which the encoder never uses).
    """
    step = _check_step(step)
    checks.array_config(cfg)
    arr, back = _to_numpy(x)
    if arr.ndim == 0:
        raise ValueError("x needs at least one axis (the slots of a vector)")
    shape = arr.shape
    if arr.size == 0:
        empty = np.zeros(shape, dtype=np.int64)
        stats = EncodeStats(0, 0, 1.0, 0, 0.0)
        return Encoded(back(empty), back(empty.copy()), stats, step)
    rows = cfg.rows
    ys = _scaled(arr, step, rows)
    real = None
    if shape[-1] % rows:
        real = np.ascontiguousarray(_tile(np.ones(shape, dtype=bool), rows, False))
    v, f, tally = _scan(ys, real, cfg)
    stats = EncodeStats(
        outliers=tally.seen,
        handled=tally.handled,
        coverage=tally.handled / tally.seen if tally.seen else 1.0,
        precise=tally.precise,
        mse=tally.sse / arr.size * step * step,
    )
    return Encoded(
        back(_untile(v, shape, np.int64)), back(_untile(f, shape, np.int64)), stats, step
    )


def decode(values, states, step, cfg: ArrayConfig):
    """Dequantized activations (real units: slot value * step) in their original slots.

    Shifted values go back one slot left, a RANGE pair restores the outlier's wide
    value, a PRECISION pair the fine value (fractions of step); the slot a pair or a
    cascade consumed decodes to 0, as it was a zero. Pass step=1 for units of step.
    """
    step = _check_step(step)
    checks.array_config(cfg)
    v_in, back = _to_numpy(values)
    f_in, _ = _to_numpy(states)
    v, f = _check_ports(v_in, f_in, cfg)
    if v.ndim == 0:
        raise ValueError("values need at least one axis (the slots of a vector)")
    if v.size == 0:
        return back(np.zeros(v.shape))
    f = _effective_states(f, cfg)
    vs = np.ascontiguousarray(_tile(v, cfg.rows, 0))
    fs = np.ascontiguousarray(_tile(f, cfg.rows, STATE_NORMAL))
    out = _decode_slot_major(vs, fs, cfg.act_bits) * step
    return back(_untile(out, v.shape, np.float64))


def golden(values, states, weights, cfg: ArrayConfig):
    """The array's exact output y [..., C], README "The array".

    y[c] = sum_k v_k * W[sel(k)][c] << cfg.state_shifts[f_k], sel(k) = k for NORMAL
    and k-1 otherwise; every tile's row 0 is NORMAL. ``weights`` is [K, C] in integer
    units (APoT already decoded), each in ``cfg.weight_min..cfg.weight_max``, with
    K = values.shape[-1]; K > rows means several tiles whose outputs add up, as an
    accumulating driver would.

    The result is int64: one tile's output always fits (``cfg.min_acc_bits`` <= 64).
    Only a sum over many tiles of the widest configurations can exceed int64; numpy
    callers then get an object array of exact Python integers, torch callers a
    ValueError (torch has no such dtype). Nothing wraps.
    """
    checks.array_config(cfg)
    v_in, back = _to_numpy(values)
    f_in, _ = _to_numpy(states)
    w_in, _ = _to_numpy(weights)
    v, f = _check_ports(v_in, f_in, cfg)
    w = _int_array(w_in, "weights")
    if w.ndim != 2 or v.ndim == 0 or w.shape[0] != v.shape[-1]:
        raise ValueError(
            f"weights must be [K, C] with K = values.shape[-1]; got weights {w.shape}, "
            f"values {v.shape}"
        )
    outside = (w < cfg.weight_min) | (w > cfg.weight_max)
    if outside.any():
        raise ValueError(
            f"weights must be in {cfg.weight_min}..{cfg.weight_max} ({cfg.weight_bits}-bit "
            f"{cfg.weight_format} weights in integer units), found {w[outside][0]}"
        )
    f = _effective_states(f, cfg)
    shifts = np.asarray(cfg.state_shifts if cfg.overq_enabled else (0, 0, 0, 0), dtype=np.int64)
    scaled = v << shifts[f]
    own = np.where(f == STATE_NORMAL, scaled, 0)
    own[..., :-1] += np.where(f[..., 1:] != STATE_NORMAL, scaled[..., 1:], 0)
    y = _exact_matmul(own, w)
    if y.dtype == object and not isinstance(back(np.zeros(0, np.int64)), np.ndarray):
        raise ValueError(
            "the outputs exceed int64 (a sum over many tiles); pass numpy arrays to get "
            "exact Python integers"
        )
    return back(y)


def _exact_matmul(a: np.ndarray, w: np.ndarray) -> np.ndarray:
    """a @ w for int64 operands, exactly, by the cheapest exact route.

    numpy's integer matmul has no BLAS and is slow on layer-sized operands. The bound
    B = max over rows of sum |a| times max |w| (in float64, relative error ~K 2^-53)
    bounds every partial sum: below 2^52 a float64 BLAS product is exact whatever its
    summation order, below 2^62 int64 cannot wrap, and above that the sums are taken
    in Python integers (an object array, int64 again if the result fits).
    """
    if a.size == 0 or w.size == 0:
        return a @ w
    bound = float(np.abs(a).sum(axis=-1, dtype=np.float64).max()) * float(np.abs(w).max())
    if bound < 2.0**52:
        return np.rint(a.astype(np.float64) @ w.astype(np.float64)).astype(np.int64)
    if bound < 2.0**62:
        return a @ w
    y = a.astype(object) @ w.astype(object)
    if all(-(1 << 63) <= e < (1 << 63) for e in y.flat):
        return y.astype(np.int64)
    return y


def encode_reference(x, step, cfg: ArrayConfig) -> tuple[list[int], list[int]]:
    """README "OverQ encoding" for one 1-D vector, one slot at a time (slow, for tests).

    Vectors longer than ``cfg.rows`` are cut into tiles; a last partial tile is a
    shorter vector. Returns (values, states) as lists.
    """
    step = _check_step(step)
    checks.array_config(cfg)
    xs = [float(e) for e in np.asarray(checks.real_data(x, "x"), dtype=np.float64).ravel()]
    values: list[int] = []
    states: list[int] = []
    for start in range(0, len(xs), cfg.rows):
        v, f = _reference_tile(xs[start : start + cfg.rows], float(step), cfg)
        values += v
        states += f
    return values, states


def _reference_tile(x: list[float], s: float, cfg: ArrayConfig):
    b = cfg.act_bits
    big, wide = (1 << b) - 1, (1 << (2 * b)) - 1
    n = len(x)
    q = [int(round(e / s)) for e in x]
    v = [0] * n
    f = [STATE_NORMAL] * n
    k = 0
    while k < n:
        if q[k] > big and cfg.range_enabled:
            j = next((j for j in range(k + 1, min(k + cfg.cascade, n - 1) + 1) if q[j] == 0), None)
            if j is not None:
                for m in range(j - 1, k, -1):  # q_{k+1}..q_{j-1} move one slot right
                    v[m + 1], f[m + 1] = min(q[m], big), STATE_SHIFTED
                wq = min(q[k], wide)
                v[k], f[k] = wq % (1 << b), STATE_NORMAL
                v[k + 1], f[k + 1] = wq >> b, STATE_RANGE
                k = j + 1
                continue
            v[k], f[k] = big, STATE_NORMAL
            k += 1
            continue
        if 0 < q[k] <= big and cfg.precision_enabled and k + 1 < n and q[k + 1] == 0:
            p = min(int(round(x[k] * (1 << b) / s)), wide)
            v[k], f[k] = p >> b, STATE_NORMAL
            v[k + 1], f[k + 1] = p % (1 << b), STATE_PRECISION
            k += 2
            continue
        v[k], f[k] = min(q[k], big), STATE_NORMAL
        k += 1
    return v, f
