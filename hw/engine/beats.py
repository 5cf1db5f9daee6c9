"""Beat formats of the engine's four AXI4-Stream ports (docs/engine.md), as plain ints.

Every testbench (amaranth.sim, cocotb, the network run) packs and unpacks beats here,
so the formats exist once. Field 0 of a beat is in its lowest bits.

* ``s_axis_cmd``: a packet. Beat 0, the header: M [15:0], K [31:16], N [47:32],
  code_max [62:48], raw [63]. Unless raw, N more beats follow, one per output column
  n = 0..N-1: bias [31:0] (two's complement), mult [47:32], shift [53:48].
  ``tlast`` marks the packet's last beat (the engine uses it only to skip the rest of
  a refused packet).
* ``s_axis_w``: one weight row per beat, column c's code at [c*WB +: WB]; for each N
  tile, for each K tile, rows R-1 .. 0 (the shift order of the bare array). Rows
  k >= K and columns n >= N of short tiles are sent as any value (zeros here).
* ``s_axis_x``: R codes per beat, slot k's CB-bit code at [k*CB +: CB]; K tile t of
  row m, t-major (all M rows of tile 0, then of tile 1, ...). Slots k >= K are
  ignored (the engine zero-pads them).
* ``m_axis_y``: C columns per beat, column c at [c*O +: O] (O = ``cfg.out_bits``):
  two's complement raw accumulators, or codes; for each N tile, rows m = 0..M-1;
  columns n >= N are 0; ``tlast`` on the command's last beat.
"""

from __future__ import annotations

import numpy as np

from hw.params import ENGINE_FIELD_BITS, EngineConfig

__all__ = ["command_beats", "weight_beats", "x_beats", "y_from_beats", "beat_counts"]


def _pack(fields, width: int) -> int:
    word = 0
    for i, value in enumerate(fields):
        word |= (int(value) & ((1 << width) - 1)) << (i * width)
    return word


def header(m: int, k: int, n: int, code_max: int = 0, raw: bool = False) -> int:
    F = ENGINE_FIELD_BITS
    return m | k << F | n << 2 * F | (int(code_max) & 0x7FFF) << 3 * F | int(bool(raw)) << 63


def param_beat(bias: int, mult: int, shift: int) -> int:
    return (int(bias) & 0xFFFFFFFF) | (int(mult) & 0xFFFF) << 32 | (int(shift) & 0x3F) << 48


def command_beats(m, k, n, bias=None, mult=None, shift=None, code_max=None):
    """[(tdata, tlast)] of one command; raw accumulators if ``bias`` is None."""
    if bias is None:
        return [(header(m, k, n, raw=True), 1)]
    beats = [(header(m, k, n, code_max), int(n == 0))]
    for j in range(n):
        beats.append((param_beat(bias[j], mult[j], shift[j]), int(j == n - 1)))
    return beats


def _tiles(length: int, size: int) -> int:
    return -(-length // size)


def weight_beats(w_codes, cfg: EngineConfig) -> list[int]:
    """W [K, N] as weight codes (int: signed values; apot: codes), in stream order."""
    a = cfg.array
    w = np.asarray(w_codes, dtype=np.int64)
    k, n = w.shape
    R, C = a.rows, a.cols
    padded = np.zeros((_tiles(k, R) * R, _tiles(n, C) * C), dtype=np.int64)
    padded[:k, :n] = w
    beats = []
    for nt in range(_tiles(n, C)):
        for kt in range(_tiles(k, R)):
            for row in reversed(range(R)):
                beats.append(_pack(padded[kt * R + row, nt * C : (nt + 1) * C], a.weight_bits))
    return beats


def x_beats(x_codes, cfg: EngineConfig) -> list[int]:
    """X codes [M, K] in stream order (K tile major, then row m)."""
    a = cfg.array
    x = np.asarray(x_codes, dtype=np.int64)
    m, k = x.shape
    R = a.rows
    padded = np.zeros((m, _tiles(k, R) * R), dtype=np.int64)
    padded[:, :k] = x
    return [
        _pack(padded[i, t * R : (t + 1) * R], a.code_bits)
        for t in range(_tiles(k, R))
        for i in range(m)
    ]


def beat_counts(m: int, k: int, n: int, cfg: EngineConfig) -> dict:
    a = cfg.array
    kt, nt = _tiles(k, a.rows), _tiles(n, a.cols)
    return {"x": m * kt, "w": nt * kt * a.rows, "y": m * nt}


def y_from_beats(beats, m: int, n: int, raw: bool, cfg: EngineConfig) -> np.ndarray:
    """Y [M, N] from the m_axis_y beats (tdata ints) of one command."""
    a = cfg.array
    O = cfg.out_bits
    C = a.cols
    y = np.zeros((m, _tiles(n, C) * C), dtype=np.int64)
    for index, word in enumerate(beats):
        nt, row = divmod(index, m)
        for c in range(C):
            value = (int(word) >> (c * O)) & ((1 << O) - 1)
            if raw and value >> (O - 1):
                value -= 1 << O
            y[row, nt * C + c] = value
    return y[:, :n]
