"""Compute every point of a grid: fidelity (cached per point) and area (cached per part).

The work is a list of independent tasks, run on a small process pool, the longest
first: the whole arrays of the area model check (with ``validate``), batches of parts
to synthesize (encoders first) and chunks of points to evaluate (the points that
differ only in their weights together). Each worker builds the network's FP32
reference once and only if it has a point to run.
Whatever is already cached is read, not recomputed, so changing one parameter of a
grid recomputes exactly the points and parts it touches.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from tqdm import tqdm

from . import accuracy, cost, nets
from .accuracy import AccuracySettings, LazyReference, cached_accuracy
from .executor import executor
from .grid import Grid, Point

__all__ = ["Options", "explore", "validate_parts", "VALIDATION_CONFIGS"]


@dataclass(frozen=True)
class Options:
    net: str = "digits"
    n_eval: int | None = None
    n_calib: int | None = None
    settings: AccuracySettings = field(default_factory=AccuracySettings)
    workers: int = 2
    progress: bool = True
    acc_cache: Path | None = accuracy.CACHE_DIR
    synth_cache: Path | None = cost.SYNTH_CACHE
    index_dir: Path | None = cost.PARTS_DIR
    chunk: int = 7  # points per accuracy task (the weight choices of one activation setup)
    # None: a local pool of ``workers`` processes; else a Dask scheduler address
    # (tcp://host:8786) or a distributed Client / LocalCluster (synth.explore.executor).
    scheduler: object = None


_WORKLOADS: dict = {}


def _reference(opts: Options) -> LazyReference:
    key = (opts.net, opts.n_eval, opts.n_calib)
    if key not in _WORKLOADS:
        _WORKLOADS[key] = LazyReference(nets.get(opts.net, opts.n_eval, opts.n_calib))
    return _WORKLOADS[key]


def _accuracy_task(opts: Options, points: list[Point]) -> list[tuple[Point, dict, bool]]:
    import torch

    torch.set_num_threads(1)
    ref = _reference(opts)
    return [(p, *cached_accuracy(ref, p, opts.settings, opts.acc_cache)) for p in points]


def _parts_task(opts: Options, parts: list) -> dict:
    return cost.synthesize_batch(parts, opts.synth_cache, opts.index_dir)


def _keep_parts(results: dict, index_dir: Path | None) -> None:
    """Index entries for parts a worker synthesized, where this side lacks them."""
    import json

    if index_dir is None:
        return
    for part, res in results.items():
        path = cost._index_path(part, index_dir)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(res.to_json(), sort_keys=True))
            tmp.replace(path)


def point_parts(p: Point, encoder: bool) -> list:
    return [part for part, _ in cost.array_parts(p.config(), encoder and p.encoder)]


def _whole_task(opts: Options, jobs: list) -> dict:
    from ..batch import run_job

    return {job: run_job(job, opts.synth_cache) for job in jobs}


def explore(grid: Grid, opts: Options, validate: bool = False) -> dict:
    """Fidelity and area of every point of ``grid``; returns rows and bookkeeping.

    ``validate``: also the whole-array syntheses of ``validate_parts`` (the longest
    jobs, so they go first into the same pool; ``result["validation"]``).
    """
    start = time.monotonic()
    points = grid.points()
    ref = _reference(opts)
    points = [p for p in points if ref.workload.supports(p)]
    opts = replace(opts, settings=opts.settings.for_workload(ref.workload))
    encoder = True  # the generator has the hardware encoder
    needed = [part for p in points for part in point_parts(p, encoder)]
    if validate:  # the parts of the checked arrays, in the same pool
        needed += [part for _, c, e in _validation_jobs() for part, _ in cost.array_parts(c, e)]
    needed = list(dict.fromkeys(needed))
    parts, missing = cost.cached_parts(needed, opts.index_dir)

    by_key: dict = {}
    for p in points:  # one evaluation per distinct accuracy key
        by_key.setdefault(repr(sorted(accuracy.accuracy_key(p).items())), p)
    acc: dict = {}
    todo = []
    for k, p in by_key.items():
        path = (
            accuracy._cache_file(opts.acc_cache, ref.workload, p, opts.settings)
            if opts.acc_cache is not None
            else None
        )
        if path is not None and path.exists():
            acc[k] = cached_accuracy(ref, p, opts.settings, opts.acc_cache)[0]
        else:
            todo.append(p)
    stats = {
        "points": len(points),
        "accuracy_evaluations": len(by_key),
        "accuracy_computed": len(todo),
        "parts": len(needed),
        "parts_synthesized": len(missing),
    }

    # Points that share their activations (R, bits, OverQ, order) and differ in their
    # weights go to one task: the worker computes their channel orders once.
    todo.sort(
        key=lambda p: (
            p.overq_on,
            p.rows,
            p.act_bits,
            p.overq,
            p.cascade,
            p.order,
            p.weight_format,
            p.weight_bits,
        )
    )
    whole_jobs = [job for job, _, _ in _validation_jobs()] if validate else []
    tasks = [("whole", [job]) for job in whole_jobs]
    tasks += [("parts", b) for b in cost.batches(missing)]
    tasks += [("acc", todo[i : i + opts.chunk]) for i in range(0, len(todo), opts.chunk)]
    total = len(whole_jobs) + len(missing) + len(todo)
    whole: dict = {}
    bar = tqdm(
        total=total,
        desc=f"explore {opts.net}",
        unit="job",
        file=sys.stderr,
        disable=not opts.progress or total == 0,
        dynamic_ncols=True,
        mininterval=0.5 if sys.stderr.isatty() else 20,
    )

    def take(kind, result):
        if kind == "whole":
            whole.update(result)
            bar.update(len(result))
        elif kind == "parts":
            parts.update(result)
            _keep_parts(result, opts.index_dir)
            bar.update(len(result))
        else:
            for p, res, _ in result:
                acc[repr(sorted(accuracy.accuracy_key(p).items()))] = res
                if opts.acc_cache is not None:  # a remote worker's result, kept here too
                    accuracy.store(
                        accuracy._cache_file(opts.acc_cache, ref.workload, p, opts.settings), res
                    )
            bar.update(len(result))

    runners = {"whole": _whole_task, "parts": _parts_task, "acc": _accuracy_task}
    task_opts = replace(opts, scheduler=None)  # what a task sees: no client inside
    with bar:
        if opts.scheduler is None and (opts.workers <= 1 or len(tasks) <= 1):
            for kind, items in tasks:
                take(kind, runners[kind](task_opts, items))
        elif tasks:
            with executor(opts.scheduler, opts.workers) as pool:
                futures = {
                    pool.submit(runners[kind], task_opts, items): kind for kind, items in tasks
                }
                for fut in pool.as_completed(futures):
                    take(futures[fut], fut.result())

    rows, per_input, headers = [], {}, {}
    for p in points:
        res = acc[repr(sorted(accuracy.accuracy_key(p).items()))]
        area = cost.price(p.config(), parts, encoder and p.encoder)
        # Per-input metrics (bootstrap intervals) and the header formats' coverage
        # feed the accelerator section only; they stay out of the rows.
        per_input[(p.rows, p.label)] = res.get("per_input")
        if "header" in res:
            headers[(p.rows, p.label)] = res["header"]
        row = {
            **p.to_json(),
            **{k: v for k, v in res.items() if k not in ("seconds", "per_input", "header")},
            **area,
        }
        row["encoder_priced"] = bool(encoder and p.encoder)
        rows.append(row)
    validation = _validation_rows(opts, whole, parts) if validate else None
    stats["seconds"] = round(time.monotonic() - start, 1)
    return {
        "rows": rows,
        "stats": stats,
        "workload": ref.workload,
        "encoder": encoder,
        "order": True,  # the channel order is always available
        "settings": opts.settings,
        "validation": validation,
        "per_input": per_input,
        "headers": headers,
    }


# Whole-array syntheses the parts are checked against (the area report's 8x8 arrays).
VALIDATION_CONFIGS = (
    ("none", "int", False),
    ("range", "int", False),
    ("range,precision", "int", False),
    ("none", "apot", False),
    ("range", "apot", False),
    ("range", "int", True),
    ("range,precision", "int", True),
)


def _validation_jobs(rows: int = 8, act_bits: int = 4) -> list:
    """(whole-array Job, its config, encoder) for each of ``VALIDATION_CONFIGS``."""
    from hw.params import ArrayConfig

    from ..designs import Job

    out = []
    for o, f, e in VALIDATION_CONFIGS:
        c = ArrayConfig(
            rows=rows, cols=rows, act_bits=act_bits, weight_bits=act_bits, weight_format=f, overq=o
        )
        out.append((Job("array", replace(c, encoder=True) if e else c), c, e))
    return out


def _validation_rows(opts: Options, whole: dict, parts: dict) -> list[dict]:
    jobs = _validation_jobs()
    needed = [part for _, c, e in jobs for part, _ in cost.array_parts(c, e)]
    found, missing = cost.cached_parts([p for p in needed if p not in parts], opts.index_dir)
    found.update({p: parts[p] for p in needed if p in parts})
    for batch in cost.batches(missing):
        found.update(cost.synthesize_batch(batch, opts.synth_cache, opts.index_dir))
    out = []
    for j, c, e in jobs:
        parts_area = cost.price(c, found, e)["area_um2"]
        w = whole[j].area
        out.append(
            {
                "config": c.key() + ("_enc" if e else ""),
                "overq": c.overq_text,
                "weight_format": c.weight_format,
                "encoder": e,
                "whole_um2": round(w, 3),
                "parts_um2": parts_area,
                "error_pct": round(100 * (parts_area / w - 1), 2),
            }
        )
    return out


def validate_parts(opts: Options, rows: int = 8, act_bits: int = 4) -> list[dict]:
    """Priced-from-parts against whole-array synthesis for a few 8x8 A4W4 arrays.

    The whole arrays without encoder are the jobs of ``make synth`` (same labels, same
    cache); those with the encoder are checked when the generator has it.
    ``explore(..., validate=True)`` does the same inside its own pool.
    """
    from ..batch import run_jobs

    jobs = _validation_jobs(rows, act_bits)
    whole = run_jobs(
        [j for j, _, _ in jobs],
        workers=opts.workers,
        cache_dir=opts.synth_cache,
        progress=opts.progress,
        desc="validate",
    )
    return _validation_rows(opts, whole, {})


def default_workers() -> int:
    return max(1, min(2, os.cpu_count() or 1))
