"""The MiniLM-L6 FFN output projection as array tiles (verif.minilm_layer), and a few of
its tiles through the generated RTL."""

from __future__ import annotations

import numpy as np
import pytest

from hw.params import ArrayConfig
from sw_ref.nets.minilm import GELU_MIN
from sw_ref.overq import golden, golden_real
from verif.minilm_layer import build_minilm_case, zero_point_correction

CFG = ArrayConfig(rows=8, cols=8, act_bits=4, weight_bits=8, overq="range", cascade=2)


@pytest.fixture(scope="module")
def case():
    return build_minilm_case(CFG, sentences=1, n_calib=16, max_tokens=3)


def test_case_shapes_and_reference(case):
    assert case.codes.shape == (192 * 48, 8, 8)
    assert case.values.shape == (192 * 48, 3, 8)
    assert case.reference.shape == (3, 384)
    # the reference is golden over the whole K, and the tiles add up to it
    tiles = np.stack(
        [
            golden(v, s, case.weights[ti * 8 : (ti + 1) * 8, tj * 8 : (tj + 1) * 8], CFG)
            for v, s, (ti, tj) in zip(case.values, case.states, case.tile_index)
        ]
    )
    np.testing.assert_array_equal(case.assemble(tiles), case.reference)


def test_zero_point_correction_is_golden_real(case):
    o = case.reference.shape[1]
    real = golden_real(
        case.slots,
        case.slot_states,
        case.weights[:, :o],
        CFG,
        case.act_step,
        case.w_unit,
        floor=GELU_MIN,
    )
    corr = zero_point_correction(case.weights[:, :o], GELU_MIN, case.w_unit)
    folded = case.reference * case.unit + case.bias  # the bias holds the correction
    np.testing.assert_allclose(real + (case.bias - corr), folded, rtol=1e-12, atol=1e-9)
    # Without the correction every column is off by a constant: the per-column mean
    # error is the correction itself; with it, only quantization noise is left.
    assert case.float_error(case.reference)["sqnr_db"] > 10
    off_with = np.abs((folded - case.fp32).mean(axis=0)).sum()
    off_without = np.abs((folded - corr - case.fp32).mean(axis=0)).sum()
    assert off_with < 0.5 * off_without


@pytest.mark.slow
def test_minilm_tiles_through_rtl(case, tmp_path):
    """A handful of the layer's real tiles (the first k-tiles of output tile 0) through
    the generated top on Icarus; every output is checked by the scoreboard."""
    from verif.config import RunSettings
    from verif.runner import available, run

    if not available("icarus"):
        pytest.skip("Icarus Verilog is not installed")
    pick = [t for t, (ti, tj) in enumerate(case.tile_index) if tj == 0][:6]
    npz = tmp_path / "tiles.npz"
    np.savez(npz, codes=case.codes[pick], values=case.values[pick], states=case.states[pick])
    settings = RunSettings(CFG, 1, "icarus", None, str(npz), str(tmp_path))
    result = run(settings, tmp_path / "build", test_filter="test_layer")
    assert result.ok, result.summary()
    y = np.load(tmp_path / "layer_outputs.npz")["y"]
    for t, out in zip(pick, y):
        ti, tj = case.tile_index[t]
        w = case.weights[ti * 8 : (ti + 1) * 8, tj * 8 : (tj + 1) * 8]
        np.testing.assert_array_equal(out, golden(case.values[t], case.states[t], w, CFG))
