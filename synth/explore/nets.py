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
    kl = F.kl_div(
        F.log_softmax(out, 1), F.log_softmax(ref, 1), log_target=True, reduction="batchmean"
    )
    res = {"fidelity": agree, "agreement": agree, "kl": float(kl)}
    each = F.kl_div(
        F.log_softmax(out, 1), F.log_softmax(ref, 1), log_target=True, reduction="none"
    ).sum(1)
    res["per_input"] = {
        "agreement": (out.argmax(1) == ref.argmax(1)).double().tolist(),
        "kl": each.tolist(),
    }
    if labels is not None:
        res["top1"] = float((out.argmax(1) == labels).double().mean())
    return res


def embedding_fidelity(ref: torch.Tensor, out: torch.Tensor, labels=None) -> dict:
    """Mean cosine similarity of the quantized embeddings to the FP32 ones."""
    each = F.cosine_similarity(out.double(), ref.double(), dim=-1)
    cos = float(each.mean())
    return {"fidelity": cos, "cosine": cos, "per_input": {"cosine": each.tolist()}}


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
    # A network with its own quantized evaluation: evaluate(point, settings) -> result
    # dict with "fidelity" (then model/inputs/calib are not used here).
    evaluate: Callable | None = None
    supports: Callable = field(default=lambda point: True)
    unsupported: str = ""  # what ``supports`` leaves out, for the report
    act_method: str = "aciq_laplace"  # the activation threshold method by default
    weight_note: str = ""  # how weights are quantized, when not per-tensor int/APoT
    # Which step an OverQ point quantizes with (the report says it).
    overq_note: str = "OverQ points use the same step as the plain array and recover what it clips"
    # The sources whose numbers the results depend on (hashed into the cache key).
    sources: tuple = (
        "sw_ref/quant.py",
        "sw_ref/overq.py",
        "sw_ref/apot.py",
        "sw_ref/qnet.py",
        "sw_ref/evaluate.py",
        "sw_ref/model.py",
    )
    # Further sources of the points with a channel order only.
    order_sources: tuple = ("sw_ref/channel_order.py",)

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


def _overq_stats(row: dict) -> dict:
    """The encoder's counts of an evaluation row, when it had OverQ."""
    return {k: row[k] for k in ("outliers", "coverage") if k in row}


def _digits(n_eval: int | None = None, n_calib: int = 256) -> Workload:
    from sw_ref.model import TrainSettings, load_digits_split, load_model

    settings = TrainSettings()
    model = load_model(settings)
    x_tr, _, x_te, y_te = load_digits_split(settings.test_fraction, settings.seed)
    if n_eval is not None:
        x_te, y_te = x_te[:n_eval], y_te[:n_eval]
    return Workload(
        "digits",
        model,
        x_te,
        x_tr[:n_calib],
        y_te,
        notes=f"digits CNN, {len(x_te)} test images, {min(n_calib, len(x_tr))} "
        "calibration images (training set)",
    )


def _minilm(n_eval: int | None = None, n_calib: int | None = None) -> Workload:
    """all-MiniLM-L6-v2 through the transformer evaluation's own quantizers.

    The quantized activations are the inputs of the six FFN output projections (GELU
    outputs, zero point at GELU's minimum: the encoder sees x - z); every linear
    layer's weights are int, per output channel (``sw_ref.evaluate_transformer``).
    """
    import hashlib as _h

    from sw_ref import evaluate_transformer as et
    from sw_ref.nets import sentences
    from sw_ref.transformer import _cache_key, make_context

    n_calib, n_eval = n_calib or 128, n_eval or 256
    split = sentences.split(n_calib, n_eval)
    state = {}

    def evaluation():
        if "ev" not in state:
            state["ev"] = et.Evaluation(make_context(n_calib=n_calib, n_test=n_eval))
        return state["ev"]

    def evaluate(point, settings) -> dict:
        scheme = et.Scheme(
            a_bits=point.act_bits,
            a_mode="zero-point",
            a_method=settings.act_method,
            overq=point.overq if point.overq_on else None,
            cascade=point.config().cascade,
            rows=point.rows,
            order="channel" if point.order else "natural",
            w_bits=point.weight_bits,
        )
        ev = evaluation()
        row = ev.run(scheme)
        out = {
            "fidelity": row["cosine"],
            "cosine": row["cosine"],
            "cosine_min": row["cosine_min"],
            "nn_agreement": row["nn_agreement"],
            "sqnr_db": dict(row["sqnr_db"]),
            "per_input": row["per_input"],
        }
        if point.overq_on:  # how often a per-tile header of H events would overflow
            from sw_ref.transformer import FloorOverQAct

            from .formats import header_stats, sum_header_stats

            acts = {
                n: p.act for n, p in ev.plans(scheme).items() if isinstance(p.act, FloorOverQAct)
            }
            out["header"] = sum_header_stats(
                [
                    header_stats(ev.ctx.calib[n], a.step, a.cfg, a.perm, a.floor)
                    for n, a in acts.items()
                ]
            )
        return {**out, **_overq_stats(row)}

    key = _cache_key(split, 64)
    fingerprint = _h.sha256(f"{key} {n_calib} {n_eval}".encode()).hexdigest()[:16]
    return Workload(
        "minilm_l6",
        None,
        None,
        None,
        fidelity=embedding_fidelity,
        fidelity_name="mean cosine to the FP32 embeddings",
        notes=f"all-MiniLM-L6-v2, {n_eval} test and {n_calib} calibration sentences "
        "(pydoc topics); quantized: the FFN output projections' inputs (zero point "
        "at GELU's minimum) and every linear layer's weights",
        fingerprint=fingerprint,
        evaluate=evaluate,
        supports=lambda p: p.weight_format == "int",
        unsupported="APoT weights (the transformer evaluation quantizes int weights only)",
        act_method="mse",
        sources=(
            "sw_ref/quant.py",
            "sw_ref/overq.py",
            "sw_ref/transformer.py",
            "sw_ref/evaluate_transformer.py",
            "sw_ref/nets/minilm.py",
            "sw_ref/nets/sentences.py",
        ),
        weight_note="int, per output channel, max threshold (sw_ref.evaluate_transformer)",
    )


def _efficientnet_lite0(n_eval: int | None = None, n_calib: int | None = None) -> Workload:
    """EfficientNet-Lite0 through the claims report's evaluation (``sw_ref.effnet_eval``).

    A point is the array running the network's 1 x 1 convs (docs/explore.md,
    "EfficientNet-Lite0"): every layer input at ``act_bits`` except the stem and the
    classifier (8 bits); weights at the point's width and format, per output channel
    (stem and classifier 8-bit); OverQ, when on, encodes the projection convs' inputs
    in tiles of R with the evaluation's p99 step and, with ``order``, the channel
    order chosen on the calibration crops. The FP32 activations (thresholds, channel
    orders) come from ``sw_ref.nets.activations``' cache.
    """
    from sw_ref.nets import efficientnet, photos
    from sw_ref.nets.activations import DEFAULT_IMAGES

    n_eval = n_eval or DEFAULT_IMAGES["test"]
    n_calib = n_calib or DEFAULT_IMAGES["calib"]
    state = {}

    def evaluator():
        if "ev" not in state:
            from sw_ref.effnet_eval import Evaluator
            from sw_ref.nets.activations import efficientnet_lite0_acts

            calib = efficientnet_lite0_acts("calib", n_calib, progress=False)
            # FP32 pass over exactly the evaluated crops (cached; at the default 256 it
            # is the claims report's).
            test = efficientnet_lite0_acts("test", n_eval, progress=False)
            state["ev"] = Evaluator(calib, test, photos.images("test", n_eval))
        return state["ev"]

    def evaluate(point, settings) -> dict:
        from sw_ref.effnet_eval import EScheme

        scheme = EScheme(
            "explore",
            point.label,
            w_bits=point.weight_bits,
            w_method=settings.weight_method,
            w_per_channel=True,
            w_format=point.weight_format,
            a_bits=point.act_bits,
            a_method=settings.act_method,
            overq=point.overq if point.overq_on else None,
            cascade=point.cascade,
            rows=point.rows,
            order="channel" if point.order else "natural",
        )
        row = evaluator().run(scheme)
        each = row["per_input"]  # per test crop: top-1 agreement (0/1) and KL
        out = {
            "fidelity": row["top1_agreement"],
            "agreement": row["top1_agreement"],
            "kl": row["kl"],
            "top5_agreement": row["top5_agreement"],
            "sqnr_db": dict(row["sqnr_db"]),
            "per_input": {"agreement": [float(v) for v in each["top1"]], "kl": each["kl"]},
        }
        if point.overq_on:  # how often a per-tile header of H events would overflow
            from sw_ref.effnet_eval import _Encoder

            from .formats import header_stats, sum_header_stats

            ev = evaluator()
            encs = {n: q for n, q in ev._acts(scheme).items() if isinstance(q, _Encoder)}
            out["header"] = sum_header_stats(
                [header_stats(ev.test.vectors[n], q.step, q.cfg, q.perm) for n, q in encs.items()]
            )
        return {**out, **_overq_stats(row)}

    h = hashlib.sha256()
    with open(efficientnet.weights_path(), "rb") as f:
        h.update(f.read())
    h.update(repr((photos.crops("test")[:n_eval], photos.crops("calib")[:n_calib])).encode())
    return Workload(
        "efficientnet_lite0",
        None,
        None,
        None,
        notes=f"EfficientNet-Lite0 (ImageNet, batch norm folded), {n_eval} test crops of "
        f"{len(photos.TEST_PHOTOS)} photographs, {n_calib} calibration crops of "
        f"{len(photos.CALIB_PHOTOS)} others; FP32 is the reference. The array runs "
        "the 1x1 convs: every layer input at A bits (stem and classifier 8 bits; "
        "expand and head inputs signed), OverQ on the projection-conv inputs "
        "(p99 step); depthwise inputs uniform at A bits",
        fingerprint=h.hexdigest()[:16],
        evaluate=evaluate,
        act_method="mse",
        sources=(
            "sw_ref/quant.py",
            "sw_ref/overq.py",
            "sw_ref/overq_engine.py",
            "sw_ref/apot.py",
            "sw_ref/effnet_eval.py",
            "sw_ref/evaluate.py",
            "sw_ref/nets/efficientnet.py",
            "sw_ref/nets/activations.py",
            "sw_ref/nets/photos.py",
        ),
        order_sources=("sw_ref/channel_order.py",),
        overq_note="OverQ points encode the projection-conv inputs with the evaluation's "
        "OverQ step, the 99th percentile of the layer's positive calibration "
        "inputs / (2^A - 1); the plain points clip them at the threshold method's "
        "step",
        weight_note="per output channel at the point's width and format "
        "({weight_method} threshold), stem and classifier 8-bit "
        "(sw_ref.effnet_eval)",
    )


_BUILTIN = {"digits": _digits, "minilm_l6": _minilm, "efficientnet_lite0": _efficientnet_lite0}


def _registry():
    """``sw_ref.nets`` if it exists (it grows with the networks the project gains)."""
    try:
        return importlib.import_module("sw_ref.nets")
    except ImportError:
        return None


def available() -> list[str]:
    """Built-in workloads whose network this checkout has (``sw_ref.nets.NAMES``)."""
    reg = _registry()
    registered = set()
    if reg is not None:
        registered = set(reg.names())
    return sorted(n for n in _BUILTIN if n == "digits" or n in registered)


def get(name: str, n_eval: int | None = None, n_calib: int | None = None) -> Workload:
    """The workload ``name``; ``n_eval``/``n_calib`` cut the evaluation/calibration sets."""
    if name not in available():
        raise ValueError(f"unknown network {name!r}; available: {', '.join(available())}")
    kwargs = {"n_eval": n_eval}
    if n_calib is not None:
        kwargs["n_calib"] = n_calib
    return _BUILTIN[name](**kwargs)
