"""The sweep plot: OverQ range PE overhead against bit width (``area_sweep.png``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["plot_sweep"]


def plot_sweep(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = data["sweep"]
    bits = [r["bits"] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for acc in data["meta"]["plan"]["sweep_accs"]:
        label = "minimal accumulators" if acc == "min" else f"{acc}-bit accumulators"
        ax.plot(bits, [r[acc]["overhead_pct"] for r in rows], "o-", label=label)
    last = data["meta"]["plan"]["sweep_accs"][-1]
    ax.plot(
        bits,
        [r[last]["minimum_pct"] for r in rows],
        "k--",
        lw=1,
        label=f"theoretical minimum, standalone cells ({last}-bit acc.)",
    )
    target = data["meta"]["targets_pct"].get(last)
    if target is not None:
        ax.axhline(
            target,
            color="tab:red",
            lw=1,
            ls="-.",
            label=f"issue-5 target at A4W4, {last}-bit acc. (< {target:g}%)",
        )
    ax.plot(
        bits,
        [r["accumulator_pct"] for r in rows],
        ":",
        color="gray",
        label="wider accumulator alone (minimal acc.)",
    )
    ax.set_xlabel("act_bits = weight_bits")
    ax.set_ylabel("area over the baseline PE (%)")
    ax.set_title("OverQ range PE vs baseline int PE (one PE, 45 nm cells)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
