"""Real photographs from the installed wheels, cut into deterministic 224 x 224 crops.

scikit-image ships a few colour photographs inside its wheel and scikit-learn two
more (``load_sample_images``), so the evaluation needs no download. Calibration and
test use *different photographs* (``CALIB_PHOTOS`` / ``TEST_PHOTOS``), so nothing
tuned on calibration data (thresholds, the channel order) has seen a test pixel.
The two motorcycle photos (a stereo pair, nearly the same picture) are both test.

Each photo gives ``CROPS_PER_PHOTO`` inputs: square crops of 100, 80, 60 and 45 % of
the short side (the full square at 3 positions along the long side, or for a square
photo the whole and 90 % at two corners; the others on a 3 x 3 grid), each also mirrored; resized to 224 x 224 (Pillow bilinear, antialiased) and
scaled to [-1, 1]. A split's crops are taken round-robin over its photos, so any
prefix of the list covers every photo.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

__all__ = [
    "CALIB_PHOTOS",
    "TEST_PHOTOS",
    "CROPS_PER_PHOTO",
    "photo",
    "crops",
    "images",
    "images_range",
    "center_image",
]

CALIB_PHOTOS = ("astronaut", "rocket", "china", "ihc")
TEST_PHOTOS = (
    "chelsea",
    "coffee",
    "motorcycle_left",
    "motorcycle_right",
    "retina",
    "flower",
    "hubble_deep_field",
)
SCALES = (1.0, 0.8, 0.6, 0.45)
SIZE = 224
# the files inside scikit-image's wheel (read directly: no fetcher, no network)
_SKIMAGE_FILES = {
    n: f"{n}.png"
    for n in ("astronaut", "chelsea", "coffee", "ihc", "motorcycle_left", "motorcycle_right")
}
_SKIMAGE_FILES.update(
    rocket="rocket.jpg", retina="retina.jpg", hubble_deep_field="hubble_deep_field.jpg"
)


@lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """An RGB photograph [H, W, 3] uint8 by name (scikit-image or scikit-learn)."""
    if name in ("china", "flower"):
        from sklearn.datasets import load_sample_image

        return np.ascontiguousarray(load_sample_image(f"{name}.jpg"))
    if name not in _SKIMAGE_FILES:
        raise ValueError(
            f"unknown photo {name!r}; allowed: {', '.join(CALIB_PHOTOS + TEST_PHOTOS)}"
        )
    import skimage.data
    from skimage import io

    path = Path(skimage.data.__file__).parent / _SKIMAGE_FILES[name]
    return np.ascontiguousarray(io.imread(path)[..., :3])


def _boxes(h: int, w: int) -> list[tuple[int, int, int]]:
    """(top, left, side) of every crop of one photo, in a fixed order."""
    boxes = []
    for scale in SCALES:
        side = int(round(scale * min(h, w)))
        if scale == 1.0 and h != w:  # the full square: start, centre, end of the long side
            offs = [((h - side) * a // 2, (w - side) * a // 2) for a in range(3)]
        elif scale == 1.0:  # a square photo: the whole, and 90 % at two opposite corners
            inner = int(round(0.9 * side))
            boxes += [(0, 0, side), (0, 0, inner), (side - inner, side - inner, inner)]
            continue
        else:
            offs = [((h - side) * a // 2, (w - side) * b // 2) for a in range(3) for b in range(3)]
        boxes += [(t, l, side) for t, l in offs]
    return boxes


CROPS_PER_PHOTO = 2 * (3 + 9 * (len(SCALES) - 1))


def _to_input(img: np.ndarray, box, flip: bool) -> torch.Tensor:
    """Crop, resize with Pillow's antialiased bilinear filter (on uint8), scale to [-1, 1]."""
    from PIL import Image

    t, l, side = box
    crop = Image.fromarray(img[t : t + side, l : l + side]).resize((SIZE, SIZE), Image.BILINEAR)
    x = torch.from_numpy(np.asarray(crop, dtype=np.float32)).permute(2, 0, 1)
    if flip:
        x = x.flip(-1)
    return (x / 255.0 - 0.5) / 0.5


def crops(split: str) -> list[tuple[str, tuple[int, int, int], bool]]:
    """(photo, box, mirrored) of every crop of ``split`` (calib | test), round-robin."""
    photos = {"calib": CALIB_PHOTOS, "test": TEST_PHOTOS}.get(split)
    if photos is None:
        raise ValueError(f"split must be calib or test, got {split!r}")
    per_photo = []
    for name in photos:
        h, w = photo(name).shape[:2]
        per_photo.append([(name, box, flip) for box in _boxes(h, w) for flip in (False, True)])
    return [c for group in zip(*per_photo) for c in group]


def images(split: str, n: int | None = None) -> torch.Tensor:
    """The first ``n`` crops of ``split`` as a [n, 3, 224, 224] float32 tensor in [-1, 1]."""
    items = crops(split)
    if n is not None:
        if not 1 <= n <= len(items):
            raise ValueError(f"{split} has {len(items)} crops; asked for {n}")
        items = items[:n]
    return torch.stack([_to_input(photo(p), box, flip) for p, box, flip in items])


def center_image(name: str) -> torch.Tensor:
    """The centre square of a photo as one network input [1, 3, 224, 224]."""
    img = photo(name)
    h, w = img.shape[:2]
    side = min(h, w)
    return _to_input(img, ((h - side) // 2, (w - side) // 2, side), False)[None]


def images_range(split: str, lo: int, hi: int) -> torch.Tensor:
    """Crops lo..hi-1 of ``split`` (a batch of ``images(split)`` without the rest)."""
    items = crops(split)
    if not 0 <= lo < hi <= len(items):
        raise ValueError(f"{split} has {len(items)} crops; asked for {lo}..{hi - 1}")
    return torch.stack([_to_input(photo(p), box, flip) for p, box, flip in items[lo:hi]])
