"""Real data: one conv layer of the digits CNN, lowered to tiles for the array.

The layer (``conv2`` of ``sw_ref.model.DigitsCNN`` by default) is lowered with
im2col to Y[n, o] = sum_k P[n, k] W[k, o] (k in PyTorch's unfold order: channel,
kernel row, kernel column). Activations P are quantized on a calibrated grid and
OverQ-encoded by ``sw_ref.overq.encode`` (in tiles of ``rows``; with the hardware
encoder, K is zero-padded to whole tiles first, as the array sees it, and the codes
are encoded by ``encode_codes``); weights are
quantized to the configuration's format (two's complement, or APoT codes via
``sw_ref.apot``). K is cut into tiles of R rows and the outputs into tiles of C
columns; every (k-tile, o-tile) pair is one weight load and one stream of all
vectors. The caller adds the k-tiles' outputs and compares the result bit for bit
with ``sw_ref.overq.golden`` over the whole K, and with the FP32 layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from hw.params import ArrayConfig
from sw_ref import apot, quant
from sw_ref.model import load_digits_split, load_model
from sw_ref.overq import codes as activation_codes
from sw_ref.overq import encode, encode_codes, golden
from sw_ref.qnet import capture, sqnr_db
from verif.ports import weight_codes

__all__ = ["LayerCase", "build_layer_case", "lower_matmul"]


@dataclass
class LayerCase:
    cfg: ArrayConfig
    layer: str
    images: int
    codes: np.ndarray  # [T, R, C] weight codes per tile
    values: np.ndarray  # [T, N, R] activation slots per tile
    states: np.ndarray  # [T, N, R]
    tile_index: list[tuple[int, int]]  # tile t -> (k-tile, o-tile)
    reference: np.ndarray  # [N, O] int64: golden over the whole K
    unit: float  # real value of one output LSB (an [O] array with per-channel weights)
    bias: np.ndarray  # [O]
    fp32: np.ndarray  # [N, O] the FP32 layer's output (bias included)
    act_step: float
    w_unit: float  # real value of one integer weight unit
    slots: np.ndarray  # [N, Kpad] encoded activation values (all k-tiles side by side)
    slot_states: np.ndarray  # [N, Kpad]
    weights: np.ndarray  # [Kpad, Opad] integer weights
    outliers: int
    handled: int
    act_codes: np.ndarray | None = None  # [T, N, R] codes for a_code (encoder only)

    @property
    def n_vectors(self) -> int:
        return self.values.shape[1]

    def save(self, path) -> None:
        extra = {} if self.act_codes is None else {"act_codes": self.act_codes}
        np.savez(path, codes=self.codes, values=self.values, states=self.states, **extra)

    def assemble(self, tile_outputs: np.ndarray) -> np.ndarray:
        """Per-tile array outputs [T, N, C] -> layer outputs [N, O] (k-tiles added)."""
        c = self.cfg.cols
        out = np.zeros((self.n_vectors, self.weights.shape[1]), dtype=np.int64)
        for t, (_, ot) in enumerate(self.tile_index):
            out[:, ot * c : (ot + 1) * c] += tile_outputs[t]
        return out[:, : self.reference.shape[1]]

    def float_error(self, ints: np.ndarray) -> dict:
        """How far the dequantized integer outputs (+ bias) are from the FP32 layer."""
        y = ints.astype(np.float64) * self.unit + self.bias[None, :]
        ref = self.fp32.astype(np.float64)
        err = y - ref
        return {
            "sqnr_db": sqnr_db(torch.from_numpy(ref), torch.from_numpy(y)),
            "rel_rms": float(np.sqrt((err**2).mean() / (ref**2).mean())),
            "max_abs": float(np.abs(err).max()),
            "fp32_max_abs": float(np.abs(ref).max()),
        }


def _quantized_weights(w: np.ndarray, cfg: ArrayConfig) -> tuple[np.ndarray, float]:
    """Integer weights [O, K] in cfg's format and the real value of one unit."""
    if cfg.weight_format == "apot":
        q = apot.quantize(w, float(np.abs(w).max()), cfg)
        return np.asarray(q.values, dtype=np.int64), float(q.scale)
    alpha = quant.threshold(torch.from_numpy(w), cfg.weight_bits, "max", signed=True)
    step = float(quant.step_from_threshold(alpha, cfg.weight_bits, signed=True))
    return quant.quantize(torch.from_numpy(w), step, cfg.weight_bits, signed=True).numpy(), step


def build_layer_case(
    cfg: ArrayConfig,
    images: int = 1,
    layer: str = "conv2",
    act_method: str = "mse",
    calib_images: int = 64,
) -> LayerCase:
    """The tiles, the bit-exact reference and the FP32 output of ``layer`` on the first
    ``images`` test images; activations calibrated (``act_method``) on training images."""
    model = load_model()
    x_tr, _, x_te, _ = load_digits_split()
    calib_in, _, _ = capture(model, x_tr[:calib_images])
    inputs, outputs, _ = capture(model, x_te[:images])
    conv = getattr(model, layer)
    if not isinstance(conv, torch.nn.Conv2d):
        raise ValueError(f"{layer} is not a Conv2d layer of the digits CNN")

    # im2col: P [N, K], W [K, O]
    def patches(x):
        p = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
        return p.transpose(1, 2).reshape(-1, p.shape[1]).double().numpy()

    p = patches(inputs[layer])
    w_real = conv.weight.detach().reshape(conv.out_channels, -1).double().numpy()
    o = w_real.shape[0]
    alpha = quant.threshold(calib_in[layer], cfg.act_bits, act_method, signed=False)
    step = alpha / cfg.act_max if alpha > 0 else 1.0
    fp32 = outputs[layer].permute(0, 2, 3, 1).reshape(-1, o).double().numpy()
    bias = conv.bias.detach().double().numpy() if conv.bias is not None else np.zeros(o)
    return lower_matmul(cfg, layer, images, p, w_real, step, bias, fp32)


def lower_matmul(
    cfg: ArrayConfig,
    layer: str,
    images: int,
    p: np.ndarray,
    w_real: np.ndarray,
    step: float,
    bias: np.ndarray,
    fp32: np.ndarray,
    w_per_channel: bool = False,
) -> LayerCase:
    """Y = P W^T + bias as array tiles: activations P [N, K] (>= 0) on the grid ``step``,
    real weights W [O, K] quantized to cfg's format, FP32 outputs [N, O] for the SQNR.

    ``w_per_channel`` (int weights): one weight step per output channel; the array's
    integer outputs are unchanged, only the per-column scale that turns them back into
    real values differs (``unit`` becomes an [O] array).
    """
    r, c = cfg.rows, cfg.cols
    k, o = p.shape[1], w_real.shape[0]
    if w_per_channel and cfg.weight_format == "int":
        rows = [_quantized_weights(row[None, :], cfg) for row in w_real]
        w_int = np.concatenate([q for q, _ in rows])
        w_unit = np.array([u for _, u in rows])
    else:
        w_int, w_unit = _quantized_weights(w_real, cfg)  # [O, K]
    kt, ot = -(-k // r), -(-o // c)
    vals = np.zeros((p.shape[0], kt * r), dtype=np.int64)
    sts = np.zeros_like(vals)
    slot_codes = None
    if cfg.encoder:
        # the array's encoder sees whole tiles: the padding slots are zero codes
        padded = np.zeros((p.shape[0], kt * r))
        padded[:, :k] = p
        slot_codes = np.asarray(activation_codes(padded, step, cfg), dtype=np.int64)
        enc = encode_codes(slot_codes, cfg)
        vals[:], sts[:] = enc.values, enc.states
    else:
        enc = encode(p, step, cfg)  # tiles of R along K, a partial last tile encoded alone
        vals[:, :k], sts[:, :k] = enc.values, enc.states
    w_pad = np.zeros((kt * r, ot * c), dtype=np.int64)
    w_pad[:k, :o] = w_int.T

    codes, values, states, index, act_codes = [], [], [], [], []
    for ti in range(kt):
        for tj in range(ot):
            if slot_codes is not None:
                act_codes.append(slot_codes[:, ti * r : (ti + 1) * r])
            codes.append(weight_codes(w_pad[ti * r : (ti + 1) * r, tj * c : (tj + 1) * c], cfg))
            values.append(vals[:, ti * r : (ti + 1) * r])
            states.append(sts[:, ti * r : (ti + 1) * r])
            index.append((ti, tj))
    reference = np.asarray(golden(vals, sts, w_pad, cfg), dtype=np.int64)[:, :o]
    unit = (
        step * w_unit / (1 << cfg.state_shifts[0])
    )  # docs/overq-encoding.md "The array": units of s*s_w (/2^b)
    return LayerCase(
        cfg=cfg,
        layer=layer,
        images=images,
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
        act_codes=np.stack(act_codes) if act_codes else None,
    )
