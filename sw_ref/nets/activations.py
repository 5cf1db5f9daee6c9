"""Per-layer FP32 activations of EfficientNet-Lite0 on the photo crops, cached on disk.

One FP32 pass over a split's crops records, for every Conv2d/Linear of the network:

- ``values[name]``: a random sample (up to ``VALUES_PER_LAYER``) of the layer's input
  values, for per-tensor thresholds (clipping methods, the OverQ step);
- ``vectors[name]``: up to ``VECTORS_PER_LAYER`` of the layer's reduction vectors as the
  array receives them: for a 1 x 1 conv or the classifier, one pixel's channels [N, C]
  (natural channel order); for a depthwise conv, one channel's k x k window [N, k*k]
  (TensorFlow same padding: border windows hold the zero padding); none for the stem;
- ``logits``: the FP32 logits of every crop of the split.

``kinds[name]`` is the layer kind (stem, expand, depthwise, project, head, fc) and
``signed[name]`` whether its input can be negative (the quantization convention).
The file lands in ``build/cache/`` keyed by a hash of everything that determines it;
the write is atomic, so parallel workers never read half a file. Other tools reuse
it: ``sw_ref.nets.activations.efficientnet_lite0_acts("test")``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from sw_ref.model import DEFAULT_CACHE

from . import photos

__all__ = ["LayerActs", "efficientnet_lite0_acts", "SIGNED_KINDS", "DEFAULT_IMAGES"]

VALUES_PER_LAYER = 1 << 16
VECTORS_PER_LAYER = 4096
DEFAULT_IMAGES = {"calib": 64, "test": 256}
SIGNED_KINDS = ("stem", "expand", "head")  # image / linear-bottleneck inputs
_VERSION = 1
_BATCH = 8


@dataclass
class LayerActs:
    """FP32 activations of one split (see the module docstring)."""

    split: str
    n_images: int
    kinds: dict
    signed: dict
    values: dict
    vectors: dict
    logits: np.ndarray

    def layers(self, kind: str | None = None) -> list[str]:
        return [n for n, k in self.kinds.items() if kind is None or k == kind]


def _key(split: str, n: int, seed: int) -> str:
    text = json.dumps(
        {
            "v": _VERSION,
            "split": split,
            "n": n,
            "seed": seed,
            "crops": photos.crops(split)[:n],
            "values": VALUES_PER_LAYER,
            "vectors": VECTORS_PER_LAYER,
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _windows(x_nhwc: torch.Tensor, k: int, s: int, idx: np.ndarray) -> np.ndarray:
    """k x k windows (TF same padding) of flat output positions idx = (n, oh, ow, c)."""
    from .efficientnet import _same_pads

    n, h, w, c = x_nhwc.shape
    (t, _), (l, _) = _same_pads(h, k, s), _same_pads(w, k, s)
    oh, ow = -(-h // s), -(-w // s)
    ni, rest = np.divmod(idx, oh * ow * c)
    yi, rest = np.divmod(rest, ow * c)
    xi, ci = np.divmod(rest, c)
    dy, dx = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    rows = yi[:, None] * s - t + dy.ravel()[None]
    cols = xi[:, None] * s - l + dx.ravel()[None]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
    a = x_nhwc.numpy()
    out = a[ni[:, None], np.clip(rows, 0, h - 1), np.clip(cols, 0, w - 1), ci[:, None]]
    return np.where(inside, out, 0.0).astype(np.float32)


def _capture(split: str, n: int, seed: int, progress: bool) -> LayerActs:
    from tqdm import tqdm

    from .efficientnet import FoldedLite0

    net = FoldedLite0()
    kinds = net.kinds
    signed = {name: kind in SIGNED_KINDS for name, kind in kinds.items()}
    batches = [(i, min(i + _BATCH, n)) for i in range(0, n, _BATCH)]
    rng = np.random.default_rng(seed)
    per_batch_values = -(-VALUES_PER_LAYER // len(batches))
    per_batch_vectors = -(-VECTORS_PER_LAYER // len(batches))
    values = {name: [] for name in kinds}
    vectors = {name: [] for name in kinds if kinds[name] != "stem"}
    logits = []

    def pick(total: int, want: int) -> np.ndarray:
        """Random indices (with replacement), or all of them when there are few."""
        return np.arange(total) if total <= want else rng.integers(0, total, want)

    def record(name, t):
        flat = t.reshape(-1)
        values[name].append(flat[pick(flat.numel(), per_batch_values)].numpy())
        kind = kinds[name]
        if kind == "depthwise":
            k, s, _ = net.geometry[name]
            nb, h, w, c = t.shape
            total = nb * (-(-h // s)) * (-(-w // s)) * c
            vectors[name].append(_windows(t, k, s, pick(total, per_batch_vectors)))
        elif kind != "stem":
            rows = t.reshape(-1, t.shape[-1])
            vectors[name].append(rows[pick(rows.shape[0], per_batch_vectors)].numpy())
        return t

    for lo, hi in tqdm(
        batches, desc=f"fp32 {split}", unit="batch", disable=not progress, file=sys.stderr
    ):
        x = photos.images_range(split, lo, hi)
        logits.append(net(x, quant=record).numpy())

    def cat(d):
        keep = VALUES_PER_LAYER if d is values else VECTORS_PER_LAYER
        return {k: np.concatenate(v)[:keep] for k, v in d.items()}

    return LayerActs(split, n, kinds, signed, cat(values), cat(vectors), np.concatenate(logits))


def _save(acts: LayerActs, path: Path) -> None:
    arrays = {"logits": acts.logits}
    arrays.update({f"values/{k}": v for k, v in acts.values.items()})
    arrays.update({f"vectors/{k}": v for k, v in acts.vectors.items()})
    meta = json.dumps(
        {"split": acts.split, "n_images": acts.n_images, "kinds": acts.kinds, "signed": acts.signed}
    )
    arrays["meta"] = np.frombuffer(meta.encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _load(path: Path) -> LayerActs:
    with np.load(path) as z:
        meta = json.loads(bytes(z["meta"]).decode())
        values = {k[7:]: z[k] for k in z.files if k.startswith("values/")}
        vectors = {k[8:]: z[k] for k in z.files if k.startswith("vectors/")}
        order = list(meta["kinds"])
        return LayerActs(
            meta["split"],
            meta["n_images"],
            meta["kinds"],
            meta["signed"],
            {k: values[k] for k in order},
            {k: vectors[k] for k in order if k in vectors},
            z["logits"],
        )


def efficientnet_lite0_acts(
    split: str = "calib",
    n_images: int | None = None,
    cache_dir: Path | str | None = None,
    seed: int = 0,
    progress: bool = True,
) -> LayerActs:
    """The cached FP32 activations of ``split`` (calib | test), computing them once.

    ``n_images`` defaults to ``DEFAULT_IMAGES[split]`` (64 calibration, 256 test crops).
    """
    n = n_images or DEFAULT_IMAGES.get(split)
    if n is None:
        raise ValueError(f"split must be calib or test, got {split!r}")
    path = Path(cache_dir or DEFAULT_CACHE) / f"effnet_lite0_{split}_{n}_{_key(split, n, seed)}.npz"
    if path.exists():
        return _load(path)
    acts = _capture(split, n, seed, progress)
    _save(acts, path)
    return acts
