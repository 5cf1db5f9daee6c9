"""``python -m verif.sim``: the cocotb tests of ``top`` on one configuration (``make sim``).

Generates ``top`` for the configuration (or takes ``--rtl FILE``, a design to
verify whose configuration the options describe), builds it for Icarus or
Verilator, runs every test of ``verif.tb_top`` including the real-data layer, and
exits non-zero on any failure. ``--waves`` writes an FST/VCD file and prints where.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

from hw.params import ArrayConfig
from verif.config import RunSettings, replay_command
from verif.runner import SIMULATORS, default_build_dir, run

__all__ = ["main", "run_layer"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m verif.sim",
        description="Run the cocotb tests of top (generated, or --rtl FILE) on one configuration.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    d = ArrayConfig()
    p.add_argument("--sim", choices=SIMULATORS, default="icarus", help="simulator")
    p.add_argument("--rows", type=int, default=d.rows, help="R, PE rows (vector length)")
    p.add_argument("--cols", type=int, default=d.cols, help="C, PE columns (outputs per vector)")
    p.add_argument("--act-bits", type=int, default=d.act_bits, help="b, bits per activation slot")
    p.add_argument("--weight-bits", type=int, default=d.weight_bits, help="bits per weight code")
    p.add_argument("--weight-format", default=d.weight_format, help="int or apot")
    p.add_argument(
        "--apot-term-bits", type=int, default=d.apot_term_bits, help="k, bits per APoT term"
    )
    p.add_argument(
        "--overq",
        default=d.overq_text,
        help="range, precision, range,precision, range,victim or none",
    )
    p.add_argument(
        "--cascade", type=int, default=d.cascade, help="c, how far a range overwrite reaches"
    )
    p.add_argument(
        "--acc-bits", type=int, default=None, help="output width (default: overflow-free)"
    )
    p.add_argument(
        "--product-register",
        action="store_true",
        help="register the scaled product before the accumulate (L = R + C)",
    )
    p.add_argument(
        "--input-register",
        action="store_true",
        help="register each PE's multiplier operands (L + 1)",
    )
    p.add_argument(
        "--double-buffer",
        action="store_true",
        help="double-buffered weights (w_swap); the layer streams tiles back to back",
    )
    p.add_argument(
        "--encoder",
        action="store_true",
        help="the OverQ encoder in front of the array: drive codes on a_code (L + 1)",
    )
    p.add_argument("--seed", type=int, default=1, help="stimulus seed")
    p.add_argument("--rtl", default=None, help="verify this Verilog file instead of generating top")
    p.add_argument(
        "--waves", action="store_true", help="write an FST (Icarus) / VCD (Verilator) file"
    )
    p.add_argument("--test", default=None, help="run only the cocotb tests matching this regex")
    p.add_argument(
        "--layer-images",
        type=int,
        default=1,
        help="digits test images for the real-data layer test (0 skips it)",
    )
    p.add_argument(
        "--layer",
        default="digits_conv2",
        help="real layer for the layer test (verif.layers: digits_conv2, effnet_pw, ...)",
    )
    p.add_argument(
        "--order",
        default="natural",
        choices=("natural", "channel"),
        help="input-channel order of the real layer (channel: sw_ref.overq.channel_order)",
    )
    p.add_argument(
        "--build-dir", default=None, help="build directory (default: build/verif/<sim>/<config>)"
    )
    return p


def run_layer(
    settings: RunSettings,
    images: int,
    build_dir: Path,
    layer: str = "digits_conv2",
    order: str = "natural",
    **run_args,
):
    """Build the layer case, run the tests with it, and compare the whole layer.

    Returns (RunResult, report dict or None when the layer test did not run)."""
    from verif.layers import build

    case = build(layer, settings.cfg, images=images, order=order)
    build_dir = Path(build_dir).resolve()  # the simulator runs in build_dir
    build_dir.mkdir(parents=True, exist_ok=True)
    npz = build_dir / "layer_tiles.npz"
    case.save(npz)
    out = build_dir / "layer_outputs.npz"
    out.unlink(missing_ok=True)
    (build_dir / "layer_timing.json").unlink(missing_ok=True)
    settings = RunSettings(
        settings.cfg, settings.seed, settings.sim, settings.rtl, str(npz), str(build_dir)
    )
    result = run(settings, build_dir, **run_args)
    if not out.exists():
        return result, None
    rtl = case.assemble(np.load(out)["y"])
    timing_file = build_dir / "layer_timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.exists() else None
    report = {
        "layer": case.layer,
        "images": case.images,
        "vectors": case.n_vectors,
        "tiles": len(case.tile_index),
        "outputs": int(rtl.size),
        "bit_exact": bool(np.array_equal(rtl, case.reference)),
        "mismatches": int(np.count_nonzero(rtl != case.reference)),
        "outliers": case.outliers,
        "handled": case.handled,
        **case.float_error(rtl),
    }
    if timing is not None:
        from verif.utilisation import cycles_used, ideal_cycles

        n, tiles = timing["vectors"], timing["tiles"]
        report["cycles"] = timing["cycles"]
        report["cycles_model"] = cycles_used(settings.cfg, n, tiles)
        report["ideal_cycles"] = ideal_cycles(settings.cfg, n, tiles)
        report["utilisation"] = report["ideal_cycles"] / timing["cycles"]
    return result, report


def format_layer_report(r: dict) -> str:
    timing = ""
    if "cycles" in r:
        timing = (
            f"; {r['cycles']} cycles from the first weight row to the last output "
            f"(cycle model {r['cycles_model']}), ideal {r['ideal_cycles']}: "
            f"utilisation {100 * r['utilisation']:.1f}%"
        )
    return (
        f"layer {r['layer']} ({r['images']} image(s), {r['vectors']} vectors x {r['tiles']} tiles, "
        f"{r['outputs']} outputs): RTL == reference bit for bit: {r['bit_exact']} "
        f"({r['mismatches']} mismatches); vs FP32: SQNR {r['sqnr_db']:.2f} dB, "
        f"relative RMS error {r['rel_rms']:.4f}, max |error| {r['max_abs']:.4f} "
        f"(FP32 max |y| {r['fp32_max_abs']:.3f}); OverQ handled {r['handled']}/{r['outliers']} outliers"
        + timing
    )


def header_mismatches(rtl_text: str, cfg: ArrayConfig) -> list[str]:
    """Fields in a generated file's header comment (``//   name = value``) that
    differ from cfg: a sign that the make variables do not describe the file."""
    expected = {k: str(v) for k, v in cfg.describe().items()}
    found = dict(re.findall(r"^//\s+(\w+)\s+=\s+(\S+)\s*$", rtl_text[:4000], re.M))
    return [
        f"{k}={found[k]} in the file, {expected[k]} here"
        for k in found
        if k in expected and found[k] != expected[k]
    ]


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = ArrayConfig(
            rows=args.rows,
            cols=args.cols,
            act_bits=args.act_bits,
            weight_bits=args.weight_bits,
            weight_format=args.weight_format,
            apot_term_bits=args.apot_term_bits,
            overq=args.overq,
            cascade=args.cascade,
            acc_bits=args.acc_bits,
            product_register=args.product_register,
            encoder=args.encoder,
            input_register=args.input_register,
            double_buffer=args.double_buffer,
        )
    except ValueError as exc:
        print(f"verif.sim: error: {exc}", file=sys.stderr)
        return 2
    if args.rtl and not Path(args.rtl).is_file():
        print(f"verif.sim: error: RTL file {args.rtl} does not exist", file=sys.stderr)
        return 2
    if args.rtl:  # the tests would fail for the wrong reason: refuse, naming the fields
        problems = header_mismatches(Path(args.rtl).read_text(errors="replace"), cfg)
        if problems:
            print(
                f"verif.sim: error: {args.rtl}'s header disagrees with the configuration "
                f"given ({'; '.join(problems)}); pass the file's configuration "
                "(make sim RTL=... ROWS=... COLS=... as in its header)",
                file=sys.stderr,
            )
            return 2
    tag = "rtl-" + Path(args.rtl).stem if args.rtl else ""
    build_dir = (
        Path(args.build_dir).resolve() if args.build_dir else default_build_dir(cfg, args.sim, tag)
    )
    settings = RunSettings(
        cfg, args.seed, args.sim, str(Path(args.rtl).resolve()) if args.rtl else None
    )
    print(
        f"verif.sim: {args.sim}, {cfg.key()}, L={cfg.latency}, seed {args.seed}, "
        f"design {'`' + args.rtl + '`' if args.rtl else 'generated'}; build in {build_dir}",
        file=sys.stderr,
    )
    start = time.monotonic()
    run_args = dict(testcase=None, waves=args.waves)
    if args.test:
        run_args["test_filter"] = args.test
    report = None
    try:
        if args.layer_images > 0 and (not args.test or "layer" in args.test):
            result, report = run_layer(
                settings, args.layer_images, build_dir, args.layer, args.order, **run_args
            )
        else:
            result = run(settings, build_dir, **run_args)
    except ValueError as exc:  # an unknown layer or order
        print(f"verif.sim: error: {exc}", file=sys.stderr)
        return 2
    except RuntimeError as exc:  # the simulator's build failed (e.g. a syntax error in --rtl)
        print(f"verif.sim: error: {exc}; see {build_dir / 'build.log'}", file=sys.stderr)
        return 1
    elapsed = time.monotonic() - start
    ok = result.ok
    print(f"\nverif.sim: {result.summary()} in {elapsed:.1f} s", file=sys.stderr)
    if report is not None:
        print("verif.sim: " + format_layer_report(report), file=sys.stderr)
        ok = ok and report["bit_exact"]
        if "cycles" in report and report["cycles"] != report["cycles_model"]:
            print(
                "verif.sim: the layer took a different number of cycles than the cycle model",
                file=sys.stderr,
            )
            ok = False
    if result.waves:
        print(f"verif.sim: waves written to {result.waves}", file=sys.stderr)
    if not ok:
        print(
            f"verif.sim: FAILED; replay: {replay_command(cfg, args.seed, args.sim, args.rtl)}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
