"""The testbench environment of ``top``: clock, reset, and the parts wired together.

``TopEnv`` owns one weight loader, one activation driver, one output monitor, the
model, the in-order scoreboard and the coverage collector, and offers the few
operations a test is written in: ``start``, ``load``, ``stream``, ``drain``,
``reset`` and ``finish``.
"""

from __future__ import annotations

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge
from cocotb.utils import get_sim_time

from verif.config import RunSettings
from verif.coverage import Coverage
from verif.drivers import ActivationDriver, Cycle, CycleDriver, WeightLoader, idle_inputs
from verif.model import ArrayModel
from verif.monitor import OutputMonitor
from verif.scoreboard import InOrderScoreboard
from verif.stimulus import Vectors

__all__ = ["TopEnv"]

PERIOD_NS = 10


class TopEnv:
    def __init__(self, dut, settings: RunSettings):
        cfg = settings.cfg
        self.dut = dut
        self.cfg = cfg
        self.settings = settings
        self.model = ArrayModel(cfg)
        self.scoreboard = InOrderScoreboard(cfg, settings.seed, settings.replay_command(), dut._log)
        self.coverage = Coverage(cfg)
        self.loader = WeightLoader(dut, cfg)
        self.driver = ActivationDriver(dut, cfg, self.cycle)
        self.monitor = OutputMonitor(dut, cfg, self.cycle, self.scoreboard.receive)
        self.cycles = CycleDriver(dut, cfg, self.cycle) if cfg.double_buffer else None
        self.placed: dict[int, int] = {}  # vector index -> cycle placed on the ports

    def cycle(self) -> int:
        """Index of the most recent rising edge of ``clk`` (edge 0 at time 0)."""
        return int(get_sim_time("ns") // PERIOD_NS)

    async def start(self) -> None:
        Clock(self.dut.clk, PERIOD_NS, unit="ns").start()
        self.dut.rst.value = 1
        idle_inputs(self.dut, self.cfg)
        await self.reset(2)
        self.monitor.start()

    async def reset(self, cycles: int = 1) -> None:
        """Hold ``rst`` for ``cycles`` edges; the model forgets its weights."""
        self.dut.rst.value = 1
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        self.model.reset()

    async def load(self, codes: np.ndarray) -> None:
        """Wait until every earlier output came out, then shift a weight tile in (with
        double buffering: into the shadow copy, then one cycle of ``w_swap``)."""
        await self.drain()
        await self.loader.load(codes)
        if self.cfg.double_buffer:
            for row in np.asarray(codes)[::-1]:
                self.model.shift(row)
            await self.play([Cycle(swap=True)])
            return
        self.model.load(codes)
        self.coverage.sample_weights(self.model.codes, self.model.weights)

    async def play(
        self, cycles: list[Cycle], vectors: Vectors | None = None, labels=None
    ) -> list[int]:
        """Double buffering: drive ``cycles`` (vectors, shadow shifts and swaps mixed per
        cycle); the model follows them in order. Returns the sent vectors' indices."""
        if vectors is None:
            vectors = Vectors(
                np.zeros((0, self.cfg.rows), np.int64), np.zeros((0, self.cfg.rows), np.int64)
            )
        labels = labels if labels is not None else [""] * len(vectors)
        expected = np.zeros((len(vectors), self.cfg.cols), dtype=np.int64)
        segment: list[int] = []  # vectors sent under the weights active now

        def close():
            if segment:
                v, f = vectors.values[segment], vectors.states[segment]
                expected[segment] = self.model.outputs(v, f)
                raw = None if vectors.raw is None else vectors.raw[segment]
                self.coverage.sample_vectors(v, f, self.model.weights, raw)
                segment.clear()

        for cyc in cycles:  # the model sees the cycles in the DUT's order
            if cyc.swap:
                close()
                self.model.swap()
                self.coverage.sample_weights(self.model.codes, self.model.weights)
            if cyc.vec is not None:
                segment.append(cyc.vec)
            if cyc.row is not None:
                self.model.shift(cyc.row)
        close()
        order = [c.vec for c in cycles if c.vec is not None]
        if sorted(order) != list(range(len(vectors))) or order != sorted(order):
            raise ValueError("cycles must send every vector once, in order")
        items = self.scoreboard.expect(expected, (vectors.values, vectors.states), labels)
        self.coverage.sample_outputs(expected)
        placed = await self.cycles.play(cycles, vectors)
        indices = [item.index for item in items]
        self.placed.update(zip(indices, placed))
        return indices

    async def stream(self, vectors: Vectors, gaps=None, labels=None) -> list[int]:
        """Send vectors (idle cycles ``gaps`` before each); returns their indices."""
        n = len(vectors)
        if labels is None:
            labels = [""] * n
        expected = self.model.outputs(vectors.values, vectors.states)
        items = self.scoreboard.expect(expected, (vectors.values, vectors.states), labels)
        self.coverage.sample_vectors(
            vectors.values, vectors.states, self.model.weights, vectors.raw
        )
        if vectors.codes is not None:
            self.coverage.sample_codes(vectors.codes, vectors.states)
        self.coverage.sample_outputs(expected)
        cycles = await self.driver.send(vectors, gaps)
        indices = [item.index for item in items]
        self.placed.update(zip(indices, cycles))
        return indices

    async def drain(self, slack: int = 8) -> None:
        """Wait for the pending outputs, at most L + ``slack`` cycles (``finish`` reports
        any that never came)."""
        for _ in range(self.cfg.latency + slack):
            if not self.scoreboard.pending:
                return
            await RisingEdge(self.dut.clk)

    async def idle(self, cycles: int) -> None:
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)

    def finish(self, coverage: bool = False, also_required: tuple[str, ...] = ()) -> None:
        """Fail on protocol errors, scoreboard errors or wrong latency; with
        ``coverage``, also on a missed required bin or one of ``also_required``
        (the table is logged first)."""
        log = self.dut._log
        self.monitor.stop()
        if self.monitor.protocol_errors:
            raise AssertionError(
                f"{len(self.monitor.protocol_errors)} protocol error(s), first: "
                f"{self.monitor.protocol_errors[0]}\n  replay: {self.settings.replay_command()}"
            )
        self.scoreboard.finish(self.cfg.latency, self.placed)
        log.info(
            "%d outputs matched the model, latency L=%d", self.scoreboard.matched, self.cfg.latency
        )
        if coverage:
            log.info("coverage (%s):\n%s", self.cfg.key(), self.coverage.table())
            self.coverage.check(also_required)
