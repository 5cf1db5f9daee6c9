"""Transaction-level model of ``top``: the weights it holds and the outputs it owes.

A thin stateful wrapper around the reference ``sw_ref.overq.golden``; the only
behaviour it adds is the interface's: weights are zero after reset and replaced by a load,
and ``y_data`` holds ``acc_bits`` two's-complement bits (an exact value unless the
configuration allows overflow, when it wraps like the accumulator register).
"""

from __future__ import annotations

import numpy as np

from hw.params import ArrayConfig
from sw_ref.overq import golden
from verif.ports import weight_values

__all__ = ["ArrayModel"]


class ArrayModel:
    def __init__(self, cfg: ArrayConfig):
        self.cfg = cfg
        self.codes = np.zeros((cfg.rows, cfg.cols), dtype=np.int64)
        self.weights = np.zeros((cfg.rows, cfg.cols), dtype=np.int64)

    def reset(self) -> None:
        """Reset clears every weight register to zero."""
        self.codes = np.zeros_like(self.codes)
        self.weights = np.zeros_like(self.weights)

    def load(self, codes: np.ndarray) -> None:
        """A complete weight load of codes [R, C] (row r ends in PE row r)."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.shape != (self.cfg.rows, self.cfg.cols):
            raise ValueError(f"weight codes must be [{self.cfg.rows}, {self.cfg.cols}], got {codes.shape}")
        self.codes = codes.copy()
        self.weights = weight_values(codes, self.cfg)

    def outputs(self, values: np.ndarray, states: np.ndarray) -> np.ndarray:
        """Expected y [N, C] for vectors [N, R] under the weights held now."""
        y = np.asarray(golden(values, states, self.weights, self.cfg), dtype=np.int64)
        bits = self.cfg.acc_width
        if bits >= 64:
            return y
        half = np.int64(1) << (bits - 1)
        return ((y + half) & ((np.int64(1) << bits) - 1)) - half
