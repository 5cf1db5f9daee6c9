# amaranth: UnusedElaboratable=no
"""The layer engine's top: AXI4-Stream ports, memories and the controller (docs/engine.md).

Data path, one vector at a time:

    s_axis_x -> pad mask -> encoder -> realign -> act_mem --read--> array --> accumulate
    s_axis_w ----------------------------------------------(shadow)--^        |  acc_mem
                                                       requantizer <---------/
                                                         -> out_fifo -> m_axis_y

* X beats (R codes, K tile t of row m, t-major) enter the OverQ encoder as they
  arrive; its (value, state) slots, realigned to one word per vector, are written to
  the activation memory in arrival order. The memory stores ``cfg.vector_bits`` per
  vector (``cfg.slot_bits`` per slot): X is sent once and read once per N tile.
* W beats (one weight row, rows R-1..0 of each tile, tiles in the order they are
  used) shift into the array's shadow weights one cycle after they are accepted, so
  the next tile loads while the current one computes.
* The controller issues one vector per cycle: (n tile, k tile, m) in that nesting,
  reading activation address t*M + m once it has been written. The first vector of a
  tile swaps the shadow weights in. A vector of the last K tile is issued only on
  credit: the output FIFO always has room for every such vector in flight, so the
  array (which cannot stall) never overruns a sink that holds tready low.
* Each result: acc = (first K tile ? 0 : acc_mem[m]) + y; stored back, or (last K
  tile) requantized and queued for m_axis_y.

``external`` maps a child's instance name to (definition name, its ports) for the
emitted Verilog: each child is converted on its own (the array as the structural
``top_array``) and instantiated here, wired to the child's own port signals; by
default the children are submodules, so amaranth.sim runs the same description.
"""

from __future__ import annotations

from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Signal, signed
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from hw.array import SystolicArray
from hw.encoder import Encoder
from hw.engine.fifo import OutputFifo
from hw.engine.requant import Requantizer
from hw.params import (
    ENGINE_BIAS_BITS,
    ENGINE_CODE_MAX_BITS,
    ENGINE_ERRORS,
    ENGINE_FIELD_BITS,
    ENGINE_MULT_BITS,
    ENGINE_SHIFT_MAX,
    STATE_PRECISION,
    EngineConfig,
)
from hw.skew import delay_line

__all__ = ["Engine", "AXIS_PORTS"]

# (name, direction of the data) of the four AXI4-Stream ports.
AXIS_PORTS = (("s_axis_cmd", "in"), ("s_axis_w", "in"), ("s_axis_x", "in"), ("m_axis_y", "out"))

IDLE, PARAMS, DROP, RUN = range(4)


class Engine(wiring.Component):
    """The ``top`` of ``--engine`` for ``cfg``; see the module docstring and docs/engine.md."""

    module_name = "top"

    def __init__(self, cfg: EngineConfig, external: dict | None = None):
        if not isinstance(cfg, EngineConfig):
            raise TypeError(f"cfg must be an EngineConfig, got {cfg!r}")
        self._cfg = cfg
        self._external = dict(external or {})
        widths = {
            "s_axis_cmd": cfg.cmd_bits,
            "s_axis_w": cfg.w_bits,
            "s_axis_x": cfg.x_bits,
            "m_axis_y": cfg.y_bits,
        }
        members = {}
        for name, direction in AXIS_PORTS:
            data, back = (In, Out) if direction == "in" else (Out, In)
            members[f"{name}_tdata"] = data(widths[name])
            members[f"{name}_tvalid"] = data(1)
            members[f"{name}_tready"] = back(1)
            members[f"{name}_tlast"] = data(1)
        members["status_busy"] = Out(1)
        members["status_error"] = Out(len(ENGINE_ERRORS))
        super().__init__(members)
        self._encoder = Encoder(cfg.array)
        self._requant = Requantizer(cfg)
        self._fifo = OutputFifo(cfg.array.cols * cfg.out_bits + 1, cfg.fifo_depth)
        self._pe_array = SystolicArray(cfg.array)

    @property
    def cfg(self) -> EngineConfig:
        return self._cfg

    @property
    def children(self) -> dict:
        """Submodules by instance name (``external`` may replace each by an instance)."""
        return {
            "encoder": self._encoder,
            "requant": self._requant,
            "out_fifo": self._fifo,
            "array": self._pe_array,
        }

    # --- pieces -------------------------------------------------------------------

    def _axis_in(self, m: Module, name: str, width: int):
        """The AXI4-Stream input ``name`` as an ``amaranth.lib.stream`` interface."""
        port = stream.Signature(width).flip().create(path=(name,))
        m.d.comb += [
            port.payload.eq(getattr(self, f"{name}_tdata")),
            port.valid.eq(getattr(self, f"{name}_tvalid")),
            getattr(self, f"{name}_tready").eq(port.ready),
        ]
        return port

    def _place(self, m: Module, name: str, component) -> None:
        """Add a child: itself (simulation), or an instance of its emitted definition,
        wired to the child's own port signals (which are then wires of this module)."""
        if name not in self._external:
            m.submodules[name] = component
            return
        def_name, leaf_ports = self._external[name]
        pins = {
            f"i_{p}": s
            for p, s in (("clk", ClockSignal()), ("rst", ResetSignal()))
            if p in leaf_ports
        }
        for path, member, value in component.signature.flatten(component):
            port = "__".join(map(str, path))
            pins[("i_" if member.flow == In else "o_") + port] = value
        m.submodules[name] = Instance(def_name, **pins)

    def elaborate(self, platform):
        cfg = self._cfg
        a = cfg.array
        R, C, b, CB, WB = a.rows, a.cols, a.act_bits, a.code_bits, a.weight_bits
        A, SB = cfg.acc_bits, cfg.state_bits
        F = ENGINE_FIELD_BITS
        m = Module()
        encoder, requant, fifo, array = self._encoder, self._requant, self._fifo, self._pe_array
        for name, child in self.children.items():
            self._place(m, name, child)

        cmd = self._axis_in(m, "s_axis_cmd", cfg.cmd_bits)
        w_in = self._axis_in(m, "s_axis_w", cfg.w_bits)
        x_in = self._axis_in(m, "s_axis_x", cfg.x_bits)

        # --- command decoder --------------------------------------------------------
        phase = Signal(range(4), name="phase")
        cmd_m = Signal(F, name="cmd_m")
        cmd_k = Signal(F, name="cmd_k")
        cmd_n = Signal(F, name="cmd_n")
        cmd_raw = Signal(name="cmd_raw")
        cmd_code_max = Signal(ENGINE_CODE_MAX_BITS, name="cmd_code_max")
        error = Signal(len(ENGINE_ERRORS), name="error")
        beat = cmd.payload
        hdr_m, hdr_k, hdr_n = beat[0:F], beat[F : 2 * F], beat[2 * F : 3 * F]
        hdr_code_max = beat[3 * F : 3 * F + ENGINE_CODE_MAX_BITS]
        hdr_raw = beat[63]
        hdr_error = Signal(len(ENGINE_ERRORS), name="header_error")
        m.d.comb += hdr_error.eq(
            Cat(
                (hdr_m == 0) | (hdr_m > cfg.max_m),
                (hdr_k == 0) | (hdr_k > cfg.max_k),
                (hdr_n == 0) | (hdr_n > cfg.max_n),
                ~hdr_raw & (hdr_code_max > (1 << CB) - 1),
                Const(0, 1),
            )
        )
        param_shift = beat[ENGINE_BIAS_BITS + ENGINE_MULT_BITS : cfg.param_bits]
        param_bad = Signal(name="param_bad")
        m.d.comb += param_bad.eq(param_shift > ENGINE_SHIFT_MAX)
        m.d.comb += [
            cmd.ready.eq(phase != RUN),
            self.status_busy.eq(phase != IDLE),
            self.status_error.eq(error),
        ]
        cmd_take = Signal(name="cmd_take")
        m.d.comb += cmd_take.eq(cmd.valid & cmd.ready)
        start = Signal(name="start")  # the command's counters restart (header accepted)

        # parameter memory: one word per N tile, column c's parameters at [c*P +: P]
        P = cfg.param_bits
        m.submodules.param_mem = param_mem = Memory(shape=C * P, depth=cfg.max_n_tiles, init=[])
        param_wr = param_mem.write_port(granularity=P)
        param_rd = param_mem.read_port()
        p_tile = Signal(range(cfg.max_n_tiles + 1), name="param_tile")
        p_col = Signal(range(C), name="param_col")
        p_count = Signal(F, name="param_count")
        m.d.comb += [
            param_wr.addr.eq(p_tile),
            param_wr.data.eq(Cat(*[beat[:P]] * C)),
        ]
        with m.Switch(phase):
            with m.Case(IDLE):
                with m.If(cmd_take):
                    m.d.sync += [
                        cmd_m.eq(hdr_m),
                        cmd_k.eq(hdr_k),
                        cmd_n.eq(hdr_n),
                        cmd_raw.eq(hdr_raw),
                        cmd_code_max.eq(hdr_code_max),
                        error.eq(hdr_error),
                        p_tile.eq(0),
                        p_col.eq(0),
                        p_count.eq(0),
                    ]
                    with m.If(hdr_error.any()):
                        m.d.sync += phase.eq(Mux(self.s_axis_cmd_tlast, IDLE, DROP))
                    with m.Elif(hdr_raw):
                        m.d.sync += phase.eq(RUN)
                        m.d.comb += start.eq(1)
                    with m.Else():
                        m.d.sync += phase.eq(PARAMS)
            with m.Case(PARAMS):
                with m.If(cmd_take):
                    with m.If(param_bad):
                        m.d.sync += [
                            error.eq(1 << ENGINE_ERRORS.index("bad_shift")),
                            phase.eq(Mux(self.s_axis_cmd_tlast, IDLE, DROP)),
                        ]
                    with m.Else():
                        m.d.comb += param_wr.en.eq(1 << p_col) if C > 1 else param_wr.en.eq(1)
                        m.d.sync += p_count.eq(p_count + 1)
                        with m.If(p_col == C - 1):
                            m.d.sync += [p_col.eq(0), p_tile.eq(p_tile + 1)]
                        with m.Else():
                            m.d.sync += p_col.eq(p_col + 1)
                        with m.If(p_count + 1 == cmd_n):
                            m.d.sync += phase.eq(RUN)
                            m.d.comb += start.eq(1)
            with m.Case(DROP):
                with m.If(cmd_take & self.s_axis_cmd_tlast):
                    m.d.sync += phase.eq(IDLE)
        running = Signal(name="running")
        m.d.comb += running.eq(phase == RUN)

        # --- X ingest: pad mask -> encoder -> realign -> activation memory -------------
        x_m = Signal(F, name="x_m")
        x_k = Signal(F + 1, name="x_k")  # first slot of the K tile being received
        x_done = Signal(name="x_done")
        m.d.comb += [x_done.eq(x_k >= cmd_k), x_in.ready.eq(running & ~x_done)]
        x_take = Signal(name="x_take")
        m.d.comb += x_take.eq(x_in.valid & x_in.ready)
        # Slots past K are zero-padded. In cycles without a vector the encoder sees
        # all-ones codes: then every flag inside it changes after reset, which Icarus
        # needs (it may start a Yosys `always @*` block after its time-0 events, and a
        # block whose inputs never change would hold X; docs/engine.md).
        masked = []
        for k in range(R):
            code = Signal(CB, name=f"x_code_k{k}")
            m.d.comb += code.eq(
                Mux(
                    ~x_take,
                    (1 << CB) - 1,
                    Mux(x_k + k < cmd_k, x_in.payload[k * CB : (k + 1) * CB], 0),
                )
            )
            masked.append(code)
        m.d.comb += [encoder.valid_in.eq(x_take), encoder.code.eq(Cat(*masked))]
        with m.If(start):
            m.d.sync += [x_m.eq(0), x_k.eq(0)]
        with m.Elif(x_take):
            with m.If(x_m == cmd_m - 1):
                m.d.sync += [x_m.eq(0), x_k.eq(x_k + R)]
            with m.Else():
                m.d.sync += x_m.eq(x_m + 1)
        # slot k leaves the encoder k + 1 cycles after its code: delay it R - 1 - k more
        values, states = [], []
        for k in range(R):
            values.append(
                delay_line(m, encoder.value_out[k * b : (k + 1) * b], R - 1 - k, f"enc_value_k{k}")
            )
            if k:
                state = encoder.state_out[2 * (k - 1) : 2 * k]
                if SB == 1:  # only NORMAL and one other state occur: keep one bit
                    state = state[0] if not a.range_enabled else state[1]
                states.append(delay_line(m, state, R - 1 - k, f"enc_state_k{k}"))
        m.submodules.act_mem = act_mem = Memory(shape=cfg.vector_bits, depth=cfg.act_depth, init=[])
        act_wr = act_mem.write_port()
        act_rd = act_mem.read_port()
        written = Signal(range(cfg.act_depth + 1), name="x_written")
        m.d.comb += [
            act_wr.en.eq(encoder.valid_out),
            act_wr.addr.eq(written),
            act_wr.data.eq(Cat(*values, *states)),
        ]
        with m.If(start):
            m.d.sync += written.eq(0)
        with m.Elif(encoder.valid_out):
            m.d.sync += written.eq(written + 1)

        # --- weights: one row per beat into the shadow copy ---------------------------
        w_rows = Signal(range(R + 1), name="w_rows")  # rows of the next tile in the shadow
        w_k = Signal(F + 1, name="w_k")
        w_n = Signal(F + 1, name="w_n")
        w_done = Signal(name="w_done")
        shadow_full = Signal(name="shadow_full")
        swap_now = Signal(name="swap_now")  # the issue below makes the shadow active
        m.d.comb += [w_done.eq(w_n >= cmd_n), shadow_full.eq(w_rows == R)]
        m.d.comb += w_in.ready.eq(running & ~w_done & (~shadow_full | swap_now))
        w_take = Signal(name="w_take")
        m.d.comb += w_take.eq(w_in.valid & w_in.ready)
        w_shift = Signal(name="w_shift")  # one cycle after the beat: in step with the read
        w_data = Signal(C * WB, name="w_data")
        m.d.sync += [w_shift.eq(w_take & ~start), w_data.eq(w_in.payload[: C * WB])]
        with m.If(start):
            m.d.sync += [w_rows.eq(0), w_k.eq(0), w_n.eq(0)]
        with m.Else():
            m.d.sync += w_rows.eq(Mux(swap_now, 0, w_rows) + w_take)
            with m.If(w_take & (Mux(swap_now, 0, w_rows) == R - 1)):
                with m.If(w_k + R >= cmd_k):
                    m.d.sync += [w_k.eq(0), w_n.eq(w_n + C)]
                with m.Else():
                    m.d.sync += w_k.eq(w_k + R)

        # --- issue: one vector per cycle, (n tile, k tile, m) --------------------------
        i_m = Signal(F, name="issue_m")
        i_k = Signal(F + 1, name="issue_k")
        i_n = Signal(F + 1, name="issue_n")
        i_tile = Signal(range(cfg.max_n_tiles + 1), name="issue_n_tile")
        i_addr = Signal(range(cfg.act_depth + 1), name="issue_addr")
        i_done = Signal(name="issue_done")
        i_first = Signal(name="issue_first_k")
        i_last = Signal(name="issue_last_k")
        i_final = Signal(name="issue_final")  # the command's last output vector
        credits_used = Signal(range(cfg.fifo_depth + 1), name="credits_used")
        credit_ok = Signal(name="credit_ok")
        issue = Signal(name="issue")
        m.d.comb += [
            i_done.eq(i_n >= cmd_n),
            i_first.eq(i_k == 0),
            i_last.eq(i_k + R >= cmd_k),
            i_final.eq(i_last & (i_m == cmd_m - 1) & (i_n + C >= cmd_n)),
            credit_ok.eq(credits_used < cfg.fifo_depth),
            issue.eq(
                running
                & ~i_done
                & (written > i_addr)
                & ((i_m != 0) | shadow_full)
                & (~i_last | credit_ok)
            ),
            swap_now.eq(issue & (i_m == 0)),
            act_rd.addr.eq(i_addr),
        ]
        mask = Signal(C, name="issue_mask")
        m.d.comb += mask.eq(Cat(*[i_n + c < cmd_n for c in range(C)]))
        with m.If(start):
            m.d.sync += [i_m.eq(0), i_k.eq(0), i_n.eq(0), i_tile.eq(0), i_addr.eq(0)]
        with m.Elif(issue):
            with m.If(i_m == cmd_m - 1):
                m.d.sync += i_m.eq(0)
                with m.If(i_last):
                    m.d.sync += [i_k.eq(0), i_n.eq(i_n + C), i_tile.eq(i_tile + 1), i_addr.eq(0)]
                with m.Else():
                    m.d.sync += [i_k.eq(i_k + R), i_addr.eq(i_addr + 1)]
            with m.Else():
                m.d.sync += [i_m.eq(i_m + 1), i_addr.eq(i_addr + 1)]

        # the read takes one cycle: the vector and its swap reach the array together
        a_valid = Signal(name="a_valid")
        a_swap = Signal(name="a_swap")
        m.d.sync += [a_valid.eq(issue), a_swap.eq(swap_now)]
        word = act_rd.data
        a_data = Signal(R * b, name="a_data")
        a_state = Signal(2 * R, name="a_state")
        m.d.comb += a_data.eq(word[: R * b])
        for k in range(1, R):
            bits = word[R * b + (k - 1) * SB : R * b + k * SB]
            if SB == 1:
                bits = Mux(bits, STATE_PRECISION if not a.range_enabled else 2, 0)
            m.d.comb += a_state[2 * k : 2 * k + 2].eq(bits)
        m.d.comb += [
            array.w_shift.eq(w_shift),
            array.w_data.eq(w_data),
            array.w_swap.eq(a_swap),
            array.a_valid.eq(a_valid),
            array.a_data.eq(a_data),
            array.a_state.eq(a_state),
        ]
        y_data = array.y_data  # y_valid equals the tag's valid bit below

        # --- tags travel beside the vector: read acc/params 1 cycle before the result --
        L = a.latency
        layout = (
            ("valid", issue),
            ("first", i_first),
            ("last", i_last),
            ("final", i_final),
            ("m", i_m),
            ("tile", i_tile),
            ("mask", mask),
        )
        tagged = Cat(*(value for _, value in layout))
        for stage in range(1, L + 2):
            reg = Signal(len(tagged), name=f"tag_d{stage}")
            m.d.sync += reg.eq(tagged)
            tagged = reg
            if stage == L:
                early = reg

        def fields(word) -> dict:
            out, pos = {}, 0
            for name, value in layout:
                out[name] = word[pos : pos + len(value)]
                pos += len(value)
            return out

        early, tag = fields(early), fields(tagged)  # one cycle before the result, with it
        r_valid, r_first, r_last, r_final = tag["valid"], tag["first"], tag["last"], tag["final"]
        r_m, r_mask = tag["m"], tag["mask"]
        m.submodules.acc_mem = acc_mem = Memory(shape=C * A, depth=cfg.max_m, init=[])
        acc_wr = acc_mem.write_port()
        acc_rd = acc_mem.read_port(transparent_for=(acc_wr,))
        m.d.comb += [acc_rd.addr.eq(early["m"]), param_rd.addr.eq(early["tile"])]
        sums = []
        for c in range(C):
            y_c = Signal(signed(A), name=f"y_c{c}")
            m.d.comb += y_c.eq(y_data[c * a.acc_width : (c + 1) * a.acc_width].as_signed())
            prior = Signal(A, name=f"prior_c{c}")
            m.d.comb += prior.eq(Mux(r_first, 0, acc_rd.data[c * A : (c + 1) * A]))
            total = Signal(A, name=f"sum_c{c}")
            m.d.comb += total.eq(prior + y_c)
            sums.append(total)
        result_valid = Signal(name="result_valid")
        m.d.comb += [
            result_valid.eq(r_valid),
            acc_wr.en.eq(result_valid & ~r_last),
            acc_wr.addr.eq(r_m),
            acc_wr.data.eq(Cat(*sums)),
            requant.valid_in.eq(result_valid & r_last),
            requant.last_in.eq(r_final),
            requant.raw.eq(cmd_raw),
            requant.code_max.eq(cmd_code_max),
            requant.mask.eq(r_mask),
            requant.acc.eq(Cat(*sums)),
            requant.params.eq(param_rd.data),
            fifo.w_en.eq(requant.valid_out),
            fifo.w_data.eq(Cat(requant.out, requant.last_out)),
        ]

        # --- output stream and credits --------------------------------------------------
        y_out = fifo.r
        y_take = Signal(name="y_take")
        OW = C * cfg.out_bits
        m.d.comb += [
            self.m_axis_y_tdata.eq(y_out.payload[:OW]),
            self.m_axis_y_tlast.eq(y_out.payload[OW]),
            self.m_axis_y_tvalid.eq(y_out.valid),
            y_out.ready.eq(self.m_axis_y_tready),
            y_take.eq(y_out.valid & y_out.ready),
        ]
        m.d.sync += credits_used.eq(credits_used + (issue & i_last) - y_take)
        with m.If(y_take & y_out.payload[OW] & running):
            m.d.sync += phase.eq(IDLE)
        return m
