"""The netlist checks of ``make synth``: every priced PE proven equal to its RTL, and
whole arrays simulated at gate level under the cocotb testbench.

``check_pes`` re-derives each PE's mapped netlist (``mapped.map_netlist``, which fails if
it is not the netlist priced) and proves it equivalent to the RTL (``equiv``), two at a
time. A proof is cached in ``synth/cache/`` under a digest of the priced design (RTL, top,
library, flow script, Yosys version) and of this check (its script, the netlist command),
so a warm ``make synth`` proves nothing twice. ``GATE_ARRAYS`` are the arrays simulated at
gate level (``gatesim``); their cocotb builds are reused when the netlist is unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from hw.params import ArrayConfig

from ..designs import Job
from ..flow import CACHE_DIR, SynthResult
from . import equiv, mapped

__all__ = ["GATE_ARRAYS", "check_pe", "check_pes", "check_gate_arrays"]

# One whole 4x4 array per OverQ datapath the report prices: int weights with range,
# and APoT weights with range+precision (every state scale, the shift-add multiplier).
GATE_ARRAYS = (
    ArrayConfig(rows=4, cols=4, overq="range"),
    ArrayConfig(rows=4, cols=4, overq="range,precision", weight_format="apot"),
)


def _proof_path(cache_dir: Path, job: Job, priced: SynthResult) -> Path:
    h = hashlib.sha256()
    for part in (
        priced.digest,
        equiv.SCRIPT,
        equiv.SAT,
        mapped.WRITE,
        str(equiv.MAX_STEPS),
        f"{equiv.SPLIT_INPUT}{equiv.SPLIT_FROM_BITS}",
    ):
        h.update(hashlib.sha256(part.encode()).digest())
    return cache_dir / f"equiv_{job.label}-{h.hexdigest()[:16]}.json"


def check_pe(
    job: Job, priced: SynthResult, cache_dir: Path | None = CACHE_DIR
) -> equiv.EquivResult:
    """Prove the priced netlist of one PE job equal to its RTL (cached when proven)."""
    path = _proof_path(cache_dir, job, priced) if cache_dir is not None else None
    if path is not None and path.exists():
        data = json.loads(path.read_text())
        return equiv.EquivResult(job.top, True, float(data["seconds"]), "cached")
    m = mapped.map_netlist(job.verilog(), job.top, priced)
    result = equiv.check_equivalence(m.rtl, m.netlist, job.top)
    if result.equivalent and path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(
            json.dumps(
                {"label": job.label, "equivalent": True, "seconds": round(result.seconds, 2)},
                indent=1,
            )
            + "\n"
        )
        partial.replace(path)
    return result


def check_pes(
    results: dict, workers: int = 2, cache_dir: Path | None = CACHE_DIR, progress: bool = True
) -> dict:
    """Equivalence of every PE job in ``results`` (Job -> priced SynthResult)."""
    jobs = [job for job in results if job.kind == "pe"]
    out: dict = {}
    bar = tqdm(
        total=len(jobs),
        desc="equiv",
        unit="PE",
        file=sys.stderr,
        disable=not progress,
        mininterval=0.5 if sys.stderr.isatty() else 20,
    )
    with bar:
        if workers <= 1:
            for job in jobs:
                out[job] = check_pe(job, results[job], cache_dir)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(check_pe, job, results[job], cache_dir): job for job in jobs}
                for future in as_completed(futures):
                    out[futures[future]] = future.result()
                    bar.update()
    return {job: out[job] for job in jobs}


def check_gate_arrays(configs=GATE_ARRAYS, cache_dir: Path | None = CACHE_DIR) -> list:
    """Gate-level cocotb runs of whole arrays (Icarus); one ``GateSimResult`` each."""
    from .gatesim import simulate_gates

    return [simulate_gates(cfg, cache_dir=cache_dir) for cfg in configs]
