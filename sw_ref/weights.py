"""Weight quantizers: symmetric int and APoT, per tensor or per output channel.

The one place every evaluation and ``sw_ref.quantize`` take quantized weights from.
Thresholds come from ``sw_ref.quant`` (``max``, ``mse``, ...), except two searches
made for weights: the per-channel MSE search (a depthwise filter has 9 or 25 weights,
too few for ``quant.mse_threshold``'s histogram) and APoT's threshold search (its
levels are not uniform, so the uniform step formula does not apply).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from sw_ref import apot, ocs, quant

__all__ = [
    "apot_alpha",
    "apot_weights",
    "int_step",
    "int_threshold",
    "int_weights",
    "mse_alpha_per_channel",
    "ocs_int_split",
    "quantize_weights",
]


def mse_alpha_per_channel(w: torch.Tensor, bits: int, candidates: int = 128) -> torch.Tensor:
    """Per-output-channel threshold minimising the exact squared weight error.

    A direct search over ``candidates`` fractions of each channel's max |w|, for all
    channels at once (the histogram search of ``quant.mse_threshold`` is meant for
    large tensors; a depthwise filter has 9 or 25 weights).
    """
    flat = w.reshape(w.shape[0], -1).double()
    top = flat.abs().amax(dim=1).clamp_min(1e-12)
    qmax = (1 << (bits - 1)) - 1
    best_err = torch.full_like(top, math.inf)
    best = top.clone()
    for j in range(1, candidates + 1):
        alpha = top * (j / candidates)
        step = (alpha / qmax)[:, None]
        err = ((torch.clamp(torch.round(flat / step), -qmax, qmax) * step - flat) ** 2).sum(1)
        better = err < best_err
        best_err = torch.where(better, err, best_err)
        best = torch.where(better, alpha, best)
    return best


def int_threshold(w: torch.Tensor, bits: int, method: str, per_channel: bool):
    """The clipping threshold(s) of symmetric int weights (a tensor per channel)."""
    if per_channel and method == "mse":
        return mse_alpha_per_channel(w, bits)
    return quant.threshold(w, bits, method, signed=True, axis=0 if per_channel else None)


def int_step(w: torch.Tensor, bits: int, method: str, per_channel: bool):
    """The grid step(s) of symmetric int weights: threshold / (2^(b-1) - 1)."""
    return quant.step_from_threshold(int_threshold(w, bits, method, per_channel), bits, signed=True)


def int_weights(w: torch.Tensor, bits: int, method: str, per_channel: bool) -> torch.Tensor:
    """Fake-quantized symmetric int weights (same dtype as ``w``)."""
    axis = 0 if per_channel else None
    alpha = int_threshold(w, bits, method, per_channel)
    return quant.fake_quant(w, alpha, bits, signed=True, axis=axis).to(w.dtype)


def ocs_int_split(
    w: torch.Tensor, ratio: float, bits: int, method: str = "max", per_channel: bool = False
):
    """Grid-aware weight OCS for int weights: (w_split, index, alpha).

    The grid is that of the split weights (OCS shrinks the range first): a plain split
    finds the threshold(s) alpha, the grid-aware split uses their step(s), so that the
    halves' codes add up to the unsplit weight's code; quantize ``w_split`` with that
    same ``alpha``.
    """
    plain, _ = ocs.split_weights(w, ratio)
    alpha = int_threshold(plain, bits, method, per_channel)
    step = quant.step_from_threshold(alpha, bits, signed=True)
    w_split, index = ocs.split_weights(w, ratio, step)
    return w_split, index, alpha


def apot_alpha(w: torch.Tensor, bits: int, method: str) -> float:
    """APoT clipping threshold: max |w|, or the MSE-best of 64 fractions of it."""
    top = float(w.abs().max())
    if method == "max" or top == 0:
        return top or 1.0
    cands = top * np.linspace(0.3, 1.0, 64)
    errs = [float(((apot.quantize(w, a, bits).weights - w) ** 2).sum()) for a in cands]
    return float(cands[int(np.argmin(errs))])


def apot_weights(w: torch.Tensor, bits: int, method: str, per_channel: bool) -> torch.Tensor:
    """APoT weights; per channel, every channel at once (w / alpha on the unit grid).

    ``apot.quantize(w, alpha)`` clips w / alpha to [-1, 1] and rounds to the nearest
    level, so quantizing w / alpha_o with alpha = 1 and scaling back by alpha_o is the
    same quantizer with one threshold per output channel. Any method but "max" is
    the MSE search: the best of 64 fractions (0.3-1.0) of each channel's max |w|.
    """
    if not per_channel:
        return apot.quantize(w, apot_alpha(w, bits, method), bits).weights
    flat = w.reshape(w.shape[0], -1).double()
    top = flat.abs().amax(dim=1).clamp_min(1e-12)[:, None]

    def q(alpha):
        return apot.quantize(flat / alpha, 1.0, bits).weights * alpha

    if method == "max":
        return q(top).reshape(w.shape).to(w.dtype)
    best, best_err = None, None
    for f in np.linspace(0.3, 1.0, 64):
        cand = q(top * float(f))
        err = ((cand - flat) ** 2).sum(1)
        if best is None:
            best, best_err = cand, err
        else:
            better = err < best_err
            best = torch.where(better[:, None], cand, best)
            best_err = torch.minimum(err, best_err)
    return best.reshape(w.shape).to(w.dtype)


def quantize_weights(
    w: torch.Tensor,
    bits: int | None,
    fmt: str = "int",
    method: str = "max",
    per_channel: bool = True,
) -> torch.Tensor:
    """Fake-quantized weights in ``fmt`` (``int`` or ``apot``); ``bits=None``: ``w`` itself."""
    if bits is None:
        return w
    if fmt == "apot":
        return apot_weights(w, bits, method, per_channel)
    if fmt != "int":
        raise ValueError(f"weight format must be int or apot, got {fmt!r}")
    return int_weights(w, bits, method, per_channel)
