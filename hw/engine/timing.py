"""``python -m hw.engine.timing``: the engine's timing diagram, drawn from a real VCD.

Runs one small command (4 x 4 array; M=6, K=8, N=6: two K tiles, two N tiles) in
amaranth.sim with a VCD trace and a sink that holds ``m_axis_y_tready`` low in random
cycles, reads the trace back and draws the ports and the array's internal strobes
(weight shift, swap, vector, result) cycle by cycle with matplotlib. It also prints
the command's cycle count and utilisation. Nothing in the picture is drawn by hand.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from hw.engine.simulate import Command, simulate
from hw.params import ArrayConfig, EngineConfig
from sw_ref import engine

__all__ = ["read_vcd", "main"]

# (label, VCD signal name) from top to bottom
TRACES = (
    ("s_axis_cmd_tvalid", "s_axis_cmd_tvalid"),
    ("s_axis_cmd_tready", "s_axis_cmd_tready"),
    ("s_axis_w_tvalid", "s_axis_w_tvalid"),
    ("s_axis_w_tready", "s_axis_w_tready"),
    ("w_shift (shadow)", "w_shift"),
    ("s_axis_x_tvalid", "s_axis_x_tvalid"),
    ("s_axis_x_tready", "s_axis_x_tready"),
    ("x_written", "x_written"),
    ("a_valid (array in)", "a_valid"),
    ("w_swap", "a_swap"),
    ("issue_n_tile", "issue_n_tile"),
    ("y_valid (array out)", "y_valid"),
    ("m_axis_y_tvalid", "m_axis_y_tvalid"),
    ("m_axis_y_tready", "m_axis_y_tready"),
    ("m_axis_y_tlast", "m_axis_y_tlast"),
)


def read_vcd(path: Path, names: set[str]) -> tuple[dict[str, list], int]:
    """{name: [(time, value)]} of the shallowest signal of each name, and the clock period."""
    ids: dict[str, tuple[int, str]] = {}
    scope: list[str] = []
    header, _, body = path.read_text().partition("$enddefinitions")
    for line in header.splitlines():
        tokens = line.split()
        if tokens[:1] == ["$scope"]:
            scope.append(tokens[2])
        elif tokens[:1] == ["$upscope"]:
            scope.pop()
        elif tokens[:1] == ["$var"] and (tokens[4] in names or tokens[4] == "clk"):
            name, code = tokens[4], tokens[3]
            if name not in ids or len(scope) < ids[name][0]:
                ids[name] = (len(scope), code)
    changes = _retime(body, {code: name for name, (_, code) in ids.items()})
    return changes, _period(changes.get("clk", []))


def _retime(body: str, by_code: dict) -> dict[str, list]:
    out: dict[str, list] = {}
    time = 0
    tokens = body.split()
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("#"):
            time = int(token[1:])
        elif token.startswith("b") and i + 1 < len(tokens):
            code = tokens[i + 1]
            if code in by_code:
                bits = token[1:].replace("x", "0").replace("z", "0")
                out.setdefault(by_code[code], []).append((time, int(bits, 2)))
            i += 1
        elif token[:1] in "01xz" and len(token) > 1 and token[1:] in by_code:
            out.setdefault(by_code[token[1:]], []).append(
                (time, int(token[0]) if token[0] in "01" else 0)
            )
        i += 1
    return out


def _period(clk: list) -> int:
    rises = [t for t, v in clk if v == 1]
    return rises[1] - rises[0] if len(rises) > 1 else 1


def sample(changes: list, period: int, cycles: int, offset: int) -> np.ndarray:
    """The value of a signal in each cycle (just before the rising edge that ends it)."""
    out = np.zeros(cycles, dtype=np.int64)
    value, j = 0, 0
    changes = sorted(changes, key=lambda c: c[0])
    for cycle in range(cycles):
        t = offset + cycle * period + period - 1
        while j < len(changes) and changes[j][0] <= t:
            value = changes[j][1]
            j += 1
        out[cycle] = value
    return out


def draw(traces: dict[str, np.ndarray], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cycles = len(next(iter(traces.values())))
    fig, ax = plt.subplots(figsize=(max(8, cycles * 0.16), 0.42 * len(traces) + 1))
    for row, (label, values) in enumerate(traces.items()):
        y0 = -row * 1.5
        if values.max() <= 1:
            xs = np.repeat(np.arange(cycles + 1), 2)[1:-1]
            ys = np.repeat(values, 2)
            ax.plot(xs, y0 + 0.8 * ys, color="tab:blue", lw=1.2)
            ax.fill_between(xs, y0, y0 + 0.8 * ys, color="tab:blue", alpha=0.15)
        else:  # a counter: one box per value, labelled
            start = 0
            for cycle in range(1, cycles + 1):
                if cycle == cycles or values[cycle] != values[start]:
                    ax.plot(
                        [start, cycle, cycle, start, start],
                        [y0, y0, y0 + 0.8, y0 + 0.8, y0],
                        color="tab:gray",
                        lw=0.8,
                    )
                    if cycle - start >= 2:
                        ax.text(
                            (start + cycle) / 2,
                            y0 + 0.4,
                            str(values[start]),
                            ha="center",
                            va="center",
                            fontsize=6,
                        )
                    start = cycle
        ax.text(-1, y0 + 0.4, label, ha="right", va="center", fontsize=8)
    ax.set_xlim(-0.5, cycles + 0.5)
    ax.set_yticks([])
    ax.set_xlabel("clock cycle (value just before the rising edge that ends it)")
    ax.set_title(title, fontsize=9)
    for side in ("left", "right", "top"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=130)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m hw.engine.timing", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--out", default="docs/engine_timing.png")
    p.add_argument("--seed", type=int, default=2)
    args = p.parse_args(argv)
    cfg = EngineConfig(ArrayConfig(rows=4, cols=4), max_m=8, max_k=16, max_n=8)
    rng = np.random.default_rng(args.seed)
    m, k, n = 6, 8, 6
    x = rng.integers(0, 256, size=(m, k))
    w = rng.integers(-8, 8, size=(k, n))
    cmd = Command(x, w, rng.integers(-50, 50, size=n), np.full(n, 1 << 12), np.full(n, 16), 15)
    with tempfile.TemporaryDirectory() as tmp:
        vcd = Path(tmp) / "engine.vcd"
        (res,) = simulate(cfg, [cmd], seed=args.seed, ready_prob=0.7, vcd=str(vcd))
        changes, period = read_vcd(vcd, {name for _, name in TRACES})
    want = engine.run(x, w, cmd.bias, cmd.mult, cmd.shift, cmd.code_max, cfg)
    if res.y is None or res.last_beat is None or not np.array_equal(res.y, want):
        print("error: the traced command is not bit-exact", file=sys.stderr)
        return 1
    cycles = res.last_beat + 3
    traces = {label: sample(changes.get(name, []), period, cycles, 0) for label, name in TRACES}
    vectors = m * 2 * 2
    title = (
        f"4x4 engine, M={m} K={k} N={n} (2 K tiles x 2 N tiles = {vectors} vectors): "
        f"{res.cycles} cycles from the first data beat to the last output beat\n"
        f"(amaranth.sim VCD; the sink holds m_axis_y_tready low in random cycles)"
    )
    draw(traces, Path(args.out), title)
    print(
        f"wrote {args.out}: {res.cycles} cycles, {vectors} vectors, "
        f"utilisation {m * k * n / (16 * res.cycles):.1%} of R*C MACs per cycle"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
