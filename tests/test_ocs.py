"""sw_ref.ocs: weight and activation channel splitting keep the function; grid splits."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from sw_ref import ocs, quant
from sw_ref.model import DigitsCNN, load_digits_split, load_model

torch.set_num_threads(1)


def _q(w, step):
    """Q of the identity: the project's quantizer on a range that never clips."""
    return quant.quantize(w, step, 32, signed=True)


@pytest.fixture(scope="module")
def digits():
    model = load_model()
    _, _, x, _ = load_digits_split()
    return model, x[:200]


# --- split_weights ------------------------------------------------------------------


def test_split_weights_contract():
    w = torch.tensor([[1.0, -8.0, 2.0], [0.5, 3.0, -1.0]])
    w_split, index = ocs.split_weights(w, 1.0)  # ceil(1.0 * 3) = 3 splits
    assert w_split.shape == (2, 6)
    # 1st: channel 1 (|w| = 8) -> halves in 1 and 3. 2nd: 1 and 3 tie at 4, the first
    # wins -> halves in 1 and 4. 3rd: added channel 3 holds the max and is split
    # again -> halves in 3 and 5. Every added channel is fed by x[:, 1].
    assert index.tolist() == [1, 1, 1]
    quarter = torch.tensor([-2.0, 0.75])
    for c in (1, 3, 4, 5):
        assert torch.equal(w_split[:, c], quarter)
    assert torch.equal(w_split[:, [0, 2]], w[:, [0, 2]])
    x = torch.randn(7, 3, dtype=torch.float64)
    x_ext = torch.cat([x, x[:, index]], dim=1)
    assert torch.allclose(x_ext @ w_split.double().T, x @ w.double().T)


@settings(max_examples=40, deadline=None)
@given(
    out_ch=st.integers(1, 6),
    in_ch=st.integers(1, 12),
    k=st.sampled_from([1, 3]),
    ratio=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**31 - 1),
    grid=st.booleans(),
)
def test_conv2d_split_computes_the_same_function(out_ch, in_ch, k, ratio, seed, grid):
    torch.manual_seed(seed)
    conv = nn.Conv2d(in_ch, out_ch, k, padding=k // 2).double()
    step = float(conv.weight.detach().abs().max()) / 7 if grid else None
    split = ocs.split_layer(conv, ratio, step)
    assert split.inner.weight.shape[1] == in_ch + math.ceil(ratio * in_ch)
    x = torch.randn(2, in_ch, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(split(x), conv(x), atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    out_f=st.integers(1, 8),
    in_f=st.integers(1, 40),
    ratio=st.floats(0.01, 0.5),
    seed=st.integers(0, 2**31 - 1),
)
def test_linear_split_computes_the_same_function_and_shrinks_the_range(out_f, in_f, ratio, seed):
    torch.manual_seed(seed)
    lin = nn.Linear(in_f, out_f)
    split = ocs.split_layer(lin, ratio)
    x = torch.randn(4, in_f)
    with torch.no_grad():
        assert torch.allclose(split(x), lin(x), atol=1e-5)
    # random weights have one largest |w| (a.s.): halving its channel shrinks the max
    assert float(split.inner.weight.detach().abs().max()) < float(lin.weight.detach().abs().max())


def test_max_shrinks_with_more_splits():
    w = torch.randn(16, 64, 3, 3, generator=torch.Generator().manual_seed(3))
    peaks = [float(ocs.split_weights(w, r)[0].abs().max()) for r in (0.0, 0.01, 0.05, 0.1)]
    assert peaks == sorted(peaks, reverse=True) and peaks[-1] < peaks[0]


# --- the quantization-aware split ---------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    w=st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False),
    step=st.floats(1e-3, 1e2, allow_nan=False),
    dtype=st.sampled_from([torch.float32, torch.float64]),
)
def test_grid_split_identity_is_exact(w, step, dtype):
    t = torch.tensor([w], dtype=dtype)
    w1, w2 = ocs.grid_split(t, step)
    assert torch.equal(_q(w1, step) + _q(w2, step), _q(t, step))
    assert torch.allclose(w1 + w2, t, rtol=1e-6, atol=1e-6 * step)


@pytest.mark.parametrize("step", [1.0, 0.5, 0.1, 0.3, 1 / 3])
def test_grid_split_identity_on_ties(step):
    """Half-way values (k + 1/2) step, where round half to even matters."""
    k = torch.arange(-40, 41, dtype=torch.float64)
    for w in ((k + 0.5) * step, (k - 0.5) * step, k * step, (k + 0.25) * step):
        w1, w2 = ocs.grid_split(w, step)
        assert torch.equal(_q(w1, step) + _q(w2, step), _q(w, step))
        # each half stays at least step/4 from a rounding boundary (minus float noise)
        for h in (w1.double() / step, w2.double() / step):
            assert float((h - torch.round(h)).abs().max()) <= 0.25 + 1e-9


def test_the_papers_quarter_step_offset_fails_on_a_tie():
    """Why grid_split centres the halves instead: +-step/4 breaks round-half-even."""
    w, step = torch.tensor([2.5]), 1.0  # Q(w) = 2 (half to even)
    naive = (w - step / 2) / 2, (w + step / 2) / 2  # 1.0 and 1.5 -> 1 + 2
    assert float(_q(naive[0], step) + _q(naive[1], step)) == 3.0 != float(_q(w, step))
    w1, w2 = ocs.grid_split(w, step)
    assert float(_q(w1, step) + _q(w2, step)) == 2.0


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), ratio=st.floats(0.1, 1.0), step=st.floats(0.01, 0.5))
def test_repeated_grid_splits_keep_each_channels_codes(seed, ratio, step):
    """Channels split again and again: their pieces' codes still sum to the original."""
    w = torch.randn(3, 6, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    w[:, 2] *= 8  # one outlier channel, split repeatedly
    w_split, index = ocs.split_weights(w, ratio, step)
    total = _q(w_split[:, :6], step)
    total.index_add_(1, index, _q(w_split[:, 6:], step))
    assert torch.equal(total, _q(w, step))


# --- layers and whole models --------------------------------------------------------


def test_split_model_on_the_digits_cnn(digits):
    model, x = digits
    split = ocs.split_model(model, 0.1)
    assert isinstance(split.conv2, ocs.OCSInput) and isinstance(split.fc, ocs.OCSInput)
    assert split.fc.inner.in_features == 512 + 52
    with torch.no_grad():
        assert torch.allclose(split(x), model(x), atol=1e-4)
        steps = {"conv2": 0.01, "fc": 0.02}
        grid = ocs.split_model(model, 0.05, steps, names={"conv2", "fc"})
        assert isinstance(grid.conv1, nn.Conv2d)  # not named: untouched
        assert torch.allclose(grid(x), model(x), atol=1e-4)
    assert model.fc.in_features == 512  # the original is not modified


def test_activation_split_on_the_digits_cnn(digits):
    model, x = digits
    with torch.no_grad():
        a1 = torch.relu(model.conv1(x))
        peak1 = a1.amax(dim=(0, 2, 3))
        peak2 = torch.relu(model.conv2(a1)).amax(dim=(0, 2, 3))
        ref = model(x)
    new = DigitsCNN()
    new.load_state_dict(model.state_dict())
    new.conv1, new.conv2, idx1 = ocs.split_activations(model.conv1, model.conv2, peak1, 0.25)
    assert new.conv1.out_channels == 20 and new.conv2.in_channels == 20
    assert idx1[0] == int(torch.argmax(peak1))
    # conv2 -> ReLU -> max-pool -> flatten -> fc: each channel is 16 fc inputs
    new.conv2, new.fc, idx2 = ocs.split_activations(new.conv2, model.fc, peak2, 0.1)
    assert new.fc.in_features == (32 + 4) * 16
    with torch.no_grad():
        out = new(x)
        assert torch.allclose(out, ref, atol=1e-4)
        # the largest activation of the split layers shrinks
        assert float(torch.relu(new.conv1(x)).max()) < float(peak1.max())


def test_split_model_activations_and_merge(digits):
    model, x = digits
    with torch.no_grad():
        a1 = torch.relu(model.conv1(x))
        peaks = {
            "conv1": a1.amax(dim=(0, 2, 3)),
            "conv2": torch.relu(model.conv2(a1)).amax(dim=(0, 2, 3)),
        }
        split, added = ocs.split_model_activations(model, DigitsCNN.ocs_pairs, peaks, 0.1)
        assert [len(added[k]) for k in ("conv1", "conv2")] == [2, 4]
        assert split.conv2.in_channels == 18 and split.conv2.out_channels == 36
        assert torch.allclose(split(x), model(x), atol=1e-4)
        merged = ocs.merge_channels(split.conv1(x), added["conv1"])
        assert torch.allclose(merged, model.conv1(x), atol=1e-5)


def test_rejections():
    with pytest.raises(ValueError, match="expand_ratio"):
        ocs.split_weights(torch.ones(2, 2), 1.5)
    with pytest.raises(ValueError, match="NaN or inf"):
        ocs.split_weights(torch.tensor([[1.0, math.nan]]), 0.5)
    with pytest.raises(ValueError, match="groups=1"):
        ocs.split_layer(nn.Conv2d(4, 4, 3, groups=2), 0.5)
    with pytest.raises(ValueError, match="Conv2d and nn.Linear"):
        ocs.split_layer(nn.ReLU(), 0.5)
    with pytest.raises(ValueError, match="step"):
        ocs.grid_split(torch.ones(2), 0.0)
    with pytest.raises(ValueError, match="multiple"):
        ocs.split_activations(nn.Linear(3, 5), nn.Linear(7, 2), torch.ones(5), 0.5)
