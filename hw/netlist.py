"""The wiring of ``top`` as plain data.

``SystolicArray.connections()`` lists every wire between its submodules once. The
Amaranth elaboration (what the tests simulate) and the structural Verilog writer (what
``top.v`` contains) both read that list, so the simulated and the emitted top cannot be
wired differently.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Ref", "Const", "Connection"]


@dataclass(frozen=True)
class Ref:
    """Bits ``[lo:hi)`` of ``port`` on child ``instance`` (``None``: a port of top).

    ``lo``/``hi`` = ``None`` means the whole port.
    """

    instance: str | None
    port: str
    lo: int | None = None
    hi: int | None = None

    @property
    def whole(self) -> bool:
        return self.lo is None

    @property
    def bits(self) -> tuple[int, int]:
        """(lo, hi) of a slice; a whole port has none."""
        if self.lo is None or self.hi is None:
            raise ValueError(f"{self.instance}.{self.port} is a whole port, not a slice")
        return self.lo, self.hi


@dataclass(frozen=True)
class Const:
    """A constant of ``width`` bits."""

    value: int
    width: int


@dataclass(frozen=True)
class Connection:
    """``sink`` (a child's input or top's output, maybe a slice) is driven by ``source``."""

    sink: Ref
    source: Ref | Const
