"""Victim overwrite (docs/victim.md): the vectorised encoder against the
slot-by-slot reference, every path of ``sw_ref.overq`` against each other, and the
configuration's refusal. The hand-worked victim cases are in test_overq_cases.py.

Default run: every code vector of the small shapes (R = 4, b = 2, each cascade) and
random data through every engine path (the R = 8 one-word path, the 4^R table, the
row-by-row scan for R > 8, blocks, partial tiles). OVERQ_EXHAUSTIVE=1 adds every vector
of R = 3 with precision.
"""

import os

import numpy as np
import pytest

from hw.params import STATE_RANGE as RG
from hw.params import ArrayConfig
from sw_ref import overq, overq_engine

EXHAUSTIVE = os.environ.get("OVERQ_EXHAUSTIVE") == "1"
VICTIM_MODES = ["range,victim", "range,precision,victim"]


def cfg_(rows=8, b=4, c=2, modes="range,victim"):
    return ArrayConfig(rows=rows, act_bits=b, cascade=c, overq=modes)


def reference_codes(c, cfg):
    pairs = [overq.encode_codes_reference(row, cfg) for row in np.asarray(c).tolist()]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def all_vectors(rows, bits):
    return np.ascontiguousarray(np.indices((1 << bits,) * rows).reshape(rows, -1).T)


def outlier_rich_codes(rng, shape, cfg):
    """Codes with many outliers next to small and large neighbours, few zeros."""
    top = (1 << overq.code_bits(cfg)) - 1
    fine = 1 << cfg.act_bits if cfg.precision_enabled else 1
    small = rng.integers(0, (cfg.act_max + 1) * fine, shape)
    big = rng.integers(0, top + 1, shape)
    zero = rng.random(shape) < 0.15
    return np.where(zero, 0, np.where(rng.random(shape) < 0.35, big, small))


EVERY_VECTOR = (
    [(4, 2, c, "range,victim") for c in (1, 2, 3)]
    + [
        pytest.param(
            3,
            2,
            c,
            "range,precision,victim",
            marks=pytest.mark.skipif(not EXHAUSTIVE, reason="2^18 vectors: OVERQ_EXHAUSTIVE=1"),
        )
        for c in (1, 2)
    ]
    + [(2, 2, 1, "range,precision,victim")]
)


@pytest.mark.parametrize("rows,b,c,modes", EVERY_VECTOR)
def test_encode_codes_every_vector(rows, b, c, modes):
    cfg = cfg_(rows, b, c, modes)
    vecs = all_vectors(rows, overq.code_bits(cfg))
    e = overq.encode_codes(vecs, cfg)
    v, f = reference_codes(vecs, cfg)
    np.testing.assert_array_equal(e.values, v)
    np.testing.assert_array_equal(e.states, f)
    # every outlier is handled, victimised or clipped; a victim is a RANGE slot
    assert e.stats.victims <= e.stats.handled == np.count_nonzero(f == RG)


@pytest.mark.parametrize("modes", VICTIM_MODES)
@pytest.mark.parametrize("rows,c", [(8, 2), (8, 1), (5, 3), (12, 2), (16, 4)])
def test_engine_paths_equal_reference(monkeypatch, modes, rows, c):
    """The one-word R = 8 path, the table (R <= 8), the scan (R > 8), small blocks and
    partial tiles (K = 3R + 3: a victim never falls in the padding)."""
    cfg = cfg_(rows, 4, c, modes)
    rng = np.random.default_rng(rows * 10 + c + len(modes))
    codes = outlier_rich_codes(rng, (150, 3 * rows + 3), cfg)
    whole = overq.encode_codes(codes, cfg)
    v, f = reference_codes(codes, cfg)
    np.testing.assert_array_equal(whole.values, v)
    np.testing.assert_array_equal(whole.states, f)
    assert whole.stats.victims > 0
    monkeypatch.setattr(overq_engine, "BLOCK_SLOTS", 7 * rows)
    blocked = overq.encode_codes(codes.astype(overq_engine.code_dtype(cfg)), cfg)
    np.testing.assert_array_equal(blocked.values, v)
    assert blocked.stats == whole.stats


@pytest.mark.parametrize("modes", VICTIM_MODES)
@pytest.mark.parametrize("rows", [8, 12])
def test_reconstruct_and_stats_agree_with_decode(modes, rows):
    """reconstruct == decode(encode) bit for bit; encode == codes then encode_codes;
    the victims' share of the error is the squared value each victim lost."""
    cfg = cfg_(rows, 4, 2, modes)
    rng = np.random.default_rng(rows + 3 * len(modes))
    step = 0.25
    x = outlier_rich_codes(rng, (400, 2 * rows + 5), cfg) * step
    x = x / (1 << cfg.act_bits if cfg.precision_enabled else 1) + rng.random(x.shape) * 0.01
    e = overq.encode(x, step, cfg)
    d = overq.decode(e.values, e.states, step, cfg)
    r, stats = overq.reconstruct(x, step, cfg)
    np.testing.assert_array_equal(r, d)
    assert stats == e.stats == overq.encode_stats(x, step, cfg)
    assert np.isclose(e.stats.mse, np.mean((d - x) ** 2))
    ec = overq.encode_codes(overq.codes(x, step, cfg), cfg)
    np.testing.assert_array_equal(ec.values, e.values)
    assert (ec.stats.victims, ec.stats.handled) == (e.stats.victims, e.stats.handled)
    # the pruned slots are those that decode to 0 but had a non-zero code and are not
    # the zero of a range pair: recount them from decode against range-only
    c = overq.codes(x, step, cfg)
    q = np.rint(c / (1 << cfg.act_bits)) if cfg.precision_enabled else c
    lost = (d == 0) & (q > 0)
    assert np.count_nonzero(lost) == e.stats.victims > 0
    assert np.isclose(e.stats.victim_mse, np.sum(x[lost] ** 2) / x.size)


def test_victims_only_lower_the_error_slot_pair_by_slot_pair():
    """Each victim trades a clip for a cheaper prune: on codes, victim mode's error is
    never above range-only's, and equal where no victim was taken."""
    rng = np.random.default_rng(5)
    for rows, c in [(8, 2), (4, 1)]:
        codes = outlier_rich_codes(rng, (2000, rows), cfg_(rows))
        vic = overq.encode_codes(codes, cfg_(rows, c=c))
        rng_only = overq.encode_codes(codes, cfg_(rows, c=c, modes="range"))
        assert vic.stats.mse < rng_only.stats.mse
        assert vic.stats.coverage > rng_only.stats.coverage
        same = (np.asarray(vic.states) == np.asarray(rng_only.states)).all(axis=1)
        np.testing.assert_array_equal(
            np.asarray(vic.values)[same], np.asarray(rng_only.values)[same]
        )


def test_without_victims_the_encoding_is_range_only():
    """Data with a zero in every outlier's reach: victim mode changes nothing."""
    codes = np.array([[200, 0, 3, 1, 17, 5, 0, 9]] * 3)
    a = overq.encode_codes(codes, cfg_())
    b = overq.encode_codes(codes, cfg_(modes="range"))
    np.testing.assert_array_equal(a.values, b.values)
    np.testing.assert_array_equal(a.states, b.states)
    assert a.stats.victims == 0 and a.stats.mse == b.stats.mse


@pytest.mark.parametrize("modes", ["victim", "precision,victim", "victim,none"])
def test_victim_needs_range(modes):
    with pytest.raises(ValueError, match="victim"):
        ArrayConfig(overq=modes)


def test_mode_text_and_key():
    cfg = ArrayConfig(overq="victim,range")
    assert cfg.victim_enabled and cfg.overq_text == "range,victim"
    assert "oq-range+victim" in cfg.key()
    assert not ArrayConfig().victim_enabled
    # the array is range's: same widths, states and latency
    base = ArrayConfig(overq="range")
    assert (cfg.min_acc_bits, cfg.state_shifts, cfg.latency, cfg.code_bits) == (
        base.min_acc_bits,
        base.state_shifts,
        base.latency,
        base.code_bits,
    )
