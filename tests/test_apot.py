"""APoT level sets, codes and quantizer (sw_ref.apot) against the published sets."""

from fractions import Fraction
from itertools import product

import numpy as np
import pytest

from hw.params import ArrayConfig
from sw_ref import apot


def official_build_power_value(B):
    """The official ``build_power_value(B, additive=True)`` (yhhhli/APoT_Quantization),
    transcribed with exact fractions: sorted normalized levels for B magnitude bits."""
    base_a, base_b, base_c = [Fraction(0)], [Fraction(0)], [Fraction(0)]
    p = lambda e: Fraction(1, 2**e)  # noqa: E731  2 ** (-e)
    if B == 2:
        for i in range(3):
            base_a.append(p(i + 1))
    elif B == 4:
        for i in range(3):
            base_a.append(p(2 * i + 1))
            base_b.append(p(2 * i + 2))
    elif B == 6:
        for i in range(3):
            base_a.append(p(3 * i + 1))
            base_b.append(p(3 * i + 2))
            base_c.append(p(3 * i + 3))
    elif B == 3:
        for i in range(3):
            if i < 2:
                base_a.append(p(i + 1))
            else:
                base_b.append(p(i + 1))
                base_a.append(p(i + 2))
    elif B == 5:
        for i in range(3):
            if i < 2:
                base_a.append(p(2 * i + 1))
                base_b.append(p(2 * i + 2))
            else:
                base_c.append(p(2 * i + 1))
                base_a.append(p(2 * i + 2))
                base_b.append(p(2 * i + 3))
    values = {a + b + c for a in base_a for b in base_b for c in base_c}
    top = max(values)
    return sorted(v / top for v in values)


def paper_levels(k, n):
    """The APoT paper's set: sum_i p_i, p_i in {0, 2^-i, 2^-(i+n), ..., 2^-(i+(2^k-2)n)},
    normalized so the largest level is 1 (gamma = 1 / max)."""
    terms = [
        [Fraction(0)] + [Fraction(1, 2 ** (i + j * n)) for j in range(2**k - 1)] for i in range(n)
    ]
    values = {sum(choice) for choice in product(*terms)}
    top = max(values)
    return sorted(v / top for v in values)


def apot_cfg(weight_bits, k=2):
    return ArrayConfig(weight_bits=weight_bits, weight_format="apot", apot_term_bits=k)


SUPPORTED = [(wb, 2) for wb in range(3, 8)] + [
    (1 + k * n, k) for k in (1, 2, 3) for n in (1, 2, 3, 4) if 1 + k * n <= 16
]
SUPPORTED = sorted(set(SUPPORTED))


@pytest.mark.parametrize("magnitude_bits", [2, 3, 4, 5, 6])
def test_official_sets(magnitude_bits):
    ours = apot.levels(magnitude_bits + 1, normalized=True)
    official = official_build_power_value(magnitude_bits)
    assert len(ours) == len(official) == 2**magnitude_bits
    assert [Fraction(v).limit_denominator(1 << 20) for v in ours] == official
    integer = apot.levels(magnitude_bits + 1)
    assert [Fraction(int(v), int(integer[-1])) for v in integer] == official


def test_published_integer_examples():
    assert apot.levels(5).tolist() == [0, 1, 2, 3, 4, 6, 8, 9, 12, 16, 18, 24, 32, 33, 36, 48]
    assert apot.levels(4).tolist() == [0, 1, 2, 3, 4, 6, 8, 10]  # official 2+1 split
    assert apot.levels(3).tolist() == [0, 1, 2, 4]


@pytest.mark.parametrize("k,n", [(k, n) for k in (1, 2, 3) for n in (1, 2, 3, 4) if k * n <= 15])
def test_paper_formula(k, n):
    cfg = apot_cfg(1 + k * n, k)
    ours = apot.levels(cfg)
    assert ours.dtype.kind == "i" and ours[0] == 0 and np.all(np.diff(ours) > 0)
    assert [Fraction(int(v), int(ours[-1])) for v in ours] == paper_levels(k, n)
    assert len(ours) == 2 ** (k * n)
    assert int(ours[-1]) == cfg.weight_max


def test_one_bit_terms_are_plain_binary():
    assert apot.levels(apot_cfg(5, 1)).tolist() == list(range(16))


@pytest.mark.parametrize("weight_bits,k", SUPPORTED)
def test_every_code_round_trips(weight_bits, k):
    cfg = apot_cfg(weight_bits, k)
    codes = np.arange(1 << weight_bits)
    values = apot.decode(codes, cfg)
    mags = set(apot.levels(cfg).tolist())
    assert set(np.abs(values).tolist()) == mags
    again = apot.encode(values, cfg)
    negative_zero = 1 << (weight_bits - 1)
    expected = np.where(codes == negative_zero, 0, codes)
    np.testing.assert_array_equal(again, expected)
    assert values[negative_zero] == 0
    levels = np.array(sorted(mags))
    signed = np.concatenate([-levels, levels])
    np.testing.assert_array_equal(apot.decode(apot.encode(signed, cfg), cfg), signed)


def test_code_layout_msb_first():
    cfg = apot_cfg(5)  # sign | term0 (2b) | term1 (2b); term0 {0,32,8,2}, term1 {0,16,4,1}
    assert apot.decode(np.array([0b0_01_00, 0b0_00_01, 0b0_11_11, 0b1_10_11]), cfg).tolist() == [
        32,
        16,
        3,
        -9,
    ]
    uneven = apot_cfg(4)  # sign | term0 (2b: 8,4,1) | term1 (1b: 2)
    assert uneven.apot_term_widths == (2, 1)
    assert apot.decode(np.array([0b0_01_1, 0b1_11_0, 0b0_00_1]), uneven).tolist() == [10, -1, 2]
    five = apot_cfg(6)  # 2+2+1: {64,16,2}, {32,8,1}, {4}
    assert apot.decode(np.array([0b0_01_01_1, 0b1_11_11_0]), five).tolist() == [100, -3]


def test_encode_rejects_non_levels_and_decode_bad_codes():
    cfg = apot_cfg(5)
    with pytest.raises(ValueError, match="not APoT levels"):
        apot.encode(np.array([0, 5]), cfg)
    with pytest.raises(ValueError):
        apot.decode(np.array([32]), cfg)
    with pytest.raises(ValueError):
        apot.levels(ArrayConfig())  # an int-weight config has no APoT levels


def test_torch_in_torch_out():
    import torch

    cfg = apot_cfg(5)
    codes = torch.arange(32)
    values = apot.decode(codes, cfg)
    assert isinstance(values, torch.Tensor)
    assert torch.equal(apot.encode(values, cfg), torch.where(codes == 16, 0, codes))


@pytest.mark.parametrize("weight_bits", [3, 4, 5, 6, 7])
def test_quantize_picks_the_nearest_level(weight_bits):
    cfg = apot_cfg(weight_bits)
    rng = np.random.default_rng(weight_bits)
    w = rng.standard_normal(2000) * 1.5
    alpha = 2.0
    q = apot.quantize(w, alpha, cfg)
    norm = apot.levels(cfg, normalized=True)
    target = np.clip(np.abs(w) / alpha, 0, 1)
    best = np.abs(target[:, None] - norm[None, :]).min(axis=1)
    got = np.abs(q.values) / apot.levels(cfg)[-1]
    np.testing.assert_allclose(np.abs(target - got), best, atol=1e-12)
    np.testing.assert_allclose(q.weights, q.values * q.scale)
    np.testing.assert_array_equal(apot.decode(q.codes, cfg), q.values)
    assert np.all(np.sign(q.values) * np.sign(w) >= 0)
    assert q.scale == alpha / apot.levels(cfg)[-1]


def test_quantize_ties_go_down_and_torch_works():
    import torch

    cfg = apot_cfg(5)  # levels 0, 1, 2, ...: 0.5 / 48 of alpha is a tie between 0 and 1
    q = apot.quantize(torch.tensor([0.5, -1.5, 100.0]), 48.0, cfg)
    assert isinstance(q.weights, torch.Tensor) and q.weights.dtype == torch.float32
    assert apot.quantize(np.float32([0.3]), 1.0, cfg).weights.dtype == np.float32
    assert q.values.tolist() == [0, -1, 48]
