# amaranth: UnusedElaboratable=no
"""The two multipliers a PE can hold, chosen by ``cfg.weight_format``.

Both take an unsigned ``act_bits`` activation and a ``weight_bits`` weight *code*, and
produce the exact signed product ``v * W`` on ``cfg.product_bits`` bits. Keeping the code
(not the decoded value) in the PE's weight register makes the APoT PE cheaper: the mux
of OverQ selects codes and only one decoder sits next to the adder tree.
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.params import ArrayConfig

__all__ = ["IntMultiplier", "ApotMultiplier", "multiplier_for"]


class _Multiplier(wiring.Component):
    """Ports shared by every multiplier: ``a`` (activation), ``w`` (code), ``p``."""

    module_name = "mul"

    def __init__(self, cfg: ArrayConfig, weight_shift: int = 0):
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, got {cfg!r}")
        self._cfg = cfg
        self._weight_shift = weight_shift
        super().__init__(
            {
                "a": In(cfg.act_bits),
                "w": In(cfg.weight_bits + weight_shift),
                "p": Out(signed(cfg.product_bits + weight_shift)),
            }
        )

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def children(self) -> dict:
        """Named submodules (none): read by ``hw.dedupe`` to name definitions."""
        return {}


class IntMultiplier(_Multiplier):
    """Unsigned activation times two's-complement weight: one signed multiply.

    ``weight_shift`` > 0 (the operand-register PE, ``hw.pe``): the weight arrives
    already shifted left by up to that many bits, so it is that much wider, and so is
    the product; the definition is then ``mul_int_w{width}``.
    """

    module_name = "mul_int"

    def __init__(self, cfg: ArrayConfig, weight_shift: int = 0):
        super().__init__(cfg, weight_shift)
        if weight_shift:
            self.module_name = f"mul_int_w{cfg.weight_bits + weight_shift}"

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.p.eq(self.a * self.w.as_signed())
        return m


class ApotMultiplier(_Multiplier):
    """APoT weight code times activation with shifts and adds only (docs/overq-encoding.md "Weights").

    Code layout, MSB first: sign, term 0, ..., term n-1. Term i with code t > 0 adds
    ``a << cfg.apot_exponents[i][t-1]``; the sign negates the sum (negative zero is 0).
    """

    module_name = "mul_apot"

    def __init__(self, cfg: ArrayConfig):
        if cfg.weight_format != "apot":
            raise ValueError(
                f"ApotMultiplier needs weight_format='apot', got {cfg.weight_format!r}"
            )
        super().__init__(cfg)

    def elaborate(self, platform):
        cfg = self.cfg
        m = Module()
        widths = cfg.apot_term_widths
        sign = Signal(name="sign")
        m.d.comb += sign.eq(self.w[cfg.weight_bits - 1])
        terms = []
        for i, (width, exps) in enumerate(zip(widths, cfg.apot_exponents)):
            lsb = sum(widths[i + 1 :])
            field = Signal(width, name=f"code{i}")
            term = Signal(range((cfg.act_max << max(exps)) + 1), name=f"term{i}")
            m.d.comb += field.eq(self.w[lsb : lsb + width])
            with m.Switch(field):
                for t, exp in enumerate(exps, start=1):
                    with m.Case(t):
                        m.d.comb += term.eq(self.a << exp)
                with m.Default():
                    m.d.comb += term.eq(0)
            terms.append(term)
        magnitude = Signal(range(cfg.act_max * cfg.weight_max + 1), name="magnitude")
        m.d.comb += magnitude.eq(sum(terms[1:], terms[0]))
        m.d.comb += self.p.eq(Mux(sign, -magnitude, magnitude))
        return m


def multiplier_for(cfg: ArrayConfig) -> _Multiplier:
    """The multiplier ``cfg.weight_format`` asks for."""
    match cfg.weight_format:
        case "int":
            return IntMultiplier(cfg)
        case "apot":
            return ApotMultiplier(cfg)
    raise ValueError(f"weight_format must be int or apot, got {cfg.weight_format!r}")
