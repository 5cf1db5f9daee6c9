"""Throughput of the OverQ encoder (``python -m sw_ref.bench``).

The encoder sits in the inner loop of every accuracy sweep, so it has a target:
>= 2e8 slots/s at R = 8. These calls are timed on each data set:

* ``encode_codes`` on codes in the engine's narrow dtype (uint8 for A4 range): the
  encoder proper, which is what ``encode`` runs after quantizing;
* ``encode_codes`` on int64 codes, as ``overq.codes`` returns them (adds a range
  check and a conversion);
* ``encode`` on float64 activations (quantize, encode, and the MSE against x);
* ``reconstruct`` on float32 activations: decode(encode(x)) without the ports, the
  inner loop of the network evaluations, and ``encode_stats`` (coverage only).

Data: post-ReLU Gaussian activations on a grid that clips at 2.5 sigma (~50% zeros,
~0.6% outliers), and real activations: the im2col patches of the digits CNN's conv2
(channel-minor, as the evaluation streams them) on the test images, with the step at
the 99th percentile of the positive calibration activations, and EfficientNet-Lite0's
projection-conv inputs (one pixel's channels, natural order, each layer at its own
99th-percentile step). The first call of a
configuration (``cold``: it builds the lookup table and faults in fresh memory) is
reported apart from the warm calls. Both wall-clock and CPU time (this process,
user + system) are shown: on a shared machine the wall clock also counts the time
other processes hold the core. Last, it measures how often the precision rule's
q = round(round(x 2^b / s) / 2^b) differs from round(x / s) on the same data.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass

import numpy as np

from hw.params import ArrayConfig
from sw_ref import overq
from sw_ref.overq_engine import code_dtype


@dataclass
class DataSet:
    name: str
    x: np.ndarray  # [..., K] non-negative activations
    step_of: callable  # bits -> step
    rows: tuple = ()  # the R values it is meant for (empty: any)


def random_set(slots: int, seed: int = 0) -> DataSet:
    rng = np.random.default_rng(seed)
    x = np.maximum(rng.standard_normal((max(1, slots // 64), 64)), 0.0)
    return DataSet("random", x, lambda bits: 2.5 / (2**bits - 1))


def digits_set(images: int | None = None) -> DataSet:
    """conv2's im2col patches [N * 64, 144] (channel-minor) of the digits test images."""
    import torch
    from torch.nn import functional as F

    from sw_ref.model import load_digits_split, load_model
    from sw_ref.qnet import capture

    model = load_model()
    x_tr, _, x_te, _ = load_digits_split()
    calib, _, _ = capture(model, x_tr[:256])
    inputs, _, _ = capture(model, x_te if images is None else x_te[:images])
    conv = model.conv2

    def patches(x: torch.Tensor) -> np.ndarray:
        p = F.unfold(x, conv.kernel_size, conv.dilation, conv.padding, conv.stride)
        n, k, npos = p.shape
        c = conv.in_channels
        p = p.reshape(n, c, k // c, npos).permute(0, 3, 2, 1)  # channel-minor
        return p.reshape(n * npos, k).double().numpy()

    cal = calib["conv2"].double().numpy()
    p99 = float(np.percentile(cal[cal > 0], 99))
    return DataSet("digits conv2", patches(inputs["conv2"]), lambda bits: p99 / (2**bits - 1))


def effnet_set(images: int = 16) -> DataSet:
    """EfficientNet-Lite0's projection-conv inputs (post-ReLU6, one pixel's channels) on
    ``images`` calibration crops, each layer divided by its 99th percentile of the
    positive values (so the step is 1 / M for every layer), cut into rows of 8 slots
    (every layer's width is a multiple of 8; used at R = 8 only)."""
    from sw_ref.nets.activations import efficientnet_lite0_acts

    acts = efficientnet_lite0_acts("calib", n_images=images, progress=False)
    parts = []
    for name in acts.layers("project"):
        v = np.asarray(acts.vectors[name], dtype=np.float64)
        pos = v[v > 0]
        if pos.size and v.shape[-1] % 8 == 0:
            parts.append((v / np.percentile(pos, 99)).reshape(-1, 8))
    x = np.concatenate(parts)
    return DataSet("effnet project", x, lambda bits: 1.0 / (2**bits - 1), rows=(8,))


def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - wall, time.process_time() - cpu


@dataclass
class Timing:
    slots: int
    cold: tuple  # (wall, cpu)
    warm: list  # [(wall, cpu)]
    stats: object

    def rate(self, which: str, kind: str) -> float:
        pick = 0 if kind == "wall" else 1
        times = [t[pick] for t in self.warm]
        if which == "best":
            return self.slots / min(times)
        if which == "median":
            return self.slots / statistics.median(times)
        return self.slots / self.cold[pick]


def time_call(fn, slots: int, repeat: int) -> Timing:
    result, *cold = _timed(fn)
    warm = []
    for _ in range(repeat):
        result, wall, cpu = _timed(fn)
        warm.append((wall, cpu))
    return Timing(slots, tuple(cold), warm, result.stats)


def bench_set(data: DataSet, rows: int, cascade: int, modes: str, repeat: int):
    """[(call name, Timing)] for one data set and configuration."""
    cfg = ArrayConfig(rows=rows, cascade=min(cascade, max(1, rows - 1)), overq=modes)
    step = data.step_of(cfg.act_bits)
    wide = np.asarray(overq.codes(data.x, step, cfg))
    narrow = wide.astype(code_dtype(cfg))
    x32 = data.x.astype(np.float32)
    n = data.x.size
    plain = []
    if not cfg.precision_enabled and data.x.shape[-1] % rows == 0:
        plain = [
            (
                "plain numpy encoder",
                time_call(lambda: _Stats(_PlainStats(*plain_encode(x32, step, cfg)[2])), n, repeat),
            ),
            ("encode float32", time_call(lambda: overq.encode(x32, step, cfg), n, repeat)),
        ]
    return cfg, plain + [
        ("encode_codes narrow", time_call(lambda: overq.encode_codes(narrow, cfg), n, repeat)),
        ("encode_codes int64", time_call(lambda: overq.encode_codes(wide, cfg), n, repeat)),
        ("encode float64", time_call(lambda: overq.encode(data.x, step, cfg), n, repeat)),
        # what the network evaluations run: x in, decoded float32 (or the stats) out
        (
            "reconstruct float32",
            time_call(
                lambda: _Stats(overq.reconstruct(x32, step, cfg, dtype=np.float32)[1]), n, repeat
            ),
        ),
        (
            "encode_stats float32",
            time_call(lambda: _Stats(overq.encode_stats(x32, step, cfg)), n, repeat),
        ),
    ]


@dataclass
class _Stats:
    """A result with ``.stats``, as ``time_call`` expects."""

    stats: object


def plain_encode(x: np.ndarray, step: float, cfg: ArrayConfig):
    """A plain numpy OverQ range encoder, the baseline ``encode`` is measured against:
    quantize, then one loop over the R slots of a tile, vectorised over the vectors
    (the rule of ``sw_ref.overq``'s range mode). Returns (values, states, stats).
    """
    if cfg.precision_enabled:
        raise ValueError("the plain encoder does the range mode only")
    r, m, c, b = cfg.rows, cfg.act_max, cfg.cascade, cfg.act_bits
    flat = x.reshape(-1, x.shape[-1])
    if flat.shape[1] % r:
        raise ValueError("the plain encoder takes whole tiles (K a multiple of R)")
    q = np.minimum(np.rint(flat.reshape(-1, r) / np.float64(step)), (1 << 2 * b) - 1)
    q = q.astype(np.int64)
    n = q.shape[0]
    values, states = np.zeros_like(q), np.zeros_like(q)
    nxt = np.zeros(n, dtype=np.int64)  # the next slot each vector's scan looks at
    outliers, handled = int((q > m).sum()), 0  # moved outliers count too (never expanded)
    every = np.arange(n)
    for k in range(r):
        at = every[nxt == k]
        qk = q[at, k]
        out = qk > m
        values[at, k] = np.minimum(qk, m)
        nxt[at] = k + 1
        if not cfg.range_enabled or k == r - 1:
            continue
        cand = at[out]
        zero_at = np.full(cand.size, -1)
        for j in range(min(k + c, r - 1), k, -1):  # the nearest zero wins
            zero_at = np.where(q[cand, j] == 0, j, zero_at)
        ok = zero_at >= 0
        cand, zero_at = cand[ok], zero_at[ok]
        handled += cand.size
        wide = q[cand, k]
        values[cand, k] = wide % (1 << b)
        values[cand, k + 1] = wide >> b
        states[cand, k + 1] = 2  # RANGE
        for j in range(k + 2, min(k + c, r - 1) + 1):  # the moved values, SHIFTED
            moved = cand[zero_at >= j]
            values[moved, j] = np.minimum(q[moved, j - 1], m)
            states[moved, j] = 1
        nxt[cand] = zero_at + 1
    shape = x.shape
    return values.reshape(shape), states.reshape(shape), (outliers, handled)


@dataclass
class _PlainStats:
    outliers: int
    handled: int

    @property
    def coverage(self) -> float:
        return self.handled / self.outliers if self.outliers else 1.0


# The encoder with its int64 ports, and the evaluations' inner loop (float in, decoded out).
TARGET_CALLS = ("encode_codes narrow", "reconstruct float32")


def q_difference(x: np.ndarray, step: float, bits: int) -> dict:
    """How the precision rule's q differs from round(x / s), over slots below saturation."""
    y = x.reshape(-1) / step
    y = y[y < 2.0 ** (2 * bits) - 1]
    direct = np.rint(y)
    u = np.rint(y * 2.0**bits)
    q = np.rint(u / 2.0**bits)
    diff = q != direct
    nonzero = direct > 0
    top = 2**bits - 1

    def cls(v):
        return (v > 0).astype(np.int8) + (v > top)

    return {
        "slots": int(y.size),
        "differ": float(diff.mean()),
        "differ_nonzero": float(diff[nonzero].mean()) if nonzero.any() else 0.0,
        "class_changes": float((cls(q) != cls(direct)).mean()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sw_ref.bench",
        description=__doc__.splitlines()[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--slots", type=float, default=1e7, help="random activation slots")
    parser.add_argument("--rows", type=int, nargs="+", default=[8, 64], help="R values")
    parser.add_argument("--cascade", type=int, default=2, help="c (capped at R-1)")
    parser.add_argument("--overq", default="range", help="modes: range, precision, none")
    parser.add_argument("--repeat", type=int, default=5, help="timed calls after the first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=2e8, help="slots/s goal at R=8")
    parser.add_argument("--no-real", action="store_true", help="skip the digits activations")
    parser.add_argument("--no-qdiff", action="store_true", help="skip the precision rule's q")
    parser.add_argument(
        "--effnet",
        type=int,
        default=16,
        metavar="N",
        help="EfficientNet-Lite0 projection inputs of N calibration crops "
        "(computed once, then cached; 0 skips them)",
    )
    args = parser.parse_args(argv)
    if args.slots < 1 or args.repeat < 1:
        print("error: --slots and --repeat must be >= 1", file=sys.stderr)
        return 2

    sets = [random_set(int(args.slots), args.seed)]
    if not args.no_real:
        sets.append(digits_set())
    if args.effnet:
        sets.append(effnet_set(args.effnet))
    try:
        with open("/proc/loadavg") as f:
            load = f.read().split()[0]
    except OSError:
        load = "?"
    print(
        f"OverQ encoder throughput, {args.overq}, c = {args.cascade}; "
        f"1-minute load average {load} on {len_cpus()} CPUs"
    )
    print(
        f"{'data':13s} {'R':>3s} {'call':20s} {'slots':>9s} | slots/s wall: "
        f"{'cold':>8s} {'best':>8s} {'median':>8s} | cpu: {'best':>8s} {'median':>8s} | coverage"
    )
    verdict, ratios = [], {}
    for data in sets:
        for rows in args.rows:
            if data.rows and rows not in data.rows:
                continue
            try:
                cfg, rows_out = bench_set(data, rows, args.cascade, args.overq, args.repeat)
            except ValueError as err:
                print(f"error: {err}", file=sys.stderr)
                return 2
            for name, t in rows_out:
                print(
                    f"{data.name:13s} {rows:3d} {name:20s} {t.slots:9d} | "
                    f"{t.rate('cold', 'wall'):22.3g} {t.rate('best', 'wall'):8.3g} "
                    f"{t.rate('median', 'wall'):8.3g} | {t.rate('best', 'cpu'):13.3g} "
                    f"{t.rate('median', 'cpu'):8.3g} | {t.stats.coverage:8.3f}"
                )
                if rows == 8:
                    ratios.setdefault(data.name, {})[name] = t.rate("best", "cpu")
                if rows == 8 and name in TARGET_CALLS:
                    verdict.append((data.name, name, t.rate("best", "wall"), t.rate("best", "cpu")))
    for data_name, rates in ratios.items():
        if "plain numpy encoder" in rates:
            base = rates["plain numpy encoder"]
            for call in ("encode float32", "reconstruct float32"):
                print(
                    f"{data_name} R=8: {call} / plain numpy encoder = "
                    f"{rates[call] / base:.2f}x (cpu, best; target >= 2.5x)"
                )
    for data_name, call, wall, cpu in verdict:
        print(
            f"target {args.target:.3g} slots/s at R=8 ({call}) on {data_name}: "
            f"wall {'met' if wall >= args.target else 'missed'} ({wall:.3g}), "
            f"cpu {'met' if cpu >= args.target else 'missed'} ({cpu:.3g})"
        )

    if not args.no_qdiff:
        print("\nprecision rule: q = round(round(x 2^b / s) / 2^b) vs round(x / s)")
        print(
            f"{'data':13s} {'b':>2s} {'slots':>9s} {'differ':>8s} {'of nonzero':>10s} "
            f"{'class changes':>13s}"
        )
        for data in sets:
            for bits in (2, 3, 4, 6, 8):
                d = q_difference(data.x, data.step_of(bits), bits)
                print(
                    f"{data.name:13s} {bits:2d} {d['slots']:9d} {d['differ']:8.4f} "
                    f"{d['differ_nonzero']:10.4f} {d['class_changes']:13.4f}"
                )
    return 0


def len_cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


if __name__ == "__main__":
    sys.exit(main())
