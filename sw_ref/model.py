"""A small CNN on scikit-learn's digits, with its trained weights shipped in the repository.

The digits set (1797 8x8 images, bundled with scikit-learn) needs no download. The
network's weights are *shipped* (``sw_ref/nets/digits_cnn.npz``, 43 kB, with its training
settings, test accuracy and SHA-256 in ``digits_cnn.json``) and loaded by default:
float training is seeded, but another CPU's kernels (``ATEN_CPU_CAPABILITY``) give other
weights, and every digits figure of the project (tests, ``make demo``, reports) must come
from one network. Training stays available (``python -m sw_ref.model --train``, or
``load_model(retrain=True)``); a retrained network is cached under ``build/cache/`` keyed
by a hash of the training settings, written atomically so parallel test workers never read
a half-written file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

__all__ = [
    "DigitsCNN",
    "TrainSettings",
    "load_digits_split",
    "load_model",
    "load_shipped",
    "test_accuracy",
    "DEFAULT_CACHE",
    "SHIPPED_WEIGHTS",
]

DEFAULT_CACHE = Path(__file__).resolve().parents[1] / "build" / "cache"
SHIPPED_WEIGHTS = Path(__file__).resolve().parent / "nets" / "digits_cnn.npz"
SHIPPED_META = SHIPPED_WEIGHTS.with_suffix(".json")
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


def weights_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def shipped_meta() -> dict:
    """The shipped weights' training settings, test accuracy, SHA-256 and provenance."""
    return json.loads(SHIPPED_META.read_text())


def shipped_settings() -> TrainSettings:
    """The settings the shipped network was trained with."""
    d = shipped_meta()["settings"]
    return TrainSettings(**{**d, "channels": tuple(d["channels"])})


def load_shipped() -> DigitsCNN:
    """The shipped network, its file checked against the recorded SHA-256."""
    meta = shipped_meta()
    digest = weights_sha256(SHIPPED_WEIGHTS)
    if digest != meta["sha256"]:
        raise RuntimeError(
            f"{SHIPPED_WEIGHTS} has SHA-256 {digest}, expected {meta['sha256']}"
            " (a changed file: restore it or re-ship it with --ship)"
        )
    model = DigitsCNN(shipped_settings().channels)
    with np.load(SHIPPED_WEIGHTS) as arrays:
        model.load_state_dict({k: torch.from_numpy(arrays[k]) for k in arrays.files})
    return model.eval()


def load_model(
    settings: TrainSettings = TrainSettings(),
    cache_dir: Path | str | None = None,
    retrain: bool = False,
) -> DigitsCNN:
    """The digits network: the shipped weights for the default settings, else trained.

    Settings other than the shipped ones (or ``retrain=True``) train a network on this
    machine and cache it; its weights then depend on this CPU's float kernels.
    """
    if not retrain and settings == shipped_settings():
        return load_shipped()
    path = Path(cache_dir or DEFAULT_CACHE) / f"digits_cnn_{settings.key()}.pt"
    model = DigitsCNN(settings.channels)
    if path.exists() and not retrain:
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    model = train(settings)
    _atomic_save(model.state_dict(), path)
    return model


def test_accuracy(model: nn.Module, settings: TrainSettings = TrainSettings()) -> float:
    """Top-1 accuracy on the held-out digits split."""
    _, _, x_te, y_te = load_digits_split(settings.test_fraction, settings.seed)
    with torch.no_grad():
        return float((model(x_te).argmax(1) == y_te).float().mean())


def ship(settings: TrainSettings = TrainSettings()) -> dict:
    """Train and write the shipped weights and their record (maintainers only)."""
    model = train(settings)
    state = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    np.savez(SHIPPED_WEIGHTS, **state)
    meta = {
        "settings": asdict(settings),
        "test_accuracy": test_accuracy(model, settings),
        "sha256": weights_sha256(SHIPPED_WEIGHTS),
        "trained_with": {
            "torch": torch.__version__,
            "ATEN_CPU_CAPABILITY": os.environ.get("ATEN_CPU_CAPABILITY", "(unset)"),
            "threads": 1,
        },
    }
    SHIPPED_META.write_text(json.dumps(meta, indent=2) + "\n")
    return meta


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m sw_ref.model",
        description="The digits CNN: test accuracy of the shipped weights, or train a new network.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument(
        "--train",
        action="store_true",
        help="train on this machine (cached under build/cache) and compare its "
        "test accuracy with the shipped network's",
    )
    p.add_argument(
        "--ship",
        action="store_true",
        help="train and overwrite the shipped weights and their record (maintainers)",
    )
    p.add_argument("--seed", type=int, default=TrainSettings().seed)
    p.add_argument("--epochs", type=int, default=TrainSettings().epochs)
    args = p.parse_args(argv)
    settings = TrainSettings(seed=args.seed, epochs=args.epochs)
    if args.ship:
        meta = ship(settings)
        print(
            f"wrote {SHIPPED_WEIGHTS.name}: test accuracy {meta['test_accuracy']:.4f}, "
            f"sha256 {meta['sha256'][:16]}..."
        )
        return 0
    shipped = test_accuracy(load_shipped())
    print(f"shipped network ({SHIPPED_WEIGHTS.name}): test accuracy {shipped:.4f}")
    if args.train:
        model = load_model(settings, retrain=True)
        print(
            f"trained here (seed {settings.seed}, {settings.epochs} epochs): "
            f"test accuracy {test_accuracy(model, settings):.4f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
