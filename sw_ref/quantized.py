"""``sw_ref.quantize(model, calib, scheme)``: bring your own model (``QuantizedModel``).

Three steps on a deep copy (the model itself is never touched):

1. **Fold** every BatchNorm2d that directly follows a Conv2d into it (found with
   ``torch.fx`` where the model traces; a model that does not trace, e.g. a
   transformer with data-dependent control flow, keeps its batch norms and says so).
2. **Replace** every Conv2d and Linear (grouped and depthwise convs included) by a
   ``sw_ref.layers.QuantizedConv2d`` / ``QuantizedLinear``.
3. **Calibrate** on ``calib`` (an iterable of input batches: tensors, tuples of
   positional arguments, or dicts of keyword arguments; one tensor or dict is one
   batch) with FP32 activations, then decide per layer, with the layer's scheme
   (``Scheme.for_layer``):

   - the input: unsigned when calibration never saw a negative value; a zero point at
     the floor when the input is bounded below: the output of a GELU / SiLU / ELU-like
     module or function (its minimum, computed from it; functions found by
     ``torch.fx``), or else data whose minimum is a small
     negative number next to a large maximum (min >= -0.3 and max >= 8 |min|: the
     calibrated minimum); signed otherwise;
   - the step: the clipping method ``scheme.clip`` of ``sw_ref.quant`` on x (x - z
     with a floor; |x| signed), or ``p99``;
   - OverQ (``scheme.overq``) for unsigned and floored inputs; signed inputs take the
     symmetric uniform quantizer (the array's encoder needs x >= floor);
   - OCS (``scheme.ocs_ratio``, groups = 1 only): ``sw_ref.ocs.split_weights`` on the
     grid of the split weights' own step (int weights; per channel: one step per
     output channel), so that Q(w1) + Q(w2) == Q(w);
   - the channel order (``scheme.channel_order``, OverQ range inputs):
     ``sw_ref.channel_order.channel_order`` on the calibration vectors;
   - the weights: ``sw_ref.weights`` (int or APoT, per channel or per tensor).

``act_bits=None`` keeps inputs in float and ``weight_bits=None`` weights, while OCS
and the channel order are still planned (for the array's default 4-bit codes) and
applied: the copy then computes the model's function to float rounding.
"""

from __future__ import annotations

import contextlib
import copy
import inspect
import math
import re
import zlib
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from sw_ref import channel_order as _order
from sw_ref import ocs, overq, quant, weights
from sw_ref.layers import InputQuantizer, QuantizedConv2d, QuantizedLayer, QuantizedLinear, pick
from sw_ref.scheme import Scheme

__all__ = ["LayerPlan", "QuantizedModel", "call", "fold_batchnorm", "quantize", "sqnr_db"]

VALUES_PER_BATCH = 1 << 14
VALUES_PER_LAYER = 1 << 16
VECTORS_PER_BATCH = 1024
VECTORS_PER_LAYER = 4096
FLOOR_MIN = -0.3  # a calibrated floor at most this far below 0 ...
FLOOR_RATIO = 8.0  # ... with a maximum this many times larger
# modules whose output is bounded below by a negative minimum (a zero point's floor)
_BOUNDED = (nn.GELU, nn.SiLU, nn.Mish, nn.Hardswish, nn.ELU, nn.CELU, nn.SELU)
_BOUNDED_NAME = re.compile(r"GELU|SiLU|Swish|Mish", re.IGNORECASE)


def call(model, batch):
    """``model(batch)``: a tuple/list is the positional arguments; a dict the keyword
    arguments when its keys are ``forward``'s parameter names (a transformers model's
    ``input_ids``, ``attention_mask``), else one argument (a model that takes a dict);
    anything else (a tensor) one argument."""
    if isinstance(batch, (tuple, list)):
        return model(*batch)
    if isinstance(batch, dict) and _takes_keywords(model, batch):
        return model(**batch)
    return model(batch)


def _takes_keywords(model, batch: dict) -> bool:
    target = model.model if isinstance(model, QuantizedModel) else model
    try:
        params = inspect.signature(target.forward).parameters
    except (TypeError, ValueError):
        return True
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return True
    return all(k in params for k in batch)


def sqnr_db(signal: float, error: float) -> float:
    """10 log10(signal / error) from sums of squares; inf for no error."""
    return math.inf if error == 0 else 10.0 * math.log10(signal / error)


def _batches(calib):
    if isinstance(calib, (torch.Tensor, dict)):
        return [calib]
    return calib


def _tensors(obj):
    """Every tensor in a (nested) model output, in order."""
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _tensors(v)
    elif isinstance(obj, (tuple, list)):
        for v in obj:
            yield from _tensors(v)


# --- batch norm folding ----------------------------------------------------------------


class _LeafTracer(torch.fx.Tracer):
    """Every Conv2d/Linear/BatchNorm2d subclass stays one node (a "same"-padding conv
    computes its padding from the input's shape, which fx cannot trace into)."""

    def is_leaf_module(self, m, qualname):
        return isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d)) or super().is_leaf_module(
            m, qualname
        )


def _bn_pairs(model: nn.Module) -> list[tuple[str, str]]:
    """(conv, bn) names where the bn's only input is the conv's only use, each called once."""
    graph = _LeafTracer().trace(model)
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    pairs = []
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], nn.BatchNorm2d):
            continue
        src = node.args[0] if node.args else None
        if not (isinstance(src, torch.fx.Node) and src.op == "call_module"):
            continue
        if not isinstance(modules[src.target], nn.Conv2d) or len(src.users) != 1:
            continue
        if len(node.args) == 1 and not node.kwargs and calls[src.target] == calls[node.target] == 1:
            pairs.append((src.target, node.target))
    return pairs


_BOUNDED_FUNCTIONS = {
    F.gelu: "gelu",
    F.silu: "silu",
    F.mish: "mish",
    F.hardswish: "hardswish",
    F.elu: "elu",
    F.celu: "celu",
    F.selu: "selu",
}


def functional_floors(model: nn.Module) -> dict[str, tuple[str, float]]:
    """{layer: (function, floor)} for each Conv2d/Linear called once, directly on the
    output of a bounded-below function (``F.gelu``, ``F.silu``, ...), found with
    ``torch.fx``; {} if the model does not trace."""
    try:
        graph = _LeafTracer().trace(model)
    except Exception:  # noqa: BLE001 - the module hooks and the data still decide
        return {}
    modules = dict(model.named_modules())
    calls: dict[str, int] = {}
    for node in graph.nodes:
        if node.op == "call_module":
            calls[node.target] = calls.get(node.target, 0) + 1
    grid = torch.linspace(-20.0, 1.0, 210001, dtype=torch.float64)
    out = {}
    for node in graph.nodes:
        if node.op != "call_module" or not isinstance(modules[node.target], (nn.Conv2d, nn.Linear)):
            continue
        src = node.args[0] if node.args else None
        if not (
            isinstance(src, torch.fx.Node)
            and src.op == "call_function"
            and src.target in _BOUNDED_FUNCTIONS
            and calls[node.target] == 1
        ):
            continue
        rest = list(src.args[1:]) + list(src.kwargs.values())
        if any(isinstance(a, torch.fx.Node) for a in rest):
            continue
        low = float(src.target(grid, *src.args[1:], **src.kwargs).min())
        if low < 0:
            out[node.target] = (f"F.{_BOUNDED_FUNCTIONS[src.target]}", low)
    return out


def fold_batchnorm(model: nn.Module) -> tuple[dict[str, str], str]:
    """Fold each BatchNorm2d that directly follows a Conv2d into it, in place.

    The conv gets w * scale and (b - mean) * scale + beta, the batch norm becomes an
    ``nn.Identity``. Returns ({conv: bn}, a note on what was done).
    """
    try:
        pairs = _bn_pairs(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure: fold nothing
        return {}, f"not traced by torch.fx ({type(exc).__name__}): batch norms kept"
    folded = {}
    for conv_name, bn_name in pairs:
        conv, bn = model.get_submodule(conv_name), model.get_submodule(bn_name)
        if bn.running_mean is None:
            continue
        with torch.no_grad():
            scale = torch.rsqrt(bn.running_var + bn.eps)
            if bn.weight is not None:
                scale = bn.weight * scale
            bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
            new_bias = (bias - bn.running_mean) * scale
            if bn.bias is not None:
                new_bias = new_bias + bn.bias
            conv.weight = nn.Parameter(conv.weight * scale.reshape(-1, 1, 1, 1))
            conv.bias = nn.Parameter(new_bias)
        _set(model, bn_name, nn.Identity())
        folded[conv_name] = bn_name
    return folded, f"{len(folded)} batch norm(s) folded (torch.fx)"


def _set(model: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, module)


# --- calibration -----------------------------------------------------------------------


def _function_floor(module: nn.Module) -> float | None:
    """The minimum of an activation module's output (None if it is not below 0)."""
    grid = torch.linspace(-20.0, 1.0, 210001, dtype=torch.float64)
    try:
        with torch.no_grad():
            low = float(copy.deepcopy(module).double()(grid).min())
    except Exception:  # noqa: BLE001 - a module that cannot run alone gives no floor
        return None
    return low if low < 0 else None


def _bounded_modules(model: nn.Module) -> dict[str, tuple[nn.Module, float]]:
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, _BOUNDED) or (
            not list(m.children()) and _BOUNDED_NAME.search(type(m).__name__)
        ):
            z = _function_floor(m)
            if z is not None:
                out[name] = (m, z)
    return out


@dataclass
class _Observed:
    """What calibration saw at one layer's input."""

    low: float = math.inf
    high: float = -math.inf
    values: list = field(default_factory=list)
    vectors: list = field(default_factory=list)
    sources: set = field(default_factory=set)
    batches: int = 0


class _Calibration:
    """Forward hooks that sample every layer's input and note which activation module
    (if any) produced it."""

    def __init__(self, layers: list[QuantizedLayer], bounded: dict, ordered: set[str]):
        self.ordered = ordered
        self.seen = {layer.name: _Observed() for layer in layers}
        self.gens = {
            layer.name: torch.Generator().manual_seed(zlib.crc32(layer.name.encode()))
            for layer in layers
        }
        self.bounded = bounded
        self.produced: dict[int, tuple[torch.Tensor, str, float]] = {}

    def activation_hook(self, name: str, floor: float):
        def hook(module, args, out):
            if isinstance(out, torch.Tensor):
                self.produced[id(out)] = (out, name, floor)

        return hook

    def __call__(self, layer: QuantizedLayer, x: torch.Tensor) -> None:
        obs, gen = self.seen[layer.name], self.gens[layer.name]
        made = self.produced.get(id(x))
        obs.sources.add((made[1], made[2]) if made is not None and made[0] is x else None)
        t = x.detach().float()
        obs.low, obs.high = min(obs.low, float(t.min())), max(obs.high, float(t.max()))
        flat = t.reshape(-1)
        obs.values.append(flat[pick(flat.numel(), VALUES_PER_BATCH, gen)])
        if layer.name in self.ordered:  # vectors only where a channel order is planned
            obs.vectors.append(layer.sample_vectors(t, VECTORS_PER_BATCH, gen))
        obs.batches += 1

    def end_batch(self) -> None:
        self.produced.clear()


def _subsample(parts: list, count: int, seed: str) -> torch.Tensor:
    t = torch.cat(parts)
    if t.shape[0] <= count:
        return t
    gen = torch.Generator().manual_seed(zlib.crc32(seed.encode()) + 1)
    return t[torch.randperm(t.shape[0], generator=gen)[:count]]


# --- planning one layer ------------------------------------------------------------------


@dataclass
class LayerPlan:
    """Every decision ``quantize`` made for one layer (``QuantizedModel.plans[name]``)."""

    name: str
    layer: str  # "Conv2d 3x3 g=1", "Linear"
    scheme: Scheme
    input: str = "float"  # float | uniform | overq
    signed: bool = False
    floor: float = 0.0
    floor_source: str | None = None  # module name, "calibration", or None
    alpha: float | None = None
    step: float | None = None
    weight: str = "float"
    weight_alpha: object = None  # the int weight threshold(s) an OCS split was made on
    bn_folded: str | None = None
    ocs_splits: int = 0
    order: str = "natural"  # natural | channel (calibration gain) | natural (no gain)
    calib_outliers: int | None = None
    calib_handled_natural: int | None = None
    calib_handled: int | None = None
    note: str = ""


def _describe(layer: QuantizedLayer) -> str:
    if isinstance(layer, QuantizedConv2d):
        kh, kw = layer.kernel_size
        return f"Conv2d {kh}x{kw} g={layer.groups}"
    return "Linear"


def _floor(obs: _Observed, function: tuple | None) -> tuple[float, str | None]:
    """The zero point of an input and where it came from (0.0, None: no floor): the
    activation module that produced it, the function fx saw, or the data."""
    sources = obs.sources
    if len(sources) == 1 and None not in sources:
        name, z = next(iter(sources))
        return z, name
    if function is not None:
        return function[1], function[0]
    low, high = obs.low, obs.high
    if FLOOR_MIN <= low < 0 and high >= FLOOR_RATIO * -low:
        return low, "calibration"
    return 0.0, None


def _threshold(x: torch.Tensor, bits: int, method: str, signed: bool) -> float:
    if method == "p99":
        mag = x.abs() if signed else x
        pos = mag[mag > 0]
        if pos.numel() == 0:
            return 0.0
        return float(np.percentile(pos.double().numpy(), 99.0))
    return float(quant.threshold(x, bits, method, signed=signed))


def _split(layer: QuantizedLayer, s: Scheme, plan: LayerPlan) -> tuple[torch.Tensor, object]:
    """OCS-widen the layer's weight if the scheme asks; (weight, alpha) of its int grid."""
    w = layer.weight
    grid = s.weight_bits is not None and s.weight_format == "int"
    alpha = None
    if s.ocs_ratio > 0 and layer.groups == 1:
        if grid:  # the grid of the split weights (OCS shrinks the range first)
            w, index, alpha = weights.ocs_int_split(
                w, s.ocs_ratio, s.weight_bits, s.weight_clip, s.per_channel
            )
        else:
            w, index = ocs.split_weights(w, s.ocs_ratio)
        layer.weight = w.contiguous()
        layer.index = index
        plan.ocs_splits = int(index.numel())
    elif s.ocs_ratio > 0:
        plan.note = "OCS skipped: grouped conv (a split channel is not a duplicated input)"
    return layer.weight, alpha


def _plan_weights(layer: QuantizedLayer, s: Scheme, plan: LayerPlan) -> None:
    w, alpha = _split(layer, s, plan)
    if s.weight_bits is None:
        return
    gran = "per-channel" if s.per_channel else "per-tensor"
    if alpha is not None:  # OCS: quantize on the grid the split was made for
        axis = 0 if s.per_channel else None
        plan.weight_alpha = alpha
        layer.qweight = quant.fake_quant(w, alpha, s.weight_bits, signed=True, axis=axis).to(
            w.dtype
        )
    else:
        layer.qweight = weights.quantize_weights(
            w, s.weight_bits, s.weight_format, s.weight_clip, s.per_channel
        )
    plan.weight = f"{s.weight_format}{s.weight_bits} {gran} {s.weight_clip}"


def _array_vectors(layer: QuantizedLayer, obs: _Observed, floor: float) -> np.ndarray:
    """The sampled calibration vectors as the array sees them: OCS duplicates appended
    per kernel position, x - floor (clamped at 0), [V * groups, K]."""
    v = _subsample(obs.vectors, VECTORS_PER_LAYER, layer.name + ":vectors")
    if layer.index is not None:
        v = torch.cat([v, v[..., layer.index]], dim=-1)
    v = v.reshape(v.shape[0] * v.shape[1], -1).double()
    return np.ascontiguousarray((v - floor).clamp_min(0.0).numpy())


def _plan_input(
    layer: QuantizedLayer, s: Scheme, obs: _Observed, plan: LayerPlan, function: tuple | None
) -> None:
    floor, source = _floor(obs, function)
    signed = obs.low < 0 and source is None
    plan.signed, plan.floor, plan.floor_source = signed, floor, source
    bits = s.act_bits or s.array_config().act_bits  # float inputs: plan for the array
    values = _subsample(obs.values, VALUES_PER_LAYER, layer.name + ":values").double()
    data = values if signed else (values - floor).clamp_min(0.0)
    alpha = _threshold(data, bits, s.clip, signed)
    step = quant.step_from_threshold(alpha, bits, signed=signed)
    plan.alpha, plan.step = alpha, step
    use_overq = s.overq_enabled and not signed
    cfg = s.array_config(bits) if use_overq else None
    if use_overq and s.channel_order and cfg.range_enabled:
        vectors = _array_vectors(layer, obs, floor)
        perm = _order.channel_order(vectors, step, cfg)
        st_nat = overq.encode_stats(vectors, step, cfg)
        st_ord = overq.encode_stats(np.ascontiguousarray(vectors[:, perm]), step, cfg)
        plan.calib_outliers = st_nat.outliers
        plan.calib_handled_natural, plan.calib_handled = st_nat.handled, st_ord.handled
        if not np.array_equal(perm, np.arange(perm.size)):
            layer.perm = torch.from_numpy(perm)
            plan.order = "channel"
    if s.act_bits is None:
        return
    kind = "overq" if use_overq else "uniform"
    layer.act = InputQuantizer(
        kind=kind, bits=s.act_bits, signed=signed, floor=floor, alpha=alpha, step=step, cfg=cfg
    )
    plan.input = kind


def _plan(
    layer: QuantizedLayer, s: Scheme, obs: _Observed, bn: str | None, function: tuple | None = None
) -> LayerPlan:
    plan = LayerPlan(layer.name, _describe(layer), s, bn_folded=bn)
    _plan_weights(layer, s, plan)
    if obs.batches == 0:
        plan.note = "never called during calibration: input left float"
        return plan
    _plan_input(layer, s, obs, plan, function)
    return plan


# --- the result -------------------------------------------------------------------------


class QuantizedModel(nn.Module):
    """The quantized copy: call it like the model; ``plans`` holds every decision.

    Attributes the wrapper lacks are looked up on the wrapped copy (``.model``), so a
    transformers model keeps its ``config`` and the like.
    """

    def __init__(self, model: nn.Module, plans: dict, scheme: Scheme, notes: list[str]):
        super().__init__()
        self.model = model
        self.plans = plans
        self.scheme = scheme
        self.notes = notes

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__("model"), name)

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def layers(self) -> dict[str, QuantizedLayer]:
        """Layer name (as in the model) -> its ``QuantizedLayer``."""
        return {m.name: m for m in self.model.modules() if isinstance(m, QuantizedLayer)}

    @contextlib.contextmanager
    def quantization(self, enabled: bool):
        """Turn every quantizer on or off (the reparametrizations stay) inside the block."""
        layers = list(self.layers().values())
        before = [m.enabled for m in layers]
        for m in layers:
            m.enabled = enabled
        try:
            yield self
        finally:
            for m, e in zip(layers, before):
                m.enabled = e

    def reset_stats(self) -> None:
        for m in self.layers().values():
            m.act.reset()

    @torch.no_grad()
    def compare(self, batches) -> dict:
        """Per-layer output SQNR (dB) against the FP32 copy on ``batches``, and of the
        model's output ("output"); OverQ statistics are counted on these batches."""
        layers = self.layers()
        sig = {n: 0.0 for n in layers}
        err = {n: 0.0 for n in layers}
        ref: dict = {}
        out_sig = out_err = 0.0
        self.reset_stats()
        for batch in _batches(batches):

            def keep(m, y):
                ref[m.name] = y.detach().double()

            def diff(m, y):
                r = ref[m.name]
                sig[m.name] += float((r * r).sum())
                err[m.name] += float(((y.detach().double() - r) ** 2).sum())

            for m in layers.values():
                m.record = keep
            with self.quantization(False):
                fp = [t.double() for t in _tensors(call(self.model, batch))]
            for m in layers.values():
                m.record = diff
            try:
                q = [t.double() for t in _tensors(call(self.model, batch))]
            finally:
                for m in layers.values():
                    m.record = None
            for a, b in zip(fp, q):
                if a.is_floating_point():
                    out_sig += float((a * a).sum())
                    out_err += float(((b - a) ** 2).sum())
            ref.clear()
        result = {n: sqnr_db(sig[n], err[n]) for n in layers if sig[n] or err[n]}
        result["output"] = sqnr_db(out_sig, out_err)
        return result

    def report(self, batches=None) -> "Report":
        """Per layer: the decisions, OverQ outliers and coverage (counted on ``batches``
        if given, else on every call since the last ``reset_stats``), and, with
        ``batches``, the output SQNR against FP32."""
        sqnr = self.compare(batches) if batches is not None else {}
        rows = []
        for name, m in self.layers().items():
            p = self.plans[name]
            row = {
                "layer": name,
                "type": p.layer,
                "input": p.input,
                "act_bits": p.scheme.act_bits,
                "signed": p.signed,
                "floor": p.floor,
                "floor_source": p.floor_source,
                "step": p.step,
                "weight": p.weight,
                "bn_folded": p.bn_folded,
                "ocs_splits": p.ocs_splits,
                "order": p.order,
            }
            if p.input == "overq":
                row.update(
                    overq=m.act.cfg.overq_text,
                    rows=m.act.cfg.rows,
                    cascade=m.act.cfg.cascade,
                    outliers=m.act.outliers,
                    handled=m.act.handled,
                    coverage=m.act.coverage,
                )
            if p.calib_outliers is not None:
                row.update(
                    calib_outliers=p.calib_outliers,
                    calib_handled_natural=p.calib_handled_natural,
                    calib_handled=p.calib_handled,
                )
            if name in sqnr:
                row["sqnr_db"] = sqnr[name]
            if p.note:
                row["note"] = p.note
            rows.append(row)
        return Report(rows, sqnr.get("output"), list(self.notes))


@dataclass
class Report:
    """``QuantizedModel.report()``: ``rows`` (one dict per layer), the model output's
    SQNR (dB, with batches) and notes; ``str()`` is a Markdown table."""

    rows: list
    output_sqnr_db: float | None
    notes: list

    def __str__(self) -> str:
        head = [
            "layer",
            "type",
            "input",
            "signed",
            "zero point",
            "step",
            "weight",
            "OCS",
            "order",
            "outliers",
            "coverage",
            "SQNR dB",
        ]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            inp = (
                r["input"]
                if r["input"] != "overq"
                else f"overq {r['overq']} R={r['rows']} c={r['cascade']}"
            )
            if r["input"] != "float":
                inp = f"{inp} A{r['act_bits']}"
            zp = "" if not r["floor"] else f"{r['floor']:.4g} ({r['floor_source']})"
            cells = [
                r["layer"],
                r["type"],
                inp,
                "yes" if r["signed"] else "no",
                zp,
                "" if r["step"] is None else f"{r['step']:.4g}",
                r["weight"],
                str(r["ocs_splits"] or ""),
                r["order"],
                str(r.get("outliers", "")),
                f"{r['coverage']:.3f}" if "coverage" in r else "",
                f"{r['sqnr_db']:.1f}" if "sqnr_db" in r else "",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        if self.output_sqnr_db is not None:
            lines.append(f"\nmodel output SQNR: {self.output_sqnr_db:.1f} dB")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


# --- the entry point --------------------------------------------------------------------


def _targets(model: nn.Module) -> tuple[list, list[str]]:
    """(name, module) of every Conv2d/Linear to replace, and notes on those left alone."""
    out, notes = [], []
    inside_mha = {
        f"{n}.{c}" if n else c
        for n, m in model.named_modules()
        if isinstance(m, nn.MultiheadAttention)
        for c, _ in m.named_children()
    }
    for name, m in model.named_modules():
        if not isinstance(m, (nn.Conv2d, nn.Linear)):
            continue
        base = nn.Conv2d if isinstance(m, nn.Conv2d) else nn.Linear
        if name in inside_mha:
            notes.append(
                f"{name}: inside nn.MultiheadAttention (which reads its weight "
                "directly), left float"
            )
        elif type(m).forward is not base.forward and not hasattr(m, "input_padding"):
            notes.append(f"{name}: {type(m).__name__} overrides forward, left float")
        else:
            out.append((name, m))
    return out, notes


@torch.no_grad()
def quantize(model: nn.Module, calib, scheme: Scheme = Scheme()) -> QuantizedModel:
    """A quantized copy of ``model`` under ``scheme``, calibrated on ``calib``.

    ``calib``: an iterable of input batches (each a tensor, a tuple of positional
    arguments or a dict of keyword arguments), or one such tensor or dict.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {type(model).__name__}")
    if not isinstance(scheme, Scheme):
        raise TypeError(f"scheme must be a sw_ref.Scheme, got {type(scheme).__name__}")
    qm = copy.deepcopy(model).eval()
    folded, fold_note = fold_batchnorm(qm)
    functions = functional_floors(qm)
    targets, notes = _targets(qm)
    unmatched = {p for p, _ in scheme.overrides} - scheme.matched([n for n, _ in targets])
    if unmatched:
        raise ValueError(
            f"override patterns match no Conv2d/Linear layer: {', '.join(sorted(unmatched))}"
        )
    layers = []
    for name, m in targets:
        layer = (QuantizedConv2d if isinstance(m, nn.Conv2d) else QuantizedLinear)(m, name)
        _set(qm, name, layer)
        layers.append(layer)
    bounded = _bounded_modules(qm)
    schemes = {layer.name: scheme.for_layer(layer.name) for layer in layers}
    ordered = {
        n
        for n, s in schemes.items()
        if s.channel_order and s.overq_enabled and s.array_config().range_enabled
    }
    cal = _Calibration(layers, bounded, ordered)
    handles = [m.register_forward_hook(cal.activation_hook(n, z)) for n, (m, z) in bounded.items()]
    for layer in layers:
        layer.observer = cal
    n_batches = 0
    try:
        for batch in _batches(calib):
            call(qm, batch)
            cal.end_batch()
            n_batches += 1
    finally:
        for h in handles:
            h.remove()
        for layer in layers:
            layer.observer = None
    if n_batches == 0:
        raise ValueError("calib holds no batch: quantize needs at least one input batch")
    plans = {
        layer.name: _plan(
            layer,
            schemes[layer.name],
            cal.seen[layer.name],
            folded.get(layer.name),
            functions.get(layer.name),
        )
        for layer in layers
    }
    notes = [fold_note, f"calibrated on {n_batches} batch(es), FP32 layer inputs"] + notes
    return QuantizedModel(qm, plans, scheme, notes)
