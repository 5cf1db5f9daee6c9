"""Hardware for the compressed state formats (synth/explore/formats.py), to price them.

- ``HeaderPack``: the R 2-bit states of one encoded tile -> the tile header (count,
  then per event its row and kind), the first H events in row order. It sits after
  an encoder whose scan stops placing outliers after H events (a counter; the
  encoder's own cost is priced separately), on the way into the memory.
- ``HeaderUnpack``: header -> the R states the array's ``a_state`` port takes, on
  the way out of the memory.
- ``FlagPack`` / ``FlagUnpack``: the b + 1 format of range with cascade 1 (state
  NORMAL = 0 or RANGE = 2 is one bit): wiring only, synthesized to show it.

Each is combinational; ``price_codecs`` synthesizes them with ``synth.flow`` (the
45 nm cells of ``make synth``) and caches the results like every other design.
"""

from __future__ import annotations

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .formats import _clog2

__all__ = ["HeaderPack", "HeaderUnpack", "FlagPack", "FlagUnpack", "codec_designs", "price_codecs"]

NORMAL, SHIFTED, RANGE, PRECISION = 0, 1, 2, 3


def _layout(rows: int, events: int, cascade: int, precision: bool):
    kinds = max(1, cascade) + (1 if precision else 0)
    return _clog2(events + 1), _clog2(rows - 1), _clog2(kinds)


class HeaderPack(wiring.Component):
    """States of one tile -> header of its first ``events`` events."""

    def __init__(self, rows: int, events: int, cascade: int, precision: bool):
        self.rows, self.events, self.cascade, self.precision = rows, events, cascade, precision
        cw, pw, kw = _layout(rows, events, cascade, precision)
        self.widths = (cw, pw, kw)
        super().__init__({"states": In(2 * rows), "header": Out(cw + events * (pw + kw))})

    def elaborate(self, platform):
        m = Module()
        r, c = self.rows, max(1, self.cascade)
        cw, pw, kw = self.widths
        f = [Signal(2, name=f"f{i}") for i in range(r)]
        for i in range(r):
            m.d.comb += f[i].eq(self.states[2 * i : 2 * i + 2])
        # An event at row p: slot p + 1 is RANGE or PRECISION.
        event = Signal(r - 1, name="event")
        kind = [Signal(max(kw, 1), name=f"kind{p}") for p in range(r - 1)]
        for p in range(r - 1):
            m.d.comb += event[p].eq((f[p + 1] == RANGE) | (f[p + 1] == PRECISION))
            # range: distance 1 + the SHIFTED slots right after the RANGE slot (kind d-1);
            # precision: kind c.
            run_len = Const(0, max(kw, 1))
            for extra in range(1, c):
                if p + 1 + extra < r:
                    ok = Const(1, 1)
                    for s in range(1, extra + 1):
                        ok = ok & (f[p + 1 + s] == SHIFTED)
                    run_len = Mux(ok, extra, run_len)
            with m.If(f[p + 1] == PRECISION):
                m.d.comb += kind[p].eq(c if self.precision else 0)
            with m.Else():
                m.d.comb += kind[p].eq(run_len)
        fields, remaining = [], event
        count = Signal(max(cw, 1), name="count")
        valids = []
        for e in range(self.events):
            pos = Signal(max(pw, 1), name=f"pos{e}")
            knd = Signal(max(kw, 1), name=f"knd{e}")
            found = Signal(name=f"found{e}")
            nxt = Signal(r - 1, name=f"left{e}")
            m.d.comb += [found.eq(remaining.any()), nxt.eq(remaining)]
            for p in reversed(range(r - 1)):  # lowest set row wins
                with m.If(remaining[p]):
                    m.d.comb += [pos.eq(p), knd.eq(kind[p]), nxt.eq(remaining & ~(1 << p))]
            fields.append(Cat(pos[:pw], knd[:kw]) if kw else pos[:pw])
            valids.append(found)
            remaining = nxt
        m.d.comb += count.eq(sum(v.as_unsigned() for v in valids))
        m.d.comb += self.header.eq(Cat(count[:cw], *fields))
        return m


class HeaderUnpack(wiring.Component):
    """Header -> the R states of the tile (NORMAL wherever no event says otherwise)."""

    def __init__(self, rows: int, events: int, cascade: int, precision: bool):
        self.rows, self.events, self.cascade, self.precision = rows, events, cascade, precision
        cw, pw, kw = _layout(rows, events, cascade, precision)
        self.widths = (cw, pw, kw)
        super().__init__({"header": In(cw + events * (pw + kw)), "states": Out(2 * rows)})

    def elaborate(self, platform):
        m = Module()
        r, c = self.rows, max(1, self.cascade)
        cw, pw, kw = self.widths
        count = Signal(max(cw, 1), name="count")
        m.d.comb += count.eq(self.header[:cw])
        f = [Signal(2, name=f"f{i}") for i in range(r)]
        terms = [[] for _ in range(r)]
        at = cw
        for e in range(self.events):
            pos = Signal(max(pw, 1), name=f"pos{e}")
            knd = Signal(max(kw, 1), name=f"knd{e}")
            live = Signal(name=f"live{e}")
            m.d.comb += [pos.eq(self.header[at : at + pw]), live.eq(count > e)]
            if kw:
                m.d.comb += knd.eq(self.header[at + pw : at + pw + kw])
            at += pw + kw
            for p in range(r - 1):
                hit = Signal(name=f"hit{e}_{p}")
                m.d.comb += hit.eq(live & (pos == p))
                prec = (knd == c) if self.precision else Const(0, 1)
                terms[p + 1].append(Mux(hit, Mux(prec, PRECISION, RANGE), 0))
                for s in range(1, c):  # SHIFTED slots p+2 .. p+d
                    if p + 1 + s < r:
                        sh = hit & ~prec & (knd >= s)
                        terms[p + 1 + s].append(Mux(sh, SHIFTED, 0))
        for i in range(r):
            acc = Const(NORMAL, 2)
            for t in terms[i]:
                acc = acc | t
            m.d.comb += f[i].eq(acc)
        m.d.comb += self.states.eq(Cat(*f))
        return m


class FlagPack(wiring.Component):
    """NORMAL/RANGE states -> one flag bit per slot (the state's high bit)."""

    def __init__(self, rows: int):
        self.rows = rows
        super().__init__({"states": In(2 * rows), "flags": Out(rows)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.flags.eq(Cat(*(self.states[2 * i + 1] for i in range(self.rows))))
        return m


class FlagUnpack(wiring.Component):
    """One flag bit per slot -> state NORMAL (0) or RANGE (2)."""

    def __init__(self, rows: int):
        self.rows = rows
        super().__init__({"flags": In(rows), "states": Out(2 * rows)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.states.eq(
            Cat(*(Cat(Const(0, 1), self.flags[i]) for i in range(self.rows)))
        )
        return m


def codec_designs(rows: int, fmt: str, cascade: int, precision: bool) -> list:
    """(label, component) of the pack and unpack of format ``fmt`` at R rows."""
    tag = f"r{rows}_c{cascade}" + ("_p" if precision else "")
    if fmt == "flag1":
        return [
            (f"xp_flagpack_r{rows}", FlagPack(rows)),
            (f"xp_flagunpack_r{rows}", FlagUnpack(rows)),
        ]
    if fmt.startswith("header"):
        h = int(fmt[len("header") :])
        return [
            (f"xp_hdrpack_{tag}_h{h}", HeaderPack(rows, h, cascade, precision)),
            (f"xp_hdrunpack_{tag}_h{h}", HeaderUnpack(rows, h, cascade, precision)),
        ]
    return []  # plain, codes and state2 need no codec


def price_codecs(specs, cache_dir=None) -> dict:
    """{(rows, fmt, cascade, precision): {"pack_um2", "unpack_um2"}} synthesized."""
    from hw.emit import _to_verilog

    from ..flow import CACHE_DIR, synthesize_many

    cache_dir = CACHE_DIR if cache_dir is None else cache_dir
    items, owners = [], []
    for spec in dict.fromkeys(specs):
        for label, comp in codec_designs(*spec):
            items.append((label, comp))
            owners.append(spec)
    if not items:
        return {}
    from hw.dedupe import split_modules

    modules = dict(split_modules(_to_verilog(items)))
    designs = [(label, modules[label], label) for label, _ in items]
    results = synthesize_many(designs, cache_dir=cache_dir)
    out: dict = {}
    for spec, (label, _), res in zip(owners, items, results):
        side = "pack_um2" if "pack_" in label and "unpack" not in label else "unpack_um2"
        out.setdefault(spec, {})[side] = round(res.area, 3)
    return out
