"""Energy of one inference on the layer engine: the array, the SRAMs, DRAM.

Counted from the engine's dataflow (SPEC 11; docs/explore.md, "Cost model"), per
command X [M, K] x W [K, N] on an R x C array, KT = ceil(K / R), NT = ceil(N / C):

- array: KT * NT passes of max(M, R) cycles each (a pass streams the M vectors of
  one K tile against one weight tile; the next tile's R weight-shift cycles hide
  under it, or set the pace when M < R), plus the array latency once;
- activation memory: X read once per N tile (NT * M * K slots), the output written
  once (M * N slots), each in its stored format;
- weights: read from DRAM once and written to and read from the weight tile once
  (K * N codes);
- accumulators: each pass writes its M x C' partial sums (C' = the columns of that N
  tile that exist) and every pass after the first reads them back, then the
  requantizer reads the finished sums once: KT * M * N writes and KT * M * N reads;
- a depthwise conv is not a reduction over channels: its M * K * N MACs are priced
  at the point's MAC energy, its input read and its output written once.

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
from .memory import (GEMMINI_BYTES, Memories, acc_bits_for, layer_bits, sram_pj_per_bit)

__all__ = ["MULT8_PJ", "ADD8_PJ", "ADD32_PJ", "DRAM_PJ_PER_BIT", "mac_reference_pj",
           "Counts", "count_layer", "count_network", "energy_pj"]

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
        for k in ("cycles", "depthwise_macs", "act_read_bits", "act_write_bits",
                  "weight_sram_bits", "acc_read_bits", "acc_write_bits", "dram_bits"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.chunks.update(other.chunks)

    def to_json(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "chunks"}


def _bits(slots: int, bits_per_slot: float) -> int:
    return ceil(slots * bits_per_slot)


def count_layer(layer: Layer, rows: int, cols: int, in_bits: float, out_bits: float,
                weight_bits: int, acc_bits: int, latency: int) -> Counts:
    """The counts of one command, everything on chip (DRAM: its weights only)."""
    c = Counts()
    w = layer.weights * weight_bits
    c.weight_sram_bits = 2 * w
    c.dram_bits = w
    c.act_write_bits = _bits(layer.out_elems, out_bits)
    if layer.kind == "depthwise":
        c.depthwise_macs = layer.macs
        c.act_read_bits = _bits(layer.in_elems, in_bits)
        return c
    kt, nt = ceil(layer.k / rows), ceil(layer.n / cols)
    c.cycles = kt * nt * max(layer.m, rows) + latency
    c.act_read_bits = _bits(nt * layer.m * layer.k, in_bits)
    c.acc_write_bits = kt * layer.m * layer.n * acc_bits
    c.acc_read_bits = kt * layer.m * layer.n * acc_bits
    return c


def count_network(layers: tuple[Layer, ...], rows: int, cols: int, act_bits: int,
                  overq_bits: float, weight_bits: int, array_acc_bits: int, latency: int,
                  memories: Memories) -> Counts:
    """Every command of one inference; in ``budget`` mode the DRAM spills too.

    The network's input is read from DRAM and its output written there. In budget
    mode a layer whose input + output (+ accumulators) exceed the activation share
    runs in ceil(need / share) row chunks: its weights stream once per chunk, its
    input comes from DRAM and its output goes there (and the next layer reads it
    back).
    """
    total = Counts()
    from_dram = True  # the network's input
    for i, layer in enumerate(layers):
        bin_, bout = layer_bits(layers, i, act_bits, overq_bits)
        acc = acc_bits_for(array_acc_bits, layer.k, rows) if layer.kind == "gemm" else 0
        c = count_layer(layer, rows, cols, bin_, bout, weight_bits, acc, latency)
        need = (_bits(layer.in_elems, bin_) + _bits(layer.out_elems, bout)
                + (layer.m * cols * acc if layer.kind == "gemm" else 0))
        chunks = 1 if memories.mode == "sized" else ceil(need / memories.activation_bits)
        spill = chunks > 1
        c.dram_bits *= chunks
        if from_dram or spill:
            c.dram_bits += _bits(layer.in_elems, bin_)
        last = i + 1 == len(layers)
        if spill or last:
            c.dram_bits += _bits(layer.out_elems, bout)
        from_dram = spill
        c.chunks = {layer.name: chunks}
        total.add(c)
    return total


def energy_pj(counts: Counts, memories: Memories, array_pj_per_cycle: float,
              mac_pj: float) -> dict:
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
