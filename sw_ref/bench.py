"""Throughput of the vectorised OverQ encoder (``python -m sw_ref.bench``).

The encoder sits in the inner loop of every accuracy sweep, so it has a target:
>= 2e7 slots/s at R = 8 on one CPU core. Post-ReLU Gaussian activations on a grid
that clips at 2.5 sigma give a realistic mix of zeros (~50%) and outliers.
The first call pays for fresh memory (page faults); it is reported apart from the
steady state, which is what a sweep over many layers sees. Both wall-clock and CPU
time (this process, user + system) are shown: on a shared machine the wall clock
also counts the time other processes hold the core.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

from hw.params import ArrayConfig
from sw_ref import overq


def _activations(slots: int, rows: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = max(1, slots // rows)
    return np.maximum(rng.standard_normal((vectors, rows)), 0.0)


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def run(slots: int, rows: int, cascade: int, overq_modes: str, repeat: int, seed: int):
    """Time ``encode`` on `slots` slots: (slots, cold (wall, cpu), [(wall, cpu)], stats)."""
    cfg = ArrayConfig(rows=rows, cascade=min(cascade, max(1, rows - 1)), overq=overq_modes)
    x = _activations(slots, rows, seed)
    step = 2.5 / cfg.act_max
    result, *cold = _timed(lambda: overq.encode(x, step, cfg))
    warm = []
    for _ in range(repeat):
        result, wall, cpu = _timed(lambda: overq.encode(x, step, cfg))
        warm.append((wall, cpu))
    return x.size, tuple(cold), warm, result.stats


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sw_ref.bench",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--slots", type=float, default=1e7, help="activation slots per call")
    parser.add_argument("--rows", type=int, nargs="+", default=[8, 64], help="R values")
    parser.add_argument("--cascade", type=int, default=2, help="c (capped at R-1)")
    parser.add_argument("--overq", default="range", help="modes: range, precision, none")
    parser.add_argument("--repeat", type=int, default=3, help="timed calls after the first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=2e7, help="slots/s goal at R=8")
    args = parser.parse_args(argv)
    if args.slots < 1 or args.repeat < 1:
        print("error: --slots and --repeat must be >= 1", file=sys.stderr)
        return 2

    print(
        "rows  slots     | slots/s wall: cold    warm best  warm median "
        "| slots/s cpu: warm best  warm median | coverage"
    )
    ok = True
    for rows in args.rows:
        try:
            n, cold, warm, stats = run(
                int(args.slots), rows, args.cascade, args.overq, args.repeat, args.seed
            )
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        walls, cpus = [w for w, _ in warm], [c for _, c in warm]
        print(
            f"{rows:4d}  {n:9d} | {n / cold[0]:16.3g}  {n / min(walls):9.3g}  "
            f"{n / statistics.median(walls):11.3g} | {n / min(cpus):21.3g}  "
            f"{n / statistics.median(cpus):11.3g} | {stats.coverage:8.3f}"
        )
        if rows == 8 and n / min(walls) < args.target:
            ok = False
    if not ok:
        print(f"below the target of {args.target:.3g} slots/s at R=8", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
