"""``python -m synth.area`` (``make synth``): the area report of the OverQ / APoT PEs.

Synthesizes every design of ``synth.plan.Plan`` (two at a time, cached in
``synth/cache/``) and writes ``area.json``, ``area.md`` and ``area_sweep.png`` to
``synth/reports/``. The report's PE table also goes to stdout; progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .batch import default_workers, run_jobs
from .flow import CACHE_DIR, SynthError
from .markdown import docs_block, pe_summary, render
from .plan import Plan
from .plot import plot_sweep
from .report import build

__all__ = ["main", "write_report"]

REPORTS = Path(__file__).with_name("reports")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "synth.md"
DOCS_BEGIN = "<!-- synth:results:begin (written by make synth, do not edit) -->"
DOCS_END = "<!-- synth:results:end -->"


def update_docs(data: dict, path: Path = DOCS) -> bool:
    """Refresh the results block of docs/synth.md so it always quotes the last report."""
    if not path.exists():
        return False
    text = path.read_text()
    if DOCS_BEGIN not in text or DOCS_END not in text:
        return False
    head, rest = text.split(DOCS_BEGIN, 1)
    _, tail = rest.split(DOCS_END, 1)
    path.write_text(head + DOCS_BEGIN + "\n" + docs_block(data) + DOCS_END + tail)
    return True


def write_report(data: dict, out_dir: Path) -> list[Path]:
    """Write area.json, area.md and (with a sweep) area_sweep.png; return the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / "area.json", out_dir / "area.md"]
    written[0].write_text(json.dumps(data, indent=1) + "\n")
    plot_name = None
    if "sweep" in data:
        plot_name = "area_sweep.png"
        plot_sweep(data, out_dir / plot_name)
        written.append(out_dir / plot_name)
    written[1].write_text(render(data, plot_name))
    return written


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m synth.area",
        description="Synthesize the overq PEs and arrays with Yosys and write the area report.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--jobs", "-j", type=int, default=default_workers(), help="synthesis runs at a time"
    )
    p.add_argument("--out-dir", type=Path, default=REPORTS, help="where the report goes")
    p.add_argument("--no-cache", action="store_true", help="ignore and do not write synth/cache/")
    p.add_argument("--no-arrays", action="store_true", help="skip the whole-array runs")
    p.add_argument("--no-sweep", action="store_true", help="skip the bit-width sweep")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-netlist-check",
        action="store_true",
        help="skip proving each priced PE netlist equal to its RTL and the "
        "gate-level simulation of the 4x4 arrays",
    )
    return p


def check_netlists(results: dict, args) -> bool:
    """The checks of ``synth.netlist``: True when every one passed (a line each on stderr)."""
    from .netlist.check import check_gate_arrays, check_pes

    cache = None if args.no_cache else CACHE_DIR
    proofs = check_pes(results, workers=args.jobs, cache_dir=cache, progress=not args.quiet)
    failed = [job for job, r in proofs.items() if not r.equivalent]
    for job in failed:
        print(
            f"error: {job.label}: the mapped netlist is not equivalent to the RTL\n"
            f"{proofs[job].detail}",
            file=sys.stderr,
        )
    cached = sum(r.detail == "cached" for r in proofs.values())
    print(
        f"netlist: {len(proofs) - len(failed)} of {len(proofs)} priced PE netlists proven "
        f"equivalent to their RTL ({cached} proofs cached)",
        file=sys.stderr,
    )
    ok = not failed
    for sim in check_gate_arrays(cache_dir=cache):
        print(("netlist: " if sim.ok else "error: ") + sim.summary(), file=sys.stderr)
        ok = ok and sim.ok
    return ok


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    if args.jobs < 1:
        print("error: --jobs must be >= 1", file=sys.stderr)
        return 2
    plan = Plan(arrays=not args.no_arrays, sweep_bits=() if args.no_sweep else Plan.sweep_bits)
    start = time.monotonic()
    try:
        results = run_jobs(
            plan.jobs(),
            workers=args.jobs,
            progress=not args.quiet,
            cache_dir=None if args.no_cache else CACHE_DIR,
        )
    except SynthError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not args.no_netlist_check:
        try:
            if not check_netlists(results, args):
                return 1
        except SynthError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    data = build(plan, results)
    written = write_report(data, args.out_dir)
    if args.out_dir.resolve() == REPORTS.resolve() and update_docs(data):
        written.append(DOCS)
    sys.stdout.write(pe_summary(data))
    print(
        f"wrote {', '.join(str(p) for p in written)} in {time.monotonic() - start:.0f} s "
        f"({len(results)} designs)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
