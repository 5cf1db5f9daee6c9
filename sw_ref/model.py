"""A small, deterministic CNN on scikit-learn's digits, trained once and cached.

The digits set (1797 8x8 images, bundled with scikit-learn) needs no download,
and a 2-conv network trains in seconds on two CPU cores, so the quantization
evaluation and its tests always have a real network to work on. Weights are cached
under ``build/cache/`` keyed by a hash of the training settings; the cache write is
atomic so parallel test workers never read a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = ["DigitsCNN", "TrainSettings", "load_digits_split", "load_model", "DEFAULT_CACHE"]

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "build" / "cache"
PIXEL_MAX = 16.0  # digits pixels are integers 0..16


@dataclass(frozen=True)
class TrainSettings:
    """Everything that determines the trained weights (and so the cache key)."""

    seed: int = 0
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    weight_decay: float = 1e-4
    test_fraction: float = 0.3
    channels: tuple[int, int] = (16, 32)
    version: int = 2  # bump when the architecture or training loop changes

    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


class DigitsCNN(nn.Module):
    """conv3x3 -> ReLU -> conv3x3 -> ReLU -> maxpool2 -> FC: three layers to quantize.

    Every Conv2d/Linear input is non-negative (pixels / 16, then post-ReLU), so all
    activations are unsigned, as the array expects.
    """

    # (producer, consumer) pairs joined only by ReLU / max-pool / flatten, which
    # commute with a positive scale: where activation OCS may split channels.
    ocs_pairs = (("conv1", "conv2"), ("conv2", "fc"))

    def __init__(self, channels: tuple[int, int] = (16, 32)):
        super().__init__()
        c1, c2 = channels
        self.conv1 = nn.Conv2d(1, c1, 3, padding=1)
        self.conv2 = nn.Conv2d(c1, c2, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(c2 * 4 * 4, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.conv1(x))
        x = self.pool(torch.relu(self.conv2(x)))
        return self.fc(torch.flatten(x, 1))


def load_digits_split(test_fraction: float = 0.3, seed: int = 0):
    """(x_train, y_train, x_test, y_test): images [N, 1, 8, 8] scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = (data.images / PIXEL_MAX).astype(np.float32)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, data.target, test_size=test_fraction, random_state=seed, stratify=data.target
    )
    as_t = torch.from_numpy
    return as_t(x_tr), as_t(y_tr).long(), as_t(x_te), as_t(y_te).long()


def train(settings: TrainSettings) -> DigitsCNN:
    """Train from a fixed seed (Adam, cross-entropy), on one thread.

    The thread count changes the order of float reductions and so the weights; one
    thread makes them independent of the caller's setting (and is no slower here).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train(settings)
    finally:
        torch.set_num_threads(threads)


def _train(settings: TrainSettings) -> DigitsCNN:
    torch.manual_seed(settings.seed)
    x_tr, y_tr, _, _ = load_digits_split(settings.test_fraction, settings.seed)
    model = DigitsCNN(settings.channels)
    opt = torch.optim.Adam(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    gen = torch.Generator().manual_seed(settings.seed)
    model.train()
    for _ in range(settings.epochs):
        order = torch.randperm(len(x_tr), generator=gen)
        for batch in order.split(settings.batch_size):
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(x_tr[batch]), y_tr[batch])
            loss.backward()
            opt.step()
    return model.eval()


def _atomic_save(state: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_model(settings: TrainSettings = TrainSettings(), cache_dir: Path | str | None = None,
               retrain: bool = False) -> DigitsCNN:
    """The trained model, from the cache if present (else trained and cached)."""
    path = Path(cache_dir or DEFAULT_CACHE) / f"digits_cnn_{settings.key()}.pt"
    model = DigitsCNN(settings.channels)
    if path.exists() and not retrain:
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    model = train(settings)
    _atomic_save(model.state_dict(), path)
    return model
