"""The layer engine's memories for one network at batch 1: sizes and SRAM figures.

The organisation is SPEC 11's (docs/explore.md, "Cost model"): an activation memory
holding a layer's input and output in their stored formats (ping-pong between
layers), a double-buffered weight tile (2 x R x C weight codes), and an accumulator
memory for one N tile (M x C accumulators, wide enough for the layer's K). Two modes:

- ``sized``: every memory as large as the network's largest layer needs, so nothing
  but the weights (and the network's input and output) goes to DRAM;
- ``budget``: one fixed on-chip SRAM (Gemmini's 256 KiB scratchpad by default);
  a layer whose input, output and accumulators do not fit is cut into row chunks
  of M, and its activations go through DRAM (energy.py counts it).

SRAM figures at 45 nm (sources in docs/explore.md):
- area: 0.74 um^2 per bit, the density of Intel's 45 nm 153 Mbit SRAM test chip
  (119 mm^2; 0.346 um^2 6T cell, Mistry et al., IEDM 2007): periphery included;
- energy: Horowitz, ISSCC 2014, 64-bit access of an 8 KB / 32 KB / 1 MB SRAM: 10,
  20, 100 pJ; per bit, interpolated log-log in the capacity between those points
  (extrapolated with the end slopes outside them).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, exp, log, log2

from .layers import Layer

__all__ = ["SRAM_UM2_PER_BIT", "SRAM_POINTS", "GEMMINI_BYTES", "sram_pj_per_bit",
           "Memories", "size_memories", "acc_bits_for", "stored_bits"]

SRAM_UM2_PER_BIT = 119e6 / (153 * 2**20)  # Intel 45 nm 153 Mbit test chip, 119 mm^2
# (capacity in bytes, pJ per 64-bit access): Horowitz, ISSCC 2014.
SRAM_POINTS = ((8 * 1024, 10.0), (32 * 1024, 20.0), (1024 * 1024, 100.0))
GEMMINI_BYTES = 256 * 1024  # Gemmini's default scratchpad


def sram_pj_per_bit(capacity_bits: float) -> float:
    """Energy of reading or writing one bit of an SRAM of ``capacity_bits``."""
    pts = [(log(c * 8), log(e / 64)) for c, e in SRAM_POINTS]
    x = log(max(capacity_bits, 1.0))
    (x0, y0), (x1, y1) = (pts[0], pts[1]) if x < pts[1][0] else (pts[1], pts[2])
    return exp(y0 + (x - x0) * (y1 - y0) / (x1 - x0))


def acc_bits_for(array_acc_bits: int, k: int, rows: int) -> int:
    """Accumulator width for K up to ``k``: the array's output summed over K tiles."""
    tiles = ceil(k / rows)
    return array_acc_bits + (ceil(log2(tiles)) if tiles > 1 else 0)


def stored_bits(layer_role: str, act_bits: int, overq_bits: float) -> float:
    """Bits per stored slot of a tensor in ``layer_role``."""
    return {"wide": 8.0, "act": float(act_bits), "overq": float(overq_bits)}[layer_role]


@dataclass(frozen=True)
class Memories:
    """Capacities in bits and the area they take."""

    activation_bits: int
    weight_bits: int
    accumulator_bits: int
    mode: str

    @property
    def total_bits(self) -> int:
        return self.activation_bits + self.weight_bits + self.accumulator_bits

    @property
    def area_um2(self) -> float:
        return self.total_bits * SRAM_UM2_PER_BIT

    def to_json(self) -> dict:
        return {"mode": self.mode, "activation_bits": self.activation_bits,
                "weight_bits": self.weight_bits, "accumulator_bits": self.accumulator_bits,
                "total_bits": self.total_bits, "area_um2": round(self.area_um2, 1)}


def layer_bits(layers, i: int, act_bits: int, overq_bits: float) -> tuple[float, float]:
    """(input, output) bits per slot of layer ``i``: the output takes the next layer's
    input format; the network's last output is 8 bits."""
    layer = layers[i]
    bin_ = stored_bits(layer.in_role, act_bits, overq_bits)
    bout = (stored_bits(layers[i + 1].in_role, act_bits, overq_bits)
            if i + 1 < len(layers) else 8.0)
    return bin_, bout


def size_memories(layers: tuple[Layer, ...], rows: int, cols: int, act_bits: int,
                  overq_bits: float, weight_bits: int, array_acc_bits: int,
                  mode: str = "sized", budget_bytes: int = GEMMINI_BYTES) -> Memories:
    """The engine's memories for ``layers`` on an R x C array.

    ``overq_bits``: bits per slot of the OverQ-encoded tensors (= act_bits without
    OverQ). In ``budget`` mode the weight tile and the accumulators come out of the
    budget and the activations get the rest.
    """
    wtile = 2 * rows * cols * weight_bits
    act = 0
    acc = 0
    for i, layer in enumerate(layers):
        bin_, bout = layer_bits(layers, i, act_bits, overq_bits)
        act = max(act, ceil(layer.in_elems * bin_ + layer.out_elems * bout))
        if layer.kind == "gemm":
            acc = max(acc, layer.m * cols * acc_bits_for(array_acc_bits, layer.k, rows))
    if mode == "sized":
        return Memories(act, wtile, acc, mode)
    if mode != "budget":
        raise ValueError(f"memory mode is sized or budget, got {mode!r}")
    total = budget_bytes * 8
    return Memories(total - wtile, wtile, 0, mode)
