"""OverQ activation encoding, its inverse, and the golden model of the array.

``encode`` turns post-ReLU activations into the (value, state) pairs that the array's
``a_data`` / ``a_state`` ports carry; ``decode`` undoes the moves so the result can be
compared with the real activations; ``golden`` is the array's exact integer output and
``golden_real`` the layer output in real units (with a zero point's correction).
All share one layout: the last axis is the reduction axis, cut into tiles of
``cfg.rows`` slots, and every tile's row 0 acts as NORMAL (its PE has no row above).

Encoding is two steps, as in hardware: ``codes`` quantizes x to the integer codes a
requantizer would produce (q, or the fine code u with ``precision``), and
``encode_codes`` encodes those codes. ``encode`` is exactly the two in a row, so the
hardware encoder, which sees only codes, can be checked against ``encode_codes``.
The encoder itself, vectorised over every vector and table-driven, lives in
``sw_ref.overq_engine``; this module quantizes, validates, shapes and reports.
``encode_codes_reference`` / ``encode_reference`` are the same rule written one slot
at a time, for the tests.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np

from hw.params import (
    STATE_NORMAL,
    STATE_PRECISION,
    STATE_RANGE,
    STATE_SHIFTED,
    ArrayConfig,
)
from sw_ref import checks
from sw_ref import overq_engine as _engine
from sw_ref.arrays import to_numpy as _to_numpy

__all__ = [
    "EncodeStats",
    "Encoded",
    "code_bits",
    "codes",
    "encode_codes",
    "encode",
    "decode",
    "reconstruct",
    "encode_stats",
    "golden",
    "golden_real",
    "encode_reference",
    "encode_codes_reference",
]


@dataclass(frozen=True)
class EncodeStats:
    """Per-tensor summary of one encode call.

    ``outliers``: slots with q > 2^b - 1; ``handled``: those that got a RANGE partner
    (the others were clipped, or moved by an earlier cascade); ``coverage`` = handled /
    outliers, 1.0 when there is no outlier; ``precise``: slots written with PRECISION
    extra bits; ``mse``: mean over all slots of the squared error of the decoded value.
    From ``encode`` the error is against x - floor, in the units of x; from
    ``encode_codes`` (x unknown) it is the error the encoder adds to the codes, in
    units of step^2: decoded - q, or decoded - u / 2^b with ``precision``.
    ``victims`` (``victim`` mode): the handled outliers that took a pruned neighbour's
    slot; ``victim_mse``: the part of ``mse`` at the pruned slots (each decodes to 0,
    i.e. the floor), in the same units: what the pruning cost, against the clipping
    error it removed.
    """

    outliers: int
    handled: int
    coverage: float
    precise: int
    mse: float
    victims: int = 0
    victim_mse: float = 0.0


@dataclass(frozen=True)
class Encoded:
    """Result of ``encode``: integer ``values`` and ``states`` shaped like x (int64).

    ``step`` is the grid step (1.0 from ``encode_codes``: values in units of step) and
    ``floor`` the zero point that was subtracted before quantizing.
    """

    values: object
    states: object
    stats: EncodeStats
    step: float
    floor: float = 0.0


def code_bits(cfg: ArrayConfig) -> int:
    """CB, the width of one slot's code (``ArrayConfig.code_bits``: 2b, or 3b with precision)."""
    return cfg.code_bits


def _check_step(step) -> float:
    return checks.positive(step, "step")


def _check_floor(floor) -> float:
    return checks.finite(floor, "floor")


def _activation_input(x, step, floor, cfg: ArrayConfig):
    """The checked arguments ``codes`` and ``encode`` share: (x as numpy, back, step, floor)."""
    step, floor = _check_step(step), _check_floor(floor)
    checks.array_config(cfg)
    arr, back = _to_numpy(x)
    if arr.ndim == 0:
        raise ValueError("x needs at least one axis (the slots of a vector)")
    return arr, back, step, floor


def _tile(a: np.ndarray, rows: int, fill) -> np.ndarray:
    """[..., K] -> slot-major [rows, V] view, V = vectors * ceil(K / rows), padded."""
    return _tile_major(a, rows, fill).T


def _tile_major(a: np.ndarray, rows: int, fill) -> np.ndarray:
    """[..., K] -> [V, rows], V = vectors * ceil(K / rows); a view unless K % rows."""
    k = a.shape[-1]
    tiles = max(1, -(-k // rows))
    flat = a.reshape(-1, k)
    if tiles * rows != k:
        padded = np.full((flat.shape[0], tiles * rows), fill, dtype=a.dtype)
        padded[:, :k] = flat
        flat = padded
    return flat.reshape(-1, rows)


def _untile(a: np.ndarray, shape: tuple, dtype) -> np.ndarray:
    """Inverse of ``_tile``: slot-major [rows, V] -> [..., K] as a C-ordered array."""
    return _untile_major(np.asarray(a.T, dtype=dtype, order="C"), shape)


def _untile_major(a: np.ndarray, shape: tuple) -> np.ndarray:
    """Inverse of ``_tile_major``: [V, rows] -> [..., K] (a view unless K % rows)."""
    k = shape[-1]
    n = int(np.prod(shape[:-1], dtype=np.int64))
    flat = a.reshape(n, -1)
    if flat.shape[1] != k:
        flat = np.ascontiguousarray(flat[:, :k])
    return flat.reshape(shape)


# --- x -> codes (docs/overq-encoding.md "OverQ encoding": q, or u with precision) ---------------------

_BLOCK = 1 << 14  # float temporaries of 128 KiB stay in the cache between passes


def _quantize(x: np.ndarray, step: float, floor: float, cfg: ArrayConfig, sse: bool):
    """Codes of x (narrow unsigned, shape of x) and, if asked, sum((code - y)^2).

    y = (x - floor) / step (divided by step / 2^b with precision: the same number as
    y 2^b, since scaling by 2^b is exact); code = min(round(y), 2^CB - 1) half to
    even. Works block by block so that every pass reads the cache, not memory.
    """
    if x.dtype.kind not in "fiub":
        raise ValueError(f"activations must be numeric, got dtype {x.dtype}")
    flat = x.reshape(-1)
    codes = np.empty(flat.shape, dtype=_engine.code_dtype(cfg))
    cap = float((1 << code_bits(cfg)) - 1)
    denom = step / (1 << cfg.act_bits) if cfg.precision_enabled else step
    y = np.empty(min(_BLOCK, flat.size))
    r = np.empty_like(y)
    total = 0.0
    for start in range(0, flat.size, _BLOCK):
        xb = flat[start : start + _BLOCK]
        yb, rb = y[: xb.size], r[: xb.size]
        if floor:
            np.subtract(xb, floor, out=yb, dtype=np.float64)
            np.divide(yb, denom, out=yb)
        else:
            np.divide(xb, denom, out=yb, dtype=np.float64)
        if not (yb.min() > -np.inf and yb.max() < np.inf):
            _reject(x)
        np.clip(yb, 0.0, cap, out=rb)  # below the floor is at the floor
        np.rint(rb, out=rb)
        codes[start : start + xb.size] = rb
        if sse:
            np.subtract(rb, yb, out=rb)
            np.square(rb, out=rb)
            total += float(rb.sum())
    return codes.reshape(x.shape), total


def _reject(x: np.ndarray):
    if np.isnan(x).any():
        raise ValueError("activations contain NaN")
    raise ValueError("activations contain inf (or overflow when divided by step)")


def _scaled_at(x: np.ndarray, index: np.ndarray | slice, step: float, floor: float) -> np.ndarray:
    """(x - floor) / step at flat positions ``index``, with ``_quantize``'s arithmetic."""
    xs = x.reshape(-1)[index].astype(np.float64)
    if floor:
        xs -= floor
    return xs / step


def codes(x, step, cfg: ArrayConfig, floor=0.0):
    """The integer codes of x [..., K] that ``encode_codes`` (and ``a_code``) take.

    q = min(round((x - floor) / step), 2^(2b) - 1) for range-only or no OverQ; with
    ``precision`` the fine code u = min(round((x - floor) 2^b / step), 2^(3b) - 1).
    Round half to even. int64, numpy or torch like x.

    Like any quantizer, this clamps what lies outside its range: a value below the
    floor (GELU's float32 minimum is a hair below the analytic one; post-ReLU data
    may pick up tiny negatives from arithmetic) is at the floor, code 0, and the
    clamp's error counts in ``stats.mse``. NaN and inf raise.
    """
    arr, back, step, floor = _activation_input(x, step, floor, cfg)
    if arr.size == 0:
        return back(np.zeros(arr.shape, dtype=np.int64))
    c, _ = _quantize(arr, step, floor, cfg, sse=False)
    return back(c.astype(np.int64))


# --- the encoder on codes (sw_ref.overq_engine does the work) -------------------------


@dataclass
class _Encoding:
    """One encoder run on narrow codes: outputs shaped like the input, and the roles."""

    values: np.ndarray  # int64
    states: np.ndarray  # int64
    roles: np.ndarray | None  # uint8 role bytes (sw_ref.overq_engine); None if unused
    outliers: int
    handled: int
    precise: int
    clipped: np.ndarray  # flat positions (in the input) of the clipped outliers
    victims: np.ndarray  # flat positions (in the input) of the pruned slots

    @property
    def role_bytes(self) -> np.ndarray:
        """The roles, for a run that kept them (precision decoding needs them)."""
        if self.roles is None:
            raise ValueError("this encoder run kept no roles")
        return self.roles


def _run(c: np.ndarray, cfg: ArrayConfig, ports: bool = True) -> _Encoding:
    """Encode narrow codes [..., K] (validated) in tiles of ``cfg.rows``.

    ``ports=False``: no values and states (None), only what decoding needs.
    """
    rows, shape = cfg.rows, c.shape
    tiles = _tile_major(c, rows, _engine.pad_code(cfg))
    k = shape[-1]
    tail = (-(-k // rows), k % rows) if k % rows else None
    e = _engine.encode_tiles(tiles, cfg, ports, tail)
    clipped, victims = e.clipped, e.victims
    if k % rows:  # positions in the padded layout -> positions in the input
        width = tiles.size // max(1, c.size // k)
        clipped = clipped // width * k + clipped % width
        victims = victims // width * k + victims % width
    return _Encoding(
        values=None if e.values is None else _untile_major(e.values, shape),
        states=None if e.states is None else _untile_major(e.states, shape),
        roles=None if e.roles is None else _untile_major(e.roles, shape),
        outliers=e.outliers,
        handled=e.handled,
        precise=e.precise,
        clipped=clipped,
        victims=victims,
    )


def _stats(
    run: _Encoding, sse: float, slots: int, unit2: float, victim_sse: float = 0.0
) -> EncodeStats:
    seen = run.outliers
    return EncodeStats(
        outliers=seen,
        handled=run.handled,
        coverage=run.handled / seen if seen else 1.0,
        precise=run.precise,
        mse=sse / slots * unit2,
        victims=int(run.victims.size),
        victim_mse=victim_sse / slots * unit2,
    )


def _check_codes(c: np.ndarray, cfg: ArrayConfig) -> np.ndarray:
    """Validated codes in the engine's narrow unsigned dtype."""
    if c.dtype.kind == "f":
        if not np.all(np.isfinite(c)) or np.any(c != np.round(c)):
            raise ValueError("codes must be integers")
    elif c.dtype.kind not in "iub":
        raise ValueError(f"codes must be integers, got dtype {c.dtype}")
    dt = _engine.code_dtype(cfg)
    cap = (1 << code_bits(cfg)) - 1
    if c.dtype == dt and np.iinfo(dt).max == cap:
        return c  # every value of the dtype is a valid code
    if c.size and (c.min() < 0 or c.max() > cap):
        what = "u" if cfg.precision_enabled else "q"
        raise ValueError(
            f"codes ({what}) must be in 0..{cap} ({code_bits(cfg)} bits), "
            f"found {c.min()}..{c.max()}"
        )
    return c.astype(dt)


def _empty(shape, back, step, floor) -> Encoded:
    empty = np.zeros(shape, dtype=np.int64)
    stats = EncodeStats(0, 0, 1.0, 0, 0.0)
    return Encoded(back(empty), back(empty.copy()), stats, step, floor)


def encode_codes(codes, cfg: ArrayConfig) -> Encoded:
    """OverQ-encode integer codes [..., K] (numpy or torch): what the hardware encoder does.

    The codes are q (2b bits) for range-only or no OverQ, or the fine code u (3b bits)
    with ``precision``; q = round(u / 2^b) half to even (see ``codes``). Tiles as in
    ``encode``. ``stats.mse`` is the error the encoder adds to the codes, in units of
    step^2 (``Encoded.step`` is 1.0): decoded - q, or decoded - u / 2^b. Any integer
    dtype is accepted; ``sw_ref.overq_engine.code_dtype(cfg)`` (uint8 for A4 range)
    skips a conversion.
    """
    checks.array_config(cfg)
    arr, back = _to_numpy(codes)
    if arr.ndim == 0:
        raise ValueError("codes need at least one axis (the slots of a vector)")
    c = _check_codes(arr, cfg)
    if c.size == 0:
        return _empty(c.shape, back, 1.0, 0.0)
    run = _run(c, cfg)
    if cfg.precision_enabled:
        target = c.astype(np.float64) / float(1 << cfg.act_bits)
        sse = _sum_sq(_engine.decoded_units(c, run.role_bytes, cfg) - target)
        pruned = target.reshape(-1)[run.victims]
    else:
        sse = _sum_sq(c.reshape(-1)[run.clipped].astype(np.float64) - cfg.act_max)
        pruned = c.reshape(-1)[run.victims].astype(np.float64)
        sse += _sum_sq(pruned)
    stats = _stats(run, sse, c.size, 1.0, _sum_sq(pruned))
    return Encoded(back(run.values), back(run.states), stats, 1.0)


def _encode_run(arr: np.ndarray, step: float, floor: float, cfg: ArrayConfig, ports: bool):
    """Codes, encoder run, the squared error of the decoded values and its part at the
    pruned slots (both in units of x^2 / step^2)."""
    fine = cfg.precision_enabled
    c, sse = _quantize(arr, step, floor, cfg, sse=not fine)
    run = _run(c, cfg, ports)
    units = None
    pruned = _scaled_at(arr, run.victims, step, floor)  # a victim decodes to 0
    if fine:  # every slot outside a pair loses its fraction bits: a full pass
        units = _engine.decoded_units(c, run.role_bytes, cfg)
        y = _scaled_at(arr, slice(None), step, floor)
        sse = _sum_sq(units.reshape(-1) - y)
    else:  # only the clipped outliers (and the victims) differ from their codes
        index = run.clipped
        y = _scaled_at(arr, index, step, floor)
        code = c.reshape(-1)[index].astype(np.float64)
        sse += _sum_sq(cfg.act_max - y) - _sum_sq(code - y)
        if run.victims.size:
            code = c.reshape(-1)[run.victims].astype(np.float64)
            sse += _sum_sq(pruned) - _sum_sq(code - pruned)
    return c, run, units, sse, _sum_sq(pruned)


def encode(x, step, cfg: ArrayConfig, floor=0.0) -> Encoded:
    """OverQ-encode activations x [..., K] (numpy or torch) on the grid ``step``.

    Exactly ``encode_codes(codes(x, step, cfg, floor), cfg)``, plus ``stats.mse``
    against x - floor in the units of x. The floor is 0 post-ReLU, or a zero point
    z < 0 for activations bounded below (e.g. GELU's minimum); the slots at the floor
    are the zeros OverQ overwrites, and values below it are at it (``codes``). K may exceed ``cfg.rows``: the last
    axis is cut into tiles of ``rows`` slots, each encoded alone. A last partial tile
    is encoded as a shorter vector: a range overwrite never reaches past its end and
    its last slot's outlier is clipped (like the zero-padded rows the array sees,
    which the encoder never uses).
    """
    arr, back, step, floor = _activation_input(x, step, floor, cfg)
    if arr.size == 0:
        return _empty(arr.shape, back, step, floor)
    _, run, _, sse, vsse = _encode_run(arr, step, floor, cfg, ports=True)
    stats = _stats(run, sse, arr.size, step * step, vsse)
    return Encoded(back(run.values), back(run.states), stats, step, floor)


def encode_stats(x, step, cfg: ArrayConfig, floor=0.0) -> EncodeStats:
    """``encode(x, step, cfg, floor).stats`` without building the ports (for coverage)."""
    arr, _, step, floor = _activation_input(x, step, floor, cfg)
    if arr.size == 0:
        return EncodeStats(0, 0, 1.0, 0, 0.0)
    _, run, _, sse, vsse = _encode_run(arr, step, floor, cfg, ports=False)
    return _stats(run, sse, arr.size, step * step, vsse)


def reconstruct(x, step, cfg: ArrayConfig, floor=0.0, dtype=np.float64):
    """``decode(encode(x))`` without building the ports: (activations, stats).

    What the array multiplies, back in the units of x and in x's own slots: the
    quantized value of every slot, the wide value of each handled outlier, the fine
    value of each precision pair. Equal to ``decode`` of ``encode`` bit for bit (the
    same float64 arithmetic, then ``dtype``), several times faster: the evaluations
    fake-quantize millions of slots per image and never look at the values and
    states themselves.
    """
    arr, back, step, floor = _activation_input(x, step, floor, cfg)
    dtype = _float_dtype(dtype)
    if arr.size == 0:
        return back(np.zeros(arr.shape, dtype)), EncodeStats(0, 0, 1.0, 0, 0.0)
    c, run, units, sse, vsse = _encode_run(arr, step, floor, cfg, ports=False)
    stats = _stats(run, sse, arr.size, step * step, vsse)
    if units is not None:  # precision: fine units per slot
        out = units * step
        if floor:
            out += floor
        return back(out.astype(dtype, copy=False)), stats
    # every slot decodes to its own code, except the clipped outliers (to M): a table
    # of the code's real value, in decode's arithmetic (v * step + floor, float64)
    table = np.arange((1 << code_bits(cfg)), dtype=np.float64) * step
    if floor:
        table += floor
    table = table.astype(dtype)
    out = table[c]
    out.reshape(-1)[run.clipped] = table[cfg.act_max]
    out.reshape(-1)[run.victims] = table[0]  # a pruned victim decodes to the floor
    return back(out), stats


def _float_dtype(dtype) -> np.dtype:
    """A numpy floating dtype from a numpy or torch dtype (``torch.float32``), or a
    TypeError that names what was given."""
    torch = sys.modules.get("torch")  # a torch dtype implies torch is imported
    if torch is not None and isinstance(dtype, torch.dtype):
        as_numpy = {
            torch.float16: np.float16,
            torch.float32: np.float32,
            torch.float64: np.float64,
        }.get(dtype)
        if as_numpy is None:
            raise TypeError(f"dtype must be torch.float16, float32 or float64, got {dtype}")
        return np.dtype(as_numpy)
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"dtype must be a floating-point numpy or torch dtype, got {dtype!r}"
        ) from None
    if dt.kind != "f":
        raise TypeError(f"dtype must be a floating-point dtype, got {dt}")
    return dt


def _sum_sq(a: np.ndarray) -> float:
    """sum(a^2) with numpy's own loop (a BLAS dot may spin up threads)."""
    return float(np.square(a).sum())


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


def decode(values, states, step, cfg: ArrayConfig, floor=0.0):
    """Dequantized activations (real units: floor + slot value * step) in their slots.

    Shifted values go back one slot left, a RANGE pair restores the outlier's wide
    value, a PRECISION pair the fine value (fractions of step); the slot a pair or a
    cascade consumed decodes to the floor (0 by default), as it was a zero. Pass
    step=1 (and floor=0) for units of step.
    """
    step, floor = _check_step(step), _check_floor(floor)
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
    if floor:
        out += floor
    return back(_untile(out, v.shape, np.float64))


def golden(values, states, weights, cfg: ArrayConfig):
    """The array's exact output y [..., C], docs/overq-encoding.md "The array".

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


def golden_real(values, states, weights, cfg: ArrayConfig, step, weight_step, floor=0.0):
    """The layer's output in real units [..., C] (float64): ``golden`` scaled back.

    out[c] = unit * y[c] + floor * weight_step * sum_k W[k][c], with y = ``golden(...)``
    and unit = step * weight_step, divided by 2^b when ``precision`` is enabled (y
    counts in steps of the fine grid then). ``weight_step`` is the real value of one
    integer weight unit: a scalar, or one per column [C] (per-channel weights). The
    second term is the zero point's correction: the array sums the codes of x - floor,
    so the floor's share, floor * (column sum of W), is added back; it depends only on
    the weights, so an accelerator folds it into the bias of the layer.
    """
    step, floor = _check_step(step), _check_floor(floor)
    w_in, _ = _to_numpy(weights)
    v_in, back = _to_numpy(values)
    y = np.asarray(_to_numpy(golden(values, states, weights, cfg))[0], dtype=np.float64)
    ws = _to_numpy(weight_step)[0]
    checks.positive_values(ws, "weight_step")
    ws = np.asarray(ws, dtype=np.float64)
    if ws.ndim > 1 or (ws.ndim == 1 and ws.shape[0] != y.shape[-1]):
        raise ValueError(
            f"weight_step must be a scalar or one per column ({y.shape[-1]}), got shape {ws.shape}"
        )
    unit = step * ws
    if cfg.precision_enabled:
        unit = unit / float(1 << cfg.act_bits)
    out = y * unit
    if floor:
        colsum = _int_array(w_in, "weights").sum(axis=0).astype(np.float64)
        out += floor * ws * colsum
    return back(out)


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


# --- the rule one slot at a time (for the tests) --------------------------------------


def encode_reference(x, step, cfg: ArrayConfig, floor=0.0) -> tuple[list[int], list[int]]:
    """docs/overq-encoding.md "OverQ encoding" for one 1-D vector of activations, one slot at a time.

    The codes are computed here with Python floats (independently of ``codes``), then
    encoded by ``encode_codes_reference``. Returns (values, states) as lists.
    """
    s, z = _check_step(step), _check_floor(floor)
    b = checks.array_config(cfg).act_bits
    checks.real_data(np.asarray(x), "x")
    scale = (1 << b) if cfg.precision_enabled else 1
    cap = (1 << code_bits(cfg)) - 1
    c = [min(int(round((float(e) - z) * scale / s)), cap) for e in np.ravel(x)]
    return encode_codes_reference(c, cfg)


def encode_codes_reference(codes, cfg: ArrayConfig) -> tuple[list[int], list[int]]:
    """docs/overq-encoding.md "OverQ encoding" on the integer codes of one 1-D vector, slot by slot (slow).

    Vectors longer than ``cfg.rows`` are cut into tiles; a last partial tile is a
    shorter vector. Returns (values, states) as lists.
    """
    checks.array_config(cfg)
    cs = checks.integer_data(np.asarray(codes), "codes").ravel().tolist()
    values: list[int] = []
    states: list[int] = []
    for start in range(0, len(cs), cfg.rows):
        v, f = _reference_tile(cs[start : start + cfg.rows], cfg)
        values += v
        states += f
    return values, states


def _reference_tile(c: list[int], cfg: ArrayConfig):
    b = cfg.act_bits
    big, wide = (1 << b) - 1, (1 << (2 * b)) - 1
    n = len(c)
    if cfg.precision_enabled:  # q = round(u / 2^b), half to even (exact in floats)
        q = [int(round(u / (1 << b))) for u in c]
    else:
        q = list(c)
    v = [0] * n
    f = [STATE_NORMAL] * n
    assert cfg.cascade is not None  # ArrayConfig resolves the default
    reach = cfg.cascade
    k = 0
    while k < n:
        if q[k] > big and cfg.range_enabled:
            j = next((j for j in range(k + 1, min(k + reach, n - 1) + 1) if q[j] == 0), None)
            if j is not None:
                for m in range(j - 1, k, -1):  # q_{k+1}..q_{j-1} move one slot right
                    v[m + 1], f[m + 1] = min(q[m], big), STATE_SHIFTED
                wq = min(q[k], wide)
                v[k], f[k] = wq % (1 << b), STATE_NORMAL
                v[k + 1], f[k + 1] = wq >> b, STATE_RANGE
                k = j + 1
                continue
            wq = min(q[k], wide)
            if cfg.victim_enabled and k + 1 <= n - 1 and q[k + 1] < wq - big:
                # no zero in reach: prune the neighbour when that costs less than the clip
                v[k], f[k] = wq % (1 << b), STATE_NORMAL
                v[k + 1], f[k + 1] = wq >> b, STATE_RANGE
                k += 2
                continue
            v[k], f[k] = big, STATE_NORMAL
            k += 1
            continue
        if 0 < q[k] <= big and cfg.precision_enabled and k + 1 < n and q[k + 1] == 0:
            p = min(c[k], wide)
            v[k], f[k] = p >> b, STATE_NORMAL
            v[k + 1], f[k + 1] = p % (1 << b), STATE_PRECISION
            k += 2
            continue
        v[k], f[k] = min(q[k], big), STATE_NORMAL
        k += 1
    return v, f


# The OverQ-aware channel order lives in its own module; re-exported here so that
# ``sw_ref.overq.channel_order`` is the one entry point (it imports overq lazily).

__all__.append("channel_order")
from sw_ref.channel_order import channel_order  # noqa: E402, F401, I001  (the re-export)
