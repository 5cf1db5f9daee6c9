"""How many bits an activation slot costs in memory, per scheme and stored format.

A plain array stores b bits per slot. An OverQ activation also needs its state, and
where it is stored decides how many bits that is:

- ``codes``: the layer engine as SPEC'd takes the encoder's CB-bit codes (2b with
  range, 3b with precision) and encodes them on the way into the array;
- ``state2``: the encoder sits in front of the memory (the layer engine's
  organisation: X is encoded as it arrives) and the memory holds what the array's
  ports carry, v (b bits) and f (2 bits), slot 0's state left out (always NORMAL):
  R b + 2 (R - 1) bits per tile, about b + 2;
- ``flag1``: range with cascade 1 only produces NORMAL and RANGE (a RANGE slot is
  always the zero right after its outlier, nothing is SHIFTED), so one bit names the
  state: R b + (R - 1) bits per tile, about b + 1, lossless, and the codec is wiring
  (f = flag << 1) — the layer engine stores it so;
- ``header``: a per-tile header names up to H events (an outlier placed by a range
  overwrite, or a precision pair): per event its row (ceil(log2 R) bits) and what
  it is (the distance to the zero it used, 1..c, and range or precision), plus a
  count. Slots beyond the H-th event of a tile are stored NORMAL (the outlier is
  clipped, the small value kept at b bits): the format is lossy where a tile has
  more than H events, and ``header_loss`` measures how often on real activations.

Every function here is integer arithmetic on the configuration: the counts are exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import ceil, log2

import numpy as np

__all__ = [
    "FORMATS",
    "StoredFormat",
    "bits_per_slot",
    "header_bits",
    "header_loss",
    "lossless",
    "formats_for",
]

FORMATS = ("plain", "codes", "state2", "flag1", "header1", "header2")


def _clog2(n: int) -> int:
    return 0 if n <= 1 else ceil(log2(n))


def header_bits(rows: int, events: int, cascade: int, precision: bool) -> int:
    """Bits of one tile's header naming up to ``events`` events.

    A count (0..H), then per event: the row k of the outlier or of the precision
    pair's high half (0..R-2), and its kind: for range the distance j - k to the
    zero (1..c), plus one bit range/precision when precision is on.
    """
    kinds = max(1, cascade) + (1 if precision else 0)
    per_event = _clog2(rows - 1) + _clog2(kinds)
    return _clog2(events + 1) + events * per_event


@dataclass(frozen=True)
class StoredFormat:
    """One way of storing a tile of R activation slots."""

    name: str
    value_bits: int  # b
    rows: int  # R (slots per tile)
    tile_bits: int  # bits of one stored tile

    @property
    def bits_per_slot(self) -> float:
        return self.tile_bits / self.rows


def bits_per_slot(
    fmt: str, act_bits: int, rows: int, overq: str = "none", cascade: int = 1
) -> StoredFormat:
    """The stored size of one R-slot tile in format ``fmt``.

    ``plain`` is the only format of a point without OverQ; ``flag1`` exists for range
    with cascade 1 only (no SHIFTED, no PRECISION state can occur).
    """
    b, r = act_bits, rows
    precision = "precision" in overq
    if fmt == "plain":
        return StoredFormat(fmt, b, r, b * r)
    if overq == "none":
        raise ValueError(f"format {fmt!r} stores OverQ states; this point has none")
    if fmt == "codes":
        return StoredFormat(fmt, b, r, (3 if precision else 2) * b * r)
    # Slot 0 is always NORMAL (row 0 has no row above): its state is not stored, as
    # in the layer engine's activation memory (R values + the states of slots 1..R-1).
    if fmt == "state2":
        return StoredFormat(fmt, b, r, b * r + 2 * (r - 1))
    if fmt == "flag1":
        if precision or cascade != 1:
            raise ValueError("flag1 holds NORMAL/RANGE only: range with cascade 1")
        return StoredFormat(fmt, b, r, b * r + (r - 1))
    if fmt.startswith("header"):
        events = int(fmt[len("header") :])
        return StoredFormat(fmt, b, r, b * r + header_bits(r, events, cascade, precision))
    raise ValueError(f"unknown stored format {fmt!r}; allowed: {', '.join(FORMATS)}")


def lossless(fmt: str, rows: int) -> bool:
    """Whether ``fmt`` can hold every encoding of a tile (a header of H >= R/2 can:
    each event takes two slots)."""
    if fmt.startswith("header"):
        return int(fmt[len("header") :]) >= rows // 2
    return True


def formats_for(overq: str, cascade: int) -> tuple[str, ...]:
    """The stored formats a point's activations can use."""
    if overq == "none":
        return ("plain",)
    out = ["codes", "state2"]
    if overq == "range" and cascade == 1:
        out.append("flag1")
    return tuple(out) + ("header1", "header2")


def header_loss(states: np.ndarray, rows: int, events: int) -> dict:
    """How many events a header of ``events`` entries drops, from encoded states.

    ``states``: [n, K] of one layer's encoded vectors (0 NORMAL, 1 SHIFTED, 2 RANGE,
    3 PRECISION), tiled along K in tiles of ``rows``. An event is a RANGE or
    PRECISION slot (one per placed outlier / precision pair); a tile keeps its first
    ``events`` events. Returns the event counts and the share of range events kept.
    """
    s = np.asarray(states)
    n, k = s.reshape(-1, s.shape[-1]).shape
    tiles = ceil(k / rows)
    pad = np.zeros((n, tiles * rows), dtype=s.dtype)
    pad[:, :k] = s.reshape(n, k)
    t = pad.reshape(n * tiles, rows)
    is_range, is_prec = t == 2, t == 3
    per_tile = (is_range | is_prec).sum(1)
    order = np.cumsum(is_range | is_prec, axis=1)  # rank of each event in its tile
    kept_range = int((is_range & (order <= events)).sum())
    all_range = int(is_range.sum())
    return {
        "tiles": int(n * tiles),
        "events": int(per_tile.sum()),
        "range_events": all_range,
        "range_kept": kept_range,
        "tiles_over": int((per_tile > events).sum()),
        "events_lost": int(np.maximum(per_tile - events, 0).sum()),
        "range_kept_share": kept_range / all_range if all_range else 1.0,
    }


HEADER_EVENTS = (1, 2)  # the header formats priced: H = 1 and 2 events per tile


def header_stats(vectors, step: float, cfg, perm=None, floor: float = 0.0) -> dict:
    """``header_loss`` for each H of ``HEADER_EVENTS`` on one layer's input vectors.

    ``vectors`` [n, K] (FP32, natural channel order; ``perm`` is the channel order
    the point uses), encoded with ``sw_ref.overq.encode`` at ``step`` as the array
    would receive them.
    """
    from sw_ref import overq

    x = np.asarray(vectors, dtype=np.float64).reshape(-1, np.shape(vectors)[-1])
    if perm is not None:
        x = x[:, np.asarray(perm)]
    if floor:
        x = np.maximum(x, floor)
    states = np.asarray(overq.encode(x, step, cfg, floor=floor).states)
    return {str(h): header_loss(states, cfg.rows, h) for h in HEADER_EVENTS}


def sum_header_stats(parts: list[dict]) -> dict:
    """Several layers' ``header_stats`` added up (shares recomputed)."""
    out: dict = {}
    for part in parts:
        for h, st in part.items():
            acc = out.setdefault(h, {k: 0 for k in st if k != "range_kept_share"})
            for k in acc:
                acc[k] += st[k]
    for st in out.values():
        st["range_kept_share"] = (
            st["range_kept"] / st["range_events"] if st["range_events"] else 1.0
        )
    return out
