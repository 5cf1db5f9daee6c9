"""``python -m verif.bench`` (part of ``make bench``): simulated vectors per second.

For 8x8 and 16x16 arrays on Icarus and Verilator, streams random encoded vectors
back to back through the full testbench (driver, monitor, reference model,
scoreboard) and reports wall-clock vectors per second of simulation, plus the
build time. Not a test: the numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

from hw.params import ArrayConfig
from verif.config import RunSettings
from verif.runner import SIMULATORS, available, default_build_dir, run

SHAPES = ((8, 8), (16, 16))
DEFAULT_VECTORS = {"icarus": 4000, "verilator": 20000}


def bench_one(sim: str, rows: int, cols: int, vectors: int) -> dict:
    cfg = ArrayConfig(rows=rows, cols=cols)
    build_dir = default_build_dir(cfg, sim, "bench")
    settings = RunSettings(cfg, seed=1, sim=sim, bench_vectors=vectors)
    shutil.rmtree(build_dir, ignore_errors=True)  # time a fresh build
    start = time.perf_counter()
    result = run(settings, build_dir, test_filter="test_bench_stream")
    total = time.perf_counter() - start
    if not result.ok:
        raise RuntimeError(f"{sim} {rows}x{cols}: {result.summary()} (log in {build_dir})")
    data = json.loads((build_dir / "bench.json").read_text())
    return {
        "sim": sim,
        "rows": rows,
        "cols": cols,
        "vectors": data["vectors"],
        "vectors_per_s": data["vectors"] / data["seconds"],
        "cycles_per_s": data["cycles"] / data["seconds"],
        "build_and_run_s": total,  # fresh build, then the stream
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m verif.bench",
        description="Simulated vectors per second of the verif testbench.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sims", default=",".join(SIMULATORS), help="comma-separated simulators")
    p.add_argument(
        "--vectors",
        type=int,
        default=0,
        help="vectors per run (0: 4000 on Icarus, 20000 on Verilator)",
    )
    p.add_argument("--json", default=None, help="also write the results to this file")
    args = p.parse_args(argv)
    rows = []
    for sim in args.sims.split(","):
        if not available(sim):
            print(f"verif.bench: {sim} is not installed, skipped", file=sys.stderr)
            continue
        for r, c in SHAPES:
            n = args.vectors or DEFAULT_VECTORS[sim]
            print(f"verif.bench: {sim} {r}x{c}, {n} vectors ...", file=sys.stderr, flush=True)
            rows.append(bench_one(sim, r, c, n))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"\n## Simulated throughput (verif testbench, load average {load:.1f})\n")
    print("| simulator | array | vectors | vectors/s | cycles/s | build + run (s) |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['sim']} | {row['rows']}x{row['cols']} | {row['vectors']} | "
            f"{row['vectors_per_s']:.0f} | {row['cycles_per_s']:.0f} | {row['build_and_run_s']:.1f} |"
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
