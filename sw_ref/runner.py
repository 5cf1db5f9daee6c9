"""The evaluation runner: tasks on a process pool with progress, a content-keyed cache,
JSON out. Every evaluation (the digits table, EfficientNet-Lite0's and MiniLM-L6's
reports, ``python -m sw_ref.evaluate --net``) runs its rows through it.

- ``run_tasks(fn, tasks, context=..., jobs=...)`` computes ``fn(context, task)`` for
  every task, on ``jobs`` forked worker processes (one torch thread each; they inherit
  ``context``, so nothing large is pickled) or in this process, with a tqdm bar on
  stderr; ``on_result(i, result)`` sees each result as it arrives (in task order with
  ``ordered=True``), so an interrupted run keeps what it finished.
- ``Cache(directory)`` stores one JSON file per key, written atomically;
  ``content_key(...)`` hashes everything that determines a result (the task, the
  workload, the source files that compute it).
- ``to_json(obj)`` is the one conversion to JSON-safe values: non-finite floats as
  text ("inf", "nan"), numpy scalars as Python numbers, tuples as lists, keys as text.
"""

from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["Cache", "content_key", "file_digest", "run_tasks", "to_json"]


def to_json(obj):
    """``obj`` with every value JSON can hold as it is (see the module docstring)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return to_json(float(obj))
    if isinstance(obj, np.ndarray):
        return to_json(obj.tolist())
    if is_dataclass(obj) and not isinstance(obj, type):
        return to_json(asdict(obj))
    return obj


def file_digest(paths) -> str:
    """sha256 of the files' contents (the code that computes a result)."""
    h = hashlib.sha256()
    for p in sorted(str(p) for p in paths):
        h.update(p.encode())
        h.update(Path(p).read_bytes())
    return h.hexdigest()


def content_key(*parts) -> str:
    """A short hash of ``parts`` (anything ``to_json`` takes), order-independent in dicts."""
    text = json.dumps(to_json(list(parts)), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class Cache:
    """One JSON file per key under ``directory`` (None: no cache)."""

    def __init__(self, directory: Path | str | None):
        self.directory = None if directory is None else Path(directory)

    def get(self, key: str):
        if self.directory is None:
            return None
        path = self.directory / f"{key}.json"
        return json.loads(path.read_text()) if path.exists() else None

    def put(self, key: str, value) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=key, suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(to_json(value)))
        os.replace(tmp, self.directory / f"{key}.json")


_CONTEXT = None  # what a forked worker computes with (set before the fork)


def _init_worker() -> None:
    import torch

    torch.set_num_threads(1)


def _call(fn: Callable, task):
    return fn(_CONTEXT, task)


def run_tasks(
    fn: Callable,
    tasks,
    *,
    context=None,
    jobs: int = 1,
    progress: bool = True,
    desc: str = "tasks",
    on_result: Callable | None = None,
    ordered: bool = False,
) -> list:
    """``[fn(context, task) for task in tasks]``, on ``jobs`` forked processes.

    ``fn`` must be a module-level function (workers find it by name). Results come back
    in task order; ``on_result(i, result)`` is called as each arrives (in task order
    if ``ordered``). With ``jobs <= 1`` everything runs here, with this process's
    torch thread count.
    """
    from tqdm import tqdm

    global _CONTEXT
    tasks = list(tasks)
    results = [None] * len(tasks)
    if not tasks:
        return results
    bar = tqdm(total=len(tasks), desc=desc, unit="task", disable=not progress, file=sys.stderr)
    try:
        if jobs <= 1:
            for i, task in enumerate(tasks):
                results[i] = fn(context, task)
                if on_result is not None:
                    on_result(i, results[i])
                bar.update()
            return results
        _CONTEXT = context
        done, nxt = set(), 0
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(
            min(jobs, len(tasks)), mp_context=ctx, initializer=_init_worker
        ) as pool:
            futures = {pool.submit(_call, fn, t): i for i, t in enumerate(tasks)}
            for f in as_completed(futures):
                i = futures[f]
                results[i] = f.result()
                bar.update()
                if on_result is None:
                    continue
                if not ordered:
                    on_result(i, results[i])
                    continue
                done.add(i)
                while nxt in done:
                    on_result(nxt, results[nxt])
                    nxt += 1
        return results
    finally:
        _CONTEXT = None
        bar.close()
