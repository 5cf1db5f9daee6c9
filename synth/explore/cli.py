"""``python -m synth.explore`` (``make explore``): fidelity against area for a grid.

Evaluates every configuration of the grid on a network (fidelity against FP32, per
layer SQNR) and prices its R x R array in 45 nm cells (Yosys), both cached, then
writes ``explore.md``, ``explore.json`` and ``explore.png`` (the Pareto front of
fidelity against area per array size, the best configuration under each plain
array's area, and the A4 + OverQ against A5 comparison).
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

from .accuracy import AccuracySettings
from .grid import EXTRA_OVERQ_CHOICES, OVERQ_CHOICES, Grid
from .nets import available
from .run import Options, default_workers, explore

__all__ = ["main", "REPORTS", "report_stem"]

REPORTS = Path(__file__).resolve().parents[1] / "reports"


def _ints(text: str) -> tuple:
    try:
        return tuple(int(t) for t in text.split(",") if t.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}")


def _names(text: str) -> tuple:
    names = tuple(t.strip() for t in text.split(",") if t.strip())
    allowed = {**OVERQ_CHOICES, **EXTRA_OVERQ_CHOICES}
    bad = [n for n in names if n not in allowed]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown OverQ choice(s) {', '.join(bad)}; allowed: {', '.join(allowed)}"
        )
    return names


def _orders(text: str) -> tuple:
    table = {"off": False, "on": True}
    try:
        return tuple(table[t.strip()] for t in text.split(",") if t.strip())
    except KeyError:
        raise argparse.ArgumentTypeError(f"--order takes off, on or off,on; got {text!r}")


def report_stem(net: str, stem: str | None = None) -> str:
    """The report's file name stem: ``explore`` for digits, ``explore_<net>`` otherwise."""
    return stem or ("explore" if net == "digits" else f"explore_{net}")


def _parser() -> argparse.ArgumentParser:
    g = Grid()
    p = argparse.ArgumentParser(
        prog="python -m synth.explore",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--net", default="digits", help=f"network ({', '.join(available())})")
    p.add_argument("--rows", type=_ints, default=g.rows, help="array sizes R (R x R)")
    p.add_argument("--act-bits", type=_ints, default=g.act_bits, help="activation widths")
    p.add_argument("--int-weights", type=_ints, default=g.int_weight_bits, help="int weight widths")
    p.add_argument(
        "--apot-weights", type=_ints, default=g.apot_weight_bits, help="APoT weight widths"
    )
    p.add_argument(
        "--overq",
        type=_names,
        default=g.overq,
        help=f"OverQ choices ({', '.join({**OVERQ_CHOICES, **EXTRA_OVERQ_CHOICES})})",
    )
    p.add_argument(
        "--order",
        type=_orders,
        default=g.order,
        help="channel order for OverQ points: off, on or off,on",
    )
    p.add_argument(
        "--act-method",
        default=AccuracySettings.act_method,
        help="activation threshold method (sw_ref.quant)",
    )
    p.add_argument(
        "--weight-method",
        default=AccuracySettings.weight_method,
        help="weight threshold method (max or mse)",
    )
    p.add_argument(
        "--eval",
        "--eval-images",
        dest="eval",
        type=int,
        default=None,
        help="evaluation inputs (images, crops or sentences; default: the "
        "network's own: digits 540, EfficientNet 256, MiniLM 256)",
    )
    p.add_argument(
        "--calib",
        "--calib-images",
        dest="calib",
        type=int,
        default=None,
        help="calibration inputs (default: the network's own)",
    )
    p.add_argument("--jobs", "-j", type=int, default=default_workers(), help="processes")
    p.add_argument(
        "--scheduler",
        default=None,
        help="a Dask scheduler address (tcp://host:8786) to run the tasks on, "
        "instead of a local pool of --jobs processes",
    )
    p.add_argument("--out-dir", type=Path, default=REPORTS, help="where the report goes")
    p.add_argument(
        "--stem",
        default=None,
        help="file name stem of the report (default: explore for digits, "
        "explore_<net> for the others)",
    )
    p.add_argument(
        "--accelerator",
        action="store_true",
        help="add the whole-accelerator section: memories, energy per inference, "
        "A4 + OverQ against A5 at equal array / accelerator area and energy "
        "with bootstrap intervals (docs/cost-model.md)",
    )
    p.add_argument(
        "--no-validate", action="store_true", help="skip the whole-array check of the area model"
    )
    p.add_argument(
        "--fpga",
        action="store_true",
        help="also run the ECP5 flow (LUT/FF, Fmax) for the front points (slow)",
    )
    p.add_argument("--no-cache", action="store_true", help="recompute everything, store nothing")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    start = time.monotonic()
    try:
        if args.jobs < 1:
            raise ValueError("--jobs must be >= 1")
        if args.net not in available():
            raise ValueError(f"unknown network {args.net!r}; available: {', '.join(available())}")
        grid = Grid(
            rows=args.rows,
            act_bits=args.act_bits,
            int_weight_bits=args.int_weights,
            apot_weight_bits=args.apot_weights,
            overq=args.overq,
            order=args.order,
        )
        settings = AccuracySettings(args.act_method, args.weight_method)
        kw = {}
        if args.no_cache:
            kw = {"acc_cache": None, "synth_cache": None, "index_dir": None}
        opts = Options(
            net=args.net,
            n_eval=args.eval,
            n_calib=args.calib,
            settings=settings,
            workers=args.jobs,
            progress=not args.quiet,
            scheduler=args.scheduler or None,
            **kw,
        )
        grid.points()  # validate the grid before any work
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from . import report

    result = explore(grid, opts, validate=not args.no_validate)
    validation = result["validation"]
    # Where the tasks ran is not part of what the report says: no --scheduler in it.
    words = list(sys.argv[1:] if argv is None else argv)
    words = [
        w
        for i, w in enumerate(words)
        if not w.startswith("--scheduler") and not (i and words[i - 1] == "--scheduler")
    ]
    argv_text = " ".join(shlex.quote(a) for a in words)
    command = "python -m synth.explore" + (f" {argv_text}" if argv_text else "")
    data = report.build(
        result,
        grid.describe(),
        validation,
        asdict(result["settings"]),
        command,
        accelerator=args.accelerator,
    )
    if args.fpga:
        from .fpga import fpga_front

        data["fpga"] = fpga_front(data, opts)
    written = report.write(data, args.out_dir, report_stem(args.net, args.stem))
    st = result["stats"]
    print(
        f"{st['points']} points: {st['accuracy_computed']} of {st['accuracy_evaluations']} "
        f"accuracy evaluations and {st['parts_synthesized']} of {st['parts']} parts "
        f"computed, the rest cached; {time.monotonic() - start:.0f} s",
        file=sys.stderr,
    )

    def fits(b):
        return (
            f"{b['label']} {100 * b['fidelity']:.2f}% at {b['area_um2']:,.0f} um2"
            if b
            else "none fits"
        )

    for q in data["a4_vs_a5"]:
        print(
            f"R{q['rows']} {q['weights']}: A5 {100 * q['a5']['fidelity']:.2f}% at "
            f"{q['a5']['area_um2']:,.0f} um2; best A4+OverQ within it: same weights "
            f"{fits(q['a4_overq_fits'])} -> {q['verdict']}; any weights "
            f"{fits(q['a4_overq_any_fits'])} -> {q['verdict_any']}"
        )
    for q in data.get("accelerator", {}).get("questions", []):
        if q["weights"] != "W8":
            continue
        b = q["any"]
        iv = q["any_interval"]
        print(
            f"R{q['rows']} {q['weights']} equal {q['cost']}: A5 {100 * q['a5']['fidelity']:.2f}%, "
            f"best A4+OverQ (any weights) {b['label'] + ' [' + b['format'] + ']' if b else 'none fits'}"
            + (
                f" {100 * iv['diff']:+.2f} [{100 * iv['low']:+.2f}, {100 * iv['high']:+.2f}]"
                if iv
                else ""
            )
            + f" -> {q['any_answer']}"
        )
    print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0
