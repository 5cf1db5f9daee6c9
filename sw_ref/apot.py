"""APoT (additive powers-of-two) weights: level sets, codes and a nearest-level quantizer.

A weight code is ``weight_bits`` wide: a sign bit (MSB), then term 0, term 1, ...,
term n-1 in the lowest bits, with the widths ``cfg.apot_term_widths``. Term i with code
t > 0 contributes ``2**cfg.apot_exponents[i][t-1]``, code 0 contributes nothing. The
decoded weight is the signed sum, an integer: this is exactly what the PE's shift-and-add
multiplier computes, so ``decode`` feeds ``sw_ref.overq.golden`` directly.

The exponent tables come from ``hw.params`` (paper formula for an even split, the
official code's tables for 3 and 5 magnitude bits); nothing here repeats them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from hw.params import ArrayConfig
from sw_ref import checks
from sw_ref.arrays import to_numpy as _to_numpy

__all__ = ["ApotWeights", "config_for", "levels", "quantize", "encode", "decode"]


def config_for(cfg_or_bits, term_bits: int = 2) -> ArrayConfig:
    """An APoT ArrayConfig from a config or from ``weight_bits`` (sign bit included).

    ``bits`` counts the whole code like ``ArrayConfig.weight_bits``; the official
    code's ``build_power_value(B)`` takes the magnitude bits B = bits - 1.
    """
    if isinstance(cfg_or_bits, ArrayConfig):
        if cfg_or_bits.weight_format != "apot":
            raise ValueError(f"APoT needs weight_format='apot', got {cfg_or_bits.weight_format!r}")
        return cfg_or_bits
    if isinstance(cfg_or_bits, bool) or not isinstance(cfg_or_bits, (int, np.integer)):
        raise TypeError(f"cfg must be an ArrayConfig or weight_bits, got {cfg_or_bits!r}")
    return ArrayConfig(weight_bits=int(cfg_or_bits), weight_format="apot", apot_term_bits=term_bits)


def _tables(cfg: ArrayConfig):
    """(sorted magnitudes, their magnitude codes, per-term value tables, widths)."""
    return _tables_for(cfg.apot_exponents, cfg.apot_term_widths)


@lru_cache(maxsize=None)
def _tables_for(exps: tuple, widths: tuple):
    # term_values[i][t]: what term i contributes for code t (index 0 -> 0).
    term_values = [np.array([0] + [1 << e for e in table], dtype=np.int64) for table in exps]
    mags = np.zeros(1, dtype=np.int64)
    codes = np.zeros(1, dtype=np.int64)
    for values, width in zip(term_values, widths):
        t = np.arange(len(values), dtype=np.int64)
        mags = (mags[:, None] + values[None, :]).ravel()
        codes = ((codes[:, None] << width) | t[None, :]).ravel()
    order = np.argsort(mags, kind="stable")
    mags, codes = mags[order], codes[order]
    if np.any(np.diff(mags) == 0):  # every table in params.py has distinct sums
        raise ValueError(f"APoT tables {exps} give two codes for one magnitude")
    return mags, codes, term_values, widths


def levels(cfg_or_bits, term_bits: int = 2, *, normalized: bool = False) -> np.ndarray:
    """Sorted non-negative magnitudes of the level set.

    Integer units by default (what the hardware multiplies by); ``normalized=True``
    divides by the largest level, giving the paper's set with gamma = 1 (and the
    official ``build_power_value`` output, sorted).
    """
    mags = _tables(config_for(cfg_or_bits, term_bits))[0]
    if normalized:
        return mags / mags[-1]
    return mags.copy()


def encode(int_values, cfg: ArrayConfig):
    """Weight codes for integer weight values, laid out as the hardware reads them.

    Raises ValueError for a value whose magnitude is not a level. Zero encodes as
    code 0 (positive zero).
    """
    cfg = config_for(cfg)
    v, back = _to_numpy(int_values)
    v = checks.integer_data(v, "int_values")
    mags, codes, _, _ = _tables(cfg)
    mag = np.abs(v)
    idx = np.clip(np.searchsorted(mags, mag), 0, len(mags) - 1)
    bad = mags[idx] != mag
    if np.any(bad):
        sample = np.unique(v[bad])[:5].tolist()
        raise ValueError(
            f"values {sample} are not APoT levels of {cfg.weight_bits}-bit weights "
            f"(magnitudes {mags.tolist()})"
        )
    sign = (v < 0).astype(np.int64) << (cfg.weight_bits - 1)
    return back(sign | codes[idx])


def decode(codes, cfg: ArrayConfig):
    """Integer weight values of codes (the PE's shift-and-add result, sign applied)."""
    cfg = config_for(cfg)
    c, back = _to_numpy(codes)
    c = checks.integer_data(c, "codes")
    if np.any((c < 0) | (c >= (1 << cfg.weight_bits))):
        raise ValueError(f"codes must be APoT codes in 0..{(1 << cfg.weight_bits) - 1}")
    _, _, term_values, widths = _tables(cfg)
    total = np.zeros(c.shape, dtype=np.int64)
    shift = 0
    for values, width in zip(reversed(term_values), reversed(widths)):
        t = (c >> shift) & ((1 << width) - 1)
        unused = t >= len(values)  # a table shorter than its field (none in params.py)
        if np.any(unused):
            raise ValueError(f"APoT codes {np.unique(c[unused])[:5].tolist()} are unused")
        total += values[t]
        shift += width
    sign = (c >> (cfg.weight_bits - 1)) & 1
    return back(np.where(sign == 1, -total, total))


@dataclass(frozen=True)
class ApotWeights:
    """A quantized weight tensor.

    ``weights`` = ``values * scale`` (same kind as the input), ``values`` the integer
    weights the array multiplies by, ``codes`` what is loaded on ``w_data``, and
    ``scale`` = alpha / largest level, the real value of one integer unit.
    """

    weights: object
    values: object
    codes: object
    scale: float


def quantize(w, alpha: float, cfg) -> ApotWeights:
    """Nearest-level APoT quantizer with clipping threshold alpha (official code's rule).

    w / alpha is clipped to [-1, 1] and its magnitude moved to the nearest normalized
    level; an exact tie goes to the smaller magnitude. ``weights`` keeps w's float
    dtype (so a float32 layer stays float32); the rest is exact.
    """
    cfg = config_for(cfg)
    alpha = checks.positive(alpha, "alpha")
    a, back = _to_numpy(w)
    out_dtype = getattr(w, "dtype", a.dtype)
    a = checks.real_data(a, "w").astype(np.float64)
    mags, codes, _, _ = _tables(cfg)
    top = int(mags[-1])
    target = np.clip(np.abs(a) / alpha, 0.0, 1.0) * top
    mids = (mags[:-1] + mags[1:]) / 2.0
    idx = np.searchsorted(mids, target, side="left")  # target == mid -> lower level
    values = np.where(a < 0, -mags[idx], mags[idx])
    sign = ((a < 0) & (mags[idx] > 0)).astype(np.int64) << (cfg.weight_bits - 1)
    scale = alpha / top
    weights = back(values * scale)
    if getattr(out_dtype, "is_floating_point", False):  # torch
        weights = weights.to(out_dtype)
    elif isinstance(out_dtype, np.dtype) and out_dtype.kind == "f":
        weights = weights.astype(out_dtype)
    return ApotWeights(
        weights=weights,
        values=back(values.astype(np.int64)),
        codes=back(sign | codes[idx]),
        scale=scale,
    )
