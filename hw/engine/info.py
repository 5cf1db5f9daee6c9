"""``python -m hw.generate --engine --info [--json]``: what a user of the engine needs."""

from __future__ import annotations

from hw.engine.top import AXIS_PORTS, Engine
from hw.params import ENGINE_ERRORS, EngineConfig

__all__ = ["engine_info", "engine_info_text"]


def engine_info(cfg: EngineConfig, name: str = "top") -> dict:
    a = cfg.array
    return {
        "module": name,
        "clock": "clk",
        "reset": "rst (active high, synchronous)",
        "array_latency": a.latency,
        "pipeline_depth": cfg.pipeline_depth,
        "acc_bits": cfg.acc_bits,
        "out_bits": cfg.out_bits,
        "stored_bits_per_slot": cfg.slot_bits,
        "activation_memory": {"depth": cfg.act_depth, "width": cfg.vector_bits},
        "accumulator_memory": {"depth": cfg.max_m, "width": a.cols * cfg.acc_bits},
        "parameter_memory": {"depth": cfg.max_n_tiles, "width": a.cols * cfg.param_bits},
        "output_fifo": {"depth": cfg.fifo_depth, "width": a.cols * cfg.out_bits + 1},
        "streams": {
            port: {"tdata": width, "direction": direction}
            for (port, direction), width in zip(
                AXIS_PORTS, (cfg.cmd_bits, cfg.w_bits, cfg.x_bits, cfg.y_bits)
            )
        },
        "errors": {flag: 1 << i for i, flag in enumerate(ENGINE_ERRORS)},
        "config": cfg.describe(),
        "interface": Engine(cfg).metadata.as_json()["interface"],
    }


def engine_info_text(cfg: EngineConfig, name: str = "top") -> str:
    a = cfg.array
    lines = [
        f"module         {name} (layer engine, docs/engine.md)",
        f"array          {a.rows}x{a.cols}, latency {a.latency} cycles, double-buffered weights",
        f"limits         M <= {cfg.max_m}, K <= {cfg.max_k}, N <= {cfg.max_n} per command",
        f"accumulators   {cfg.acc_bits} bits (overflow-free for K <= {cfg.max_k})",
        f"stored slot    {cfg.slot_bits} bits per activation slot (b = {a.act_bits} + "
        f"{cfg.state_bits} state bit{'s' if cfg.state_bits > 1 else ''}; slot 0 stores no state)",
        f"act memory     {cfg.act_depth} x {cfg.vector_bits} bits "
        f"({cfg.act_depth * cfg.vector_bits} bits)",
        f"acc memory     {cfg.max_m} x {a.cols * cfg.acc_bits} bits",
        f"param memory   {cfg.max_n_tiles} x {a.cols * cfg.param_bits} bits",
        f"output FIFO    {cfg.fifo_depth} x {a.cols * cfg.out_bits + 1} bits",
        f"streams        s_axis_cmd {cfg.cmd_bits}, s_axis_w {cfg.w_bits}, "
        f"s_axis_x {cfg.x_bits}, m_axis_y {cfg.y_bits} tdata bits",
        "errors         status_error bits: "
        + ", ".join(f"{i} {flag}" for i, flag in enumerate(ENGINE_ERRORS)),
        "configuration:",
    ]
    lines += [f"  {key:<22}{value}" for key, value in cfg.describe().items()]
    return "\n".join(lines) + "\n"
