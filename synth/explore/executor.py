"""Where explore's tasks run: a local process pool, or a Dask cluster.

``executor(scheduler, workers)`` gives an object with ``submit(fn, *args)`` and
``as_completed(futures)``: a ``ProcessPoolExecutor`` of ``workers`` processes by
default, or a ``distributed.Client`` when ``scheduler`` is a Dask scheduler address
(``tcp://host:8786``) or a ``Client`` / ``LocalCluster`` already made (the tests).

Tasks are plain functions of picklable arguments that return their results, so the
two run the same code. The caches are content-keyed files (accuracy results by the
point, the network's fingerprint and the sources' digest; synthesized parts by the
Verilog and the tools): workers on a shared filesystem (the same checkout path on
every machine) read and write the same entries, each write atomic. Results also come
back to the client, which stores any entry its own cache lacks, so a cluster without
a shared filesystem still leaves the client's cache complete.
"""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import as_completed as _local_as_completed
from contextlib import contextmanager

__all__ = ["executor", "LocalPool", "DaskPool"]


class LocalPool:
    """A process pool of ``workers`` processes (the default)."""

    kind = "local"

    def __init__(self, workers: int):
        self.pool = ProcessPoolExecutor(max_workers=workers)

    def submit(self, fn, *args):
        return self.pool.submit(fn, *args)

    @staticmethod
    def as_completed(futures):
        return _local_as_completed(futures)

    def close(self):
        self.pool.shutdown()


class DaskPool:
    """Tasks on a Dask cluster through ``distributed.Client``."""

    kind = "dask"

    def __init__(self, target):
        from distributed import Client, LocalCluster

        if isinstance(target, Client):
            self.client, self._own = target, False
        elif isinstance(target, LocalCluster):
            self.client, self._own = Client(target), True
        else:
            self.client, self._own = Client(str(target)), True

    def submit(self, fn, *args):
        # pure=False: every submission runs (a task is keyed by its own cache anyway).
        return self.client.submit(fn, *args, pure=False)

    @staticmethod
    def as_completed(futures):
        from distributed import as_completed

        return as_completed(list(futures))

    def close(self):
        if self._own:
            self.client.close()


@contextmanager
def executor(scheduler=None, workers: int = 2):
    """The pool explore submits its tasks to (see the module docstring)."""
    pool = LocalPool(workers) if scheduler is None else DaskPool(scheduler)
    try:
        yield pool
    finally:
        pool.close()
