"""Real transformer data: one FFN output projection of MiniLM-L6, tiled for the array.

The layer is ``encoder.layer.{i}.output.dense`` (1536 -> 384) of
``sw_ref.nets.minilm_l6()``; its inputs are GELU outputs, so they take a zero point
z = GELU's minimum (docs/overq-encoding.md "Zero point"):

- Activations: the inputs of the first ``sentences`` test sentences (real tokens
  only). The step comes from the calibration sentences (``sw_ref.quant.threshold`` of
  x - z, ``method``); the channel order from ``sw_ref.overq.channel_order`` on the same
  data; the vectors x[perm] - z are OverQ-encoded in tiles of R.
- Weights: the configuration's format (two's complement, per-tensor max scale), their
  rows permuted by the same order, so the array computes y = sum_k q'_k W[perm_k].
- The true output is s * s_w * y + z * s_w * colsum(W) + b: the zero-point term is a
  constant per output column, known when the weights are loaded, and is folded into
  the bias here (as an accelerator would). The RTL output is compared with
  ``sw_ref.overq.golden`` bit for bit, and the corrected output with FP32 (SQNR).
"""

from __future__ import annotations

import numpy as np
import torch

from hw.params import ArrayConfig
from sw_ref import overq, quant
from sw_ref.nets import minilm as mini
from sw_ref.nets import sentences as text
from sw_ref.transformer import encode_floored
from verif.layer import LayerCase, _quantized_weights
from verif.ports import weight_codes

__all__ = ["build_minilm_case", "zero_point_correction"]


def zero_point_correction(w_int: np.ndarray, floor: float, w_unit: float) -> np.ndarray:
    """z * s_w * sum_k W[k, c] per output column c, for integer weights [K, C]."""
    return floor * w_unit * w_int.sum(axis=0).astype(np.float64)


@torch.no_grad()
def _layer_inputs(model, name: str, sentences: list[str]) -> torch.Tensor:
    """The layer's FP32 inputs on the real tokens of ``sentences``, [tokens, K]."""
    seen = []
    layer = model.get_submodule(name)
    handle = layer.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    try:
        for s in sentences:  # one at a time: no padding tokens
            model.embed([s])
    finally:
        handle.remove()
    return torch.cat([x.reshape(-1, x.shape[-1]) for x in seen])


def build_minilm_case(
    cfg: ArrayConfig,
    sentences: int = 2,
    layer: int = 0,
    method: str = "percentile",
    percentile: float = 99.0,
    n_calib: int = 128,
    order: bool = True,
    max_tokens: int | None = None,
) -> LayerCase:
    """The tiles, the bit-exact reference and the FP32 output of FFN output projection
    ``layer`` on the first ``sentences`` test sentences (at most ``max_tokens``)."""
    if cfg.weight_format != "int":
        raise ValueError("the MiniLM layer case uses int weights")
    model = mini.minilm_l6()
    name = mini.ffn_out_layers(model.cfg)[layer]
    sp = text.split(n_calib, max(sentences, 1))
    calib = _layer_inputs(model, name, sp.calibration).double().numpy()
    x = _layer_inputs(model, name, sp.test[:sentences]).double().numpy()
    if max_tokens is not None:
        x = x[:max_tokens]
    lin = model.get_submodule(name)
    w_real = lin.weight.detach().double().numpy()  # [O, K]
    b_real = lin.bias.detach().double().numpy()
    k, o = x.shape[1], w_real.shape[0]
    z = mini.GELU_MIN
    opts = {"percentile": percentile} if method == "percentile" else {}
    alpha = quant.threshold(calib, cfg.act_bits, method, signed=False, floor=z, **opts)
    step = float(quant.step_from_threshold(alpha, cfg.act_bits))
    if order and cfg.range_enabled:
        perm = overq.channel_order(np.maximum(calib - z, 0.0), step, cfg)
    else:
        perm = np.arange(k)
    enc = encode_floored(x[:, perm], step, cfg, z)
    w_int, w_unit = _quantized_weights(w_real, cfg)  # [O, K]
    w_perm = np.asarray(w_int)[:, perm].T  # [K, O], row k = weight of slot k

    r, c = cfg.rows, cfg.cols
    kt, ot = -(-k // r), -(-o // c)
    vals = np.zeros((x.shape[0], kt * r), dtype=np.int64)
    sts = np.zeros_like(vals)
    vals[:, :k], sts[:, :k] = enc.values, enc.states
    w_pad = np.zeros((kt * r, ot * c), dtype=np.int64)
    w_pad[:k, :o] = w_perm
    codes, values, states, index = [], [], [], []
    for ti in range(kt):
        for tj in range(ot):
            codes.append(weight_codes(w_pad[ti * r : (ti + 1) * r, tj * c : (tj + 1) * c], cfg))
            values.append(vals[:, ti * r : (ti + 1) * r])
            states.append(sts[:, ti * r : (ti + 1) * r])
            index.append((ti, tj))
    reference = np.asarray(overq.golden(vals, sts, w_pad, cfg), dtype=np.int64)[:, :o]
    unit = step * w_unit / (1 << cfg.state_shifts[0])
    bias = b_real + zero_point_correction(w_perm, z, w_unit)
    fp32 = x @ w_real.T + b_real
    return LayerCase(
        cfg=cfg,
        layer=f"MiniLM-L6 {name}",
        images=sentences,
        codes=np.stack(codes),
        values=np.stack(values),
        states=np.stack(states),
        tile_index=index,
        reference=reference,
        unit=unit,
        bias=bias,
        fp32=fp32,
        act_step=step,
        w_unit=w_unit,
        slots=vals,
        slot_states=sts,
        weights=w_pad,
        outliers=enc.stats.outliers,
        handled=enc.stats.handled,
    )
