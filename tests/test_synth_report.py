"""The report shows exactly what the flow returns: a mini report, rebuilt and re-read."""

import json
from pathlib import Path

import pytest

from synth.area import DOCS_BEGIN, DOCS_END, write_report
from synth.batch import run_job, run_jobs
from synth.designs import BASELINE, MIN_ACC, OVERQ_RANGE, Job
from synth.flow import digest
from synth.markdown import docs_block, fmt_area, fmt_pct, render
from synth.plan import Plan
from synth.report import build, overhead_pct

MINI = Plan(
    act_bits=2,
    variants=(BASELINE, OVERQ_RANGE),
    accs=(MIN_ACC, 12),
    w5=False,
    sweep_bits=(2,),
    sweep_accs=(MIN_ACC,),
    arrays=True,
    array_accs=(MIN_ACC,),
    rows=3,
    cols=2,
)
REPORTS = Path(__file__).resolve().parents[1] / "synth" / "reports"


def _md_row(md: str, first_cell: str) -> list[str]:
    for line in md.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0] == first_cell:
            return cells
    raise AssertionError(f"no row {first_cell!r} in the report")


def test_mini_report_shows_what_the_flow_returns(tmp_path):
    """One test on purpose: the mini report costs ~10 synthesis runs, and a module
    fixture would run once per xdist worker."""
    results = run_jobs(MINI.jobs(), workers=1, cache_dir=tmp_path / "cache", progress=False)
    write_report(build(MINI, results), tmp_path)
    md = (tmp_path / "area.md").read_text()
    data = json.loads((tmp_path / "area.json").read_text())

    # The PE table against the flow run afresh (no cache).
    base = run_job(MINI.pe(BASELINE), cache_dir=None)
    oq = run_job(MINI.pe(OVERQ_RANGE), cache_dir=None)
    row = _md_row(md, "OverQ range")
    assert row[1] == str(MINI.pe(OVERQ_RANGE).cfg.acc_width)
    assert row[2] == fmt_area(oq.area)
    assert row[3] == fmt_pct(overhead_pct(oq.area, base.area))
    assert row[4] == str(oq.depth)
    assert _md_row(md, "baseline int")[2] == fmt_area(base.area)

    # Every design's JSON record is its result.
    assert set(data["designs"]) == {job.label for job in results}
    for job, res in results.items():
        rec = data["designs"][job.label]
        assert rec["area_um2"] == round(res.area, 3)
        assert (rec["cells"], rec["depth"]) == (res.cells, res.depth)
    arrays = [job for job in results if job.kind == "array"]
    assert len(arrays) == 2
    for job in arrays:  # an array is many PEs plus skew registers
        pe_ffs = results[Job("pe", job.cfg)].flip_flops
        assert data["designs"][job.label]["flip_flops"] > 3 * pe_ffs

    # The split of the minimal-accumulator overhead adds up.
    (split,) = data["decomposition"]
    assert split["accumulator_um2"] + split["logic_um2"] == pytest.approx(
        split["total_um2"], abs=2e-3
    )

    # The markdown is a function of the JSON; the plot is a PNG.
    assert render(data, "area_sweep.png") == md
    assert (tmp_path / "area_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_committed_report_matches_the_flow():
    """synth/reports/ as committed: its markdown (and the block docs/synth.md quotes)
    renders from its JSON, and one PE of it, regenerated now, synthesizes to the
    recorded numbers (a stale report, after an RTL change, fails: run `make synth`)."""
    path = REPORTS / "area.json"  # committed: a missing report fails here
    data = json.loads(path.read_text())
    assert render(data, "area_sweep.png") == (REPORTS / "area.md").read_text()
    docs = (REPORTS.parents[1] / "docs" / "synth.md").read_text()
    assert DOCS_BEGIN + "\n" + docs_block(data) + DOCS_END in docs
    job = Plan().pe(OVERQ_RANGE)
    record = data["designs"][job.label]
    verilog = job.verilog()
    assert digest(verilog, job.top) == record["digest"], (
        "the RTL changed since the committed area report: rerun make synth"
    )
    res = run_job(job, cache_dir=None)
    assert (round(res.area, 3), res.cells, res.depth) == (
        record["area_um2"],
        record["cells"],
        record["depth"],
    )
