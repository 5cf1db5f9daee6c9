"""The output FIFO: the array cannot stall, so its results wait here for the sink.

A circular buffer in an ``amaranth.lib.memory.Memory`` with an asynchronous read port
(small: LUT RAM on an FPGA). ``w_en`` writes one entry (the controller guarantees room:
it issues a vector only on credit, see ``Engine``); the output is an
``amaranth.lib.stream`` (payload, valid, ready): the head entry is presented while the
FIFO is not empty and leaves on a cycle with valid and ready high.
"""

from __future__ import annotations

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

__all__ = ["OutputFifo"]


class OutputFifo(wiring.Component):
    module_name = "out_fifo"

    def __init__(self, width: int, depth: int):
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"depth must be a power of two >= 2, got {depth}")
        self._width, self._depth = width, depth
        super().__init__(
            {
                "w_en": In(1),
                "w_data": In(width),
                "r": Out(stream.Signature(width)),
                "level": Out(range(depth + 1)),
            }
        )

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def children(self) -> dict:
        return {}

    def elaborate(self, platform):
        m = Module()
        m.submodules.storage = storage = Memory(shape=self._width, depth=self._depth, init=[])
        wr = storage.write_port()
        rd = storage.read_port(domain="comb")
        bits = (self._depth - 1).bit_length()
        w_ptr = Signal(bits, name="w_ptr")
        r_ptr = Signal(bits, name="r_ptr")
        level = Signal(range(self._depth + 1), name="fill")
        pop = Signal(name="pop")
        m.d.comb += [
            wr.en.eq(self.w_en),
            wr.addr.eq(w_ptr),
            wr.data.eq(self.w_data),
            rd.addr.eq(r_ptr),
            self.r.payload.eq(rd.data),
            self.r.valid.eq(level != 0),
            pop.eq(self.r.valid & self.r.ready),
            self.level.eq(level),
        ]
        with m.If(self.w_en):
            m.d.sync += w_ptr.eq(w_ptr + 1)
        with m.If(pop):
            m.d.sync += r_ptr.eq(r_ptr + 1)
        m.d.sync += level.eq(level + self.w_en - pop)
        return m
