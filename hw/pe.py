# amaranth: UnusedElaboratable=no
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

With ``cfg.input_register`` the multiplier reads registered operands (the ``act`` and
``state`` registers that feed the PE to the right, and in OverQ rows the weight
selected in the cycle before, pre-scaled by the state's shift when it is an integer:
``weight_op``), one more cycle for the same reason. With ``cfg.double_buffer`` the PE
also holds a shadow weight copy, and the shift and swap reach it as tokens in step
with the vectors (``_double_buffer``; docs/hw.md).
"""

from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.mul import IntMultiplier, multiplier_for
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
        if self.preshift:
            self._mul = IntMultiplier(cfg, weight_shift=max(cfg.state_shifts))
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
        if cfg.double_buffer:
            members["shift_out"] = Out(1)
            members["swap_in"] = In(1)
            members["swap_out"] = Out(1)
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
    def preshift(self) -> bool:
        """Operand registers in an OverQ row with integer weights: the state's scale is
        applied to the weight before it is registered (``weight_op``), so the product
        goes straight into the accumulator's adder, as in the baseline PE. (An APoT
        weight is a code, not a number one can shift: it keeps the shift after the
        multiplier.)"""
        return (
            self._cfg.input_register
            and self.has_mux
            and self._cfg.weight_format == "int"
            and max(self._cfg.state_shifts) > 0
        )

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

        if cfg.double_buffer:
            own, above = self._double_buffer(m)
        else:
            # Weight register: reset to zero, shifted down while w_shift is high.
            weight = Signal(cfg.weight_bits, name="weight")
            with m.If(self.w_shift):
                m.d.sync += weight.eq(self.w_in)
            m.d.comb += self.w_out.eq(weight)
            own, above = weight, self.w_in

        # Datapath registers carry no reset: only valid bits, tokens and weights need one.
        act = Signal(cfg.act_bits, name="act", reset_less=True)
        state = Signal(2, name="state", reset_less=True) if self.has_mux else None
        shifts = cfg.state_shifts
        scaled = Signal(signed(cfg.acc_width), name="scaled")
        if cfg.input_register:
            # The operands wait one cycle in registers (act and state already exist:
            # they are what the PE to the right reads), so the multiplier starts at
            # flip-flops of this PE and the weight mux sits in the cycle before.
            m.d.comb += mul.a.eq(act)
            select = state
            if self.preshift:
                use_above = Signal(name="use_above")
                weight_sel = Signal(cfg.weight_bits, name="weight_sel")
                weight_op = Signal(signed(len(mul.w)), name="weight_op", reset_less=True)
                m.d.comb += [
                    use_above.eq(self.state_in != STATE_NORMAL),
                    weight_sel.eq(Mux(use_above, above, own)),
                ]
                with m.Switch(self.state_in):
                    for shift in sorted(set(shifts)):
                        states = [s for s, value in enumerate(shifts) if value == shift]
                        with m.Case(*states):
                            m.d.sync += weight_op.eq(weight_sel.as_signed() << shift)
                m.d.comb += [mul.w.eq(weight_op), scaled.eq(mul.p)]
            elif self.has_mux:
                use_above = Signal(name="use_above")
                weight_sel = Signal(cfg.weight_bits, name="weight_sel", reset_less=True)
                m.d.comb += use_above.eq(self.state_in != STATE_NORMAL)
                m.d.sync += weight_sel.eq(Mux(use_above, above, own))
                m.d.comb += mul.w.eq(weight_sel)
            elif cfg.double_buffer:
                # The active register: a swap in the previous cycle already updated it.
                m.d.comb += mul.w.eq(self._active)
            else:
                m.d.comb += mul.w.eq(own)
        else:
            m.d.comb += mul.a.eq(self.a_in)
            select = self.state_in if self.has_mux else None
            if self.has_mux:
                use_above = Signal(name="use_above")
                m.d.comb += [
                    use_above.eq(self.state_in != STATE_NORMAL),
                    mul.w.eq(Mux(use_above, above, own)),
                ]
        if self.has_mux and not self.preshift:  # (with preshift the scale is in weight_op)
            with m.Switch(select):
                for shift in sorted(set(shifts)):
                    states = [s for s, value in enumerate(shifts) if value == shift]
                    with m.Case(*states):
                        m.d.comb += scaled.eq(mul.p << shift)
        elif not self.has_mux:
            if not cfg.input_register:
                m.d.comb += mul.w.eq(own)
            m.d.comb += scaled.eq(mul.p << shifts[STATE_NORMAL])

        addend = scaled
        if cfg.product_register:
            # Wide enough for the largest shift this PE applies, not the accumulator
            # (nor wider than it, when a narrow acc_bits lets the sums wrap).
            used = shifts if self.has_mux else (shifts[STATE_NORMAL],)
            # (with preshift the product already carries the shift: the same width)
            width = min(cfg.product_bits + max(used), cfg.acc_width)
            product = Signal(signed(width), name="product", reset_less=True)
            m.d.sync += product.eq(scaled[:width].as_signed())
            addend = product
        acc = Signal(signed(cfg.acc_width), name="acc", reset_less=True)
        m.d.sync += [act.eq(self.a_in), acc.eq(self.psum_in + addend)]
        m.d.comb += [self.a_out.eq(act), self.psum_out.eq(acc)]
        if self.has_mux:
            m.d.sync += state.eq(self.state_in)
            m.d.comb += self.state_out.eq(state)
        return m

    def _double_buffer(self, m: Module):
        """The shadow chain and the swap; returns the (own, above) weights for this cycle.

        Every control here is a token that reaches this PE in step with the vectors'
        wavefront, k + c cycles after it was on the port: ``w_shift`` (delayed one row
        at a time down the column, ``shift_out``) and ``swap_in`` (delayed with the
        activation, ``swap_out``). So each PE sees the port's history k + c cycles
        late and every PE agrees on which vector a swap belongs to.

        ``shadow`` shifts from ``w_in``, which is the shadow of the PE above *one cycle
        ago* (its ``w_out``): that PE took the same shift token a cycle earlier, so its
        register already holds the shifted value; the delayed copy ``shadow_prev`` is
        the value this PE's shift must take. On a swap, ``weight`` takes ``shadow`` and
        ``weight_above`` (OverQ rows >= 1: the W[k-1] that SHIFTED / RANGE / PRECISION
        slots read) takes ``w_in``, the above PE's shadow as of the same port cycle. In
        the swap cycle itself the multiplier already reads the new values (a 2:1 mux).
        """
        cfg = self._cfg
        wb = cfg.weight_bits
        shadow = Signal(wb, name="shadow")
        shadow_prev = Signal(wb, name="shadow_prev")
        shift = Signal(name="shift")
        swap = Signal(name="swap")
        weight = Signal(wb, name="weight")
        with m.If(self.w_shift):
            m.d.sync += shadow.eq(self.w_in)
        m.d.sync += [shadow_prev.eq(shadow), shift.eq(self.w_shift), swap.eq(self.swap_in)]
        m.d.comb += [self.w_out.eq(shadow_prev), self.shift_out.eq(shift), self.swap_out.eq(swap)]
        with m.If(self.swap_in):
            m.d.sync += weight.eq(shadow)
        self._active = weight
        own = Signal(wb, name="weight_now")
        m.d.comb += own.eq(Mux(self.swap_in, shadow, weight))
        above = None
        if self.has_mux:
            weight_above = Signal(wb, name="weight_above")
            with m.If(self.swap_in):
                m.d.sync += weight_above.eq(self.w_in)
            above = Signal(wb, name="above_now")
            m.d.comb += above.eq(Mux(self.swap_in, self.w_in, weight_above))
        return own, above
