"""The accumulator bound, worked out a second time for the overflow tests.

``hw.params.ArrayConfig.min_acc_bits`` sizes both the RTL and the checks that wrap the
golden output to the register width, so a mistake there is invisible to a test that
compares the two. The functions here recompute the extreme outputs from the interface's
scale table, written out below, and the weight extremes from the decoded codes
(``sw_ref.apot.decode`` for APoT, the two's-complement range for int), never from
``cfg.state_shifts``, ``cfg.output_range``, ``cfg.min_acc_bits`` or ``cfg.acc_width``.
A test drives the all-maximum / all-minimum vector, compares the output with these
numbers exactly (no wrapping), and so fails if the accumulator is one bit too narrow.
"""

from __future__ import annotations

import numpy as np

from hw.params import STATE_NORMAL, STATE_RANGE

__all__ = [
    "scale_table",
    "weight_extremes",
    "extreme_outputs",
    "signed_width",
    "extreme_vector",
    "extreme_weight_code",
]


def scale_table(cfg) -> dict[int, int]:
    """The factor each state multiplies its product by (interface: state table).

    NORMAL and SHIFTED: 2^b with precision enabled, else 1; RANGE: 2^b times the
    NORMAL factor; PRECISION: 1. Without OverQ every slot is NORMAL.
    """
    b = cfg.act_bits
    normal = 2**b if "precision" in cfg.overq else 1
    return {0: normal, 1: normal, 2: normal * 2**b, 3: 1}


def _all_weight_values(cfg) -> list[int]:
    if cfg.weight_format == "apot":
        from sw_ref.apot import decode

        codes = np.arange(2**cfg.weight_bits)
        return [int(v) for v in np.asarray(decode(codes, cfg))]
    half = 2 ** (cfg.weight_bits - 1)
    return list(range(-half, half))


def weight_extremes(cfg) -> tuple[int, int]:
    """(most negative, most positive) weight value over every code."""
    values = _all_weight_values(cfg)
    return min(values), max(values)


def extreme_weight_code(cfg, which: str) -> int:
    """A weight code whose value is the most negative (``min``) or positive (``max``)."""
    values = _all_weight_values(cfg)
    target = min(values) if which == "min" else max(values)
    if cfg.weight_format == "apot":
        return values.index(target)  # codes 0..2^wb-1 in order
    return target & (2**cfg.weight_bits - 1)


def extreme_outputs(cfg) -> tuple[int, int]:
    """(lowest, highest) y any port values can give: every slot at 2^b - 1, every row
    but row 0 at the largest scale (row 0 has no row above and is always NORMAL)."""
    m = 2**cfg.act_bits - 1
    scales = scale_table(cfg)
    row0 = scales[STATE_NORMAL]
    others = max(scales.values()) if cfg.overq else scales[STATE_NORMAL]
    total = m * (row0 + (cfg.rows - 1) * others)
    wmin, wmax = weight_extremes(cfg)
    return total * wmin, total * wmax


def signed_width(lo: int, hi: int) -> int:
    """Smallest n with -2^(n-1) <= lo and hi <= 2^(n-1) - 1, from bit lengths."""
    need_hi = hi.bit_length() + 1 if hi > 0 else 1
    need_lo = (-lo - 1).bit_length() + 1 if lo < 0 else 1
    return max(need_hi, need_lo)


def extreme_vector(cfg) -> tuple[list[int], list[int]]:
    """(values, states) of the vector that reaches the bound: all 2^b - 1, RANGE in
    every row (row 0 ignores it) when OverQ is on."""
    r = cfg.rows
    values = [2**cfg.act_bits - 1] * r
    if not cfg.overq:
        return values, [STATE_NORMAL] * r
    return values, [STATE_RANGE] * r
