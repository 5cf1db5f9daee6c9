"""Real layers for the co-simulation, by name: ``make sim LAYER=<name> [ORDER=channel]``.

A builder takes (cfg, images, order) and returns a ``verif.layer.LayerCase``: the
weight tiles, the encoded activation tiles, the bit-exact ``sw_ref.overq.golden``
reference and the FP32 output. Add a layer with one entry in ``LAYERS`` (or
``register``); ``verif.sim --layer NAME`` and its tests take it from there.

- ``digits_conv2``: conv2 of the digits CNN (the default, unchanged).
- ``minilm_ffn``: the first FFN output projection of MiniLM-L6 (1536 -> 384, zero point
  at GELU's minimum, int weights per tensor; ``verif.minilm_layer``); ``images`` is the
  number of token vectors. ``make sim-minilm`` runs it with its own options.
- ``effnet_pw``: ``_blocks.3._project_conv`` of EfficientNet-Lite0 (a 1 x 1 conv,
  K = 144 input channels, 40 outputs; BN folded), on the centre crop of the test photo
  ``chelsea``: the first ``EFFNET_PIXELS`` pixels of its 28 x 28 input (the vectors
  are ReLU6 outputs). A4 at the OverQ step of the claims report (99th percentile of
  the positive inputs of 8 calibration crops / 15); weights at cfg's width, one step
  per output channel (a per-column scale after the array; batch-norm folding leaves
  the channels' ranges far apart, and per-tensor 4-bit weights give 6.5 dB here). ``order="channel"`` permutes the input channels (and weight rows) by
  ``sw_ref.overq.channel_order`` chosen on those calibration crops.
"""

from __future__ import annotations

from typing import Callable

from hw.params import ArrayConfig
from verif.layer import LayerCase, build_layer_case, lower_matmul

__all__ = ["LAYERS", "ORDERS", "build", "names", "register"]

ORDERS = ("natural", "channel")
EFFNET_LAYER = "_blocks.3._project_conv"
EFFNET_PIXELS = 64
EFFNET_CALIB = 8


def _digits_conv2(cfg: ArrayConfig, images: int, order: str) -> LayerCase:
    if order != "natural":
        raise ValueError("digits_conv2 has no channel order (its vectors are im2col patches)")
    return build_layer_case(cfg, images=images)


def effnet_inputs(layer: str = EFFNET_LAYER, photo: str = "chelsea", calib: int = EFFNET_CALIB):
    """(test vectors [P, K], FP32 outputs [P, O], calibration vectors, W [O, K], bias [O])."""
    import torch

    from sw_ref.nets import photos
    from sw_ref.nets.efficientnet import FoldedLite0

    net = FoldedLite0()
    if net.kinds.get(layer) != "project":
        raise ValueError(f"{layer} is not a projection (pointwise, unsigned) layer")
    seen = {}

    def grab(name, t):
        if name == layer:
            seen["x"] = t.reshape(-1, t.shape[-1]).clone()
        return t

    def out_hook(name, y):
        if name == layer:
            seen["y"] = y.reshape(-1, y.shape[-1]).clone()

    with torch.no_grad():
        net(photos.images("calib", calib), quant=grab)
        x_cal = seen["x"].double().numpy()
        net(photos.center_image(photo), quant=grab, out_hook=out_hook)
    return (
        seen["x"].double().numpy(),
        seen["y"].double().numpy(),
        x_cal,
        net.weights[layer].double().numpy(),
        net.bias[layer].double().numpy(),
    )


def _effnet_pw(cfg: ArrayConfig, images: int, order: str) -> LayerCase:
    from sw_ref import overq
    from sw_ref.effnet_eval import overq_step

    x, y, x_cal, w, bias = effnet_inputs()
    n = EFFNET_PIXELS * max(1, images)
    x, y = x[:n], y[:n]
    step = overq_step(x_cal.ravel(), cfg.act_bits)
    if order == "channel":
        perm = overq.channel_order(x_cal, step, cfg)
        x, w = x[:, perm], w[:, perm]
    return lower_matmul(
        cfg,
        f"effnet {EFFNET_LAYER} ({order} order)",
        images,
        x,
        w,
        step,
        bias,
        y,
        w_per_channel=True,
    )


def _minilm_ffn(cfg: ArrayConfig, images: int, order: str) -> LayerCase:
    """MiniLM-L6's first FFN output projection (``verif.minilm_layer``): ``images`` is the
    number of token vectors (of the first test sentence), zero point at GELU's minimum."""
    from verif.minilm_layer import build_minilm_case

    if cfg.weight_format != "int" or cfg.encoder:
        raise ValueError("minilm_ffn supports int weights without --encoder")
    return build_minilm_case(cfg, sentences=1, max_tokens=max(1, images), order=order == "channel")


LAYERS: dict[str, Callable[[ArrayConfig, int, str], LayerCase]] = {
    "digits_conv2": _digits_conv2,
    "effnet_pw": _effnet_pw,
    "minilm_ffn": _minilm_ffn,
}


def names() -> list[str]:
    return list(LAYERS)


def register(name: str, builder: Callable[[ArrayConfig, int, str], LayerCase]) -> None:
    LAYERS[name] = builder


def build(name: str, cfg: ArrayConfig, images: int = 1, order: str = "natural") -> LayerCase:
    """The layer case ``name`` for ``cfg`` (``order``: natural | channel)."""
    if name not in LAYERS:
        raise ValueError(f"unknown layer {name!r}; allowed: {', '.join(LAYERS)}")
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}; allowed: {', '.join(ORDERS)}")
    return LAYERS[name](cfg, images, order)
