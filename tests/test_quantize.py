"""sw_ref.quantize on models the project does not ship: a residual CNN with batch norm
and a depthwise block, a BERT encoder from a transformers config (random weights), and
a model whose forward takes a dict of tensors.

Each runs with OverQ, the channel order and OCS, and is checked for: the model itself
unchanged; the exact reparametrization (quantizers off: the model's function to float
rounding); the per-layer decisions; OverQ coverage equal to ``sw_ref.overq.encode_stats``
on the layer inputs captured in the same run (exact integer counts).

Tolerance of "the same function": the copy reorders float32 sums (channel order,
OCS halves w/2 + w/2, batch norm folded into the weights). Each output is a sum of at
most a few hundred products, so the reassociation error is of order K * 2^-24 of the
sum of |terms|: about 1e-5 of the output's scale after a few layers. 1e-4 of the
largest output magnitude holds that with margin and is three orders below the
quantization error the same tests see with the quantizers on.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import sw_ref
from sw_ref import overq, quant
from sw_ref.layers import QuantizedConv2d, QuantizedLayer

TOL = 1e-4  # of the largest output magnitude (see the module docstring)


def same_function(a: torch.Tensor, b: torch.Tensor) -> None:
    scale = float(b.abs().max())
    assert float((a - b).abs().max()) <= TOL * scale, float((a - b).abs().max()) / scale


def snapshot(model: nn.Module):
    return (
        {k: v.clone() for k, v in model.state_dict().items()},
        [(n, type(m)) for n, m in model.named_modules()],
        model.training,
    )


def unchanged(model: nn.Module, snap) -> None:
    state, kinds, training = snap
    now = model.state_dict()
    assert now.keys() == state.keys()
    assert all(torch.equal(now[k], state[k]) for k in state)
    assert [(n, type(m)) for n, m in model.named_modules()] == kinds
    assert model.training == training


def array_vectors(layer: QuantizedLayer, x: torch.Tensor) -> torch.Tensor:
    """The vectors the array receives for layer input x, built here from scratch:
    OCS duplicates appended, im2col channel-minor per group, then the channel order."""
    if layer.index is not None:
        axis = 1 if isinstance(layer, QuantizedConv2d) else -1
        x = torch.cat([x, x.index_select(axis, layer.index)], dim=axis)
    if isinstance(layer, QuantizedConv2d):
        xp = F.pad(x, layer._pads)
        kh, kw = layer.kernel_size
        cols = F.unfold(xp, layer.kernel_size, layer.dilation, 0, layer.stride)
        n, g = x.shape[0], layer.groups
        cg = x.shape[1] // g
        v = cols.reshape(n, g, cg, kh * kw, -1).permute(0, 4, 1, 3, 2)
        x = v.reshape(-1, kh * kw * cg)
    if layer.perm is not None:
        x = x[..., layer.perm]
    return x


def check_coverage(qmodel, batch) -> int:
    """Every OverQ layer's outliers/handled on ``batch`` equal encode_stats of the
    vectors built from its captured input; returns the outliers seen."""
    captured, hooks = {}, []
    for name, layer in qmodel.layers().items():
        hooks.append(
            layer.register_forward_pre_hook(
                lambda m, args, name=name: captured.__setitem__(name, args[0].detach().clone())
            )
        )
    qmodel.reset_stats()
    with torch.no_grad():
        sw_ref.quantized.call(qmodel, batch)
    for h in hooks:
        h.remove()
    seen = 0
    for name, layer in qmodel.layers().items():
        act = layer.act
        if act.kind != "overq":
            continue
        v = array_vectors(layer, captured[name]).clamp_min(act.floor)
        st = overq.encode_stats(v.numpy(), act.step, act.cfg, floor=act.floor)
        assert (act.outliers, act.handled) == (st.outliers, st.handled), name
        seen += st.outliers
    return seen


def check_ocs_grid(qmodel, model) -> int:
    """Grid-aware OCS: the codes of a split channel's parts add up to the code of the
    unsplit weight, per output channel (exact integers). ``model``: the float model
    (batch norm folded here as quantize folds it). Returns the splits seen."""
    folded = copy.deepcopy(model)
    sw_ref.quantized.fold_batchnorm(folded)
    splits = 0
    for name, layer in qmodel.layers().items():
        plan = qmodel.plans[name]
        if layer.index is None or plan.weight_alpha is None:
            continue
        bits = plan.scheme.weight_bits
        step = quant.step_from_threshold(plan.weight_alpha, bits, signed=True)
        axis = 0 if plan.scheme.per_channel else None
        w0 = folded.get_submodule(name).weight.detach()
        codes = quant.quantize(layer.weight, step, 16, signed=True, axis=axis)
        n_in = w0.shape[1]
        merged = codes[:, :n_in].clone().index_add_(1, layer.index, codes[:, n_in:])
        assert torch.equal(merged, quant.quantize(w0, step, 16, signed=True, axis=axis)), name
        splits += layer.index.numel()
    return splits


# --- 1. a residual CNN with batch norm and a depthwise block ---------------------------


class Residual(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + x)


class Depthwise(nn.Module):
    def __init__(self, c: int, mid: int):
        super().__init__()
        self.expand, self.bn0 = nn.Conv2d(c, mid, 1, bias=False), nn.BatchNorm2d(mid)
        self.dw, self.bn1 = (
            nn.Conv2d(mid, mid, 3, padding=1, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
        )
        self.project, self.bn2 = nn.Conv2d(mid, c, 1, bias=False), nn.BatchNorm2d(c)

    def forward(self, x):
        y = F.relu6(self.bn0(self.expand(x)))
        y = F.relu6(self.bn1(self.dw(y)))
        return self.bn2(self.project(y)) + x


class ResNetLike(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem, self.bn = (
            nn.Conv2d(3, 16, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(16),
        )
        self.res = Residual(16)
        self.block = Depthwise(16, 48)
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = self.block(self.res(x))
        return self.head(F.adaptive_avg_pool2d(F.relu(x), 1).flatten(1))


def randomise_bn(model: nn.Module, gen: torch.Generator) -> None:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(0.2 * torch.randn(n, generator=gen))
            m.running_var.copy_(0.5 + torch.rand(n, generator=gen))
            m.weight.data.copy_(0.5 + torch.rand(n, generator=gen))
            m.bias.data.copy_(0.2 * torch.randn(n, generator=gen))


@pytest.fixture(scope="module")
def cnn():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = ResNetLike()
    randomise_bn(model, gen)
    model.eval()
    calib = [torch.randn(8, 3, 16, 16, generator=gen) for _ in range(2)]
    test = torch.randn(4, 3, 16, 16, generator=gen)
    return model, calib, test


SCHEME = sw_ref.Scheme(
    act_bits=4,
    weight_bits=8,
    overq="range",
    rows=8,
    cascade=2,
    channel_order=True,
    ocs_ratio=0.1,
    clip="mse",
)


def test_cnn_decisions_reparametrization_and_coverage(cnn):
    model, calib, test = cnn
    snap = snapshot(model)
    qmodel = sw_ref.quantize(model, calib, SCHEME)
    unchanged(model, snap)
    plans = qmodel.plans
    assert set(plans) == {
        n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))
    }
    # batch norm folded into every conv; the image is signed, everything after a ReLU not
    assert all(plans[n].bn_folded for n in plans if n != "head")
    assert plans["stem"].signed and plans["stem"].input == "uniform"
    for name in ("res.conv1", "res.conv2", "block.expand", "block.dw", "block.project", "head"):
        assert not plans[name].signed and plans[name].input == "overq", name
        assert plans[name].floor == 0.0
    # OCS on the groups=1 layers only; the depthwise conv keeps its channels
    assert plans["block.dw"].ocs_splits == 0 and "grouped" in plans["block.dw"].note
    assert plans["block.project"].ocs_splits == math.ceil(0.1 * 48)
    assert check_ocs_grid(qmodel, model) > 0
    assert any(p.order == "channel" for p in plans.values())
    with torch.no_grad():
        ref = model(test)
        with qmodel.quantization(False):
            same_function(qmodel(test), ref)
        quantized = qmodel(test)
    assert float((quantized - ref).abs().max()) > 100 * TOL * float(ref.abs().max())
    assert check_coverage(qmodel, test) > 0
    report = qmodel.report([test])
    rows = {r["layer"]: r for r in report.rows}
    assert all(math.isfinite(rows[n]["sqnr_db"]) for n in rows)
    assert rows["block.dw"]["type"] == "Conv2d 3x3 g=48"
    assert "block.project" in str(report)
    unchanged(model, snap)


def test_float_scheme_keeps_the_function_and_the_reparametrizations(cnn):
    model, calib, test = cnn
    qmodel = sw_ref.quantize(
        model,
        calib,
        sw_ref.Scheme(act_bits=None, weight_bits=None, channel_order=True, ocs_ratio=0.1),
    )
    plans = qmodel.plans.values()
    assert all(p.input == "float" and p.weight == "float" for p in plans)
    assert any(p.order == "channel" for p in plans) and any(p.ocs_splits for p in plans)
    with torch.no_grad():
        same_function(qmodel(test), model(test))


def test_overrides_by_pattern(cnn):
    model, calib, _ = cnn
    scheme = sw_ref.Scheme(
        overrides={
            "head": dict(act_bits=8, overq=None),
            "block.*": dict(weight_bits=6, per_channel=False),
        }
    )
    plans = sw_ref.quantize(model, calib[:1], scheme).plans
    assert plans["head"].input == "uniform" and plans["head"].scheme.act_bits == 8
    assert plans["block.dw"].weight.startswith("int6 per-tensor")
    assert plans["res.conv1"].weight.startswith("int8 per-channel")
    with pytest.raises(ValueError, match="match no"):
        sw_ref.quantize(model, calib[:1], sw_ref.Scheme(overrides={"nothing*": dict(act_bits=8)}))
    with pytest.raises(ValueError, match="unknown fields"):
        sw_ref.Scheme(overrides={"head": dict(bits=8)})


# --- 2. a BERT encoder from a transformers config ------------------------------------


@pytest.fixture(scope="module")
def bert():
    transformers = pytest.importorskip("transformers")
    cfg = transformers.BertConfig(
        vocab_size=200,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=64,
        hidden_act="gelu",
    )
    torch.manual_seed(1)
    model = transformers.BertModel(cfg, add_pooling_layer=False).eval()
    gen = torch.Generator().manual_seed(1)

    def batch():
        ids = torch.randint(0, cfg.vocab_size, (4, 16), generator=gen)
        return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}

    return model, [batch() for _ in range(2)], batch()


def test_bert_gelu_zero_point_reparametrization_and_coverage(bert):
    model, calib, test = bert
    snap = snapshot(model)
    scheme = sw_ref.Scheme(
        act_bits=4, weight_bits=8, channel_order=True, ocs_ratio=0.05, clip="p99"
    )
    qmodel = sw_ref.quantize(model, calib, scheme)
    unchanged(model, snap)
    gelu_min = float(F.gelu(torch.linspace(-3, 0, 300001, dtype=torch.float64)).min())
    for i in range(2):
        p = qmodel.plans[f"encoder.layer.{i}.output.dense"]  # FFN output: GELU's output
        assert p.input == "overq" and not p.signed
        assert p.floor_source == f"encoder.layer.{i}.intermediate.intermediate_act_fn"
        assert p.floor == pytest.approx(gelu_min, abs=1e-6)
        for name in (
            "attention.self.query",
            "attention.self.key",
            "attention.self.value",
            "intermediate.dense",
        ):  # LayerNorm outputs: signed
            q = qmodel.plans[f"encoder.layer.{i}.{name}"]
            assert q.signed and q.input == "uniform" and q.floor == 0.0
    assert any(qmodel.plans[f"encoder.layer.{i}.output.dense"].ocs_splits for i in range(2))
    assert check_ocs_grid(qmodel, model) > 0
    with torch.no_grad():
        ref = model(**test).last_hidden_state
        with qmodel.quantization(False):
            same_function(qmodel(**test).last_hidden_state, ref)
    assert check_coverage(qmodel, test) > 0
    assert qmodel.config is qmodel.model.config  # the wrapper passes attributes through


# --- 3. a model whose forward takes a dict of tensors ---------------------------------


class TwoInputs(nn.Module):
    """An image branch and a feature branch (SiLU: bounded below) joined by a head."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.mlp = nn.Linear(12, 32)
        self.mix = nn.Linear(32, 32)
        self.head = nn.Linear(48, 5)

    def forward(self, inputs: dict) -> torch.Tensor:
        img = F.relu(self.conv(inputs["image"])).mean(dim=(2, 3))
        feat = self.mix(F.silu(self.mlp(inputs["features"])))
        return self.head(torch.cat([img, F.relu(feat)], dim=1))


def test_dict_input_model(cnn):
    torch.manual_seed(2)
    model = TwoInputs().eval()
    gen = torch.Generator().manual_seed(2)

    def batch():
        return {
            "image": torch.randn(8, 3, 8, 8, generator=gen),
            "features": 2 * torch.randn(8, 12, generator=gen),
        }

    calib, test = [batch() for _ in range(2)], batch()
    snap = snapshot(model)
    qmodel = sw_ref.quantize(model, calib, SCHEME)
    unchanged(model, snap)
    p = qmodel.plans
    assert p["conv"].signed and p["mlp"].signed  # raw inputs
    # F.silu is a function, not a module: torch.fx finds it, its minimum is the floor
    silu_min = float(F.silu(torch.linspace(-5, 0, 500001, dtype=torch.float64)).min())
    assert p["mix"].floor_source == "F.silu" and p["mix"].floor == pytest.approx(silu_min, abs=1e-6)
    assert p["head"].input == "overq" and not p["head"].signed
    with torch.no_grad():
        with qmodel.quantization(False):
            same_function(qmodel(test), model(test))
    check_coverage(qmodel, test)


# --- workloads by import path, the runner's cache and pool -----------------------------

WORKLOAD = """
import torch
from torch import nn

def make():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 4)).eval()
    gen = torch.Generator().manual_seed(3)
    calib = [torch.randn(32, 16, generator=gen)]
    test = [torch.randn(16, 16, generator=gen) for _ in range(2)]

    def metric(reference, outputs):
        ref, out = torch.cat(reference), torch.cat(outputs)
        return {"agreement": float((ref.argmax(1) == out.argmax(1)).double().mean())}

    return model, calib, test, metric
"""


def test_workload_by_import_path(tmp_path, monkeypatch):
    import json

    from sw_ref import evaluate

    (tmp_path / "user_workload.py").write_text(WORKLOAD)
    monkeypatch.syspath_prepend(str(tmp_path))
    argv = [
        "--net",
        "user_workload:make",
        "--act-bits",
        "4,8",
        "--channel-order",
        "on",
        "--override",
        "2:act_bits=6",
        "--jobs",
        "2",
        "--no-progress",
        "--json",
        str(tmp_path / "out.json"),
        "--results-cache",
        str(tmp_path / "cache"),
    ]
    assert evaluate.main(argv) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert out["computed"] == 2 and [r["scheme"]["act_bits"] for r in out["results"]] == [4, 8]
    for row in out["results"]:
        layers = {r["layer"]: r for r in row["layers"]}
        assert layers["2"]["act_bits"] == 6 and layers["0"]["signed"]
        assert 0.0 <= row["agreement"] <= 1.0
    assert evaluate.main(argv) == 0  # every row from the content-keyed cache
    again = json.loads((tmp_path / "out.json").read_text())
    assert again["computed"] == 0 and again["results"] == out["results"]
    assert evaluate.main(["--net", "user_workload:missing", "--no-progress"]) == 2


def test_bench_baseline_encoder_is_the_rule():
    """The plain numpy encoder ``make bench`` measures against gives encode's ports."""
    import numpy as np

    from hw.params import ArrayConfig
    from sw_ref.bench import plain_encode

    rng = np.random.default_rng(4)
    for rows, cascade in ((8, 1), (8, 2), (4, 3)):
        cfg = ArrayConfig(rows=rows, cascade=cascade)
        x = np.maximum(rng.standard_normal((400, 2 * rows)), 0).astype(np.float32)
        values, states, (outliers, handled) = plain_encode(x, 2.0 / 15, cfg)
        ref = overq.encode(x, 2.0 / 15, cfg)
        assert np.array_equal(values, ref.values) and np.array_equal(states, ref.states)
        assert (outliers, handled) == (ref.stats.outliers, ref.stats.handled)


class Untraceable(nn.Module):
    """Data-dependent control flow (torch.fx cannot trace it) around a functional GELU."""

    def __init__(self):
        super().__init__()
        self.up, self.down = nn.Linear(8, 64), nn.Linear(64, 8)

    def forward(self, x):
        h = F.gelu(self.up(x))
        if float(h.sum()) > -1e9:  # a Python branch on data
            h = h * 1.0
        return self.down(h)


def test_untraceable_model_floor_from_calibration():
    torch.manual_seed(5)
    model = Untraceable().eval()
    gen = torch.Generator().manual_seed(5)
    calib = [3 * torch.randn(256, 8, generator=gen)]
    qmodel = sw_ref.quantize(model, calib, SCHEME)
    assert any("not traced" in n for n in qmodel.notes)
    p = qmodel.plans["down"]
    gelu_min = float(F.gelu(torch.linspace(-3, 0, 300001, dtype=torch.float64)).min())
    assert p.floor_source == "calibration" and gelu_min <= p.floor < 0.9 * gelu_min
    assert p.input == "overq" and not p.signed
    x = torch.randn(16, 8, generator=gen)
    with torch.no_grad(), qmodel.quantization(False):
        same_function(qmodel(x), model(x))
