"""What the area report synthesizes: named PE/array variants and one job per design.

A ``Variant`` is a kind of PE (baseline, OverQ range, APoT, ...); ``Variant.config``
turns it into the shared ``hw.params.ArrayConfig`` for a bit width and an accumulator
choice, so every width here comes from the one place the generator also reads.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hw.params import ArrayConfig

__all__ = ["Variant", "Job", "VARIANTS", "BASELINE", "OVERQ_RANGE", "MIN_ACC", "counterpart"]

MIN_ACC = "min"  # accumulator choice: each design at its own overflow-free width


@dataclass(frozen=True)
class Variant:
    """One kind of PE, at any bit width."""

    slug: str
    name: str
    overq: str = "none"
    weight_format: str = "int"

    def config(
        self,
        act_bits: int = 4,
        acc=MIN_ACC,
        rows: int = 8,
        cols: int = 8,
        weight_bits: int | None = None,
    ) -> ArrayConfig:
        """The configuration at ``act_bits`` (weights as wide unless ``weight_bits``)
        with ``acc`` = ``"min"`` or a fixed accumulator width.

        A fixed width below the overflow-free one is still built (the hardware is what
        is being measured); ``ArrayConfig`` records it with ``allow_overflow``.
        """
        wb = weight_bits or act_bits
        base = ArrayConfig(
            rows=rows,
            cols=cols,
            act_bits=act_bits,
            weight_bits=wb,
            weight_format=self.weight_format,
            overq=self.overq,
        )
        if acc == MIN_ACC or acc == base.min_acc_bits:
            return base  # one canonical config (and cache entry) per design
        return replace(base, acc_bits=int(acc), allow_overflow=acc < base.min_acc_bits)


BASELINE = Variant("base", "baseline int")
OVERQ_RANGE = Variant("oq-r", "OverQ range", overq="range")
VARIANTS = (
    BASELINE,
    OVERQ_RANGE,
    Variant("oq-rp", "OverQ range+precision", overq="range,precision"),
    Variant("apot", "APoT", weight_format="apot"),
    Variant("apot-oq-r", "APoT + OverQ range", overq="range", weight_format="apot"),
)


def counterpart(v: Variant) -> Variant:
    """The listed variant with the same weight format and no OverQ: what OverQ adds to."""
    for other in VARIANTS:
        if other.overq == "none" and other.weight_format == v.weight_format:
            return other
    raise KeyError(f"no OverQ-free variant with weight_format={v.weight_format!r}")


@dataclass(frozen=True)
class Job:
    """One design to synthesize: a single PE (of ``row``) or the whole array."""

    kind: str  # "pe" or "array"
    cfg: ArrayConfig
    row: int = 1

    def __post_init__(self):
        if self.kind not in ("pe", "array"):
            raise ValueError(f"kind must be pe or array, got {self.kind!r}")

    @property
    def top(self) -> str:
        return "pe" if self.kind == "pe" else "top"

    @property
    def label(self) -> str:
        """Cache and report name: the kind, the PE row, and the configuration key."""
        where = f"pe{self.row}" if self.kind == "pe" else "array"
        return f"{where}_{self.cfg.key()}"

    def verilog(self) -> str:
        from hw.generate import generate_pe_verilog, generate_verilog

        if self.kind == "pe":
            return generate_pe_verilog(self.cfg, row=self.row, name=self.top)
        return generate_verilog(self.cfg, name=self.top)
