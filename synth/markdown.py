"""Format the report data (``synth.report.build``) as ``area.md``.

Only formatting lives here: every number printed is a value of the data, rounded.
"""

from __future__ import annotations

__all__ = ["render", "pe_summary", "docs_block", "fmt_area", "fmt_pct"]

WRAPS = "†"


def fmt_area(value: float) -> str:
    return f"{value:.1f}"


def fmt_pct(value: float | None) -> str:
    return "—" if value is None else f"{value:+.1f}%"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines + [""]


def _acc_label(acc: str) -> str:
    return "minimal acc" if acc == "min" else f"acc {acc}"


def _bits(cell: dict) -> str:
    return f"{cell['acc_bits']}{'' if cell['overflow_free'] else WRAPS}"


def _pe_section(rows: list[dict], accs: list[str]) -> list[str]:
    header = ["PE"]
    for acc in accs:
        label = _acc_label(acc)
        header += ([f"{label}: bits"] if acc == "min" else []) + [
            f"{label}: area um²",
            f"{label}: vs baseline",
            f"{label}: depth",
        ]
    body = []
    for row in rows:
        line = [
            row["name"] + (f" (W{row['weight_bits']})" if row["weight_format"] == "apot" else "")
        ]
        for acc in accs:
            cell = row["by_acc"][acc]
            line += ([_bits(cell)] if acc == "min" else []) + [
                fmt_area(cell["area_um2"])
                + ("" if acc == "min" or cell["overflow_free"] else WRAPS),
                fmt_pct(cell.get("overhead_pct")),
                str(cell["depth"]),
            ]
        body.append(line)
    return _table(header, body)


def _pe_details(rows: list[dict], accs: list[str]) -> list[str]:
    header = ["PE", "accumulator", "area um²", "cells", "flip-flops", "sequential share", "depth"]
    body, seen = [], set()
    for row in rows:
        for acc in accs:
            cell = row["by_acc"][acc]
            if cell["label"] in seen:  # the minimal width can equal a fixed one
                continue
            seen.add(cell["label"])
            body.append(
                [
                    row["name"],
                    _bits(cell),
                    fmt_area(cell["area_um2"]),
                    str(cell["num_cells"]),
                    str(cell["flip_flops"]),
                    f"{100 * cell['sequential_share']:.1f}%",
                    str(cell["depth"]),
                ]
            )
    return _table(header, body)


def _decomposition(rows: list[dict]) -> list[str]:
    header = [
        "PE (A/W bits)",
        "accumulator bits",
        "counterpart area um²",
        "+ wider accumulator",
        "+ mux, shift, state FFs",
        "total overhead",
        "theoretical minimum of mux, shift, state FFs",
    ]
    body = []
    for r in rows:
        body.append(
            [
                f"{r['name']} (A{r['act_bits']}W{r['weight_bits']}) vs {r['counterpart']}",
                f"{r['counterpart_acc_bits']} → {r['acc_bits']}",
                fmt_area(r["counterpart_area_um2"]),
                f"{fmt_area(r['accumulator_um2'])} ({fmt_pct(r['accumulator_pct'])})",
                f"{fmt_area(r['logic_um2'])} ({fmt_pct(r['logic_pct'])})",
                f"{fmt_area(r['total_um2'])} ({fmt_pct(r['total_pct'])})",
                f"{fmt_area(r['minimum_um2'])} ({fmt_pct(r['minimum_pct'])}): {r['minimum_cells']}",
            ]
        )
    return _table(header, body)


def _same_acc(rows: list[dict]) -> list[str]:
    header = [
        "PE",
        "acc bits",
        "counterpart um²",
        "PE um²",
        "OverQ logic um²",
        "overhead",
        "theoretical minimum",
        "target",
    ]
    body = []
    for r in rows:
        target = (
            "—"
            if r["target_pct"] is None
            else (f"< {r['target_pct']:.0f}%: {'met' if r['meets_target'] else 'missed'}")
        )
        body.append(
            [
                f"{r['name']} vs {r['counterpart']}",
                str(r["acc_bits"]),
                fmt_area(r["counterpart_area_um2"]),
                fmt_area(r["area_um2"]),
                fmt_area(r["logic_um2"]),
                fmt_pct(r["overhead_pct"]),
                f"{fmt_area(r['minimum_um2'])} ({fmt_pct(r['minimum_pct'])})",
                target,
            ]
        )
    return _table(header, body)


def _sweep(rows: list[dict], accs: list[str]) -> list[str]:
    header = ["A = W bits"]
    for acc in accs:
        label = _acc_label(acc)
        header += [f"{label}: baseline", f"{label}: OverQ range", f"{label}: overhead"]
    header += ["min-acc overhead from the wider accumulator", "theoretical minimum (acc 32)"]
    body = []
    for r in rows:
        line = [str(r["bits"])]
        for acc in accs:
            c = r[acc]
            line += [
                f"{fmt_area(c['baseline_area_um2'])} ({c['baseline_acc_bits']} b)",
                f"{fmt_area(c['overq_area_um2'])} ({c['overq_acc_bits']} b)",
                fmt_pct(c["overhead_pct"]),
            ]
        last = r[accs[-1]]
        line += [fmt_pct(r["accumulator_pct"]), fmt_pct(last["minimum_pct"])]
        body.append(line)
    return _table(header, body)


def _arrays(rows: list[dict], accs: list[str]) -> list[str]:
    header = [
        "array",
        "accumulator",
        "area um²",
        "vs baseline",
        "cells",
        "flip-flops",
        "sequential share",
        "depth",
    ]
    body = []
    for row in rows:
        for acc in accs:
            c = row["by_acc"][acc]
            body.append(
                [
                    row["name"],
                    _bits(c),
                    fmt_area(c["area_um2"]),
                    fmt_pct(c.get("overhead_pct")),
                    str(c["num_cells"]),
                    str(c["flip_flops"]),
                    f"{100 * c['sequential_share']:.1f}%",
                    str(c["depth"]),
                ]
            )
    return _table(header, body)


def _findings(data: dict) -> list[str]:
    """The headline sentences, every number taken from the data."""
    out = []
    targeted = [r for r in data["same_accumulator"] if r["target_pct"] is not None]
    for r in targeted:
        out.append(
            f"- {r['name']} PE, {r['acc_bits']}-bit accumulators: {fmt_pct(r['overhead_pct'])} "
            f"over {r['counterpart']} (target < {r['target_pct']:.0f}%: "
            f"{'met' if r['meets_target'] else 'missed'}). The target allows "
            f"{fmt_area(r['budget_um2'])} um² of OverQ logic; it measures "
            f"{fmt_area(r['logic_um2'])} um², against a theoretical minimum of "
            f"{fmt_area(r['minimum_um2'])} um² ({fmt_pct(r['minimum_pct'])}), of which the "
            f"state flip-flops and the weight mux alone, without any shift, take "
            f"{fmt_area(r['fixed_um2'])} um² ({fmt_pct(r['fixed_pct'])})."
        )
    for r in data["decomposition"][:1]:
        out.append(
            f"- {r['name']} PE, minimal accumulators (A{r['act_bits']}W{r['weight_bits']}, "
            f"{r['counterpart_acc_bits']} → {r['acc_bits']} bits): {fmt_pct(r['total_pct'])} "
            f"in all, {fmt_pct(r['accumulator_pct'])} of it for the wider accumulator and "
            f"{fmt_pct(r['logic_pct'])} for the mux, shift and state flip-flops "
            f"(theoretical minimum {fmt_pct(r['minimum_pct'])})."
        )
    return out + [""] if out else []


def pe_summary(data: dict) -> str:
    """The headline PE table alone (what ``python -m synth.area`` prints)."""
    plan = data["meta"]["plan"]
    title = f"### One PE at A{plan['act_bits']}W{plan['act_bits']}"
    legend = f"{WRAPS}: accumulator narrower than the overflow-free width (it can wrap)."
    return "\n".join([title, ""] + _pe_section(data["pe"], plan["accs"]) + [legend, ""])


def docs_block(data: dict) -> str:
    """What docs/synth.md quotes from the last report: the findings and the PE table."""
    return "\n".join(_findings(data)) + "\n" + pe_summary(data)


def render(data: dict, plot_name: str | None = "area_sweep.png") -> str:
    meta = data["meta"]
    plan = meta["plan"]
    accs = plan["accs"]
    lib = meta["library"]
    areas = ", ".join(f"{k} {v:g}" for k, v in lib["cell_areas_um2"].items())
    out = [
        "# Area report: OverQ and APoT processing elements",
        "",
        "Written by `make synth` (`python -m synth.area`); do not edit by hand. "
        "Every number is read from Yosys's output or computed from those numbers.",
        "",
        f"- Flow: {meta['yosys']}, `synth -flatten -noalumacc`, `dfflibmap`, ABC area mapping "
        f"(`strash; dch -f; amap`) against `{lib['file']}` (script `synth/flow.ys`, "
        f"sha256 {meta['script_sha256'][:12]}).",
        f"- Library: {lib['source']}; areas in um²: {areas}.",
        "- Area is the sum of the mapped cells (no wiring, no placement). Depth is the "
        "number of cells on the longest path between flip-flops and ports (Yosys `ltp` on "
        "the mapped netlist): a timing proxy, not a delay.",
        f"- A PE is one processing element of row 1 of an R = {plan['rows']} array, with "
        "its weight, activation (+ state) and partial-sum registers. "
        f"{WRAPS}: accumulator narrower than the overflow-free width (built as asked, it can wrap).",
        "",
        "## Findings",
        "",
        *_findings(data),
        f"## One PE at A{plan['act_bits']}W{plan['act_bits']}",
        "",
        "Overhead is against the baseline int PE with the same accumulator choice: its own "
        "overflow-free width (minimal acc) or the same fixed width.",
        "",
    ]
    out += _pe_section(data["pe"], accs)
    out += [
        "## Where the OverQ overhead goes (minimal accumulators)",
        "",
        "Each OverQ PE against its OverQ-free counterpart at the counterpart's own minimal "
        "accumulator. The counterpart re-synthesized at the OverQ accumulator width "
        "separates the wider accumulator from the mux, shift and state flip-flops. "
        "Percentages are of the counterpart's area. The theoretical minimum counts those "
        "additions as standalone library cells (`synth/minimum.py`); it is an estimate, "
        "not a bound: synthesis can merge the shift into the adder and land below it.",
        "",
    ]
    out += _decomposition(data["decomposition"])
    out += [
        "## Same accumulator: the OverQ logic alone",
        "",
        "Targets from issue 5 (OverQ range PE at A4W4).",
        "",
    ]
    out += _same_acc(data["same_accumulator"])
    if "pe_w5" in data:
        out += ["## One PE at A4W5 (APoT with two 2-bit terms, the paper's even split)", ""]
        out += _pe_section(data["pe_w5"], accs)
    if "sweep" in data:
        out += ["## Bit-width sweep: act_bits = weight_bits", ""]
        out += _sweep(data["sweep"], plan["sweep_accs"])
        if plot_name:
            out += [f"![OverQ range PE overhead vs bit width]({plot_name})", ""]
    if "array" in data:
        out += [
            f"## The whole {plan['rows']}x{plan['cols']} array",
            "",
            "Including the input skew and output de-skew registers and the valid pipeline. "
            "The array is flattened, so Yosys removes or merges flip-flops it can prove "
            "constant or equal to another (such as sign-extension bits of the narrow partial "
            "sums in the top rows). How many it can drop depends on the value ranges, so an "
            "array's overhead need not be its PE's: compare the flip-flop counts.",
            "",
        ]
        out += _arrays(data["array"], plan["array_accs"])
    out += ["## PE details", ""]
    out += _pe_details(data["pe"], accs)
    return "\n".join(out).rstrip() + "\n"
