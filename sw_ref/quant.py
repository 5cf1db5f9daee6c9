"""Uniform quantizers and clipping-threshold (calibration) methods.

The quantizer is the one the array implements: ``q = clamp(round(x / step))`` with
round half to even, unsigned for post-ReLU activations and symmetric signed for
weights. A clipping threshold ``alpha`` maps to ``step = alpha / qmax``; the
threshold methods below choose ``alpha`` from data (max, percentile, MSE search,
ACIQ, KL entropy). Inputs may be numpy arrays or torch tensors; results are torch
tensors (thresholds of a whole tensor are Python floats). NaN or inf anywhere
raises ``ValueError``: a calibration that silently ignores them hides a bug upstream.

Activations bounded below by a floor z < 0 (GELU's output: z ~ -0.17) use a zero
point: ``q = clamp(round((x - z) / step), 0, 2^b - 1)``, dequantized as
``q * step + z``. The codes are unsigned, and code 0 is the floor, so the slots that
OverQ overwrites are the ones at the floor. ``floor=`` on ``quantize``,
``dequantize``, ``fake_quant`` and ``threshold`` selects it; ``activation_floor``
calibrates z (the smallest value seen, or a function's known minimum). Signed data
without a floor keeps the symmetric signed quantizer.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch

from sw_ref import checks

__all__ = [
    "ACIQ_GAUSS",
    "ACIQ_LAPLACE",
    "METHODS",
    "aciq_threshold",
    "activation_floor",
    "check_finite",
    "dequantize",
    "fake_quant",
    "kl_threshold",
    "max_threshold",
    "mse_threshold",
    "percentile_threshold",
    "qrange",
    "quantize",
    "step_from_threshold",
    "threshold",
]

# Optimal clipping alpha / scale for M-bit quantization of [-alpha, alpha]
# (Banner et al., "Post-training 4-bit quantization...", ACIQ, arXiv 1810.05723),
# as published with the paper's code; a Laplace(b) prior gives alpha = c * b, a
# Gaussian(sigma) prior alpha = c * sigma. They minimise the paper's MSE model
# (clipping + alpha^2 / (3 * 4^M)); tests re-derive them numerically. Unsigned
# (half-range) data quantized with M bits has the step of M + 1 signed bits, so it
# reads the entry for M + 1 (the code's "positive" tables are exactly this shift).
ACIQ_LAPLACE = {1: 1.86, 2: 2.83, 3: 3.89, 4: 5.03, 5: 6.2, 6: 7.41, 7: 8.64, 8: 9.89, 9: 11.16}
ACIQ_GAUSS = {1: 1.24, 2: 1.71, 3: 2.15, 4: 2.55, 5: 2.93, 6: 3.28, 7: 3.61, 8: 3.92, 9: 4.2}


def check_finite(x, what: str = "x") -> torch.Tensor:
    """Return ``x`` as a torch tensor of finite real numbers.

    ValueError for NaN or inf, TypeError for text, complex or boolean data; the
    message names the argument ``what`` (see ``sw_ref.checks``).
    """
    if isinstance(x, torch.Tensor):
        return checks.real_data(x, what)
    return torch.as_tensor(checks.real_data(np.asarray(x), what))


def qrange(bits: int, signed: bool, narrow: bool = True) -> tuple[int, int]:
    """Integer code range: unsigned [0, 2^b - 1]; signed symmetric [-(2^(b-1) - 1), ...].

    ``narrow=False`` adds the two's-complement minimum -2^(b-1) (the hardware
    holds it, but a symmetric grid keeps Q(-w) == -Q(w)).
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 32:
        raise ValueError(f"bits must be an integer in 1..32, got {bits!r}")
    if not signed:
        return 0, (1 << bits) - 1
    if bits < 2:
        raise ValueError("signed quantization needs bits >= 2")
    top = (1 << (bits - 1)) - 1
    return (-top if narrow else -top - 1), top


def _channel_view(t: torch.Tensor, step, axis: int | None) -> torch.Tensor:
    """Broadcast a per-tensor or per-channel step (finite, > 0) against ``t``."""
    s = torch.as_tensor(
        checks.positive_values(_number_or_array(step, "step"), "step"),
        dtype=t.dtype if t.is_floating_point() else torch.float32,
    )
    return _along(s, t, axis, "step")


def _along(s: torch.Tensor, t: torch.Tensor, axis: int | None, name: str) -> torch.Tensor:
    """``s`` (a scalar, or one entry per index of ``axis``) shaped to broadcast with t."""
    if axis is not None:
        axis = checks.axis_index(axis, max(t.ndim, 1))
    if axis is None or s.ndim == 0:
        return s
    if s.ndim != 1 or s.numel() != t.shape[axis]:
        raise ValueError(
            f"per-channel {name} must have {t.shape[axis]} entries (axis {axis}), got shape "
            f"{tuple(s.shape)}"
        )
    shape = [1] * t.ndim
    shape[axis] = -1
    return s.reshape(shape)


def _number_or_array(value, name: str):
    """``value`` as a tensor-able number or array; TypeError for text and the like."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a number or an array of numbers, got {value!r}")
    return value


def _check_floor(floor, signed: bool) -> float | None:
    if floor is None:
        return None
    if signed:
        raise ValueError("a floor (zero point) makes the codes unsigned; pass signed=False")
    return checks.finite(floor, "floor")


def quantize(
    x,
    step,
    bits: int,
    signed: bool = False,
    axis: int | None = None,
    narrow: bool = True,
    floor: float | None = None,
) -> torch.Tensor:
    """Integer codes ``clamp(round_half_even(x / step), qmin, qmax)`` as int64.

    ``step`` is a scalar (per-tensor) or has one entry per index of ``axis``
    (per-channel). Values beyond the range are clipped: that is what the threshold
    means; NaN/inf and non-positive steps are errors. With ``floor`` z (unsigned
    only) the codes are ``clamp(round((x - z) / step), 0, 2^b - 1)``: x - z is
    computed in float64 first, as ``sw_ref.overq.encode`` does.
    """
    z = _check_floor(floor, signed)
    t = check_finite(x).to(torch.float64)  # x / step in float64, as sw_ref.overq does:
    if z is not None:
        t = t - z
    s = _channel_view(t, step, axis)  # ties must round alike
    lo, hi = qrange(bits, signed, narrow)
    return torch.clamp(torch.round(t / s), lo, hi).to(torch.int64)


def dequantize(
    q, step, axis: int | None = None, dtype=torch.float32, floor: float | None = None
) -> torch.Tensor:
    """Codes back to real values: ``q * step`` (``+ floor`` with a zero point).

    ``step`` is finite and > 0, ``dtype`` a floating-point dtype.
    """
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(f"dtype must be a floating-point torch dtype, got {dtype!r}")
    q = check_finite(q, "q").to(dtype)
    out = q * _channel_view(q, step, axis)
    return out if floor is None else out + checks.finite(floor, "floor")


def step_from_threshold(alpha, bits: int, signed: bool = False) -> torch.Tensor | float:
    """Grid step that puts the largest code at the threshold: ``alpha / qmax``.

    An all-zero tensor has alpha = 0; its step is set to 1 (every value is 0 anyway).
    A negative, NaN or infinite alpha is an error.
    """
    hi = qrange(bits, signed)[1]
    if isinstance(alpha, torch.Tensor) and alpha.ndim > 0:
        a = checks.nonnegative_values(check_finite(alpha, "alpha"), "alpha").to(torch.float64)
        return torch.where(a > 0, a / hi, torch.ones_like(a))
    a = checks.nonnegative(alpha, "alpha")
    return a / hi if a > 0 else 1.0


def fake_quant(
    x,
    alpha,
    bits: int,
    signed: bool = False,
    axis: int | None = None,
    narrow: bool = True,
    floor: float | None = None,
) -> torch.Tensor:
    """Quantize to ``bits`` with clipping threshold ``alpha`` and map back to reals.

    With ``floor`` z the grid covers [z, z + alpha]: ``alpha`` is a threshold of x - z.
    ``alpha`` >= 0 (per tensor, or one per channel of ``axis``); a threshold of 0
    clips every value of its tensor or channel to 0 (to z with a floor).
    """
    t = check_finite(x)
    dtype = t.dtype if t.is_floating_point() else torch.float32
    step = step_from_threshold(alpha, bits, signed)
    if axis is None and not isinstance(step, torch.Tensor) and dtype in _BLOCKED_DTYPES:
        nonzero = checks.nonnegative(alpha, "alpha") > 0
        return _fake_quant_per_tensor(
            t, step if nonzero else 0.0, bits, signed, narrow, floor, dtype
        )
    q = quantize(t, step, bits, signed, axis, narrow, floor)
    kept = torch.as_tensor(alpha) > 0
    if not bool(kept.all()):
        q = q * _along(kept, q, axis, "alpha")
    return dequantize(q, step, axis, dtype, floor)


_BLOCKED_DTYPES = (torch.float32, torch.float64)  # numpy has no bfloat16
_BLOCK = 1 << 14  # float64 temporaries of 128 KiB: every pass of a block stays in the cache


def _fake_quant_per_tensor(
    t: torch.Tensor, step: float, bits: int, signed: bool, narrow: bool, floor, dtype
) -> torch.Tensor:
    """``dequantize(quantize(t, step, ...), step, dtype=dtype)``, block by block.

    The same arithmetic (x - z and x / step in float64, round half to even, clamp,
    the integer code times step in ``dtype``, + z) on blocks that stay in the cache:
    a network evaluation fake-quantizes every layer input of every image, and the
    composition streams six full-size temporaries through memory.
    """
    z = _check_floor(floor, signed)
    np_dtype = torch.empty((), dtype=dtype).numpy().dtype
    out = np.empty(tuple(t.shape), dtype=np_dtype)
    flat_out = out.reshape(-1)
    if step == 0:  # alpha = 0: every code is 0
        flat_out[...] = 0.0 if z is None else z
        return torch.from_numpy(out)
    lo, hi = qrange(bits, signed, narrow)
    flat = t.detach().contiguous().numpy().reshape(-1)
    y = np.empty(min(_BLOCK, flat.size))
    s = np_dtype.type(step)
    for start in range(0, flat.size, _BLOCK):
        xb, ob = flat[start : start + _BLOCK], flat_out[start : start + _BLOCK]
        yb = y[: xb.size]
        if z is not None:
            np.subtract(xb, z, out=yb, dtype=np.float64)
            np.divide(yb, step, out=yb)
        else:
            np.divide(xb, step, out=yb, dtype=np.float64)
        np.rint(yb, out=yb)
        np.clip(yb, lo, hi, out=yb)
        ob[...] = yb
        ob *= s
        if z is not None:
            ob += np_dtype.type(z)
    return torch.from_numpy(out)


def activation_floor(x=None, known: float | None = None) -> float:
    """The zero point z of floored activations: ``known`` (a function's minimum, e.g.
    GELU's -0.16997) if given, else the smallest value of ``x`` (calibrated).

    A calibrated floor above 0 is returned as 0: the data is then plain unsigned.
    """
    if known is not None:
        return checks.finite(known, "known")
    if x is None:
        raise ValueError("activation_floor needs data or a known floor")
    t = check_finite(x)
    if t.numel() == 0:
        raise ValueError("x is empty: cannot calibrate a floor on an empty tensor")
    return min(float(t.min()), 0.0)


# --- clipping thresholds ------------------------------------------------------------
# Each method maps the magnitudes that matter (|x| for signed data, max(x, 0) for
# unsigned data) to a threshold alpha. Signed grids are symmetric, so a signed
# quantizer acts on |x| exactly like an unsigned one with qmax = 2^(b-1) - 1.


def _magnitudes(x: np.ndarray, signed: bool) -> np.ndarray:
    """|x| or max(x, 0), after checking x: finite real numbers, at least one."""
    x = np.asarray(checks.real_data(x, "x", empty=False), dtype=np.float64)
    return np.abs(x) if signed else np.maximum(x, 0.0)


def _count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def max_threshold(x: np.ndarray, bits: int, signed: bool) -> float:
    """No clipping: the largest magnitude."""
    return float(_magnitudes(x, signed).max(initial=0.0))


def percentile_threshold(
    x: np.ndarray, bits: int, signed: bool, percentile: float = 99.99
) -> float:
    """The given percentile of the magnitudes (clips the top 100 - p percent)."""
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    return float(np.percentile(_magnitudes(x, signed), percentile))


def _histogram(mag: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    hist, edges = np.histogram(mag, bins=n_bins, range=(0.0, float(mag.max())))
    return hist.astype(np.float64), edges


def mse_threshold(
    x: np.ndarray, bits: int, signed: bool, n_bins: int = 2048, n_candidates: int = 256
) -> float:
    """Threshold minimising the expected squared error over a histogram of |x|.

    Candidates are ``max * k / n_candidates``; each bin is represented by its
    centre, so one (candidates x bins) array evaluates the whole search.
    """
    mag = _magnitudes(x, signed)
    n_bins, n_candidates = _count(n_bins, "n_bins"), _count(n_candidates, "n_candidates")
    top = float(mag.max(initial=0.0))
    if top == 0.0:
        return 0.0
    hist, edges = _histogram(mag, n_bins)
    centres = 0.5 * (edges[:-1] + edges[1:])
    qmax = qrange(bits, signed)[1]
    alphas = top * np.arange(1, n_candidates + 1) / n_candidates
    steps = (alphas / qmax)[:, None]
    recon = np.minimum(np.round(centres[None, :] / steps), qmax) * steps
    err = ((recon - centres[None, :]) ** 2 * hist[None, :]).sum(axis=1)
    return float(alphas[int(np.argmin(err))])


def aciq_threshold(x: np.ndarray, bits: int, signed: bool, prior: str = "laplace") -> float:
    """ACIQ: the analytic optimum for a Laplace or Gaussian fit of the data.

    Laplace scale b = mean |x - mean x|, Gaussian sigma = std x (as the ACIQ code
    estimates them). Capped at max |x|: a threshold above the data only wastes levels.
    """
    table = {"laplace": ACIQ_LAPLACE, "gauss": ACIQ_GAUSS}.get(prior)
    if table is None:
        raise ValueError(f"ACIQ prior must be laplace or gauss, got {prior!r}")
    m = bits if signed else bits + 1
    if m not in table:
        raise ValueError(
            f"ACIQ has constants for {min(table)}..{max(table)} signed bits; "
            f"{bits} {'signed' if signed else 'unsigned'} bits needs {m}"
        )
    top = max_threshold(x, bits, signed)  # checks x
    x = np.asarray(x, dtype=np.float64)
    scale = np.mean(np.abs(x - x.mean())) if prior == "laplace" else np.std(x)
    return float(min(table[m] * scale, top))


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    p = p / p.sum()
    q = q / q.sum()
    mask = p > 0
    return float(np.sum(p[mask] * np.log(p[mask] / q[mask])))


def _smooth(d: np.ndarray, eps: float = 1e-4) -> np.ndarray:
    """Move eps of mass into empty bins so KL stays finite (as TensorRT/MXNet do)."""
    zero = d == 0
    n_zero, n_nonzero = int(zero.sum()), int((~zero).sum())
    if n_zero == 0 or n_nonzero == 0:
        return d
    d = d.astype(np.float64)
    return d + eps * zero - eps * n_zero / n_nonzero * (~zero)


def kl_threshold(
    x: np.ndarray, bits: int, signed: bool, n_bins: int = 2048, start_bin: int | None = None
) -> float:
    """TensorRT-style entropy calibration on a histogram of |x|.

    For every candidate cut i, the reference P is the first i bins with the clipped
    tail added to the last; Q merges the first i bins into qmax + 1 levels and
    spreads each level over the bins where P is non-empty (MXNet's
    ``_get_optimal_threshold`` on |x|). The cut with the smallest KL(P || Q) wins;
    the threshold is its upper bin edge. The search is sequential.

    Two guards of NVIDIA's histogram calibrator (pytorch-quantization), and one of
    our own that the first needs:

    - the cuts start at ``start_bin`` (default n_bins / 16, the 128 of 2048 bins
      there; never fewer bins than levels);
    - the zero bin's count is replaced by its neighbour's: the spike of exact zeros
      in post-ReLU data is not a shape to preserve, and it pulls the cut to the
      smallest one allowed;
    - a cut with no mass below its last bin is skipped: P is then all tail, Q
      equals it and KL is 0 by construction (discrete inputs, e.g. the 17-level
      digits images, have empty bins between their levels).

    Without them, EfficientNet-Lite0's ReLU6 inputs (25-51 % exact zeros) got cuts
    of 0.05-0.4 on a 0-6 range at A4 (MSE: 3.9-5.8) and the network collapsed.
    """
    mag = _magnitudes(x, signed)
    n_bins = _count(n_bins, "n_bins")
    top = float(mag.max(initial=0.0))
    if top == 0.0:
        return 0.0
    hist, edges = _histogram(mag, n_bins)
    levels = qrange(bits, signed)[1] + 1
    if levels >= n_bins:
        return top
    start = n_bins // 16 if start_bin is None else _count(start_bin, "start_bin")
    start = min(max(start, levels), n_bins)
    if n_bins > 1:
        hist[0] = hist[1]
    cuts = np.arange(start, n_bins + 1)
    kl = _kl_by_cut(hist, levels, cuts)
    if not np.isfinite(kl).any():
        return float(edges[n_bins])
    return float(edges[cuts[int(np.argmin(kl))]])


def _kl_at_cut(hist: np.ndarray, levels: int, i: int) -> float:
    """KL(P || Q) of one cut of i bins (inf where the cut says nothing): the
    definition, one cut at a time (``_kl_by_cut`` computes all cuts at once; a test
    holds the two together)."""
    tail = float(hist[i:].sum())
    if hist[: i - 1].sum() == 0:  # P is all tail: KL 0 by construction
        return math.inf
    sliced = hist[:i]
    p = sliced.copy()
    p[-1] += tail
    nonzero = p != 0
    bounds = np.floor(np.arange(levels) * i / levels).astype(np.int64)
    sums = np.add.reduceat(sliced, bounds)
    counts = np.add.reduceat(nonzero.astype(np.float64), bounds)
    per_bin = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    owner = np.repeat(np.arange(levels), np.diff(np.append(bounds, i)))
    q = np.where(nonzero, per_bin[owner], 0.0)
    if q.sum() == 0:
        return math.inf
    return _kl(_smooth(p), _smooth(q))


def _kl_by_cut(
    hist: np.ndarray, levels: int, cuts: np.ndarray, chunk: int = 128, eps: float = 1e-4
) -> np.ndarray:
    """``_kl_at_cut`` for every cut in ``cuts`` (>= levels), ``chunk`` cuts per array pass.

    Row r of each pass is cut i = cuts[r] over the first i bins. Bin j < i belongs to
    level ceil((j + 1) L / i) - 1; a level's sum and its count of non-empty bins are
    differences of prefix sums at the level bounds floor(k i / L) (the counts are
    integers, so the sums are exact). The calibration searches ~2000 cuts per layer.
    """
    below = np.concatenate([[0.0], np.cumsum(hist)])  # below[i] = sum(hist[:i])
    filled = np.concatenate([[0], np.cumsum(hist != 0)])
    tail = below[-1] - below  # tail[i] = sum(hist[i:])
    out = np.full(cuts.size, math.inf)
    for lo in range(0, cuts.size, chunk):
        cut = cuts[lo : lo + chunk]
        rows = np.arange(cut.size)
        width = int(cut.max())
        j = np.arange(width)
        valid = j[None, :] < cut[:, None]
        p = np.where(valid, hist[None, :width], 0.0)
        p[rows, cut - 1] += tail[cut]
        nonzero = p != 0
        level = np.where(valid, -(-((j[None, :] + 1) * levels) // cut[:, None]) - 1, 0)
        bound = np.arange(levels + 1)[None, :] * cut[:, None] // levels
        sums = below[bound[:, 1:]] - below[bound[:, :-1]]
        counts = (filled[bound[:, 1:]] - filled[bound[:, :-1]]).astype(np.float64)
        counts[:, -1] += (hist[cut - 1] == 0) & (tail[cut] > 0)  # the tail fills the last bin
        per_bin = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
        q = np.where(nonzero, np.take_along_axis(per_bin, level, axis=1), 0.0)
        skip = (below[cut - 1] == 0) | (q.sum(axis=1) == 0)
        p, q = _smooth_rows(p, valid, eps), _smooth_rows(q, valid, eps)
        with np.errstate(divide="ignore", invalid="ignore"):  # skipped rows: 0 / 0
            p /= p.sum(axis=1, keepdims=True)
            q /= q.sum(axis=1, keepdims=True)
            terms = np.where(p > 0, p * np.log(p / q), 0.0)
        out[lo : lo + chunk] = np.where(skip, math.inf, terms.sum(axis=1))
    return out


def _smooth_rows(d: np.ndarray, valid: np.ndarray, eps: float) -> np.ndarray:
    """``_smooth`` of every row's first (valid) bins."""
    zero = (d == 0) & valid
    filled = (d != 0) & valid
    n_zero, n_filled = zero.sum(axis=1), filled.sum(axis=1)
    move = (n_zero > 0) & (n_filled > 0)
    share = np.divide(eps * n_zero, n_filled, out=np.zeros(d.shape[0]), where=n_filled > 0)
    return np.where(move[:, None], d + eps * zero - share[:, None] * filled, d)


METHODS: dict[str, Callable[..., float]] = {
    "max": max_threshold,
    "percentile": percentile_threshold,
    "mse": mse_threshold,
    "aciq_laplace": lambda x, bits, signed, **kw: aciq_threshold(x, bits, signed, "laplace", **kw),
    "aciq_gauss": lambda x, bits, signed, **kw: aciq_threshold(x, bits, signed, "gauss", **kw),
    "kl": kl_threshold,
}


def threshold(
    x,
    bits: int,
    method: str = "max",
    signed: bool | None = None,
    axis: int | None = None,
    floor: float | None = None,
    **options,
) -> float | torch.Tensor:
    """Clipping threshold of ``x`` by ``method`` (see ``METHODS``).

    ``signed=None`` infers it (signed if any value is negative). With ``axis`` the
    threshold is per channel along that axis (a float64 tensor), else a float. With
    ``floor`` z the threshold is of the unsigned x - z (values below z count as 0).
    """
    if method not in METHODS:
        raise ValueError(f"unknown clipping method {method!r}; allowed: {', '.join(METHODS)}")
    t = check_finite(x).detach()
    if t.numel() == 0:
        raise ValueError("x is empty: cannot calibrate an empty tensor")
    data = t.cpu().to(torch.float64).numpy()
    if floor is not None:
        if signed:
            raise ValueError("a floor (zero point) makes the data unsigned; pass signed=False")
        data = np.maximum(data - _check_floor(floor, False), 0.0)
        signed = False
    if signed is None:
        signed = bool((data < 0).any())
    qrange(bits, bool(signed))  # bits must suit the grid, whatever the method reads
    fn = METHODS[method]
    if axis is None:
        return fn(data.reshape(-1), bits, signed, **options)
    axis = checks.axis_index(axis, data.ndim)
    rows = np.moveaxis(data, axis, 0).reshape(data.shape[axis], -1)
    return torch.tensor([fn(row, bits, signed, **options) for row in rows], dtype=torch.float64)
