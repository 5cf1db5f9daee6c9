"""explore's tasks on a Dask cluster give the report the local process pool gives."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from synth.explore import report
from synth.explore.grid import Grid
from synth.explore.run import Options, explore


def _report(tmp_path, name, scheduler):
    grid = Grid(
        rows=(4,),
        act_bits=(4, 5),
        int_weight_bits=(4,),
        apot_weight_bits=(),
        overq=("none", "range-c1"),
        order=(False,),
        budgets=(4, 8),
    )
    # Own accuracy and part-index caches per run: both really compute (synthesized
    # Verilog is shared through synth/cache, keyed by its text).
    opts = Options(
        net="digits",
        n_eval=64,
        n_calib=64,
        workers=2,
        progress=False,
        acc_cache=tmp_path / name / "acc",
        index_dir=tmp_path / name / "parts",
        scheduler=scheduler,
    )
    res = explore(grid, opts)
    assert res["stats"]["accuracy_computed"] == res["stats"]["accuracy_evaluations"] == 5
    data = report.build(
        res, grid.describe(), None, asdict(res["settings"]), "cmd", accelerator=True
    )
    assert data["accelerator"]["questions"]  # the whole-accelerator answers, intervals too
    return data, sorted(p.name for p in (tmp_path / name / "acc").rglob("*.json"))


def test_local_cluster_gives_the_local_pool_report(tmp_path):
    distributed = pytest.importorskip("distributed")

    local, local_files = _report(tmp_path, "local", None)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        dask, dask_files = _report(tmp_path, "dask", cluster)
    assert json.dumps(dask, sort_keys=True) == json.dumps(local, sort_keys=True)
    assert dask_files == local_files and len(local_files) == 5  # same content keys
