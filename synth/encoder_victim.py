"""``python -m synth.encoder_victim``: what victim overwrite costs in the hardware encoder.

Victim mode changes only the encoder (docs/victim.md): per slot one
comparison q_(k+1) < q' - M and one more arm in the decision. This measures it against
the plain encoder of the same configuration, side by side in one run:

* area (Yosys, the flow and library of ``synth.encoder``): the encoder alone, and the
  array with it (sum of parts as in ``encoder.md``), at 8x8, 16x16, 32x32, c = 2;
* Fmax on ECP5 (the flow of ``synth.fpga``: the whole 8x8 A4W4 ``top`` with the
  encoder in its register wrapper, DSP and LUT multipliers, seeds 1-3, median).

Writes ``synth/reports/encoder_victim.md`` and ``.json``; the existing ``encoder.md``
and ``fpga.md`` are not touched (their rows are the plain encoder's, unchanged).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from hw.params import ArrayConfig

from . import fpga_cache
from .batch import default_workers
from .encoder import REPORTS, Part, _record, _run, array_area
from .flow import CACHE_DIR
from .fpga_flow import run_flow
from .fpga_variants import SEEDS

SIZES = (8, 16, 32)
MODES = (("range", "range,victim"), ("range,precision", "range,precision,victim"))
CASCADE = 2


def _cfg(rows: int, overq: str, encoder: bool, cols: int | None = None) -> ArrayConfig:
    return ArrayConfig(
        rows=rows,
        cols=rows if cols is None else cols,
        act_bits=4,
        weight_bits=4,
        overq=overq,
        cascade=CASCADE,
        encoder=encoder,
    )


def area_parts() -> list[Part]:
    parts = []
    for rows in SIZES:
        for pair in MODES:
            plain = _cfg(rows, pair[0], False)
            parts += [
                Part(plain, "pe_row0"),
                Part(plain, "pe"),
                Part(plain, "skew"),
                Part(plain, "deskew"),
                Part(plain, "valid_pipe"),
                Part(_cfg(rows, pair[0], True), "valid_pipe"),
            ]
            parts += [Part(_cfg(rows, mode, True), "encoder") for mode in pair]
    return list(dict.fromkeys(parts))


def build_area(results: dict) -> list[dict]:
    area = {p: r.area for p, r in results.items()}
    rows_out = []
    for rows in SIZES:
        for pair in MODES:
            plain = _cfg(rows, pair[0], False)
            a = {m: area[Part(plain, m)] for m in ("pe_row0", "pe", "skew", "deskew", "valid_pipe")}
            array = array_area(rows, a)
            rest = (
                array
                - a["skew"]
                - a["valid_pipe"]
                + area[Part(_cfg(rows, pair[0], True), "valid_pipe")]
            )
            enc = {m: results[Part(_cfg(rows, m, True), "encoder")] for m in pair}
            base, vic = (enc[m] for m in pair)
            rows_out.append(
                {
                    "array": f"{rows}x{rows}",
                    "overq": pair[1],
                    "cascade": CASCADE,
                    "plain_encoder": _record(base),
                    "victim_encoder": _record(vic),
                    "encoder_added_pct": round(100.0 * (vic.area / base.area - 1.0), 2),
                    "array_with_plain_um2": round(rest + base.area, 1),
                    "array_with_victim_um2": round(rest + vic.area, 1),
                    "array_added_pct": round(
                        100.0 * ((rest + vic.area) / (rest + base.area) - 1.0), 2
                    ),
                }
            )
    return rows_out


def build_fpga(seeds, cache: Path) -> list[dict]:
    out = []
    for nodsp in (False, True):
        for overq in MODES[0]:
            cfg = _cfg(8, overq, True, cols=8)
            s = run_flow(cfg, nodsp=nodsp, seeds=seeds, cache_dir=cache)
            print(
                f"fpga {overq} {'LUT' if nodsp else 'DSP'}: {s.get('fmax_mhz')} MHz",
                file=sys.stderr,
            )
            out.append(
                {
                    "overq": overq,
                    "map": "LUT" if nodsp else "DSP",
                    "seeds": list(seeds),
                    "fmax_mhz": s.get("fmax_mhz"),
                    "fmax_per_seed": s.get("fmax_per_seed"),
                    "placed": s.get("placed"),
                    "critical_path": s.get("critical_path"),
                    "error": s.get("error"),
                }
            )
    return out


def render(data: dict) -> str:
    lines = [
        "# The cost of victim overwrite in the hardware encoder",
        "",
        f"Written by `{data['meta']['command']}`; do not edit by hand. A4W4 int, c = 2. "
        "Area: the flow of `encoder.md` (Yosys, `synth/cells45.lib`); the array is the sum "
        "of its separately synthesized parts with the encoder in place of the skew. Fmax: "
        "the flow of `fpga.md` (ECP5 LFE5U-85F, whole 8x8 `top --encoder` in its register "
        "wrapper, median over the seeds).",
        "",
        "## Area",
        "",
        "| array | OverQ | plain encoder um² | victim encoder um² | encoder added | FFs (plain / victim) "
        "| depth (plain / victim) | array + encoder added |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in data["area"]:
        p, v = r["plain_encoder"], r["victim_encoder"]
        lines.append(
            f"| {r['array']} | {r['overq']} | {p['area_um2']:.1f} | {v['area_um2']:.1f} | "
            f"+{r['encoder_added_pct']:.2f}% | {p['flip_flops']} / {v['flip_flops']} | "
            f"{p['depth']} / {v['depth']} | +{r['array_added_pct']:.2f}% |"
        )
    if data["fpga"]:
        lines += [
            "",
            "## Fmax (ECP5, 8x8 A4W4 `top` with the encoder)",
            "",
            "| OverQ | map | seeds | Fmax MHz | per seed | LUT4 | FF | critical path |",
            "|---|---|---|---:|---|---:|---:|---|",
        ]
        for f in data["fpga"]:
            placed = f["placed"] or {}
            per = ", ".join(f"{v:.1f}" for v in (f["fmax_per_seed"] or {}).values())
            path = f["critical_path"] or {}
            where = (
                f"`{path.get('from')}` -> `{path.get('to')}`"
                if isinstance(path, dict) and path.get("from")
                else str(f.get("error") or "—")
            )
            fmax = "—" if f["fmax_mhz"] is None else f"{f['fmax_mhz']:.1f}"
            lines.append(
                f"| {f['overq']} | {f['map']} | {len(f['seeds'])} | {fmax} | {per} | "
                f"{placed.get('lut4', '—')} | {placed.get('ff', '—')} | {where} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m synth.encoder_victim",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--jobs", "-j", type=int, default=default_workers(), help="synthesis runs at a time"
    )
    p.add_argument("--out-dir", type=Path, default=REPORTS, help="where the report goes")
    p.add_argument("--no-fpga", action="store_true", help="area only (no ECP5 place and route)")
    p.add_argument("--seeds", default=",".join(map(str, SEEDS)), help="nextpnr seeds")
    args = p.parse_args(argv)
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
    except ValueError:
        print(f"error: --seeds takes integers like 1,2,3, got {args.seeds!r}", file=sys.stderr)
        return 2
    if args.jobs < 1 or not seeds:
        print("error: --jobs must be >= 1 and --seeds non-empty", file=sys.stderr)
        return 2
    start = time.monotonic()
    parts = area_parts()
    results = {}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for i, (part, res, secs) in enumerate(pool.map(_run, parts, [CACHE_DIR] * len(parts)), 1):
            results[part] = res
            print(
                f"[{i}/{len(parts)}] {part.label}: {res.area:.1f} um² ({secs:.0f} s)",
                file=sys.stderr,
            )
    data = {
        "meta": {"command": "python -m synth.encoder_victim", "cascade": CASCADE},
        "area": build_area(results),
        "fpga": [] if args.no_fpga else build_fpga(seeds, fpga_cache.DEFAULT_DIR),
    }
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "encoder_victim.json").write_text(json.dumps(data, indent=1) + "\n")
    text = render(data)
    (args.out_dir / "encoder_victim.md").write_text(text)
    sys.stdout.write(text)
    print(
        f"wrote {args.out_dir / 'encoder_victim.md'} in {time.monotonic() - start:.0f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
