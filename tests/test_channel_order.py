"""sw_ref.overq.channel_order: a permutation that keeps the layer's function and
handles more OverQ outliers on the calibration data it was chosen from."""

import numpy as np
import pytest
import torch

from hw.params import ArrayConfig
from sw_ref import overq
from sw_ref.channel_order import order_coverage, tile_lengths


def _acts(n=3000, c=96, seed=0):
    """Post-ReLU activations whose channels differ in scale (some outlier-prone)."""
    rng = np.random.default_rng(seed)
    return np.maximum(rng.standard_normal((n, c)) * rng.uniform(0.2, 2.0, c), 0.0)


def _step(x, bits=4):
    return float(np.percentile(x[x > 0], 99)) / (2**bits - 1)


@pytest.mark.parametrize("rows,cascade,c", [(8, 2, 96), (8, 1, 100), (16, 4, 40), (5, 2, 23)])
def test_permutation_and_calibration_gain(rows, cascade, c):
    x = _acts(c=c)
    cfg = ArrayConfig(rows=rows, cascade=cascade)
    perm = overq.channel_order(x, _step(x), cfg)
    assert perm.dtype == np.int64 and sorted(perm.tolist()) == list(range(c))
    seen, natural = order_coverage(x, _step(x), cfg)
    seen2, ordered = order_coverage(x, _step(x), cfg, perm)
    assert seen == seen2 > 0  # the order moves outliers, it does not create them
    assert ordered > natural


def test_generalises_to_held_out_vectors():
    x = _acts(n=6000)
    calib, test = x[:3000], x[3000:]
    cfg = ArrayConfig(rows=8, cascade=2)
    step = _step(calib)
    perm = overq.channel_order(calib, step, cfg)
    assert order_coverage(test, step, cfg, perm)[1] > order_coverage(test, step, cfg)[1]


@pytest.mark.parametrize("modes", [("range",), ("range", "precision")], ids="+".join)
def test_preserves_the_layer_function(modes):
    """Through the OverQ array: the ordered vectors, encoded with their outliers and
    multiplied by the permuted weight rows, give exactly the layer of what the encoder
    kept, back in the natural channels; the order keeps more of the true activations
    than the natural order does, and with every outlier clipped away both orders agree."""
    x = _acts(n=400, c=40)
    step = _step(x)
    cfg = ArrayConfig(rows=8, cascade=2, overq=modes)
    perm = overq.channel_order(x, step, cfg)
    assert perm.tolist() != list(range(40))  # a real reordering
    np.testing.assert_allclose(x[:, perm] @ np.eye(40)[perm], x, rtol=0, atol=0)
    wi = np.random.default_rng(2).integers(-7, 8, (40, 5))
    codes = np.asarray(overq.codes(x, step, cfg))
    unit = 1 << cfg.act_bits if cfg.precision_enabled else 1  # golden's units per step
    layers = {}
    for name, order in (("natural", np.arange(40)), ("ordered", perm)):
        enc = overq.encode_codes(codes[:, order], cfg)
        y = np.asarray(overq.golden(enc.values, enc.states, wi[order], cfg))
        kept = np.empty_like(x)
        kept[:, order] = overq.decode(enc.values, enc.states, 1.0, cfg)  # in steps
        assert np.array_equal(y, np.rint(kept * unit @ wi).astype(np.int64))  # exact integers
        layers[name] = (kept, enc.stats)
    truth = x / step
    err = {k: float(np.mean((kept - truth) ** 2)) for k, (kept, _) in layers.items()}
    assert layers["ordered"][1].coverage > layers["natural"][1].coverage
    assert err["ordered"] < err["natural"]


def test_natural_order_when_nothing_to_gain():
    x = _acts(c=24)
    big_step = float(x.max())  # no outliers at all
    assert overq.channel_order(x, big_step, ArrayConfig()).tolist() == list(range(24))
    no_range = ArrayConfig(overq=("precision",))
    assert overq.channel_order(x, _step(x), no_range).tolist() == list(range(24))


def test_accepts_torch_and_rejects_bad_input():
    x = _acts(n=500, c=16)
    perm = overq.channel_order(torch.from_numpy(x), _step(x), ArrayConfig())
    assert sorted(perm.tolist()) == list(range(16))
    with pytest.raises(ValueError, match="NaN or inf"):
        overq.channel_order(np.where(x > 3, np.nan, x), 1.0, ArrayConfig())
    with pytest.raises(ValueError, match=r"\[N, C\]"):
        overq.channel_order(x[0], 1.0, ArrayConfig())
    with pytest.raises(ValueError, match="step"):
        overq.channel_order(x, 0.0, ArrayConfig())


def test_values_a_hair_below_the_floor_are_at_the_floor():
    """Real GELU outputs in float32 reach a hair below GELU's analytic minimum (the
    floor): the order is the one of the data clamped to the floor."""
    from sw_ref.nets.minilm import GELU_MIN

    rng = np.random.default_rng(5)
    pre = torch.from_numpy(rng.normal(-0.75, 0.02, size=(4000, 16)).astype(np.float32))
    pre[:, ::4] = torch.from_numpy(rng.normal(0.0, 3.0, size=(4000, 4)).astype(np.float32))
    acts = torch.nn.functional.gelu(pre).double() - GELU_MIN
    assert float(acts.min()) < 0  # float32 GELU dips below the analytic minimum
    step = float(acts.max()) / 40
    perm = overq.channel_order(acts, step, ArrayConfig())
    assert sorted(perm.tolist()) == list(range(16))
    assert perm.tolist() == overq.channel_order(acts.clamp(min=0), step, ArrayConfig()).tolist()


def test_tile_lengths():
    assert tile_lengths(20, 8) == [8, 8, 4]
    assert tile_lengths(16, 8) == [8, 8]


@pytest.mark.parametrize("rows,cascade", [(8, 2), (8, 1)])
def test_victim_order_cuts_the_error_on_held_out_vectors(rows, cascade):
    """With victims the order pairs outlier-prone channels with small ones and is kept
    only if it lowers the calibration MSE; on held-out vectors it lowers it too, and
    it stays a permutation that the range-only rule would not pick."""
    x = _acts(n=6000)
    calib, test = x[:3000], x[3000:]
    cfg = ArrayConfig(rows=rows, cascade=cascade, overq="range,victim")
    step = _step(calib)
    perm = overq.channel_order(calib, step, cfg)
    assert sorted(perm.tolist()) == list(range(x.shape[1]))
    mse = lambda a, p=None: overq.encode_stats(a if p is None else a[:, p], step, cfg).mse  # noqa: E731
    assert mse(calib, perm) < mse(calib)
    assert mse(test, perm) < mse(test)
