"""``python -m sw_ref.victim_report``: victim overwrite against OverQ, OliVe and plain A5.

The table of issue 22 on MiniLM-L6 (the FFN output projection inputs, GELU floor) and
EfficientNet-Lite0 (the pointwise projection inputs), A4, R = 8, c = 2. Rows:

* uniform A4 at its best clip (the clip of the harness's list with the best fidelity);
* OverQ range, natural and channel order; OverQ range + victim, natural and channel;
* OliVe A4 (``sw_ref.olive``: outlier-victim pairs along the reduction axis), at its
  own searched clip and at the OverQ rows' step (alpha = M s: the clip apart from the
  pairing);
* plain A5 at its best clip.

Per row: coverage (outliers placed / seen on the test data), fidelity (MiniLM: mean
cosine to FP32; Lite0: top-1 agreement and KL to FP32), the paired bootstrap 95 %
interval of the fidelity difference against OverQ range in natural order
(``sw_ref.bootstrap``, per sentence / per crop), and the encoding MSE on the test
activations of the quantized layers in units of step^2, where step is the OverQ step of
that layer (MiniLM p99.9, Lite0 p99, as in the claims): one unit for every row, so the
rows compare. The harnesses (``sw_ref.evaluate_transformer``, ``sw_ref.effnet_eval``)
are used as they are; only OliVe's activations are put in by this module.

Writes ``synth/reports/victim.md`` and ``victim.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from hw.params import ArrayConfig
from sw_ref import olive, overq, quant
from sw_ref.bootstrap import paired_interval

REPORTS = Path(__file__).resolve().parent.parent / "synth" / "reports"
BITS, ROWS, CASCADE = 4, 8, 2
KEYS = (
    "uniform",
    "range natural",
    "range channel",
    "victim natural",
    "victim channel",
    "olive",
    "olive at OverQ step",
    "A5",
)
BASELINE = "range natural"


# --- MiniLM-L6 ----------------------------------------------------------------------


@dataclass
class _OliveAct:
    """OliVe on x - floor of one FFN input (alpha calibrated on calibration data)."""

    floor: float
    alpha: float
    outliers: int = 0
    placed: int = 0
    stats: object = field(default=None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        a = np.maximum(x.detach().double().numpy(), self.floor) - self.floor
        y, st = olive.fake_quantize(a, self.alpha, BITS)
        self.outliers += st.outliers
        self.placed += st.placed
        return torch.from_numpy(y + self.floor).to(x.dtype)


def _minilm(args, log) -> dict:
    from sw_ref import evaluate_transformer as et
    from sw_ref import transformer as tr

    ctx = tr.make_context(args.calib_sentences, args.test_sentences)
    ev = et.Evaluation(ctx)
    floor = ev.floor
    test_in, _, _ = tr._capture(ctx.model, ctx.batches, ev.ffn)  # the test inputs
    step_method = "p99.9"

    def step_of(name, method):
        m, opts = et.METHODS[method]
        alpha = quant.threshold(ctx.calib[name], BITS, m, floor=floor, **opts)
        return float(quant.step_from_threshold(alpha, BITS, signed=False))

    def floored(t):
        return np.maximum(t.double().numpy(), floor) - floor

    steps = {n: step_of(n, step_method) for n in ev.ffn}

    def run(s, plans=None):
        t0 = time.perf_counter()
        row = tr.quantized_forward(ctx, ev.plans(s) if plans is None else plans)
        log(
            f"minilm {s.label() if plans is None else 'OliVe'}: cosine {row['cosine']:.4f} "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        return row

    def uniform_mse(bits, method):
        total = 0.0
        for n in ev.ffn:
            m, opts = et.METHODS[method]
            alpha = quant.threshold(ctx.calib[n], bits, m, floor=floor, **opts)
            step = float(quant.step_from_threshold(alpha, bits, signed=False))
            x = test_in[n]
            y = quant.dequantize(
                quant.quantize(x, step, bits, floor=floor), step, dtype=torch.float64, floor=floor
            )
            total += float(((y - torch.clamp(x.double(), min=floor)) ** 2).mean()) / steps[n] ** 2
        return total / len(ev.ffn)

    out = {}
    for bits, key in ((BITS, "uniform"), (5, "A5")):
        best = None
        for method in args.clips:
            s = et.Scheme(a_bits=bits, a_method=method)
            row = run(s)
            if best is None or row["cosine"] > best[1]["cosine"]:
                best = (method, row)
        method, row = best
        out[key] = {
            "label": f"uniform A{bits} zero-point @{method}",
            "clip": method,
            "coverage": None,
            "fidelity": {"cosine": row["cosine"]},
            "per_input": {"cosine": row["per_input"]["cosine"]},
            "mse_step2": uniform_mse(bits, method),
        }
    for mode, name in (("range", "range"), ("range,victim", "victim")):
        cfg = ArrayConfig(rows=ROWS, act_bits=BITS, overq=mode, cascade=CASCADE)
        for order in ("natural", "channel"):
            s = et.Scheme(
                a_bits=BITS,
                a_method=step_method,
                overq=mode,
                cascade=CASCADE,
                rows=ROWS,
                order=order,
            )
            row = run(s)
            mse = victims = 0.0
            for n in ev.ffn:
                x = floored(test_in[n])
                if order == "channel":
                    perm = overq.channel_order(floored(ctx.calib[n]), steps[n], cfg)
                    x = np.ascontiguousarray(x[:, perm])
                st = overq.encode_stats(x, steps[n], cfg)
                mse += st.mse / steps[n] ** 2
                victims += st.victims
            out[f"{name} {order}"] = {
                "label": s.label(),
                "coverage": row["coverage"],
                "fidelity": {"cosine": row["cosine"]},
                "per_input": {"cosine": row["per_input"]["cosine"]},
                "mse_step2": mse / len(ev.ffn),
                "victims_test": int(victims),
            }
    # OliVe: the OverQ row's plans with OliVe on every FFN input, at its own searched
    # clip and, to separate the clip from the pairing, at the OverQ step (alpha = M s)
    searched = {
        n: olive.calibrate(_sample_rows(floored(ctx.calib[n]), args.olive_calib_rows), BITS)
        for n in ev.ffn
    }
    at_step = {n: ((1 << BITS) - 1) * steps[n] for n in ev.ffn}
    for key, label, alphas in (
        ("olive", "OliVe A4 (outlier-victim pairs)", searched),
        ("olive at OverQ step", "OliVe A4 at the OverQ step", at_step),
    ):
        plans = ev.plans(et.Scheme(a_bits=BITS, a_method=step_method, overq="range"))
        acts, mse = {}, 0.0
        for n in ev.ffn:
            acts[n] = _OliveAct(floor, alphas[n])
            plans[n] = tr.LayerPlan(plans[n].weight, plans[n].index, acts[n])
            mse += olive.fake_quantize(floored(test_in[n]), alphas[n], BITS)[1].mse / steps[n] ** 2
        row = run(None, plans)
        seen = sum(a.outliers for a in acts.values())
        out[key] = {
            "label": label,
            "coverage": sum(a.placed for a in acts.values()) / seen if seen else 1.0,
            "fidelity": {"cosine": row["cosine"]},
            "per_input": {"cosine": row["per_input"]["cosine"]},
            "mse_step2": mse / len(ev.ffn),
            "alpha_over_overq_top": float(np.mean([alphas[n] / at_step[n] for n in ev.ffn])),
        }
    meta = {
        "calib_sentences": args.calib_sentences,
        "test_sentences": ctx.n_test,
        "layers": list(ev.ffn),
        "overq_step": step_method,
        "floor": floor,
        "model": "all-MiniLM-L6-v2 (sw_ref.nets.minilm_l6)",
        "weights": "FP32",
    }
    return {"meta": meta, "rows": out, "metrics": [("cosine", True)]}


def _sample_rows(x: np.ndarray, n: int) -> np.ndarray:
    """At most n rows of x, evenly spaced (the alpha search is per tensor)."""
    if len(x) <= n:
        return x
    return x[np.linspace(0, len(x) - 1, n).astype(np.int64)]


# --- EfficientNet-Lite0 -------------------------------------------------------------


def _effnet(args, log) -> dict:
    from sw_ref import effnet_eval as ee
    from sw_ref.model import DEFAULT_CACHE
    from sw_ref.nets import photos
    from sw_ref.nets.activations import efficientnet_lite0_acts

    calib = efficientnet_lite0_acts("calib", args.calib_images, DEFAULT_CACHE, progress=False)
    test = efficientnet_lite0_acts("test", args.test_images, DEFAULT_CACHE, progress=False)
    images = photos.images("test", min(args.eval_images or args.test_images, args.test_images))
    alphas = {"olive": {}, "olive-step": {}}

    class _OliveEncoder(ee._Encoder):
        def __init__(self, alpha):
            super().__init__(1.0, ArrayConfig(rows=ROWS), None)
            self.alpha = alpha

        def __call__(self, t):
            rows = t.reshape(-1, t.shape[-1]).numpy()
            y, st = olive.fake_quantize(np.maximum(rows, 0.0), self.alpha, BITS)
            self.outliers += st.outliers
            self.handled += st.placed
            return torch.from_numpy(y.astype(np.float32)).reshape(t.shape)

    class _Evaluator(ee.Evaluator):
        def _acts(self, s):
            if s.overq not in alphas:
                return super()._acts(s)
            quants = super()._acts(replace(s, overq="none"))
            for name, kind in self.net.kinds.items():
                if kind == "project":
                    quants[name] = _OliveEncoder(alphas[s.overq][name])
            return quants

    ev = _Evaluator(calib, test, images)
    projects = [n for n, k in calib.kinds.items() if k == "project"]
    steps = {n: ee.overq_step(calib.values[n], BITS) for n in projects}
    for n in projects:
        alphas["olive"][n] = olive.calibrate(
            _sample_rows(calib.vectors[n], args.olive_calib_rows), BITS
        )
        alphas["olive-step"][n] = ((1 << BITS) - 1) * steps[n]

    def run(s):
        t0 = time.perf_counter()
        row = ev.run(s)
        log(
            f"effnet {s.label}: agreement {row['top1_agreement']:.4f} KL {row['kl']:.4f} "
            f"({time.perf_counter() - t0:.0f} s)"
        )
        return row

    def fid(row):
        return (
            {"agreement": row["top1_agreement"], "kl": row["kl"]},
            {"agreement": row["per_input"]["top1"], "kl": row["per_input"]["kl"]},
        )

    out = {}
    for bits, key in ((BITS, "uniform"), (5, "A5")):
        best = None
        for method in args.effnet_clips:
            row = run(
                ee.EScheme(
                    "overq", f"A{bits} clip {method}", 8, a_bits=8, pw_bits=bits, pw_method=method
                )
            )
            if best is None or row["kl"] < best[1]["kl"]:
                best = (method, row)
        method, row = best
        mse = 0.0
        for n in projects:
            x = torch.from_numpy(test.vectors[n])
            alpha = ev.threshold(n, bits, method)
            y = quant.fake_quant(x, alpha, bits, signed=bool(calib.signed[n]))
            mse += float(((y.double() - x.double()) ** 2).mean()) / steps[n] ** 2
        f, p = fid(row)
        out[key] = {
            "label": f"uniform A{bits} @{method}",
            "clip": method,
            "coverage": None,
            "fidelity": f,
            "per_input": p,
            "mse_step2": mse / len(projects),
        }
    for mode, name in (("range", "range"), ("range,victim", "victim")):
        cfg = ArrayConfig(rows=ROWS, act_bits=BITS, overq=mode, cascade=CASCADE)
        for order in ("natural", "channel"):
            s = ee.EScheme(
                "overq",
                f"{mode} c={CASCADE} {order}",
                8,
                a_bits=8,
                pw_bits=BITS,
                overq=mode,
                cascade=CASCADE,
                order=order,
            )
            row = run(s)
            mse = victims = 0.0
            for n in projects:
                x = test.vectors[n]
                perm = ev.order(n, s)
                if perm is not None:
                    x = np.ascontiguousarray(x[:, perm])
                st = overq.encode_stats(x, steps[n], cfg)
                mse += st.mse / steps[n] ** 2
                victims += st.victims
            f, p = fid(row)
            out[f"{name} {order}"] = {
                "label": s.label,
                "coverage": row["coverage"],
                "fidelity": f,
                "per_input": p,
                "mse_step2": mse / len(projects),
                "victims_test": int(victims),
            }
    for key, mode, label in (
        ("olive", "olive", "OliVe A4 (outlier-victim pairs)"),
        ("olive at OverQ step", "olive-step", "OliVe A4 at the OverQ step"),
    ):
        row = run(ee.EScheme("overq", label, 8, a_bits=8, pw_bits=BITS, overq=mode))
        a = alphas[mode]
        mse = sum(
            olive.fake_quantize(test.vectors[n], a[n], BITS)[1].mse / steps[n] ** 2
            for n in projects
        )
        f, p = fid(row)
        out[key] = {
            "label": label,
            "coverage": row["coverage"],
            "fidelity": f,
            "per_input": p,
            "mse_step2": mse / len(projects),
            "alpha_over_overq_top": float(
                np.mean([a[n] / alphas["olive-step"][n] for n in projects])
            ),
        }
    meta = {
        "calib_images": args.calib_images,
        "test_images": args.test_images,
        "eval_images": len(images),
        "layers": projects,
        "overq_step": "p99",
        "weights": "W8 per-channel, other activations A8 (the claims' OverQ section)",
    }
    return {"meta": meta, "rows": out, "metrics": [("agreement", True), ("kl", False)]}


# --- the report -----------------------------------------------------------------------


def _intervals(net: dict) -> None:
    """Paired intervals of every row's fidelity against OverQ range natural, and of
    victim against OliVe and against A5 (same order where it applies)."""
    rows = net["rows"]
    base = rows[BASELINE]["per_input"]
    for key, r in rows.items():
        r["vs_range_natural"] = {
            m: paired_interval(r["per_input"][m], base[m]).to_dict() for m, _ in net["metrics"]
        }
    net["comparisons"] = {}
    for a, b in (
        ("victim channel", "olive"),
        ("victim channel", "olive at OverQ step"),
        ("victim channel", "A5"),
        ("victim natural", "olive"),
        ("victim channel", "range channel"),
        ("victim natural", "range natural"),
    ):
        net["comparisons"][f"{a} - {b}"] = {
            m: paired_interval(rows[a]["per_input"][m], rows[b]["per_input"][m]).to_dict()
            for m, _ in net["metrics"]
        }


def _iv(d: dict) -> str:
    return f"{d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"


def _verdict(d: dict, higher_is_better: bool) -> str:
    if d["low"] <= 0.0 <= d["high"]:
        return "within noise"
    better = (d["low"] > 0) == higher_is_better
    return "better" if better else "worse"


def render(data: dict) -> str:
    lines = [
        "# Victim overwrite: OverQ that makes its own zero, against OliVe and plain A5",
        "",
        f"Written by `{data['meta']['command']}` (`make victim-report`); do not edit by "
        "hand. A4, R = 8, c = 2. Coverage: outliers placed / seen on the test data. "
        "Intervals: paired bootstrap 95 % of the difference to OverQ range natural "
        "(per sentence / per crop; `sw_ref.bootstrap`). Encoding MSE: on the test "
        "activations of the quantized layers, in units of the layer's OverQ step^2 "
        "(the same unit for every row). See docs/victim.md.",
        "",
    ]
    for net_name, net in data["nets"].items():
        metrics = net["metrics"]
        lines += [
            f"## {net_name}",
            "",
            "Setup: "
            + ", ".join(f"{k} {v}" for k, v in net["meta"].items() if k != "layers")
            + f"; "
            f"{len(net['meta']['layers'])} layers.",
            "",
        ]
        head = (
            "| scheme | coverage | "
            + " | ".join(m for m, _ in metrics)
            + " | "
            + " | ".join(f"Δ{m} vs range natural [95 %]" for m, _ in metrics)
            + " | MSE (step²) |"
        )
        lines += [head, "|---|---:|" + "---:|" * len(metrics) + "---|" * len(metrics) + "---:|"]
        for key in KEYS:
            r = net["rows"][key]
            cov = "—" if r["coverage"] is None else f"{r['coverage']:.3f}"
            vals = " | ".join(f"{r['fidelity'][m]:.4f}" for m, _ in metrics)
            ivs = " | ".join(
                "—" if key == BASELINE else _iv(r["vs_range_natural"][m]) for m, _ in metrics
            )
            lines.append(f"| {r['label']} | {cov} | {vals} | {ivs} | {r['mse_step2']:.4f} |")
        lines += [
            "",
            "| comparison | " + " | ".join(f"Δ{m} [95 %]" for m, _ in metrics) + " |",
            "|---|" + "---|" * len(metrics),
        ]
        for name, c in net["comparisons"].items():
            cells = " | ".join(f"{_iv(c[m])}: {_verdict(c[m], hib)}" for m, hib in metrics)
            lines.append(f"| {name} | {cells} |")
        lines.append("")
        rows = net["rows"]
        for order in ("natural", "channel"):
            r, v = rows[f"range {order}"]["mse_step2"], rows[f"victim {order}"]["mse_step2"]
            lines.append(
                f"- MSE, {order} order: range {r:.4f} -> victim {v:.4f} step² ({v / r:.2f}x)."
            )
        ratio = rows["olive"].get("alpha_over_overq_top")
        if ratio is not None:
            lines.append(
                f"- OliVe's searched clip: alpha = {ratio:.2f} x the OverQ rows' top "
                "normal level M s (mean over the layers)."
            )
        lines.append("")
    return "\n".join(lines)


def _jsonable(net: dict) -> dict:
    out = json.loads(
        json.dumps(net, default=lambda o: o.tolist() if hasattr(o, "tolist") else str(o))
    )
    for r in out["rows"].values():
        r.pop("per_input", None)
    return out


def _parser():
    p = argparse.ArgumentParser(
        prog="python -m sw_ref.victim_report",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--nets", default="minilm,effnet", help="minilm and/or effnet")
    p.add_argument("--out-dir", type=Path, default=REPORTS, help="where victim.md/.json go")
    p.add_argument("--calib-sentences", type=int, default=128)
    p.add_argument("--test-sentences", type=int, default=256)
    p.add_argument(
        "--clips",
        default="max,p99.99,p99.9,p99,mse",
        help="MiniLM uniform clips searched for the best row",
    )
    p.add_argument("--calib-images", type=int, default=64)
    p.add_argument("--test-images", type=int, default=256)
    p.add_argument("--eval-images", type=int, default=None, help="crops run end to end")
    p.add_argument(
        "--effnet-clips",
        default="max,percentile,mse,aciq_laplace,kl",
        help="Lite0 uniform clips searched for the best row",
    )
    p.add_argument(
        "--olive-calib-rows",
        type=int,
        default=4096,
        help="calibration vectors per layer for OliVe's alpha search",
    )
    return p


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    args.clips = [c for c in args.clips.split(",") if c]
    args.effnet_clips = [c for c in args.effnet_clips.split(",") if c]
    nets = [n for n in args.nets.split(",") if n]
    if not nets or any(n not in ("minilm", "effnet") for n in nets):
        print(f"error: --nets takes minilm and/or effnet, got {args.nets!r}", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    start = time.perf_counter()

    def log(msg):
        print(f"[{time.perf_counter() - start:6.0f} s] {msg}", file=sys.stderr, flush=True)

    data = {"meta": {"command": "python -m sw_ref.victim_report"}, "nets": {}}
    for n in nets:
        net = _minilm(args, log) if n == "minilm" else _effnet(args, log)
        _intervals(net)
        data["nets"][
            "MiniLM-L6 (FFN output projection inputs)"
            if n == "minilm"
            else "EfficientNet-Lite0 (pointwise projection inputs)"
        ] = net
    data["meta"]["seconds"] = round(time.perf_counter() - start)
    text = render(data)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    (args.out_dir / "victim.md").write_text(text)
    (args.out_dir / "victim.json").write_text(
        json.dumps(
            {"meta": data["meta"], "nets": {k: _jsonable(v) for k, v in data["nets"].items()}},
            indent=1,
        )
        + "\n"
    )
    sys.stdout.write(text)
    log(f"wrote {args.out_dir / 'victim.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
