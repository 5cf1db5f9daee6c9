"""The theoretical minimum of what OverQ adds to a PE, priced in the library's cells.

OverQ needs, on top of the plain PE: the two state flip-flops that travel with the
activation, a weight_bits-wide 2:1 mux (own weight or the one above), and a mux that
applies the state's shift to the product. Counted as standalone cells this is what a
hand-built PE would pay. It is an estimate, not a bound: synthesis lands below it where
the shift melts into the adder (it does for the three-way shift of range+precision),
and above it where the RTL builds more than this.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.params import ArrayConfig

from .liberty import LIBERTY, cell_areas

__all__ = ["Minimum", "overq_minimum"]

FLIP_FLOP, MUX2, AND2 = "DFF_X1", "MUX2_X1", "AND2_X1"


@dataclass(frozen=True)
class Minimum:
    """Cell counts of the OverQ additions and their area in um^2."""

    state_ffs: int
    weight_mux: int
    shift_mux: int
    shift_and: int
    area: float
    fixed_area: float  # the state flip-flops and the weight mux, without the shift

    def describe(self) -> str:
        return (
            f"{self.state_ffs} x {FLIP_FLOP} + {self.weight_mux + self.shift_mux} x {MUX2} "
            f"({self.weight_mux} weight, {self.shift_mux} shift) + {self.shift_and} x {AND2}"
        )


def _shift_cells(product_bits: int, shifts: set[int]) -> tuple[int, int]:
    """(2:1 muxes, AND gates) to choose among ``product << s`` for s in ``shifts``.

    Output bit i picks one of the bits p[i - s]: below the product it is 0 (an AND
    gate if it is the only other choice), above it the sign bit.
    """
    muxes = ands = 0
    for i in range(product_bits + max(shifts)):
        choices = set()
        for s in shifts:
            j = i - s
            choices.add("0" if j < 0 else min(j, product_bits - 1))
        if len(choices) == 2 and "0" in choices:
            ands += 1
        else:
            muxes += len(choices) - 1
    return muxes, ands


def overq_minimum(cfg: ArrayConfig, liberty=LIBERTY) -> Minimum:
    """The OverQ additions of one PE in row >= 1 of ``cfg`` (zero without OverQ)."""
    areas = cell_areas(liberty)
    if not cfg.overq_enabled:
        return Minimum(0, 0, 0, 0, 0.0, 0.0)
    muxes, ands = _shift_cells(cfg.product_bits, set(cfg.state_shifts))
    ffs, wmux = 2, cfg.weight_bits
    fixed = ffs * areas[FLIP_FLOP] + wmux * areas[MUX2]
    area = fixed + muxes * areas[MUX2] + ands * areas[AND2]
    return Minimum(ffs, wmux, muxes, ands, round(area, 6), round(fixed, 6))
