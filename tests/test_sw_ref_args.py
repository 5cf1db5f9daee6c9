"""Bad data in the public functions of sw_ref: a ValueError or TypeError naming the argument.

One row per function and kind of bad input (NaN, inf, non-positive steps and
thresholds, integer or empty tensors, wrong shapes, wrong kinds); the checks live in
``sw_ref.checks``.
"""

import math

import numpy as np
import pytest
import torch
from torch import nn

from hw.params import ArrayConfig
from sw_ref import apot, checks, ocs, overq, quant

NAN, INF = math.nan, math.inf
X = torch.linspace(0.0, 1.0, 16).reshape(2, 8)
Q = torch.tensor([1, 2, 3])
CFG = ArrayConfig()
APOT = ArrayConfig(weight_format="apot")
W = torch.tensor([[0.5, -1.0, 0.25], [2.0, 0.75, -0.5]])


def _net():
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))


CASES = {
    # quant
    "fake_quant negative alpha": (
        lambda: quant.fake_quant(X, -1.0, 4),
        ValueError,
        "alpha must be a finite number >= 0, got -1.0",
    ),
    "fake_quant NaN alpha": (lambda: quant.fake_quant(X, NAN, 4), ValueError, "alpha must be"),
    "fake_quant negative channel alpha": (
        lambda: quant.fake_quant(X, torch.tensor([1.0, -1.0]), 4, axis=0),
        ValueError,
        "alpha must hold finite numbers >= 0, found -1.0",
    ),
    "dequantize NaN step": (
        lambda: quant.dequantize(Q, NAN),
        ValueError,
        "step must be a finite number > 0, got nan",
    ),
    "dequantize negative step": (
        lambda: quant.dequantize(Q, -1.0),
        ValueError,
        "step must be a finite number > 0, got -1.0",
    ),
    "dequantize zero step": (lambda: quant.dequantize(Q, 0.0), ValueError, "step must be"),
    "dequantize NaN code": (
        lambda: quant.dequantize(torch.tensor([1.0, NAN]), 1.0),
        ValueError,
        "q contains 1 NaN",
    ),
    "dequantize integer dtype": (
        lambda: quant.dequantize(Q, 1.0, dtype=torch.int32),
        TypeError,
        "dtype must be a floating-point torch dtype",
    ),
    "quantize inf step": (lambda: quant.quantize(X, INF, 4), ValueError, "step must be"),
    "quantize text step": (lambda: quant.quantize(X, "0.1", 4), TypeError, "step must be a number"),
    "quantize channel step <= 0": (
        lambda: quant.quantize(X, torch.tensor([0.1, 0.0]), 4, axis=0),
        ValueError,
        "step must hold finite numbers > 0, found 0.0",
    ),
    "quantize wrong channel count": (
        lambda: quant.quantize(X, torch.ones(3), 4, axis=0),
        ValueError,
        "per-channel step must have 2 entries",
    ),
    "quantize axis out of range": (
        lambda: quant.quantize(X, 0.1, 4, axis=5),
        ValueError,
        "axis must be in -2..1 for 2-d data, got 5",
    ),
    "quantize inf data": (
        lambda: quant.quantize(torch.tensor([INF]), 0.1, 4),
        ValueError,
        "x contains 0 NaN and 1 inf",
    ),
    "quantize complex data": (
        lambda: quant.quantize(torch.ones(2, dtype=torch.complex64), 0.1, 4),
        TypeError,
        "x must hold real numbers, got complex values",
    ),
    "quantize text data": (
        lambda: quant.quantize(["a"], 0.1, 4),
        TypeError,
        "x must hold real numbers",
    ),
    "step_from_threshold negative": (
        lambda: quant.step_from_threshold(-2.0, 4),
        ValueError,
        "alpha must be a finite number >= 0",
    ),
    "step_from_threshold text": (
        lambda: quant.step_from_threshold("x", 4),
        TypeError,
        "alpha must be a real number",
    ),
    "threshold bad bits": (lambda: quant.threshold(X, -3), ValueError, "bits must be an integer"),
    "threshold bad axis": (lambda: quant.threshold(X, 4, axis=7), ValueError, "axis must be in"),
    "threshold empty": (lambda: quant.threshold(torch.ones(0), 4), ValueError, "x is empty"),
    "max_threshold NaN": (
        lambda: quant.max_threshold(np.array([NAN, 1.0]), 4, False),
        ValueError,
        "x contains 1 NaN",
    ),
    "percentile_threshold empty": (
        lambda: quant.percentile_threshold(np.array([]), 4, False),
        ValueError,
        "x is empty",
    ),
    "aciq_threshold empty": (
        lambda: quant.aciq_threshold(np.array([]), 4, False),
        ValueError,
        "x is empty",
    ),
    "mse_threshold no bins": (
        lambda: quant.mse_threshold(np.ones(4), 4, False, n_bins=0),
        ValueError,
        "n_bins must be an integer >= 1",
    ),
    "kl_threshold inf": (
        lambda: quant.kl_threshold(np.array([INF]), 4, False),
        ValueError,
        "x contains 0 NaN and 1 inf",
    ),
    # ocs
    "split_weights integer tensor": (
        lambda: ocs.split_weights(torch.tensor([[3, 5], [1, 7]]), 0.5),
        TypeError,
        "w must be a floating-point tensor, got integers",
    ),
    "split_weights empty inputs": (
        lambda: ocs.split_weights(torch.zeros(2, 0), 0.5),
        ValueError,
        "w is empty (shape (2, 0))",
    ),
    "split_weights empty outputs": (
        lambda: ocs.split_weights(torch.zeros(0, 3), 0.5),
        ValueError,
        "w is empty (shape (0, 3))",
    ),
    "split_weights 1-d": (
        lambda: ocs.split_weights(torch.ones(3), 0.5),
        ValueError,
        "w needs shape [O, I, ...]",
    ),
    "split_weights NaN": (
        lambda: ocs.split_weights(torch.tensor([[NAN, 1.0]]), 0.5),
        ValueError,
        "w contains 1 NaN",
    ),
    "split_weights bad step, no split": (
        lambda: ocs.split_weights(W, 0.0, step=-1.0),
        ValueError,
        "step must be a finite number > 0",
    ),
    "split_weights bool ratio": (
        lambda: ocs.split_weights(W, True),
        ValueError,
        "expand_ratio must be in [0, 1]",
    ),
    "grid_split integer tensor": (
        lambda: ocs.grid_split(torch.tensor([3, 5]), 1.0),
        TypeError,
        "w must be a floating-point tensor",
    ),
    "grid_split text step": (
        lambda: ocs.grid_split(W, "a"),
        TypeError,
        "step must be a real number",
    ),
    "split_activations NaN peak": (
        lambda: ocs.split_activations(nn.Linear(3, 4), nn.Linear(4, 2), [NAN, 1, 1, 1], 0.5),
        ValueError,
        "channel_peak contains 1 NaN",
    ),
    "split_activations negative peak": (
        lambda: ocs.split_activations(nn.Linear(3, 4), nn.Linear(4, 2), [-1.0, 1, 1, 1], 0.5),
        ValueError,
        "channel_peak must hold finite numbers >= 0",
    ),
    "split_model unknown name": (
        lambda: ocs.split_model(_net(), 0.5, names=["nope"]),
        ValueError,
        "names lists layers that are not Conv2d/Linear layers",
    ),
    "split_model bad step": (
        lambda: ocs.split_model(_net(), 0.5, steps={"0": -1.0}),
        ValueError,
        "steps['0'] must be a finite number > 0",
    ),
    "split_model_activations missing peak": (
        lambda: ocs.split_model_activations(_net(), [("0", "2")], {}, 0.5),
        ValueError,
        "channel_peaks has no entry for the producer '0'",
    ),
    "merge_channels index outside": (
        lambda: ocs.merge_channels(torch.ones(2, 5), torch.tensor([7])),
        ValueError,
        "index must hold original channels 0..3, found 7",
    ),
    "merge_channels too many": (
        lambda: ocs.merge_channels(torch.ones(2, 2), torch.tensor([0, 0, 0])),
        ValueError,
        "index has 3 entries but y only 2 channels",
    ),
    "OCSInput float index": (
        lambda: ocs.OCSInput(nn.Linear(4, 2), torch.tensor([0.5])),
        TypeError,
        "index must be a 1-d integer tensor",
    ),
    # apot
    "apot.encode NaN": (
        lambda: apot.encode(np.array([NAN]), APOT),
        ValueError,
        "int_values must be whole numbers",
    ),
    "apot.decode out of range": (
        lambda: apot.decode(np.array([-1]), APOT),
        ValueError,
        "codes must be APoT codes in 0..15",
    ),
    "apot.decode text": (
        lambda: apot.decode(np.array(["1"]), APOT),
        TypeError,
        "codes must be integers",
    ),
    "apot.quantize negative alpha": (
        lambda: apot.quantize(np.ones(3), -1.0, APOT),
        ValueError,
        "alpha must be a finite number > 0",
    ),
    "apot.quantize inf weight": (
        lambda: apot.quantize(np.array([INF]), 1.0, APOT),
        ValueError,
        "w contains 0 NaN and 1 inf",
    ),
    "apot.config_for text": (
        lambda: apot.config_for("a"),
        TypeError,
        "cfg must be an ArrayConfig or weight_bits",
    ),
    # overq
    "encode no config": (
        lambda: overq.encode(X, 1.0, None),
        TypeError,
        "cfg must be an hw.params.ArrayConfig, got NoneType",
    ),
    "encode zero step": (lambda: overq.encode(X, 0.0, CFG), ValueError, "step must be"),
    "decode negative step": (
        lambda: overq.decode(np.zeros(8, int), np.zeros(8, int), -1.0, CFG),
        ValueError,
        "step must be",
    ),
    "decode shapes differ": (
        lambda: overq.decode(np.zeros(8, int), np.zeros(4, int), 1.0, CFG),
        ValueError,
        "values (8,) and states (4,) differ in shape",
    ),
    "golden weight outside the array's range": (
        lambda: overq.golden(np.full(8, 15), np.zeros(8, int), np.full((8, 8), 100), CFG),
        ValueError,
        "weights must be in -8..7 (4-bit int weights in integer units), found 100",
    ),
    "golden weight beyond int64": (
        lambda: overq.golden(np.ones(8, int), np.zeros(8, int), np.full((8, 1), 1e19), CFG),
        ValueError,
        "weights must fit in int64",
    ),
    "golden NaN weight": (
        lambda: overq.golden(np.ones(8, int), np.zeros(8, int), np.full((8, 1), NAN), CFG),
        ValueError,
        "weights must be whole numbers",
    ),
    "golden wrong shape": (
        lambda: overq.golden(np.ones(8, int), np.zeros(8, int), np.ones((7, 2), int), CFG),
        ValueError,
        "weights must be [K, C]",
    ),
    "golden no config": (
        lambda: overq.golden(np.ones(8, int), np.zeros(8, int), np.ones((8, 1), int), 8),
        TypeError,
        "cfg must be an hw.params.ArrayConfig",
    ),
    "codes NaN step": (
        lambda: overq.codes(X, NAN, CFG),
        ValueError,
        "step must be a finite number > 0",
    ),
    "codes inf floor": (
        lambda: overq.codes(X, 1.0, CFG, floor=INF),
        ValueError,
        "floor must be a finite number, got inf",
    ),
    "encode_codes negative": (
        lambda: overq.encode_codes(np.array([-1, 2]), CFG),
        ValueError,
        "codes (q) must be in 0..255",
    ),
    "golden_real negative weight_step": (
        lambda: overq.golden_real(
            np.ones(8, int), np.zeros(8, int), np.ones((8, 2), int), CFG, 1.0, -1.0
        ),
        ValueError,
        "weight_step must be a finite number > 0, got -1.0",
    ),
    "golden_real text weight_step": (
        lambda: overq.golden_real(
            np.ones(8, int), np.zeros(8, int), np.ones((8, 2), int), CFG, 1.0, "a"
        ),
        TypeError,
        "weight_step must be a real number, got ndarray array('a'",
    ),
    "encode_codes_reference NaN": (
        lambda: overq.encode_codes_reference([NAN], CFG),
        ValueError,
        "codes must be whole numbers",
    ),
    "activation_floor NaN": (
        lambda: quant.activation_floor(known=NAN),
        ValueError,
        "known must be a finite number, got nan",
    ),
    "quantize text floor": (
        lambda: quant.quantize(X, 0.1, 4, floor="a"),
        TypeError,
        "floor must be a real number",
    ),
    "dequantize NaN floor": (
        lambda: quant.dequantize(Q, 0.1, floor=NAN),
        ValueError,
        "floor must be a finite number",
    ),
    "encode_reference NaN": (
        lambda: overq.encode_reference([NAN, 1.0], 1.0, CFG),
        ValueError,
        "x contains 1 NaN",
    ),
    "encode_reference zero step": (
        lambda: overq.encode_reference([1.0], 0.0, CFG),
        ValueError,
        "step must be",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_data_raises_naming_the_argument(case):
    call, error, fragment = CASES[case]
    with pytest.raises(error) as caught:
        call()
    assert type(caught.value) is error  # not a subclass picked up by accident
    assert fragment in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_zero_threshold_clips_to_zero_and_keeps_other_channels():
    x = torch.tensor([[0.3, 0.7], [0.3, 0.7]])
    assert torch.equal(quant.fake_quant(x, 0.0, 4), torch.zeros_like(x))
    per_channel = quant.fake_quant(x, torch.tensor([0.0, 0.7]), 4, axis=0)
    assert torch.equal(per_channel[0], torch.zeros(2))
    assert torch.equal(per_channel[1], quant.fake_quant(x[1], 0.7, 4))


def test_elementwise_functions_map_an_empty_tensor_to_an_empty_one():
    assert quant.quantize(torch.zeros(0), 0.1, 4).shape == (0,)
    assert quant.dequantize(torch.zeros(0, dtype=torch.int64), 0.1).shape == (0,)
    assert apot.quantize(np.zeros(0), 1.0, APOT).values.shape == (0,)


def test_the_split_of_float_weights_still_computes_the_same_function():
    """The refusal of integer weights leaves the converted tensor working."""
    w = torch.tensor([[3, 5], [1, 7]])
    split, index = ocs.split_weights(w.double(), 0.5)
    x = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    assert torch.equal(torch.cat([x, x[:, index]], 1) @ split.T, x @ w.double().T)


def test_checks_accept_what_they_should():
    assert checks.positive(np.float32(0.5), "step") == 0.5
    assert checks.positive(torch.tensor(2.0), "step") == 2.0
    assert checks.nonnegative(0, "alpha") == 0.0
    assert checks.axis_index(-1, 3) == 2
    assert checks.integer_data(np.array([1.0, -2.0]), "codes").tolist() == [1, -2]
    t = torch.ones(2, dtype=torch.bfloat16)
    assert checks.real_data(t, "x") is t
