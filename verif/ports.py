"""Bit layout of ``top``'s ports (docs/top-module.md "The generated top module") and of the weight codes (docs/overq-encoding.md "Weights").

Pure functions between numpy arrays of numbers and the Python integers that are
written to / read from the ports; no simulator here, so they are unit-tested alone.
"""

from __future__ import annotations

import numpy as np

from hw.params import ArrayConfig
from sw_ref import apot

__all__ = [
    "pack_fields",
    "unpack_signed",
    "weight_codes",
    "weight_values",
]


def pack_fields(fields, width: int) -> list[int]:
    """Pack the last axis of ``fields`` [N, K] into N integers, field k at [k*width +: width].

    Values must already fit in ``width`` bits (non-negative); the result is exact for
    any total width (Python integers).
    """
    arr = np.asarray(fields, dtype=np.int64)
    if arr.ndim != 2:
        raise ValueError(f"expected [N, K] fields, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= (1 << width)):
        raise ValueError(f"field values must be in 0..{(1 << width) - 1}")
    words = np.zeros(arr.shape[0], dtype=object)
    for k in range(arr.shape[1]):
        words += arr[:, k].astype(object) << (k * width)
    return [int(w) for w in words]


def unpack_signed(word: int, count: int, width: int) -> np.ndarray:
    """Split ``word`` into ``count`` two's-complement fields of ``width`` bits, field 0 lowest."""
    mask = (1 << width) - 1
    half = 1 << (width - 1)
    out = np.empty(count, dtype=np.int64)
    for i in range(count):
        v = (word >> (i * width)) & mask
        out[i] = v - (1 << width) if v >= half else v
    return out


def weight_codes(values, cfg: ArrayConfig) -> np.ndarray:
    """The ``w_data`` codes of integer weight values (two's complement or APoT)."""
    values = np.asarray(values, dtype=np.int64)
    if values.size and (values.min() < cfg.weight_min or values.max() > cfg.weight_max):
        raise ValueError(
            f"weights must be in {cfg.weight_min}..{cfg.weight_max} for {cfg.weight_format}"
        )
    if cfg.weight_format == "apot":
        return np.asarray(apot.encode(values, cfg), dtype=np.int64)
    return values & ((1 << cfg.weight_bits) - 1)


def weight_values(codes, cfg: ArrayConfig) -> np.ndarray:
    """The integer weights that ``w_data`` codes stand for (what the PE multiplies by)."""
    codes = np.asarray(codes, dtype=np.int64)
    if cfg.weight_format == "apot":
        return np.asarray(apot.decode(codes, cfg), dtype=np.int64)
    half = 1 << (cfg.weight_bits - 1)
    return np.where(codes >= half, codes - (1 << cfg.weight_bits), codes)
