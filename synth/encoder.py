"""``python -m synth.encoder`` (part of ``make synth``): the area of the hardware OverQ encoder.

With ``--encoder`` the array's ``skew`` is replaced by the ``encoder`` (and the valid
pipe is split between them), every PE and the de-skew stay as they are. So the cost
of the encoder is what it adds over the skew, against the whole array without it.

How the arrays are measured: a whole 32x32 array takes Yosys (WebAssembly) far longer
than its parts (see ``--whole``), so every array here is the **sum of its separately
synthesized modules**: C x ``pe_row0`` + (R-1) x C x ``pe`` + ``skew`` + ``deskew`` +
``valid_pipe`` (with the encoder: ``encoder`` instead of ``skew``, and the shorter
``valid_pipe``). Each module is synthesized as the top of the generated file, with the
area flow of ``synth.flow`` (same script, library and cache). The sum leaves out what
a flattened whole-array run can optimize across module boundaries (row 0 adding a
constant 0); the report shows both for 8x8 and 16x16 (``--whole``).

Writes ``synth/reports/encoder.json`` and ``encoder.md``; the table also goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from hw.params import ArrayConfig

from .batch import default_workers
from .flow import CACHE_DIR, SCRIPT, SynthResult, synthesize
from .liberty import LIBERTY, cell_areas

__all__ = ["main", "SIZES", "VARIANTS", "TARGETS"]

REPORTS = Path(__file__).with_name("reports")
SIZES = (8, 16, 32)
# (OverQ modes, cascade c): range at c = 1, 2, 4 and range+precision at c = 2; A4W4 int
VARIANTS = (("range", 1), ("range", 2), ("range", 4), ("range,precision", 2))
GROUPINGS = (1, 2, 4)  # slots decided per stage, for the structure comparison
TARGETS = {8: 5.0, 32: 2.0}  # issue 10: added area, range c = 2


@dataclass(frozen=True)
class Part:
    """One module of a generated file, synthesized as the top."""

    cfg: ArrayConfig
    module: str
    slots_per_stage: int | None = None  # encoder only: a non-default structure

    @property
    def label(self) -> str:
        g = f"_g{self.slots_per_stage}" if self.slots_per_stage else ""
        return f"part_{self.module}{g}_{self.cfg.key()}"

    def verilog(self) -> str:
        if self.slots_per_stage is None:
            return _generated(self.cfg)
        from hw.emit import emit_leaves
        from hw.encoder import Encoder

        leaves = emit_leaves([("encoder", Encoder(self.cfg, self.slots_per_stage))])
        return "".join(text for _, text in leaves)


@lru_cache(maxsize=4)
def _generated(cfg: ArrayConfig) -> str:
    """The generated file of cfg; one worker synthesizes several of its modules."""
    from hw.generate import generate_verilog

    return generate_verilog(cfg)


def _run(part: Part, cache_dir) -> tuple[Part, SynthResult, float]:
    start = time.monotonic()
    result = synthesize(part.verilog(), part.module, label=part.label, cache_dir=cache_dir)
    return part, result, time.monotonic() - start


def _configs(rows: int, overq: str, cascade: int) -> tuple[ArrayConfig, ArrayConfig]:
    plain = ArrayConfig(
        rows=rows, cols=rows, act_bits=4, weight_bits=4, overq=overq, cascade=cascade
    )
    return plain, ArrayConfig(
        rows=rows, cols=rows, act_bits=4, weight_bits=4, overq=overq, cascade=cascade, encoder=True
    )


def array_area(rows: int, a: dict) -> float:
    """An R x R array summed from its parts' areas ``a`` (um^2): R row-0 PEs, R(R-1)
    PEs with the mux, the skew, the de-skew and the valid pipe."""
    return (
        rows * a["pe_row0"]
        + (rows - 1) * rows * a["pe"]
        + a["skew"]
        + a["deskew"]
        + a["valid_pipe"]
    )


def array_with_encoder_area(array: float, a: dict) -> float:
    """The same array with the encoder in front: it replaces the skew, and the valid
    pipe grows by the encoder's latency."""
    return array - a["skew"] - a["valid_pipe"] + a["encoder"] + a["valid_pipe_enc"]


def _parts_of(rows: int, overq: str, cascade: int) -> dict[str, Part]:
    plain, enc = _configs(rows, overq, cascade)
    return {
        "pe_row0": Part(plain, "pe_row0"),
        "pe": Part(plain, "pe"),
        "skew": Part(plain, "skew"),
        "deskew": Part(plain, "deskew"),
        "valid_pipe": Part(plain, "valid_pipe"),
        "encoder": Part(enc, "encoder"),
        "valid_pipe_enc": Part(enc, "valid_pipe"),
    }


def plan(whole: tuple[int, ...] = (8,)) -> list[Part]:
    parts = []
    for rows in SIZES:
        for overq, cascade in VARIANTS:
            parts += _parts_of(rows, overq, cascade).values()
    for rows in (8, 32):
        for g in GROUPINGS:
            parts.append(Part(_configs(rows, "range", 2)[1], "encoder", g))
    for rows in whole:
        plain, enc = _configs(rows, "range", 2)
        parts += [Part(plain, "top"), Part(enc, "top")]
    return list(dict.fromkeys(parts))


def _record(res: SynthResult) -> dict:
    return {
        "area_um2": round(res.area, 1),
        "flip_flops": res.flip_flops,
        "depth": res.depth,
        "sequential_um2": round(res.sequential_area, 1),
    }


def build(results: dict[Part, SynthResult], seconds: dict[Part, float], whole) -> dict:
    area = {p: r.area for p, r in results.items()}
    rows_out = []
    for rows in SIZES:
        for overq, cascade in VARIANTS:
            p = _parts_of(rows, overq, cascade)
            a = {name: area[part] for name, part in p.items()}
            array = array_area(rows, a)
            with_enc = array_with_encoder_area(array, a)
            enc = results[p["encoder"]]
            target = TARGETS.get(rows) if (overq, cascade) == ("range", 2) else None
            added = 100.0 * (with_enc / array - 1.0)
            rows_out.append(
                {
                    "array": f"{rows}x{rows}",
                    "overq": overq,
                    "cascade": cascade,
                    "encoder": _record(enc),
                    "skew_um2": round(a["skew"], 1),
                    "array_um2": round(array, 1),
                    "array_with_encoder_um2": round(with_enc, 1),
                    "encoder_share_pct": round(100.0 * a["encoder"] / with_enc, 2),
                    "added_pct": round(added, 2),
                    "target_pct": target,
                    "met": None if target is None else added <= target,
                }
            )
    groupings = []
    for rows in (8, 32):
        skew = area[_parts_of(rows, "range", 2)["skew"]]
        for g in GROUPINGS:
            part = Part(_configs(rows, "range", 2)[1], "encoder", g)
            rec = _record(results[part])
            rec.update(
                {
                    "array": f"{rows}x{rows}",
                    "slots_per_stage": g,
                    "over_skew_um2": round(results[part].area - skew, 1),
                }
            )
            groupings.append(rec)
    checks = []
    for rows in whole:
        plain, enc = _configs(rows, "range", 2)
        p = _parts_of(rows, "range", 2)
        a = {name: area[part] for name, part in p.items()}
        summed = array_area(rows, a)
        summed_enc = array_with_encoder_area(summed, a)
        w, we = area[Part(plain, "top")], area[Part(enc, "top")]
        checks.append(
            {
                "array": f"{rows}x{rows}",
                "whole_um2": round(w, 1),
                "parts_um2": round(summed, 1),
                "whole_with_encoder_um2": round(we, 1),
                "parts_with_encoder_um2": round(summed_enc, 1),
                "whole_added_pct": round(100.0 * (we / w - 1.0), 2),
                "parts_added_pct": round(100.0 * (summed_enc / summed - 1.0), 2),
            }
        )
    from hw.encoder import SLOTS_PER_STAGE

    return {
        "meta": {
            "command": "python -m synth.encoder",
            "flow": SCRIPT.name,
            "library": LIBERTY.name,
            "dff_um2": cell_areas(LIBERTY).get("DFF_X1"),
            "slots_per_stage": SLOTS_PER_STAGE,
            "method": "sum of separately synthesized modules (see the module docstring)",
        },
        "arrays": rows_out,
        "groupings": groupings,
        "whole_vs_parts": checks,
    }


def render(data: dict) -> str:
    meta = data["meta"]
    lines = [
        "# Area report: the hardware OverQ encoder (`--encoder`)",
        "",
        f"Written by `make synth` (`{meta['command']}`); do not edit by hand. Same flow as "
        f"`area.md` (`synth/{meta['flow']}`, `synth/{meta['library']}`, DFF_X1 = "
        f"{meta['dff_um2']} um²); A4W4 int weights, overflow-free accumulators.",
        "",
        "- The encoder replaces the array's input `skew` (its triangle of registers carries "
        "codes, then encoded slots) and takes R of the array's valid-pipe stages; PEs and "
        "de-skew are unchanged. *Added* = (array with encoder) / (array with "
        "`a_data`/`a_state` inputs) - 1.",
        f"- Structure: {meta['slots_per_stage']} slots decided per pipeline stage "
        "(`hw/encoder.py`); latency L = R + C (one cycle more than without).",
        "- Arrays are sums of separately synthesized modules (C x `pe_row0` + (R-1) x C x "
        "`pe` + `skew` + `deskew` + `valid_pipe`); a whole 32x32 run is too slow for "
        "`make synth`. The last table compares the sum with a whole-array run.",
        "",
        "## Encoder area and its share of the array",
        "",
        "| array | OverQ | c | encoder um² | encoder FFs | encoder depth | skew um² | array um² "
        "| array + encoder um² | encoder / total | added | target |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in data["arrays"]:
        e = r["encoder"]
        target = (
            "—"
            if r["target_pct"] is None
            else (f"<= {r['target_pct']:g}%: {'met' if r['met'] else 'missed'}")
        )
        lines.append(
            f"| {r['array']} | {r['overq']} | {r['cascade']} | {e['area_um2']:.1f} | "
            f"{e['flip_flops']} | {e['depth']} | {r['skew_um2']:.1f} | {r['array_um2']:.1f} | "
            f"{r['array_with_encoder_um2']:.1f} | {r['encoder_share_pct']:.2f}% | "
            f"+{r['added_pct']:.2f}% | {target} |"
        )
    lines += [
        "",
        "## Where the area goes, and other structures",
        "",
        "The encoder alone (range, c = 2) with G slots decided per stage. G = 1 is the plain "
        "triangle (stage k decides slot k); larger G decides slots earlier, so fewer 2b-bit "
        "codes and stage-boundary scan states are in flight and more b+2-bit encoded "
        "slots wait instead, at the price of G decisions chained in one cycle (depth). "
        "Latency is R + C for every G.",
        "",
        "| array | G | encoder um² | of it in flip-flops um² | FFs | depth | over the skew um² |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for g in data["groupings"]:
        lines.append(
            f"| {g['array']} | {g['slots_per_stage']} | {g['area_um2']:.1f} | "
            f"{g['sequential_um2']:.1f} | {g['flip_flops']} | {g['depth']} | "
            f"{g['over_skew_um2']:.1f} |"
        )
    if data["whole_vs_parts"]:
        lines += [
            "",
            "## Sum of parts against a whole-array synthesis (range, c = 2)",
            "",
            "| array | whole um² | sum of parts um² | whole + encoder um² | parts + encoder um² "
            "| added (whole) | added (parts) |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for c in data["whole_vs_parts"]:
            lines.append(
                f"| {c['array']} | {c['whole_um2']:.1f} | {c['parts_um2']:.1f} | "
                f"{c['whole_with_encoder_um2']:.1f} | {c['parts_with_encoder_um2']:.1f} | "
                f"+{c['whole_added_pct']:.2f}% | +{c['parts_added_pct']:.2f}% |"
            )
    return "\n".join(lines) + "\n"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m synth.encoder",
        description="Synthesize the OverQ encoder and the array's parts; write the encoder area report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--jobs", "-j", type=int, default=default_workers(), help="synthesis runs at a time"
    )
    p.add_argument("--out-dir", type=Path, default=REPORTS, help="where the report goes")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not write synth/cache/")
    p.add_argument(
        "--whole",
        default="8,16",
        help="comma-separated sizes also synthesized as whole arrays ('' for none)",
    )
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        whole = tuple(int(s) for s in args.whole.split(",") if s.strip())
    except ValueError:
        print(f"error: --whole takes sizes like 8,16, got {args.whole!r}", file=sys.stderr)
        return 2
    if args.jobs < 1 or any(s not in SIZES for s in whole):
        print(f"error: --jobs must be >= 1 and --whole sizes in {SIZES}", file=sys.stderr)
        return 2
    parts = plan(whole)
    cache = None if args.no_cache else CACHE_DIR
    start = time.monotonic()
    results, seconds = {}, {}
    # the whole arrays first: they take longest
    order = sorted(parts, key=lambda p: p.module != "top")
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for i, (part, res, secs) in enumerate(pool.map(_run, order, [cache] * len(order)), 1):
            results[part], seconds[part] = res, secs
            print(
                f"[{i}/{len(order)}] {part.label}: {res.area:.1f} um² ({secs:.0f} s)",
                file=sys.stderr,
            )
    data = build(results, seconds, whole)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "encoder.json").write_text(json.dumps(data, indent=1) + "\n")
    text = render(data)
    (args.out_dir / "encoder.md").write_text(text)
    sys.stdout.write(text)
    print(
        f"wrote {args.out_dir / 'encoder.md'} in {time.monotonic() - start:.0f} s "
        f"({len(parts)} designs)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
