"""Drivers of ``top``'s inputs: the weight loader and the activation driver.

Both take the DUT handle and the configuration, write the ports on the cycle
after a rising edge (the DUT samples them at the next one), and leave their
inputs idle when done. Cycles are counted in rising edges of ``clk`` since time 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from cocotb.triggers import RisingEdge

from hw.params import ArrayConfig
from verif.ports import pack_fields
from verif.stimulus import Vectors

__all__ = ["WeightLoader", "ActivationDriver", "CycleDriver", "Cycle", "idle_inputs"]


def idle_inputs(dut, cfg: ArrayConfig) -> None:
    """Every data input of ``top`` to 0, except ``rst``."""
    dut.w_shift.value = 0
    dut.w_data.value = 0
    dut.a_valid.value = 0
    if cfg.encoder:
        dut.a_code.value = 0
        return
    dut.a_data.value = 0
    if cfg.overq_enabled:
        dut.a_state.value = 0
    if cfg.double_buffer:
        dut.w_swap.value = 0


class WeightLoader:
    """Shifts a weight tile [R, C] of codes in, rows R-1 first (docs/top-module.md "The generated top module")."""

    def __init__(self, dut, cfg: ArrayConfig):
        self.dut = dut
        self.cfg = cfg

    async def load(self, codes: np.ndarray) -> None:
        cfg = self.cfg
        codes = np.asarray(codes, dtype=np.int64)
        words = pack_fields(codes[::-1], cfg.weight_bits)  # row R-1 first
        for word in words:
            self.dut.w_data.value = word
            self.dut.w_shift.value = 1
            await RisingEdge(self.dut.clk)
        self.dut.w_shift.value = 0
        self.dut.w_data.value = 0


class ActivationDriver:
    """Presents vectors on ``a_valid`` / ``a_data`` / ``a_state`` (or their codes on
    ``a_code`` when the array has the encoder), one per cycle,
    with the requested idle cycles before each; returns the cycle each one was
    placed on the ports (the DUT samples it at the next edge)."""

    def __init__(self, dut, cfg: ArrayConfig, cycle):
        self.dut = dut
        self.cfg = cfg
        self._cycle = cycle  # callable: index of the last rising edge

    async def send(self, vectors: Vectors, gaps: Sequence[int] | None = None) -> list[int]:
        cfg, dut = self.cfg, self.dut
        n = len(vectors)
        gaps = np.zeros(n, dtype=np.int64) if gaps is None else np.asarray(gaps)
        if cfg.encoder:
            if vectors.codes is None:
                raise ValueError("an array with the encoder takes codes; these vectors have none")
            data_port, data = dut.a_code, pack_fields(vectors.codes, cfg.code_bits)
            state = None
        else:
            data_port, data = dut.a_data, pack_fields(vectors.values, cfg.act_bits)
            state = pack_fields(vectors.states, 2) if cfg.overq_enabled else None
        placed: list[int] = []
        for i in range(n):
            if gaps[i]:
                dut.a_valid.value = 0
                for _ in range(int(gaps[i])):
                    await RisingEdge(dut.clk)
            dut.a_valid.value = 1
            data_port.value = data[i]
            if state is not None:
                dut.a_state.value = state[i]
            placed.append(self._cycle())
            await RisingEdge(dut.clk)
        dut.a_valid.value = 0
        return placed


@dataclass(frozen=True)
class Cycle:
    """One cycle of port activity with double buffering: vector ``vec`` (an index into
    the vectors sent with it) or None, a weight row ``row`` (codes [C]) shifted into
    the shadow copy or None, and ``swap`` (``w_swap``)."""

    vec: int | None = None
    row: np.ndarray | None = None
    swap: bool = False


class CycleDriver:
    """Drives any mix of vectors, shadow shifts and swaps, one ``Cycle`` per clock
    (double buffering: all three may happen in the same cycle); returns the cycle each
    vector was placed on the ports."""

    def __init__(self, dut, cfg: ArrayConfig, cycle):
        self.dut = dut
        self.cfg = cfg
        self._cycle = cycle

    async def play(self, cycles: Sequence[Cycle], vectors: Vectors) -> list[int]:
        cfg, dut = self.cfg, self.dut
        data = pack_fields(vectors.values, cfg.act_bits) if len(vectors) else []
        state = pack_fields(vectors.states, 2) if cfg.overq_enabled and len(vectors) else None
        placed: list[int] = []
        for cyc in cycles:
            dut.a_valid.value = int(cyc.vec is not None)
            if cyc.vec is not None:
                dut.a_data.value = data[cyc.vec]
                if state is not None:
                    dut.a_state.value = state[cyc.vec]
                placed.append(self._cycle())
            dut.w_shift.value = int(cyc.row is not None)
            if cyc.row is not None:
                dut.w_data.value = pack_fields(np.asarray(cyc.row).reshape(1, -1), cfg.weight_bits)[
                    0
                ]
            dut.w_swap.value = int(cyc.swap)
            await RisingEdge(dut.clk)
        dut.a_valid.value = 0
        dut.w_shift.value = 0
        dut.w_swap.value = 0
        return placed
