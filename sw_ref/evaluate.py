"""Accuracy and per-layer SQNR of the digits CNN under every quantization scheme.

``python -m sw_ref.evaluate`` trains (or loads the cached) digits CNN, then
evaluates FP32 and quantized variants: clipping methods at 2/3/4/6/8 bits, weight
OCS, OverQ activations and APoT weights. A tiny network on an easy data set keeps
its accuracy down to W4A4, so the sections use operating points where the methods
do differ (see ``OPERATING_POINTS`` and docs/sw_ref_quant.md), and every row also
reports each layer's output SQNR against FP32, which separates methods long before
accuracy does. The Markdown table goes to stdout, JSON to ``--json``, progress to
stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from hw.params import ArrayConfig

from . import ocs, quant, runner, weights
from .model import DEFAULT_CACHE, TrainSettings, load_digits_split, load_model
from .qnet import OverQAct, QuantLayer, UniformAct, capture, layer_key, replace_layers, sqnr_db

__all__ = ["Context", "Scheme", "build_schemes", "evaluate", "main", "make_context", "run_scheme"]

CLIP_METHODS = ("max", "percentile", "mse", "aciq_laplace", "aciq_gauss", "kl")
BITS = (2, 3, 4, 6, 8)
OCS_RATIOS = (0.01, 0.02, 0.05, 0.1)
ACT_OCS_RATIOS = (0.05, 0.1, 0.25)  # 0.05 = 1 of conv1's 16 channels
OVERQ_MODES = ("range", "range,precision")
CASCADES = (1, 2, 3, 4)
# OverQ thresholds: (method, scale, label). A hard cut leaves many outliers for the
# range mode; ACIQ is this network's best plain clipping at A2/A3, the fair baseline.
OVERQ_THRESHOLDS = (("max", 0.5, "clip max/2"), ("aciq_laplace", 1.0, "aciq_laplace"))

# Where the methods differ on this network (measured; docs/sw_ref_quant.md):
OPERATING_POINTS = {
    "clip": "W=A=b for b in 2/3/4/6/8, per-tensor thresholds from each method",
    "act": "W8 weights, A2/A3 activations: only the activation clipping method varies",
    "ocs": "W3 / W2 weights (A8): the weight range matters; OCS shrinks it",
    "act-ocs": "W8, A2/A3/A4, max thresholds re-calibrated after the split: "
    "activation OCS halves the channels with the largest peaks",
    "overq": "W8, A2/A3; the step comes from a hard cut (half the calibration max: "
    "many outliers) or from ACIQ-Laplace (the best plain clipping here); "
    "baseline = the array without OverQ at that step. Conv vectors are "
    "im2col patches, channel-minor, in tiles of R rows",
    "apot": "W3..W6 (A8): APoT vs uniform levels at equal code width",
}


@dataclass(frozen=True)
class Scheme:
    """One row of the table: how weights and activations are quantized."""

    section: str
    label: str
    w_bits: int | None = None  # None: FP32 weights
    a_bits: int | None = None  # None: FP32 activations
    w_method: str = "max"
    a_method: str = "max"
    w_per_channel: bool = False
    w_format: str = "int"  # int | apot
    a_clip: float = 1.0  # scale applied to the activation threshold (hard clipping < 1)
    ocs_ratio: float = 0.0  # weight OCS expand ratio
    ocs_grid: bool = True  # quantization-aware weight split
    act_ocs_ratio: float = 0.0  # activation OCS expand ratio
    overq: str | None = None  # None: uniform activations; "none"/"range"/... : the encoder
    cascade: int = 1


@dataclass
class Context:
    """The trained model, the data, FP32 references and calibration activations."""

    model: torch.nn.Module
    x_test: torch.Tensor
    y_test: torch.Tensor
    x_calib: torch.Tensor
    fp32_out: dict
    calib_in: dict
    rows: int
    _thresholds: dict

    def act_threshold(self, key: str, bits: int, method: str) -> float:
        """Per-tensor activation threshold of layer ``key`` (cached)."""
        k = (key, bits, method)
        if k not in self._thresholds:
            self._thresholds[k] = quant.threshold(self.calib_in[key], bits, method, signed=False)
        return self._thresholds[k]

    def channel_peaks(self, producer: str, consumer: str) -> torch.Tensor:
        """Largest calibration activation per output channel of ``producer``."""
        n_ch = self.model.get_submodule(producer).weight.shape[0]
        x = self.calib_in[consumer]
        return x.reshape(x.shape[0], n_ch, -1).amax(dim=(0, 2))


def make_context(
    settings: TrainSettings, cache_dir, n_calib: int, rows: int, n_test: int | None = None
) -> Context:
    model = load_model(settings, cache_dir)
    x_tr, _, x_te, y_te = load_digits_split(settings.test_fraction, settings.seed)
    if n_test is not None:
        x_te, y_te = x_te[:n_test], y_te[:n_test]
    calib_in, _, _ = capture(model, x_tr[:n_calib])
    _, fp32_out, _ = capture(model, x_te)
    return Context(model, x_te, y_te, x_tr[:n_calib], fp32_out, calib_in, rows, {})


# --- weights ------------------------------------------------------------------------


def quantize_weight(w: torch.Tensor, s: Scheme) -> torch.Tensor:
    """Fake-quantized weights of one layer under scheme ``s`` (APoT per tensor)."""
    if s.w_format == "apot":
        return weights.apot_weights(w, s.w_bits, s.w_method, per_channel=False)
    return weights.quantize_weights(w, s.w_bits, "int", s.w_method, s.w_per_channel)


def ocs_model(model: torch.nn.Module, s: Scheme) -> torch.nn.Module:
    """Weight-OCS every layer; with ``ocs_grid`` split on the final quantization grid.

    The grid is that of the split weights (OCS shrinks the range first), so a plain
    split finds each layer's threshold and step, and the grid-aware split uses them.
    """
    if s.ocs_grid and s.w_per_channel:
        raise ValueError("a grid-aware OCS split needs one step per layer (per-tensor weights)")
    split = ocs.split_model(model, s.ocs_ratio)
    if not (s.ocs_grid and s.w_bits):
        return split
    steps = {}
    for name, mod in split.named_modules():
        if isinstance(mod, ocs.OCSInput):
            alpha = quant.threshold(mod.inner.weight.detach(), s.w_bits, s.w_method, signed=True)
            steps[name] = quant.step_from_threshold(alpha, s.w_bits, signed=True)
    return ocs.split_model(model, s.ocs_ratio, steps)


# --- one scheme ----------------------------------------------------------------------


def act_ocs_model(ctx: Context, s: Scheme) -> tuple[torch.nn.Module, dict, dict]:
    """Activation-OCS the model; returns it, the added channels and its calibration inputs.

    Splitting halves activations, so the thresholds are re-calibrated on the split model.
    """
    pairs = ctx.model.ocs_pairs
    peaks = {p: ctx.channel_peaks(p, c) for p, c in pairs}
    model, added = ocs.split_model_activations(ctx.model, pairs, peaks, s.act_ocs_ratio)
    calib, _, _ = capture(model, ctx.x_calib)
    return model, added, calib


def _activation(ctx: Context, key: str, s: Scheme, calib: dict | None):
    if s.a_bits is None:
        return None
    if calib is None:
        alpha = ctx.act_threshold(key, s.a_bits, s.a_method)
    else:
        alpha = quant.threshold(calib[key], s.a_bits, s.a_method, signed=False)
    alpha *= s.a_clip
    if s.overq is None:
        return UniformAct(alpha, s.a_bits)
    cfg = ArrayConfig(rows=ctx.rows, act_bits=s.a_bits, overq=s.overq, cascade=s.cascade)
    return OverQAct(quant.step_from_threshold(alpha, s.a_bits, signed=False), cfg)


@torch.no_grad()
def run_scheme(ctx: Context, s: Scheme) -> dict:
    """Top-1 accuracy, per-layer output SQNR (dB) and OverQ coverage of one scheme."""
    base, added, calib = ctx.model, {}, None
    if s.act_ocs_ratio:
        base, added, calib = act_ocs_model(ctx, s)
    if s.ocs_ratio:
        base = ocs_model(base, s)
    record, acts = {}, {}

    def make(name, layer):
        key = layer_key(name)
        acts[key] = _activation(ctx, key, s, calib)
        return QuantLayer(layer, quantize_weight(layer.weight.detach(), s), acts[key], key, record)

    qmodel = replace_layers(base, make)
    logits = qmodel(ctx.x_test)
    acc = float((logits.argmax(1) == ctx.y_test).float().mean())
    for key, index in added.items():  # split outputs, compared channel for channel
        record[key] = ocs.merge_channels(record[key], index)
    row = {
        **asdict(s),
        "accuracy": acc,
        "sqnr_db": {k: sqnr_db(ctx.fp32_out[k], record[k]) for k in ctx.fp32_out},
    }
    enc = [a for a in acts.values() if isinstance(a, OverQAct)]
    if enc:
        seen = sum(a.outliers for a in enc)
        row["outliers"] = seen
        row["coverage"] = sum(a.handled for a in enc) / seen if seen else 1.0
        row["outliers_per_layer"] = {k: a.outliers for k, a in acts.items()}
        row["coverage_per_layer"] = {k: a.coverage for k, a in acts.items()}
        row["precise"] = sum(a.precise for a in enc)
        row["encode_mse_per_layer"] = {k: a.sq_err / a.slots for k, a in acts.items()}
    return row


# --- the schemes ---------------------------------------------------------------------


def build_schemes(quick: bool = False, array_rows: int = ArrayConfig().rows) -> list[Scheme]:
    """The table's rows; ``quick`` keeps one or two points per section.

    OverQ cascades that the array cannot have (c > R - 1) are left out.
    """
    cascades = [c for c in ((2,) if quick else CASCADES) if c <= max(1, array_rows - 1)]
    bits = (4, 8) if quick else BITS
    methods = ("max", "mse", "aciq_laplace", "kl") if quick else CLIP_METHODS
    rows = [Scheme("fp32", "fp32")]
    for b in bits:
        rows += [Scheme("clip", m, b, b, m, m) for m in methods]
        rows.append(Scheme("clip", "max per-channel W", b, b, "max", "max", True))
    for a in (2,) if quick else (2, 3):
        rows += [Scheme("act", m, 8, a, "max", m) for m in methods]
    for wb in (3,) if quick else (2, 3):
        for wm in ("max", "mse"):
            rows.append(Scheme("ocs", f"{wm} no OCS", wb, 8, wm))
            for r in (0.05,) if quick else OCS_RATIOS:
                rows.append(Scheme("ocs", f"{wm} OCS r={r}", wb, 8, wm, ocs_ratio=r))
        if not quick:
            rows.append(
                Scheme(
                    "ocs",
                    "max OCS r=0.05 plain split",
                    wb,
                    8,
                    "max",
                    ocs_ratio=0.05,
                    ocs_grid=False,
                )
            )
    for a in (3,) if quick else (2, 3, 4):
        rows.append(Scheme("act-ocs", "max no OCS", 8, a))
        for r in (0.1,) if quick else ACT_OCS_RATIOS:
            rows.append(Scheme("act-ocs", f"max act-OCS r={r}", 8, a, act_ocs_ratio=r))
    for a in (3,) if quick else (2, 3):
        rows.append(Scheme("overq", "max (no clip), uniform", 8, a))
        for method, clip, text in OVERQ_THRESHOLDS[: 1 if quick else None]:
            rows.append(
                Scheme(
                    "overq", f"{text}, baseline", 8, a, a_method=method, a_clip=clip, overq="none"
                )
            )
            for mode in OVERQ_MODES:
                for c in cascades:
                    rows.append(
                        Scheme(
                            "overq",
                            f"{text}, {mode} c={c}",
                            8,
                            a,
                            a_method=method,
                            a_clip=clip,
                            overq=mode,
                            cascade=c,
                        )
                    )
    for wb in (4,) if quick else (3, 4, 5, 6):
        for fmt in ("int", "apot"):
            for wm in ("max", "mse"):
                rows.append(Scheme("apot", f"{fmt} {wm}", wb, 8, wm, w_format=fmt))
    return rows


def evaluate(ctx: Context, schemes, progress: bool = True) -> list[dict]:
    from tqdm import tqdm

    results = []
    for s in tqdm(schemes, desc="evaluate", unit="scheme", disable=not progress, file=sys.stderr):
        results.append(run_scheme(ctx, s))
    return results


# --- output --------------------------------------------------------------------------


def _fmt_db(v: float) -> str:
    return "inf" if math.isinf(v) else f"{v:.1f}"


def markdown(results: list[dict], layers: list[str]) -> str:
    """One Markdown table per section."""
    out = []
    head = ["scheme", "W", "A", "top-1 %"] + [f"SQNR {k} dB" for k in layers] + ["coverage"]
    for section in dict.fromkeys(r["section"] for r in results):
        out.append(f"\n### {section}\n")
        if section in OPERATING_POINTS:
            out.append(f"Operating point: {OPERATING_POINTS[section]}.\n")
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        for r in (r for r in results if r["section"] == section):
            fmt = " apot" if r["w_format"] == "apot" else ""
            w = "fp32" if r["w_bits"] is None else f"{r['w_bits']}{fmt}"
            a = "fp32" if r["a_bits"] is None else str(r["a_bits"])
            cov = f"{r['coverage']:.3f}" if "coverage" in r else ""
            cells = [r["label"], w, a, f"{100 * r['accuracy']:.2f}"]
            cells += [_fmt_db(r["sqnr_db"][k]) for k in layers] + [cov]
            out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out).lstrip() + "\n"


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        prog="python -m sw_ref.evaluate",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="a fast subset of the schemes")
    p.add_argument("--json", type=Path, default=Path("build/evaluate.json"), help="JSON output")
    p.add_argument(
        "--report",
        type=Path,
        default=None,
        help="also write the tables as a markdown report (make demo: synth/reports/digits.md)",
    )
    p.add_argument(
        "--rows",
        type=int,
        default=ArrayConfig().rows,
        help="array rows R: OverQ tile length along the reduction axis",
    )
    p.add_argument("--calib", type=int, default=256, help="calibration images (training set)")
    p.add_argument("--test-images", type=int, default=None, help="limit the test set")
    p.add_argument("--seed", type=int, default=TrainSettings().seed, help="training seed")
    p.add_argument("--epochs", type=int, default=TrainSettings().epochs, help="training epochs")
    p.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="trained-model cache")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (the tensors are small: more threads only contend)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    net = p.add_argument_group(
        "any workload through sw_ref.quantize (--net): comma lists make a grid of schemes"
    )
    net.add_argument(
        "--net",
        default=None,
        help="digits | efficientnet_lite0 | minilm_l6 | package.module:function "
        "(returning a sw_ref.workloads.Workload); without it, the digits table",
    )
    net.add_argument("--act-bits", default="4", help="activation bits (none: float)")
    net.add_argument("--weight-bits", default="8", help="weight bits (none: float)")
    net.add_argument("--weight-format", default="int", help="int | apot")
    net.add_argument("--per-tensor", action="store_true", help="per-tensor weight thresholds")
    net.add_argument("--clip", default="mse", help="activation clipping method(s)")
    net.add_argument("--overq", default="range", help="OverQ modes (none: uniform); ';' separates")
    net.add_argument("--cascade", default="2", help="cascade c")
    net.add_argument("--ocs-ratio", default="0", help="weight OCS expand ratio")
    net.add_argument("--channel-order", default="off", help="on | off (on,off: both)")
    net.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="PATTERN:FIELD=V,...",
        help="per-layer fields, e.g. 'classifier:act_bits=8,overq=none'",
    )
    net.add_argument("--jobs", type=int, default=1, help="worker processes for a grid")
    net.add_argument(
        "--results-cache",
        type=Path,
        default=DEFAULT_CACHE.parent / "workloads",
        help="content-keyed cache of finished rows",
    )
    return p.parse_args(argv)


def _values(text: str, kind, sep: str = ","):
    out = []
    for item in text.split(sep):
        item = item.strip()
        if item.lower() == "none":
            out.append(None)
        elif kind is bool:
            if item not in ("on", "off"):
                raise ValueError(f"expected on or off, got {item!r}")
            out.append(item == "on")
        else:
            out.append(kind(item))
    return out


def _field_value(text: str):
    if text.lower() == "none":
        return None
    if text.lower() in ("true", "false", "on", "off"):
        return text.lower() in ("true", "on")
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def net_schemes(args) -> list:
    """The grid of ``sw_ref.Scheme`` the --net options describe."""
    import itertools

    from .scheme import Scheme

    overrides = {}
    for item in args.override:
        pattern, sep, fields = item.partition(":")
        if not sep:
            raise ValueError(f"--override needs PATTERN:FIELD=VALUE, got {item!r}")
        overrides[pattern] = {
            k: _field_value(v) for k, _, v in (f.partition("=") for f in fields.split(","))
        }
    grid = itertools.product(
        _values(args.act_bits, int),
        _values(args.weight_bits, int),
        _values(args.clip, str),
        _values(args.overq, str, ";"),
        _values(args.cascade, int),
        _values(args.ocs_ratio, float),
        _values(args.channel_order, bool),
    )
    return [
        Scheme(
            act_bits=a,
            weight_bits=w,
            weight_format=args.weight_format,
            per_channel=not args.per_tensor,
            clip=clip,
            overq=mode,
            cascade=c,
            ocs_ratio=r,
            channel_order=order,
            overrides=overrides,
        )
        for a, w, clip, mode, c, r, order in grid
    ]


def _net_row(wl, scheme):
    from .workloads import evaluate

    return evaluate(wl, scheme)


def run_net(args) -> dict:
    """Every scheme of the grid on the workload ``args.net``, cached by content."""
    from .workloads import load

    schemes = net_schemes(args)
    wl = load(args.net)
    if wl.overrides:  # the network's fixed layers, under the user's overrides
        from dataclasses import replace as _replace

        schemes = [
            _replace(s, overrides={**wl.overrides, **{p: dict(v) for p, v in s.overrides}})
            for s in schemes
        ]
    code = runner.file_digest(sorted(Path(__file__).resolve().parent.glob("*.py")))
    cache = runner.Cache(args.results_cache)
    keys = [runner.content_key(args.net, s.key(), code) for s in schemes]
    rows = [cache.get(k) for k in keys]
    todo = [i for i, r in enumerate(rows) if r is None]

    def store(j, row):
        rows[todo[j]] = row
        cache.put(keys[todo[j]], row)

    runner.run_tasks(
        _net_row,
        [schemes[i] for i in todo],
        context=wl,
        jobs=args.jobs,
        progress=not args.no_progress,
        desc=wl.name,
        on_result=store,
    )
    return {"net": args.net, "schemes": len(schemes), "computed": len(todo), "results": rows}


def _net_table(out: dict) -> str:
    rows = out["results"]
    metrics = [
        k
        for k in rows[0]
        if isinstance(rows[0][k], float) and k not in ("coverage", "seconds", "calibration_seconds")
    ]
    head = ["A", "W", "clip", "overq", "c", "OCS", "order"] + metrics + ["coverage", "s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        s = r["scheme"]
        cells = [
            str(s["act_bits"]),
            str(s["weight_bits"]),
            s["clip"],
            str(s["overq"]),
            str(s["cascade"]),
            str(s["ocs_ratio"]),
            "on" if s["channel_order"] else "off",
        ]
        cells += [f"{r[m]:.4f}" for m in metrics] + [f"{r['coverage']:.3f}", str(r["seconds"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.net is not None:
        try:
            torch.set_num_threads(max(1, args.threads))
            out = run_net(args)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        sys.stdout.write(_net_table(out))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(runner.to_json(out), indent=1) + "\n")
        print(
            f"wrote {args.json} ({out['schemes']} schemes, {out['computed']} computed)",
            file=sys.stderr,
        )
        return 0
    try:
        if args.rows < 2:
            raise ValueError(f"--rows must be >= 2, got {args.rows}")
        torch.set_num_threads(max(1, args.threads))
        settings = replace(TrainSettings(), seed=args.seed, epochs=args.epochs)
        t0 = time.perf_counter()
        ctx = make_context(settings, args.cache_dir, args.calib, args.rows, args.test_images)
        schemes = build_schemes(args.quick, args.rows)
        results = evaluate(ctx, schemes, progress=not args.no_progress)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    layers = list(ctx.fp32_out)
    table = markdown(results, layers)
    sys.stdout.write(table)
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(
            "# The quantizers on the digits CNN\n\n"
            f"Written by `python -m sw_ref.evaluate --report {args.report.as_posix()}` "
            "(`make demo`); do not edit by hand. The shipped network "
            "(`sw_ref/nets/digits_cnn.npz`), R = "
            f"{args.rows}, {args.calib} calibration and {len(ctx.y_test)} test images. "
            "SQNR in dB; coverage for OverQ rows.\n\n" + table
        )
        print(f"wrote {args.report}", file=sys.stderr)
    report = {
        "settings": asdict(settings),
        "rows": args.rows,
        "test_images": len(ctx.y_test),
        "calib_images": args.calib,
        "layers": layers,
        "operating_points": OPERATING_POINTS,
        "seconds": round(time.perf_counter() - t0, 2),
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(runner.to_json(report), indent=1) + "\n")
    print(f"wrote {args.json} ({len(results)} schemes, {report['seconds']} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
