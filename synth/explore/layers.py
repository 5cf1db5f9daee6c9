"""The layers of a network at batch 1, as the layer engine sees them.

Each ``Layer`` is one engine command (SPEC 11): X [M, K] against W [K, N] for a
conv (im2col: M output pixels, K = C_in * kh * kw) or a linear layer (M tokens), or
a depthwise conv, which does not reduce over channels and so does not run on the
R x R array (it is priced per MAC, docs/cost-model.md). ``in_role`` says how its input
is stored: ``overq`` (the tensor the exploration OverQ-encodes), ``act`` (plain at
the point's activation width) or ``wide`` (8 bits: the image, the tensors the
network's evaluation keeps at 8 bits). A layer's output is stored in the format of
the next layer's input; the last output at 8 bits.

Shapes come from a forward pass of the architecture on one input (random weights:
only shapes are read), so nothing here loads a checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

__all__ = ["Layer", "network_layers", "MINILM_TOKENS"]

# Sequence length of one MiniLM inference (all-MiniLM-L6-v2 was trained at 128).
MINILM_TOKENS = 128


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str  # "gemm" (on the array) or "depthwise"
    m: int  # vectors (output pixels, tokens)
    k: int  # reduction length (depthwise: kh * kw)
    n: int  # outputs per vector (depthwise: channels)
    in_elems: int  # stored input tensor, slots
    out_elems: int  # stored output tensor, slots
    in_role: str  # "overq" | "act" | "wide"
    weights: int  # weight codes

    @property
    def macs(self) -> int:
        return self.m * self.k * self.n


def _torch_layers(model, x, role) -> list[Layer]:
    """Conv2d / Linear layers of ``model`` in execution order, shapes from one pass."""
    import torch
    from torch import nn

    seen = []

    def hook(mod, inp, out, name):
        seen.append((name, mod, tuple(inp[0].shape), tuple(out.shape)))

    handles = [
        m.register_forward_hook(lambda mod, i, o, n=n: hook(mod, i, o, n))
        for n, m in model.named_modules()
        if isinstance(m, (nn.Conv2d, nn.Linear))
    ]
    try:
        with torch.no_grad():
            model.eval()(x)
    finally:
        for h in handles:
            h.remove()
    out = []
    for name, mod, ins, outs in seen:
        in_elems, out_elems = _prod(ins), _prod(outs)
        if isinstance(mod, nn.Linear):
            m = in_elems // mod.in_features
            out.append(
                Layer(
                    name,
                    "gemm",
                    m,
                    mod.in_features,
                    mod.out_features,
                    in_elems,
                    out_elems,
                    role(name, "linear"),
                    mod.weight.numel(),
                )
            )
            continue
        kh, kw = mod.kernel_size
        pixels = outs[2] * outs[3]
        if mod.groups == 1:
            out.append(
                Layer(
                    name,
                    "gemm",
                    pixels,
                    mod.in_channels * kh * kw,
                    mod.out_channels,
                    in_elems,
                    out_elems,
                    role(name, "conv"),
                    mod.weight.numel(),
                )
            )
        else:
            if mod.groups != mod.in_channels or mod.out_channels != mod.in_channels:
                raise ValueError(f"{name}: only depthwise grouped convs are modelled")
            out.append(
                Layer(
                    name,
                    "depthwise",
                    pixels,
                    kh * kw,
                    mod.out_channels,
                    in_elems,
                    out_elems,
                    role(name, "depthwise"),
                    mod.weight.numel(),
                )
            )
    return out


def _prod(shape) -> int:
    n = 1
    for s in shape:
        n *= s
    return n


def _efficientnet() -> list[Layer]:
    import torch

    from sw_ref.nets.efficientnet import EfficientNetLite0, layer_kinds

    model = EfficientNetLite0()
    kinds = layer_kinds(model)
    # As the exploration quantizes it: stem input (the image) and classifier input at
    # 8 bits, projection inputs OverQ-encoded, every other input at A bits.
    roles = {"stem": "wide", "fc": "wide", "project": "overq"}
    torch.manual_seed(0)
    return _torch_layers(
        model, torch.zeros(1, 3, 224, 224), lambda name, _: roles.get(kinds[name], "act")
    )


def _digits() -> list[Layer]:
    import torch

    from sw_ref.model import DigitsCNN

    # Every layer's input is OverQ-encoded at A bits in the digits exploration.
    return _torch_layers(DigitsCNN(), torch.zeros(1, 1, 8, 8), lambda name, _: "overq")


def _minilm(tokens: int = MINILM_TOKENS) -> list[Layer]:
    """The 36 linear layers of all-MiniLM-L6-v2 on ``tokens`` tokens.

    The FFN output projections' inputs (GELU outputs) are OverQ-encoded; the
    exploration keeps every other activation in float, priced here at 8 bits. The
    attention score and context products (2 * tokens^2 * 384 MACs per layer, 5 % of
    the MACs at 128 tokens) are not engine commands on weights and are left out.
    """
    from sw_ref.nets.minilm import MiniLMConfig, linear_layer_kinds

    cfg = MiniLMConfig()
    h, f = cfg.hidden, cfg.intermediate
    shapes = {
        "attention.self.query": (h, h),
        "attention.self.key": (h, h),
        "attention.self.value": (h, h),
        "attention.output.dense": (h, h),
        "intermediate.dense": (h, f),
        "output.dense": (f, h),
    }
    out = []
    for name, kind in linear_layer_kinds(cfg).items():
        k, n = shapes[name.split(".", 3)[3]]
        out.append(
            Layer(
                name,
                "gemm",
                tokens,
                k,
                n,
                tokens * k,
                tokens * n,
                "overq" if kind == "zero-point" else "wide",
                k * n,
            )
        )
    return out


@lru_cache(maxsize=None)
def network_layers(net: str) -> tuple[Layer, ...]:
    """The engine commands of one inference of ``net`` at batch 1."""
    table = {"efficientnet_lite0": _efficientnet, "minilm_l6": _minilm, "digits": _digits}
    if net not in table:
        raise ValueError(f"no layer list for {net!r}; known: {', '.join(table)}")
    return tuple(table[net]())
