"""Run many synthesis jobs, a few at a time, with a progress bar on stderr.

Each job generates its Verilog (Amaranth) and synthesizes it in a worker process, so
both steps run side by side; cached results come back without starting Yosys.
"""

from __future__ import annotations

import os
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from tqdm import tqdm

from .designs import Job
from .flow import CACHE_DIR, SynthResult, synthesize

__all__ = ["run_job", "run_jobs", "default_workers"]


def default_workers() -> int:
    """Two at a time: the machines this runs on have two cores, shared."""
    return max(1, min(2, os.cpu_count() or 1))


def run_job(job: Job, cache_dir: Path | None = CACHE_DIR) -> SynthResult:
    return synthesize(job.verilog(), job.top, label=job.label, cache_dir=cache_dir)


def run_jobs(
    jobs,
    workers: int | None = None,
    cache_dir: Path | None = CACHE_DIR,
    progress: bool = True,
    desc: str = "synth",
) -> dict[Job, SynthResult]:
    """Synthesize every distinct job; the results keyed by job, in the order given."""
    unique = list(dict.fromkeys(jobs))
    workers = workers or default_workers()
    results: dict[Job, SynthResult] = {}
    # In a log (not a terminal) one line every 20 s instead of a redrawn bar.
    bar = tqdm(
        total=len(unique),
        desc=desc,
        unit="design",
        file=sys.stderr,
        disable=not progress,
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 20,
    )
    # Arrays first: they take longest, so the small PEs fill in around them.
    order = sorted(unique, key=lambda j: j.kind != "array")
    with bar:
        if workers == 1:
            for job in order:
                results[job] = run_job(job, cache_dir)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(run_job, job, cache_dir): job for job in order}
                for future in as_completed(futures):
                    results[futures[future]] = future.result()
                    bar.set_postfix_str(futures[future].label[:40], refresh=False)
                    bar.update()
    return {job: results[job] for job in unique}
