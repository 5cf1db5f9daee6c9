"""``python -m synth.explore.bench`` (part of ``make bench``): the time per point.

Times, with empty caches in a temporary directory, what one point of the exploration
costs: its fidelity evaluation (the digits CNN; plain and OverQ at each R) and the
synthesis of the parts of its array (one array per R). Then the same points again
from the caches. Prints a table; nothing is written to the project.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

__all__ = ["main"]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m synth.explore.bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--rows", default="8,16,32", help="array sizes to time")
    p.add_argument("--net", default="digits", help="network")
    args = p.parse_args(argv)
    import torch

    from . import cost
    from .accuracy import AccuracySettings, LazyReference, cached_accuracy
    from .grid import Point
    from .nets import get

    torch.set_num_threads(1)
    sizes = [int(r) for r in args.rows.split(",")]
    with tempfile.TemporaryDirectory(prefix="overq-explore-bench-") as tmp:
        tmp = Path(tmp)
        t0 = time.perf_counter()
        ref = LazyReference(get(args.net))
        settings = AccuracySettings().for_workload(ref.workload)
        ref.get()
        print(f"{args.net}: FP32 reference and calibration {time.perf_counter() - t0:.2f} s")
        print("| point | accuracy s | parts | synthesis s | accuracy cached s | area cached s |")
        print("|---|---:|---:|---:|---:|---:|")
        for r in sizes:
            for p in (Point(r, 4, 4), Point(r, 4, 4, "int", "range", 2)):
                t = time.perf_counter()
                cached_accuracy(ref, p, settings, tmp / "acc")
                t_acc = time.perf_counter() - t
                parts = [x for x, _ in cost.array_parts(p.config(), p.encoder)]
                t = time.perf_counter()
                cost.synthesize_parts(parts, synth_cache=tmp / "synth", index_dir=tmp / "idx")
                t_syn = time.perf_counter() - t
                t = time.perf_counter()
                cached_accuracy(ref, p, settings, tmp / "acc")
                t_acc2 = time.perf_counter() - t
                t = time.perf_counter()
                found, missing = cost.cached_parts(parts, tmp / "idx")
                cost.price(p.config(), found, p.encoder)
                t_area2 = time.perf_counter() - t
                assert not missing
                print(
                    f"| {p.label} | {t_acc:.2f} | {len(set(parts))} | {t_syn:.1f} | "
                    f"{t_acc2:.3f} | {t_area2:.3f} |",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
