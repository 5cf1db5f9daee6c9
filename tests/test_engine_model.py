"""sw_ref.engine: the bit-exact model of one engine command, on hand-worked numbers."""

import numpy as np
import pytest

from hw.params import ArrayConfig, EngineConfig
from sw_ref import engine

CFG = EngineConfig(
    ArrayConfig(rows=2, cols=2, act_bits=2, weight_bits=4, cascade=1), max_m=4, max_k=6, max_n=3
)


def rq(value, mult, shift, code_max=15, bias=0):
    """Requantize one accumulator (one column) with the default 4-bit-code engine."""
    cfg = EngineConfig(ArrayConfig(), max_m=4, max_k=8, max_n=8)
    out = engine.requantize(np.array([[value]]), [bias], [mult], [shift], code_max, cfg)
    return int(out[0, 0])


def test_requantize_shift_0_is_exact():
    assert rq(9, 1, 0) == 9
    assert rq(5, 3, 0, bias=-2) == 9  # (5 - 2) * 3


def test_requantize_rounds_half_up():
    assert rq(5, 1, 1) == 3  # 2.5 -> 3
    assert rq(7, 1, 1) == 4  # 3.5 -> 4
    assert rq(6, 1, 2) == 2  # 1.5 -> 2
    assert rq(5, 1, 2) == 1  # 1.25 -> 1
    assert rq(7, 1, 2) == 2  # 1.75 -> 2
    assert rq(-3, 1, 1, bias=10) == 4  # (7 + 1) >> 1, bias before the multiply


def test_requantize_shift_47():
    top = (1 << 31) - 1
    assert rq(1, (1 << 16) - 1, 47, bias=top) == 1  # (2^47 - 2^31 + 2^46) >> 47
    assert rq(1, 1 << 15, 47, bias=top) == 1  # exactly one half: rounds up
    assert rq(0, 1 << 15, 47, bias=top) == 0  # just below one half


def test_requantize_clamps():
    assert rq(100, 1, 0) == 15
    assert rq(100, 1, 0, code_max=6) == 6  # ReLU6-style ceiling
    assert rq(-1, 1, 0) == 0
    assert rq(-1, 1, 1) == 0  # -0.5 rounds up to 0
    assert rq(-3, 1, 1) == 0  # -1.5 -> -1 -> clamped
    assert rq(40000, 65535, 0, code_max=255, bias=-(1 << 31)) == 0


def test_short_tile_is_zero_padded_so_an_outlier_finds_room():
    w = np.array([[1, 2], [-3, 4], [5, -6]])
    # b = 2, M = 3: code 5 in the last slot of K = 3 is an outlier; the padding zero
    # after it takes its high bits (RANGE, weight of the row above): 1*W2 + 4*1*W2.
    acc = engine.run([[0, 0, 5]], w, None, None, None, None, CFG)
    assert acc.tolist() == [[25, -30]]
    acc = engine.run([[1, 2, 3]], w, None, None, None, None, CFG)
    assert acc.tolist() == [[1 - 6 + 15, 2 + 8 - 18]]


def test_tiles_are_encoded_on_their_own():
    w = np.array([[1, 0], [0, 1], [1, 1], [2, -1]])
    # slot 1 (last of tile 0) holds an outlier: no room in its own tile -> clipped to 3
    acc = engine.run([[0, 7, 0, 0]], w, None, None, None, None, CFG)
    assert acc.tolist() == [[0, 3]]


def test_run_requantizes_per_column():
    w = np.array([[1, -1], [1, 1]])
    y = engine.run([[3, 2]], w, [1, 0], [3, 2], [1, 0], 15, CFG)
    assert y.tolist() == [[(6 * 3 + 1) >> 1, 0]]  # col 1: (-3 + 2) * 2 = -2 -> 0
    y = engine.run([[3, 2]], w, [1, 0], [3, 2], [1, 0], 7, CFG)
    assert y.tolist() == [[7, 0]]  # 9 clamped to code_max


@pytest.mark.parametrize(
    "x,w,message",
    [
        (np.zeros((5, 2), int), np.zeros((2, 2), int), "M=5"),
        (np.zeros((1, 7), int), np.zeros((7, 2), int), "K=7"),
        (np.zeros((1, 2), int), np.zeros((2, 4), int), "N=4"),
        (np.full((1, 2), 16), np.zeros((2, 2), int), "x_codes must be in 0..15"),
        (np.zeros((1, 2), int), np.full((2, 2), 8), "w_codes must be in -8..7"),
    ],
)
def test_limits_are_one_line_errors(x, w, message):
    with pytest.raises(ValueError, match=message) as info:
        engine.run(x, w, None, None, None, None, CFG)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        (dict(shift=[48]), "shift must be in 0..47"),
        (dict(mult=[1 << 16]), "mult must be in 0..65535"),
        (dict(bias=[1 << 31]), "bias must be in"),
        (dict(code_max=16), "code_max must be in 0..15"),
    ],
)
def test_parameter_limits(kwargs, message):
    args = dict(bias=[0], mult=[1], shift=[0], code_max=15) | kwargs
    with pytest.raises(ValueError, match=message):
        engine.run([[1, 1]], [[1], [1]], cfg=CFG, **args)


def test_config_limits():
    with pytest.raises(ValueError, match="max_m must be in 1..65535"):
        EngineConfig(max_m=0)
    with pytest.raises(ValueError, match="needs an OverQ mode"):
        EngineConfig(ArrayConfig(overq="none"))
    with pytest.raises(ValueError, match="code_bits <= 15"):
        EngineConfig(ArrayConfig(act_bits=6, overq="range,precision"))


def test_config_derives_widths_once():
    cfg = EngineConfig(ArrayConfig(), max_m=64, max_k=512, max_n=512)
    assert cfg.array.double_buffer and not cfg.array.encoder
    assert cfg.max_k_tiles == 64
    lo, hi = cfg.array.output_range
    assert -(1 << (cfg.acc_bits - 1)) <= 64 * lo and 64 * hi < (1 << (cfg.acc_bits - 1))
    assert 64 * hi >= (1 << (cfg.acc_bits - 2))  # and no wider than needed
    assert cfg.slot_bits == 6  # range, cascade 2: every state occurs
    assert EngineConfig(ArrayConfig(cascade=1)).slot_bits == 5  # NORMAL/RANGE only
    assert EngineConfig(ArrayConfig(overq="precision")).slot_bits == 5
    assert EngineConfig(ArrayConfig(overq="range,precision")).slot_bits == 6


def test_raw_and_requantized_agree():
    rng = np.random.default_rng(5)
    cfg = EngineConfig(ArrayConfig(), max_m=8, max_k=40, max_n=20)
    x = rng.integers(0, 256, size=(7, 37))
    w = rng.integers(-8, 8, size=(37, 19))
    acc = engine.run(x, w, None, None, None, None, cfg)
    bias = rng.integers(-1000, 1000, size=19)
    mult = rng.integers(0, 1 << 16, size=19)
    shift = rng.integers(0, 48, size=19)
    y = engine.run(x, w, bias, mult, shift, 200, cfg)
    for (i, j), value in np.ndenumerate(y):
        a = int(acc[i, j]) + int(bias[j])
        s = int(shift[j])
        expect = (a * int(mult[j]) + (1 << (s - 1) if s else 0)) // (1 << s)
        assert value == min(max(expect, 0), 200)
