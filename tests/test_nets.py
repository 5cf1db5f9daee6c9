"""sw_ref.nets: the registry, EfficientNet-Lite0 really loaded, the photos and the
cached activations."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from sw_ref import nets
from sw_ref.nets import photos
from sw_ref.nets.efficientnet import FoldedLite0, _same_pads, layer_kinds


@pytest.fixture(scope="module")
def lite0():
    torch.set_num_threads(1)
    return nets.efficientnet_lite0()


def test_registry():
    assert {"digits", "efficientnet_lite0"} <= set(nets.names())
    with pytest.raises(ValueError, match="unknown network"):
        nets.get("resnet9000")
    import sw_ref.model  # the old import path keeps working

    assert nets.digits().__class__ is sw_ref.model.DigitsCNN


def test_efficientnet_lite0_is_the_pretrained_imagenet_network(lite0):
    assert not lite0.training
    with torch.no_grad():
        cat = lite0(photos.center_image("chelsea")).argmax(1).item()
        espresso = lite0(photos.center_image("coffee")).argmax(1).item()
    assert 281 <= cat <= 285  # the ImageNet cat classes
    assert espresso == 967


def test_folded_network_matches_the_module(lite0):
    x = photos.images("test", 2)
    folded = FoldedLite0(lite0)
    with torch.no_grad():
        a, b = lite0(x), folded(x)
    assert torch.allclose(a, b, atol=1e-3, rtol=1e-4)
    kinds = layer_kinds(lite0)
    assert list(kinds) == folded.layers()
    assert sum(k == "project" for k in kinds.values()) == 16
    assert sum(k == "depthwise" for k in kinds.values()) == 16


def test_photos_split_is_disjoint_and_deterministic():
    assert not set(photos.CALIB_PHOTOS) & set(photos.TEST_PHOTOS)
    test = photos.crops("test")
    assert len(test) >= 256 and len(set(test)) == len(test)
    assert {c[0] for c in test[: len(photos.TEST_PHOTOS)]} == set(photos.TEST_PHOTOS)
    a, b = photos.images_range("calib", 3, 5), photos.images("calib", 5)[3:]
    assert torch.equal(a, b) and a.shape == (2, 3, 224, 224)
    assert float(a.min()) >= -1.0 and float(a.max()) <= 1.0


@pytest.mark.parametrize("k,s", [(3, 1), (5, 2), (3, 2)])
def test_depthwise_windows_match_unfold(k, s):
    from sw_ref.nets.activations import _windows

    x = torch.randn(2, 9, 11, 5)
    (t, b), (l, r) = _same_pads(9, k, s), _same_pads(11, k, s)
    u = F.unfold(F.pad(x.permute(0, 3, 1, 2), (l, r, t, b)), k, stride=s)
    oh, ow = -(-9 // s), -(-11 // s)
    u = u.reshape(2, 5, k * k, oh * ow).permute(0, 3, 1, 2).reshape(-1, k * k)
    got = _windows(x, k, s, np.arange(2 * oh * ow * 5))
    np.testing.assert_array_equal(got, u.numpy())


def test_depthwise_window_conv_is_the_conv():
    """The window path (each channel's k x k window a vector) computes the depthwise conv."""
    from sw_ref.nets import photos
    from sw_ref.nets.efficientnet import FoldedLite0

    net = FoldedLite0()
    x = photos.images("test", 1)
    plain = net(x)
    seen = []

    def identity(name):
        if net.kinds[name] != "depthwise":
            return None
        return lambda rows: seen.append(rows.shape[1]) or rows

    windowed = net(x, windows=identity)
    assert sorted(set(seen)) == [9, 25] and len(seen) == 16
    torch.testing.assert_close(windowed, plain, rtol=0, atol=1e-4)
