"""Monitor of ``top``'s outputs: every cycle with ``y_valid`` high is one output vector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from hw.params import ArrayConfig
from verif.ports import unpack_signed

__all__ = ["Output", "OutputMonitor"]


@dataclass(frozen=True)
class Output:
    cycle: int  # the rising edge after which y_valid was high
    values: np.ndarray  # y[c], signed, [C]


class OutputMonitor:
    """Samples ``y_valid`` / ``y_data`` after every rising edge and hands each output
    vector to every callback (``add_callback``). An unknown (X/Z) ``y_valid``, or
    ``y_data`` while valid, is recorded in ``protocol_errors``."""

    def __init__(self, dut, cfg: ArrayConfig, cycle, callback: Callable[[Output], None]):
        self.dut = dut
        self.cfg = cfg
        self._cycle = cycle
        self._callbacks = [callback]
        self.protocol_errors: list[str] = []
        self._task = None

    def add_callback(self, callback: Callable[[Output], None]) -> None:
        self._callbacks.append(callback)

    def start(self) -> None:
        import cocotb

        if self._task is None:
            self._task = cocotb.start_soon(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        dut, cfg = self.dut, self.cfg
        while True:
            await RisingEdge(dut.clk)
            await ReadOnly()
            valid = dut.y_valid.value
            if not valid.is_resolvable:
                self._error(f"y_valid is {valid} after edge {self._cycle()}")
                continue
            if int(valid):
                data = dut.y_data.value
                if not data.is_resolvable:
                    self._error(f"y_data has unknown bits ({data}) after edge {self._cycle()}")
                    continue
                out = Output(
                    self._cycle(), unpack_signed(data.to_unsigned(), cfg.cols, cfg.acc_width)
                )
                for callback in self._callbacks:
                    callback(out)

    def _error(self, text: str) -> None:
        if len(self.protocol_errors) < 20:
            self.dut._log.error("protocol: %s", text)
        self.protocol_errors.append(text)
