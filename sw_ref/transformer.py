"""Quantized inference of MiniLM-L6 (``sw_ref.nets.minilm``) and its metrics.

Which activations are quantized how (the zero-point rule of the array, docs/overq-encoding.md
"Zero point"):

| layer inputs | values | quantizer |
|---|---|---|
| FFN output projections (``encoder.layer.i.output.dense``, 1536 -> 384) | GELU output, >= -0.17 | zero point z = GELU's minimum: q = round((x - z) / s), unsigned; OverQ encodes q |
| query / key / value, attention output, FFN input projection | LayerNorm outputs and attention context, signed | symmetric signed |

A scheme replaces the chosen ``nn.Linear`` layers of a copy of the model by
``QLinear``: optional weight OCS (the input gains duplicated channels), fake-quantized
weights, and an activation quantizer that sees the layer's input vectors [tokens, K]
exactly as the array would receive them (for OverQ: permuted by the channel order, in
tiles of R). Padding tokens are left alone (attention never reads them) and are not
counted. Metrics against FP32 on held-out sentences: mean cosine similarity of the
sentence embeddings, nearest-neighbour agreement, and each quantized layer's output
SQNR.
"""

from __future__ import annotations

import copy
import hashlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hw.params import ArrayConfig

from . import overq, quant, weights
from .nets import minilm as mini
from .nets import sentences as text

__all__ = [
    "Context",
    "FloorOverQAct",
    "FloorUniformAct",
    "QLinear",
    "SignedAct",
    "UnsignedAct",
    "cosine_and_nn",
    "make_context",
    "quantized_forward",
]

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "build" / "cache"


# --- activation quantizers: callables on [tokens, K] float32 tensors ------------------


@dataclass
class _Stats:
    outliers: int = 0
    handled: int = 0
    precise: int = 0
    slots: int = 0


@dataclass
class FloorUniformAct:
    """Zero point: q = clamp(round((x - z) / step), 0, 2^b - 1), back to q * step + z."""

    floor: float
    step: float
    bits: int
    stats: _Stats = field(default_factory=_Stats)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        q = quant.quantize(x, self.step, self.bits, floor=self.floor)
        self.stats.slots += x.numel()
        return quant.dequantize(q, self.step, dtype=x.dtype, floor=self.floor)


@dataclass
class UnsignedAct:
    """Plain unsigned quantizer: negative values become 0 (the post-ReLU grid)."""

    step: float
    bits: int
    stats: _Stats = field(default_factory=_Stats)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.stats.slots += x.numel()
        return quant.dequantize(quant.quantize(x, self.step, self.bits), self.step, dtype=x.dtype)


@dataclass
class SignedAct:
    """Symmetric signed quantizer (data without a floor)."""

    step: float
    bits: int
    stats: _Stats = field(default_factory=_Stats)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.stats.slots += x.numel()
        q = quant.quantize(x, self.step, self.bits, signed=True)
        return quant.dequantize(q, self.step, dtype=x.dtype)


def _floored(x, floor: float) -> np.ndarray:
    """x clamped to the floor, in float64 (a float32 clamp would round the floor itself
    to below z). Values under the floor come from a calibrated floor, or from float
    rounding at GELU's minimum; the uniform zero-point quantizer clamps alike."""
    return np.maximum(np.asarray(x, dtype=np.float64), floor)


def encode_floored(x: np.ndarray, step: float, cfg: ArrayConfig, floor: float):
    """OverQ-encode floored activations (``sw_ref.overq.encode(..., floor=z)``: the
    codes are those of x - z), after clamping them to the floor."""
    return overq.encode(_floored(x, floor), step, cfg, floor=floor)


@dataclass
class FloorOverQAct:
    """Zero point + OverQ: the vectors x[perm] - z, cut into tiles of R, go through
    ``sw_ref.overq.reconstruct`` (decode of encode); the decoded values are put back
    in channel order + z."""

    floor: float
    step: float
    cfg: ArrayConfig
    perm: np.ndarray | None = None
    stats: _Stats = field(default_factory=_Stats)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        a = x.detach().cpu().numpy()
        if self.perm is not None:
            a = a[:, self.perm]
        d, st = overq.reconstruct(_floored(a, self.floor), self.step, self.cfg, floor=self.floor)
        self.stats.outliers += st.outliers
        self.stats.handled += st.handled
        self.stats.precise += st.precise
        self.stats.slots += a.size
        d = torch.from_numpy(d)
        if self.perm is not None:
            out = torch.empty_like(d)
            out[:, torch.from_numpy(self.perm)] = d
            d = out
        return d.to(x.dtype)


# --- the quantized layer -------------------------------------------------------------


class _Tokens:
    """The real-token mask [B, T] of the batch being run (set by the caller)."""

    mask: torch.Tensor | None = None


class QLinear(nn.Module):
    """A Linear with (OCS-widened) fake-quantized weights and an activation quantizer.

    ``index`` (weight OCS) appends the input channels x[..., index]; ``act`` sees the
    real tokens' (widened) input vectors [n, K]. Outputs of real tokens are recorded
    for the SQNR against FP32.
    """

    def __init__(
        self,
        layer: nn.Linear,
        weight: torch.Tensor,
        act: Callable | None,
        tokens: _Tokens,
        index: torch.Tensor | None = None,
    ):
        super().__init__()
        self.bias = layer.bias
        self.register_buffer("weight", weight.detach().to(torch.float32))
        self.act, self.tokens, self.index = act, tokens, index
        self.outputs: list[torch.Tensor] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.index is not None:
            x = torch.cat([x, x[..., self.index]], dim=-1)
        keep = self.tokens.mask
        if self.act is not None:
            x = x.clone()
            x[keep] = self.act(x[keep])
        out = F.linear(x, self.weight, self.bias)
        self.outputs.append(out[keep].detach())
        return out


# --- context: model, sentences, FP32 references, calibration activations --------------


@dataclass
class Context:
    model: mini.MiniLM
    split: text.Split
    batches: list  # [(indices, ids, mask)] of the test sentences, by length
    fp32_emb: torch.Tensor  # [N, d] test embeddings
    fp32_nn: torch.Tensor  # [N] nearest other test sentence in FP32
    fp32_out: dict  # layer -> [tokens, O] FP32 outputs of real tokens, batch order
    calib: dict  # layer -> [tokens, K] float32 inputs of the calibration sentences
    _cache: dict = field(default_factory=dict)

    @property
    def n_test(self) -> int:
        return len(self.split.test)


def _batches(model: mini.MiniLM, sentences: list[str], batch_size: int):
    order = sorted(range(len(sentences)), key=lambda i: (len(sentences[i]), i))
    out = []
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = model.tokenize([sentences[i] for i in idx])
        out.append((torch.tensor(idx), ids, mask))
    return out


@torch.no_grad()
def _capture(model, batches, names) -> tuple[dict, dict, torch.Tensor]:
    """Inputs and outputs of the named layers on real tokens, and the embeddings."""
    ins = {n: [] for n in names}
    outs = {n: [] for n in names}
    tokens = _Tokens()
    handles = []
    for n in names:

        def hook(mod, inp, out, n=n):
            ins[n].append(inp[0][tokens.mask].detach())
            outs[n].append(out[tokens.mask].detach())

        handles.append(model.get_submodule(n).register_forward_hook(hook))
    n_sent = sum(len(b[0]) for b in batches)
    emb = torch.empty(n_sent, model.cfg.hidden)
    try:
        for idx, ids, mask in batches:
            tokens.mask = mask.bool()
            emb[idx] = model(ids, mask)
    finally:
        for h in handles:
            h.remove()
    return (
        {n: torch.cat(v) for n, v in ins.items()},
        {n: torch.cat(v) for n, v in outs.items()},
        emb,
    )


def nearest(emb: torch.Tensor) -> torch.Tensor:
    """Index of each row's most similar other row (cosine; rows are unit length)."""
    sim = emb @ emb.T
    sim.fill_diagonal_(-torch.inf)
    return sim.argmax(dim=1)


def cosine_and_nn(ctx: Context, emb: torch.Tensor) -> tuple[float, float, float]:
    """(mean cosine to FP32, minimum cosine, nearest-neighbour agreement)."""
    cos = F.cosine_similarity(emb.double(), ctx.fp32_emb.double(), dim=1)
    agree = (nearest(emb) == ctx.fp32_nn).double().mean()
    return float(cos.mean()), float(cos.min()), float(agree)


def _cache_key(split: text.Split, batch_size: int) -> str:
    d = mini.model_dir()
    h = hashlib.sha256()
    h.update(split.fingerprint.encode())
    h.update((d / "config.json").read_bytes())
    h.update(str((d / "model.safetensors").stat().st_size).encode())
    h.update(f"{torch.__version__} {batch_size} v1".encode())
    return h.hexdigest()[:16]


def make_context(
    n_calib: int = 128,
    n_test: int = 256,
    batch_size: int = 64,
    cache_dir: Path | None = DEFAULT_CACHE,
) -> Context:
    """The model, the sentence split, FP32 references and calibration activations of
    every linear layer's input (cached under ``cache_dir``, keyed by the sentences,
    the model and torch's version)."""
    model = mini.minilm_l6()
    sp = text.split(n_calib, n_test)
    batches = _batches(model, sp.test, batch_size)
    names = list(mini.linear_layer_kinds(model.cfg))
    path = None
    if cache_dir is not None:
        path = Path(cache_dir) / f"minilm_{_cache_key(sp, batch_size)}_{n_calib}_{n_test}.pt"
        if path.exists():
            data = torch.load(path)
            return Context(
                model, sp, batches, data["emb"], nearest(data["emb"]), data["out"], data["calib"]
            )
    calib, _, _ = _capture(model, _batches(model, sp.calibration, batch_size), names)
    _, out, emb = _capture(model, batches, names)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        os.close(fd)
        torch.save({"emb": emb, "out": out, "calib": calib}, tmp)
        os.replace(tmp, path)  # atomic: parallel test workers never see half a file
    return Context(model, sp, batches, emb, nearest(emb), out, calib)


# --- one quantized forward -----------------------------------------------------------


@dataclass
class LayerPlan:
    """How one linear layer is quantized: fake-quantized weights [O, K(+n)], the OCS
    index (or None) and the activation quantizer (or None for FP32 inputs)."""

    weight: torch.Tensor
    index: torch.Tensor | None = None
    act: Callable | None = None


@torch.no_grad()
def quantized_forward(ctx: Context, plans: dict[str, LayerPlan]) -> dict:
    """Run the test sentences with the planned layers replaced; metrics against FP32.

    Returns cosine (mean, min), nearest-neighbour agreement, per-layer output SQNR (dB,
    real tokens), and for OverQ activations outliers / handled / coverage.
    """
    model = ctx.model
    qmodel = copy.deepcopy(model, memo={id(model.tokenizer): model.tokenizer})
    tokens = _Tokens()
    layers = {}
    for name, plan in plans.items():
        parent, _, attr = name.rpartition(".")
        layer = QLinear(qmodel.get_submodule(name), plan.weight, plan.act, tokens, plan.index)
        setattr(qmodel.get_submodule(parent), attr, layer)
        layers[name] = layer
    emb = torch.empty_like(ctx.fp32_emb)
    for idx, ids, mask in ctx.batches:
        tokens.mask = mask.bool()
        emb[idx] = qmodel(ids, mask)
    cos, cos_min, agree = cosine_and_nn(ctx, emb)
    sqnr = {}
    for name, layer in layers.items():
        ref = ctx.fp32_out[name].double()
        err = float(((torch.cat(layer.outputs).double() - ref) ** 2).sum())
        sqnr[name] = float("inf") if err == 0 else 10 * np.log10(float((ref**2).sum()) / err)
    row = {
        "cosine": cos,
        "cosine_min": cos_min,
        "nn_agreement": agree,
        "sqnr_db": sqnr,
        # per test sentence, for the paired bootstrap of the claims (not in the report)
        "per_input": {
            "cosine": F.cosine_similarity(emb.double(), ctx.fp32_emb.double(), dim=1).tolist()
        },
    }
    stats = [p.act.stats for p in plans.values() if isinstance(p.act, FloorOverQAct)]
    if stats:
        seen = sum(s.outliers for s in stats)
        row["outliers"] = seen
        row["handled"] = sum(s.handled for s in stats)
        row["coverage"] = row["handled"] / seen if seen else 1.0
        row["precise"] = sum(s.precise for s in stats)
    return row


def ocs_split(w: torch.Tensor, ratio: float, bits: int) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Weight OCS on the grid of the split weights (as ``sw_ref.evaluate`` does): a plain
    split finds the threshold, the grid-aware split uses its step.
    Returns (w_split, index, step)."""
    w_split, index, alpha = weights.ocs_int_split(w, ratio, bits, "max")
    return w_split, index, float(quant.step_from_threshold(alpha, bits, signed=True))
