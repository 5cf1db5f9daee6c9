"""Energy of one inference on the layer engine: the array, the SRAMs, DRAM.

Counted from the engine's dataflow (SPEC 11; docs/cost-model.md), per
command X [M, K] x W [K, N] on an R x C array, KT = ceil(K / R), NT = ceil(N / C):

- array: KT * NT passes of max(M, R) cycles each (a pass streams the M vectors of
  one K tile against one weight tile; the next tile's R weight-shift cycles hide
  under it, or set the pace when M < R), plus the array latency once;
- activation memory: X (M x KT tiles of R slots in the stored format) written once
  as it arrives and read once per N tile;
- weights: read from DRAM once (K * N codes), written to and read from the
  double-buffered tile once (KT * NT tiles of R x C codes);
- accumulators: one word of C accumulators per vector and N tile; read on every K
  tile but the first, written on every K tile but the last (the last goes to the
  requantizer): NT * (KT - 1) * M words each way;
- a depthwise conv is not a reduction over channels: its M * K * N MACs are priced
  at the point's MAC energy, its input written and read once.

The array's energy per cycle is its area times a 45 nm energy density fitted to
Horowitz (ISSCC 2014): a plain A8W8 MAC (8-bit multiply 0.2 pJ, plus an accumulator
add interpolated between 8-bit 0.03 pJ and 32-bit 0.1 pJ) over the synthesized area
of one A8W8 PE of the same array size. DRAM: 640 pJ per 32-bit word (Han et al.,
2015, from Horowitz) = 20 pJ per bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from math import ceil

from .layers import Layer
from .memory import GEMMINI_BYTES, Memories, Storage, acc_bits_for, output_bits, sram_pj_per_bit

__all__ = [
    "MULT8_PJ",
    "ADD8_PJ",
    "ADD32_PJ",
    "DRAM_PJ_PER_BIT",
    "mac_reference_pj",
    "Counts",
    "count_layer",
    "count_network",
    "energy_pj",
]

MULT8_PJ = 0.2  # Horowitz ISSCC 2014, 45 nm, 8-bit integer multiply
ADD8_PJ = 0.03  # 8-bit integer add
ADD32_PJ = 0.1  # 32-bit integer add
DRAM_PJ_PER_BIT = 640.0 / 32  # Han et al. 2015 (Horowitz): 640 pJ per 32-bit DRAM access


def add_pj(bits: int) -> float:
    """An add of ``bits`` bits, linear between Horowitz's 8-bit and 32-bit adds."""
    return ADD8_PJ + (ADD32_PJ - ADD8_PJ) * (bits - 8) / (32 - 8)


def mac_reference_pj(acc_bits: int) -> float:
    """One 8-bit multiply and one accumulator add of ``acc_bits`` (the A8W8 PE)."""
    return MULT8_PJ + add_pj(acc_bits)


@dataclass
class Counts:
    """What one inference does; every field an exact integer (bits or cycles)."""

    cycles: int = 0  # array cycles (gemm commands)
    depthwise_macs: int = 0
    act_read_bits: int = 0
    act_write_bits: int = 0
    weight_sram_bits: int = 0  # written + read (each weight code once each)
    acc_read_bits: int = 0
    acc_write_bits: int = 0
    dram_bits: int = 0
    chunks: dict = field(default_factory=dict)  # layer -> row chunks (budget mode)

    def add(self, other: "Counts") -> None:
        for k in (
            "cycles",
            "depthwise_macs",
            "act_read_bits",
            "act_write_bits",
            "weight_sram_bits",
            "acc_read_bits",
            "acc_write_bits",
            "dram_bits",
        ):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.chunks.update(other.chunks)

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "chunks"}


def count_layer(
    layer: Layer, cols: int, storage: Storage, weight_bits: int, acc_bits: int, latency: int
) -> Counts:
    """The counts of one command as the layer engine runs it (DRAM: its weights only).

    (n tile, k tile, m) nesting, one vector per cycle: X is written into the
    activation memory once as it arrives (M x KT stored tiles) and read once per N
    tile; a pass reads the accumulator word of its M rows (C accumulators) unless it
    is the first K tile and writes it back unless it is the last (which goes to the
    requantizer); weight tiles (R x C codes, a short tile padded) are written into
    and read from the double-buffered tile once.
    """
    rows = storage.rows
    c = Counts()
    x = storage.x_bits(layer)
    c.act_write_bits = x
    c.dram_bits = layer.weights * weight_bits
    if layer.kind == "depthwise":
        c.depthwise_macs = layer.macs
        c.act_read_bits = x
        c.weight_sram_bits = 2 * layer.weights * weight_bits
        return c
    kt, nt = ceil(layer.k / rows), ceil(layer.n / cols)
    c.cycles = kt * nt * max(layer.m, rows) + latency
    c.act_read_bits = nt * x
    c.acc_write_bits = c.acc_read_bits = nt * (kt - 1) * layer.m * cols * acc_bits
    c.weight_sram_bits = 2 * kt * nt * rows * cols * weight_bits
    return c


def count_network(
    layers: tuple[Layer, ...],
    cols: int,
    storage: Storage,
    weight_bits: int,
    output_range: tuple[int, int],
    latency: int,
    memories: Memories,
) -> Counts:
    """Every command of one inference; in ``budget`` mode the DRAM spills too.

    The network's input (the image or the tokens' activations, as stored) is read
    from DRAM and its output written there. In budget mode a layer whose input X,
    output and accumulators exceed the activation share runs in ceil(need / share)
    row chunks of M: its weights stream once per chunk, its input comes from DRAM
    and its output goes there (and the next layer reads it back).
    """
    total = Counts()
    from_dram = True
    for i, layer in enumerate(layers):
        acc = acc_bits_for(output_range, layer.k, storage.rows) if layer.kind == "gemm" else 0
        c = count_layer(layer, cols, storage, weight_bits, acc, latency)
        x, out = storage.x_bits(layer), output_bits(layers, i, storage)
        need = x + out + (layer.m * cols * acc if layer.kind == "gemm" else 0)
        chunks = 1 if memories.mode == "sized" else ceil(need / memories.activation_bits)
        spill = chunks > 1
        c.dram_bits *= chunks
        if i == 0:
            c.dram_bits += layer.in_elems * storage.tile_bits(layer.in_role) // storage.rows
        elif spill or from_dram:
            c.dram_bits += x
        if spill or i + 1 == len(layers):
            c.dram_bits += out
        from_dram = spill
        c.chunks = {layer.name: chunks}
        total.add(c)
    return total


def energy_pj(counts: Counts, memories: Memories, array_pj_per_cycle: float, mac_pj: float) -> dict:
    """Energy in pJ by where it is spent; SRAM energy per bit from each memory's size.

    In budget mode one SRAM of the whole budget holds activations and accumulators.
    """
    if memories.mode == "budget":
        e_act = e_acc = sram_pj_per_bit(memories.activation_bits + memories.weight_bits)
    else:
        e_act = sram_pj_per_bit(memories.activation_bits)
        e_acc = sram_pj_per_bit(memories.accumulator_bits)
    e_w = sram_pj_per_bit(memories.weight_bits)
    parts = {
        "array": counts.cycles * array_pj_per_cycle + counts.depthwise_macs * mac_pj,
        "activation_sram": (counts.act_read_bits + counts.act_write_bits) * e_act,
        "weight_sram": counts.weight_sram_bits * e_w,
        "accumulator_sram": (counts.acc_read_bits + counts.acc_write_bits) * e_acc,
        "dram": counts.dram_bits * DRAM_PJ_PER_BIT,
    }
    parts["total"] = sum(parts.values())
    return parts


__all__ += ["GEMMINI_BYTES"]
