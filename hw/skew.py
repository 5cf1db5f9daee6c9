"""Input skew and output de-skew: the diagonal wavefront of a systolic array.

Slot k of a vector must reach row k's first PE k cycles after slot 0 reaches row 0, and
column c's result leaves the bottom row c cycles before column C-1's. ``Skew`` delays
slot k (with its state) by k cycles, ``Deskew`` delays column c by C-1-c cycles, so that
a whole vector enters and a whole result leaves in one cycle each. The delay lines are
data only (no reset): the valid bit that travels beside them in ``top`` is what ``rst``
clears.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.params import ArrayConfig

__all__ = ["Skew", "WeightSkew", "Deskew", "ValidPipe", "delay_line", "token_line"]


def delay_line(m: Module, value, depth: int, prefix: str, reset: bool = False):
    """``value`` delayed by ``depth`` registers named ``{prefix}_d1 .. _d{depth}``
    (cleared by ``rst`` only with ``reset``)."""
    for stage in range(1, depth + 1):
        reg = Signal(len(value), name=f"{prefix}_d{stage}", reset_less=not reset)
        m.d.sync += reg.eq(value)
        value = reg
    return value


def token_line(m: Module, value, depth: int, prefix: str):
    """A 1-bit control ``value`` delayed by ``depth`` registers that ``rst`` clears
    (``{prefix}_d1 ..``): a token in flight must not act after a reset."""
    for stage in range(1, depth + 1):
        reg = Signal(name=f"{prefix}_d{stage}")
        m.d.sync += reg.eq(value)
        value = reg
    return value


class Skew(wiring.Component):
    """Delays slot k of ``a_data`` (and its state in ``a_state``) by k cycles.

    Outputs are flat like the inputs: slot k at ``a_out[k*b +: b]``. Row 0 ignores its
    state, so an OverQ array carries only rows 1..R-1: ``a_state`` and ``state_out`` are
    2*(R-1) bits wide, row k's state at ``[2*(k-1) +: 2]``.
    """

    module_name = "skew"

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        members = {"a_data": In(cfg.rows * cfg.act_bits), "a_out": Out(cfg.rows * cfg.act_bits)}
        if cfg.overq_enabled and cfg.rows > 1:
            members["a_state"] = In(2 * (cfg.rows - 1))
            members["state_out"] = Out(2 * (cfg.rows - 1))
        if cfg.double_buffer:
            # The swap token travels with slot k (docs/top-module.md "Double-buffered weights").
            members["a_swap"] = In(1)
            members["swap_out"] = Out(cfg.rows)
        super().__init__(members)

    @property
    def children(self) -> dict:
        return {}

    def elaborate(self, platform):
        cfg = self._cfg
        b = cfg.act_bits
        m = Module()
        slots = []
        states = []
        for k in range(cfg.rows):
            slots.append(delay_line(m, self.a_data[k * b : (k + 1) * b], k, f"a_r{k}"))
            if k >= 1 and cfg.overq_enabled:
                state = self.a_state[2 * (k - 1) : 2 * k]
                states.append(delay_line(m, state, k, f"state_r{k}"))
        m.d.comb += self.a_out.eq(Cat(*slots))
        if states:
            m.d.comb += self.state_out.eq(Cat(*states))
        if cfg.double_buffer:
            swaps = [token_line(m, self.a_swap, k, f"swap_r{k}") for k in range(cfg.rows)]
            m.d.comb += self.swap_out.eq(Cat(*swaps))
        return m


class WeightSkew(wiring.Component):
    """Double buffering: delays column c of ``w_data`` and the ``w_shift`` token by c
    cycles, so that the shadow weights move with the same diagonal wavefront as the
    vectors and the swap (each PE sees the ports k + c cycles late).
    """

    module_name = "wskew"

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        width = cfg.cols * cfg.weight_bits
        super().__init__(
            {
                "w_shift": In(1),
                "w_data": In(width),
                "shift_out": Out(cfg.cols),
                "w_out": Out(width),
            }
        )

    @property
    def children(self) -> dict:
        return {}

    def elaborate(self, platform):
        cfg = self._cfg
        wb = cfg.weight_bits
        m = Module()
        data = [
            delay_line(m, self.w_data[c * wb : (c + 1) * wb], c, f"w_c{c}") for c in range(cfg.cols)
        ]
        shifts = [token_line(m, self.w_shift, c, f"shift_c{c}") for c in range(cfg.cols)]
        m.d.comb += [self.w_out.eq(Cat(*data)), self.shift_out.eq(Cat(*shifts))]
        return m


class Deskew(wiring.Component):
    """Delays column c of ``y_in`` by C-1-c cycles so a result leaves in one cycle."""

    module_name = "deskew"

    def __init__(self, cfg: ArrayConfig):
        self._cfg = cfg
        width = cfg.cols * cfg.acc_width
        super().__init__({"y_in": In(width), "y_out": Out(width)})

    @property
    def children(self) -> dict:
        return {}

    def elaborate(self, platform):
        cfg = self._cfg
        acc = cfg.acc_width
        m = Module()
        columns = [
            delay_line(m, self.y_in[c * acc : (c + 1) * acc], cfg.cols - 1 - c, f"y_c{c}")
            for c in range(cfg.cols)
        ]
        m.d.comb += self.y_out.eq(Cat(*columns))
        return m


class ValidPipe(wiring.Component):
    """``a_valid`` delayed by ``depth`` registers; ``rst`` clears every stage.

    This is what makes vectors in flight during a reset produce no output.
    """

    module_name = "valid_pipe"

    def __init__(self, depth: int):
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an integer >= 1, got {depth!r}")
        self._depth = depth
        super().__init__({"valid_in": In(1), "valid_out": Out(1)})

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def children(self) -> dict:
        return {}

    def elaborate(self, platform):
        m = Module()
        valid = self.valid_in
        for stage in range(1, self._depth + 1):
            reg = Signal(name=f"valid_d{stage}")
            m.d.sync += reg.eq(valid)
            valid = reg
        m.d.comb += self.valid_out.eq(valid)
        return m
