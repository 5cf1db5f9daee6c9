"""Quantized EfficientNet-Lite0 against FP32 on held-out photo crops, scheme by scheme.

There are no ImageNet labels here, so the FP32 network is the reference: each scheme
reports top-1 agreement (same class as FP32), top-5 agreement (FP32's class among the
quantized top 5), mean KL(softmax FP32 || softmax quantized) and every layer's
output SQNR against FP32 (on the first ``SQNR_IMAGES`` test crops).

Conventions (docs/sw_ref_claims.md):
- Batch norm is folded into the convs first; the folded weights are quantized,
  symmetric signed, per output channel or per tensor; the stem and the classifier
  keep 8-bit per-channel weights and 8-bit inputs in every row.
- Activations are quantized at every layer input, per tensor, from the calibration
  crops: unsigned for ReLU6 outputs (depthwise, projection and classifier inputs),
  signed symmetric for the linear-bottleneck outputs (expand and head inputs) and
  the image (stem).
- OverQ rows encode the projection (pointwise) inputs, the unsigned 1 x 1 convs
  whose reduction vector is one pixel's channels, in tiles of R; every other input
  stays at 8 bits so that the rows isolate the pointwise layers. Depthwise windows
  are covered by the coverage tables (sampled windows), not end to end: encoding
  every k x k window of the network is 15 times the slots of the pointwise inputs.
- OCS splits the weights of the expand, projection and head convs (1 x 1: a split
  input channel is a duplicated activation channel); a depthwise conv has one input
  channel per filter, so splitting it is not a channel split, and its weights stay
  per-channel at the same width in the OCS rows.
"""

from __future__ import annotations

import math
import sys
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch.nn import functional as F

from hw.params import STATE_RANGE, ArrayConfig

from . import overq, quant, runner, weights
from .nets.activations import LayerActs
from .nets.efficientnet import FoldedLite0

__all__ = [
    "EScheme",
    "Evaluator",
    "OVERQ_PERCENTILE",
    "overq_step",
    "build_schemes",
    "coverage_sweep",
]

CLIP_METHODS = ("max", "percentile", "mse", "aciq_laplace", "kl")
OVERQ_PERCENTILE = 99.0  # the OverQ step: this percentile of the positive inputs / (2^b - 1)
SQNR_IMAGES = 8
FIXED_8BIT = ("stem", "fc")
BATCH = 8


@dataclass(frozen=True)
class EScheme:
    """One row: how weights and activations of EfficientNet-Lite0 are quantized."""

    section: str
    label: str
    w_bits: int | None = None  # None: FP32 weights
    w_method: str = "max"
    w_per_channel: bool = True
    w_format: str = "int"  # int | apot
    dw_per_channel: bool | None = None  # depthwise weights per channel (None: w_per_channel)
    a_bits: int | None = None  # None: FP32 activations
    a_method: str = "max"
    pw_bits: int | None = None  # projection-input bits when they differ from a_bits
    pw_method: str | None = None  # projection-input clipping method (None: a_method)
    ocs_ratio: float = 0.0
    overq: str | None = None  # None: uniform; "none" / "range" / "range,precision": encoder
    cascade: int = 2
    rows: int = 8
    order: str = "natural"  # natural | channel
    # the OverQ rows' encoder (or, with overq="none", its step) on the depthwise inputs
    # too, each channel's k x k window one vector (pw_bits wide)
    depthwise: bool = False


def overq_step(values: np.ndarray, bits: int) -> float:
    """The OverQ grid step: the 99th percentile of the positive inputs / (2^b - 1)."""
    pos = values[values > 0]
    return float(np.percentile(pos, OVERQ_PERCENTILE)) / ((1 << bits) - 1) if pos.size else 1.0


def overq_cfg(s: EScheme) -> ArrayConfig:
    return ArrayConfig(
        rows=s.rows,
        act_bits=s.pw_bits or s.a_bits,
        overq=() if s.overq == "none" else s.overq,
        cascade=min(s.cascade, max(1, s.rows - 1)),
    )


# --- weights ------------------------------------------------------------------------


def _ocs(w: torch.Tensor, bits: int, method: str, ratio: float) -> torch.Tensor:
    """Grid-aware weight OCS on a [O, I] weight, quantized per tensor, folded back.

    The duplicated activation channels carry exact copies of quantized inputs, so the
    split layer equals the unsplit one with each split channel's two quantized halves
    added: that sum is what this returns (the network keeps its shape).
    """
    split, index, alpha = weights.ocs_int_split(w, ratio, bits, method)
    q = quant.fake_quant(split, alpha, bits, signed=True).to(w.dtype)
    out = q[:, : w.shape[1]].clone()
    out.index_add_(1, index, q[:, w.shape[1] :])
    return out


def quantized_weights(net: FoldedLite0, s: EScheme, cache: dict) -> dict:
    out = {}
    for name, kind in net.kinds.items():
        w = net.weights[name]
        if s.w_bits is None:
            continue
        if kind in FIXED_8BIT:
            key = (name, 8, "max", True, "int", 0.0)
        elif s.ocs_ratio and kind != "depthwise":
            key = (name, s.w_bits, s.w_method, False, "ocs", s.ocs_ratio)
        elif kind == "depthwise" and s.dw_per_channel is not None:
            key = (name, s.w_bits, s.w_method, s.dw_per_channel, s.w_format, 0.0)
        else:
            key = (name, s.w_bits, s.w_method, s.w_per_channel, s.w_format, 0.0)
        if key not in cache:
            _, bits, method, per_channel, fmt, ratio = key
            if fmt == "ocs":
                cache[key] = _ocs(w, bits, method, ratio)
            elif fmt == "apot":
                cache[key] = weights.apot_weights(w, bits, method, per_channel)
            else:
                cache[key] = weights.int_weights(w, bits, method, per_channel)
        out[name] = cache[key]
    return out


# --- activations ---------------------------------------------------------------------


class _Encoder:
    """OverQ encode + decode of NHWC pointwise inputs, optionally channel-ordered.

    With an order the decoded channels stay in array order (``x[..., perm]``): the
    layer takes its weight columns in the same order (``Evaluator.run``), which
    computes the same function without a second gather back to the natural order.
    """

    def __init__(
        self, step: float, cfg: ArrayConfig, perm: np.ndarray | None, windows: bool = False
    ):
        self.step, self.cfg, self.perm = step, cfg, perm
        self.windows = windows  # depthwise: called on k x k window rows, not the input
        self.outliers = self.handled = 0

    def __call__(self, t: torch.Tensor) -> torch.Tensor:
        rows = t.reshape(-1, t.shape[-1]).numpy()
        if self.perm is not None:
            rows = np.take(rows, self.perm, axis=1)
        dec, stats = overq.reconstruct(rows, self.step, self.cfg, dtype=np.float32)
        self.outliers += stats.outliers
        self.handled += stats.handled
        return torch.from_numpy(dec).reshape(t.shape)


class Evaluator:
    """Runs schemes on the test crops; thresholds and channel orders from calibration."""

    def __init__(
        self,
        calib: LayerActs,
        test: LayerActs,
        images: torch.Tensor,
        thresholds: dict | None = None,
        orders: dict | None = None,
    ):
        self.net = FoldedLite0()
        self.calib, self.test, self.images = calib, test, images
        self.fp32_logits = torch.from_numpy(test.logits[: len(images)])
        self.thresholds = thresholds if thresholds is not None else {}
        self.orders = orders if orders is not None else {}
        self._wcache: dict = {}
        self._fp32_out = None

    # thresholds and orders are computed in the parent process, then shared
    def threshold(self, name: str, bits: int, method: str) -> float:
        key = (name, bits, method)
        if key not in self.thresholds:
            vals = self.calib.values[name]
            signed = self.calib.signed[name]
            self.thresholds[key] = float(quant.threshold(vals, bits, method, signed=signed))
        return self.thresholds[key]

    def order(self, name: str, s: EScheme) -> np.ndarray | None:
        if s.order == "natural":
            return None
        cfg = overq_cfg(s)
        key = (name, cfg.rows, cfg.cascade, s.overq, cfg.act_bits)
        if key not in self.orders:
            step = overq_step(self.calib.values[name], cfg.act_bits)
            self.orders[key] = overq.channel_order(self.calib.vectors[name], step, cfg)
        return self.orders[key]

    def _acts(self, s: EScheme) -> dict:
        quants = {}
        for name, kind in self.net.kinds.items():
            signed = self.calib.signed[name]
            if kind == "stem":
                bits, method = (8, "max") if s.a_bits else (None, None)
            elif kind == "fc":
                bits, method = (8, "max") if s.a_bits else (None, None)
            elif kind == "project" and (s.pw_bits or s.overq):
                bits, method = s.pw_bits or s.a_bits, s.pw_method or s.a_method
            else:
                bits, method = s.a_bits, s.a_method
            if bits is None:
                continue
            if kind == "project" and s.overq is not None:
                cfg = overq_cfg(s)
                step = overq_step(self.calib.values[name], cfg.act_bits)
                quants[name] = _Encoder(step, cfg, self.order(name, s))
                continue
            if kind == "depthwise" and s.depthwise and s.overq is not None:
                cfg = overq_cfg(s)
                step = overq_step(self.calib.values[name], cfg.act_bits)
                quants[name] = _Encoder(step, cfg, None, windows=True)
                continue
            alpha = 1.0 if kind == "stem" else self.threshold(name, bits, method)
            quants[name] = (alpha, bits, signed)
        return quants

    def _fp32_outputs(self):
        if self._fp32_out is None:
            outs = {}
            self.net(self.images[:SQNR_IMAGES], out_hook=lambda n, y: outs.__setitem__(n, y))
            self._fp32_out = outs
        return self._fp32_out

    @torch.no_grad()
    def run(self, s: EScheme) -> dict:
        quants = self._acts(s)
        weights = quantized_weights(self.net, s, self._wcache)
        for name, q in quants.items():  # channel-ordered inputs meet weight columns alike
            if isinstance(q, _Encoder) and q.perm is not None:
                w = weights.get(name, self.net.weights[name])
                weights = {**weights, name: w[:, torch.from_numpy(q.perm)]}

        def windows(name):
            q = quants.get(name)
            return q if isinstance(q, _Encoder) and q.windows else None

        def quant_fn(name, t):
            q = quants.get(name)
            if q is None:
                return t
            if isinstance(q, _Encoder):
                return q(t)
            alpha, bits, signed = q
            return quant.fake_quant(t, alpha, bits, signed=signed)

        fp32_out = self._fp32_outputs()
        err = {n: 0.0 for n in fp32_out}
        logits = []
        for lo in range(0, len(self.images), BATCH):
            x = self.images[lo : lo + BATCH]
            hook = None
            if lo < SQNR_IMAGES:

                def hook(n, y, lo=lo):
                    ref = fp32_out[n][lo : lo + len(y)]
                    d = torch.sub(y, ref).reshape(-1)  # float32: 1e-4 dB is plenty
                    err[n] += float(torch.dot(d, d))

            logits.append(
                self.net(x, quant=quant_fn, weights=weights, out_hook=hook, windows=windows)
            )
        logits = torch.cat(logits)
        ref = self.fp32_logits
        top1 = ref.argmax(1)
        agrees = logits.argmax(1) == top1
        agree = float(agrees.float().mean())
        top5 = float((logits.topk(5, dim=1).indices == top1[:, None]).any(1).float().mean())
        kls = F.kl_div(
            F.log_softmax(logits.double(), 1),
            F.log_softmax(ref.double(), 1),
            reduction="none",
            log_target=True,
        ).sum(1)
        kl = float(kls.mean())
        sqnr = {}
        for n, e in err.items():
            ref = fp32_out[n].reshape(-1)
            sig = float(torch.dot(ref, ref))
            sqnr[n] = math.inf if e == 0 else 10 * math.log10(sig / e)
        row = {
            **asdict(s),
            "top1_agreement": agree,
            "top5_agreement": top5,
            "kl": kl,
            "sqnr_db": sqnr,
            # per test crop, for the paired bootstrap of the claims (not in the report)
            "per_input": {"top1": agrees.int().tolist(), "kl": kls.tolist()},
        }
        enc = [q for q in quants.values() if isinstance(q, _Encoder)]
        if enc:
            seen = sum(q.outliers for q in enc)
            row["outliers"] = seen
            row["coverage"] = sum(q.handled for q in enc) / seen if seen else 1.0
        return row


# --- running many schemes ------------------------------------------------------------


def _run_one(ev: Evaluator, s: EScheme) -> dict:
    import time

    t0 = time.perf_counter()
    row = ev.run(s)
    row["seconds"] = round(time.perf_counter() - t0, 2)
    return row


def _task(ev: Evaluator, task) -> object:
    """One task of ``run_all``: ("s", scheme) a row, ("c", (R, c)) coverage records."""
    kind, payload = task
    if kind == "s":
        return _run_one(ev, payload)
    rows, cascade = payload
    return coverage_sweep(ev.calib, ev.test, (rows,), (cascade,), progress=False)


def _cost(s: EScheme) -> int:
    """Rough order of a scheme's run time, longest first (a channel order to find,
    then the encoder, then the rest)."""
    return 2 * (s.order == "channel") + (s.overq is not None)


def run_all(
    ev: Evaluator, schemes, jobs: int = 2, progress: bool = True, coverage: tuple = ()
) -> tuple[list[dict], list[dict]]:
    """Run ``schemes`` and the coverage sweep's (R, c) points ``coverage`` on ``jobs``
    forked worker processes (``sw_ref.runner``, one torch thread each): (rows,
    coverage records).

    Thresholds and channel orders are computed where a scheme first needs them, in
    its worker, so both cores work from the start (a scheme's own thresholds are
    rarely another's). The longest schemes go first.
    """
    ev._fp32_outputs()
    order = sorted(range(len(schemes)), key=lambda i: -_cost(schemes[i]))
    tasks = [("s", schemes[i]) for i in order] + [("c", rc) for rc in coverage]
    if jobs <= 1:
        torch.set_num_threads(1)
    out = runner.run_tasks(
        _task, tasks, context=ev, jobs=jobs, progress=progress, desc="schemes + coverage"
    )
    results = [None] * len(schemes)
    for i, row in zip(order, out[: len(order)]):
        results[i] = row
    return results, [rec for part in out[len(order) :] for rec in part]


# --- the schemes ---------------------------------------------------------------------


def depthwise_schemes() -> list[EScheme]:
    """OverQ on the depthwise windows too (``--depthwise``; not in the default report:
    every k x k window is a vector, about 15 times the slots of the pointwise inputs)."""
    S = EScheme
    common = dict(a_bits=8, pw_bits=4, depthwise=True)
    return [
        S("overq-dw", "p99 step, no OverQ, dw too", 8, overq="none", **common),
        S("overq-dw", "range c=2 natural, dw too", 8, overq="range", **common),
        S("overq-dw", "range c=4 natural, dw too", 8, overq="range", cascade=4, **common),
    ]


def build_schemes(quick: bool = False) -> list[EScheme]:
    """The report's rows; ``quick`` keeps one or two per section (for tests)."""
    S = EScheme
    if quick:
        return [
            S("clip-act", "max", 8, "max", True, a_bits=4, a_method="max"),
            S("clip-act", "mse", 8, "max", True, a_bits=4, a_method="mse"),
            S("clip-weight", "max per-channel", 4, "max", True, a_bits=8),
            S("clip-weight", "max per-tensor", 5, "max", False, a_bits=8, dw_per_channel=True),
            S(
                "ocs",
                "max + OCS r=0.02",
                5,
                "max",
                False,
                a_bits=8,
                ocs_ratio=0.02,
                dw_per_channel=True,
            ),
            S("overq", "p99 step, no OverQ", 8, a_bits=8, pw_bits=4, overq="none"),
            S("overq", "range c=2 natural", 8, a_bits=8, pw_bits=4, overq="range"),
            S("overq", "range c=2 channel", 8, a_bits=8, pw_bits=4, overq="range", order="channel"),
            S("apot", "apot max per-channel", 4, "max", True, "apot", a_bits=8),
        ]
    rows: list[EScheme] = []
    for a in (4, 6, 8):
        methods = ("max", "mse") if a == 8 else CLIP_METHODS
        rows += [S("clip-act", m, 8, "max", True, a_bits=a, a_method=m) for m in methods]
    # per-tensor rows: the 1 x 1 convs per tensor, the depthwise filters per channel
    # (as OCS leaves them): they are the baselines of the OCS rows
    for w in (4, 5, 6, 8):
        rows.append(
            S("clip-weight", "max per-tensor", w, "max", False, a_bits=8, dw_per_channel=True)
        )
        rows.append(
            S("clip-weight", "mse per-tensor", w, "mse", False, a_bits=8, dw_per_channel=True)
        )
        rows.append(S("clip-weight", "max per-channel", w, "max", True, a_bits=8))
        rows.append(S("clip-weight", "mse per-channel", w, "mse", True, a_bits=8))
    for w in (6, 5, 4):
        for m in ("max", "mse"):
            rows.append(
                S(
                    "ocs",
                    f"{m} + OCS r=0.02",
                    w,
                    m,
                    False,
                    a_bits=8,
                    ocs_ratio=0.02,
                    dw_per_channel=True,
                )
            )
    for m in CLIP_METHODS:
        rows.append(S("overq", f"clip {m}", 8, a_bits=8, pw_bits=4, pw_method=m))
    rows.append(S("overq", "p99 step, no OverQ", 8, a_bits=8, pw_bits=4, overq="none"))
    for mode in ("range", "range,precision"):
        for c in (1, 2, 4) if mode == "range" else (2,):
            for order in ("natural", "channel"):
                rows.append(
                    S(
                        "overq",
                        f"{mode} c={c} {order}",
                        8,
                        a_bits=8,
                        pw_bits=4,
                        overq=mode,
                        cascade=c,
                        order=order,
                    )
                )
    for w in (4, 5):
        for m in ("max", "mse"):
            rows.append(S("apot", f"apot {m} per-channel", w, m, True, "apot", a_bits=8))
    return rows


# --- coverage on sampled vectors (no network run) ------------------------------------


PER_VECTOR_ROWS = 8  # the claims' array height: per-vector counts kept for its intervals


def _per_vector_outliers(x: np.ndarray, step: float, cfg: ArrayConfig) -> list[int]:
    return (np.asarray(overq.codes(x, step, cfg)) > cfg.act_max).sum(axis=1).tolist()


def _per_vector_handled(x: np.ndarray, step: float, cfg: ArrayConfig) -> list[int]:
    """Handled outliers per vector: each leaves exactly one RANGE slot."""
    return (np.asarray(overq.encode(x, step, cfg).states) == STATE_RANGE).sum(axis=1).tolist()


def coverage_sweep(
    calib: LayerActs,
    test: LayerActs,
    rows_set=(8, 16, 32, 64),
    cascades=(1, 2, 3, 4),
    modes=("range",),
    bits: int = 4,
    kinds=("project", "depthwise"),
    progress: bool = True,
) -> list[dict]:
    """OverQ coverage of every layer's sampled test vectors, natural vs channel order.

    The step is the OverQ step of the layer (calibration 99th percentile); the order
    is chosen on the calibration vectors (pointwise layers only: a depthwise window
    is one channel, so there is no channel to reorder).
    """
    from tqdm import tqdm

    out = []
    jobs = [(r, c, m) for r in rows_set for c in cascades for m in modes if c <= r - 1]
    for r, c, mode in tqdm(
        jobs, desc="coverage", unit="config", disable=not progress, file=sys.stderr
    ):
        cfg = ArrayConfig(rows=r, act_bits=bits, overq=mode, cascade=c)
        for name, kind in calib.kinds.items():
            if kind not in kinds:
                continue
            step = overq_step(calib.values[name], bits)
            x = test.vectors[name]
            st = overq.encode_stats(x, step, cfg)
            rec = {
                "layer": name,
                "kind": kind,
                "rows": r,
                "cascade": c,
                "mode": mode,
                "outliers": st.outliers,
                "handled_natural": st.handled,
            }
            if kind == "project":
                perm = overq.channel_order(calib.vectors[name], step, cfg)
                xp = np.ascontiguousarray(x[:, perm])
                rec["handled_channel"] = overq.encode_stats(xp, step, cfg).handled
                if r == PER_VECTOR_ROWS:  # per-vector counts for the claims' intervals
                    rec["per_vector"] = {
                        "outliers": _per_vector_outliers(x, step, cfg),
                        "handled_natural": _per_vector_handled(x, step, cfg),
                        "handled_channel": _per_vector_handled(xp, step, cfg),
                    }
                xc = calib.vectors[name]
                calib_natural = overq.encode_stats(xc, step, cfg)
                rec["calib_outliers"] = int(calib_natural.outliers)
                rec["calib_handled_natural"] = calib_natural.handled
                rec["calib_handled_channel"] = overq.encode_stats(
                    np.ascontiguousarray(xc[:, perm]), step, cfg
                ).handled
            out.append(rec)
    return out
