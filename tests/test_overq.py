"""OverQ encoder, decoder and golden model (sw_ref.overq) against docs/overq-encoding.md "OverQ encoding"; docs/overq-encoding.md "The array"."""

import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.params import (
    STATE_NORMAL as N,
)
from hw.params import (
    STATE_PRECISION as P,
)
from hw.params import (
    STATE_RANGE as RG,
)
from hw.params import (
    STATE_SHIFTED as S,
)
from hw.params import (
    ArrayConfig,
)
from sw_ref import apot, overq

MODES = [(), ("range",), ("precision",), ("range", "precision")]
MODE_IDS = ["none", "range", "precision", "range+precision"]


def cfg_(rows=8, b=4, c=2, modes=("range",), **kw):
    return ArrayConfig(rows=rows, act_bits=b, cascade=c, overq=set(modes), **kw)


def activations(rng, shape, b):
    """Post-ReLU-like data on step 1: many zeros, some outliers, exact .5 ties."""
    x = rng.exponential(2.0 ** (b - 2), shape) * (rng.random(shape) > 0.45)
    x *= rng.choice([1.0, 1.0, 4.0, 2.0**b], shape)
    ties = rng.random(shape) < 0.1
    return np.where(ties, np.floor(x) + 0.5, x)


def coarse(x, step, cfg):
    """q of docs/overq-encoding.md "OverQ encoding" before saturation, from the formulas (float64)."""
    if not cfg.precision_enabled:
        return np.rint(x / step)
    fine = 2.0**cfg.act_bits
    u = np.minimum(np.rint(x * fine / step), 2.0 ** (3 * cfg.act_bits) - 1)
    return np.rint(u / fine)


def reference(x, step, cfg, floor=0.0):
    """The scalar reference, applied vector by vector."""
    flat = np.asarray(x).reshape(-1, np.shape(x)[-1])
    pairs = [overq.encode_reference(row, step, cfg, floor) for row in flat]
    v = np.array([p[0] for p in pairs]).reshape(np.shape(x))
    f = np.array([p[1] for p in pairs]).reshape(np.shape(x))
    return v, f


def assert_matches_reference(x, step, cfg):
    enc = overq.encode(x, step, cfg)
    v, f = reference(x, step, cfg)
    np.testing.assert_array_equal(enc.values, v)
    np.testing.assert_array_equal(enc.states, f)
    return enc


# --- vectorised encoder == scalar reference -----------------------------------------

GRID = [
    (rows, b, c, modes)
    for rows, b in [(1, 2), (2, 3), (3, 4), (5, 2), (8, 4), (16, 3)]
    for c in sorted({1, min(2, max(1, rows - 1)), max(1, rows - 1)})
    for modes in MODES
]


@pytest.mark.parametrize(
    "rows,b,c,modes", GRID, ids=[f"R{r}-b{b}-c{c}-{'+'.join(m) or 'none'}" for r, b, c, m in GRID]
)
def test_vectorised_equals_reference(rows, b, c, modes):
    cfg = cfg_(rows, b, c, modes)
    rng = np.random.default_rng(rows * 1000 + b * 100 + c * 10 + len(modes))
    for k in (rows, 3 * rows, 2 * rows + max(1, rows // 2)):  # whole and partial tiles
        x = activations(rng, (4, 3, k), b) * 0.3
        assert_matches_reference(x, 0.3, cfg)


@st.composite
def configs_and_data(draw):
    rows = draw(st.integers(1, 12))
    cfg = cfg_(
        rows,
        draw(st.integers(2, 5)),
        draw(st.integers(1, max(1, rows - 1))),
        draw(st.sampled_from(MODES)),
    )
    k = draw(st.integers(1, 3 * rows))
    n = draw(st.integers(1, 4))
    top = 2 ** (2 * cfg.act_bits + 1)
    quarter = st.one_of(st.just(0), st.integers(0, 4 * cfg.act_max + 8), st.integers(0, 4 * top))
    q4 = draw(st.lists(quarter, min_size=n * k, max_size=n * k))
    x = np.array(q4, dtype=np.float64).reshape(n, k) / 4.0  # quarter steps: exact ties
    return cfg, x


@settings(max_examples=80, deadline=None)
@given(configs_and_data(), st.sampled_from([1.0, 0.25, 3.0]))
def test_hypothesis_equals_reference(case, step):
    cfg, x = case
    assert_matches_reference(x * step, step, cfg)


# --- state rules ---------------------------------------------------------------------


def check_state_rules(enc, cfg):
    v, f = np.asarray(enc.values), np.asarray(enc.states)
    assert v.dtype == np.int64 and f.dtype == np.int64
    assert v.min() >= 0 and v.max() < 2**cfg.act_bits
    letters = "NSRP"
    c = cfg.cascade
    grammar = re.compile(rf"^(N(RS{{0,{c - 1}}}|P)?)*$")  # each claim starts at a NORMAL
    flat = f.reshape(-1, f.shape[-1])
    for vec in flat:
        for start in range(0, len(vec), cfg.rows):  # row 0 of every tile is NORMAL
            word = "".join(letters[s] for s in vec[start : start + cfg.rows])
            assert grammar.match(word), word
    if not cfg.range_enabled:
        assert not np.isin(f, [S, RG]).any()
    if not cfg.precision_enabled:
        assert not (f == P).any()


@settings(max_examples=50, deadline=None)
@given(configs_and_data())
def test_state_rules(case):
    cfg, x = case
    check_state_rules(overq.encode(x, 1.0, cfg), cfg)


# --- decode: error bounds and the inverse of the moves -------------------------------


def check_decode_bounds(x, step, cfg):
    enc = overq.encode(x, step, cfg)
    dec = overq.decode(enc.values, enc.states, step, cfg)
    y, d = x / step, np.asarray(overq.decode(enc.values, enc.states, 1.0, cfg))
    q = coarse(x, step, cfg)
    f = np.asarray(enc.states)
    nxt = np.concatenate([f[..., 1:], np.zeros_like(f[..., :1])], axis=-1)
    tile_end = (np.arange(f.shape[-1]) % cfg.rows) == cfg.rows - 1
    nxt[..., tile_end] = N
    precise = (f == N) & (nxt == P)
    ranged = (f == N) & (nxt == RG)
    b = cfg.act_bits
    assert np.all(np.abs(d - y)[precise] <= 2.0 ** -(b + 1) + 1e-12)
    np.testing.assert_array_equal(d[ranged], np.minimum(q, cfg.wide_max)[ranged])
    plain = ~precise & ~ranged
    np.testing.assert_array_equal(d[plain], np.minimum(q, cfg.act_max)[plain])
    unclipped = (ranged & (q <= cfg.wide_max)) | (plain & (q <= cfg.act_max))
    # with precision q is rounded twice (x -> u -> q): half a step plus half a fine step
    bound = 0.5 + (2.0 ** -(b + 1) if cfg.precision_enabled else 0.0)
    assert np.all(np.abs(d - y)[unclipped] <= bound + 1e-12)
    assert np.isclose(enc.stats.mse, np.mean((np.asarray(dec) - x) ** 2))
    return enc


@settings(max_examples=50, deadline=None)
@given(configs_and_data())
def test_decode_error_is_bounded(case):
    cfg, x = case
    check_decode_bounds(x * 0.5, 0.5, cfg)


@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_decode_bounds_random(modes):
    rng = np.random.default_rng(7)
    cfg = cfg_(8, 4, 3, modes)
    check_decode_bounds(activations(rng, (200, 20), 4) * 0.1, 0.1, cfg)


def test_coverage_never_drops_when_cascade_grows():
    rng = np.random.default_rng(3)
    for rows in (4, 8, 12):
        x = activations(rng, (300, rows), 3)
        for modes in (("range",), ("range", "precision")):
            stats = [overq.encode(x, 1.0, cfg_(rows, 3, c, modes)).stats for c in range(1, rows)]
            assert len({s.outliers for s in stats}) == 1
            handled = [s.handled for s in stats]
            assert handled == sorted(handled), handled
            assert stats[-1].coverage > stats[0].coverage


# --- directed cases ------------------------------------------------------------------


def enc1(q, cfg, step=1.0):
    e = overq.encode(np.array(q, dtype=np.float64) * step, step, cfg)
    return e.values.tolist(), e.states.tolist(), e.stats


def test_outlier_next_to_zero():
    v, f, st_ = enc1([20, 0, 5, 3], cfg_(4))
    assert (v, f) == ([4, 1, 5, 3], [N, RG, N, N])
    assert (st_.outliers, st_.handled, st_.coverage) == (1, 1, 1.0)


@pytest.mark.parametrize("length", [1, 2, 3, 4])
def test_cascade_lengths(length):
    cfg = cfg_(8, 4, 4)
    middle = [7, 30, 9][: length - 1]  # the moved 30 is clipped, never expanded
    q = [100] + middle + [0] + [2] * (7 - length)
    v, f, _ = enc1(q, cfg)
    assert v[:2] == [100 % 16, 100 // 16]
    assert v[2 : length + 1] == [min(m, 15) for m in middle]
    assert f[: length + 1] == [N, RG] + [S] * (length - 1)
    assert f[length + 1 :] == [N] * (7 - length)


def test_zero_beyond_cascade_reach_is_not_used():
    v, f, st_ = enc1([100, 7, 7, 0, 1, 1, 1, 1], cfg_(8, 4, 2))
    assert (v[0], f) == (15, [N] * 8)
    assert (st_.outliers, st_.handled, st_.coverage) == (1, 0, 0.0)


def test_outlier_in_last_row_is_clipped():
    v, f, _ = enc1([0, 1, 2, 40], cfg_(4, 4, 3))
    assert (v, f) == ([0, 1, 2, 15], [N] * 4)


def test_wide_value_saturates():
    v, f, _ = enc1([300, 0], cfg_(2, 4, 1))
    assert (v, f) == ([15, 15], [N, RG])


def test_all_zero_and_all_max():
    for modes in MODES:
        cfg = cfg_(8, 4, 2, modes)
        v, f, st_ = enc1([0] * 8, cfg)
        assert (v, f, st_.coverage, st_.mse) == ([0] * 8, [N] * 8, 1.0, 0.0)
        v, f, st_ = enc1([15] * 8, cfg)
        assert (v, f, st_.outliers) == ([15] * 8, [N] * 8, 0)
        v, f, st_ = enc1([99] * 8, cfg)
        assert (v, f, st_.outliers, st_.handled) == ([15] * 8, [N] * 8, 8, 0)


def test_precision_pair_and_earlier_slots_win():
    cfg = cfg_(4, 4, 2, ("range", "precision"))
    v, f, _ = enc1([3.3, 0, 20, 0], cfg)  # p = round(3.3 * 16) = 53
    assert (v, f) == ([3, 5, 4, 1], [N, P, N, RG])
    v, f, _ = enc1([20, 0, 0, 2], cfg)  # the outlier takes slot 1, the zero in 2 stays
    assert (v, f) == ([4, 1, 0, 2], [N, RG, N, N])


def test_tiles_are_encoded_alone():
    cfg = cfg_(4, 4, 3)
    x = np.array([[1, 2, 3, 40, 0, 0, 0, 0, 50, 0]], dtype=np.float64)
    e = overq.encode(x, 1.0, cfg)
    # the 40 in the last row of tile 0 is clipped although the next tile has zeros;
    # in the partial tile [50, 0] the outlier pairs with the zero
    assert e.values.tolist() == [[1, 2, 3, 15, 0, 0, 0, 0, 2, 3]]
    assert e.states.tolist() == [[N, N, N, N, N, N, N, N, N, RG]]
    e = overq.encode(np.array([[0, 0, 0, 0, 2, 50]], dtype=float), 1.0, cfg)
    assert e.values.tolist() == [[0, 0, 0, 0, 2, 15]]  # padding is never a target


def test_invalid_input_raises():
    cfg = cfg_()
    for bad, msg in ((np.nan, "NaN"), (np.inf, "inf"), (-np.inf, "inf")):
        x = np.ones((2, 8))
        x[1, 3] = bad
        for call in (overq.encode, overq.codes, overq.encode_stats, overq.reconstruct):
            with pytest.raises(ValueError, match=msg):
                call(x, 1.0, cfg)
    with pytest.raises(ValueError, match="numeric"):
        overq.encode(np.array(["1", "2"]), 1.0, cfg)
    with pytest.raises(ValueError, match="step"):
        overq.encode(np.ones(8), 0.0, cfg)
    with pytest.raises(ValueError):
        overq.golden(np.full(8, 16), np.zeros(8, int), np.ones((8, 2), int), cfg)
    with pytest.raises(ValueError):
        overq.golden(np.ones(8, int), np.zeros(8, int), np.ones((7, 2), int), cfg)


def test_torch_in_torch_out():
    cfg = cfg_(8, 4, 2, ("range", "precision"))
    x = activations(np.random.default_rng(1), (3, 5, 8), 4).astype(np.float32)
    e_np = overq.encode(x, 0.5, cfg)
    e_t = overq.encode(torch.from_numpy(x), 0.5, cfg)
    assert isinstance(e_t.values, torch.Tensor) and e_t.values.dtype == torch.int64
    np.testing.assert_array_equal(e_t.values.numpy(), e_np.values)
    np.testing.assert_array_equal(e_t.states.numpy(), e_np.states)
    w = torch.randint(-8, 8, (8, 4))
    y = overq.golden(e_t.values, e_t.states, w, cfg)
    assert isinstance(y, torch.Tensor) and y.shape == (3, 5, 4)
    assert isinstance(overq.decode(e_t.values, e_t.states, 0.5, cfg), torch.Tensor)
    c_t = overq.codes(torch.from_numpy(x), 0.5, cfg)
    assert isinstance(c_t, torch.Tensor) and c_t.dtype == torch.int64
    e_c = overq.encode_codes(c_t, cfg)
    assert isinstance(e_c.values, torch.Tensor)
    np.testing.assert_array_equal(e_c.values.numpy(), e_np.values)
    np.testing.assert_array_equal(e_c.states.numpy(), e_np.states)
    r_t = overq.golden_real(e_t.values, e_t.states, w, cfg, 0.5, 0.1, floor=-0.2)
    assert isinstance(r_t, torch.Tensor) and r_t.shape == (3, 5, 4)


# --- golden model --------------------------------------------------------------------


def golden_loop(v, f, w, cfg):
    """docs/overq-encoding.md "The array" literally, one vector, one slot at a time."""
    b = cfg.act_bits
    normal = b if cfg.precision_enabled else 0
    scale = {N: normal, S: normal, RG: normal + b, P: 0}
    y = [0] * w.shape[1]
    for k in range(len(v)):
        state = f[k] if cfg.overq_enabled and k % cfg.rows else N
        row = k if state == N else k - 1
        for c in range(w.shape[1]):
            y[c] += int(v[k]) * int(w[row, c]) << scale[state]
    return y


@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_golden_equals_formula_on_any_port_values(modes):
    cfg = cfg_(8, 3, 2, modes, cols=3)
    rng = np.random.default_rng(5)
    v = rng.integers(0, 8, (20, 16))
    f = rng.integers(0, 4, (20, 16))  # states a testbench may drive, row 0 included
    w = rng.integers(cfg.weight_min, cfg.weight_max + 1, (16, 3))
    y = overq.golden(v, f, w, cfg)
    assert y.dtype == np.int64 and y.shape == (20, 3)
    assert y.tolist() == [golden_loop(v[i], f[i], w, cfg) for i in range(20)]


@pytest.mark.parametrize("fmt", ["int", "apot"])
@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_golden_equals_matmul_of_decoded(fmt, modes):
    cfg = cfg_(8, 4, 3, modes, cols=5, weight_bits=5, weight_format=fmt)
    rng = np.random.default_rng(11)
    x = activations(rng, (64, 8), 4) * 0.2
    e = overq.encode(x, 0.2, cfg)
    if fmt == "apot":
        w = apot.decode(rng.integers(0, 32, (8, 5)), cfg)
    else:
        w = rng.integers(cfg.weight_min, cfg.weight_max + 1, (8, 5))
    y = overq.golden(e.values, e.states, w, cfg)
    units = overq.decode(e.values, e.states, 1.0, cfg)
    if cfg.precision_enabled:
        units = units * 2**cfg.act_bits
    np.testing.assert_array_equal(y, np.rint(units @ w).astype(np.int64))
    np.testing.assert_array_equal(np.rint(units), units)  # exact integers
    lo, hi = cfg.output_range
    assert y.min() >= lo and y.max() <= hi


def test_golden_row0_is_normal_whatever_its_state():
    cfg = cfg_(4, 4, 2, ("range", "precision"))
    w = np.array([[1, 2], [3, 4], [5, 6], [7, -8]])  # 4-bit weights
    v = np.array([3, 1, 2, 5])
    base = overq.golden(v, np.array([N, N, N, N]), w, cfg)
    for state in (S, RG, P):
        assert np.array_equal(overq.golden(v, np.array([state, N, N, N]), w, cfg), base)


def test_golden_without_overq_ignores_states():
    cfg = cfg_(4, 4, 2, ())
    w = np.arange(8).reshape(4, 2) - 3
    v = np.array([3, 1, 2, 5])
    assert np.array_equal(overq.golden(v, np.array([N, RG, S, P]), w, cfg), v @ w)


def test_golden_over_tiles_adds_the_tiles_up():
    cfg = cfg_(4, 4, 2, ("range", "precision"), cols=3)
    rng = np.random.default_rng(2)
    x = activations(rng, (6, 10), 4)
    e = overq.encode(x, 1.0, cfg)
    w = rng.integers(-8, 8, (10, 3))
    parts = [
        overq.golden(e.values[:, s : s + 4], e.states[:, s : s + 4], w[s : s + 4], cfg)
        for s in range(0, 10, 4)
    ]
    np.testing.assert_array_equal(overq.golden(e.values, e.states, w, cfg), sum(parts))


def test_golden_large_operands_stay_exact():
    # A16W16 range,precision needs 67-bit outputs and is refused (hw.params); the
    # widest A16W16 array keeps range only: RANGE products are shifted by 16 bits.
    cfg = cfg_(8, 16, 2, ("range",), weight_bits=16)
    v = np.full((2, 4096), cfg.act_max)
    f = np.full_like(v, RG)
    f[:, 1], v[:, 1] = P, 1  # one unshifted odd product: sums need every bit
    v[:, 0] -= 1  # row 0 (NORMAL, unshifted) even
    w = np.full((4096, 2), cfg.weight_min)
    w[0] = 1
    y = overq.golden(v, f, w, cfg)
    assert y.dtype == np.int64
    assert abs(int(y[0, 0])) > 2**53 and y[0, 0] % 2 == 1
    assert y.tolist() == [golden_loop(v[i], f[i], w, cfg) for i in range(2)]


@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_golden_is_exact_on_all_maximum_inputs_at_64_bit_outputs(modes):
    """The widest accepted arrays: one tile of extreme values in every state fits int64."""
    cfg = ArrayConfig(rows=64, cols=2, act_bits=14, weight_bits=16, overq=set(modes), cascade=1)
    assert cfg.acc_width <= 64
    rng = np.random.default_rng(3)
    for f in (np.full(64, RG), np.full(64, N), rng.integers(0, 4, 64)):
        w = np.tile([[cfg.weight_min, cfg.weight_max]], (64, 1))
        y = overq.golden(np.full(64, cfg.act_max), f, w, cfg)
        expected = golden_loop(np.full(64, cfg.act_max), f, w, cfg)
        assert y.dtype == np.int64 and y.tolist() == expected
        lo, hi = cfg.output_range
        assert lo <= min(expected) and max(expected) <= hi


def test_golden_sums_beyond_int64_are_python_integers_not_wrapped():
    cfg = cfg_(8, 16, 2, ("range",), weight_bits=16)
    k = 8 << 14  # 16384 tiles of extreme values: the sum needs 65 bits
    v, f = np.full((1, k), cfg.act_max), np.full((1, k), RG)
    w = np.full((k, 1), cfg.weight_min)
    y = overq.golden(v, f, w, cfg)
    expected = golden_loop(v[0], f[0], w, cfg)
    assert expected[0] < -(2**63)
    assert y.dtype == object and y.tolist() == [expected]
    with pytest.raises(ValueError, match="exceed int64"):
        overq.golden(torch.from_numpy(v), torch.from_numpy(f), torch.from_numpy(w), cfg)


def test_empty_input():
    e = overq.encode(np.zeros((0, 8)), 1.0, cfg_())
    assert e.values.shape == e.states.shape == (0, 8)
    assert (e.stats.outliers, e.stats.coverage) == (0, 1.0)


# --- the encoder on integer codes (what the hardware encoder sees) -------------------


@st.composite
def configs_data_floor(draw):
    cfg, x = draw(configs_and_data())
    floor = draw(st.sampled_from([0.0, -0.25, -1.75]))
    return cfg, x, floor


@settings(max_examples=60, deadline=None)
@given(configs_data_floor(), st.sampled_from([1.0, 0.25, 3.0]))
def test_encode_is_codes_then_encode_codes(case, step):
    cfg, x, floor = case
    x = x * step + floor
    c = overq.codes(x, step, cfg, floor=floor)
    assert c.dtype == np.int64 and c.shape == x.shape
    assert c.min() >= 0 and c.max() < 2 ** overq.code_bits(cfg)
    e = overq.encode(x, step, cfg, floor=floor)
    ec = overq.encode_codes(c, cfg)
    np.testing.assert_array_equal(e.values, ec.values)
    np.testing.assert_array_equal(e.states, ec.states)
    for name in ("outliers", "handled", "coverage", "precise"):
        assert getattr(e.stats, name) == getattr(ec.stats, name)
    v, f = reference(x, step, cfg, floor)
    np.testing.assert_array_equal(e.values, v)
    np.testing.assert_array_equal(e.states, f)


@settings(max_examples=80, deadline=None)
@given(configs_data_floor(), st.sampled_from([1.0, 0.25, 3.0]))
def test_reconstruct_is_decode_of_encode(case, step):
    """The evaluations' fast path is decode(encode(x)) bit for bit, stats included."""
    cfg, x, floor = case
    x = x * step + floor
    e = overq.encode(x, step, cfg, floor=floor)
    d = overq.decode(e.values, e.states, step, cfg, floor=floor)
    r, stats = overq.reconstruct(x, step, cfg, floor=floor)
    assert r.dtype == np.float64 and r.shape == x.shape
    np.testing.assert_array_equal(r, d)
    assert stats == e.stats
    assert overq.encode_stats(x, step, cfg, floor=floor) == e.stats
    r32, _ = overq.reconstruct(x, step, cfg, floor=floor, dtype=np.float32)
    np.testing.assert_array_equal(r32, d.astype(np.float32))


@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("rows", [8, 16])
def test_reconstruct_on_many_tiles(modes, rows):
    """Large inputs (many engine blocks, the one-word R = 8 path, a partial tile)."""
    cfg = cfg_(rows, 4, 2, modes)
    rng = np.random.default_rng(rows + len(modes))
    x = activations(rng, (3000, 5 * rows + 3), 4) * 0.25
    e = overq.encode(x, 0.25, cfg)
    d = overq.decode(e.values, e.states, 0.25, cfg)
    r, stats = overq.reconstruct(torch.from_numpy(x), 0.25, cfg)
    np.testing.assert_array_equal(r.numpy(), d)
    assert stats == e.stats and stats.outliers > 0


def test_reconstruct_rejects_what_encode_rejects():
    cfg = cfg_(8, 4, 2, ("range",))
    with pytest.raises(ValueError, match="inf"):
        overq.reconstruct(np.array([[-np.inf, 0.0]]), 1.0, cfg)
    with pytest.raises(ValueError, match="NaN"):
        overq.reconstruct(np.array([[1.0, np.nan]]), 1.0, cfg)
    with pytest.raises(TypeError):
        overq.reconstruct(np.array([[1.0, 0.0]]), 1.0, cfg, dtype=np.int64)
    r, stats = overq.reconstruct(np.zeros((0, 8)), 1.0, cfg)
    assert r.shape == (0, 8) and stats.outliers == 0


def test_codes_follow_the_formulas():
    rng = np.random.default_rng(4)
    x = activations(rng, (50, 24), 4) * 0.3 - 0.1
    for modes in MODES:
        cfg = cfg_(8, 4, 2, modes)
        c = overq.codes(x, 0.3, cfg, floor=-0.1)
        fine = 16.0 if cfg.precision_enabled else 1.0
        want = np.minimum(np.rint((x + 0.1) * fine / 0.3), 2.0 ** overq.code_bits(cfg) - 1)
        np.testing.assert_array_equal(c, want)
    assert overq.code_bits(cfg_(8, 4, 2, ("range",))) == 8
    assert overq.code_bits(cfg_(8, 4, 2, ("precision",))) == 12
    assert overq.code_bits(cfg_(8, 3, 2, ())) == 6


def all_vectors(rows, bits):
    """Every vector of `rows` codes of `bits` bits, [2^(rows*bits), rows]."""
    grid = np.indices((1 << bits,) * rows).reshape(rows, -1).T
    return np.ascontiguousarray(grid)


EXHAUSTIVE = (
    [(4, 2, 1, ())]
    + [(4, 2, c, ("range",)) for c in (1, 2, 3)]
    + [(2, 2, 1, modes) for modes in [("precision",), ("range", "precision")]]
    + [pytest.param(3, 2, 2, ("range", "precision"), marks=pytest.mark.slow)]  # 2^18
)


@pytest.mark.parametrize(
    "rows,b,c,modes",
    EXHAUSTIVE,
    ids=["R4-b2-c1-none"]
    + [f"R4-b2-c{c}-range" for c in (1, 2, 3)]
    + ["R2-b2-c1-precision", "R2-b2-c1-range+precision", "R3-b2-c2-range+precision"],
)
def test_encode_codes_every_vector(rows, b, c, modes):
    cfg = cfg_(rows, b, c, modes)
    vecs = all_vectors(rows, overq.code_bits(cfg))
    e = overq.encode_codes(vecs, cfg)
    pairs = [overq.encode_codes_reference(vec, cfg) for vec in vecs.tolist()]
    np.testing.assert_array_equal(e.values, [p[0] for p in pairs])
    np.testing.assert_array_equal(e.states, [p[1] for p in pairs])


@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_encode_codes_stats(modes):
    cfg = cfg_(8, 3, 2, modes)
    rng = np.random.default_rng(9)
    c = rng.integers(0, 2 ** overq.code_bits(cfg), (300, 12)) * (rng.random((300, 12)) < 0.6)
    e = overq.encode_codes(c, cfg)
    fine = 2.0**cfg.act_bits if cfg.precision_enabled else 1.0
    q = np.rint(c / fine)  # half to even, exact in float64
    assert e.stats.outliers == np.count_nonzero(q > cfg.act_max)
    dec = np.asarray(overq.decode(e.values, e.states, 1.0, cfg))
    assert np.isclose(e.stats.mse, np.mean((dec - c / fine) ** 2))
    assert e.step == 1.0
    # the same codes from x give the same decisions, the mse then against x
    x = c / fine * 0.5
    ex = overq.encode(x, 0.5, cfg)
    np.testing.assert_array_equal(ex.values, e.values)
    assert (ex.stats.handled, ex.stats.precise) == (e.stats.handled, e.stats.precise)
    assert np.isclose(ex.stats.mse, e.stats.mse * 0.25)


def test_encode_codes_rejects_bad_codes():
    cfg = cfg_(4, 4, 2, ("range",))
    with pytest.raises(ValueError, match=r"0\.\.255"):
        overq.encode_codes(np.array([1, 256, 0, 0]), cfg)
    with pytest.raises(ValueError, match="0..255"):
        overq.encode_codes(np.array([1, -1, 0, 0]), cfg)
    with pytest.raises(ValueError, match="integers"):
        overq.encode_codes(np.array([1.5, 0, 0, 0]), cfg)
    with pytest.raises(ValueError, match=r"0\.\.4095"):
        overq.encode_codes(np.array([4096, 0, 0, 0]), cfg_(4, 4, 2, ("precision",)))


def test_precision_q_comes_from_the_fine_code():
    """x/s = 0.51 rounds to 1, but u = round(8.16) = 8 and q = round(8/16) = 0: a zero."""
    cfg = cfg_(4, 4, 1, ("range", "precision"))
    x = np.array([40.0, 0.51, 2.51, 0.0])
    assert overq.codes(x, 1.0, cfg).tolist() == [640, 8, 40, 0]
    e = overq.encode(x, 1.0, cfg)
    # the outlier 40 uses slot 1 as its zero; 2.51 -> u = 40 -> q = round(2.5) = 2,
    # paired with the zero in slot 3: p = 40 = 2 * 16 + 8
    assert e.values.tolist() == [40 % 16, 40 // 16, 2, 8]
    assert e.states.tolist() == [N, RG, N, P]
    assert overq.encode_codes([640, 8, 40, 0], cfg).values.tolist() == e.values.tolist()


def test_largest_fine_code_saturates():
    """u = 2^(3b) - 1 gives q = 2^(2b) (one past a pair), stored as 2^(2b) - 1."""
    cfg = cfg_(2, 2, 1, ("range", "precision"))
    e = overq.encode_codes([63, 0], cfg)
    assert (e.values.tolist(), e.states.tolist()) == ([3, 3], [N, RG])


# --- zero point: x - floor is encoded, golden_real adds the floor back ----------------


def test_floor_shifts_the_grid():
    rng = np.random.default_rng(12)
    floor = -0.17
    x = activations(rng, (40, 16), 4) * 0.1 + floor
    cfg = cfg_(8, 4, 2, ("range",))
    e = overq.encode(x, 0.1, cfg, floor=floor)
    e0 = overq.encode(x - floor, 0.1, cfg)
    np.testing.assert_array_equal(e.values, e0.values)
    np.testing.assert_array_equal(e.states, e0.states)
    assert e.floor == floor and np.isclose(e.stats.mse, e0.stats.mse)
    dec = overq.decode(e.values, e.states, 0.1, cfg, floor=floor)
    assert np.isclose(np.mean((dec - x) ** 2), e.stats.mse)


@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_below_the_floor_is_at_the_floor(modes):
    """Values below the floor (GELU's float32 minimum, post-ReLU data with -1e-6 from
    arithmetic, or any value under a chosen floor) take code 0, like a quantizer clamps
    below its range, in every entry point; the clamp's error counts in the MSE."""
    cfg = cfg_(8, 4, 2, modes)
    rng = np.random.default_rng(21)
    for floor in (0.0, -0.17):
        x = activations(rng, (30, 16), 4) * 0.1 + floor
        x[::3, ::5] = floor - rng.random((10, 4)) * (1e-6, 1e-3, 0.05, 1.0)
        clamped = np.maximum(x, floor)
        assert (x < floor).any()
        np.testing.assert_array_equal(
            overq.codes(x, 0.1, cfg, floor), overq.codes(clamped, 0.1, cfg, floor)
        )
        e, ec = overq.encode(x, 0.1, cfg, floor), overq.encode(clamped, 0.1, cfg, floor)
        np.testing.assert_array_equal(e.values, ec.values)
        np.testing.assert_array_equal(e.states, ec.states)
        r, st = overq.reconstruct(x, 0.1, cfg, floor)
        np.testing.assert_array_equal(r, overq.reconstruct(clamped, 0.1, cfg, floor)[0])
        dec = overq.decode(e.values, e.states, 0.1, cfg, floor=floor)
        np.testing.assert_array_equal(r, dec)
        # the MSE is against x itself: the clamp costs what it costs
        assert np.isclose(st.mse, np.mean((dec - x) ** 2)) and st.mse > ec.stats.mse
        assert overq.encode_stats(x, 0.1, cfg, floor) == st


def test_reconstruct_takes_torch_dtypes_and_refuses_others_by_name():
    cfg = cfg_()
    x = torch.rand(4, 8) * 2
    out, _ = overq.reconstruct(x, 0.1, cfg, dtype=torch.float32)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    ref, _ = overq.reconstruct(x.numpy(), 0.1, cfg, dtype=np.float32)
    assert np.array_equal(out.numpy(), ref)
    for bad in (torch.int32, torch.bfloat16, np.int64, "text"):
        with pytest.raises(TypeError, match="dtype"):
            overq.reconstruct(x, 0.1, cfg, dtype=bad)


@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
def test_golden_real_is_the_real_layer(modes):
    cfg = cfg_(8, 4, 2, modes, cols=6)
    rng = np.random.default_rng(13)
    floor, step = -0.17, 0.05
    x = activations(rng, (30, 20), 4) * step + floor
    w = rng.integers(cfg.weight_min, cfg.weight_max + 1, (20, 6))
    for ws in (0.02, np.linspace(0.01, 0.06, 6)):  # per tensor, per column
        e = overq.encode(x, step, cfg, floor=floor)
        out = overq.golden_real(e.values, e.states, w, cfg, step, ws, floor=floor)
        x_hat = overq.decode(e.values, e.states, step, cfg, floor=floor)
        np.testing.assert_allclose(out, x_hat @ (w * ws), rtol=1e-12, atol=1e-12)
        y = overq.golden(e.values, e.states, w, cfg)
        unit = step * ws / (2**cfg.act_bits if cfg.precision_enabled else 1)
        np.testing.assert_allclose(out, y * unit + floor * ws * w.sum(axis=0), rtol=1e-12)
    e = overq.encode(x - floor, step, cfg)
    no_floor = overq.golden_real(e.values, e.states, w, cfg, step, 0.02)
    np.testing.assert_allclose(
        no_floor, overq.decode(e.values, e.states, step, cfg) @ (w * 0.02), atol=1e-12
    )
    with pytest.raises(ValueError, match="weight_step"):
        overq.golden_real(e.values, e.states, w, cfg, step, np.ones(5))


# --- the table-driven engine: every path against the reference -----------------------


@st.composite
def wide_configs_and_codes(draw):
    """Any R (lookup table for R <= 8, the scan above), codes of any width."""
    rows = draw(st.sampled_from([1, 2, 3, 5, 8, 9, 16, 23]))
    modes = draw(st.sampled_from(MODES))
    b = draw(st.sampled_from([2, 3, 4, 5, 6, 9]))
    cfg = cfg_(rows, b, draw(st.integers(1, max(1, rows - 1))), modes)
    k = draw(st.integers(1, 3 * rows))
    n = draw(st.integers(1, 5))
    top = 2 ** overq.code_bits(cfg) - 1
    fine = 2**b if cfg.precision_enabled else 1
    slot = st.one_of(
        st.just(0),
        st.integers(0, fine),  # zeros and ones around the rounding edge
        st.integers(0, (cfg.act_max + 2) * fine),  # normal values, the first outliers
        st.integers(0, top),
    )
    return cfg, np.array(draw(st.lists(slot, min_size=n * k, max_size=n * k))).reshape(n, k)


@settings(max_examples=120, deadline=None)
@given(wide_configs_and_codes())
def test_engine_equals_reference_on_codes(case):
    cfg, c = case
    e = overq.encode_codes(c, cfg)
    pairs = [overq.encode_codes_reference(row, cfg) for row in c.tolist()]
    np.testing.assert_array_equal(e.values, [p[0] for p in pairs])
    np.testing.assert_array_equal(e.states, [p[1] for p in pairs])
    f = np.array([p[1] for p in pairs])
    # handled = RANGE halves, precise = PRECISION slots (per tile, row 0 is never either)
    assert e.stats.handled == np.count_nonzero(f == RG)
    assert e.stats.precise == np.count_nonzero(f == P)


@pytest.mark.parametrize("modes", MODES, ids=MODE_IDS)
@pytest.mark.parametrize("rows", [8, 12])
def test_blocks_do_not_change_the_result(monkeypatch, modes, rows):
    """Block boundaries of the engine (tiles are never split) leave no trace."""
    from sw_ref import overq_engine

    cfg = cfg_(rows, 4, 3, modes)
    rng = np.random.default_rng(rows)
    x = activations(rng, (97, 3 * rows + 5), 4) * 0.25
    whole = overq.encode(x, 0.25, cfg)
    monkeypatch.setattr(overq_engine, "BLOCK_SLOTS", 5 * rows)
    blocked = overq.encode(x, 0.25, cfg)
    np.testing.assert_array_equal(whole.values, blocked.values)
    np.testing.assert_array_equal(whole.states, blocked.states)
    assert whole.stats == blocked.stats
    v, f = reference(x, 0.25, cfg)
    np.testing.assert_array_equal(blocked.values, v)
    np.testing.assert_array_equal(blocked.states, f)


def test_narrow_and_wide_codes_agree():
    from sw_ref import overq_engine

    for modes in MODES:
        cfg = cfg_(8, 4, 2, modes)
        rng = np.random.default_rng(len(modes))
        c = overq.codes(activations(rng, (50, 16), 4), 1.0, cfg)
        narrow = c.astype(overq_engine.code_dtype(cfg))
        a, b = overq.encode_codes(c, cfg), overq.encode_codes(narrow, cfg)
        np.testing.assert_array_equal(a.values, b.values)
        np.testing.assert_array_equal(a.states, b.states)
        assert a.stats == b.stats
        assert a.values.dtype == b.values.dtype == np.int64


# --- overflow, against a width worked out in the test (tests/acc_bounds.py) ---------

from acc_bounds import extreme_outputs, extreme_vector, extreme_weight_code, signed_width  # noqa: E402

BOUND_CONFIGS = [
    ArrayConfig(rows=rows, act_bits=b, weight_bits=wb, weight_format=fmt, overq=modes, cascade=1)
    for rows in (1, 2, 8, 16)
    for b, wb, fmt in [
        (2, 2, "int"),
        (4, 4, "int"),
        (8, 8, "int"),
        (4, 5, "apot"),
        (3, 4, "apot"),
        (6, 7, "apot"),
    ]
    for modes in ("none", "range", "precision", "range,precision")
]


@pytest.mark.parametrize("cfg", BOUND_CONFIGS, ids=lambda c: c.key())
def test_golden_extremes_fit_the_default_accumulator_exactly(cfg):
    """golden on the all-maximum vector with all-max / all-min weights gives the
    extremes worked out in the test, and the default accumulator is the smallest
    width holding both: one bit less would wrap one of them."""
    from hw.simulate import weight_values

    lo, hi = extreme_outputs(cfg)
    v, f = extreme_vector(cfg)
    got = []
    for which in ("max", "min"):
        w = weight_values(np.full((cfg.rows, 2), extreme_weight_code(cfg, which)), cfg)
        got.append(overq.golden(np.array(v), np.array(f), w, cfg).tolist())
    assert got == [[hi, hi], [lo, lo]]
    width = signed_width(lo, hi)
    assert cfg.acc_width == width
    assert not (-(2 ** (width - 2)) <= lo and hi < 2 ** (width - 2))
