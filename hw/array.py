# amaranth: UnusedElaboratable=no
"""The generated top: an R x C weight-stationary array with its skew, de-skew and valid pipe.

Ports and timing follow docs/top-module.md "The generated top module": a vector presented with ``a_valid`` in cycle t leaves on
``y_data`` with ``y_valid`` in cycle t + L, L = ``cfg.latency`` = R + C - 1 (slot k waits
k cycles in the skew, crosses C PEs of its row, the partial sum goes down R rows, and
column c waits C-1-c cycles in the de-skew).

The top holds no logic of its own: every register lives in a submodule and every wire is
listed once in ``connections()`` (see ``hw.netlist``).
"""

from __future__ import annotations

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from hw.encoder import Encoder
from hw.netlist import Connection, Const, Ref
from hw.params import ArrayConfig
from hw.pe import ProcessingElement
from hw.skew import Deskew, Skew, ValidPipe, WeightSkew

__all__ = ["SystolicArray"]


def pe_name(row: int, col: int) -> str:
    """Instance name of PE(row, col): stable, so people can find ``pe_r3_c5.acc``."""
    return f"pe_r{row}_c{col}"


class SystolicArray(wiring.Component):
    """The ``top`` module of docs/top-module.md "The generated top module" for ``cfg``; ``a_state`` exists only with OverQ.

    With ``cfg.encoder`` the ``encoder`` (``hw.encoder``) takes the place of the
    ``skew``: ``top`` has ``a_code`` instead of ``a_data``/``a_state``, and the valid
    bit runs through the encoder's R stages, then ``valid_pipe``'s L - R.
    """

    module_name = "top"

    def __init__(self, cfg: ArrayConfig):
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, got {cfg!r}")
        self._cfg = cfg
        members = {
            "w_shift": In(1),
            "w_data": In(cfg.cols * cfg.weight_bits),
        }
        if cfg.double_buffer:
            members["w_swap"] = In(1)
        members |= {
            "a_valid": In(1),
        }
        if cfg.encoder:
            members["a_code"] = In(cfg.rows * cfg.code_bits)
        else:
            members["a_data"] = In(cfg.rows * cfg.act_bits)
        if cfg.overq_enabled and not cfg.encoder:
            members["a_state"] = In(2 * cfg.rows)
        members["y_valid"] = Out(1)
        members["y_data"] = Out(cfg.cols * cfg.acc_width)
        super().__init__(members)
        if cfg.encoder:
            children = {
                "valid_pipe": ValidPipe(cfg.latency - cfg.rows),
                "encoder": Encoder(cfg),
            }
        else:
            children = {"valid_pipe": ValidPipe(cfg.latency), "skew": Skew(cfg)}
        if cfg.double_buffer:
            children["wskew"] = WeightSkew(cfg)
        for k in range(cfg.rows):
            for c in range(cfg.cols):
                children[pe_name(k, c)] = ProcessingElement(cfg, row=k)
        children["deskew"] = Deskew(cfg)
        self._children = children

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def latency(self) -> int:
        return self._cfg.latency

    def pe(self, row: int, col: int) -> ProcessingElement:
        pe = self._children[pe_name(row, col)]
        assert isinstance(pe, ProcessingElement)
        return pe

    @property
    def children(self) -> dict:
        """Submodules by instance name, in the order the Verilog lists them."""
        return dict(self._children)

    def connections(self) -> list[Connection]:
        """Every wire of top, sinks in instance order (see ``hw.netlist``)."""
        cfg = self._cfg
        b, wb, acc = cfg.act_bits, cfg.weight_bits, cfg.acc_width
        wires = []

        def wire(sink_inst, sink_port, source, lo=None, hi=None):
            wires.append(Connection(Ref(sink_inst, sink_port, lo, hi), source))

        if cfg.encoder:
            # The encoder's triangle is the skew: slot k leaves it k + 1 cycles late.
            wire("valid_pipe", "valid_in", Ref("encoder", "valid_out"))
            wire("encoder", "valid_in", Ref(None, "a_valid"))
            wire("encoder", "code", Ref(None, "a_code"))
            skew, a_port = "encoder", "value_out"
        else:
            wire("valid_pipe", "valid_in", Ref(None, "a_valid"))
            wire("skew", "a_data", Ref(None, "a_data"))
            if cfg.overq_enabled and cfg.rows > 1:
                # Row 0 is always NORMAL: its state bits a_state[1:0] are not carried.
                wire("skew", "a_state", Ref(None, "a_state", 2, 2 * cfg.rows))
            skew, a_port = "skew", "a_out"
        db = cfg.double_buffer  # (never with the encoder: ArrayConfig rejects it)
        if db:
            wire("skew", "a_swap", Ref(None, "w_swap"))
            wire("wskew", "w_shift", Ref(None, "w_shift"))
            wire("wskew", "w_data", Ref(None, "w_data"))
        for k in range(cfg.rows):
            for c in range(cfg.cols):
                name = pe_name(k, c)
                has_mux = self.pe(k, c).has_mux
                if db:  # the shift token comes down the column (docs/top-module.md "Double-buffered weights")
                    above = (
                        Ref("wskew", "shift_out", c, c + 1)
                        if k == 0
                        else Ref(pe_name(k - 1, c), "shift_out")
                    )
                    wire(name, "w_shift", above)
                else:
                    wire(name, "w_shift", Ref(None, "w_shift"))
                if k == 0 and db:
                    wire(name, "w_in", Ref("wskew", "w_out", c * wb, (c + 1) * wb))
                    wire(name, "psum_in", Const(0, acc))
                elif k == 0:
                    wire(name, "w_in", Ref(None, "w_data", c * wb, (c + 1) * wb))
                    wire(name, "psum_in", Const(0, acc))
                else:
                    wire(name, "w_in", Ref(pe_name(k - 1, c), "w_out"))
                    wire(name, "psum_in", Ref(pe_name(k - 1, c), "psum_out"))
                if c == 0:
                    wire(name, "a_in", Ref(skew, a_port, k * b, (k + 1) * b))
                    if has_mux:
                        state = Ref(skew, "state_out", 2 * (k - 1), 2 * k)
                        wire(name, "state_in", state)
                    if db:
                        wire(name, "swap_in", Ref("skew", "swap_out", k, k + 1))
                else:
                    wire(name, "a_in", Ref(pe_name(k, c - 1), "a_out"))
                    if has_mux:
                        wire(name, "state_in", Ref(pe_name(k, c - 1), "state_out"))
                    if db:
                        wire(name, "swap_in", Ref(pe_name(k, c - 1), "swap_out"))
        for c in range(cfg.cols):
            bottom = Ref(pe_name(cfg.rows - 1, c), "psum_out")
            wire("deskew", "y_in", bottom, c * acc, (c + 1) * acc)
        wire(None, "y_valid", Ref("valid_pipe", "valid_out"))
        wire(None, "y_data", Ref("deskew", "y_out"))
        return wires

    def _value(self, ref: Ref | Const):
        if isinstance(ref, Const):
            return ref.value
        owner = self if ref.instance is None else self._children[ref.instance]
        value = getattr(owner, ref.port)
        return value if ref.whole else value[ref.lo : ref.hi]

    def elaborate(self, platform):
        m = Module()
        for name, child in self._children.items():
            m.submodules[name] = child
        for conn in self.connections():
            m.d.comb += self._value(conn.sink).eq(self._value(conn.source))
        return m
