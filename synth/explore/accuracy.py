"""Fidelity of one point: the network run with the array's quantizers, against FP32.

The quantizers are the evaluation's (``sw_ref.evaluate`` and ``sw_ref.qnet``): weights
fake-quantized per tensor (int or APoT levels), activations either uniformly (no
OverQ) or OverQ-encoded along each layer's reduction axis in tiles of R, exactly as
the array receives them, then decoded. With ``order`` the reduction axis is first
permuted by ``sw_ref.overq.channel_order`` (computed once per layer and array from the
FP32 calibration activations, shared by the points that differ in their weights) and the result permuted back, which is the same as
permuting the weight rows. Each layer's output is compared with the FP32 network's
(SQNR in dB) and the network output with the fidelity metric of the workload.

Results are cached as one JSON file per point under ``build/cache/explore/``, keyed by
the workload's fingerprint, the quantizer settings, the point's accuracy-relevant
fields (R only matters with OverQ) and a digest of the quantizer sources, so a change
to one parameter recomputes only the points it touches.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from hw.params import ArrayConfig
from sw_ref import overq, quant
from sw_ref.evaluate import Scheme, quantize_weight
from sw_ref.qnet import (
    OverQAct,
    QuantLayer,
    UniformAct,
    layer_key,
    quant_layers,
    replace_layers,
    sqnr_db,
)

from .grid import Point
from .nets import Workload

__all__ = [
    "AccuracySettings",
    "Reference",
    "OrderedOverQAct",
    "accuracy_key",
    "evaluate_point",
    "cached_accuracy",
    "CACHE_DIR",
    "LazyReference",
]

CACHE_DIR = Path(__file__).resolve().parents[2] / "build" / "cache" / "explore"
_ROOT = Path(__file__).resolve().parents[2]
# Every source whose change can move a fidelity number.
# Bump when the way a point is evaluated here changes (the sw_ref sources a workload
# depends on are hashed into the key as they are: ``Workload.sources``).
VERSION = 2  # 2: per-input metrics (result["per_input"]) for bootstrap intervals


@dataclass(frozen=True)
class AccuracySettings:
    """How thresholds are chosen; the same for every point of one exploration.

    The activation threshold method is used by the baseline and the OverQ points
    alike, so OverQ is judged on what it adds at the same step. ``None`` takes the
    workload's own choice (ACIQ-Laplace on the digits CNN, its best plain clipping
    in docs/sw_ref_quant.md; MSE on MiniLM).
    """

    act_method: str | None = None
    weight_method: str = "mse"

    def for_workload(self, wl: Workload) -> "AccuracySettings":
        return self if self.act_method else replace(self, act_method=wl.act_method)


def _source_digest(sources) -> str:
    h = hashlib.sha256()
    for rel in sources:
        path = _ROOT / rel
        h.update(path.read_bytes() if path.exists() else b"")
    return h.hexdigest()[:16]


def accuracy_key(point: Point) -> dict:
    """The fields of a point that can change its fidelity (R only with OverQ)."""
    key = {
        "act_bits": point.act_bits,
        "weight_bits": point.weight_bits,
        "weight_format": point.weight_format,
        "overq": point.overq,
    }
    if point.overq_on:
        key.update(rows=point.rows, cascade=point.config().cascade, order=point.order)
    return key


class OrderedOverQAct(OverQAct):
    """OverQ on a permuted reduction axis: slots ``perm`` go to the array, then back."""

    def __init__(self, step: float, cfg: ArrayConfig, perm: np.ndarray):
        super().__init__(step, cfg)
        self.perm = torch.as_tensor(np.asarray(perm, dtype=np.int64))
        self.inverse = torch.argsort(self.perm)

    def __call__(self, patches: torch.Tensor) -> torch.Tensor:
        out = super().__call__(patches[..., self.perm])
        return out[..., self.inverse]


class _Collect:
    """An activation 'quantizer' that records the reduction vectors it is shown."""

    vectorwise = True

    def __init__(self):
        self.seen = None

    def __call__(self, patches: torch.Tensor) -> torch.Tensor:
        self.seen = patches.reshape(-1, patches.shape[-1]).detach()
        return patches


@dataclass
class Reference:
    """What every point of one workload shares: FP32 outputs and calibration data."""

    workload: Workload
    fp32_out: dict
    fp32_result: torch.Tensor
    calib_in: dict
    _thresholds: dict
    _vectors: dict
    _orders: dict = field(default_factory=dict)

    @classmethod
    @torch.no_grad()
    def build(cls, wl: Workload) -> "Reference":
        calib_in, _, _ = _capture(wl, wl.calib)
        _, fp32_out, result = _capture(wl, wl.inputs)
        return cls(wl, fp32_out, result, calib_in, {}, {})

    def threshold(self, key: str, bits: int, method: str) -> float:
        k = (key, bits, method)
        if k not in self._thresholds:
            x = self.calib_in[key] - self.workload.zero_points.get(key, 0.0)
            self._thresholds[k] = quant.threshold(x, bits, method, signed=False)
        return self._thresholds[k]

    @torch.no_grad()
    def reduction_vectors(self, key: str) -> torch.Tensor:
        """Calibration input of layer ``key`` as the array's vectors [N, K]."""
        if key not in self._vectors:
            layer = self.workload.model.get_submodule(key)
            probe = _Collect()
            QuantLayer(layer, layer.weight.detach(), probe, key, {})(self.calib_in[key])
            seen = probe.seen if probe.seen is not None else self.calib_in[key]
            self._vectors[key] = seen.reshape(-1, seen.shape[-1])
        return self._vectors[key]

    def channel_order(self, key: str, step: float, cfg: ArrayConfig) -> np.ndarray:
        """``overq.channel_order`` of layer ``key``'s calibration vectors, kept.

        It depends on the FP32 calibration vectors, the step and the array, not on
        the weights, so the points that differ only in their weights share it.
        """
        k = (key, step, cfg)
        if k not in self._orders:
            self._orders[k] = overq.channel_order(self.reduction_vectors(key).numpy(), step, cfg)
        return self._orders[k]


def _capture(wl: Workload, x):
    """FP32 (inputs, outputs) of every quantizable layer and the network output for ``x``."""
    inputs, outputs, handles = {}, {}, []
    for name, mod in quant_layers(wl.model):

        def hook(m, inp, out, key=layer_key(name)):
            inputs[key], outputs[key] = inp[0].detach(), out.detach()

        handles.append(mod.register_forward_hook(hook))
    try:
        result = wl.run(wl.model, x)
    finally:
        for h in handles:
            h.remove()
    return inputs, outputs, result


class LazyReference:
    """Builds the ``Reference`` on first use: a fully cached run never runs FP32."""

    def __init__(self, workload: Workload):
        self.workload = workload
        self._ref = None

    def get(self) -> Reference:
        if self._ref is None:
            self._ref = Reference.build(self.workload)
        return self._ref


def _activation(ref: Reference, key: str, point: Point, settings: AccuracySettings):
    alpha = ref.threshold(key, point.act_bits, settings.act_method)
    if not point.overq_on:
        return UniformAct(alpha, point.act_bits)
    cfg = point.config()
    step = quant.step_from_threshold(alpha, point.act_bits, signed=False)
    if point.order:
        return OrderedOverQAct(step, cfg, ref.channel_order(key, step, cfg))
    return OverQAct(step, cfg)


@torch.no_grad()
def evaluate_point(ref: Reference, point: Point, settings: AccuracySettings) -> dict:
    """Fidelity, per-layer SQNR and OverQ coverage of ``point`` (no cache)."""
    start = time.perf_counter()
    wl = ref.workload
    scheme = Scheme(
        "explore",
        point.label,
        point.weight_bits,
        point.act_bits,
        settings.weight_method,
        settings.act_method,
        w_format=point.weight_format,
    )
    record, acts = {}, {}

    def make(name, layer):
        key = layer_key(name)
        acts[key] = _activation(ref, key, point, settings)
        weight = quantize_weight(layer.weight.detach(), scheme)
        return QuantLayer(layer, weight, acts[key], key, record)

    qmodel = replace_layers(wl.model, make)
    out = wl.run(qmodel, wl.inputs)
    res = wl.fidelity(ref.fp32_result, out, wl.labels)
    res["sqnr_db"] = {k: sqnr_db(ref.fp32_out[k], record[k]) for k in ref.fp32_out}
    enc = [a for a in acts.values() if isinstance(a, OverQAct)]
    if enc:
        seen = sum(a.outliers for a in enc)
        res["outliers"] = seen
        res["coverage"] = sum(a.handled for a in enc) / seen if seen else 1.0
    res["seconds"] = round(time.perf_counter() - start, 3)
    return res


def _cache_file(cache_dir: Path, wl: Workload, point: Point, settings: AccuracySettings) -> Path:
    sources = wl.sources + (wl.order_sources if point.order else ())
    ident = {
        "net": wl.name,
        "fingerprint": wl.fingerprint,
        "settings": asdict(settings),
        "point": accuracy_key(point),
        "sources": _source_digest(sources),
        "version": VERSION,
    }
    digest = hashlib.sha256(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]
    return cache_dir / "accuracy" / wl.name / f"{digest}.json"


def _jsonable(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    return obj


def cached_accuracy(
    ref_or_wl, point: Point, settings: AccuracySettings, cache_dir: Path | None = CACHE_DIR
) -> tuple[dict, bool]:
    """(result, hit): from the cache if there, else computed and stored.

    ``ref_or_wl`` is a ``Reference`` or a ``LazyReference`` (then a run whose points
    are all cached never runs the FP32 network).
    """
    wl = ref_or_wl.workload
    path = _cache_file(cache_dir, wl, point, settings) if cache_dir is not None else None
    if path is not None and path.exists():
        return json.loads(path.read_text()), True
    if wl.evaluate is not None:  # a network with its own quantized evaluation
        start = time.perf_counter()
        res = wl.evaluate(point, settings)
        res["seconds"] = round(time.perf_counter() - start, 3)
    else:
        ref = ref_or_wl if isinstance(ref_or_wl, Reference) else ref_or_wl.get()
        res = evaluate_point(ref, point, settings)
    # Through JSON as the cache stores it (plain floats, sorted keys), so a fresh
    # result is the same as the cached one, down to the key order of the report.
    res = json.loads(json.dumps(_jsonable(res), sort_keys=True))
    if path is not None:
        store(path, res)
    return res, False


def store(path: Path, res: dict) -> None:
    """Write one cached result atomically, unless an entry is already there."""
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(res, indent=1, sort_keys=True))
    tmp.replace(path)
