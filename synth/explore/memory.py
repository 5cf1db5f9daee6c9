"""The layer engine's memories for one network at batch 1: sizes and SRAM figures.

The organisation is SPEC 11's (docs/cost-model.md): an activation memory
holding a layer's input and output in their stored formats (ping-pong between
layers), a double-buffered weight tile (2 x R x C weight codes), and an accumulator
memory for one N tile (M x C accumulators, wide enough for the layer's K). Two modes:

- ``sized``: every memory as large as the network's largest layer needs (activation
  memory: the largest input X + output, both as stored), so nothing
  but the weights (and the network's input and output) goes to DRAM;
- ``budget``: one fixed on-chip SRAM (Gemmini's 256 KiB scratchpad by default);
  a layer whose input, output and accumulators do not fit is cut into row chunks
  of M, and its activations go through DRAM (energy.py counts it).

SRAM figures at 45 nm (sources in docs/cost-model.md):
- area: 0.74 um^2 per bit, the density of Intel's 45 nm 153 Mbit SRAM test chip
  (119 mm^2; 0.346 um^2 6T cell, Mistry et al., IEDM 2007): periphery included;
- energy: Horowitz, ISSCC 2014, 64-bit access of an 8 KB / 32 KB / 1 MB SRAM: 10,
  20, 100 pJ; per bit, interpolated log-log in the capacity between those points
  (extrapolated with the end slopes outside them).
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, exp, log

from hw.params import _signed_bits_for

from .layers import Layer

__all__ = [
    "SRAM_UM2_PER_BIT",
    "SRAM_POINTS",
    "GEMMINI_BYTES",
    "sram_pj_per_bit",
    "Memories",
    "Storage",
    "size_memories",
    "acc_bits_for",
    "output_bits",
]

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


def acc_bits_for(output_range: tuple[int, int], k: int, rows: int) -> int:
    """Accumulator width for a reduction of ``k``: overflow-free for the sum of
    ceil(k / R) array outputs (``output_range``), as the layer engine sizes it."""
    tiles = ceil(k / rows)
    lo, hi = output_range
    return _signed_bits_for(lo * tiles, hi * tiles)


@dataclass(frozen=True)
class Storage:
    """Bits of one stored R-slot tile per tensor role (``Layer.in_role``)."""

    rows: int
    act_tile_bits: int  # a plain tile at the point's activation width: R b
    overq_tile_bits: int  # a tile of an OverQ-encoded tensor in its stored format

    def tile_bits(self, role: str) -> int:
        return {"wide": 8 * self.rows, "act": self.act_tile_bits, "overq": self.overq_tile_bits}[
            role
        ]

    def x_bits(self, layer: Layer) -> int:
        """The layer's input as the engine holds it: M x ceil(K / R) tiles (a short
        last tile padded) for a command on the array; a depthwise conv's input tensor
        (channels in tiles of R per pixel)."""
        if layer.kind == "gemm":
            return layer.m * ceil(layer.k / self.rows) * self.tile_bits(layer.in_role)
        pixels = layer.in_elems // layer.n
        return pixels * ceil(layer.n / self.rows) * self.tile_bits(layer.in_role)


def output_bits(layers, i: int, storage: Storage) -> int:
    """Layer ``i``'s output as stored: the next layer's input; the last one 8-bit."""
    if i + 1 < len(layers):
        return storage.x_bits(layers[i + 1])
    return layers[i].out_elems * 8


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
        return {
            "mode": self.mode,
            "activation_bits": self.activation_bits,
            "weight_bits": self.weight_bits,
            "accumulator_bits": self.accumulator_bits,
            "total_bits": self.total_bits,
            "area_um2": round(self.area_um2, 1),
        }


def size_memories(
    layers: tuple[Layer, ...],
    cols: int,
    storage: Storage,
    weight_bits: int,
    output_range: tuple[int, int],
    mode: str = "sized",
    budget_bytes: int = GEMMINI_BYTES,
) -> Memories:
    """The engine's memories for ``layers`` on an R x C array (R = ``storage.rows``).

    In ``budget`` mode the weight tile comes out of the budget and activations and
    accumulators share the rest.
    """
    rows = storage.rows
    wtile = 2 * rows * cols * weight_bits
    act = acc = 0
    for i, layer in enumerate(layers):
        act = max(act, storage.x_bits(layer) + output_bits(layers, i, storage))
        if layer.kind == "gemm":
            acc = max(acc, layer.m * cols * acc_bits_for(output_range, layer.k, rows))
    if mode == "sized":
        return Memories(act, wtile, acc, mode)
    if mode != "budget":
        raise ValueError(f"memory mode is sized or budget, got {mode!r}")
    return Memories(budget_bytes * 8 - wtile, wtile, 0, mode)
