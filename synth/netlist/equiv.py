"""Formal equivalence of a mapped netlist and its RTL, in Yosys.

The RTL (``gold``) and the netlist (``gate``, the liberty cells read with their functions,
not as black boxes) are put side by side in a miter that asserts equal outputs for equal
inputs, and ``sat -tempinduct`` proves the assertion for every input sequence: the base
case from the all-zero initial state (every register of the RTL starts at zero), and the
induction step from any state whose outputs agreed for the previous cycles. In a PE every
register drives an output (``w_out``, ``a_out``, ``state_out``, ``psum_out``), so equal
outputs mean equal state and the induction closes at length 1; ``MAX_STEPS`` bounds the
search for designs with hidden state.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from ..flow import SynthError, _run_yosys
from ..liberty import LIBERTY

__all__ = ["EquivResult", "SCRIPT", "check_equivalence"]

MAX_STEPS = 4

SCRIPT = """\
read_verilog -defer rtl.v
hierarchy -check -top {top}
proc
flatten
opt_clean
rename {top} gold
design -stash gold
read_liberty -ignore_miss_func cells.lib
read_verilog netlist.v
hierarchy -check -top {top}
flatten
opt_clean
rename {top} gate
design -stash gate
design -copy-from gold -as gold gold
design -copy-from gate -as gate gate
miter -equiv -flatten -make_assert gold gate miter
hierarchy -top miter
"""
SAT = "tee -a sat.txt sat -verify -tempinduct -prove-asserts -set-init-zero -seq 1 -maxsteps {steps}{split} miter\n"

# Proving a wide multiplier equal to a differently structured one is hard for SAT (a 7x7
# range PE took 270 s, 8x8 ones longer still). With this many
# activation bits or more, the proof is split on the value of ``a_in``: one proof per
# value, each of a multiplier by a constant (an 8-bit PE: 256 proofs, measured 126-372 s). That is sound for an induction of length 1 in a design whose outputs are all
# register outputs (a PE): the step from cycle t to t+1 depends on the inputs of cycle t
# only, so proving it for each value of a_in proves it for all; the split runs with
# -maxsteps 1 so that no longer induction can slip in.
SPLIT_INPUT, SPLIT_FROM_BITS = "a_in", 8

_PROVED = re.compile(r"Induction step proven: SUCCESS!")
_INPUT = re.compile(r"^\s*input\s+(?:\[(\d+):0\]\s*)?(\w+)\s*;", re.M)


@dataclass(frozen=True)
class EquivResult:
    top: str
    equivalent: bool
    seconds: float
    detail: str = ""


def check_equivalence(
    rtl: str, netlist: str, top: str, liberty: Path = LIBERTY, steps: int = MAX_STEPS
) -> EquivResult:
    """Prove ``netlist`` (mapped cells) computes what ``rtl`` does, cycle for cycle."""
    start = time.monotonic()
    widths = {name: int(hi) + 1 if hi else 1 for hi, name in _INPUT.findall(netlist)}
    bits = widths.get(SPLIT_INPUT, 0)
    if bits >= SPLIT_FROM_BITS:
        cases = [f" -set in_{SPLIT_INPUT} {v}" for v in range(1 << bits)]
        steps = 1
    else:
        cases = [""]
    script = SCRIPT.format(top=top) + "".join(SAT.format(steps=steps, split=c) for c in cases)
    with tempfile.TemporaryDirectory(prefix="overq-equiv-") as tmp:
        work = Path(tmp)
        (work / "rtl.v").write_text(rtl)
        (work / "netlist.v").write_text(netlist)
        (work / "cells.lib").write_bytes(Path(liberty).read_bytes())
        (work / "flow.ys").write_text(script)
        try:
            _run_yosys(work)
        except SynthError as exc:
            return EquivResult(top, False, time.monotonic() - start, str(exc)[-1500:])
        except subprocess.TimeoutExpired as exc:  # unproven is not equivalent
            return EquivResult(
                top, False, time.monotonic() - start, f"no proof within {exc.timeout:.0f} s"
            )
        report = (
            (work / "sat.txt").read_text(errors="replace") if (work / "sat.txt").exists() else ""
        )
    proved = len(_PROVED.findall(report)) == len(cases)
    return EquivResult(
        top,
        proved,
        time.monotonic() - start,
        "" if proved else report[-1500:] or "no proof in the Yosys log",
    )
