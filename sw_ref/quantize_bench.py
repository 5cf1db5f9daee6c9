"""``sw_ref.quantize`` against the dedicated EfficientNet-Lite0 harness, same run
(``python -m sw_ref.quantize_bench``, part of ``make bench``).

Both compute the same scheme, A4 OverQ range c = 2 with the channel order on the
projection (pointwise) inputs, every other input at A8 (max clipping), W8 per-channel
max weights, the stem and the classifier at 8 bits, batch norm folded:

- **harness**: ``sw_ref.effnet_eval.Evaluator`` on its FP32 activation samples and
  logits (``sw_ref.nets.activations``, built here into a fresh cache directory), its
  thresholds and channel orders from them, then the folded network on the test crops;
- **quantize**: the FP32 reference logits, ``sw_ref.quantize(model, calib_batches,
  scheme)`` from the plain ``nn.Module`` (folding, calibration on the calibration
  crops, orders) and the quantized copy on the same test crops.

Printed: seconds of each from scratch and without the FP32 passes (the harness's
samples cached, as ``make report`` has them), wall and this process's CPU, the ratios
quantize / harness (below 1: the API is faster), and each one's top-1 agreement with
FP32 and OverQ coverage. The two calibrate on different samples of the same crops, so their
agreements are close, not equal. One torch thread, like the report's workers.
"""

from __future__ import annotations

import argparse
import sys
import time

import torch


def effnet_scheme(bits: int = 4, cascade: int = 2, order: bool = True):
    """The harness's "range c=2 channel" row as a ``sw_ref.Scheme``."""
    from sw_ref.scheme import Scheme
    from sw_ref.workloads import EFFNET_FIXED_8BIT

    return Scheme(
        act_bits=8,
        weight_bits=8,
        per_channel=True,
        weight_clip="max",
        clip="max",
        overq=None,
        overrides={
            **EFFNET_FIXED_8BIT,
            "*._project_conv": dict(
                act_bits=bits, overq="range", cascade=cascade, clip="p99", channel_order=order
            ),
        },
    )


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def harness(images: torch.Tensor, n_calib: int, n_test: int) -> dict:
    """The dedicated harness from scratch: its FP32 activation samples and logits (into
    a fresh cache directory), then thresholds, orders and the quantized run."""
    import tempfile

    from sw_ref.effnet_eval import EScheme, Evaluator
    from sw_ref.nets.activations import efficientnet_lite0_acts

    with tempfile.TemporaryDirectory() as cache:
        (calib, test), cap_wall, cap_cpu = _timed(
            lambda: (
                efficientnet_lite0_acts("calib", n_calib, cache, progress=False),
                efficientnet_lite0_acts("test", n_test, cache, progress=False),
            )
        )
    s = EScheme(
        "overq", "range c=2 channel", 8, a_bits=8, pw_bits=4, overq="range", order="channel"
    )

    def go():
        return Evaluator(calib, test, images).run(s)

    row, wall, cpu = _timed(go)
    return {
        "wall": wall + cap_wall,
        "cpu": cpu + cap_cpu,
        "run_wall": wall,
        "run_cpu": cpu,
        "top1_agreement": row["top1_agreement"],
        "coverage": row["coverage"],
        "fp32_logits": torch.from_numpy(test.logits[: len(images)]),
    }


def through_api(images: torch.Tensor, calib_images: torch.Tensor, batch: int = 8) -> dict:
    """``sw_ref.quantize`` from scratch: the FP32 reference logits, quantize, the run."""
    import sw_ref
    from sw_ref.nets.efficientnet import efficientnet_lite0

    model = efficientnet_lite0()

    def reference():
        with torch.no_grad():
            return torch.cat([model(x) for x in images.split(batch)])

    def go():
        qmodel = sw_ref.quantize(model, list(calib_images.split(batch)), effnet_scheme())
        with torch.no_grad():
            logits = torch.cat([qmodel(x) for x in images.split(batch)])
        return qmodel, logits

    fp32, ref_wall, ref_cpu = _timed(reference)
    (qmodel, logits), wall, cpu = _timed(go)
    rows = qmodel.report().rows
    seen = sum(r.get("outliers", 0) for r in rows)
    handled = sum(r.get("handled", 0) for r in rows)
    return {
        "wall": wall + ref_wall,
        "cpu": cpu + ref_cpu,
        "run_wall": wall,
        "run_cpu": cpu,
        "top1_agreement": float((logits.argmax(1) == fp32.argmax(1)).double().mean()),
        "coverage": handled / seen if seen else 1.0,
        "ordered": sum(r["order"] == "channel" for r in rows),
        "fp32_logits": fp32,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sw_ref.quantize_bench",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--test-images", type=int, default=256, help="test crops")
    p.add_argument("--calib-images", type=int, default=64, help="calibration crops")
    args = p.parse_args(argv)
    from sw_ref.nets import photos

    torch.set_num_threads(1)
    with open("/proc/loadavg") as f:
        load = f.read().split()[0]
    images = photos.images("test", args.test_images)
    calib_images = photos.images("calib", args.calib_images)
    h = harness(images, args.calib_images, args.test_images)
    q = through_api(images, calib_images)
    same_fp32 = float((q["fp32_logits"] - h["fp32_logits"]).abs().max())
    print(
        f"EfficientNet-Lite0, {args.test_images} test crops, {args.calib_images} calibration "
        f"crops, A4 OverQ range c=2 + channel order on the projection inputs (A8 elsewhere, "
        f"W8); 1 torch thread, load {load}"
    )
    print(
        f"{'':18s} {'from scratch: wall s':>20s} {'cpu s':>7s} | {'without FP32 pass: wall s':>25s}"
        f" {'cpu s':>7s} | {'top-1 agr.':>10s} {'coverage':>8s}"
    )
    for name, r in (("dedicated harness", h), ("sw_ref.quantize", q)):
        print(
            f"{name:18s} {r['wall']:20.1f} {r['cpu']:7.1f} | {r['run_wall']:25.1f} "
            f"{r['run_cpu']:7.1f} | {r['top1_agreement']:10.4f} {r['coverage']:8.3f}"
        )
    print(
        "from scratch: the harness builds its FP32 activation samples and logits (a fresh "
        "cache), quantize runs the FP32 reference; 'without': the harness's samples cached, "
        f"quantize's reference given. FP32 logits of the two agree to {same_fp32:.2g}; "
        f"quantize ordered {q['ordered']} layers."
    )
    print(
        f"ratio sw_ref.quantize / harness, from scratch: wall {q['wall'] / h['wall']:.2f}, "
        f"cpu {q['cpu'] / h['cpu']:.2f}; without the FP32 passes: wall "
        f"{q['run_wall'] / h['run_wall']:.2f}, cpu {q['run_cpu'] / h['run_cpu']:.2f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
