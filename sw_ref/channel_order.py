"""An OverQ-aware order of a layer's input channels, chosen offline from calibration data.

OverQ's range mode lets an outlier borrow a zero at most ``cascade`` slots to its
right, inside its own tile of R slots; an outlier in a tile's last slot is always
clipped. The order of the channels along the reduction axis is free: permuting the
input channels and the weight rows alike leaves the layer's function unchanged
(``y = W x = W[:, p] x[p]``). So a layer can be given, once, an order in which the
channels that often hold outliers sit just before channels that are zero when they
are outliers, and never in a tile's last slot.

The heuristic (deterministic, a few milliseconds to a second per layer):

1. From calibration vectors, count per channel the outliers (code > 2^b - 1) and,
   for every outlier-prone channel i and every channel j, how often j is a zero
   while i is an outlier (one matrix product of two boolean matrices).
2. Walk the outlier-prone channels from the most outliers down; give each the free
   partner that is most often zero when it is an outlier (minus the partner's own
   outliers: a partner that is an outlier itself is no help). Pairs whose partner
   would not cover anything stay single.
3. Lay the tiles out: pairs as (outlier channel, partner) on adjacent slots, spread
   over the tiles round-robin so that each tile keeps free slots; after a pair, when
   a tile has room, a filler channel with many zeros (a second chance for cascade
   >= 2); the fillers with the fewest outliers go last in each tile.
4. Encode the calibration data in both orders and keep the natural order if the new
   one handles fewer outliers there (the order never loses on calibration data).

Any non-negative activations work (post-ReLU, or x - floor for activations with a
zero point); ``step`` is the encoder's grid step and ``cfg`` gives R, b and c.
"""

from __future__ import annotations

import numpy as np

from hw.params import ArrayConfig
from sw_ref.arrays import to_numpy

__all__ = ["channel_order", "order_coverage", "tile_lengths"]


def tile_lengths(channels: int, rows: int) -> list[int]:
    """Lengths of the tiles that ``channels`` slots are cut into (the last may be short)."""
    full, rest = divmod(channels, rows)
    return [rows] * full + ([rest] if rest else [])


def _codes(acts: np.ndarray, step: float, cfg: ArrayConfig) -> tuple[np.ndarray, np.ndarray]:
    """(outlier, zero) boolean matrices [N, C] with the encoder's rounding (half to even)."""
    q = np.rint(acts / step)
    return q > cfg.act_max, q == 0


def order_coverage(acts, step, cfg: ArrayConfig, perm=None) -> tuple[int, int]:
    """(outliers, handled) when the vectors ``acts[:, perm]`` are OverQ-encoded."""
    from sw_ref import overq  # lazy: sw_ref.overq re-exports channel_order

    x, _ = to_numpy(acts)
    if perm is not None:
        x = x[:, np.asarray(perm)]
    st = overq.encode(np.ascontiguousarray(x), step, cfg).stats
    return st.outliers, st.handled


def _check(acts, step, cfg: ArrayConfig) -> tuple[np.ndarray, float]:
    x, _ = to_numpy(acts)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"acts must be [N, C] (one reduction vector per row), got {x.shape}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"acts must hold at least one vector and one channel, got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise ValueError("acts contain NaN or inf")
    if x.min() < 0:
        raise ValueError(f"acts must be >= 0 (post-ReLU, or x - floor), found {x.min()}")
    step = float(step)
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"step must be a positive finite number, got {step}")
    if not isinstance(cfg, ArrayConfig):
        raise ValueError(f"cfg must be an ArrayConfig, got {type(cfg).__name__}")
    return x, step


def _pairs(out: np.ndarray, zero: np.ndarray) -> tuple[list[tuple[int, int]], np.ndarray]:
    """Greedy (outlier channel, partner) pairs and the per-channel outlier counts."""
    n_out = out.sum(axis=0)
    prone = [int(i) for i in np.argsort(-n_out, kind="stable") if n_out[i] > 0]
    if not prone:
        return [], n_out
    # joint[a, j] = how often channel j is a zero while channel prone[a] is an outlier
    joint = out[:, prone].T.astype(np.float32) @ zero.astype(np.float32)
    score = joint - n_out[None, :].astype(np.float32)
    free = np.ones(out.shape[1], dtype=bool)
    pairs = []
    for a, i in enumerate(prone):
        if not free[i]:
            continue
        free[i] = False
        s = np.where(free, score[a], -np.inf)
        j = int(np.argmax(s))
        if free[j] and joint[a, j] > 0 and s[j] > 0:
            free[j] = False
            pairs.append((i, j))
        else:
            free[i] = True  # no useful partner: a filler like any other channel
    return pairs, n_out


def _layout(channels: int, rows: int, pairs, n_out: np.ndarray, zero_rate: np.ndarray):
    """Place pairs and fillers into tiles; returns the permutation."""
    lengths = tile_lengths(channels, rows)
    capacity = [n // 2 for n in lengths]
    per_tile: list[list[tuple[int, int]]] = [[] for _ in lengths]
    t = 0
    for p in pairs:  # round-robin over tiles with room left, strongest pairs first
        for _ in range(len(lengths)):
            if len(per_tile[t]) < capacity[t]:
                break
            t = (t + 1) % len(lengths)
        else:
            break  # every tile is full of pairs
        per_tile[t].append(p)
        t = (t + 1) % len(lengths)
    placed = {c for tile in per_tile for p in tile for c in p}
    rest = [c for c in range(channels) if c not in placed]
    # Fillers: the most zero-prone first (they back up a pair at cascade >= 2); the
    # ones with the fewest outliers are kept for the tiles' last slots.
    rest.sort(key=lambda c: (n_out[c], -zero_rate[c], c))
    n_last = sum(1 for n, tile in zip(lengths, per_tile) if 2 * len(tile) < n)
    last_pool, backup = rest[:n_last], rest[n_last:]
    backup.sort(key=lambda c: (-zero_rate[c] + n_out[c], c))
    backup_iter = iter(backup)
    last_iter = iter(last_pool)
    perm = []
    for n, tile in zip(lengths, per_tile):
        spare = n - 2 * len(tile)
        slots = []
        reserve_last = spare > 0
        free_mid = spare - (1 if reserve_last else 0)
        for i, j in tile:
            slots += [i, j]
            if free_mid > 0:
                slots.append(next(backup_iter))
                free_mid -= 1
        while free_mid > 0:
            slots.append(next(backup_iter))
            free_mid -= 1
        if reserve_last:
            slots.append(next(last_iter))
        perm += slots
    return np.asarray(perm, dtype=np.int64)


def channel_order(acts, step, cfg: ArrayConfig) -> np.ndarray:
    """A permutation of the C channels of calibration activations ``acts`` [N, C].

    The array receives ``x[perm]`` cut into tiles of ``cfg.rows``; permute the layer's
    weight rows (its input channels) by the same ``perm``. Returns an int64 array; the
    natural order ``arange(C)`` when no reordering handles more calibration outliers
    (for instance without the range mode, or with no outliers at this step).
    """
    x, step = _check(acts, step, cfg)
    channels = x.shape[1]
    natural = np.arange(channels, dtype=np.int64)
    if not cfg.range_enabled or channels < 2:
        return natural
    out, zero = _codes(x, step, cfg)
    if not out.any():
        return natural
    pairs, n_out = _pairs(out, zero)
    perm = _layout(channels, cfg.rows, pairs, n_out, zero.mean(axis=0))
    _, handled_natural = order_coverage(x, step, cfg)
    _, handled = order_coverage(x, step, cfg, perm)
    return perm if handled > handled_natural else natural
