"""Drive ``SystolicArray`` in Amaranth's simulator at the transaction level.

A *program* is a list of operations, one cycle each unless stated:

    ("load", codes)          R cycles of w_shift: codes[k][c] is W[k][c]'s weight code
    ("vec", values, states)  one vector (a_valid high); states may be None (all NORMAL)
    ("codes", codes)         one vector of integer codes on a_code (``cfg.encoder`` only)
    ("idle", n)              n cycles with nothing presented
    ("reset", n)             n cycles with rst high
    ("cycle", vec, row, swap) one cycle of any port activity (double buffering): ``vec``
                             = (values, states) or None, ``row`` = one row of codes
                             shifted in (w_shift) or None, ``swap`` = w_swap

With ``cfg.double_buffer`` a "load" fills the shadow copy (it becomes active at the
next swap), and the weights recorded for each vector follow docs/top-module.md "Double-buffered
weights": a swap makes the shadow copy as it was before that cycle's shift active.

``simulate`` runs it, drains the pipeline, and returns what went in and what came out,
cycle-stamped, so a test can check values *and* timing against ``sw_ref``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from hw.array import SystolicArray
from hw.params import ArrayConfig

__all__ = [
    "Sent",
    "Trace",
    "simulate",
    "simulate_encoder",
    "run_testbench",
    "pack",
    "unpack_signed",
    "weight_values",
]


def pack(fields, width: int) -> int:
    """Fields (field 0 in the lowest bits) as one unsigned integer, each ``width`` wide."""
    word = 0
    for i, value in enumerate(fields):
        word |= (int(value) & ((1 << width) - 1)) << (i * width)
    return word


def unpack_signed(word: int, count: int, width: int) -> list[int]:
    """``count`` two's-complement fields of ``width`` bits, field 0 in the lowest bits."""
    out = []
    for i in range(count):
        raw = (word >> (i * width)) & ((1 << width) - 1)
        out.append(raw - (1 << width) if raw >> (width - 1) else raw)
    return out


def weight_values(codes, cfg: ArrayConfig) -> np.ndarray:
    """Integer weight values [R, C] of the codes a test loads (APoT decoded by sw_ref)."""
    codes = np.asarray(codes, dtype=np.int64)
    if cfg.weight_format == "apot":
        from sw_ref.apot import decode

        return np.asarray(decode(codes, cfg), dtype=np.int64)
    mask = (1 << cfg.weight_bits) - 1
    raw = codes & mask
    return np.where(raw >> (cfg.weight_bits - 1), raw - (1 << cfg.weight_bits), raw)


@dataclass(frozen=True)
class Sent:
    """One vector as presented: its cycle, slots, states and the weights then loaded.

    With the encoder, ``codes`` holds the codes presented and values/states are empty.
    """

    cycle: int
    values: tuple
    states: tuple
    weights: np.ndarray = field(compare=False)
    codes: tuple | None = None


@dataclass
class Trace:
    """Vectors presented, rst cycles, and outputs observed as (cycle, [y_0..y_C-1])."""

    sent: list = field(default_factory=list)
    resets: list = field(default_factory=list)
    received: list = field(default_factory=list)


def simulate(cfg: ArrayConfig, program, *, vcd: str | None = None) -> Trace:
    """Run ``program`` on a fresh ``SystolicArray(cfg)``; see the module docstring."""
    dut = SystolicArray(cfg)
    R, C = cfg.rows, cfg.cols
    trace = Trace()
    domain = ClockDomain("sync")
    zeros = np.zeros((R, C), dtype=np.int64)

    async def bench(ctx):
        cycle = 0
        weights = zeros

        async def step():
            nonlocal cycle
            if ctx.get(dut.y_valid):
                ys = unpack_signed(ctx.get(dut.y_data), C, cfg.acc_width)
                trace.received.append((cycle, ys))
            await ctx.tick()
            cycle += 1

        shadow = np.zeros((R, C), dtype=np.int64)  # codes, row 0 first

        def shift_in(row):
            nonlocal shadow
            shadow = np.concatenate([np.asarray(row, dtype=np.int64).reshape(1, C), shadow[:-1]])

        def present(values, states):
            values = tuple(int(v) for v in values)
            states = tuple(int(f) for f in (states if states is not None else [0] * R))
            if cfg.encoder:
                raise ValueError("with cfg.encoder, present codes: ('codes', codes)")
            if len(values) != R or len(states) != R:
                raise ValueError(f"a vector has {R} slots, got {len(values)}/{len(states)}")
            ctx.set(dut.a_valid, 1)
            ctx.set(dut.a_data, pack(values, cfg.act_bits))
            if cfg.overq_enabled:
                ctx.set(dut.a_state, pack(states, 2))
            trace.sent.append(Sent(cycle, values, states, weights))

        for op in program:
            kind = op[0]
            if kind == "load":
                codes = np.asarray(op[1], dtype=np.int64).reshape(R, C)
                for k in reversed(range(R)):
                    ctx.set(dut.w_shift, 1)
                    ctx.set(dut.w_data, pack(codes[k], cfg.weight_bits))
                    shift_in(codes[k])
                    await step()
                ctx.set(dut.w_shift, 0)
                if not cfg.double_buffer:
                    weights = weight_values(codes, cfg)
            elif kind == "cycle":
                _, vec, row, swap = op
                if swap:
                    if not cfg.double_buffer:
                        raise ValueError("a swap needs cfg.double_buffer")
                    ctx.set(dut.w_swap, 1)
                    weights = weight_values(shadow, cfg)  # before this cycle's shift
                if vec is not None:
                    present(*vec)
                if row is not None:
                    ctx.set(dut.w_shift, 1)
                    ctx.set(dut.w_data, pack(row, cfg.weight_bits))
                    shift_in(row)
                await step()
                ctx.set(dut.a_valid, 0)
                ctx.set(dut.w_shift, 0)
                if cfg.double_buffer:
                    ctx.set(dut.w_swap, 0)
            elif kind == "vec":
                present(op[1], op[2])
                await step()
                ctx.set(dut.a_valid, 0)
            elif kind == "codes":
                if not cfg.encoder:
                    raise ValueError("('codes', ...) needs cfg.encoder")
                codes = tuple(int(q) for q in op[1])
                if len(codes) != R:
                    raise ValueError(f"a vector has {R} slots, got {len(codes)}")
                ctx.set(dut.a_valid, 1)
                ctx.set(dut.a_code, pack(codes, cfg.code_bits))
                trace.sent.append(Sent(cycle, (), (), weights, codes))
                await step()
                ctx.set(dut.a_valid, 0)
            elif kind == "idle":
                for _ in range(op[1]):
                    await step()
            elif kind == "reset":
                ctx.set(domain.rst, 1)
                for _ in range(op[1]):
                    trace.resets.append(cycle)
                    await step()
                ctx.set(domain.rst, 0)
                weights = zeros
                shadow = np.zeros((R, C), dtype=np.int64)
            else:
                raise ValueError(f"unknown operation {kind!r}")
        for _ in range(cfg.latency + 2):
            await step()

    run_testbench(dut, bench, vcd=vcd, domain=domain)
    return trace


def run_testbench(dut, bench, *, vcd: str | None = None, domain: ClockDomain | None = None):
    """Simulate ``dut`` in an explicit ``sync`` domain (so ``rst`` can be driven) with
    one async testbench, optionally writing a VCD; returns the domain."""
    top = Module()
    top.submodules.dut = dut
    top.domains.sync = domain = domain or ClockDomain("sync")
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return domain


def simulate_encoder(cfg: ArrayConfig, codes, gaps=None, reset_at=(), slots_per_stage=None) -> dict:
    """Run ``hw.encoder.Encoder(cfg)`` (``slots_per_stage`` G: its default unless given) alone on code vectors [N, R] in Amaranth's simulator.

    ``gaps[i]`` idle cycles come before vector i; ``rst`` is high in the cycles listed
    in ``reset_at`` (cycle numbers of the input side). Slot k of a vector presented in
    cycle t is read after the edge that ends cycle t + k (the encoder's skewed output).
    Returns ``{"values": [N, R], "states": [N, R], "valid_out": the cycles (edges)
    after which valid_out was high, "presented": the cycles vectors were presented}``.
    """
    from hw.encoder import Encoder

    dut = Encoder(cfg) if slots_per_stage is None else Encoder(cfg, slots_per_stage)
    codes = np.asarray(codes, dtype=np.int64).reshape(-1, cfg.rows)
    n, R, b = codes.shape[0], cfg.rows, cfg.act_bits
    gaps = np.zeros(n, dtype=np.int64) if gaps is None else np.asarray(gaps, dtype=np.int64)
    words = [pack(v, cfg.code_bits) for v in codes]
    values = np.full((n, R), -1, dtype=np.int64)
    states = np.full((n, R), -1, dtype=np.int64)
    schedule = []  # input cycle -> vector index or None
    for i in range(n):
        schedule += [None] * int(gaps[i]) + [i]
    schedule += [None] * (R + 2)
    resets = set(reset_at)
    at_cycle: dict[int, int] = {}
    valid_out = []

    async def bench(ctx):
        for cycle, index in enumerate(schedule):
            ctx.set(domain.rst, int(cycle in resets))
            if index is not None:
                at_cycle[cycle] = index
                ctx.set(dut.valid_in, 1)
                ctx.set(dut.code, words[index])
            else:
                ctx.set(dut.valid_in, 0)
            await ctx.tick()
            # after the edge closing `cycle`: slot k of the vector from cycle - k
            out_v = ctx.get(dut.value_out)
            out_f = ctx.get(dut.state_out) if R > 1 else 0
            if ctx.get(dut.valid_out):
                valid_out.append(cycle + 1)
            for k in range(R):
                src = at_cycle.get(cycle - k)
                if src is None:
                    continue
                values[src, k] = (out_v >> (k * b)) & ((1 << b) - 1)
                states[src, k] = (out_f >> (2 * (k - 1))) & 3 if k else 0

    top = Module()
    top.submodules.dut = dut
    top.domains.sync = domain = ClockDomain("sync")
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    return {
        "values": values,
        "states": states,
        "valid_out": valid_out,
        "presented": sorted(at_cycle),
    }
