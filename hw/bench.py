"""``python -m hw.bench``: generation time and Verilog size against array size.

Targets (issue 3): under 5 s for 8x8 and under 60 s for 64x64 on a 2-core machine,
and a file that grows linearly in R*C (one PE definition, R*C instance blocks; the skew
and de-skew triangles grow as R^2 and C^2, which is R*C for square arrays).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

from hw.generate import generate_verilog
from hw.params import ArrayConfig

SIZES = ((8, 8), (16, 16), (32, 32), (64, 64))
TARGETS = {(8, 8): 5.0, (64, 64): 60.0}


def measure(rows: int, cols: int, **fields) -> dict:
    """Wall time and size of one ``generate_verilog`` call."""
    cfg = ArrayConfig(rows=rows, cols=cols, **fields)
    start = time.perf_counter()
    text = generate_verilog(cfg)
    seconds = time.perf_counter() - start
    return {
        "rows": rows,
        "cols": cols,
        "seconds": round(seconds, 3),
        "bytes": len(text.encode()),
        "lines": text.count("\n"),
        "bytes_per_pe": round(len(text.encode()) / (rows * cols)),
        "target_s": TARGETS.get((rows, cols)),
    }


def cold_cli_seconds() -> float:
    """What a user waits for: ``python -m hw.generate`` (8x8) in a fresh process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "hw.generate"], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hw.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args(argv)
    cold = cold_cli_seconds()
    generate_verilog(ArrayConfig(rows=2, cols=2, cascade=1))  # load Yosys once, untimed
    results = []
    for rows, cols in SIZES:
        results.append(measure(rows, cols))
        print(f"  {rows}x{cols} done", file=sys.stderr)
    if args.json:
        print(json.dumps({"cold_cli_8x8_s": round(cold, 3), "sizes": results}, indent=2))
        return 0
    print(f"hw.generate: cold `python -m hw.generate` (8x8): {cold:.2f} s (target < 5 s)")
    print("generate_verilog, default configuration, one warm process:")
    print(f"{'array':>7} {'seconds':>8} {'target':>7} {'bytes':>10} {'lines':>8} {'bytes/PE':>9}")
    for r in results:
        target = f"<{r['target_s']:.0f} s" if r["target_s"] else ""
        print(
            f"{r['rows']:>3}x{r['cols']:<3} {r['seconds']:>8.2f} {target:>7} {r['bytes']:>10} "
            f"{r['lines']:>8} {r['bytes_per_pe']:>9}"
        )
    slow = [r for r in results if r["target_s"] and r["seconds"] > r["target_s"]]
    return 1 if slow or cold > TARGETS[(8, 8)] else 0


if __name__ == "__main__":
    sys.exit(main())
