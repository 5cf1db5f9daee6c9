"""An OverQ-aware order of a layer's input channels, chosen offline from calibration data.

OverQ's range mode lets an outlier borrow a zero at most ``cascade`` slots to its
right, inside its own tile of R slots; an outlier in a tile's last slot is always
clipped. The order of the channels along the reduction axis is free: permuting the
input channels and the weight rows alike leaves the layer's function unchanged
(``y = W x = W[:, p] x[p]``). So a layer can be given, once, an order in which the
channels that often hold outliers sit just before channels that are zero when they
are outliers, and never in a tile's last slot.

The heuristic (deterministic; about a second for a 1152-channel layer):

1. Codes q = round(x / step) of the calibration vectors. An *event* of channel i is
   x_i above a threshold low enough that events are about four times as frequent as
   outliers (q > 2^b - 1): outliers are rare, and a channel's events predict its
   outliers on other data better than its few outliers do. The propensity of a
   channel is its event count plus its outlier count.
2. Every tile's last slot (where an outlier is always clipped) gets a *quiet*
   channel: no calibration outliers and, among those, the highest mean (a dense,
   bounded channel; a channel that is mostly zero but fires now and then is the one
   that produces outliers on new images, so it is not trusted as quiet).
3. The remaining slots of a tile hold (outlier-prone, partner) pairs on adjacent
   slots: the most outlier-prone channels, each with the free channel most often
   zero while it has an event (smoothed toward the partner's overall zero rate,
   so rare events do not overfit). Channels left over fill the odd slot before the
   tail, the most zero-prone first.
4. Encode the calibration data in both orders and keep the natural order if the new
   one handles fewer outliers there (the order never loses on calibration data).

With ``victim`` mode (docs/victim.md) an outlier with no zero in reach
prunes its right neighbour when that costs less than the clip, so the partner that
matters is not only one that is zero but one that is *small* while the head has an
event: step 3 then ranks partners by the expected cost of pruning them,
E[min(q, M)^2 | head event] (a zero costs nothing, a partner above M is not pruned
and the outlier is clipped instead: capped at M^2), smoothed like the zero rate; and
step 4 keeps the order only if it lowers the calibration MSE (with victims the error,
not the coverage, is what the order should cut).

The design was developed on EfficientNet-Lite0's projection inputs (the numbers in
docs/sw_ref_claims.md); the parameters below were fixed before the final measurement
and not searched on the test crops.

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


def order_coverage(acts, step, cfg: ArrayConfig, perm=None) -> tuple[int, int]:
    """(outliers, handled) when the vectors ``acts[:, perm]`` are OverQ-encoded."""
    from sw_ref import overq  # lazy: sw_ref.overq re-exports channel_order

    x, _ = to_numpy(acts)
    if perm is not None:
        x = x[:, np.asarray(perm)]
    st = overq.encode_stats(np.ascontiguousarray(x), step, cfg)
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
    x = np.maximum(x, 0.0)  # below the floor is at the floor (sw_ref.overq.codes)
    step = float(step)
    if not np.isfinite(step) or step <= 0:
        raise ValueError(f"step must be a positive finite number, got {step}")
    if not isinstance(cfg, ArrayConfig):
        raise ValueError(f"cfg must be an ArrayConfig, got {type(cfg).__name__}")
    return x, step


EVENT_RATIO = 4  # events are about this many times as frequent as outliers
SMOOTHING = 4.0  # pseudo-count pulling P(partner zero | event) toward P(partner zero)


def _stats(x: np.ndarray, step: float, cfg: ArrayConfig):
    """Per-channel statistics of the calibration vectors (see the module docstring)."""
    u = x / step
    q = np.rint(u)
    out, zero = q > cfg.act_max, q == 0
    n_out = int(out.sum())
    want = min(1.0, EVENT_RATIO * max(n_out, 1) / u.size)
    tau = min(float(np.quantile(u, 1.0 - want)), float(cfg.act_max))
    event = u > max(tau, 0.5)  # never below a nonzero code
    return out, zero, event, u.mean(axis=0)


def _match(heads: list[int], pool: list[int], event, zero, pz) -> tuple[list, list]:
    """Greedy pairs: each head (most outlier-prone first) takes its best free partner.

    ``zero`` [N, C] is what a partner is worth per vector (1 for a zero; with victims
    minus its pruning cost), ``pz`` its mean over all vectors.
    """
    if not heads or not pool:
        return [], list(pool)
    joint = event[:, heads].T.astype(np.float32) @ zero[:, pool].astype(np.float32)
    n_ev = event[:, heads].sum(axis=0).astype(np.float32)
    cond = (joint + SMOOTHING * pz[pool][None, :]) / (n_ev[:, None] + SMOOTHING)
    free = np.ones(len(pool), dtype=bool)
    pairs = []
    for a, h in enumerate(heads):
        j = int(np.argmax(np.where(free, cond[a], -np.inf)))
        free[j] = False
        pairs.append((h, pool[j]))
    return pairs, [pool[j] for j in np.flatnonzero(free)]


def _layout(x: np.ndarray, step: float, cfg: ArrayConfig) -> np.ndarray:
    out, zero, event, mean = _stats(x, step, cfg)
    channels = x.shape[1]
    lengths = tile_lengths(channels, cfg.rows)
    n_out = out.sum(axis=0)
    pz = zero.mean(axis=0)
    propensity = event.sum(axis=0) + n_out
    quiet = np.lexsort((-mean, n_out))  # fewest outliers, then the densest
    tails = quiet[: len(lengths)]
    in_tail = np.zeros(channels, dtype=bool)
    in_tail[tails] = True
    heads_per_tile = [(n - 1) // 2 for n in lengths]
    ranked = [int(c) for c in np.argsort(-propensity, kind="stable") if not in_tail[c]]
    n_heads = sum(heads_per_tile)
    worth, mean_worth = zero, pz
    if cfg.victim_enabled:  # a partner is worth minus its expected pruning cost
        worth = -np.square(np.minimum(np.rint(x / step), cfg.act_max)).astype(np.float32)
        mean_worth = worth.mean(axis=0)
    pairs, left = _match(ranked[:n_heads], ranked[n_heads:], event, worth, mean_worth)
    left.sort(key=lambda c: (-pz[c], c))
    pair_it, left_it, tail_it = iter(pairs), iter(left), iter(tails[::-1].tolist())
    perm = []
    for n, h in zip(lengths, heads_per_tile):
        slots = [c for _ in range(h) for c in next(pair_it)]
        while len(slots) < n - 1:
            slots.append(next(left_it))
        slots.append(next(tail_it))
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
    if not (np.rint(x / step) > cfg.act_max).any():
        return natural
    perm = _layout(x, step, cfg)
    if cfg.victim_enabled:  # the error is what victims cut: keep the order if it is lower
        return perm if _order_mse(x, step, cfg, perm) < _order_mse(x, step, cfg) else natural
    _, handled_natural = order_coverage(x, step, cfg)
    _, handled = order_coverage(x, step, cfg, perm)
    return perm if handled > handled_natural else natural


def _order_mse(x: np.ndarray, step: float, cfg: ArrayConfig, perm=None) -> float:
    from sw_ref import overq  # lazy, as in order_coverage

    if perm is not None:
        x = x[:, perm]
    return overq.encode_stats(np.ascontiguousarray(x), step, cfg).mse
