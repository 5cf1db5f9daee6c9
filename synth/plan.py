"""Which designs the area report needs, as one list of jobs.

The PE comparison at one bit width (every variant at its minimal accumulator and at
fixed widths), the OverQ-free counterparts at the OverQ accumulator widths (to split
the overhead), a bit-width sweep, and the whole arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

from .designs import BASELINE, MIN_ACC, OVERQ_RANGE, VARIANTS, Job, Variant, counterpart

__all__ = ["Plan", "W5_VARIANTS"]

# APoT at 5 bits uses the paper's even split (two 2-bit terms); compared with int W5.
W5_VARIANTS = tuple(v for v in VARIANTS if v.overq in ("none", "range"))


@dataclass(frozen=True)
class Plan:
    """Parameters of one report; the defaults are ``make synth``."""

    act_bits: int = 4
    variants: tuple = VARIANTS
    accs: tuple = (MIN_ACC, 16, 32)
    w5: bool = True
    sweep_bits: tuple = tuple(range(2, 9))
    sweep_accs: tuple = (MIN_ACC, 32)
    arrays: bool = True
    array_accs: tuple = (MIN_ACC, 32)
    rows: int = 8
    cols: int = 8

    @property
    def w5_variants(self) -> tuple:
        return tuple(v for v in W5_VARIANTS if v in self.variants)

    def pe(
        self, v: Variant, act_bits: int | None = None, acc=MIN_ACC, weight_bits: int | None = None
    ) -> Job:
        cfg = v.config(act_bits or self.act_bits, acc, self.rows, self.cols, weight_bits)
        return Job("pe", cfg)

    def array(self, v: Variant, acc=MIN_ACC) -> Job:
        return Job("array", v.config(self.act_bits, acc, self.rows, self.cols))

    def widened(
        self, v: Variant, act_bits: int | None = None, weight_bits: int | None = None
    ) -> Job:
        """v's OverQ-free counterpart built at v's minimal accumulator width."""
        width = self.pe(v, act_bits, MIN_ACC, weight_bits).cfg.acc_width
        return self.pe(counterpart(v), act_bits, width, weight_bits)

    def jobs(self) -> list[Job]:
        jobs = [self.pe(v, acc=acc) for v in self.variants for acc in self.accs]
        jobs += [self.widened(v) for v in self.variants if v.overq != "none"]
        if self.w5:
            jobs += [
                self.pe(v, acc=acc, weight_bits=5) for v in self.w5_variants for acc in self.accs
            ]
            jobs += [self.widened(v, weight_bits=5) for v in self.w5_variants if v.overq != "none"]
        for bits in self.sweep_bits:
            for acc in self.sweep_accs:
                jobs += [self.pe(v, bits, acc, weight_bits=bits) for v in (BASELINE, OVERQ_RANGE)]
            jobs.append(self.widened(OVERQ_RANGE, bits, weight_bits=bits))
        if self.arrays:
            jobs += [self.array(v, acc) for v in self.variants for acc in self.array_accs]
        return list(dict.fromkeys(jobs))
