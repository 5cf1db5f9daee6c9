"""Does A4 + OverQ beat plain A5 at equal cost? For four costs, with bootstrap intervals.

The costs: the array's area (the question explore always asked), the whole
accelerator's area (array + encoder + state codec + memories sized for the network),
and the energy of one inference with memories sized for the network or with
Gemmini's fixed 256 KiB (``accelerator``). An OverQ point is priced in each lossless
stored format it can use (``codes``, ``state2``, ``flag1``) and competes in each;
the per-tile header formats are lossy and are reported apart, with their measured
coverage.

For each array size and weight choice: the plain A5 point, and the most faithful
A4 + OverQ candidate whose cost is at most A5's (same weights; then any weights of
the grid). The fidelity difference (candidate - A5) comes with the paired
bootstrap 95 % interval over the evaluation inputs (``sw_ref.bootstrap``, on the
per-input agreement indicator or cosine); the answer is "A4 + OverQ" or "A5" only
where the interval excludes 0, else "within noise"; "A5" too where no A4 + OverQ
candidate fits in A5's cost.
"""

from __future__ import annotations

from sw_ref.bootstrap import WITHIN_NOISE, paired_interval

from .accelerator import cost_row, pj_per_um2
from .codec import price_codecs
from .formats import formats_for
from .front import pareto_front, score

__all__ = ["COSTS", "attach_costs", "questions", "LOSSLESS"]

LOSSLESS = ("plain", "codes", "state2", "flag1")
# name -> (what the report calls it, how to read it from a candidate)
COSTS = {
    "array": "array area um²",
    "accelerator": "accelerator area um² (memories sized for the network)",
    "energy": "energy per inference pJ (memories sized for the network)",
    "energy_budget": "energy per inference pJ (256 KiB on-chip SRAM, the rest DRAM)",
}


def _codec_specs(rows: list[dict]) -> list:
    specs = []
    for r in rows:
        if r["overq"] == "none":
            continue
        for fmt in formats_for(r["overq"], r["cascade"]):
            if fmt in ("flag1",) or fmt.startswith("header"):
                specs.append((r["rows"], fmt, r["cascade"], "precision" in r["overq"]))
    return specs


def attach_costs(rows: list[dict], net: str, synth_cache=None) -> dict:
    """``row["cost"]`` for every row ({"fmt/mode": accelerator}); returns the codecs."""
    codecs = price_codecs(_codec_specs(rows), cache_dir=synth_cache)
    refs = {
        r["rows"]: r
        for r in rows
        if r["act_bits"] == 8
        and r["weight_bits"] == 8
        and r["weight_format"] == "int"
        and r["overq"] == "none"
    }
    for r in rows:
        r["cost"] = cost_row(r, net, pj_per_um2(refs[r["rows"]]), codecs)
    return {
        f"R{k[0]} {k[1]} c={k[2]}" + (" +precision" if k[3] else ""): v for k, v in codecs.items()
    }


def candidates(row: dict, lossless_only: bool = True) -> list[dict]:
    """One entry per stored format of ``row``: its four costs."""
    out = []
    fmts = sorted({k.split("/")[0] for k in row["cost"]})
    for fmt in fmts:
        if lossless_only and fmt not in LOSSLESS:
            continue
        sized, budget = row["cost"][f"{fmt}/sized"], row["cost"][f"{fmt}/budget"]
        out.append(
            {
                "row": row,
                "format": fmt,
                "bits_per_slot": sized["bits_per_slot"],
                "array": row["area_um2"]
                + sized["area_um2"]["encoder"]
                - row.get("encoder_um2", 0.0),
                "accelerator": sized["area_um2"]["total"],
                "energy": sized["energy_pj"]["total"],
                "energy_budget": budget["energy_pj"]["total"],
            }
        )
    return out


def _metric(per_input: dict | None, workload_metric: str):
    if per_input is None:
        return None
    return per_input.get(workload_metric)


def _slim(c: dict | None) -> dict | None:
    if c is None:
        return None
    r = c["row"]
    out = {
        "label": r["label"],
        "format": c["format"],
        "bits_per_slot": c["bits_per_slot"],
        "fidelity": r["fidelity"],
    }
    out.update({k: round(c[k], 1) for k in COSTS})
    if "kl" in r:
        out["kl"] = r["kl"]
    return out


def questions(rows: list[dict], per_input: dict, metric: str) -> list[dict]:
    """Per R, weights and cost: A5 against the best A4 + OverQ that costs no more."""
    out = []
    for r in sorted({x["rows"] for x in rows}):
        at = [x for x in rows if x["rows"] == r]
        oq_all = [
            c for x in at if x["act_bits"] == 4 and x["overq"] != "none" for c in candidates(x)
        ]
        for fmt, wb in sorted({(x["weight_format"], x["weight_bits"]) for x in at}):
            a5 = next(
                (
                    x
                    for x in at
                    if x["act_bits"] == 5
                    and x["overq"] == "none"
                    and x["weight_format"] == fmt
                    and x["weight_bits"] == wb
                ),
                None,
            )
            same = [
                c
                for c in oq_all
                if c["row"]["weight_format"] == fmt and c["row"]["weight_bits"] == wb
            ]
            if a5 is None or not same:
                continue
            base = candidates(a5)[0]
            for cost in COSTS:
                entry = {
                    "rows": r,
                    "weights": f"W{wb}" + (" APoT" if fmt == "apot" else ""),
                    "cost": cost,
                    "a5": _slim(base),
                }
                for scope, pool in (("same", same), ("any", oq_all)):
                    fits = [c for c in pool if c[cost] <= base[cost]]
                    # most faithful; then the cheapest; then the fewest stored bits
                    best = max(
                        fits,
                        key=lambda c: (score(c["row"]), -c[cost], -c["bits_per_slot"]),
                        default=None,
                    )
                    entry[scope] = _slim(best)
                    entry[f"{scope}_interval"] = None
                    if best is None:
                        entry[f"{scope}_answer"] = "A5 (no A4 + OverQ fits)"
                        continue
                    a = _metric(per_input.get((r, best["row"]["label"])), metric)
                    b = _metric(per_input.get((r, a5["label"])), metric)
                    if a is None or b is None:
                        entry[f"{scope}_answer"] = "no per-input metric"
                        continue
                    iv = paired_interval(a, b)
                    entry[f"{scope}_interval"] = iv.to_dict()
                    entry[f"{scope}_answer"] = {1: "A4 + OverQ", -1: "A5", 0: WITHIN_NOISE}[
                        iv.sign()
                    ]
                out.append(entry)
    return out


def fronts(rows: list[dict]) -> dict:
    """Per cost and R: the Pareto front over every lossless candidate (labels)."""
    out = {}
    for cost in COSTS:
        for r in sorted({x["rows"] for x in rows}):
            cands = [c for x in rows if x["rows"] == r for c in candidates(x)]
            pts = [{**c["row"], "area_um2": c[cost], "_fmt": c["format"]} for c in cands]
            out[f"{cost}/{r}"] = [f"{p['label']} [{p['_fmt']}]" for p in pareto_front(pts)]
    return out
