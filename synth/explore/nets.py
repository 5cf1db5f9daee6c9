"""The networks an exploration can run on, behind one small interface.

A ``Workload`` is a network with what its fidelity needs: the FP32 model, the inputs
it is judged on, calibration inputs, and the metric that says how close a quantized
run came to FP32. The digits CNN is built in; further networks come from
``sw_ref.nets`` when that registry is present (``sw_ref.nets.get(name)``), so the
exploration does not have to know how each one is loaded.

Fidelity is measured against the FP32 network, not the labels: agreement is the
share of inputs whose top-1 class is the FP32 network's, KL the mean
KL(FP32 softmax || quantized softmax) in nats; an embedding network reports the mean
cosine similarity of its embeddings instead. Every number a point records is a
function of the point and of ``Workload.fingerprint``, which names the weights and
the data (the accuracy cache is keyed by it).
"""

from __future__ import annotations

import hashlib
import importlib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.nn import functional as F

__all__ = ["Workload", "available", "get", "classifier_fidelity", "embedding_fidelity"]


def classifier_fidelity(ref: torch.Tensor, out: torch.Tensor, labels=None) -> dict:
    """Top-1 agreement with FP32, mean KL(FP32 || quantized) and, with labels, top-1."""
    ref, out = ref.double(), out.double()
    agree = float((out.argmax(1) == ref.argmax(1)).double().mean())
    kl = F.kl_div(F.log_softmax(out, 1), F.log_softmax(ref, 1), log_target=True,
                  reduction="batchmean")
    res = {"fidelity": agree, "agreement": agree, "kl": float(kl)}
    if labels is not None:
        res["top1"] = float((out.argmax(1) == labels).double().mean())
    return res


def embedding_fidelity(ref: torch.Tensor, out: torch.Tensor, labels=None) -> dict:
    """Mean cosine similarity of the quantized embeddings to the FP32 ones."""
    cos = float(F.cosine_similarity(out.double(), ref.double(), dim=-1).mean())
    return {"fidelity": cos, "cosine": cos}


@dataclass
class Workload:
    """A network ready to be quantized and judged.

    ``run(model, inputs)`` returns the network output for ``inputs`` (logits or
    embeddings); ``inputs``/``calib`` are whatever ``run`` takes (a tensor for the
    CNNs). ``zero_points`` maps a layer name to its activation floor z < 0 (GELU
    inputs), empty for post-ReLU networks. ``fidelity_name`` is what the plots call
    the fidelity number.
    """

    name: str
    model: torch.nn.Module
    inputs: object
    calib: object
    labels: object = None
    fidelity: Callable = classifier_fidelity
    fidelity_name: str = "top-1 agreement with FP32"
    run: Callable = field(default=lambda model, x: model(x))
    zero_points: dict = field(default_factory=dict)
    notes: str = ""
    fingerprint: str = ""

    def __post_init__(self):
        if not self.fingerprint:
            self.fingerprint = _fingerprint(self.model, self.inputs, self.calib)


def _fingerprint(model, inputs, calib) -> str:
    """Digest of the weights and of the evaluation and calibration data."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    for t in (inputs, calib):
        if isinstance(t, torch.Tensor):
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        else:
            h.update(repr(t).encode())
    return h.hexdigest()[:16]


def _digits(n_eval: int | None = None, n_calib: int = 256) -> Workload:
    from sw_ref.model import TrainSettings, load_digits_split, load_model

    settings = TrainSettings()
    model = load_model(settings)
    x_tr, _, x_te, y_te = load_digits_split(settings.test_fraction, settings.seed)
    if n_eval is not None:
        x_te, y_te = x_te[:n_eval], y_te[:n_eval]
    return Workload("digits", model, x_te, x_tr[:n_calib], y_te,
                    notes=f"digits CNN, {len(x_te)} test images, {min(n_calib, len(x_tr))} "
                          "calibration images (training set)")


_BUILTIN = {"digits": _digits}


def _registry():
    """``sw_ref.nets`` if it exists (it grows with the networks the project gains)."""
    try:
        return importlib.import_module("sw_ref.nets")
    except ImportError:
        return None


def available() -> list[str]:
    names = set(_BUILTIN)
    reg = _registry()
    if reg is not None and hasattr(reg, "names"):
        names |= set(reg.names())
    return sorted(names)


def get(name: str, n_eval: int | None = None, n_calib: int | None = None) -> Workload:
    """The workload ``name``; ``n_eval``/``n_calib`` cut the evaluation/calibration sets."""
    reg = _registry()
    if reg is not None and hasattr(reg, "workload"):
        wl = reg.workload(name, n_eval=n_eval, n_calib=n_calib)
        if wl is not None:
            return wl
    if name not in _BUILTIN:
        raise ValueError(f"unknown network {name!r}; available: {', '.join(available())}")
    kwargs = {"n_eval": n_eval}
    if n_calib is not None:
        kwargs["n_calib"] = n_calib
    return _BUILTIN[name](**kwargs)
