"""One processing element of the weight-stationary array.

PE(k, c) holds the weight code W[k][c]. Each cycle it multiplies the activation that
enters from the left by its weight (or, in an OverQ row k >= 1, by the weight of the PE
above when the slot's state is not NORMAL), scales the product by the state's shift,
adds the partial sum from above and registers the result for the PE below. The
activation and its state are registered and passed to the right.

With ``cfg.product_register`` the scaled product is registered first (``product``)
and added to ``psum_in`` one cycle later. Every PE is one cycle late, including the one
above, whose partial sum therefore arrives one cycle later too: the chain stays in
step and the array's latency grows by one cycle (``cfg.latency``).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.mul import multiplier_for
from hw.params import STATE_NORMAL, ArrayConfig

__all__ = ["ProcessingElement"]


class ProcessingElement(wiring.Component):
    """A PE for row ``row`` of the array described by ``cfg``.

    Ports: ``w_shift``/``w_in``/``w_out`` form the weight shift chain (``w_in`` is also
    the weight of the PE above, read by the OverQ mux); ``a_in``/``a_out`` and, in OverQ
    rows >= 1, ``state_in``/``state_out`` move right; ``psum_in``/``psum_out`` move
    down. Row 0 has no row above, hence no mux and no state: it always acts as NORMAL.
    Every PE of rows >= 1 is identical, so the Verilog holds one ``pe`` definition.
    """

    def __init__(self, cfg: ArrayConfig, row: int = 1):
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, got {cfg!r}")
        if isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < cfg.rows:
            raise ValueError(f"row must be in 0..{cfg.rows - 1}, got {row!r}")
        self._cfg = cfg
        self._row = row
        self._mul = multiplier_for(cfg)
        members = {
            "w_shift": In(1),
            "w_in": In(cfg.weight_bits),
            "w_out": Out(cfg.weight_bits),
            "a_in": In(cfg.act_bits),
            "a_out": Out(cfg.act_bits),
            "psum_in": In(signed(cfg.acc_width)),
            "psum_out": Out(signed(cfg.acc_width)),
        }
        if self.has_mux:
            members["state_in"] = In(2)
            members["state_out"] = Out(2)
        super().__init__(members)

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def row(self) -> int:
        return self._row

    @property
    def has_mux(self) -> bool:
        """OverQ rows >= 1 can take the weight of the row above."""
        return self._cfg.overq_enabled and self._row >= 1

    @property
    def module_name(self) -> str:
        """Verilog definition name: ``pe``, or ``pe_row0`` for the mux-less OverQ row 0."""
        if self._cfg.overq_enabled and self._row == 0:
            return "pe_row0"
        return "pe"

    @property
    def children(self) -> dict:
        return {"mul": self._mul}

    def elaborate(self, platform):
        cfg = self._cfg
        m = Module()
        m.submodules.mul = mul = self._mul

        # Weight register: reset to zero, shifted down while w_shift is high.
        weight = Signal(cfg.weight_bits, name="weight")
        with m.If(self.w_shift):
            m.d.sync += weight.eq(self.w_in)
        m.d.comb += self.w_out.eq(weight)

        shifts = cfg.state_shifts
        scaled = Signal(signed(cfg.acc_width), name="scaled")
        m.d.comb += mul.a.eq(self.a_in)
        if self.has_mux:
            use_above = Signal(name="use_above")
            m.d.comb += [
                use_above.eq(self.state_in != STATE_NORMAL),
                mul.w.eq(Mux(use_above, self.w_in, weight)),
            ]
            with m.Switch(self.state_in):
                for shift in sorted(set(shifts)):
                    states = [s for s, value in enumerate(shifts) if value == shift]
                    with m.Case(*states):
                        m.d.comb += scaled.eq(mul.p << shift)
        else:
            m.d.comb += [
                mul.w.eq(weight),
                scaled.eq(mul.p << shifts[STATE_NORMAL]),
            ]

        # Datapath registers carry no reset: only valid bits and weights need one.
        addend = scaled
        if cfg.product_register:
            # Wide enough for the largest shift this PE applies, not the accumulator
            # (nor wider than it, when a narrow acc_bits lets the sums wrap).
            used = shifts if self.has_mux else (shifts[STATE_NORMAL],)
            width = min(cfg.product_bits + max(used), cfg.acc_width)
            product = Signal(signed(width), name="product", reset_less=True)
            m.d.sync += product.eq(scaled[:width].as_signed())
            addend = product
        act = Signal(cfg.act_bits, name="act", reset_less=True)
        acc = Signal(signed(cfg.acc_width), name="acc", reset_less=True)
        m.d.sync += [act.eq(self.a_in), acc.eq(self.psum_in + addend)]
        m.d.comb += [self.a_out.eq(act), self.psum_out.eq(acc)]
        if self.has_mux:
            state = Signal(2, name="state", reset_less=True)
            m.d.sync += state.eq(self.state_in)
            m.d.comb += self.state_out.eq(state)
        return m
