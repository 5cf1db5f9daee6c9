"""Workloads: a model with its calibration batches, test batches and metric.

Every command that takes a network takes a workload: a built-in name (``digits``,
``efficientnet_lite0``, ``minilm_l6``) or an import path ``package.module:function``
whose function returns a ``Workload`` (or the tuple ``(model, calib, test, metric)``).
Batches are what the model takes (``sw_ref.quantized.call``: a tensor, a tuple of
positional arguments, or a dict). ``metric(reference, outputs)`` gets the FP32 and
the quantized outputs of the test batches (two lists) and returns {name: number}:
``classifier_metric`` (top-1 / top-5 agreement with FP32, KL), ``embedding_metric``
(cosine to FP32), ``labelled_metric(labels)`` (accuracy and agreement), or the user's
own callable.

``evaluate(workload, scheme)`` is one row: quantize, run the test batches, the metric,
the per-layer report (SQNR on the first test batch).
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from sw_ref.quantized import call, quantize
from sw_ref.scheme import Scheme

__all__ = [
    "BUILTIN",
    "Workload",
    "classifier_metric",
    "digits",
    "efficientnet_lite0",
    "embedding_metric",
    "evaluate",
    "labelled_metric",
    "load",
    "minilm_l6",
]


@dataclass
class Workload:
    """What a network evaluation needs (see the module docstring)."""

    name: str
    model: nn.Module
    calib: list
    test: list
    metric: Callable[[list, list], dict]
    overrides: dict = field(default_factory=dict)  # the network's fixed layers, if any


def _cat(outputs: list) -> torch.Tensor:
    return torch.cat([o.double() for o in outputs])


def classifier_metric(reference: list, outputs: list) -> dict:
    """Top-1 / top-5 agreement with the FP32 class and mean KL(FP32 || quantized)."""
    ref, out = _cat(reference), _cat(outputs)
    top1 = ref.argmax(1)
    k = min(5, ref.shape[1])
    return {
        "top1_agreement": float((out.argmax(1) == top1).double().mean()),
        "top5_agreement": float(
            (out.topk(k, dim=1).indices == top1[:, None]).any(1).double().mean()
        ),
        "kl": float(
            F.kl_div(
                F.log_softmax(out, 1), F.log_softmax(ref, 1), reduction="batchmean", log_target=True
            )
        ),
    }


def embedding_metric(reference: list, outputs: list) -> dict:
    """Mean and minimum cosine similarity of the outputs to FP32's."""
    cos = F.cosine_similarity(_cat(outputs), _cat(reference), dim=1)
    return {"cosine": float(cos.mean()), "cosine_min": float(cos.min())}


def labelled_metric(labels: torch.Tensor) -> Callable[[list, list], dict]:
    """Accuracy against ``labels`` (the test batches' labels, in order) and agreement."""

    def metric(reference: list, outputs: list) -> dict:
        out = _cat(outputs)
        return {
            "accuracy": float((out.argmax(1) == labels).double().mean()),
            "top1_agreement": classifier_metric(reference, outputs)["top1_agreement"],
        }

    return metric


# --- the built-in networks -------------------------------------------------------------


def digits(n_calib: int = 256) -> Workload:
    """The digits CNN (``sw_ref.nets.digits``, the shipped weights): 256 training images
    to calibrate, the test split (one batch), accuracy."""
    from sw_ref.nets.digits import TrainSettings, load_digits_split
    from sw_ref.nets.digits import digits as network

    settings = TrainSettings()
    x_tr, _, x_te, y_te = load_digits_split(settings.test_fraction, settings.seed)
    return Workload("digits", network(settings), [x_tr[:n_calib]], [x_te], labelled_metric(y_te))


EFFNET_FIXED_8BIT = {
    "_conv_stem": dict(act_bits=8, weight_bits=8, overq=None, clip="max"),
    "_fc": dict(act_bits=8, weight_bits=8, overq=None, clip="max"),
}


def efficientnet_lite0(n_calib: int = 64, n_test: int = 256, batch: int = 8) -> Workload:
    """EfficientNet-Lite0 on the photo crops (``sw_ref.nets.photos``): calibration and
    test crops in batches of 8, agreement with FP32; the stem and the classifier keep
    8-bit inputs and weights (``overrides``), as in the project's reports."""
    from sw_ref.nets import efficientnet, photos

    calib = photos.images("calib", n_calib)
    test = photos.images("test", n_test)
    return Workload(
        "efficientnet_lite0",
        efficientnet.efficientnet_lite0(),
        list(calib.split(batch)),
        list(test.split(batch)),
        classifier_metric,
        dict(EFFNET_FIXED_8BIT),
    )


def minilm_l6(n_calib: int = 128, n_test: int = 256, batch: int = 64) -> Workload:
    """all-MiniLM-L6-v2 on the held-out sentences (``sw_ref.nets.sentences``): batches
    of (ids, mask), sorted by length; cosine of the sentence embeddings to FP32."""
    from sw_ref.nets import minilm, sentences

    model = minilm.minilm_l6()
    split = sentences.split(n_calib, n_test)

    def batches(texts):
        texts = sorted(texts, key=len)
        return [model.tokenize(texts[i : i + batch]) for i in range(0, len(texts), batch)]

    return Workload(
        "minilm_l6", model, batches(split.calibration), batches(split.test), embedding_metric
    )


BUILTIN = {
    "digits": "sw_ref.workloads:digits",
    "efficientnet_lite0": "sw_ref.workloads:efficientnet_lite0",
    "minilm_l6": "sw_ref.workloads:minilm_l6",
}


def load(spec: str, **options) -> Workload:
    """The workload ``spec``: a built-in name or ``package.module:function``."""
    target = BUILTIN.get(spec, spec)
    module, sep, func = target.partition(":")
    if not sep or not module or not func:
        raise ValueError(
            f"unknown network {spec!r}: give one of {', '.join(BUILTIN)} or package.module:function"
        )
    try:
        fn = getattr(importlib.import_module(module), func)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"cannot load workload {spec!r}: {exc}") from None
    wl = fn(**options)
    if isinstance(wl, Workload):
        return wl
    if isinstance(wl, tuple) and len(wl) == 4:
        return Workload(spec, *wl)
    raise ValueError(
        f"{spec} must return a Workload or (model, calib, test, metric), got {type(wl).__name__}"
    )


@torch.no_grad()
def evaluate(wl: Workload, scheme: Scheme, reference: list | None = None) -> dict:
    """One row: the metric of ``scheme`` on the test batches, the per-layer report
    (SQNR on the first test batch; coverage on all of them), and the seconds it took."""
    t0 = time.perf_counter()
    if reference is None:
        reference = [call(wl.model, b) for b in wl.test]
    qmodel = quantize(wl.model, wl.calib, scheme)
    t_cal = time.perf_counter() - t0
    sqnr = qmodel.compare(wl.test[:1])
    qmodel.reset_stats()
    outputs = [call(qmodel, b) for b in wl.test]
    report = qmodel.report()
    for row in report.rows:
        if row["layer"] in sqnr:
            row["sqnr_db"] = sqnr[row["layer"]]
    seen = sum(r.get("outliers", 0) for r in report.rows)
    handled = sum(r.get("handled", 0) for r in report.rows)
    return {
        "net": wl.name,
        "scheme": scheme.to_dict(),
        **wl.metric(reference, outputs),
        "outliers": seen,
        "coverage": handled / seen if seen else 1.0,
        "layers": report.rows,
        "notes": report.notes,
        "calibration_seconds": round(t_cal, 2),
        "seconds": round(time.perf_counter() - t0, 2),
    }
