"""Paired bootstrap intervals: is a difference between two schemes bigger than the noise?

Two schemes evaluated on the same test inputs (crops, sentences, images) give two
per-input metric arrays. Resampling the *inputs* (the same indices for both arrays)
gives the spread of the mean difference that another draw of test inputs would show,
which is also the scale of what another CPU's float kernels move. A verdict is only
drawn where the 95 % interval excludes 0; otherwise the difference is "within noise".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95
WITHIN_NOISE = "within noise"


@dataclass(frozen=True)
class PairedInterval:
    """mean(a - b) over the inputs, and its percentile bootstrap interval."""

    diff: float
    low: float
    high: float
    level: float
    resamples: int

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0.0 or self.high < 0.0

    def sign(self) -> int:
        """+1 if a is surely above b, -1 if surely below, 0 within noise."""
        if self.low > 0.0:
            return 1
        if self.high < 0.0:
            return -1
        return 0

    def to_dict(self) -> dict:
        return {
            "diff": self.diff,
            "low": self.low,
            "high": self.high,
            "level": self.level,
            "resamples": self.resamples,
        }

    def __str__(self) -> str:
        pct = round(100 * self.level)
        return f"{self.diff:+.4g} [{self.low:+.4g}, {self.high:+.4g}] ({pct} %)"


def paired_interval(
    a, b, *, resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0
) -> PairedInterval:
    """The paired bootstrap of mean(a) - mean(b) for per-input metrics a, b.

    ``a`` and ``b`` are 1-d, of equal length, one entry per test input, in the same
    order. The resampling is seeded, so a report is reproducible; the interval's
    end points move by a few percent of its width between seeds.
    """
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"paired metrics need equal lengths, got {a.size} and {b.size}")
    if a.size == 0:
        raise ValueError("paired metrics need at least one input")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    if resamples < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    d = a - b
    rng = np.random.default_rng(seed)
    means = np.empty(resamples)
    chunk = max(1, (1 << 22) // d.size)  # bound the index matrix to ~32 MB
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        idx = rng.integers(0, d.size, size=(n, d.size))
        means[start : start + n] = d[idx].mean(axis=1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    return PairedInterval(float(d.mean()), float(low), float(high), level, resamples)


def ratio_interval(
    num, den, *, resamples: int = DEFAULT_RESAMPLES, level: float = DEFAULT_LEVEL, seed: int = 0
) -> PairedInterval:
    """sum(num) / sum(den) over the inputs (e.g. handled / seen outliers per vector),
    and its bootstrap interval from resampling the inputs."""
    num = np.asarray(num, dtype=np.float64).reshape(-1)
    den = np.asarray(den, dtype=np.float64).reshape(-1)
    if num.shape != den.shape or num.size == 0:
        raise ValueError(f"ratio needs equal, non-zero lengths, got {num.size} and {den.size}")
    if den.sum() <= 0:
        raise ValueError("ratio needs a positive denominator sum")
    rng = np.random.default_rng(seed)
    ratios = np.empty(resamples)
    chunk = max(1, (1 << 22) // num.size)
    for start in range(0, resamples, chunk):
        n = min(chunk, resamples - start)
        idx = rng.integers(0, num.size, size=(n, num.size))
        d = den[idx].sum(axis=1)
        ratios[start : start + n] = np.divide(num[idx].sum(axis=1), d, out=np.zeros(n), where=d > 0)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return PairedInterval(float(num.sum() / den.sum()), float(low), float(high), level, resamples)


def compare(a, b, *, higher_is_better: bool = True, **kw) -> tuple[str, PairedInterval]:
    """("better" | "worse" | "within noise", interval) for scheme a against scheme b."""
    iv = paired_interval(a, b, **kw)
    s = iv.sign() if higher_is_better else -iv.sign()
    return ({1: "better", -1: "worse", 0: WITHIN_NOISE}[s], iv)
