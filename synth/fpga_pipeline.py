"""``python -m synth.fpga_pipeline``: pipelining, double buffering and real-layer throughput.

Places and routes the 8x8 A4W4 baseline and OverQ range arrays with operand registers
(``--input-register``), with operand + product registers, and with operand registers
and double-buffered weights (``synth.fpga_variants.pipeline_variants``), through the
same cached ECP5 flow as ``synth.fpga``; reads the rows without operand registers (no
pipelining, product register) from ``synth/reports/fpga.json``, which ``synth.fpga``
wrote; synthesizes one PE of each option with the ASIC area flow (``synth/flow.ys``);
and writes ``synth/reports/fpga_pipeline.md`` and ``.json`` with three tables:

1. OverQ range against the baseline *at the same pipelining*: median Fmax of each, the
   ratio, with DSP multipliers and LUT-only;
2. what each option costs: LUT4 / FF / DSP of ``top`` (Yosys), latency, and the ASIC
   area of one PE (row 1);
3. effective throughput on real layers: Fmax x utilisation x R x C, utilisation from
   the cycle model of ``verif.utilisation`` (single weight copy, or double buffering
   for the double-buffered variants).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from hw.params import ArrayConfig
from synth import fpga_cache
from synth.fpga import run_variants
from synth.fpga_report import build_report, top_luts, update_doc_block
from synth.fpga_variants import SEEDS, pipeline_variants

__all__ = ["main", "OPTIONS", "render"]

REPORT_DIR = Path(__file__).resolve().parent / "reports"
DOC = Path(__file__).resolve().parent.parent / "docs" / "fpga.md"
GROUP = "8x8 A4W4"

# pipelining option -> flavour suffix (rows "baseline<suffix>", "range<suffix>")
OPTIONS = {
    "none": "",
    "product register": ", product reg",
    "operand registers": ", input reg",
    "operand + product registers": ", input+product reg",
    "operand registers, double buffer": ", input reg, double buffer",
}


def _reference_entries(path: Path) -> list[dict]:
    """The 8x8 A4W4 baseline / range rows (no pipelining, product register) of fpga.json."""
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run `python -m synth.fpga` first")
    report = json.loads(path.read_text())
    wanted = {"baseline", "range", "baseline, product reg", "range, product reg"}
    return [
        dict(e, source="fpga.json")
        for e in report["variants"]
        if e["group"] == GROUP and e["flavour"] in wanted
    ]


def _config(entry: dict) -> ArrayConfig:
    c = entry["config"]
    return ArrayConfig(
        rows=c["rows"],
        cols=c["cols"],
        act_bits=c["act_bits"],
        weight_bits=c["weight_bits"],
        weight_format=c["weight_format"],
        overq=c["overq"],
        cascade=c["cascade"],
        product_register=bool(c.get("product_register")),
        input_register=bool(c.get("input_register")),
        double_buffer=bool(c.get("double_buffer")),
    )


def _asic_areas(entries: list[dict]) -> dict[str, dict]:
    """ASIC area of one PE (row 1) per configuration key, with the area flow's cache."""
    from synth.batch import run_jobs
    from synth.designs import Job

    jobs = {}
    for e in entries:
        cfg = _config(e)
        jobs.setdefault(cfg.key(), Job("pe", cfg, row=1))
    results = run_jobs(list(jobs.values()), desc="asic pe")
    return {
        key: {
            "area_um2": round(results[job].area, 1),
            "ff": results[job].flip_flops,
            "depth": results[job].depth,
        }
        for key, job in jobs.items()
    }


def _layers(entries: list[dict]) -> list[dict]:
    from verif.utilisation import cycles_used, ideal_cycles, layer_shapes

    out = []
    for shape in layer_shapes():
        row = {
            "name": shape.name,
            "vectors": shape.vectors,
            "k": shape.k,
            "o": shape.o,
            "source": shape.source,
            "utilisation": {},
        }
        for e in entries:
            cfg = _config(e)
            t = shape.tiles(cfg)
            row["tiles"] = t
            used = cycles_used(cfg, shape.vectors, t)
            row["utilisation"][e["name"]] = {
                "ideal": ideal_cycles(cfg, shape.vectors, t),
                "cycles": used,
                "utilisation": round(ideal_cycles(cfg, shape.vectors, t) / used, 4),
            }
        out.append(row)
    return out


def _available(variants, cache: Path):
    """Each variant restricted to the seeds whose place-and-route is in the cache
    (variants never synthesized or never placed are dropped)."""
    import dataclasses

    from synth.fpga_flow import cached_synth, pnr_cached

    out = []
    for v in variants:
        synth = cached_synth(v.cfg, v.nodsp, cache)
        if synth is None:
            continue
        seeds = tuple(s for s in v.seeds if pnr_cached(synth["netlist_digest"], s, cache))
        if seeds:
            out.append(dataclasses.replace(v, seeds=seeds))
    return out


def _pct(a, b):
    return None if not a or not b else round(100.0 * a / b, 1)


def build(entries: list[dict], areas: dict[str, dict], fpga: dict) -> dict:
    by_name = {(e["flavour"], e["mapping"]): e for e in entries}
    pairs = []
    for option, suffix in OPTIONS.items():
        for mapping in ("DSP", "LUT"):
            base = by_name.get(("baseline" + suffix, mapping))
            rng = by_name.get(("range" + suffix, mapping))
            if not base or not rng:
                continue
            pairs.append(
                {
                    "option": option,
                    "mapping": mapping,
                    "baseline": base["name"],
                    "range": rng["name"],
                    "baseline_fmax": base.get("fmax_mhz"),
                    "range_fmax": rng.get("fmax_mhz"),
                    "baseline_seeds": base.get("fmax_per_seed"),
                    "range_seeds": rng.get("fmax_per_seed"),
                    "ratio_pct": _pct(rng.get("fmax_mhz"), base.get("fmax_mhz")),
                    "source": rng["source"],
                }
            )
    for e in entries:
        e["asic_pe"] = areas[_config(e).key()]
        e["latency"] = _config(e).latency
    layers = _layers(entries)
    throughput = []
    for e in entries:
        if e["config"].get("double_buffer"):
            continue
        db = by_name.get((e["flavour"] + ", double buffer", e["mapping"]))
        db_fmax = db.get("fmax_mhz") if db else None
        row = {
            "name": e["name"],
            "flavour": e["flavour"],
            "mapping": e["mapping"],
            "fmax_mhz": e.get("fmax_mhz"),
            "utilisation": {},
            "gmacs": {},
        }
        cfg = _config(e)
        for layer in layers:
            from verif.utilisation import utilisation

            t = layer["tiles"]
            u1 = utilisation(cfg, layer["vectors"], t, False)
            u2 = utilisation(cfg, layer["vectors"], t, True)
            f2 = db_fmax or e.get("fmax_mhz")
            row["utilisation"][layer["name"]] = {"single": round(u1, 4), "double": round(u2, 4)}
            row["gmacs"][layer["name"]] = {
                "single": None
                if e.get("fmax_mhz") is None
                else round(e["fmax_mhz"] * 1e6 * u1 * 64 / 1e9, 2),
                "double": None if f2 is None else round(f2 * 1e6 * u2 * 64 / 1e9, 2),
            }
        throughput.append((row, db_fmax))
    return {
        "part": fpga["part"],
        "nextpnr_args": fpga["nextpnr_args"],
        "tools": fpga["tools"],
        "target_mhz": fpga["target_mhz"],
        "pairs": pairs,
        "variants": entries,
        "layers": layers,
        "throughput": throughput,
    }


def _f(value, spec=".1f", suffix=""):
    return "–" if value is None else f"{value:{spec}}{suffix}"


def render(report: dict) -> str:
    seeds = lambda d: "/".join(f"{v:.1f}" for v in d.values()) if d else "–"  # noqa: E731
    lines = [
        "# FPGA report: pipelining, double buffering and throughput on real layers",
        "",
        f"Part {report['part']} (`{' '.join(report['nextpnr_args'])}`), timing target "
        f"{report['target_mhz']} MHz; tools "
        + ", ".join(f"{k} {v}" for k, v in sorted(report["tools"].items()))
        + f". Generated by `{report.get('command', 'python -m synth.fpga_pipeline')}` (after `python -m synth.fpga`, "
        "whose fpga.json gives the rows marked `fpga.json`); see docs/fpga.md.",
        "",
        f"## OverQ range vs the baseline at the same pipelining ({GROUP})",
        "",
        "Fmax: median over the seeds listed (per-seed values beside it). Target: range >= 90% "
        "of the baseline with the same pipelining.",
        "",
        "| pipelining | map | baseline MHz | per seed | range MHz | per seed | range / baseline | >= 90% | source |",
        "|---|---|--:|---|--:|---|--:|---|---|",
    ]
    for p in report["pairs"]:
        ok = "–" if p["ratio_pct"] is None else ("yes" if p["ratio_pct"] >= 90 else "no")
        lines.append(
            f"| {p['option']} | {p['mapping']} | {_f(p['baseline_fmax'])} | {seeds(p['baseline_seeds'])} "
            f"| {_f(p['range_fmax'])} | {seeds(p['range_seeds'])} | {_f(p['ratio_pct'], '.1f', '%')} "
            f"| {ok} | {p['source']} |"
        )
    lines += [
        "",
        "## What each option costs",
        "",
        "top LUT4 / FF / DSP: cells of `top` alone (Yosys; LUT4 + 2 x CCU2C). ASIC PE: one "
        "PE of row 1, `synth/flow.ys` with the 45 nm library of `make synth` (um², flip-flops, "
        "depth in cells).",
        "",
        "| variant | map | L | top LUT4 | top FF | DSP | Fmax MHz | ASIC PE um² | PE FF | depth | source |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for e in report["variants"]:
        a = e["asic_pe"]
        lines.append(
            f"| {e['flavour']} | {e['mapping']} | {e['latency']} | {top_luts(e['top'])} | {e['top']['ff']} "
            f"| {e['top']['dsp']} | {_f(e.get('fmax_mhz'))} | {a['area_um2']:.1f} | {a['ff']} "
            f"| {a['depth']} | {e['source']} |"
        )
    names = [layer["name"] for layer in report["layers"]]
    lines += [
        "",
        "## Effective throughput on real layers",
        "",
        "GMAC/s = Fmax x utilisation x R x C (R = C = 8). Utilisation = ideal cycles (N x T "
        "+ R + L) / cycles used, from the cycle model of `verif.utilisation` (equal to the "
        "cycles `make sim` measures on digits conv2): a single weight copy loads each tile "
        "after the last one's outputs came out; double buffering loads the next tile while "
        "this one streams. Double-buffered GMAC/s use the Fmax of the double-buffered "
        "array where it was placed, else the single-copy Fmax (marked *: an estimate).",
        "",
        "| variant | map | Fmax MHz | "
        + " | ".join(f"{n}: single copy util | GMAC/s | double buffer util | GMAC/s" for n in names)
        + " |",
        "|---|---|--:|" + "--:|--:|--:|--:|" * len(names),
    ]
    for e, db in report["throughput"]:
        cells = []
        for layer in report["layers"]:
            n = layer["name"]
            cells += [
                f"{100 * e['utilisation'][n]['single']:.1f}%",
                _f(e["gmacs"][n]["single"], ".2f"),
                f"{100 * e['utilisation'][n]['double']:.1f}%",
                _f(e["gmacs"][n]["double"], ".2f") + ("" if db else "*"),
            ]
        fmax = _f(e.get("fmax_mhz")) + (f" / {db:.1f} (double buffer)" if db else "")
        lines.append(f"| {e['flavour']} | {e['mapping']} | {fmax} | " + " | ".join(cells) + " |")
    lines += [""]
    for layer in report["layers"]:
        lines.append(
            f"- {layer['name']}: N = {layer['vectors']} vectors, K = {layer['k']}, "
            f"O = {layer['o']}, {layer['tiles']} tiles; {layer['source']}."
        )
    notes = [
        f"- {e['name']}: critical path `{e['critical_path']['from']}` -> `{e['critical_path']['to']}`, "
        f"{e['critical_path']['logic_ns']} ns logic + {e['critical_path']['routing_ns']} ns routing"
        for e in report["variants"]
        if e.get("critical_path") and e["source"] == "this run"
    ]
    if notes:
        lines += [
            "",
            "<details><summary>critical paths (this run)</summary>",
            "",
            *notes,
            "",
            "</details>",
        ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m synth.fpga_pipeline",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--jobs", type=int, default=2, help="parallel tool runs")
    p.add_argument(
        "--seeds",
        type=int,
        default=len(SEEDS),
        help="seeds (1,2,3...) for the operand-register rows; the others use seed 1",
    )
    p.add_argument(
        "--both-registers",
        action="store_true",
        help="also place operand + product registers (seed 1)",
    )
    p.add_argument(
        "--double-buffer",
        action="store_true",
        help="also place operand registers with double-buffered weights (seed 1); "
        "without it the double-buffered throughput uses the single-copy Fmax",
    )
    p.add_argument(
        "--available",
        action="store_true",
        help="report each variant on the seeds already placed (in the cache) "
        "instead of placing the missing ones; the report lists the seeds",
    )
    p.add_argument("--out", type=Path, default=REPORT_DIR, help="report directory")
    p.add_argument(
        "--fpga-json",
        type=Path,
        default=REPORT_DIR / "fpga.json",
        help="the synth.fpga report to read the unpipelined rows from",
    )
    p.add_argument("--cache", type=Path, default=fpga_cache.DEFAULT_DIR, help="cache directory")
    args = p.parse_args(argv)
    if args.jobs < 1 or not 1 <= args.seeds <= len(SEEDS):
        print(f"error: --jobs must be >= 1 and --seeds in 1..{len(SEEDS)}", file=sys.stderr)
        return 2
    try:
        reference = _reference_entries(args.fpga_json)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    fpga = json.loads(args.fpga_json.read_text())
    start = time.monotonic()
    variants = pipeline_variants(
        SEEDS[: args.seeds], both_registers=args.both_registers, double_buffer=args.double_buffer
    )
    if args.available:
        variants = _available(variants, args.cache)
    results = run_variants(variants, args.jobs, args.cache)
    placed = [dict(e, source="this run") for e in build_report(results)["variants"]]
    entries = reference + placed
    report = build(entries, _asic_areas(entries), fpga)
    flags = [
        f
        for f, on in (
            ("--available", args.available),
            ("--double-buffer", args.double_buffer),
            ("--both-registers", args.both_registers),
        )
        if on
    ]
    report["command"] = " ".join(["python -m synth.fpga_pipeline", *flags])
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fpga_pipeline.json").write_text(json.dumps(report, indent=1) + "\n")
    text = render(report)
    (args.out / "fpga_pipeline.md").write_text(text)
    if args.out.resolve() == REPORT_DIR and DOC.exists():  # only the real report
        body = text.split("\n", 1)[1].replace("\n## ", "\n### ")
        DOC.write_text(update_doc_block(DOC.read_text(), body, tag="fpga_pipeline:results"))
    print(
        f"wrote {args.out / 'fpga_pipeline.md'} in {time.monotonic() - start:.0f} s",
        file=sys.stderr,
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
