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
    result, report = run_layer(settings, 1, tmp_path, "effnet_pw", "channel", test_filter="layer")
    assert not result.failed, result.summary()
    assert report is not None and report["bit_exact"], report
    assert report["outliers"] > 0 and report["sqnr_db"] > 6, report


def test_verdict_needs_both_numbers_intervals_clear_of_zero_and_a_working_network():
    from sw_ref.claims import verdict

    rng = np.random.default_rng(0)
    n = 256
    base_kl = rng.exponential(0.2, n)
    base_top1 = (rng.random(n) < 0.7).astype(int)

    def r(top1, kl):
        return {
            "top1_agreement": float(np.mean(top1)),
            "kl": float(np.mean(kl)),
            "per_input": {"top1": list(top1), "kl": list(kl)},
        }

    base = r(base_top1, base_kl)
    fixed = base_top1.copy()
    fixed[np.flatnonzero(base_top1 == 0)[:40]] = 1  # 40 more crops agree
    broken = base_top1.copy()
    broken[np.flatnonzero(base_top1 == 1)[:40]] = 0
    assert verdict(r(fixed, base_kl * 0.5), base) == "yes"
    assert verdict(r(base_top1, base_kl * 0.5), base) == "yes"  # a tie on agreement, lower KL
    assert verdict(r(broken, base_kl * 0.5), base) == "partly"  # lower KL, lower agreement
    assert verdict(r(broken, base_kl * 1.5), base) == "no"
    # a difference inside the spread of the crops is no verdict either way
    jitter = base_kl * (1 + 0.01 * rng.standard_normal(n))
    swapped = base_top1.copy()
    swapped[[np.flatnonzero(base_top1 == 0)[0], np.flatnonzero(base_top1 == 1)[0]]] ^= 1
    assert verdict(r(swapped, jitter), base) == "within noise"
    # APoT W4 on EfficientNet-Lite0: both below 10 % agreement; KL decides nothing
    low = (np.arange(n) < 8).astype(int)
    assert verdict(r(low, base_kl * 14), r(low[::-1], base_kl * 15)).startswith("inconclusive")
    assert verdict(None, base) == "n/a"


def test_threshold_verdict_needs_the_interval_clear_of_the_target():
    from sw_ref.bootstrap import ratio_interval
    from sw_ref.claims import threshold_verdict

    outliers = np.full(2000, 2)
    assert (
        threshold_verdict(
            ratio_interval(np.full(2000, 2) * (np.arange(2000) % 20 > 0), outliers), 0.9
        )
        == "yes"
    )  # 0.95
    assert threshold_verdict(ratio_interval(2 * (np.arange(2000) % 5 > 0), outliers), 0.9) == "no"
    near = 2 * (np.arange(2000) % 10 > 0)  # exactly 0.90
    assert threshold_verdict(ratio_interval(near, outliers), 0.9) == "within noise"


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
    assert (
        both["sqnr_db"]["_blocks.1._depthwise_conv"]
        != pointwise["sqnr_db"]["_blocks.1._depthwise_conv"]
    )
