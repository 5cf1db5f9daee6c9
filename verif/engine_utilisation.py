"""``python -m verif.engine_utilisation``: the engine's cycles and utilisation on every
layer of EfficientNet-Lite0 that runs on it (batch 1, 224 x 224).

The cycle count of one command with no stalls (docs/engine.md "Timing") is exact, and
``tests/test_engine_hw.py`` checks it against amaranth.sim on shapes with M < R, M > R,
short tiles, raw and requantized output; ``python -m verif.engine_sim --layer`` measures
the same number on the Verilog (117,711 cycles on ``_blocks.6._project_conv``, the model
plus the testbench's one cycle of measurement offset). From the header beat to the last
output beat:

    1 (header) + N (parameter beats; 0 if raw) + R + (T - 1) max(M, R) + M + L + 6

with T = ceil(K/R) ceil(N/C) weight tiles and 6 = memory read + 3 requantizer stages +
FIFO + the last beat; it is ``verif.utilisation.cycles_used`` (the double-buffered bare
array) plus the engine's own stages. A layer with M > max_m is split into commands of
max_m rows, one after the other (the next header is taken the cycle after the last
output beat). Utilisation = M K N / (R C cycles). Depthwise convolutions and residual
adds run on the host (they are no matrix products of this shape).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from hw.params import ArrayConfig, EngineConfig
from verif.utilisation import cycles_used

__all__ = ["command_cycles", "layer_cycles", "lite0_layers", "table", "main"]


def command_cycles(cfg: EngineConfig, m: int, k: int, n: int, raw: bool = False) -> int:
    """Cycles from the header beat to the last output beat of one command, no stalls."""
    a = cfg.array
    tiles = -(-k // a.rows) * -(-n // a.cols)
    return 1 + (0 if raw else n) + data_cycles(cfg, m, tiles)


def data_cycles(cfg: EngineConfig, m: int, tiles: int) -> int:
    """From the first W/X beat to the last output beat."""
    return cycles_used(cfg.array, m, tiles, True) + 1 + cfg.requant_latency + 2


def layer_cycles(cfg: EngineConfig, m: int, k: int, n: int) -> tuple[int, int]:
    """(cycles, commands) of a layer split into commands of at most max_m rows."""
    commands = -(-m // cfg.max_m)
    full, rest = divmod(m, cfg.max_m)
    cycles = full * command_cycles(cfg, cfg.max_m, k, n)
    if rest:
        cycles += command_cycles(cfg, rest, k, n)
    return cycles, commands


@dataclass(frozen=True)
class Layer:
    name: str
    kind: str
    m: int
    k: int
    n: int


def lite0_layers() -> list[Layer]:
    """Every Conv2d except the depthwise ones, and the classifier, with their shapes at
    224 x 224, batch 1 (read by a forward pass of the pretrained model)."""
    import torch

    from sw_ref.nets import efficientnet_lite0
    from sw_ref.nets.efficientnet import layer_kinds

    model = efficientnet_lite0()
    kinds = layer_kinds(model)
    shapes = {}

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0]
            if isinstance(module, torch.nn.Linear):
                shapes[name] = (x.shape[0], module.in_features, module.out_features)
            else:
                kh, kw = module.kernel_size
                positions = output.shape[2] * output.shape[3]
                shapes[name] = (positions, module.in_channels * kh * kw, module.out_channels)

        return record

    for name, module in model.named_modules():
        if name in kinds and kinds[name] != "depthwise":
            module.register_forward_hook(hook(name))
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    return [Layer(name, kinds[name], *shapes[name]) for name in kinds if name in shapes]


def table(cfg: EngineConfig, layers: list[Layer]) -> str:
    a = cfg.array
    lines = [
        "# Layer engine on EfficientNet-Lite0 (batch 1, 224 x 224)",
        "",
        f"Written by `python -m verif.engine_utilisation` (docs/engine.md). Engine: "
        f"{a.rows} x {a.cols} array, A{a.act_bits} W{a.weight_bits} {a.weight_format}, "
        f"overq {a.overq_text}, max_m {cfg.max_m}, max_k {cfg.max_k}, max_n {cfg.max_n}. "
        "Cycles from each command's header beat to its last output beat, no stalls "
        "(the exact cycle count, checked against amaranth.sim in tests and measured on "
        "the Verilog for `_blocks.6._project_conv`: 117,711 cycles in Verilator). "
        "Depthwise convolutions and residual adds run on the host; the stem runs as "
        "an im2col matrix (K = 27).",
        "",
        "| layer | kind | M | K | N | commands | cycles | utilisation |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    total_macs = total_cycles = 0
    pointwise = []
    for layer in layers:
        cycles, commands = layer_cycles(cfg, layer.m, layer.k, layer.n)
        macs = layer.m * layer.k * layer.n
        util = macs / (a.rows * a.cols * cycles)
        total_macs += macs
        total_cycles += cycles
        if layer.kind in ("expand", "project", "head"):
            pointwise.append(util)
        lines.append(
            f"| `{layer.name}` | {layer.kind} | {layer.m} | {layer.k} | {layer.n} "
            f"| {commands} | {cycles} | {util:.2%} |"
        )
    lines += [
        f"| **total** | | | | | | {total_cycles} | "
        f"{total_macs / (a.rows * a.cols * total_cycles):.2%} |",
        "",
        f"1 x 1 convolutions: lowest utilisation {min(pointwise):.2%} over {len(pointwise)} "
        f"layers. Total {total_macs:,} MACs in {total_cycles:,} cycles.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m verif.engine_utilisation",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--rows", type=int, default=8)
    p.add_argument("--cols", type=int, default=8)
    p.add_argument("--max-m", type=int, default=256)
    p.add_argument("--max-k", type=int, default=1280)
    p.add_argument("--max-n", type=int, default=1280)
    p.add_argument("--out", default="synth/reports/engine_utilisation.md")
    args = p.parse_args(argv)
    cfg = EngineConfig(
        ArrayConfig(rows=args.rows, cols=args.cols),
        max_m=args.max_m,
        max_k=args.max_k,
        max_n=args.max_n,
    )
    text = table(cfg, lite0_layers())
    with open(args.out, "w") as f:
        f.write(text)
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
