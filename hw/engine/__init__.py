"""The layer engine (``python -m hw.generate --engine``, docs/engine.md).

``Engine`` is the top: AXI4-Stream ports for commands, weights, activations and
outputs around the PE array, the OverQ encoder, an activation memory, an accumulator
memory, a per-column requantizer (``Requantizer``), an output FIFO (``OutputFifo``)
and the controller's counters.
"""

from hw.engine.fifo import OutputFifo
from hw.engine.requant import Requantizer
from hw.engine.top import Engine

__all__ = ["Engine", "OutputFifo", "Requantizer"]
