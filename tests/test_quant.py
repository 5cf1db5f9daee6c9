"""sw_ref.quant: the uniform quantizer and the clipping-threshold methods."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize_scalar
from scipy.special import erf

from sw_ref import quant

torch.set_num_threads(1)


def laplace(b=1.0, n=200_000, seed=0):
    return np.random.default_rng(seed).laplace(0.0, b, n)


# --- the quantizer -------------------------------------------------------------------


def test_round_half_to_even():
    x = torch.tensor([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, -2.5, 0.49999997])
    assert quant.quantize(x, 1.0, 8, signed=True).tolist() == [0, 2, 2, 4, 0, -2, -2, 0]
    # on a non-unit step: 0.75 / 0.5 = 1.5 -> 2, 1.25 / 0.5 = 2.5 -> 2
    assert quant.quantize(torch.tensor([0.75, 1.25]), 0.5, 4).tolist() == [2, 2]


def test_ranges():
    assert quant.qrange(4, signed=False) == (0, 15)
    assert quant.qrange(4, signed=True) == (-7, 7)
    assert quant.qrange(4, signed=True, narrow=False) == (-8, 7)
    assert quant.qrange(2, signed=True) == (-1, 1)
    with pytest.raises(ValueError, match="bits"):
        quant.qrange(0, signed=False)
    with pytest.raises(ValueError, match="signed"):
        quant.qrange(1, signed=True)


@settings(max_examples=60, deadline=None)
@given(
    x=st.lists(st.floats(-1e3, 1e3, allow_nan=False, width=32), min_size=1, max_size=40),
    step=st.floats(1e-3, 10.0),
    bits=st.integers(2, 8),
    signed=st.booleans(),
    narrow=st.booleans(),
)
def test_codes_in_range_and_error_bounded(x, step, bits, signed, narrow):
    t = torch.tensor(x, dtype=torch.float64)
    lo, hi = quant.qrange(bits, signed, narrow)
    q = quant.quantize(t, step, bits, signed, narrow=narrow)
    assert q.dtype == torch.int64
    assert int(q.min()) >= lo and int(q.max()) <= hi
    inside = (t >= lo * step) & (t <= hi * step)
    err = (q.double() * step - t).abs()[inside]
    assert bool((err <= step / 2 * (1 + 1e-9)).all())
    # outside the range the code is the clipped end, never anything else
    assert bool((q[t > hi * step] == hi).all()) and bool((q[t < lo * step] == lo).all())


def test_per_channel_matches_each_channel_alone():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 3, 3, 3, generator=g) * torch.tensor([0.1, 1, 3, 10, 0.01]).view(-1, 1, 1, 1)
    alpha = quant.threshold(w, 4, "max", signed=True, axis=0)
    assert torch.allclose(alpha, w.abs().amax(dim=(1, 2, 3)).double())
    fq = quant.fake_quant(w, alpha, 4, signed=True, axis=0)
    for c in range(5):
        alone = quant.fake_quant(w[c], float(alpha[c]), 4, signed=True)
        assert torch.equal(fq[c], alone)
    # the largest |w| of each channel lands exactly on the top code
    q = quant.quantize(w, quant.step_from_threshold(alpha, 4, True), 4, True, axis=0)
    assert torch.equal(q.abs().amax(dim=(1, 2, 3)), torch.full((5,), 7))
    with pytest.raises(ValueError, match="per-channel step"):
        quant.quantize(w, torch.ones(3), 4, True, axis=0)


def test_unsigned_clips_negatives_to_zero_and_top_to_max():
    q = quant.quantize(torch.tensor([-3.0, 0.2, 100.0]), 0.5, 3)
    assert q.tolist() == [0, 0, 7]


def test_all_zero_tensor():
    z = torch.zeros(10)
    for method in quant.METHODS:
        assert quant.threshold(z, 4, method, signed=False) == 0.0
    assert torch.equal(quant.fake_quant(z, 0.0, 4), z)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nan_and_inf_raise(bad):
    x = torch.tensor([1.0, bad, 2.0])
    with pytest.raises(ValueError, match="NaN|inf"):
        quant.quantize(x, 0.1, 4)
    with pytest.raises(ValueError, match="NaN|inf"):
        quant.fake_quant(x.numpy(), 1.0, 4)
    for method in quant.METHODS:
        with pytest.raises(ValueError, match="NaN|inf"):
            quant.threshold(x, 4, method)
    with pytest.raises(ValueError):
        quant.quantize(torch.ones(3), bad, 4)
    with pytest.raises(ValueError):
        quant.step_from_threshold(bad, 4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="step must be a finite number > 0, got 0.0"):
        quant.quantize(torch.ones(3), 0.0, 4)
    with pytest.raises(ValueError, match="unknown clipping method"):
        quant.threshold(torch.ones(3), 4, "median")
    with pytest.raises(ValueError, match="empty"):
        quant.threshold(torch.ones(0), 4)
    with pytest.raises(ValueError, match="percentile"):
        quant.threshold(torch.ones(3), 4, "percentile", percentile=0)


# --- thresholds on known distributions -----------------------------------------------


def test_max_and_percentile():
    x = laplace()
    assert quant.threshold(x, 4, "max") == pytest.approx(np.abs(x).max())
    assert quant.threshold(x, 4, "percentile", percentile=99.0) == pytest.approx(
        np.percentile(np.abs(x), 99.0)
    )
    # |Laplace(b)| is Exponential(b): its 99th percentile is b ln 100
    assert quant.threshold(x, 4, "percentile", percentile=99.0) == pytest.approx(
        math.log(100), rel=0.03
    )
    u = np.abs(x)
    assert quant.threshold(u, 4, "max", signed=False) == pytest.approx(u.max())


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("b", [0.5, 2.0])
def test_aciq_laplace_near_its_analytic_value(bits, b):
    x = laplace(b)
    assert quant.threshold(x, bits, "aciq_laplace") == pytest.approx(
        quant.ACIQ_LAPLACE[bits] * b, rel=0.02
    )
    # unsigned b bits have the positive levels of signed b + 1 bits (2^b - 1 steps
    # above 0): the same clipping problem, so the same threshold and the same step
    alpha_u = quant.aciq_threshold(x, bits, signed=False)
    assert alpha_u == quant.aciq_threshold(x, bits + 1, signed=True)
    assert quant.step_from_threshold(alpha_u, bits, signed=False) == pytest.approx(
        quant.step_from_threshold(alpha_u, bits + 1, signed=True)
    )


def test_aciq_gauss_near_its_analytic_value():
    x = np.random.default_rng(1).normal(0.0, 3.0, 200_000)
    for bits in (2, 3, 4):
        assert quant.threshold(x, bits, "aciq_gauss") == pytest.approx(
            quant.ACIQ_GAUSS[bits] * 3.0, rel=0.02
        )


def test_aciq_constants_minimise_the_papers_error_model():
    """Re-derive the published constants: clipping noise + alpha^2 / (3 * 4^M).

    The published values are rounded down (Gauss 2.93 for 2.936, 3.28 for
    3.287, 4.2 for 4.216), hence a tolerance of 0.02.
    """
    for m in quant.ACIQ_LAPLACE:
        lap = minimize_scalar(
            lambda a: 2 * np.exp(-a) + a * a / (3 * 4.0**m), bounds=(0.1, 30), method="bounded"
        ).x
        assert quant.ACIQ_LAPLACE[m] == pytest.approx(lap, abs=0.02)

        def gauss(a, m=m):
            tail = (a * a + 1) * (1 - erf(a / math.sqrt(2)))
            clip = tail - math.sqrt(2 / math.pi) * a * math.exp(-a * a / 2)
            return clip + a * a / (3 * 4.0**m)

        g = minimize_scalar(gauss, bounds=(0.1, 30), method="bounded").x
        assert quant.ACIQ_GAUSS[m] == pytest.approx(g, abs=0.02)


def test_aciq_bits_outside_the_table():
    with pytest.raises(ValueError, match="ACIQ"):
        quant.threshold(laplace(), 12, "aciq_laplace")


def _mse(x, alpha, bits, signed=True):
    return float(((quant.fake_quant(x, alpha, bits, signed) - torch.as_tensor(x)) ** 2).mean())


@pytest.mark.parametrize("bits", [2, 4, 6])
def test_mse_threshold_clips_heavy_tails_and_is_near_optimal(bits):
    x = laplace(n=50_000)
    top = np.abs(x).max()
    alpha = quant.threshold(x, bits, "mse")
    assert alpha < 0.8 * top  # a heavy tail is clipped
    brute = min(_mse(x, a, bits) for a in np.linspace(0.02, 1.0, 200) * top)
    assert _mse(x, alpha, bits) <= 1.03 * brute


def test_mse_threshold_keeps_the_range_of_bounded_data():
    x = np.random.default_rng(2).uniform(-1, 1, 50_000)
    assert quant.threshold(x, 8, "mse") > 0.97 * np.abs(x).max()


def test_kl_threshold_is_sane():
    x = laplace()
    top = np.abs(x).max()
    t = {b: quant.threshold(x, b, "kl") for b in (2, 4, 8)}
    assert 0 < t[2] <= t[4] <= t[8] <= top
    assert t[8] > 0.5 * top  # 8 bits keeps most of the range
    assert t[2] < 0.5 * top  # 2 bits clips hard
    # the chosen cut is a bin edge of the 2048-bin histogram of |x|
    width = top / 2048
    assert t[8] / width == pytest.approx(round(t[8] / width), abs=1e-6)


def test_methods_accept_numpy_and_torch_alike():
    x = laplace(n=5000)
    for method in quant.METHODS:
        assert quant.threshold(x, 4, method) == pytest.approx(
            quant.threshold(torch.from_numpy(x), 4, method)
        )


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("signed", [False, True])
def test_fake_quant_is_dequantize_of_quantize(dtype, signed):
    """The in-place per-tensor path is the composition bit for bit (ties included)."""
    g = torch.Generator().manual_seed(3)
    for bits in (2, 4, 8):
        for alpha in (0.0, 0.3, 6.0):
            for floor in (None,) if signed else (None, -0.17):
                x = torch.randn(2000, generator=g, dtype=dtype) * 2
                qmax = quant.qrange(bits, signed)[1]
                x[:64] = (torch.arange(64, dtype=dtype) - 32) * 0.5 * alpha / qmax  # ties
                if not signed:
                    x = x.abs() + (floor or 0.0)
                step = quant.step_from_threshold(alpha, bits, signed)
                q = quant.quantize(x, step, bits, signed, floor=floor) * (alpha > 0)
                want = quant.dequantize(q, step, dtype=dtype, floor=floor)
                got = quant.fake_quant(x, alpha, bits, signed, floor=floor)
                assert got.dtype == dtype
                assert torch.equal(got, want), (bits, alpha, floor)


def test_kl_threshold_does_not_collapse_on_relu_outputs():
    """Half the ReLU6 inputs are exact zeros: the 4-bit KL cut must not collapse.

    With the cuts starting at one bin per level and the zero spike in the histogram,
    this data (like EfficientNet-Lite0's block-2 projection inputs) gave 0.073, 1/82
    of the range: almost every activation clipped.
    """
    rng = np.random.default_rng(7)
    body = np.minimum(rng.gamma(0.8, 1.5, 60_000), 6.0)
    relu = np.concatenate([np.zeros(60_000), body])
    for bits in (4, 6, 8):
        assert quant.threshold(relu, bits, "kl") >= 3.0, bits
        # the zero spike does not move the cut
        fewer = np.concatenate([np.zeros(1000), body])
        assert quant.threshold(fewer, bits, "kl") == quant.threshold(relu, bits, "kl")
    assert quant.threshold(relu, 4, "kl", start_bin=2048) == pytest.approx(6.0)
    with pytest.raises(ValueError):
        quant.threshold(relu, 4, "kl", start_bin=0)


def test_kl_threshold_keeps_discrete_images_whole():
    """17 intensity levels (the digits images), half of them background zeros."""
    rng = np.random.default_rng(8)
    img = rng.integers(0, 17, 50_000) / 16.0
    img[rng.random(img.size) < 0.49] = 0.0
    for bits in (2, 4, 8):
        assert quant.threshold(img, bits, "kl") == pytest.approx(1.0)


def test_kl_cuts_at_once_equal_the_definition():
    """The vectorised search over all cuts gives each cut's KL of the one-cut definition."""
    from sw_ref.quant import _kl_at_cut, _kl_by_cut

    rng = np.random.default_rng(9)
    hists = [
        np.histogram(np.abs(laplace(n=20_000)), bins=512)[0],
        np.histogram(np.minimum(rng.gamma(0.8, 1.5, 30_000), 6.0), bins=512)[0],
        np.bincount(rng.integers(0, 17, 5000) * 32, minlength=512),
    ]  # 17 levels
    for hist in hists:
        hist = hist.astype(np.float64)
        for levels in (4, 16, 128):
            cuts = np.arange(max(levels, 32), hist.size + 1)
            fast = _kl_by_cut(hist, levels, cuts, chunk=50)
            slow = np.array([_kl_at_cut(hist, levels, int(i)) for i in cuts])
            assert np.array_equal(np.isfinite(fast), np.isfinite(slow))
            finite = np.isfinite(slow)
            np.testing.assert_allclose(fast[finite], slow[finite], rtol=1e-9, atol=1e-15)
            assert np.argmin(fast) == np.argmin(slow)
