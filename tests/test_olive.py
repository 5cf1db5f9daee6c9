"""sw_ref.olive: OliVe's outlier-victim pairs, hand-worked at b = 4 (alpha = 30: one
grid unit per unit of x; normal levels 0, 2, .., 30, outlier levels 40, 48, .., 448;
round to nearest, ties to the lower level)."""

import numpy as np
import pytest

from sw_ref import olive


def test_levels_at_four_bits():
    normal, outlier = olive.levels(4)
    assert normal.tolist() == list(range(0, 32, 2))
    assert outlier.tolist() == [40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384, 448]


@pytest.mark.parametrize(
    "x, expected, outliers, placed, victims",
    [
        # pair (0, 1): the outlier 100 -> 96 in the first slot, its neighbour 5 is lost
        ([100.0, 5.0, 7.2, 3.2], [96.0, 0.0, 8.0, 4.0], 1, 1, 1),
        # the outlier in the second slot takes the first as its victim
        ([5.0, 100.0, 7.2, 3.2], [0.0, 96.0, 8.0, 4.0], 1, 1, 1),
        # two outliers in one pair: the first wins, the second is the victim (lost)
        ([100.0, 60.0, 7.2, 3.2], [96.0, 0.0, 8.0, 4.0], 2, 1, 1),
        # pairs are aligned: an outlier in slot 2 pairs with slot 3, never with slot 1
        ([1.0, 5.0, 100.0, 3.0], [0.0, 4.0, 96.0, 0.0], 1, 1, 1),
        # 34 is nearer 30 than 40: a clipped normal value, no victim
        ([34.0, 5.0], [30.0, 4.0], 0, 0, 0),
        # an odd length: the last slot has no partner, its outlier is clipped to 30
        ([1.0, 3.0, 100.0], [0.0, 2.0, 30.0], 1, 0, 0),
        # beyond the largest outlier level: saturates at 448
        ([1000.0, 0.0], [448.0, 0.0], 1, 1, 1),
    ],
)
def test_hand_worked_pairs(x, expected, outliers, placed, victims):
    y, st = olive.fake_quantize(np.array([x]), 30.0, 4)
    assert y[0].tolist() == expected
    assert (st.outliers, st.placed, st.victims) == (outliers, placed, victims)


def test_torch_in_torch_out_and_alpha_search():
    import torch

    rng = np.random.default_rng(0)
    x = np.maximum(rng.standard_normal((500, 64)), 0) * rng.uniform(0.2, 3.0, 64)
    alpha = olive.calibrate(x, 4)
    base = max(abs(x.mean() + 3 * x.std()), abs(x.mean() - 3 * x.std()))
    assert 0.75 * base <= alpha <= 2.49 * base
    y, st = olive.fake_quantize(torch.from_numpy(x), alpha, 4)
    assert isinstance(y, torch.Tensor) and y.shape == x.shape
    assert st.mse <= olive.fake_quantize(x, base, 4)[1].mse
    assert st.coverage <= 1.0 and st.victims >= st.placed
