"""Run a network with quantized weights and activations, layer by layer.

Every ``nn.Conv2d`` / ``nn.Linear`` of a model copy is replaced by a ``QuantLayer``
that fake-quantizes its input (uniformly, or OverQ-encoded along the reduction axis
the way the array streams it) and multiplies by fake-quantized weights; each layer
records its output so that it can be compared with the FP32 network (SQNR).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hw.params import ArrayConfig

from . import overq, quant

__all__ = [
    "OverQAct",
    "QuantLayer",
    "UniformAct",
    "capture",
    "quant_layers",
    "replace_layers",
    "sqnr_db",
]

LAYER_TYPES = (nn.Conv2d, nn.Linear)


def quant_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The Conv2d/Linear layers in definition order (OCS-wrapped layers included)."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, LAYER_TYPES)]


def layer_key(name: str) -> str:
    """The original layer name of a possibly OCS-wrapped layer (``conv2.inner``)."""
    return name.removesuffix(".inner")


def sqnr_db(ref: torch.Tensor, test: torch.Tensor) -> float:
    """10 log10(signal power / error power); inf for an exact match."""
    err = float(((test.double() - ref.double()) ** 2).sum())
    sig = float((ref.double() ** 2).sum())
    return float("inf") if err == 0 else 10.0 * np.log10(sig / err)


@torch.no_grad()
def capture(model: nn.Module, x: torch.Tensor) -> tuple[dict, dict, torch.Tensor]:
    """FP32 (inputs, outputs) of every quantizable layer, keyed by layer name, and logits."""
    inputs, outputs, handles = {}, {}, []
    for name, mod in quant_layers(model):

        def hook(m, inp, out, key=layer_key(name)):
            inputs[key], outputs[key] = inp[0].detach(), out.detach()

        handles.append(mod.register_forward_hook(hook))
    try:
        logits = model(x)
    finally:
        for h in handles:
            h.remove()
    return inputs, outputs, logits


@dataclass
class UniformAct:
    """Unsigned uniform fake-quant of activations with threshold ``alpha``."""

    alpha: float
    bits: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return quant.fake_quant(x, self.alpha, self.bits, signed=False)


@dataclass
class OverQAct:
    """OverQ encode + decode of activation vectors [..., K] in tiles of ``cfg.rows``.

    Accumulates the encoder's outlier statistics over every call.
    """

    step: float
    cfg: ArrayConfig
    outliers: int = 0
    handled: int = 0
    precise: int = 0
    sq_err: float = 0.0
    slots: int = 0

    vectorwise: bool = field(default=True, init=False)  # needs the im2col view

    def __call__(self, patches: torch.Tensor) -> torch.Tensor:
        out, st = overq.reconstruct(patches.detach().cpu().numpy(), self.step, self.cfg)
        self.outliers += st.outliers
        self.handled += st.handled
        self.precise += st.precise
        self.sq_err += st.mse * patches.numel()
        self.slots += patches.numel()
        return torch.from_numpy(out).to(patches.dtype)

    @property
    def coverage(self) -> float:
        return self.handled / self.outliers if self.outliers else 1.0


class QuantLayer(nn.Module):
    """A Conv2d/Linear with fixed (fake-quantized) weights and an activation quantizer.

    An ``act`` with ``vectorwise = True`` sees the layer's reduction vectors as the
    array receives them: for a conv, im2col patches [N, L, K] with K ordered kernel
    row, kernel column, then channel (``channel_minor``, NHWC-style; neighbouring
    slots hold different channels of one pixel, which are less correlated than the
    neighbouring pixels of one channel, so an outlier finds a zero nearby more often)
    or PyTorch's unfold order (channel outermost) with ``channel_minor=False``. The
    weights are permuted the same way. Any other ``act`` is applied elementwise.
    """

    def __init__(
        self,
        layer: nn.Module,
        weight: torch.Tensor,
        act: Callable | None,
        name: str,
        record: dict,
        channel_minor: bool = True,
    ):
        super().__init__()
        self.layer, self.act, self.name, self.record = layer, act, name, record
        self.channel_minor = channel_minor
        self.register_buffer("weight", weight.detach().to(layer.weight.dtype))

    def _conv_vectorwise(self, x: torch.Tensor) -> torch.Tensor:
        conv = self.layer
        n, _, h, w = x.shape
        patches = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
        patches = patches.transpose(1, 2)  # [N, L, C*kh*kw], channel outermost
        weight = self.weight.reshape(self.weight.shape[0], -1)
        if self.channel_minor:
            c = self.weight.shape[1]
            patches = patches.reshape(n, -1, c, patches.shape[-1] // c).transpose(2, 3)
            patches = patches.reshape(n, -1, weight.shape[1])
            weight = self.weight.reshape(weight.shape[0], c, -1).transpose(1, 2)
            weight = weight.reshape(weight.shape[0], -1)
        out = self.act(patches) @ weight.T
        if conv.bias is not None:
            out = out + conv.bias
        size = [
            (dim + 2 * p - d * (k - 1) - 1) // st + 1
            for dim, p, d, k, st in zip(
                (h, w), conv.padding, conv.dilation, conv.kernel_size, conv.stride
            )
        ]
        return out.transpose(1, 2).reshape(n, -1, *size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        layer = self.layer
        vectorwise = getattr(self.act, "vectorwise", False)
        if isinstance(layer, nn.Conv2d) and vectorwise:
            if layer.groups != 1 or layer.padding_mode != "zeros":
                raise ValueError("vectorwise activations need groups=1 and zero padding")
            out = self._conv_vectorwise(x)
        else:
            if self.act is not None:
                x = self.act(x)
            if isinstance(layer, nn.Conv2d):
                out = F.conv2d(
                    x,
                    self.weight,
                    layer.bias,
                    layer.stride,
                    layer.padding,
                    layer.dilation,
                    layer.groups,
                )
            else:
                out = F.linear(x, self.weight, layer.bias)
        self.record[self.name] = out.detach()
        return out


def replace_layers(model: nn.Module, make: Callable[[str, nn.Module], QuantLayer]) -> nn.Module:
    """A copy of ``model`` with each quantizable layer replaced by ``make(name, layer)``."""
    model = copy.deepcopy(model)
    for name, mod in quant_layers(model):
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, attr, make(name, mod))
    return model
