"""The end of ``make demo``: what it wrote, the array it built, one number, the next step.

Reads the evaluation's JSON (``python -m sw_ref.evaluate``) and the configuration the
generator used, so the summary says what this run measured, not a remembered figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def headline(results: list[dict]) -> str:
    """OverQ's gain on the digits CNN at the narrowest activations the table has."""
    fp32 = next(r for r in results if r["section"] == "fp32")
    rows = [r for r in results if r["section"] == "overq" and r["label"].startswith("aciq")]
    bits = min(r["a_bits"] for r in rows)
    base = next(r for r in rows if r["a_bits"] == bits and r["label"].endswith("baseline"))
    ovq = next(r for r in rows if r["a_bits"] == bits and r["label"].endswith("range c=2"))
    return (
        f"digits CNN at A{bits} (ACIQ clipping): {100 * base['accuracy']:.1f} % without "
        f"OverQ, {100 * ovq['accuracy']:.1f} % with OverQ range c=2 (coverage "
        f"{ovq['coverage']:.2f}); FP32 {100 * fp32['accuracy']:.2f} %"
    )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m sw_ref.demo", description=__doc__.splitlines()[0])
    p.add_argument("--evaluation", type=Path, default=Path("build/evaluate.json"))
    p.add_argument("--report", type=Path, default=Path("synth/reports/digits.md"))
    p.add_argument("--rtl", type=Path, default=Path("rtl_out/top.v"))
    args = p.parse_args(argv)
    data = json.loads(args.evaluation.read_text())
    header = args.rtl.read_text().split("\n", 60)
    latency = next((line.split("=")[1].strip() for line in header if "latency" in line), "?")
    print("\n== make demo: done")
    print(f"wrote  {args.report} ({len(data['results'])} schemes), {args.evaluation}, {args.rtl}")
    print(f"array  {args.rtl}: the configuration printed above, latency L = {latency} cycles")
    print(f"result {headline(data['results'])}")
    print(
        "next   make sim ROWS=4 COLS=4   (cocotb on Icarus, a few seconds); "
        "README 'Quick start' for the rest"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
