"""The digits CNN as integer engine commands, end to end (``make sim-network``).

Every layer of ``sw_ref.model.DigitsCNN`` that is a matrix product runs as one engine
command per image batch; the host does only what is no matrix product:

* conv1, conv2 (3 x 3, padding 1): im2col of the previous codes on the host (K = 9 and
  144), one command each, requantized to the next layer's codes (ReLU folded into the
  clamp at 0; code_max 2^CB - 1);
* the 2 x 2 max-pool on the host, on codes (a max commutes with the monotone
  requantizer), then the flatten;
* fc (512 -> 10): raw accumulators; logits = s (acc + bias), argmax on the host.

Quantization: input codes are the pixels (0..16, step 1/16: 16 is an outlier at b = 4),
weights per tensor round(w / s_w) with s_w = max|w| / (2^(WB-1) - 1), activation steps
max(calibration) / 3M (so real outliers reach the OverQ encoder), bias in accumulator
units, mult / 2^shift the rescale with 16-bit mult. ``run`` chains the layers with any
command runner: ``sw_ref.engine.run`` (the integer path) or the RTL (verif.tb_engine's
``network`` test); both must agree bit for bit at every layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.params import ArrayConfig, EngineConfig
from sw_ref import engine

__all__ = [
    "NETWORK_CONFIG",
    "IntLayer",
    "digits_layers",
    "digits_inputs",
    "run",
    "host_input",
    "model_command",
]

NETWORK_CONFIG = EngineConfig(ArrayConfig(), max_m=64, max_k=512, max_n=32)


@dataclass
class IntLayer:
    name: str
    w: np.ndarray  # [K, N] integer weights
    bias: np.ndarray
    mult: np.ndarray | None  # None: raw output
    shift: np.ndarray | None
    code_max: int | None
    scale: float  # real units of one accumulator step (for the logits)


def _requant(u: float, s_next: float):
    """mult, shift with mult / 2^shift ~ u / s_next and mult < 2^16 (largest shift)."""
    ratio = u / s_next
    for shift in range(47, -1, -1):
        mult = round(ratio * 2**shift)
        if mult < 1 << 16:
            return mult, shift
    raise ValueError(f"rescale {ratio} needs a mult above 16 bits")


def _im2col(codes: np.ndarray) -> np.ndarray:
    """[n, C, 8, 8] codes -> [n*64, C*9], column order (c, kh, kw) like W.reshape."""
    n, c, h, w = codes.shape
    padded = np.zeros((n, c, h + 2, w + 2), dtype=np.int64)
    padded[:, :, 1:-1, 1:-1] = codes
    cols = np.stack(
        [padded[:, :, i : i + h, j : j + w] for i in range(3) for j in range(3)], axis=2
    )
    return cols.reshape(n, c * 9, h * w).transpose(0, 2, 1).reshape(n * h * w, c * 9)


def host_input(index: int, y_prev: np.ndarray | None, n: int, images: np.ndarray) -> np.ndarray:
    """What the host sends as X for layer ``index`` given the previous layer's Y codes."""
    if index == 0:
        return _im2col(images)
    if index == 1:
        return _im2col(y_prev.reshape(n, 8, 8, -1).transpose(0, 3, 1, 2))
    maps = y_prev.reshape(n, 8, 8, -1).transpose(0, 3, 1, 2)  # [n, C, 8, 8]
    pooled = maps.reshape(n, maps.shape[1], 4, 2, 4, 2).max(axis=(3, 5))
    return pooled.reshape(n, -1)


def digits_inputs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel codes [n, 1, 8, 8] (0..16) and labels of the first n test images."""
    from sw_ref.model import PIXEL_MAX, load_digits_split

    _, _, x, y = load_digits_split()
    return np.rint(x[:n].numpy() * PIXEL_MAX).astype(np.int64), y[:n].numpy()


def digits_layers(cfg: EngineConfig = NETWORK_CONFIG, calib: int = 64) -> list[IntLayer]:
    import torch

    from sw_ref.model import PIXEL_MAX, load_digits_split, load_model

    model = load_model()
    a = cfg.array
    wmax = (1 << (a.weight_bits - 1)) - 1
    x_cal = load_digits_split()[0][:calib]
    with torch.no_grad():
        a1 = torch.relu(model.conv1(x_cal))
        a2 = torch.relu(model.conv2(a1))
    steps = [1.0 / PIXEL_MAX, float(a1.max()) / (3 * a.act_max), float(a2.max()) / (3 * a.act_max)]
    code_max = (1 << a.code_bits) - 1
    layers = []
    for index, (name, module) in enumerate(
        (("conv1", model.conv1), ("conv2", model.conv2), ("fc", model.fc))
    ):
        w = module.weight.detach().double().numpy()
        s_w = float(np.abs(w).max()) / wmax
        w_int = np.rint(w / s_w).astype(np.int64).reshape(w.shape[0], -1).T  # [K, N]
        u = steps[index] * s_w
        bias = np.rint(module.bias.detach().double().numpy() / u).astype(np.int64)
        if name == "fc":
            layers.append(IntLayer(name, w_int, bias, None, None, None, u))
            continue
        mult, shift = _requant(u, steps[index + 1])
        n_out = w_int.shape[1]
        layers.append(
            IntLayer(name, w_int, bias, np.full(n_out, mult), np.full(n_out, shift), code_max, u)
        )
    return layers


def run(layers: list[IntLayer], images: np.ndarray, command) -> list[np.ndarray]:
    """Each layer's Y (the fc's raw accumulators last), chaining through ``host_input``;
    ``command(x, layer)`` runs one layer (split into max_m-row commands by the caller)."""
    outputs, y = [], None
    for index, layer in enumerate(layers):
        x = host_input(index, y, images.shape[0], images)
        y = command(x, layer)
        outputs.append(y)
    return outputs


def model_command(cfg: EngineConfig = NETWORK_CONFIG):
    """``sw_ref.engine.run`` as a command runner, in commands of at most max_m rows."""

    def command(x, layer):
        parts = []
        for start in range(0, x.shape[0], cfg.max_m):
            rows = x[start : start + cfg.max_m]
            if layer.mult is None:
                acc = engine.run(rows, layer.w, None, None, None, None, cfg)
                parts.append(acc + layer.bias)  # the fc's bias is added on the host
            else:
                parts.append(
                    engine.run(
                        rows, layer.w, layer.bias, layer.mult, layer.shift, layer.code_max, cfg
                    )
                )
        return np.concatenate(parts)

    return command
