"""Bit-exact model of one layer-engine command (docs/engine.md).

One command computes, for activation codes X [M, K] (the encoder's CB-bit codes) and
weights W [K, N]:

    acc[m, n] = sum over K tiles t of golden(encode_codes(X[m, t]), W[t, n])

with a short last tile zero-padded to R slots (codes 0, weight rows 0), and then,
unless the raw accumulators are asked for,

    y[m, n] = clamp(floor(((acc + bias[n]) * mult[n] + r[n]) / 2^shift[n]), 0, code_max)

with r = 2^(shift - 1) for shift >= 1, else 0 (round half up). Every number is an
exact integer: the widths the hardware uses (``EngineConfig``) hold every value.
"""

from __future__ import annotations

import numpy as np

from hw.params import (
    ENGINE_BIAS_BITS,
    ENGINE_MULT_BITS,
    ENGINE_SHIFT_MAX,
    EngineConfig,
)
from sw_ref import overq
from sw_ref.arrays import to_numpy

__all__ = ["run", "accumulate", "requantize", "weight_values", "check_command"]


def _ints(a, name: str) -> np.ndarray:
    arr, _ = to_numpy(a)
    arr = np.asarray(arr)
    if arr.dtype.kind not in "iub":
        raise ValueError(f"{name} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def _in_range(a: np.ndarray, lo: int, hi: int, name: str) -> None:
    bad = (a < lo) | (a > hi)
    if bad.any():
        raise ValueError(f"{name} must be in {lo}..{hi}, found {int(a[bad].flat[0])}")


def weight_values(w_codes, cfg: EngineConfig) -> np.ndarray:
    """Integer weight values [K, N]: ``int`` weights are the signed values themselves,
    ``apot`` weights are codes, decoded as the PEs do."""
    w = _ints(w_codes, "w_codes")
    a = cfg.array
    if a.weight_format == "apot":
        from sw_ref import apot

        return np.asarray(apot.decode(w, a), dtype=np.int64)
    _in_range(w, a.weight_min, a.weight_max, "w_codes")
    return w


def check_command(m: int, k: int, n: int, cfg: EngineConfig) -> None:
    """The engine's limits on one command, as the hardware checks them (one line)."""
    for name, value, limit in (("M", m, cfg.max_m), ("K", k, cfg.max_k), ("N", n, cfg.max_n)):
        if not 1 <= value <= limit:
            raise ValueError(f"{name}={value} is outside the engine's 1..{limit}")


def accumulate(x_codes, w_codes, cfg: EngineConfig) -> np.ndarray:
    """acc [M, N] (int64): the K tiles of X W summed as the accumulator memory does."""
    if not isinstance(cfg, EngineConfig):
        raise TypeError(f"cfg must be an EngineConfig, got {cfg!r}")
    x = _ints(x_codes, "x_codes")
    w = weight_values(w_codes, cfg)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"x_codes must be [M, K] and w_codes [K, N]; got {x.shape}, {w.shape}")
    m, k = x.shape
    n = w.shape[1]
    check_command(m, k, n, cfg)
    a = cfg.array
    _in_range(x, 0, (1 << a.code_bits) - 1, "x_codes")
    padded = -(-k // a.rows) * a.rows
    xp = np.zeros((m, padded), dtype=np.int64)
    xp[:, :k] = x
    wp = np.zeros((padded, n), dtype=np.int64)
    wp[:k] = w
    enc = overq.encode_codes(xp, a)
    return np.asarray(overq.golden(enc.values, enc.states, wp, a), dtype=np.int64)


def requantize(acc, bias, mult, shift, code_max: int, cfg: EngineConfig) -> np.ndarray:
    """Codes [M, N] from accumulators [M, N] and per-column bias, mult, shift [N]."""
    acc = _ints(acc, "acc")
    n = acc.shape[-1]
    params = {}
    for name, value, lo, hi in (
        ("bias", bias, -(1 << (ENGINE_BIAS_BITS - 1)), (1 << (ENGINE_BIAS_BITS - 1)) - 1),
        ("mult", mult, 0, (1 << ENGINE_MULT_BITS) - 1),
        ("shift", shift, 0, ENGINE_SHIFT_MAX),
    ):
        arr = _ints(value, name)
        if arr.shape != (n,):
            raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
        _in_range(arr, lo, hi, name)
        params[name] = arr
    code_limit = (1 << cfg.array.code_bits) - 1
    if isinstance(code_max, bool) or not isinstance(code_max, (int, np.integer)):
        raise ValueError(f"code_max must be an integer, got {code_max!r}")
    if not 0 <= code_max <= code_limit:
        raise ValueError(f"code_max must be in 0..{code_limit}, got {code_max}")
    s = params["shift"]
    # |acc + bias| < 2^33 and mult < 2^16: the product and the rounding fit in int64.
    rounding = np.where(s >= 1, np.left_shift(1, np.maximum(s - 1, 0)), 0)
    scaled = (acc + params["bias"]) * params["mult"] + rounding
    return np.clip(scaled >> s, 0, int(code_max))


def run(x_codes, w_codes, bias, mult, shift, code_max, cfg: EngineConfig) -> np.ndarray:
    """One command: codes [M, N], or the raw accumulators if ``bias`` is None."""
    acc = accumulate(x_codes, w_codes, cfg)
    if bias is None:
        if mult is not None or shift is not None or code_max is not None:
            raise ValueError("raw output (bias=None) takes no mult, shift or code_max")
        return acc
    return requantize(acc, bias, mult, shift, code_max, cfg)
