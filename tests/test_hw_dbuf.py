# amaranth: UnusedElaboratable=no
"""Double-buffered weights (``cfg.double_buffer``) in Amaranth's simulator.

Each program mixes vectors, shadow shifts and swaps cycle by cycle; ``hw.simulate``
records for every vector the weights docs/top-module.md "Double-buffered weights" says it must
use (a swap makes the shadow copy, as it was before that cycle's shift, active for
the vector of that cycle on), and the whole output trace is compared with
``sw_ref.overq.golden``: values, each exactly L cycles after its vector, nothing else.
Random states put SHIFTED / RANGE / PRECISION slots, which read W[k-1], on both
sides of every swap.
"""

import numpy as np
import pytest
from test_hw_array import check, random_vector, weight_codes

from hw.params import ArrayConfig

CONFIGS = [
    ArrayConfig(rows=4, cols=3, cascade=2, double_buffer=True),
    ArrayConfig(rows=3, cols=4, overq="range,precision", cascade=1, double_buffer=True),
    ArrayConfig(rows=4, cols=2, overq="none", double_buffer=True),
    ArrayConfig(rows=3, cols=3, weight_format="apot", cascade=1, double_buffer=True),
    ArrayConfig(rows=1, cols=3, cascade=1, double_buffer=True),
    ArrayConfig(rows=4, cols=3, cascade=2, double_buffer=True, input_register=True),
    ArrayConfig(
        rows=3, cols=2, overq="none", double_buffer=True, input_register=True, product_register=True
    ),
]


def vec(cfg, rng):
    _, v, f = random_vector(cfg, rng)
    return (v, f)


def back_to_back(cfg, rng, tiles, per_tile):
    """Tile t+1's R rows are shifted while tile t streams (and in idle cycles after it
    when tile t has fewer than R vectors); the swap comes with tile t+1's first vector,
    which is also the cycle of its first shift when the tile is long enough."""
    R = cfg.rows
    codes = [weight_codes(cfg, rng) for _ in range(tiles)]
    ops = [("cycle", None, codes[0][k], False) for k in reversed(range(R))]
    for t in range(tiles):
        rows = [codes[t + 1][k] for k in reversed(range(R))] if t + 1 < tiles else []
        for i in range(per_tile):
            ops.append(("cycle", vec(cfg, rng), rows.pop(0) if rows else None, i == 0))
        while rows:
            ops.append(("cycle", None, rows.pop(0), False))
    return ops


def random_cycles(cfg, rng, count, p_vec=0.7, p_shift=0.5, p_swap=0.15, p_reset=0.0):
    """Any mix per cycle: vector, shift of a random row, swap, and rarely a reset."""
    ops = []
    for _ in range(count):
        if rng.random() < p_reset:
            ops.append(("reset", int(rng.integers(1, 3))))
            continue
        row = weight_codes(cfg, rng)[0] if rng.random() < p_shift else None
        ops.append(
            (
                "cycle",
                vec(cfg, rng) if rng.random() < p_vec else None,
                row,
                bool(rng.random() < p_swap),
            )
        )
    return ops


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.key())
def test_back_to_back_tiles_have_no_idle_cycle(cfg):
    """Long tiles (the next tile's rows shifted while streaming) and short ones (rows
    shifted in gaps): every output right, and with long tiles one output every cycle
    from the first tile to the last."""
    rng = np.random.default_rng(21)
    per_tile = cfg.rows + 2
    trace = check(cfg, back_to_back(cfg, rng, tiles=4, per_tile=per_tile))
    cycles = [c for c, _ in trace.received]
    assert len(cycles) == 4 * per_tile
    assert cycles == list(range(cycles[0], cycles[0] + len(cycles)))
    check(cfg, back_to_back(cfg, rng, tiles=3, per_tile=max(1, cfg.rows - 1)))


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: c.key())
def test_random_shifts_swaps_and_vectors(cfg):
    """Swaps with and without a vector, shifts in gaps and under vectors, swap and
    shift in one cycle (the swap takes the shadow before that shift)."""
    rng = np.random.default_rng(22)
    trace = check(cfg, random_cycles(cfg, rng, 120))
    assert len(trace.received) > 50


@pytest.mark.parametrize("cfg", CONFIGS[:3] + CONFIGS[5:6], ids=lambda c: c.key())
def test_reset_mid_tile_clears_both_copies(cfg):
    """Resets between and inside tiles with shifts and swap tokens in flight: vectors in
    flight never come out, and both weight copies are zero afterwards (the vectors
    right after a reset see zero weights until a new tile is shifted and swapped)."""
    rng = np.random.default_rng(23)
    program = back_to_back(cfg, rng, tiles=2, per_tile=cfg.rows + 1)
    program += random_cycles(cfg, rng, 30)
    program += [("reset", 1)]
    program += [("cycle", vec(cfg, rng), None, i == 0) for i in range(cfg.rows + cfg.cols)]
    program += random_cycles(cfg, rng, 80, p_reset=0.05)
    trace = check(cfg, program)
    after = [s for s in trace.sent if s.cycle > trace.resets[0]][: cfg.rows + cfg.cols]
    assert all(not s.weights.any() for s in after)


def test_a_swap_changes_the_weights_of_exactly_its_own_vector():
    """Two tiles that differ everywhere; the vectors just before and at the swap use
    different tiles in every row (a swap one cycle early or late would fail here)."""
    cfg = ArrayConfig(rows=4, cols=3, cascade=2, double_buffer=True)
    rng = np.random.default_rng(24)
    a = weight_codes(cfg, rng, "max")
    b = weight_codes(cfg, rng, "min")
    ops = [("cycle", None, a[k], False) for k in reversed(range(cfg.rows))]
    ops += [("cycle", vec(cfg, rng), None, i == 0) for i in range(3)]
    ops += [("cycle", None, b[k], False) for k in reversed(range(cfg.rows))]
    ops += [("cycle", vec(cfg, rng), None, i == 1) for i in range(4)]
    trace = check(cfg, ops)
    weights = [s.weights for s in trace.sent]
    assert all((w == weights[0]).all() for w in weights[:4])
    assert all((w == weights[-1]).all() for w in weights[4:])
    assert (weights[3] != weights[4]).all()
