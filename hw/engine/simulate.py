"""Run engine commands in amaranth.sim, cycle by cycle, with random gaps and stalls.

``Command`` holds one layer (X codes, weights, requantizer parameters or raw).
``simulate(cfg, commands, ...)`` drives every AXI4-Stream port of ``hw.engine.Engine``
from one testbench: each input port presents its next beat in a cycle with
probability ``valid_prob`` (once presented, a beat is held until taken, as AXI4-Stream
requires) and ``m_axis_y_tready`` is high with probability ``ready_prob``. With
``abort_after`` the first command is cut by a two-cycle reset that many cycles after
it starts, and the commands after it run on the reset engine.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import ClockDomain

from hw.engine import beats as fmt
from hw.engine.top import Engine
from hw.params import EngineConfig
from hw.simulate import run_testbench

__all__ = ["Command", "Result", "simulate"]


@dataclass
class Command:
    x: np.ndarray  # codes [M, K]
    w: np.ndarray  # weight codes [K, N]
    bias: np.ndarray | None = None  # None: raw accumulators out
    mult: np.ndarray | None = None
    shift: np.ndarray | None = None
    code_max: int | None = None
    send_data: bool = True  # False for a command the engine must refuse

    @property
    def shape(self):
        return self.x.shape[0], self.x.shape[1], self.w.shape[1]

    def cmd_beats(self):
        m, k, n = self.shape
        return fmt.command_beats(m, k, n, self.bias, self.mult, self.shift, self.code_max)


@dataclass
class Result:
    y: np.ndarray | None
    error: int
    first_beat: int | None = None  # cycle of the command's first input beat
    last_beat: int | None = None  # cycle of its last output beat
    beats: list = field(default_factory=list)
    data_ready: bool = False  # s_axis_w or s_axis_x was ready in some cycle

    @property
    def cycles(self) -> int:
        if self.first_beat is None or self.last_beat is None:
            raise ValueError("the command has not completed: no cycle count")
        return self.last_beat - self.first_beat + 1


def simulate(
    cfg: EngineConfig,
    commands,
    *,
    seed=0,
    valid_prob=1.0,
    ready_prob=1.0,
    abort_after=None,
    max_cycles=200_000,
    vcd=None,
    dut=None,
) -> list[Result]:
    dut = dut or Engine(cfg)
    domain = ClockDomain("sync")
    rng = random.Random(seed)
    results: list[Result] = []

    async def bench(ctx):
        cycle = 0
        ports = {
            name: (
                getattr(dut, f"{name}_tdata"),
                getattr(dut, f"{name}_tvalid"),
                getattr(dut, f"{name}_tready"),
                getattr(dut, f"{name}_tlast"),
            )
            for name in ("s_axis_cmd", "s_axis_w", "s_axis_x")
        }
        todo = list(commands)
        aborting = abort_after is not None
        while todo:
            command = todo.pop(0)
            m, k, n = command.shape
            queues = {"s_axis_cmd": list(command.cmd_beats()), "s_axis_w": [], "s_axis_x": []}
            if command.send_data:
                queues["s_axis_w"] = [(b, 0) for b in fmt.weight_beats(command.w, cfg)]
                queues["s_axis_x"] = [(b, 0) for b in fmt.x_beats(command.x, cfg)]
            expected = fmt.beat_counts(m, k, n, cfg)["y"] if command.send_data else 0
            presenting = {name: False for name in queues}
            result = Result(None, 0)
            start = cycle
            while True:
                if aborting and cycle - start == abort_after:
                    break
                done_inputs = not any(queues.values()) and not any(presenting.values())
                if done_inputs and len(result.beats) == expected:
                    if not command.send_data and not ctx.get(dut.status_busy):
                        break
                    if command.send_data:
                        break
                for name, queue in queues.items():
                    data, valid, _, last = ports[name]
                    if not presenting[name] and queue and rng.random() < valid_prob:
                        presenting[name] = True
                        ctx.set(data, queue[0][0])
                        ctx.set(last, queue[0][1])
                    ctx.set(valid, int(presenting[name]))
                ready = int(rng.random() < ready_prob)
                ctx.set(dut.m_axis_y_tready, ready)
                sampled = await ctx.tick().sample(
                    *(ports[name][2] for name in queues),
                    dut.m_axis_y_tvalid,
                    dut.m_axis_y_tdata,
                    dut.m_axis_y_tlast,
                )
                readies, (y_valid, y_data, y_last) = sampled[2:5], sampled[5:]
                result.data_ready |= bool(readies[1] or readies[2])
                for name, taken in zip(queues, readies):
                    if presenting[name] and taken:
                        if result.first_beat is None and name != "s_axis_cmd":
                            result.first_beat = cycle
                        queues[name].pop(0)
                        presenting[name] = False
                if ready and y_valid:
                    result.beats.append(int(y_data))
                    result.last_beat = cycle
                    if len(result.beats) == expected and not y_last:
                        raise AssertionError("the last output beat has no tlast")
                cycle += 1
                if cycle > max_cycles:
                    raise TimeoutError(f"no progress after {max_cycles} cycles: {result}")
            for name in queues:
                ctx.set(ports[name][1], 0)
            ctx.set(dut.m_axis_y_tready, 0)
            if aborting:  # cut the command by a reset; it produces nothing
                aborting = False
                ctx.set(domain.rst, 1)
                for _ in range(2):
                    await ctx.tick()
                ctx.set(domain.rst, 0)
                cycle += 2
                continue
            await ctx.tick()
            cycle += 1
            result.error = ctx.get(dut.status_error)
            if command.send_data:
                result.y = fmt.y_from_beats(result.beats, m, n, command.bias is None, cfg)
            results.append(result)

    run_testbench(dut, bench, vcd=vcd, domain=domain)
    return results
