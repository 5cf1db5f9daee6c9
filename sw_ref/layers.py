"""Quantized Conv2d / Linear: one base class, two thin subclasses (Brevitas style).

A ``QuantizedLayer`` holds the float weight of its source layer (batch norm folded
in, OCS-widened) and, once planned by ``sw_ref.quantize``, its quantized weight and
an input quantizer. It computes the layer the way the array does:

- its input gains the OCS duplicates ``x[:, index]`` first (weight OCS);
- an OverQ input (or a channel-ordered one) is cut into the array's reduction
  vectors: a Linear's last axis; a conv's im2col patches, channel-minor (kernel row,
  kernel column, then channel: one pixel's channels are neighbours, NHWC-style), one
  vector per group (a depthwise conv: each channel's k x k window); the vectors are
  permuted by the channel order, OverQ-encoded and decoded
  (``sw_ref.overq.reconstruct``), and multiplied by the weight columns in the same
  order, so the result is the layer's function whatever the order;
- any other input is fake-quantized element by element (uniform, signed or
  unsigned, with a zero point where calibration found a floor).

With ``enabled = False`` (``QuantizedModel.quantization(False)``) the quantizers are
off and only the reparametrizations (folding, OCS, order) remain: the layer then
computes its source's function to float rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hw.params import ArrayConfig
from sw_ref import overq, quant

__all__ = ["InputQuantizer", "QuantizedConv2d", "QuantizedLayer", "QuantizedLinear", "pick"]


def pick(n: int, count: int, gen: torch.Generator) -> torch.Tensor:
    """``count`` random indices below n (with replacement: O(count), not O(n)), or all."""
    if n <= count:
        return torch.arange(n)
    return torch.randint(n, (count,), generator=gen)


@dataclass
class InputQuantizer:
    """How a layer's input is quantized (decided by calibration).

    ``kind``: ``float``, ``uniform`` (element-wise) or ``overq`` (the array's encoder
    on the reduction vectors). ``floor`` is the zero point z (0.0: none); with it the
    codes are of x - z. ``alpha`` is the clipping threshold, ``step`` the grid step.
    """

    kind: str = "float"
    bits: int | None = None
    signed: bool = False
    floor: float = 0.0
    alpha: float = 0.0
    step: float = 0.0
    cfg: ArrayConfig | None = None
    outliers: int = 0
    handled: int = 0
    slots: int = 0
    stats_on: bool = field(default=True, repr=False)

    def uniform(self, x: torch.Tensor) -> torch.Tensor:
        if self.signed:
            return quant.fake_quant(x, self.alpha, self.bits, signed=True)
        return quant.fake_quant(x, self.alpha, self.bits, signed=False, floor=self.floor or None)

    def encode(self, v: torch.Tensor) -> torch.Tensor:
        """OverQ encode + decode of vectors [..., K] (x below the floor clamps to it)."""
        floor = self.floor
        arr = v.detach().cpu().numpy()
        if arr.size and arr.min() < floor:  # a read, not a copy, when nothing is below
            low = np.float32(floor)
            if low < floor:  # the float32 nearest the floor, not below it
                low = np.nextafter(low, np.float32(1.0))
            arr = np.maximum(arr, low)
        dec, st = overq.reconstruct(arr, self.step, self.cfg, floor=floor, dtype=np.float32)
        if self.stats_on:
            self.outliers += st.outliers
            self.handled += st.handled
            self.slots += v.numel()
        return torch.from_numpy(dec).to(v.device, v.dtype)

    @property
    def coverage(self) -> float:
        return self.handled / self.outliers if self.outliers else 1.0

    def reset(self) -> None:
        self.outliers = self.handled = self.slots = 0


class QuantizedLayer(nn.Module):
    """The common part of ``QuantizedConv2d`` and ``QuantizedLinear``.

    ``weight``/``bias``: the float parameters (folded, widened by OCS); ``qweight``:
    the quantized weight (None: float weights); ``index``: the OCS duplicates (None:
    no OCS); ``perm``: the order of the reduction slots (None: natural).
    """

    source_type: type = nn.Module

    def __init__(self, source: nn.Module, name: str):
        super().__init__()
        self.name = name
        self.register_buffer("weight", source.weight.detach().clone())
        bias = getattr(source, "bias", None)
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.register_buffer("qweight", None)
        self.register_buffer("index", None)
        self.register_buffer("perm", None)
        self.act = InputQuantizer()
        self.enabled = True
        self.observer = None  # set while calibrating
        self.record = None  # set while a report compares outputs

    # --- the subclass hooks -------------------------------------------------------
    def extend(self, x: torch.Tensor) -> torch.Tensor:
        """x with the OCS duplicates appended along the channel axis."""
        raise NotImplementedError

    def plain(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """The layer's own operation with weight ``w``."""
        raise NotImplementedError

    def vectorwise(self, x: torch.Tensor, w: torch.Tensor, fn) -> torch.Tensor:
        """The layer computed from its reduction vectors, each replaced by ``fn(v)``."""
        raise NotImplementedError

    def sample_vectors(self, x: torch.Tensor, count: int, gen: torch.Generator) -> torch.Tensor:
        """Up to ``count`` reduction vectors of input x, [V, groups, positions, channels]."""
        raise NotImplementedError

    @property
    def groups(self) -> int:
        return 1

    # --- shared -------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.observer is not None:
            self.observer(self, x)
        if self.index is not None:
            x = self.extend(x)
        on = self.enabled
        w = self.qweight if on and self.qweight is not None else self.weight
        kind = self.act.kind if on else "float"
        if kind == "overq" or self.perm is not None:
            if kind == "overq":
                fn = self.act.encode
            elif kind == "uniform":
                fn = self.act.uniform
            else:
                fn = None
            out = self.vectorwise(x, w, fn)
        else:
            if kind == "uniform":
                x = self.act.uniform(x)
            out = self.plain(x, w)
        if self.record is not None:
            self.record(self, out)
        return out

    def _ordered(self, v: torch.Tensor, w: torch.Tensor, fn):
        """Vectors and weight columns (last axes) in array order, v through ``fn``."""
        if self.perm is not None:
            v, w = v.index_select(-1, self.perm), w.index_select(-1, self.perm)
        if fn is not None:
            v = fn(v)
        return v, w


class QuantizedLinear(QuantizedLayer):
    """``nn.Linear``: the reduction vector is the input's last axis."""

    source_type = nn.Linear

    def __init__(self, source: nn.Linear, name: str):
        super().__init__(source, name)
        self.in_features, self.out_features = source.in_features, source.out_features

    def extend(self, x):
        return torch.cat([x, x[..., self.index]], dim=-1)

    def plain(self, x, w):
        return F.linear(x, w, self.bias)

    def vectorwise(self, x, w, fn):
        v, w = self._ordered(x, w, fn)
        return F.linear(v, w, self.bias)

    def sample_vectors(self, x, count, gen):
        rows = x.reshape(-1, x.shape[-1])
        return rows[pick(rows.shape[0], count, gen)][:, None, None, :]


class QuantizedConv2d(QuantizedLayer):
    """``nn.Conv2d`` (grouped and depthwise included), any padding mode.

    A source class that pads in its own ``forward`` (TensorFlow "same" padding) tells
    how with an ``input_padding(x)`` method returning (left, right, top, bottom) zero
    padding for input x; its convolution then runs with that padding.
    """

    source_type = nn.Conv2d

    def __init__(self, source: nn.Conv2d, name: str):
        super().__init__(source, name)
        self.stride, self.dilation = source.stride, source.dilation
        self.kernel_size, self._groups = source.kernel_size, source.groups
        self.in_channels, self.out_channels = source.in_channels, source.out_channels
        self._input_padding = getattr(source, "input_padding", None)
        self.padding_mode = source.padding_mode
        self._pads = tuple(source._reversed_padding_repeated_twice)

    def pads(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) padding of input x."""
        if self._input_padding is not None:
            return tuple(self._input_padding(x))
        return self._pads

    @property
    def groups(self) -> int:
        return self._groups

    def pad(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.pads(x)
        if not any(pads):
            return x
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.pad(x, pads, mode=mode)

    def extend(self, x):
        return torch.cat([x, x[:, self.index]], dim=1)

    def plain(self, x, w):
        left, right, top, bottom = self.pads(x)
        if self.padding_mode == "zeros" and left == right and top == bottom:
            return F.conv2d(x, w, self.bias, self.stride, (top, left), self.dilation, self.groups)
        return F.conv2d(self.pad(x), w, self.bias, self.stride, 0, self.dilation, self.groups)

    def _out_size(self, h: int, w: int) -> tuple[int, int]:
        return tuple(
            (size - d * (k - 1) - 1) // s + 1
            for size, d, k, s in zip((h, w), self.dilation, self.kernel_size, self.stride)
        )

    def vector_weight(self, w: torch.Tensor) -> torch.Tensor:
        """[O, Cg, kh, kw] -> [groups, O / groups, kh * kw * Cg], channel-minor."""
        g = self.groups
        o, cg = w.shape[0], w.shape[1]
        kk = w.shape[2] * w.shape[3]
        return w.reshape(g, o // g, cg, kk).permute(0, 1, 3, 2).reshape(g, o // g, kk * cg)

    def vectorwise(self, x, w, fn):
        xp = self.pad(x)
        n, c = xp.shape[:2]
        g = self.groups
        kk = self.kernel_size[0] * self.kernel_size[1]
        ho, wo = self._out_size(*xp.shape[2:])
        if kk == 1:  # a pointwise conv: one pixel's channels (NHWC), no im2col copy
            sh, sw = self.stride
            v = xp[:, :, ::sh, ::sw].permute(0, 2, 3, 1).reshape(n, -1, g, c // g)
        else:
            cols = F.unfold(xp, self.kernel_size, self.dilation, 0, self.stride)  # [N, C*kk, L]
            v = cols.reshape(n, g, c // g, kk, -1).permute(0, 4, 1, 3, 2)
            v = v.reshape(n, -1, g, kk * c // g)
        v, wv = self._ordered(v, self.vector_weight(w), fn)
        lanes = v.shape[1]
        if g == 1:  # one matrix product, the bias fused, one copy back to NCHW
            v2 = v.reshape(n * lanes, -1)
            y = v2 @ wv[0].T if self.bias is None else torch.addmm(self.bias, v2, wv[0].T)
            return y.reshape(n, ho, wo, -1).permute(0, 3, 1, 2).contiguous()
        y = torch.bmm(v.permute(2, 0, 1, 3).reshape(g, n * lanes, -1), wv.transpose(1, 2))
        y = y.reshape(g, n, lanes, -1).permute(1, 0, 3, 2).reshape(n, -1, ho, wo)
        return y if self.bias is None else y + self.bias.reshape(1, -1, 1, 1)

    def sample_vectors(self, x, count, gen):
        xp = self.pad(x)
        n, c, h, w = xp.shape
        ho, wo = self._out_size(h, w)
        where = pick(n * ho * wo, count, gen)
        b, rest = where // (ho * wo), where % (ho * wo)
        oh, ow = rest // wo, rest % wo
        (kh, kw), (sh, sw), (dh, dw) = self.kernel_size, self.stride, self.dilation
        nhwc = xp.permute(0, 2, 3, 1)  # a gather of whole pixels: [V, C] rows
        taps = [nhwc[b, oh * sh + i * dh, ow * sw + j * dw] for i in range(kh) for j in range(kw)]
        v = torch.stack(taps, dim=1)  # [V, kk, C]
        g = self.groups
        return v.reshape(v.shape[0], kh * kw, g, c // g).permute(0, 2, 1, 3)
