"""OliVe's outlier-victim pair (OVP) quantization as a fake quantizer (the baseline).

OliVe (Guo et al., ISCA 2023) keeps every outlier by sacrificing the value next to it:
the vector is cut into aligned pairs (slots 2i, 2i+1); a pair with an outlier stores
the outlier in a wider data type in its own slot and an *identifier* in the other
slot, whose value (the *victim*) is lost. Normal values use the plain b-bit grid.
This module reproduces the numbers such an encoder gives back (accuracy only, no
hardware), for unsigned activations (post-ReLU, or x - floor), on the last axis.

The details, each from the paper or from its public code (clevercool/ANT-Quantization,
``olive_quantization/antquant/quant_modules.py``, read, not copied):

* normal values: unsigned b-bit integers 0 .. 2^b - 1 (paper); the code scales them
  so that the threshold between normal values and outliers sits at 32 (the normal
  grid is 32 k / 2^b, its top 32 (2^b - 1) / 2^b), and a value is an outlier when it
  rounds onto the outlier grid, i.e. beyond 32 (code);
* outliers: "abfloat", a float with a biased exponent (paper); for b-bit slots the
  code uses 2 exponent bits, b - 2 mantissa bits and bias 5: 2^e (1 + m / 2^(b-2)) for
  e = 5 .. 8, without 2^5 itself, i.e. 40 .. 448 at b = 4 (code);
* rounding: to the nearest level of the union of both grids, so a value between the
  top normal level and the first outlier level goes to whichever is nearer (code);
* pairing: aligned pairs; if the first slot of a pair is an outlier the second is
  its victim (even if it is an outlier too: it is then lost), else an outlier in the
  second slot takes the first as its victim; a victim decodes to exactly 0 (code;
  the paper's figure shows one outlier per pair). The code pairs the flattened tensor
  in memory order (for a conv input NCHW, neighbours along W); here the pairs run
  along the reduction axis, as a GEMM accelerator reads them (the paper's layout);
  a vector of odd length has a last slot without partner: its outlier is clipped;
* the identifier costs no normal code for unsigned data in the code (all 2^b codes
  stay normal levels); the paper reserves one code of the signed type (-0) for it;
  here, as in the code, no level is given up;
* the clipping threshold alpha (the real value of the top normal level, per tensor for
  activations): searched from alpha = max|mean +- 3 std| times 0.75, 0.77, .. 2.49 (the
  repository's scripts: --a_low=75 --a_up=250, step 2 %), keeping the lowest MSE of
  the whole OVP result on calibration data (code).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sw_ref.arrays import to_numpy

__all__ = ["OliveStats", "levels", "fake_quantize", "calibrate", "THRESHOLD"]

THRESHOLD = 32.0  # the code's normal / outlier boundary, in grid units
EXPONENT_BITS, EXPONENT_BASE = 2, 5  # abfloat of the code, unsigned b-bit slots
SEARCH = (75, 250, 2)  # alpha candidates: percent of the base, range(75, 250, 2)


@dataclass(frozen=True)
class OliveStats:
    """Per call: outliers (values on the outlier grid), placed (kept in a pair),
    victims (values lost to an outlier, outliers among them), mse (units of x^2)."""

    outliers: int
    placed: int
    victims: int
    mse: float

    @property
    def coverage(self) -> float:
        return self.placed / self.outliers if self.outliers else 1.0


def levels(bits: int) -> tuple[np.ndarray, np.ndarray]:
    """(normal levels, outlier levels) in grid units, for unsigned ``bits``-bit slots."""
    if not 3 <= bits <= 8:
        raise ValueError(f"OliVe's unsigned types need 3..8 bits, got {bits}")
    normal = np.arange(1 << bits, dtype=np.float64) * (THRESHOLD / (1 << bits))
    mant = bits - EXPONENT_BITS
    outlier = [
        2.0**e * (1 + m / (1 << mant))
        for e in range(EXPONENT_BASE, EXPONENT_BASE + (1 << EXPONENT_BITS))
        for m in range(1 << mant)
    ][1:]  # 2^5 = 32 itself is not an outlier level
    return normal, np.asarray(outlier)


def _nearest(u: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """Each value of u rounded to the nearest level of the sorted grid (ties: lower)."""
    mid = (grid[1:] + grid[:-1]) / 2
    return grid[np.searchsorted(mid, u, side="left")]


def fake_quantize(x, alpha: float, bits: int = 4):
    """OVP-quantize non-negative x [..., K] with top normal level ``alpha``: (x', stats).

    x' has x's shape and type (numpy or torch); pairs run along the last axis.
    """
    arr, back = to_numpy(x)
    a = np.asarray(arr, dtype=np.float64)
    if a.ndim == 0 or (a.size and a.min() < 0):
        raise ValueError("x must be an array of non-negative values (unsigned data)")
    if not np.isfinite(alpha) or alpha <= 0:
        raise ValueError(f"alpha must be positive, got {alpha}")
    normal, outlier = levels(bits)
    scale = alpha / normal[-1]
    grid = np.concatenate([normal, outlier])
    q = _nearest(a / scale, grid)
    out = q > THRESHOLD
    k = a.shape[-1]
    pairs = k // 2
    first = out[..., 0 : 2 * pairs : 2]
    second = out[..., 1 : 2 * pairs : 2]
    victim = np.zeros(a.shape, dtype=bool)
    victim[..., 1 : 2 * pairs : 2] = first
    victim[..., 0 : 2 * pairs : 2] = second & ~first
    q[victim] = 0.0
    if k % 2:  # the unpaired last slot: no room for an outlier
        last = q[..., -1]
        q[..., -1] = np.minimum(last, normal[-1])
    y = q * scale
    seen = int(out.sum())
    lost_outliers = int((victim & out).sum()) + (int(out[..., -1].sum()) if k % 2 else 0)
    stats = OliveStats(
        outliers=seen,
        placed=seen - lost_outliers,
        victims=int(victim.sum()),
        mse=float(np.mean((y - a) ** 2)) if a.size else 0.0,
    )
    return back(y.astype(arr.dtype if arr.dtype.kind == "f" else np.float64)), stats


def calibrate(x, bits: int = 4) -> float:
    """The code's alpha search on calibration data x [N, K] (see the module docstring)."""
    arr, _ = to_numpy(x)
    a = np.asarray(arr, dtype=np.float64)
    mean, std = float(a.mean()), float(a.std())
    base = max(abs(mean + 3 * std), abs(mean - 3 * std))
    if base <= 0:
        return 1.0
    best, best_alpha = np.inf, base
    for pct in range(*SEARCH):
        alpha = base * pct / 100.0
        mse = fake_quantize(a, alpha, bits)[1].mse
        if mse < best:
            best, best_alpha = mse, alpha
    return best_alpha
