"""The points of an exploration: one array configuration and how it is used.

A ``Point`` fixes everything that changes either the accuracy or the silicon: the
array size R (an R x R array), the activation and weight widths and formats, the
OverQ modes and cascade, whether the reduction axis is re-ordered before tiling
(``order``) and whether the hardware encoder sits in front of the array (it does
whenever OverQ is on). ``Grid`` is the cross product the issue asks for; the
defaults are ``make explore``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from itertools import product

from hw.params import ArrayConfig

__all__ = ["Point", "Grid", "OVERQ_CHOICES", "EXTRA_OVERQ_CHOICES", "BUDGET_BITS", "parse_overq"]

# (overq modes, cascade) as the grid lists them; range+precision keeps the default reach.
OVERQ_CHOICES = {
    "none": ("none", 1),
    "range-c1": ("range", 1),
    "range-c2": ("range", 2),
    "range-c4": ("range", 4),
    "range+precision": ("range,precision", 2),
}
# Accepted by name (``--overq range+victim-c2``) but not in the default grid, so the
# committed explore reports keep their points: victim overwrite (docs/victim.md).
EXTRA_OVERQ_CHOICES = {
    "range+victim-c2": ("range,victim", 2),
}
# Plain int arrays A_bW_b whose areas are the budgets of the budget table.
BUDGET_BITS = (4, 5, 6, 8)


def parse_overq(name: str) -> tuple[str, int]:
    """``"range-c2"`` -> ("range", 2); the names of ``OVERQ_CHOICES``."""
    choices = {**OVERQ_CHOICES, **EXTRA_OVERQ_CHOICES}
    try:
        return choices[name]
    except KeyError:
        raise ValueError(f"unknown OverQ choice {name!r}; allowed: {', '.join(choices)}") from None


@dataclass(frozen=True, order=True)
class Point:
    """One configuration of the exploration (an R x R array and its use)."""

    rows: int
    act_bits: int
    weight_bits: int
    weight_format: str = "int"
    overq: str = "none"  # "none" | "range" | "range,precision" | "range,victim"
    cascade: int = 1
    order: bool = False  # channel order before tiling (OverQ points only)

    def __post_init__(self):
        if self.overq == "none" and (self.order or self.cascade != 1):
            raise ValueError("a point without OverQ has no channel order and cascade 1")
        self.config()  # validates every width through the one ArrayConfig

    @property
    def overq_on(self) -> bool:
        return self.overq != "none"

    @property
    def encoder(self) -> bool:
        """The hardware encoder is part of every OverQ array's cost."""
        return self.overq_on

    @property
    def is_baseline(self) -> bool:
        """A plain int array with as many weight bits as activation bits."""
        return (
            not self.overq_on and self.weight_format == "int" and self.weight_bits == self.act_bits
        )

    def config(self) -> ArrayConfig:
        """The square array this point prices (minimal, overflow-free accumulators)."""
        return ArrayConfig(
            rows=self.rows,
            cols=self.rows,
            act_bits=self.act_bits,
            weight_bits=self.weight_bits,
            weight_format=self.weight_format,
            overq=self.overq,
            cascade=min(self.cascade, max(1, self.rows - 1)),
        )

    @property
    def weights(self) -> str:
        return f"W{self.weight_bits}" + (" APoT" if self.weight_format == "apot" else "")

    @property
    def overq_label(self) -> str:
        if not self.overq_on:
            return "none"
        if self.overq == "range":
            return f"range c={self.cascade}"
        return f"{self.overq.replace(',', '+')} c={self.cascade}"

    @property
    def label(self) -> str:
        """Short human name: ``R16 A4 W4 APoT range c=2 +order``."""
        text = f"R{self.rows} A{self.act_bits} {self.weights}"
        if self.overq_on:
            text += f" {self.overq_label}" + (" +order" if self.order else "")
        return text

    @property
    def key(self) -> str:
        """Stable file-name-safe key."""
        oq = self.overq.replace(",", "+")
        return (
            f"r{self.rows}_a{self.act_bits}_w{self.weight_bits}{self.weight_format}"
            f"_{oq}_c{self.cascade}" + ("_ord" if self.order else "")
        )

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "label": self.label,
            "weights": self.weights,
            "overq_label": self.overq_label,
            "encoder": self.encoder,
            "is_baseline": self.is_baseline,
        }


@dataclass(frozen=True)
class Grid:
    """A cross product of choices; ``points()`` drops combinations that cannot exist."""

    rows: tuple = (8, 16, 32)
    act_bits: tuple = (3, 4, 5, 6)
    int_weight_bits: tuple = (4, 5, 6, 7, 8)
    apot_weight_bits: tuple = (4, 5)
    overq: tuple = tuple(OVERQ_CHOICES)
    order: tuple = (False, True)
    budgets: tuple = BUDGET_BITS  # plain AbWb int arrays added as area budgets
    extra: tuple = field(default_factory=tuple)  # further Points, e.g. from a test

    def weights(self):
        return [(b, "int") for b in self.int_weight_bits] + [
            (b, "apot") for b in self.apot_weight_bits
        ]

    def points(self) -> list[Point]:
        pts = []
        for rows, a, (wb, fmt), name in product(
            self.rows, self.act_bits, self.weights(), self.overq
        ):
            overq, cascade = parse_overq(name)
            if overq == "none":
                pts.append(Point(rows, a, wb, fmt))  # nothing to re-order without OverQ
                continue
            if cascade > max(1, rows - 1):
                continue
            pts += [Point(rows, a, wb, fmt, overq, cascade, order) for order in self.order]
        for rows, b in product(self.rows, self.budgets):
            pts.append(Point(rows, b, b, "int"))
        pts += list(self.extra)
        return sorted(dict.fromkeys(pts))

    def describe(self) -> dict:
        return {
            "rows": list(self.rows),
            "act_bits": list(self.act_bits),
            "int_weight_bits": list(self.int_weight_bits),
            "apot_weight_bits": list(self.apot_weight_bits),
            "overq": list(self.overq),
            "order": list(self.order),
            "budgets": [f"A{b}W{b}" for b in self.budgets],
        }
