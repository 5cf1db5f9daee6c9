"""The mapped netlist of one priced design, proven to be the one the report priced.

The area flow (``synth/flow.ys``) keeps no netlist, and its script text is part of every
cache key and report digest, so it stays as it is. Here the same rendered script runs
once more with one command appended, ``write_verilog``, after the statistics are taken;
the statistics of this run must equal the priced ``SynthResult`` (area, cell counts,
depth), else the netlist checked would not be the netlist priced and the check fails.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..flow import SynthError, SynthResult, _parse, _render_script, _run_yosys, digest, strip_src
from ..liberty import LIBERTY

__all__ = ["Mapped", "map_netlist"]

WRITE = "\nwrite_verilog -noattr -noexpr netlist.v\n"


@dataclass(frozen=True)
class Mapped:
    """A design as priced: its RTL (without ``src`` attributes), top name, the
    gate-level netlist (cells45 instances) and the statistics of that run."""

    rtl: str
    top: str
    netlist: str
    result: SynthResult


def _same(a: SynthResult, b: SynthResult) -> bool:
    return (
        a.cells == b.cells
        and abs(a.area - b.area) < 1e-6
        and a.depth == b.depth
        and a.digest == b.digest
    )


def map_netlist(
    verilog: str, top: str, priced: SynthResult | None = None, liberty: Path = LIBERTY
) -> Mapped:
    """Run the area flow on ``verilog`` again and keep its netlist.

    With ``priced`` (the result the report holds) the statistics must match it.
    """
    rtl = strip_src(verilog)
    key = digest(rtl, top, liberty)
    with tempfile.TemporaryDirectory(prefix="overq-netlist-") as tmp:
        work = Path(tmp)
        (work / "design.v").write_text(rtl)
        (work / "cells.lib").write_bytes(Path(liberty).read_bytes())
        (work / "flow.ys").write_text(_render_script(top, liberty) + WRITE)
        _run_yosys(work)
        result = _parse(work, top, liberty, key)
        netlist = (work / "netlist.v").read_text()
    if priced is not None and not _same(result, priced):
        raise SynthError(
            f"{top}: re-running the flow gave {result.area:.3f} um^2 / {result.num_cells} cells, "
            f"the report priced {priced.area:.3f} um^2 / {priced.num_cells} cells: "
            "the netlist checked would not be the one priced"
        )
    return Mapped(rtl, top, netlist, result)
