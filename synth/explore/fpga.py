"""Opt-in (``--fpga``): LUTs, flip-flops and Fmax on ECP5 for the points on the fronts.

Runs the project's ECP5 flow (``synth.fpga_flow.run_flow``: Yosys ``synth_ecp5`` without
DSP blocks, nextpnr with seed 1, cached in its own cache) on each front point's whole
array, with the hardware encoder when the generator has it. This takes minutes per
array at R = 32, which is why it is not part of the default run.
"""

from __future__ import annotations

import sys
from dataclasses import replace

from .grid import Point

__all__ = ["fpga_front"]


def fpga_front(data: dict, opts) -> list[dict]:
    from ..fpga_flow import run_flow

    out = []
    on_front = [x for x in data["points"] if x["on_front"]]
    for i, x in enumerate(on_front, 1):
        p = Point(
            x["rows"],
            x["act_bits"],
            x["weight_bits"],
            x["weight_format"],
            x["overq"],
            x["cascade"],
            x["order"],
        )
        cfg = p.config()
        if p.encoder:
            cfg = replace(cfg, encoder=True)
        if opts.progress:
            print(f"fpga {i}/{len(on_front)}: {p.label}", file=sys.stderr)
        s = run_flow(cfg, nodsp=True, seeds=(1,))
        row = {"label": x["label"], "rows": x["rows"]}
        if "error" in s:
            row["error"] = s["error"]
        else:
            row.update(lut4=s["placed"]["lut4"], ff=s["placed"]["ff"], fmax_mhz=s["fmax_mhz"])
        out.append(row)
    return out
