"""The paired bootstrap: intervals that cover the truth and call noise noise."""

import numpy as np
import pytest

from sw_ref.bootstrap import WITHIN_NOISE, compare, paired_interval


def test_identical_schemes_are_within_noise():
    a = np.random.default_rng(1).random(300)
    iv = paired_interval(a, a)
    assert iv.diff == 0.0 and iv.low == 0.0 and iv.high == 0.0
    assert compare(a, a)[0] == WITHIN_NOISE


def test_a_clear_shift_is_called_and_its_direction_respected():
    rng = np.random.default_rng(2)
    b = rng.random(500)
    a = b + 0.1 + 0.01 * rng.standard_normal(500)
    verdict, iv = compare(a, b)
    assert verdict == "better" and iv.low > 0.05 and iv.high < 0.15
    assert compare(a, b, higher_is_better=False)[0] == "worse"  # e.g. KL: lower wins


def test_pairing_removes_the_shared_per_input_spread():
    """A small shift buried under a large per-input spread shared by both schemes is
    found by the paired interval (unpaired it would be lost in the spread)."""
    rng = np.random.default_rng(3)
    hard = 10.0 * rng.standard_normal(400)
    b = hard
    a = hard + 0.05
    assert paired_interval(a, b).low > 0.0


def test_interval_covers_the_true_mean_at_about_the_level():
    rng = np.random.default_rng(4)
    covered = 0
    trials = 200
    for t in range(trials):
        a = rng.random(200) < 0.8  # agreement indicators, true mean 0.8
        b = np.zeros(200)
        iv = paired_interval(a, b, resamples=400, seed=t)
        covered += iv.low <= 0.8 <= iv.high
    assert 0.88 <= covered / trials <= 0.99


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="equal lengths"):
        paired_interval([1, 2], [1])
    with pytest.raises(ValueError, match="at least one"):
        paired_interval([], [])
    with pytest.raises(ValueError, match="level"):
        paired_interval([1], [1], level=1.5)
