"""Hand-worked OverQ encodings, checked against ``sw_ref.overq.encode``.

The other encoder tests compare the vectorised encoder with ``encode_reference``, a
second implementation in the same module: a misreading of the rule shared by both would
pass them. The cases below were worked out by hand from the rule in docs/overq-encoding.md "OverQ
encoding" (the interface's section on the encoding), one slot at a time, and written
down as literal numbers. Most use b = 2 (M = 3, a slot pair holds up to 15, a fine code
up to 63) and step 1, so the arithmetic can be checked on paper.

The rule with ``precision`` enabled derives q from the fine code u:
u = min(round(x 2^b / s), 2^(3b) - 1), q = round(u / 2^b), both half to even. Cases
marked ``double rounding`` give a different answer under the single rounding
q = round(x / s); the working shows both.
"""

from __future__ import annotations

import numpy as np
import pytest

from hw.params import ArrayConfig
from sw_ref.overq import encode

N, S, RG, P = 0, 1, 2, 3  # NORMAL, SHIFTED, RANGE, PRECISION, as the a_state port carries them


def cfg(rows=4, b=2, c=2, overq="range"):
    return ArrayConfig(rows=rows, act_bits=b, cascade=c, overq=overq)


# (label, configuration, step, x, expected values, expected states, double rounding?)
# The working for each case is in the comment above it.
CASES = [
    # q = round(x) half to even = [2, 0, 2, 4]. Slot 3 is an outlier (4 > 3) in the last
    # row: no zero after it, clipped to M = 3.
    (
        "ties round to even; an outlier in the last row is clipped",
        cfg(),
        1.0,
        [2.5, 0.5, 1.5, 3.5],
        [2, 0, 2, 3],
        [N, N, N, N],
        False,
    ),
    # q = [4, 0, 6, 0] (4.5 -> 4, 5.5 -> 6). Slot 0: outlier, zero at 1: v0 = 4 mod 4 = 0,
    # v1 = 4 >> 2 = 1 RANGE; resume at 2: outlier 6, zero at 3: v2 = 2, v3 = 1 RANGE.
    (
        "tied outliers, each next to a zero",
        cfg(),
        1.0,
        [4.5, 0.0, 5.5, 0.0],
        [0, 1, 2, 1],
        [N, RG, N, RG],
        False,
    ),
    # x / s = [9.5, 0, 2, 1] -> q = [10, 0, 2, 1]: v0 = 10 mod 4 = 2, v1 = 10 >> 2 = 2 RANGE.
    (
        "a tie on a step of 0.5",
        cfg(),
        0.5,
        [4.75, 0.0, 1.0, 0.5],
        [2, 2, 2, 1],
        [N, RG, N, N],
        False,
    ),
    # q = [1, 1, 9, 0]: slot 2 is an outlier, the window (2, min(2+2, 3)] = {3}
    # holds the zero in row R-1: v2 = 9 mod 4 = 1, v3 = 9 >> 2 = 2 RANGE.
    (
        "a zero at R-1 reached from R-2",
        cfg(),
        1.0,
        [1.0, 1.0, 9.0, 0.0],
        [1, 1, 1, 2],
        [N, N, N, RG],
        False,
    ),
    # q = [1, 9, 2, 0]: the outlier at 1 reaches the zero at 3 = R-1 over slot 2; q2 = 2
    # moves to slot 3 (SHIFTED), v1 = 1, v2 = 9 >> 2 = 2 RANGE.
    (
        "a zero at R-1 reached from R-3 by a cascade",
        cfg(),
        1.0,
        [1.0, 9.0, 2.0, 0.0],
        [1, 1, 2, 2],
        [N, N, RG, S],
        False,
    ),
    # Same data, c = 1: the window (1, 2] has no zero: v1 = M = 3, the rest unchanged.
    (
        "the same zero out of reach with c = 1",
        cfg(c=1),
        1.0,
        [1.0, 9.0, 2.0, 0.0],
        [1, 3, 2, 0],
        [N, N, N, N],
        False,
    ),
    # Two tiles: [1, 9, 2, 2] and the partial [0, 1]. The outlier at 1 looks at
    # (1, min(1+3, 3)] = {2, 3}: no zero there; the zero at slot 4 is in the next tile
    # and out of reach: clipped to 3.
    (
        "a window cut off at the tile end",
        cfg(c=3),
        1.0,
        [1.0, 9.0, 2.0, 2.0, 0.0, 1.0],
        [1, 3, 2, 2, 0, 1],
        [N, N, N, N, N, N],
        False,
    ),
    # A partial last tile [0, 9]: its last slot is its row R-1 for the encoder: clipped.
    (
        "an outlier at the end of a partial tile",
        cfg(),
        1.0,
        [1.0, 0.0, 1.0, 1.0, 0.0, 9.0],
        [1, 0, 1, 1, 0, 3],
        [N, N, N, N, N, N],
        False,
    ),
    # q = [9, 6, 0, 1]: the outlier at 0 wins the zero at 2 (earlier slots win); the
    # second outlier, 6, moves to slot 2 clipped to 3 (SHIFTED, never expanded).
    (
        "two outliers compete for one zero: the first wins",
        cfg(),
        1.0,
        [9.0, 6.0, 0.0, 1.0],
        [1, 2, 3, 1],
        [N, RG, S, N],
        False,
    ),
    # Same data, c = 1: slot 0 cannot reach the zero (window {1}) and is clipped to 3;
    # the outlier at 1 then takes it: v1 = 6 mod 4 = 2, v2 = 6 >> 2 = 1 RANGE.
    (
        "two outliers compete for one zero: the second wins when the first cannot reach",
        cfg(c=1),
        1.0,
        [9.0, 6.0, 0.0, 1.0],
        [3, 2, 1, 1],
        [N, N, RG, N],
        False,
    ),
    # u = round(4x) = [36, 0, 5, 0], q = round(u/4) = [9, 0, 1, 0]. Range pair at 0-1
    # (v0 = 1, v1 = 2), then q2 = 1 is followed by a zero: p = min(5, 15) = 5,
    # v2 = 5 >> 2 = 1, v3 = 5 mod 4 = 1 PRECISION.
    (
        "a RANGE pair, then a PRECISION pair",
        cfg(overq="range,precision"),
        1.0,
        [9.0, 0.0, 1.3, 0.0],
        [1, 2, 1, 1],
        [N, RG, N, P],
        False,
    ),
    (
        "a PRECISION pair, then a RANGE pair",
        cfg(overq="range,precision"),
        1.0,
        [1.3, 0.0, 9.0, 0.0],
        [1, 1, 1, 2],
        [N, P, N, RG],
        False,
    ),
    # Precision only: the outlier 9 has no range mode: clipped to 3 NORMAL.
    (
        "precision only: a PRECISION pair, an outlier clipped",
        cfg(overq="precision"),
        1.0,
        [1.3, 0.0, 9.0, 0.0],
        [1, 1, 3, 0],
        [N, P, N, N],
        False,
    ),
    # The last row has no row below to borrow: q3 = 1 stays NORMAL.
    (
        "no PRECISION pair from the last row",
        cfg(overq="range,precision"),
        1.0,
        [0.0, 0.0, 0.0, 1.3],
        [0, 0, 0, 1],
        [N, N, N, N],
        False,
    ),
    # u = min(80, 63) = 63, q = round(15.75) = 16 > 3: outlier, q' = min(16, 15) = 15:
    # v0 = 3, v1 = 3 RANGE. Then q2 = q3 = 1, no zero after slot 2: NORMAL.
    (
        "the fine code saturates, the pair saturates",
        cfg(overq="range,precision"),
        1.0,
        [20.0, 0.0, 1.0, 1.0],
        [3, 3, 1, 1],
        [N, RG, N, N],
        False,
    ),
    # b = 4, R = 8, c = 2: q = [17, 3, 0, 0, 300, 5, 0, 1]. Slot 0 reaches the zero at 2
    # over slot 1 (3 moves, SHIFTED): v0 = 17 mod 16 = 1, v1 = 1 RANGE; resume at 3
    # (the zero consumed at 2 is passed). Slot 3: 0. Slot 4: 300, zero at 6 over slot 5:
    # q' = min(300, 255) = 255: v4 = 15, v5 = 15 RANGE, v6 = 5 SHIFTED; slot 7: 1.
    (
        "b = 4: two cascades, one saturating",
        cfg(rows=8, b=4),
        1.0,
        [17.0, 3.0, 0.0, 0.0, 300.0, 5.0, 0.0, 1.0],
        [1, 1, 3, 0, 15, 15, 5, 1],
        [N, RG, S, N, N, RG, S, N],
        False,
    ),
    # --- double rounding (precision enabled): q = round(round(4x) / 4) ---------------
    # x = 1.375: u = round(5.5) = 6, q = round(1.5) = 2 (single rounding: 1). Slot 1 is
    # not a zero, so no pair: v0 = 2. Slot 1: u = 8, q = 2.
    (
        "double rounding: 1.375 becomes 2",
        cfg(overq="range,precision"),
        1.0,
        [1.375, 2.0, 1.0, 1.0],
        [2, 2, 1, 1],
        [N, N, N, N],
        True,
    ),
    # x1 = 0.625: u = round(2.5) = 2, q = round(0.5) = 0: a zero (single rounding: 1, not
    # a zero, and the outlier at 0 would be clipped to 3). Outlier 9 takes it:
    # v0 = 1, v1 = 2 RANGE. q2 = q3 = 1, no zero after slot 2.
    (
        "double rounding: 0.625 becomes a zero an outlier can use",
        cfg(overq="range,precision"),
        1.0,
        [9.0, 0.625, 1.0, 1.0],
        [1, 2, 1, 1],
        [N, RG, N, N],
        True,
    ),
    # x0 = 3.4: u = round(13.6) = 14, q = round(3.5) = 4 > 3: an outlier, zero at 1:
    # v0 = 4 mod 4 = 0, v1 = 1 RANGE. (Single rounding: q = 3, a PRECISION pair
    # p = 14: v0 = 3, v1 = 2 PRECISION.)
    (
        "double rounding: 3.4 becomes an outlier",
        cfg(overq="range,precision"),
        1.0,
        [3.4, 0.0, 1.0, 1.0],
        [0, 1, 1, 1],
        [N, RG, N, N],
        True,
    ),
    # --- victim overwrite (docs/victim.md): no zero within reach, the right
    # neighbour is pruned when q_(k+1) < q' - M, q' = min(q_k, 2^(2b) - 1); ties clip.
    # q = [9, 2, 13, 1], c = 2: slot 0 sees no zero in {1, 2}; 2 < 9 - 3: victim:
    # v0 = 9 mod 4 = 1, v1 = 9 >> 2 = 2 RANGE; resume at 2: 13, window {3} has no zero,
    # 1 < 10: victim: v2 = 1, v3 = 3 RANGE.
    (
        "victim: a victim beside a victim",
        cfg(overq="range,victim"),
        1.0,
        [9.0, 2.0, 13.0, 1.0],
        [1, 2, 1, 3],
        [N, RG, N, RG],
        False,
    ),
    # q = [14, 6, 1, 1]: the neighbour is itself an outlier, and still cheaper to prune
    # (6 < 14 - 3 = 11): v0 = 14 mod 4 = 2, v1 = 3 RANGE; the pruned 6 is never encoded.
    (
        "victim: an outlier pruned by a larger one",
        cfg(overq="range,victim"),
        1.0,
        [14.0, 6.0, 1.0, 1.0],
        [2, 3, 1, 1],
        [N, RG, N, N],
        False,
    ),
    # q = [1, 1, 1, 9]: an outlier in the last row has no neighbour: clipped to 3.
    (
        "victim: an outlier in the last slot is clipped",
        cfg(overq="range,victim"),
        1.0,
        [1.0, 1.0, 1.0, 9.0],
        [1, 1, 1, 3],
        [N, N, N, N],
        False,
    ),
    # q = [1, 1, 9, 1]: from R-2 the last slot is the victim: v2 = 1, v3 = 2 RANGE.
    (
        "victim: the last slot as the victim of R-2",
        cfg(overq="range,victim"),
        1.0,
        [1.0, 1.0, 9.0, 1.0],
        [1, 1, 1, 2],
        [N, N, N, RG],
        False,
    ),
    # Two tiles, [1, 1, 1, 1] and the partial [1, 9]: slot 1 of the partial tile is its
    # last: clipped, never a victim of the padding. Then [.., 9, 1]: a victim.
    (
        "victim: an outlier at the end of a partial tile is clipped",
        cfg(overq="range,victim"),
        1.0,
        [1.0, 1.0, 1.0, 1.0, 1.0, 9.0],
        [1, 1, 1, 1, 1, 3],
        [N, N, N, N, N, N],
        False,
    ),
    (
        "victim: a victim inside a partial tile",
        cfg(overq="range,victim"),
        1.0,
        [1.0, 1.0, 1.0, 1.0, 9.0, 1.0],
        [1, 1, 1, 1, 1, 2],
        [N, N, N, N, N, RG],
        False,
    ),
    # q = [9, 2, 0, 1], c = 1: the zero at 2 is just out of reach (window {1}); 2 < 6:
    # victim: v0 = 1, v1 = 2 RANGE; resume at 2: the zero stays 0.
    (
        "victim: a zero just out of reach",
        cfg(c=1, overq="range,victim"),
        1.0,
        [9.0, 2.0, 0.0, 1.0],
        [1, 2, 0, 1],
        [N, RG, N, N],
        False,
    ),
    # Same data, c = 2: the zero is in reach and wins over the victim: the cascade moves
    # q1 = 2 to slot 2 (SHIFTED), v0 = 1, v1 = 2 RANGE, exactly range-only's answer.
    (
        "victim: a zero within reach wins over a victim",
        cfg(overq="range,victim"),
        1.0,
        [9.0, 2.0, 0.0, 1.0],
        [1, 2, 2, 1],
        [N, RG, S, N],
        False,
    ),
    # q = [5, 2, 1, 1]: 2 == 5 - 3, a tie: clipped (v0 = 3), nothing moves.
    (
        "victim: ties q_(k+1) == q' - M clip",
        cfg(overq="range,victim"),
        1.0,
        [5.0, 2.0, 1.0, 1.0],
        [3, 2, 1, 1],
        [N, N, N, N],
        False,
    ),
    # q = [6, 2, 1, 1]: 2 < 6 - 3: victim: v0 = 6 mod 4 = 2, v1 = 1 RANGE.
    (
        "victim: one above the tie prunes",
        cfg(overq="range,victim"),
        1.0,
        [6.0, 2.0, 1.0, 1.0],
        [2, 1, 1, 1],
        [N, RG, N, N],
        False,
    ),
    # q = [9, 6, 1, 1]: 6 == 9 - 3 ties: slot 0 clipped to 3; slot 1 (6, an outlier) then
    # finds no zero in {2, 3} and prunes slot 2 (1 < 3): v1 = 2, v2 = 1 RANGE.
    (
        "victim: a tie clips, the next outlier prunes",
        cfg(overq="range,victim"),
        1.0,
        [9.0, 6.0, 1.0, 1.0],
        [3, 2, 1, 1],
        [N, N, RG, N],
        False,
    ),
    # b = 4, R = 8: q = [40, 30, 5, 5, 5, 5, 5, 5]: 30 > 40 - 15: clip (v0 = 15); 30 has
    # no zero in {2, 3}, 5 < 15: v1 = 30 mod 16 = 14, v2 = 1 RANGE.
    (
        "victim: b = 4, a clip then a victim",
        cfg(rows=8, b=4, overq="range,victim"),
        1.0,
        [40.0, 30.0] + [5.0] * 6,
        [15, 14, 1, 5, 5, 5, 5, 5],
        [N, N, RG, N, N, N, N, N],
        False,
    ),
    # precision on, c = 1: u = [36, 4, 5, 0], q = [9, 1, 1, 0]. Slot 0: no zero in {1},
    # 1 < 6: victim (v0 = 1, v1 = 2 RANGE); slot 2: 1 then a zero: PRECISION pair of
    # p = 5: v2 = 1, v3 = 1.
    (
        "victim with precision: a victim, then a PRECISION pair",
        cfg(c=1, overq="range,precision,victim"),
        1.0,
        [9.0, 1.0, 1.3, 0.0],
        [1, 2, 1, 1],
        [N, RG, N, P],
        False,
    ),
    # precision on: u = min(80, 63) = 63, q = 16, q' = min(16, 15) = 15; 1 < 12: victim:
    # v0 = 3, v1 = 3 RANGE.
    (
        "victim with precision: the fine code saturates",
        cfg(overq="range,precision,victim"),
        1.0,
        [20.0, 1.0, 1.0, 1.0],
        [3, 3, 1, 1],
        [N, RG, N, N],
        False,
    ),
    # precision on: x1 = 5.375: u = round(21.5) = 22, q = round(5.5) = 6 == 9 - 3: a tie,
    # slot 0 clipped (single rounding: q1 = 5, a victim). Slot 1 (6) prunes slot 2:
    # v1 = 2, v2 = 1 RANGE.
    (
        "victim with precision: double rounding makes a tie",
        cfg(overq="range,precision,victim"),
        1.0,
        [9.0, 5.375, 1.0, 1.0],
        [3, 2, 1, 1],
        [N, N, RG, N],
        True,
    ),
]


@pytest.mark.parametrize(
    "label, config, step, x, values, states, double", CASES, ids=[c[0] for c in CASES]
)
def test_hand_worked_case(label, config, step, x, values, states, double):
    enc = encode(np.array([x], dtype=np.float64), step, config)
    assert np.asarray(enc.values)[0].tolist() == values
    assert np.asarray(enc.states)[0].tolist() == states
    # The label is right: a double-rounding case has a slot where the two roundings
    # differ, and no other precision case has one.
    if config.precision_enabled:
        scaled = np.asarray(x) / step
        fine = np.rint(scaled * 2**config.act_bits)
        differ = np.rint(fine / 2**config.act_bits) != np.rint(scaled)
        assert bool(differ.any()) == double
    else:
        assert not double


def test_cases_cover_what_they_claim():
    """The table holds every situation named in the issue that asked for it."""
    labels = " ".join(c[0] for c in CASES)
    for words in (
        "ties",
        "R-1 reached from R-2",
        "cut off at the tile end",
        "compete for one zero",
        "RANGE pair, then a PRECISION pair",
        "double rounding",
        "victim beside a victim",
        "last slot",
        "zero just out of reach",
        "ties q_(k+1) == q' - M clip",
        "victim with precision",
    ):
        assert words in labels, words


def test_stats_of_the_competing_outliers():
    """Two outliers, one zero: both seen, one handled (the moved one is clipped)."""
    enc = encode(np.array([[9.0, 6.0, 0.0, 1.0]]), 1.0, cfg())
    assert (enc.stats.outliers, enc.stats.handled) == (2, 1)
    assert enc.stats.coverage == 0.5


def test_stats_of_a_victim_pair():
    """q = [9, 2, 13, 1]: two outliers, both placed by victims; the pruned 2 and 1 are the
    whole error: (2^2 + 1^2) / 4 slots = 1.25 step^2, all of it pruning."""
    enc = encode(np.array([[9.0, 2.0, 13.0, 1.0]]), 1.0, cfg(overq="range,victim"))
    s = enc.stats
    assert (s.outliers, s.handled, s.victims, s.coverage) == (2, 2, 2, 1.0)
    assert s.mse == s.victim_mse == 1.25
    # range only clips both: (9 - 3)^2 + (13 - 3)^2 = 136 over 4 slots, nothing pruned
    plain = encode(np.array([[9.0, 2.0, 13.0, 1.0]]), 1.0, cfg()).stats
    assert (plain.handled, plain.victims, plain.mse, plain.victim_mse) == (0, 0, 34.0, 0.0)
