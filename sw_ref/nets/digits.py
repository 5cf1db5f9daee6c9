"""The digits CNN behind the ``sw_ref.nets`` interface (its code lives in ``sw_ref.model``)."""

from sw_ref.model import DigitsCNN, TrainSettings, load_digits_split, load_model

__all__ = ["DigitsCNN", "TrainSettings", "digits", "load_digits_split", "load_model"]


def digits(settings: TrainSettings = TrainSettings(), cache_dir=None) -> DigitsCNN:
    """The trained digits CNN in eval mode (trained on first use, then cached)."""
    return load_model(settings, cache_dir)
