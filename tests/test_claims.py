"""The EfficientNet-Lite0 claims evaluation: the channel order on a real layer, the
co-simulation layer case, and the quick mode of ``python -m sw_ref.claims``."""

import json

import numpy as np
import pytest
import torch

from hw.params import ArrayConfig
from sw_ref import overq
from sw_ref.channel_order import order_coverage
from sw_ref.effnet_eval import overq_step


@pytest.fixture(scope="module")
def pw_layer():
    from verif.layers import effnet_inputs

    torch.set_num_threads(1)
    return effnet_inputs()


def test_channel_order_on_a_real_pointwise_layer(pw_layer):
    x, y, x_cal, w, bias = pw_layer
    cfg = ArrayConfig(rows=8, cascade=2)
    step = overq_step(x_cal.ravel(), cfg.act_bits)
    perm = overq.channel_order(x_cal, step, cfg)
    assert sorted(perm.tolist()) == list(range(x.shape[1]))
    seen, natural = order_coverage(x_cal, step, cfg)
    assert seen > 0 and order_coverage(x_cal, step, cfg, perm)[1] > natural
    # the layer's function is unchanged when inputs and weight columns move alike
    np.testing.assert_allclose(x[:, perm] @ w[:, perm].T + bias, y, rtol=1e-4, atol=1e-4)


def test_effnet_layer_case_is_consistent():
    from verif.layers import build

    cfg = ArrayConfig()
    cases = {o: build("effnet_pw", cfg, images=1, order=o) for o in ("natural", "channel")}
    for case in cases.values():
        ref = overq.golden(case.slots, case.slot_states, case.weights, cfg)
        np.testing.assert_array_equal(ref[:, : case.reference.shape[1]], case.reference)
        # W4/A4 tracks the FP32 layer (10.3 dB measured); a wrong scale or order is < 0 dB
        assert case.float_error(case.reference)["sqnr_db"] > 6
    nat, ch = cases["natural"], cases["channel"]
    assert nat.outliers == ch.outliers > 0  # same activations, another order
    assert ch.handled > nat.handled


def test_unknown_layer_or_order():
    from verif.layers import build

    with pytest.raises(ValueError, match="unknown layer"):
        build("nope", ArrayConfig())
    with pytest.raises(ValueError, match="no channel order"):
        build("digits_conv2", ArrayConfig(), order="channel")


def test_quick_claims_report(tmp_path):
    from sw_ref import claims

    assert claims.main(["--quick", "--no-progress", "--jobs", "1", "--out", str(tmp_path)]) == 0
    data = json.loads((tmp_path / "claims.json").read_text())
    rows = {r["label"]: r for r in data["results"]}
    for r in data["results"]:
        assert 0 <= r["top1_agreement"] <= r["top5_agreement"] <= 1 and r["kl"] >= 0
    # W8/A8 with 4-bit projection inputs stays close to FP32; range mode handles outliers
    assert rows["range c=2 natural"]["coverage"] > 0
    assert rows["range c=2 channel"]["coverage"] >= rows["range c=2 natural"]["coverage"] - 0.05
    assert rows["p99 step, no OverQ"]["coverage"] == 0
    text = (tmp_path / "claims.md").read_text()
    assert "| claim | paper | here | holds |" in text
    assert (tmp_path / "claims_coverage.png").stat().st_size > 0


def test_effnet_layer_through_the_rtl(tmp_path):
    """make sim LAYER=effnet_pw ORDER=channel: the RTL equals the golden model bit for bit."""
    from verif.config import RunSettings
    from verif.runner import available
    from verif.sim import run_layer

    if not available("icarus"):
        pytest.skip("icarus is not installed (make setup installs it)")
    settings = RunSettings(ArrayConfig(), seed=1, sim="icarus")
    result, report = run_layer(settings, 1, tmp_path, "effnet_pw", "channel",
                               test_filter="layer")
    assert not result.failed, result.summary()
    assert report is not None and report["bit_exact"], report
    assert report["outliers"] > 0 and report["sqnr_db"] > 6, report


def test_verdict_needs_both_numbers_and_a_working_network():
    from sw_ref.claims import verdict

    def r(agree, kl):
        return {"top1_agreement": agree, "kl": kl}

    assert verdict(r(0.80, 0.1), r(0.70, 0.2)) == "yes"
    assert verdict(r(0.70, 0.1), r(0.70, 0.2)) == "yes"  # a tie on agreement, lower KL
    assert verdict(r(0.60, 0.1), r(0.70, 0.2)) == "partly"  # lower KL, lower agreement
    assert verdict(r(0.80, 0.3), r(0.70, 0.2)) == "partly"
    assert verdict(r(0.60, 0.3), r(0.70, 0.2)) == "no"
    # APoT W4 on EfficientNet-Lite0: both below 10 % agreement; KL decides nothing
    assert verdict(r(0.039, 2.8), r(0.031, 3.1)).startswith("inconclusive")
    assert verdict(None, r(0.7, 0.2)) == "n/a"


def test_depthwise_rows_encode_the_windows_too():
    """--depthwise: the encoder also sees every depthwise k x k window (more outliers)."""
    from dataclasses import replace

    from sw_ref.effnet_eval import Evaluator, depthwise_schemes
    from sw_ref.nets import photos
    from sw_ref.nets.activations import efficientnet_lite0_acts

    calib = efficientnet_lite0_acts("calib", 8, progress=False)
    test = efficientnet_lite0_acts("test", 8, progress=False)
    ev = Evaluator(calib, test, photos.images("test", 2))
    dw = next(s for s in depthwise_schemes() if s.overq == "range" and s.cascade == 2)
    both, pointwise = ev.run(dw), ev.run(replace(dw, depthwise=False))
    assert both["outliers"] > pointwise["outliers"] > 0
    assert 0 < both["coverage"] < 1
    assert both["sqnr_db"]["_blocks.1._depthwise_conv"] != pointwise["sqnr_db"]["_blocks.1._depthwise_conv"]
