"""The variants the FPGA report compares, and which of them the default run places.

Five array flavours per group (size x precision): the integer baseline, OverQ range,
OverQ range+precision, APoT, APoT + OverQ range; each with multipliers in DSP blocks
and LUT-only (``-nodsp``). APoT at W4 is the official APoT code's uneven 2+1 split;
at 8 bits ``weight_bits - 1`` must split into 2-bit terms, so the A8W8 group uses
APoT W7 = sign + 3 terms of 2 bits (the official 6-bit set), the nearest below W8.

Two extra flavours, in the default run at 8x8 A4W4 only: the baseline and OverQ range
with ``product_register`` (the product registered before the accumulate, one more
cycle of latency), to measure what that register buys back in Fmax. And OverQ range
with the hardware encoder in front (``encoder``, codes on ``a_code``), to measure what
the encoder costs in LUTs, flip-flops and Fmax against plain OverQ range.
"""

from __future__ import annotations

from dataclasses import dataclass

from hw.params import ArrayConfig

__all__ = [
    "Variant",
    "FLAVOURS",
    "PRODUCT_REG_FLAVOURS",
    "all_variants",
    "product_register_variants",
    "default_variants",
    "SEEDS",
    "ENCODER_FLAVOURS",
    "encoder_variants",
    "PIPELINE_FLAVOURS",
    "pipeline_variants",
]

SEEDS = (1, 2, 3)

# name -> ArrayConfig fields on top of the group's size and bits
FLAVOURS = {
    "baseline": dict(overq="none"),
    "range": dict(overq="range"),
    "range+precision": dict(overq="range,precision"),
    "apot": dict(overq="none", weight_format="apot"),
    "apot+range": dict(overq="range", weight_format="apot"),
}
# The same, with the product register (extra rows, see product_register_variants)
PRODUCT_REG_FLAVOURS = {
    "baseline, product reg": dict(overq="none", product_register=True),
    "range, product reg": dict(overq="range", product_register=True),
}
# OverQ range with the hardware encoder (extra rows, see encoder_variants)
ENCODER_FLAVOURS = {
    "range, encoder": dict(overq="range", encoder=True),
}
# Pipelining and double buffering (``synth.fpga_pipeline``): operand registers,
# operand + product registers, and operand registers with double-buffered weights.
PIPELINE_FLAVOURS = {
    "baseline, input reg": dict(overq="none", input_register=True),
    "range, input reg": dict(overq="range", input_register=True),
    "baseline, input+product reg": dict(overq="none", input_register=True, product_register=True),
    "range, input+product reg": dict(overq="range", input_register=True, product_register=True),
    "baseline, input reg, double buffer": dict(
        overq="none", input_register=True, double_buffer=True
    ),
    "range, input reg, double buffer": dict(overq="range", input_register=True, double_buffer=True),
}
_ALL_FLAVOURS = {**FLAVOURS, **PRODUCT_REG_FLAVOURS, **ENCODER_FLAVOURS, **PIPELINE_FLAVOURS}
_APOT_WEIGHT_BITS = {4: 4, 8: 7}  # group weight bits -> APoT code width


@dataclass(frozen=True)
class Variant:
    size: int  # rows = cols
    bits: int  # act_bits = weight_bits of the group (APoT: see _APOT_WEIGHT_BITS)
    flavour: str
    nodsp: bool
    seeds: tuple[int, ...] = SEEDS

    @property
    def group(self) -> str:
        return f"{self.size}x{self.size} A{self.bits}W{self.bits}"

    @property
    def mapping(self) -> str:
        return "LUT" if self.nodsp else "DSP"

    @property
    def name(self) -> str:
        return f"{self.group} {self.flavour} {self.mapping}"

    @property
    def cfg(self) -> ArrayConfig:
        fields = dict(_ALL_FLAVOURS[self.flavour])
        weight_bits = self.bits
        if fields.get("weight_format") == "apot":
            weight_bits = _APOT_WEIGHT_BITS[self.bits]
        return ArrayConfig(
            rows=self.size, cols=self.size, act_bits=self.bits, weight_bits=weight_bits,
            **fields,
        )  # fmt: skip


def all_variants(seeds=SEEDS) -> list[Variant]:
    """The whole sweep (``--full``): every group, flavour and mapping at every seed.

    16x16 with one MULT18X18D per PE needs 256 DSPs and the largest ECP5 has 156, so
    the 16x16 DSP variants are synthesized and reported as not fitting.
    """
    return [
        Variant(size, bits, flavour, nodsp, tuple(seeds))
        for size in (8, 16)
        for bits in (4, 8)
        for nodsp in (False, True)
        for flavour in FLAVOURS
    ]


def product_register_variants(seeds=SEEDS) -> list[Variant]:
    """8x8 A4W4 baseline and OverQ range with the product register, both mappings."""
    return [
        Variant(8, 4, flavour, nodsp, tuple(seeds))
        for nodsp in (False, True)
        for flavour in PRODUCT_REG_FLAVOURS
    ]


def encoder_variants(seeds=SEEDS) -> list[Variant]:
    """8x8 A4W4 OverQ range with the encoder, both mappings."""
    return [
        Variant(8, 4, flavour, nodsp, tuple(seeds))
        for nodsp in (False, True)
        for flavour in ENCODER_FLAVOURS
    ]


def default_variants() -> list[Variant]:
    """The subset ``make fpga`` places within its 20-minute budget on two cores.

    Measured here, nextpnr takes 20-80 CPU seconds for an 8x8 A4W4 netlist but
    170-430 s for an 8x8 A8W8 LUT-only or a 16x16 A4W4 one. So: 8x8 A4W4 (the headline
    group) in both mappings at three seeds; 8x8 A8W8 with DSP multipliers at one seed
    (its APoT W7 variants are LUT-only by nature); every 16x16 variant and the 8x8 A8W8
    LUT-only ones only with ``--full``. Then the product-register rows of 8x8 A4W4
    (``product_register_variants``) and the encoder rows (``encoder_variants``), three
    seeds each.
    """
    chosen = []
    for v in all_variants():
        if v.group == "8x8 A4W4":
            chosen.append(v)
        elif v.group == "8x8 A8W8" and not v.nodsp:
            chosen.append(Variant(v.size, v.bits, v.flavour, v.nodsp, SEEDS[:1]))
    return chosen + product_register_variants() + encoder_variants()


def pipeline_variants(
    seeds=SEEDS, extra_seeds=SEEDS[:1], both_registers: bool = False, double_buffer: bool = False
) -> list[Variant]:
    """8x8 A4W4 baseline and OverQ range with operand registers, both mappings, at
    ``seeds`` (three by default: the Fmax target is on their median); with
    ``double_buffer`` also with double-buffered weights, and with ``both_registers``
    also with operand + product registers (both at ``extra_seeds``)."""
    out = []
    for nodsp in (False, True):
        for flavour, fields in PIPELINE_FLAVOURS.items():
            if fields.get("product_register") and not both_registers:
                continue
            if fields.get("double_buffer") and not double_buffer:
                continue
            plain = not fields.get("product_register") and not fields.get("double_buffer")
            out.append(Variant(8, 4, flavour, nodsp, tuple(seeds if plain else extra_seeds)))
    return out
