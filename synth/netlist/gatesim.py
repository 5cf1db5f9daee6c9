"""Gate-level simulation: the mapped netlist of a whole array under the cocotb testbench.

The netlist of ``top`` (cells45 instances, from ``synth.netlist.mapped``) plus the cell
models (``synth.netlist.cells``) form one Verilog file that ``verif.runner`` runs exactly
as it runs the RTL: the same tests, stimulus, scoreboard and coverage closure, against
``sw_ref.overq.golden``. Flip-flops start unknown (X) in the models, so this also shows
that ``rst`` and the inputs bring every output the testbench reads to a known value.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from hw.params import ArrayConfig

from ..designs import Job
from ..flow import CACHE_DIR, synthesize
from .cells import cell_models
from .mapped import map_netlist

__all__ = ["GateSimResult", "GATE_TESTS", "gate_level_text", "simulate_gates"]

# Every testbench test but the real-data layer and the benchmark.
GATE_TESTS = (
    "test_random",
    "test_port_level",
    "test_directed",
    "test_weight_reload",
    "test_reset_midstream",
    "test_throughput_latency",
)


@dataclass(frozen=True)
class GateSimResult:
    cfg: ArrayConfig
    passed: tuple
    failed: tuple
    cells: int
    area: float
    seconds: float
    build_dir: Path

    @property
    def ok(self) -> bool:
        ran = {name.split("/")[0] for name in self.passed}
        return not self.failed and set(GATE_TESTS) <= ran

    def summary(self) -> str:
        return (
            f"gate-level {self.cfg.key()} ({self.cells} cells, {self.area:.1f} um^2): "
            f"{len(self.passed)} passed, {len(self.failed)} failed"
            + (f" ({', '.join(self.failed)})" if self.failed else "")
            + f", {self.seconds:.0f} s; log in {self.build_dir}"
        )


def gate_level_text(cfg: ArrayConfig, cache_dir: Path | None = CACHE_DIR) -> tuple[str, object]:
    """The priced netlist of ``top`` for cfg with the cell models appended."""
    job = Job("array", cfg)
    verilog = job.verilog()
    priced = synthesize(verilog, job.top, label=job.label, cache_dir=cache_dir)
    mapped = map_netlist(verilog, job.top, priced)
    return mapped.netlist + "\n" + cell_models(), mapped.result


def simulate_gates(
    cfg: ArrayConfig,
    seed: int = 1,
    build_dir: Path | None = None,
    cache_dir: Path | None = CACHE_DIR,
    sim: str = "icarus",
    tests: tuple = GATE_TESTS,
) -> GateSimResult:
    """Map ``top`` for cfg and run the cocotb tests on its netlist."""
    from verif.config import RunSettings
    from verif.runner import default_build_dir, run

    start = time.monotonic()
    text, result = gate_level_text(cfg, cache_dir)
    build_dir = build_dir or default_build_dir(cfg, sim, "gates")
    outcome = run(
        RunSettings(cfg, seed=seed, sim=sim), build_dir, rtl_text=text, test_filter="|".join(tests)
    )
    return GateSimResult(
        cfg,
        tuple(outcome.passed),
        tuple(outcome.failed),
        result.num_cells,
        result.area,
        time.monotonic() - start,
        Path(outcome.build_dir),
    )
