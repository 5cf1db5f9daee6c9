"""The per-column requantizer: accumulators in, the next layer's codes out.

    code = clamp(floor(((acc + bias) * mult + r) / 2^shift), 0, code_max)

with r = 2^(shift - 1) for shift >= 1, else 0 (round half up), the model of
``sw_ref.engine.requantize``. Three registered stages, the same for every column:
``biased`` = acc + bias, ``product`` = biased * mult, then ``rounded`` = product + r,
``shifted`` = rounded >> shift (arithmetic: floor) and the clamp into ``code``. With
``raw`` the accumulator itself passes through the same three stages (sign-extended),
so both kinds of output leave in the same cycle. Columns whose ``mask`` bit is clear
(outputs n >= N of a short last tile) leave as zero.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.params import (
    ENGINE_BIAS_BITS,
    ENGINE_CODE_MAX_BITS,
    ENGINE_MULT_BITS,
    ENGINE_SHIFT_BITS,
    EngineConfig,
)

__all__ = ["Requantizer"]


class Requantizer(wiring.Component):
    """``cfg.array.cols`` columns; ``latency`` = ``cfg.requant_latency`` cycles from
    ``valid_in`` to ``valid_out``. ``params`` holds column c's bias, mult, shift at
    ``[c*P +: P]`` (P = ``cfg.param_bits``: bias in the low 32 bits, then mult, shift);
    ``acc`` column c at ``[c*A +: A]``, ``out`` column c at ``[c*O +: O]``
    (A = ``cfg.acc_bits``, O = ``cfg.out_bits``). ``last`` travels beside the data.
    """

    module_name = "requant"

    def __init__(self, cfg: EngineConfig):
        if not isinstance(cfg, EngineConfig):
            raise TypeError(f"cfg must be an EngineConfig, got {cfg!r}")
        self._cfg = cfg
        cols = cfg.array.cols
        super().__init__(
            {
                "valid_in": In(1),
                "last_in": In(1),
                "raw": In(1),
                "code_max": In(ENGINE_CODE_MAX_BITS),
                "mask": In(cols),
                "acc": In(cols * cfg.acc_bits),
                "params": In(cols * cfg.param_bits),
                "valid_out": Out(1),
                "last_out": Out(1),
                "out": Out(cols * cfg.out_bits),
            }
        )

    @property
    def latency(self) -> int:
        return self._cfg.requant_latency

    @property
    def children(self) -> dict:
        return {}

    def elaborate(self, platform):
        cfg = self._cfg
        cols, A, O, P = cfg.array.cols, cfg.acc_bits, cfg.out_bits, cfg.param_bits
        m = Module()

        def stage(value, name, reset=False):
            reg = Signal.like(value, name=name, reset_less=not reset)
            m.d.sync += reg.eq(value)
            return reg

        valid, last = self.valid_in, self.last_in
        raw, code_max, mask = self.raw, self.code_max, self.mask
        outs = []
        for c in range(cols):
            acc = Signal(signed(A), name=f"acc_c{c}")
            word = self.params[c * P : (c + 1) * P]
            bias = Signal(signed(ENGINE_BIAS_BITS), name=f"bias_c{c}")
            mult = Signal(unsigned(ENGINE_MULT_BITS), name=f"mult_c{c}")
            shift = Signal(unsigned(ENGINE_SHIFT_BITS), name=f"shift_c{c}")
            m.d.comb += [
                acc.eq(self.acc[c * A : (c + 1) * A]),
                bias.eq(word[:ENGINE_BIAS_BITS]),
                mult.eq(word[ENGINE_BIAS_BITS : ENGINE_BIAS_BITS + ENGINE_MULT_BITS]),
                shift.eq(word[ENGINE_BIAS_BITS + ENGINE_MULT_BITS :]),
            ]
            # stage 1: acc + bias
            biased = Signal(signed(cfg.biased_bits), name=f"biased_c{c}")
            m.d.sync += biased.eq(acc + bias)
            acc_1 = stage(acc, f"acc_c{c}_d1")
            mult_1 = stage(mult, f"mult_c{c}_d1")
            shift_1 = stage(shift, f"shift_c{c}_d1")
            # stage 2: * mult
            product = Signal(signed(cfg.scaled_bits - 1), name=f"product_c{c}")
            m.d.sync += product.eq(biased * mult_1)
            acc_2 = stage(acc_1, f"acc_c{c}_d2")
            shift_2 = stage(shift_1, f"shift_c{c}_d2")
            # stage 3: + r, >> shift (floor), clamp
            half = Signal(unsigned(cfg.scaled_bits), name=f"half_c{c}")
            m.d.comb += half.eq((Const(1, cfg.scaled_bits) << shift_2) >> 1)  # 0 at shift 0
            rounded = Signal(signed(cfg.scaled_bits), name=f"rounded_c{c}")
            shifted = Signal(signed(cfg.scaled_bits), name=f"shifted_c{c}")
            code = Signal(unsigned(ENGINE_CODE_MAX_BITS), name=f"code_c{c}")
            m.d.comb += [
                rounded.eq(product + half),
                shifted.eq(rounded >> shift_2),
            ]
            outs.append((acc_2, shifted, code))
        raw_1 = stage(raw, "raw_d1")
        raw_2 = stage(raw_1, "raw_d2")
        code_max_1 = stage(code_max, "code_max_d1")
        code_max_2 = stage(code_max_1, "code_max_d2")
        mask_1 = stage(mask, "mask_d1")
        mask_2 = stage(mask_1, "mask_d2")
        valid_1, valid_2, valid_3 = (Signal(name=f"valid_d{i}") for i in (1, 2, 3))
        last_1, last_2, last_3 = (Signal(name=f"last_d{i}") for i in (1, 2, 3))
        m.d.sync += [
            valid_1.eq(valid),
            valid_2.eq(valid_1),
            valid_3.eq(valid_2),
            last_1.eq(last),
            last_2.eq(last_1),
            last_3.eq(last_2),
        ]
        fields = []
        for c, (acc_2, shifted, code) in enumerate(outs):
            m.d.comb += code.eq(Mux(shifted < 0, 0, Mux(shifted > code_max_2, code_max_2, shifted)))
            result = Signal(O, name=f"out_c{c}")
            chosen = Mux(raw_2, acc_2.as_signed(), code)
            m.d.sync += result.eq(Mux(mask_2[c], chosen, 0))
            fields.append(result)
        m.d.comb += [
            self.out.eq(Cat(*fields)),
            self.valid_out.eq(valid_3),
            self.last_out.eq(last_3),
        ]
        return m
