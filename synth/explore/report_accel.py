"""The report's whole-accelerator part: stored bits, memories, energy, the questions.

``build(rows, per_input, net)`` adds ``row["cost"]`` to every row and returns the
section's data (JSON); ``render`` its Markdown; ``plot_fronts`` the Pareto plots
(one panel per cost and R) and ``plot_area`` the stacked area bars.
"""

from __future__ import annotations

from pathlib import Path

from . import energy, memory
from .answers import COSTS, attach_costs, candidates, fronts, questions
from .formats import HEADER_EVENTS

__all__ = ["build", "render", "plot_fronts", "plot_area"]


def _constants() -> dict:
    return {
        "sram_um2_per_bit": round(memory.SRAM_UM2_PER_BIT, 4),
        "sram_pj_per_64bit": {f"{c // 1024} KiB": e for c, e in memory.SRAM_POINTS},
        "dram_pj_per_bit": energy.DRAM_PJ_PER_BIT,
        "mult8_pj": energy.MULT8_PJ,
        "add8_pj": energy.ADD8_PJ,
        "add32_pj": energy.ADD32_PJ,
        "budget_bytes": memory.GEMMINI_BYTES,
    }


def _header_table(rows: list[dict], headers: dict) -> list[dict]:
    """Per R, OverQ mode and order at A4: the header formats' measured coverage."""
    out, seen = [], set()
    for r in rows:
        measured = headers.get((r["rows"], r["label"]))
        if r["act_bits"] != 4 or r["overq"] == "none" or measured is None:
            continue
        key = (r["rows"], r["overq_label"], r["order"])
        if key in seen:
            continue
        seen.add(key)
        entry = {"rows": r["rows"], "overq": r["overq_label"], "order": r["order"]}
        for h in HEADER_EVENTS:
            st = measured[str(h)]
            fmt = r["cost"][f"header{h}/sized"]
            entry[f"header{h}"] = {
                "bits_per_slot": fmt["bits_per_slot"],
                "range_kept_share": st["range_kept_share"],
                "tiles_over_share": st["tiles_over"] / st["tiles"],
                "range_events": st["range_events"],
            }
        out.append(entry)
    return sorted(out, key=lambda e: (e["rows"], e["overq"], e["order"]))


def build(rows: list[dict], per_input: dict, headers: dict, net: str, metric: str) -> dict | None:
    """The section's data, or None when the grid lacks the A8W8 energy reference."""
    sizes = {r["rows"] for r in rows}
    refs = {
        r["rows"]
        for r in rows
        if r["act_bits"] == 8
        and r["weight_bits"] == 8
        and r["weight_format"] == "int"
        and r["overq"] == "none"
    }
    if not sizes <= refs:
        return None
    codecs = attach_costs(rows, net)
    return {
        "constants": _constants(),
        "metric": metric,
        "codecs_um2": codecs,
        "questions": questions(rows, per_input, metric),
        "fronts": fronts(rows),
        "headers": _header_table(rows, headers),
    }


# --- Markdown --------------------------------------------------------------------------


def _pct(v) -> str:
    return f"{100 * v:.2f}"


def _iv(iv) -> str:
    if iv is None:
        return ""
    return f"{100 * iv['diff']:+.2f} [{100 * iv['low']:+.2f}, {100 * iv['high']:+.2f}]"


def _cost(v, cost) -> str:
    return f"{v / 1e6:,.2f} uJ" if cost.startswith("energy") else f"{v:,.0f}"


def render(acc: dict, rows: list[dict], stem: str) -> list[str]:
    c = acc["constants"]
    metric = acc["metric"]
    out = [
        "## A4 + OverQ or plain A5 in a whole accelerator?",
        "",
        "The array with the layer engine's memories (docs/cost-model.md): an "
        "activation memory for the largest layer's input and output in their stored "
        "format, a double-buffered weight tile, one N tile of accumulators (sized for the "
        f"network at batch 1), or a fixed {c['budget_bytes'] // 1024} KiB SRAM with the "
        "rest in DRAM. SRAM "
        f"{c['sram_um2_per_bit']} um²/bit (Intel 45 nm, Mistry et al. IEDM 2007), "
        "64-bit access "
        + ", ".join(f"{k} {v:g} pJ" for k, v in c["sram_pj_per_64bit"].items())
        + f" (Horowitz ISSCC 2014), DRAM {c['dram_pj_per_bit']:g} pJ/bit (Han et al. 2015); "
        f"MACs from the synthesized array's area at the density of an A8W8 PE "
        f"({c['mult8_pj']} pJ multiply + {c['add8_pj']}-{c['add32_pj']} pJ add, Horowitz).",
        "",
        f"Each answer compares A5 with the most faithful A4 + OverQ configuration (in its "
        f"best lossless stored format) that costs no more; the difference in {metric} "
        "(percentage points, A4 + OverQ - A5) with its paired bootstrap 95 % interval "
        'over the evaluation inputs; "within noise" where it contains 0.',
        "",
        f"![Pareto fronts per cost]({stem}_cost.png)",
        "",
        f"![where the area goes]({stem}_area.png)",
        "",
    ]
    for cost, name in COSTS.items():
        qs = [q for q in acc["questions"] if q["cost"] == cost]
        if not qs:
            continue
        out += [
            f"### At equal {name}",
            "",
            "| R | weights | A5 cost | A5 | best A4 + OverQ, same weights | format | cost "
            "| fidelity | difference [95 % CI] | answer | best A4 + OverQ, any weights | "
            "format | cost | fidelity | difference [95 % CI] | answer |",
            "|---:|---|---:|---:|---|---|---:|---:|---|---|---|---|---:|---:|---|---|",
        ]
        for q in qs:
            cells = [
                str(q["rows"]),
                q["weights"],
                _cost(q["a5"][cost], cost),
                _pct(q["a5"]["fidelity"]),
            ]
            for scope in ("same", "any"):
                b = q[scope]
                if b is None:
                    cells += ["none fits", "", "", "", "", q[f"{scope}_answer"]]
                else:
                    cells += [
                        b["label"],
                        b["format"],
                        _cost(b[cost], cost),
                        _pct(b["fidelity"]),
                        _iv(q[f"{scope}_interval"]),
                        q[f"{scope}_answer"],
                    ]
            out.append("| " + " | ".join(cells) + " |")
        out.append("")

    out += [
        "### Stored bits per activation slot",
        "",
        "Per R-slot tile: plain Ab stores R b bits. An OverQ tile as the encoder's "
        "input codes (`codes`, SPEC 11's command input): R 2b with range, R 3b with "
        "precision; as the array's ports carry it, slot 0's state left out (`state2`, "
        "the layer engine's activation memory): R b + 2 (R - 1); range with cascade 1 "
        "(`flag1`, only NORMAL/RANGE occur): R b + (R - 1); a per-tile header of H "
        "events (`headerH`): R b + the header, lossy where a tile has more than H "
        "events (below: the share of range-placed outliers it keeps and of tiles it "
        "overflows, measured on the evaluation's activations of the encoded layers).",
        "",
        "| R | OverQ at A4 | order | header1 bits/slot | keeps | tiles over | "
        "header2 bits/slot | keeps | tiles over |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for h in acc["headers"]:
        cells = [str(h["rows"]), h["overq"], "yes" if h["order"] else ""]
        for k in ("header1", "header2"):
            e = h[k]
            cells += [
                f"{e['bits_per_slot']:.3f}",
                f"{100 * e['range_kept_share']:.2f}%",
                f"{100 * e['tiles_over_share']:.3f}%",
            ]
        out.append("| " + " | ".join(cells) + " |")
    out += [
        "",
        "State codecs synthesized (pack + unpack, um²): "
        + ", ".join(
            f"{k} {v['pack_um2'] + v['unpack_um2']:.1f}" for k, v in acc["codecs_um2"].items()
        )
        + ".",
        "",
    ]

    out += [
        "### Memories and energy of the A4 / A5 points",
        "",
        "| configuration | format | bits/slot (OverQ tensors) | activation KiB | "
        "accumulator KiB | accelerator um² | array | memories | energy uJ | array | "
        "act SRAM | acc SRAM | weight SRAM | DRAM | energy uJ at 256 KiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["act_bits"] not in (4, 5) or (r["overq"] != "none" and r["act_bits"] == 5):
            continue
        for cand in candidates(r):
            s = r["cost"][f"{cand['format']}/sized"]
            e, a, m = s["energy_pj"], s["area_um2"], s["memories"]
            out.append(
                "| "
                + " | ".join(
                    [
                        f"R{r['rows']} " + r["label"].split(" ", 1)[1],
                        cand["format"],
                        f"{s['bits_per_slot']:g}",
                        f"{m['activation_bits'] / 8192:,.0f}",
                        f"{m['accumulator_bits'] / 8192:,.0f}",
                        f"{a['total']:,.0f}",
                        f"{a['array'] + a['encoder']:,.0f}",
                        f"{a['memories']:,.0f}",
                        f"{e['total'] / 1e6:.3f}",
                        f"{e['array'] / 1e6:.3f}",
                        f"{e['activation_sram'] / 1e6:.3f}",
                        f"{e['accumulator_sram'] / 1e6:.3f}",
                        f"{e['weight_sram'] / 1e6:.3f}",
                        f"{e['dram'] / 1e6:.3f}",
                        f"{r['cost'][cand['format'] + '/budget']['energy_pj']['total'] / 1e6:.3f}",
                    ]
                )
                + " |"
            )
    out.append("")
    return out


# --- plots -----------------------------------------------------------------------------


def plot_fronts(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["points"]
    sizes = sorted({r["rows"] for r in rows})
    fig, axes = plt.subplots(
        len(sizes), len(COSTS), figsize=(4.2 * len(COSTS), 3.6 * len(sizes)), squeeze=False
    )
    for i, r in enumerate(sizes):
        cands = [c for x in rows if x["rows"] == r for c in candidates(x)]
        for j, cost in enumerate(COSTS):
            ax = axes[i][j]
            scale = 1e6 if cost.startswith("energy") else 1e3
            for c in cands:
                x = c["row"]
                color = (
                    "0.5"
                    if x["overq"] == "none"
                    else {"codes": "#9ecae1", "state2": "#4292c6", "flag1": "#08519c"}[c["format"]]
                )
                marker = "s" if x["act_bits"] == 5 else ("o" if x["act_bits"] == 4 else ".")
                ax.scatter(
                    c[cost] / scale, 100 * x["fidelity"], s=14, c=color, marker=marker, alpha=0.8
                )
            front_labels = set(data["accelerator"]["fronts"][f"{cost}/{r}"])
            front = sorted(
                (c for c in cands if f"{c['row']['label']} [{c['format']}]" in front_labels),
                key=lambda c: c[cost],
            )
            ax.step(
                [c[cost] / scale for c in front],
                [100 * c["row"]["fidelity"] for c in front],
                where="post",
                color="crimson",
                lw=1.1,
            )
            ax.set_title(f"R = {r}: {cost.replace('_', ' ')}", fontsize=9)
            ax.set_xlabel("uJ" if cost.startswith("energy") else "1000 um²", fontsize=8)
            ax.grid(alpha=0.3)
        axes[i][0].set_ylabel(f"{data['meta']['fidelity']} (%)", fontsize=8)
    handles = [
        plt.Line2D([], [], ls="", marker="o", color=c, label=k)
        for k, c in (
            ("plain", "0.5"),
            ("OverQ codes (2b/3b)", "#9ecae1"),
            ("OverQ b+2", "#4292c6"),
            ("OverQ b+1 (c=1)", "#08519c"),
        )
    ]
    handles += [
        plt.Line2D([], [], ls="", marker="s", color="k", label="A5"),
        plt.Line2D([], [], ls="", marker="o", color="k", label="A4"),
        plt.Line2D([], [], color="crimson", label="Pareto front"),
    ]
    finish_figure(
        fig, axes, handles, f"{data['meta']['net']}: fidelity against four costs", path, dpi=100
    )


def finish_figure(fig, axes, handles, title: str, path: Path, dpi: int) -> None:
    """Legend in the last panel, title, saved without a software tag (reproducible)."""
    import matplotlib.pyplot as plt

    axes[0][-1].legend(handles=handles, fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, metadata={"Software": None})
    plt.close(fig)


def plot_area(data: dict, path: Path) -> None:
    """Stacked area (array / encoder + codec / memories) of the A4 and A5 points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = []
    for r in data["points"]:
        if r["act_bits"] not in (4, 5) or (
            r["overq"] != "none" and (r["act_bits"] == 5 or not r["order"])
        ):
            continue
        for c in candidates(r):
            if c["format"] == "codes":
                continue
            a = r["cost"][f"{c['format']}/sized"]["area_um2"]
            bars.append(
                (
                    f"R{r['rows']} "
                    + r["label"].split(" ", 1)[1]
                    + ("" if c["format"] == "plain" else f" [{c['format']}]"),
                    a,
                )
            )
    if not bars:
        return
    fig, axes = plt.subplots(1, 2, figsize=(max(8, 0.5 * len(bars)), 5.2))
    xs = list(range(len(bars)))
    # Left: the whole accelerator; right: the logic alone (invisible on the left).
    for ax, parts, unit, scale in (
        (axes[0], ("array", "encoder", "memories"), "mm²", 1e6),
        (axes[1], ("array", "encoder"), "1000 um²", 1e3),
    ):
        bottom = [0.0] * len(bars)
        for part in parts:
            color = {"array": "#4292c6", "encoder": "#e6550d", "memories": "0.6"}[part]
            vals = [a[part] / scale for _, a in bars]
            ax.bar(
                xs,
                vals,
                bottom=bottom,
                color=color,
                label=part if part != "encoder" else "encoder + codec",
            )
            bottom = [b + v for b, v in zip(bottom, vals)]
        ax.set_xticks(xs, [name for name, _ in bars], rotation=90, fontsize=6)
        ax.set_ylabel(f"area ({unit}, 45 nm)")
        ax.legend(fontsize=7)
    axes[0].set_title("array + encoder + memories (sized for the network)", fontsize=9)
    axes[1].set_title("the logic alone", fontsize=9)
    fig.suptitle(f"{data['meta']['net']}: where the area goes")
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
