"""``python -m verif.minilm_sim`` (``make sim-minilm``): a real MiniLM-L6 FFN output
projection through the generated RTL.

Builds the layer case of ``verif.minilm_layer`` (1536 -> 384, zero-point activations of
a few test sentences, channel order, int weights), streams every weight tile and its
vectors through ``top`` with the cocotb testbench (``test_layer``: each output checked
against the model as it comes out), adds the k-tiles' outputs, and checks the whole
layer bit for bit against ``sw_ref.overq.golden``. It prints the SQNR of the corrected
output (s * s_w * y + z * s_w * colsum(W) + b) against the FP32 layer, and of the same
output without the zero-point term (what forgetting the correction costs).
Exits non-zero on any mismatch.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from hw.params import ArrayConfig
from sw_ref.overq import golden_real
from sw_ref.qnet import sqnr_db
from verif.config import RunSettings
from verif.runner import SIMULATORS, default_build_dir, run

__all__ = ["main", "run_minilm"]


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m verif.minilm_sim",
        description="One MiniLM-L6 FFN output projection (1536 -> 384) through the generated "
        "RTL, bit-exact against the golden model; SQNR of the corrected output.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sim", choices=SIMULATORS, default="icarus", help="simulator")
    p.add_argument("--rows", type=int, default=8, help="R (the OverQ tile and the channel order)")
    p.add_argument("--cols", type=int, default=8, help="C, outputs per weight tile")
    p.add_argument("--act-bits", type=int, default=4, help="b, bits per activation slot")
    p.add_argument(
        "--weight-bits", type=int, default=8, help="int weight bits (per-tensor max scale)"
    )
    p.add_argument("--overq", default="range", help="range, range,precision, range,victim or none")
    p.add_argument("--cascade", type=int, default=2, help="c")
    p.add_argument(
        "--layer", type=int, default=0, choices=range(6), help="which encoder layer's FFN"
    )
    p.add_argument(
        "--sentences", type=int, default=1, help="test sentences whose tokens are streamed"
    )
    p.add_argument(
        "--tokens", type=int, default=4, help="at most this many tokens (vectors per tile)"
    )
    p.add_argument(
        "--percentile",
        type=float,
        default=99.0,
        help="activation threshold: this percentile of x - z on the calibration sentences",
    )
    p.add_argument("--natural-order", action="store_true", help="no channel order")
    p.add_argument("--seed", type=int, default=1, help="testbench seed")
    p.add_argument("--build-dir", default=None, help="default: build/verif/<sim>/<config>-minilm")
    return p


def run_minilm(
    cfg: ArrayConfig, sim: str = "icarus", build_dir=None, seed: int = 1, **case_args
) -> dict:
    """Build the case, simulate it, and compare; returns the report dict."""
    from verif.minilm_layer import build_minilm_case

    case = build_minilm_case(cfg, **case_args)
    build_dir = Path(build_dir or default_build_dir(cfg, sim, "minilm")).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    npz = build_dir / "layer_tiles.npz"
    case.save(npz)
    out = build_dir / "layer_outputs.npz"
    out.unlink(missing_ok=True)
    settings = RunSettings(cfg, seed, sim, None, str(npz), str(build_dir))
    start = time.monotonic()
    result = run(settings, build_dir, test_filter="test_layer")
    seconds = time.monotonic() - start
    report = {
        "ok": result.ok,
        "summary": result.summary(),
        "seconds": seconds,
        "layer": case.layer,
        "vectors": case.n_vectors,
        "tiles": len(case.tile_index),
        "outliers": case.outliers,
        "handled": case.handled,
        "step": case.act_step,
    }
    if not out.exists():
        report["bit_exact"] = False
        return report
    rtl = case.assemble(np.load(out)["y"])
    report["bit_exact"] = bool(np.array_equal(rtl, case.reference))
    report["mismatches"] = int(np.count_nonzero(rtl != case.reference))
    report.update(case.float_error(rtl))
    # The same output through sw_ref.overq.golden_real (the correction computed there),
    # and without the zero-point term.
    from sw_ref.nets.minilm import GELU_MIN
    from verif.minilm_layer import zero_point_correction

    k = case.weights.shape[0]
    o = case.reference.shape[1]
    real = golden_real(
        case.slots,
        case.slot_states,
        case.weights[:, :o],
        cfg,
        case.act_step,
        case.w_unit,
        floor=GELU_MIN,
    )
    lin_bias = case.bias - zero_point_correction(case.weights[:k, :o], GELU_MIN, case.w_unit)
    corrected = rtl * case.unit + case.bias
    report["golden_real_max_diff"] = float(np.abs(real + lin_bias - corrected).max())
    report["sqnr_db_without_zero_point_term"] = sqnr_db(
        torch.from_numpy(case.fp32), torch.from_numpy(rtl * case.unit + lin_bias)
    )
    return report


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = ArrayConfig(
            rows=args.rows,
            cols=args.cols,
            act_bits=args.act_bits,
            weight_bits=args.weight_bits,
            overq=args.overq,
            cascade=args.cascade,
        )
    except ValueError as exc:
        print(f"verif.minilm_sim: error: {exc}", file=sys.stderr)
        return 2
    print(f"verif.minilm_sim: {args.sim}, {cfg.key()}, L={cfg.latency}", file=sys.stderr)
    r = run_minilm(
        cfg,
        args.sim,
        args.build_dir,
        args.seed,
        sentences=args.sentences,
        layer=args.layer,
        percentile=args.percentile,
        order=not args.natural_order,
        max_tokens=args.tokens,
    )
    print(f"verif.minilm_sim: {r['summary']} in {r['seconds']:.1f} s", file=sys.stderr)
    if "sqnr_db" in r:
        print(
            f"verif.minilm_sim: {r['layer']}: {r['vectors']} vectors x {r['tiles']} tiles; "
            f"RTL == golden bit for bit: {r['bit_exact']} ({r['mismatches']} mismatches); "
            f"corrected output vs FP32: SQNR {r['sqnr_db']:.2f} dB (without the zero-point "
            f"term {r['sqnr_db_without_zero_point_term']:.2f} dB), relative RMS error "
            f"{r['rel_rms']:.4f}; golden_real agrees to {r['golden_real_max_diff']:.1e}; "
            f"OverQ handled {r['handled']}/{r['outliers']} outliers",
            file=sys.stderr,
        )
    ok = r["ok"] and r["bit_exact"]
    if not ok:
        print("verif.minilm_sim: FAILED", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
