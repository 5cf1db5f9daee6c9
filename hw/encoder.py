"""The OverQ encoder in hardware: integer codes in, (value, state) slots out.

The encoding rule (docs/overq-encoding.md "OverQ encoding") is a greedy scan from slot 0 to slot R-1:
whether slot k starts a decision or has already been written by an earlier one depends
on every slot before it. That dependency is the only sequential part; everything a
decision at slot k looks at (its own code, the zero flags of slots k+1 .. k+c) comes
straight from the input codes, because the scan never touches a slot right of its
position before it gets there. The scan state passed from slot k to slot k+1 is three
small numbers: how many of the next slots are already written (``skip``), and what
the next slot gets if it is (``partner_value``, ``partner_state``).

Structure: a triangular pipeline that takes the place of the input skew
-----------------------------------------------------------------------
The array needs slot k at row k exactly k cycles after slot 0 (the diagonal
wavefront), so the plain skew delays slot k by k registers anyway. Here those
registers carry the *codes* until the slot is decided, and the encoded (value, state)
after that. Stage s decides G consecutive slots, sG .. sG+G-1 (G =
``slots_per_stage``, ``SLOTS_PER_STAGE`` = 2 by default), one after the other in
combinational logic, from:

* their codes after s registers (``code_k{k}_d{s}``) and the codes of up to c slots
  after each (for the zero test);
* the scan state that stage s-1 registered after its last slot (``skip_k{k}_d1``,
  ``partner_value_k{k}_d1``, ``partner_state_k{k}_d1``, k = sG-1).

Each decided slot k is registered at the end of its stage and then delayed k - s more
cycles (``value_k{k}_d1 ..``, ``state_k{k}_d1 ..``) so that it leaves the encoder in
cycle k + 1 after its code entered. The codes of the slots not decided yet move on to
stage s+1 (``code_k{j}_d{s+1}``). Every slot therefore leaves one cycle later than
through the plain skew: the output register keeps the decision logic out of the PE's
multiply-accumulate path, and the array's latency grows by one cycle. Only the scan
state travels from stage to stage, down the diagonal with its own vector, so vectors
follow each other back to back and never see each other's state.

Why G = 2: a code is 2b bits (3b with precision) and an encoded slot b + 2, so a slot
is cheaper to delay once it is decided, and every stage boundary costs a scan-state
register. G = 1 (the plain triangle: stage k decides slot k) keeps the most codes in
flight; larger G decides earlier and chains G decisions in one cycle. At R = 8, A4
range c = 2 (synthesized alone, ``synth/reports/encoder.md``): G = 1 has 334
flip-flops and logic depth 11, G = 2 270 and 15, G = 4 238 and 22 (the array's PE
path is 44 deep). G = 2 halves the codes in flight while the encoder's depth stays
about a third of the PE's.

Signals per slot k (names in the Verilog):

``q_k{k}``             q of slot k (range only: the code itself; with precision
                       round(u / 2^b), half to even)
``outlier_k{k}``       q > M
``clipped_k{k}``       min(q, M): slot k's value when it is not split
``zero_k{k}_j{j}``     slot j's q is 0 (j = k+1 .. min(k+c, R-1))
``zero_at_k{k}``       distance to the nearest such zero (0: none in reach)
``covered_k{k}``       an earlier decision already wrote slot k (skip > 0)
``claim_k{k}``         range overwrite: not covered, outlier, zero_at > 0
``room_k{k}``,         victim mode: q' - M, q_(k+1) (``q_next_k{k}``, as slot k sees
``cheap_k{k}``         it) and q_(k+1) < q' - M: pruning the neighbour costs less
``victim_k{k}``        not covered, outlier, no zero in reach, cheap: slot k+1 is taken
                       as the zero (its value is lost)
``pair_k{k}``          precision pair: not covered, 0 < q <= M, slot k+1 a zero
``value_k{k}``,        slot k's result: the partner an earlier decision wrote if
``state_k{k}``         covered, else this slot's own decision
``skip_k{k}``          how many slots after k are already written
``partner_value_k{k}``, ``partner_state_k{k}``  what slot k+1 gets if it is covered:
                       the high bits of q' (RANGE), the low bits of u (PRECISION), or
                       min(q_k, M) moved one slot right (SHIFTED)
``valid_d{i}``         ``valid_in`` delayed i cycles (cleared by ``rst``)

Ports: ``valid_in``, ``code`` (slot k at ``[k*CB +: CB]``) in; ``value_out`` (slot k
at ``[k*b +: b]``, k + 1 cycles after its code), ``state_out`` (slots 1..R-1, slot k
at ``[2*(k-1) +: 2]``: slot 0 is always NORMAL, as in the skew's) and ``valid_out``
(``valid_in`` delayed R cycles: the vector's last slot is out) out.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.params import (
    STATE_NORMAL,
    STATE_PRECISION,
    STATE_RANGE,
    STATE_SHIFTED,
    ArrayConfig,
)
from hw.skew import delay_line

__all__ = ["Encoder", "SLOTS_PER_STAGE"]

# G: slots decided per pipeline stage (see the module docstring for the trade-off).
SLOTS_PER_STAGE = 2


class Encoder(wiring.Component):
    """Triangular pipelined OverQ encoder for ``cfg`` (see the module docstring)."""

    module_name = "encoder"

    def __init__(self, cfg: ArrayConfig, slots_per_stage: int = SLOTS_PER_STAGE):
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, got {cfg!r}")
        if not cfg.overq_enabled:
            raise ValueError("the encoder needs an OverQ mode (range and/or precision)")
        if (
            isinstance(slots_per_stage, bool)
            or not isinstance(slots_per_stage, int)
            or slots_per_stage < 1
        ):
            raise ValueError(f"slots_per_stage must be an integer >= 1, got {slots_per_stage!r}")
        self._cfg = cfg
        self._group = slots_per_stage
        r, b = cfg.rows, cfg.act_bits
        members = {
            "valid_in": In(1),
            "code": In(r * cfg.code_bits),
            "valid_out": Out(1),
            "value_out": Out(r * b),
        }
        if r > 1:
            members["state_out"] = Out(2 * (r - 1))
        super().__init__(members)

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def slots_per_stage(self) -> int:
        """G: slots decided per pipeline stage."""
        return self._group

    @property
    def latency(self) -> int:
        """Cycles from a vector's codes to its last slot's (value, state): R."""
        return self._cfg.rows

    def slot_latency(self, slot: int) -> int:
        """Cycles from a vector's codes to slot ``slot``'s (value, state): slot + 1."""
        return slot + 1

    @property
    def children(self) -> dict:
        return {}

    # --- combinational pieces of one stage --------------------------------------

    def _q(self, m: Module, code, name: str):
        """q of one slot as a named signal (2b bits, or 2b + 1 with precision)."""
        cfg = self._cfg
        b = cfg.act_bits
        if not cfg.precision_enabled:
            return code
        q = Signal(2 * b + 1, name=name)
        m.d.comb += q.eq(code[b:] + self._round_up(code))
        return q

    def _round_up(self, u):
        """Half-to-even rounding of u / 2^b: the fraction is above one half, or exactly
        one half and the integer part is odd."""
        b = self._cfg.act_bits
        half = u[b - 1]
        above = u[: b - 1].any()
        return half & (above | u[b])

    def _is_zero(self, code):
        """q == 0, without the adder: with precision, u <= 2^(b-1) (a half rounds to 0)."""
        cfg = self._cfg
        b = cfg.act_bits
        if not cfg.precision_enabled:
            return ~code.any()
        return ~code[b:].any() & ~(code[b - 1] & code[: b - 1].any())

    def _wide(self, m: Module, q, k: int):
        """q' = min(q, 2^(2b) - 1): the value a RANGE pair holds (``saturated_k{k}``)."""
        cfg = self._cfg
        b = cfg.act_bits
        if not cfg.precision_enabled:
            return q[: 2 * b]
        saturated = Signal(2 * b, name=f"saturated_k{k}")
        m.d.comb += saturated.eq(Mux(q[2 * b], cfg.wide_max, q[: 2 * b]))
        return saturated

    # --- the pipeline -------------------------------------------------------------

    def elaborate(self, platform):
        cfg = self._cfg
        r, b, c, cb = cfg.rows, cfg.act_bits, cfg.cascade, cfg.code_bits
        g = self._group
        big = cfg.act_max
        m = Module()

        # codes[k]: slot k's code as the current stage sees it (slot k waits k // G cycles)
        codes = [self.code[k * cb : (k + 1) * cb] for k in range(r)]
        skip_width = max(1, c.bit_length())
        # scan state left by the slot before (constants before slot 0)
        skip = Const(0, skip_width)
        partner_value, partner_state = Const(0, b), Const(STATE_NORMAL, 2)
        values, states = [], []

        for k in range(r):
            stage = k // g
            code = codes[k]
            q = self._q(m, code, f"q_k{k}")
            outlier = Signal(name=f"outlier_k{k}")
            m.d.comb += outlier.eq(q > big)
            clipped = Signal(b, name=f"clipped_k{k}")  # min(q, M)
            m.d.comb += clipped.eq(Mux(outlier, big, q[:b]))

            covered = Signal(name=f"covered_k{k}")
            m.d.comb += covered.eq(skip.any())

            # Range overwrite: the nearest zero among slots k+1 .. min(k+c, R-1).
            reach = range(k + 1, min(k + c, r - 1) + 1) if cfg.range_enabled else range(0)
            zeros = []
            for j in reach:
                zero = Signal(name=f"zero_k{k}_j{j}")
                m.d.comb += zero.eq(self._is_zero(codes[j]))
                zeros.append(zero)
            zero_at = Signal(skip_width, name=f"zero_at_k{k}")
            # separate `If`s in order of falling distance: the last true one, the nearest, wins
            for distance in reversed(range(1, len(zeros) + 1)):
                with m.If(zeros[distance - 1]):
                    m.d.comb += zero_at.eq(distance)
            claim = Signal(name=f"claim_k{k}")
            m.d.comb += claim.eq(~covered & outlier & zero_at.any())

            # Victim overwrite: no zero in reach, the right neighbour is cheaper to prune
            # than the outlier is to clip (q_(k+1) < q' - M; ties clip).
            wide = None
            victim = None
            if cfg.victim_enabled and k + 1 < r:
                wide = self._wide(m, q, k)
                room = Signal(2 * b, name=f"room_k{k}")
                m.d.comb += room.eq(wide - big)
                q_next = self._q(m, codes[k + 1], f"q_next_k{k}")
                cheap = Signal(name=f"cheap_k{k}")
                m.d.comb += cheap.eq(q_next < room)
                victim = Signal(name=f"victim_k{k}")
                m.d.comb += victim.eq(~covered & outlier & ~zero_at.any() & cheap)

            # Precision pair: a non-zero, non-outlier slot followed by a zero.
            pair = Signal(name=f"pair_k{k}")
            if cfg.precision_enabled and k + 1 < r:
                next_zero = zeros[0] if zeros else self._is_zero(codes[k + 1])
                m.d.comb += pair.eq(~covered & ~outlier & ~self._is_zero(code) & next_zero)

            # Slot k's (value, state) and the scan state the next slot sees. The partner
            # defaults to the covered case's (slot k's own value moved right, SHIFTED):
            # when skip_k{k} is 0 the partner is never read, so no branch clears it.
            value = Signal(b, name=f"value_k{k}")
            state = Signal(2, name=f"state_k{k}") if k else None
            last = k == r - 1
            if not last:
                next_skip = Signal(skip_width, name=f"skip_k{k}")
                next_value = Signal(b, name=f"partner_value_k{k}")
                next_state = Signal(2, name=f"partner_state_k{k}")
                # what slot k+1 gets when SHIFTED: slot k's own value, moved right
                m.d.comb += [next_value.eq(clipped), next_state.eq(STATE_SHIFTED)]

            def decide(v, f, skip_to=None, pv=None, pf=None):
                m.d.comb += value.eq(v)
                if state is not None:
                    m.d.comb += state.eq(f)
                if not last and skip_to is not None:
                    m.d.comb += next_skip.eq(skip_to)
                if not last and pv is not None:
                    m.d.comb += [next_value.eq(pv), next_state.eq(pf)]

            with m.If(covered):
                decide(partner_value, partner_state, skip - 1)
            with m.Elif(claim):
                if wide is None:
                    wide = self._wide(m, q, k)
                decide(wide[:b], STATE_NORMAL, zero_at, wide[b:], STATE_RANGE)
            if victim is not None:
                with m.Elif(victim):  # as if slot k+1 were the zero: its value is lost
                    decide(wide[:b], STATE_NORMAL, 1, wide[b:], STATE_RANGE)
            with m.Elif(pair):
                # p = u: a non-outlier's u is at most M * 2^b + 2^(b-1) < 2^(2b), so
                # the clip min(u, 2^(2b) - 1) never acts (checked exhaustively).
                decide(code[b : 2 * b], STATE_NORMAL, 1, code[:b], STATE_PRECISION)
            with m.Else():
                decide(clipped, STATE_NORMAL, 0)

            # Slot k leaves in cycle k + 1: registered at the end of its stage, then
            # delayed k - stage more cycles (the part of the skew decided early).
            values.append(delay_line(m, value, k - stage + 1, f"value_k{k}"))
            if state is not None:
                states.append(delay_line(m, state, k - stage + 1, f"state_k{k}"))

            if last:
                break
            skip, partner_value, partner_state = next_skip, next_value, next_state
            if (k + 1) % g == 0:  # stage boundary: register the scan state and the codes
                skip = delay_line(m, skip, 1, f"skip_k{k}")
                partner_value = delay_line(m, partner_value, 1, f"partner_value_k{k}")
                partner_state = delay_line(m, partner_state, 1, f"partner_state_k{k}")
                for j in range(k + 1, r):
                    reg = Signal(cb, name=f"code_k{j}_d{stage + 1}", reset_less=True)
                    m.d.sync += reg.eq(codes[j])
                    codes[j] = reg

        valid = delay_line(m, self.valid_in, r, "valid", reset=True)
        m.d.comb += [self.value_out.eq(Cat(*values)), self.valid_out.eq(valid)]
        if r > 1:
            m.d.comb += self.state_out.eq(Cat(*states))  # slot 0 is always NORMAL
        return m
