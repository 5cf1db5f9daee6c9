"""A whole accelerator per point: array + encoder + state codec + memories, and energy.

Joins the array's synthesized area (``cost.price``), the stored format of its OverQ
activations (``formats``), the engine's memories (``memory``) and the dataflow
energy (``energy``) for one network. The array's energy per cycle is its area times
the 45 nm energy density of a plain A8W8 PE of the same R (``energy`` docstring).
"""

from __future__ import annotations

from hw.params import ArrayConfig

from .energy import count_network, energy_pj, mac_reference_pj
from .formats import bits_per_slot, formats_for, lossless
from .grid import Point
from .layers import network_layers
from .memory import GEMMINI_BYTES, Storage, size_memories

__all__ = [
    "MODES",
    "point_from_row",
    "pj_per_um2",
    "accelerator",
    "cost_row",
    "best_lossless_format",
]

MODES = ("sized", "budget")


def point_from_row(row: dict) -> Point:
    return Point(
        row["rows"],
        row["act_bits"],
        row["weight_bits"],
        row["weight_format"],
        row["overq"],
        row["cascade"],
        row["order"],
    )


def pj_per_um2(ref_row: dict) -> float:
    """45 nm energy per cycle per um^2: an A8W8 MAC (Horowitz) over one A8W8 PE's area."""
    p = point_from_row(ref_row)
    cfg = p.config()
    if (p.act_bits, p.weight_bits, p.weight_format, p.overq) != (8, 8, "int", "none"):
        raise ValueError("the energy reference is the plain int A8W8 array")
    pe_area = ref_row["pe_um2"] / (cfg.rows * cfg.cols)
    return mac_reference_pj(cfg.min_acc_bits) / pe_area


def accelerator(
    row: dict,
    net: str,
    fmt: str,
    density: float,
    codec_um2: float = 0.0,
    mode: str = "sized",
    budget_bytes: int = GEMMINI_BYTES,
) -> dict:
    """Area (um^2) and energy per inference (pJ) of ``row``'s accelerator on ``net``."""
    p = point_from_row(row)
    cfg: ArrayConfig = p.config()
    layers = network_layers(net)
    stored = bits_per_slot(fmt, p.act_bits, p.rows, p.overq, cfg.cascade)
    storage = Storage(cfg.rows, p.act_bits * cfg.rows, stored.tile_bits)
    mems = size_memories(
        layers, cfg.cols, storage, p.weight_bits, cfg.output_range, mode, budget_bytes
    )
    latency = cfg.latency + (1 if p.encoder else 0)
    counts = count_network(
        layers, cfg.cols, storage, p.weight_bits, cfg.output_range, latency, mems
    )
    array_logic = row["area_um2"] + codec_um2
    energy = energy_pj(
        counts, mems, density * array_logic, density * row["pe_um2"] / (cfg.rows * cfg.cols)
    )
    area = {
        "array": row["area_um2"] - row.get("encoder_um2", 0.0),
        "encoder": row.get("encoder_um2", 0.0) + codec_um2,
        "memories": mems.area_um2,
    }
    area["total"] = sum(area.values())
    return {
        "format": fmt,
        "bits_per_slot": stored.bits_per_slot,
        "lossless": lossless(fmt, p.rows),
        "mode": mode,
        "area_um2": {k: round(v, 1) for k, v in area.items()},
        "energy_pj": {k: round(v, 1) for k, v in energy.items()},
        "memories": mems.to_json(),
        "counts": counts.to_json(),
    }


def best_lossless_format(row: dict) -> str:
    """The fewest stored bits that hold every encoding: flag1 where it exists, else b+2."""
    fmts = [
        f
        for f in formats_for(row["overq"], row["cascade"])
        if lossless(f, row["rows"]) and f != "codes"
    ]
    return min(
        fmts,
        key=lambda f: (
            bits_per_slot(f, row["act_bits"], row["rows"], row["overq"], row["cascade"]).tile_bits
        ),
    )


def cost_row(row: dict, net: str, density: float, codecs: dict) -> dict:
    """Every format x mode of ``row``: {"<fmt>/<mode>": accelerator(...)}."""
    out = {}
    precision = "precision" in row["overq"]
    for fmt in formats_for(row["overq"], row["cascade"]):
        codec = codecs.get((row["rows"], fmt, row["cascade"], precision), {})
        codec_um2 = codec.get("pack_um2", 0.0) + codec.get("unpack_um2", 0.0)
        for mode in MODES:
            out[f"{fmt}/{mode}"] = accelerator(row, net, fmt, density, codec_um2, mode)
    return out
