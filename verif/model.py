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

        self.shadow = np.zeros((cfg.rows, cfg.cols), dtype=np.int64)  # codes (double buffer)

    def reset(self) -> None:
        """Reset clears every weight register to zero (both copies)."""
        self.codes = np.zeros_like(self.codes)
        self.weights = np.zeros_like(self.weights)
        self.shadow = np.zeros_like(self.shadow)

    def shift(self, row: np.ndarray) -> None:
        """Double buffering: one ``w_shift`` cycle moves the shadow copy down a row and
        puts ``row`` (codes [C]) in row 0."""
        row = np.asarray(row, dtype=np.int64).reshape(1, self.cfg.cols)
        self.shadow = np.concatenate([row, self.shadow[:-1]])

    def swap(self) -> None:
        """Double buffering: ``w_swap`` makes the shadow copy active (call before the
        same cycle's ``shift``: a swap takes the shadow as it was before it)."""
        self.load(self.shadow)

    def load(self, codes: np.ndarray) -> None:
        """A complete weight load of codes [R, C] (row r ends in PE row r)."""
        codes = np.asarray(codes, dtype=np.int64)
        if codes.shape != (self.cfg.rows, self.cfg.cols):
            raise ValueError(
                f"weight codes must be [{self.cfg.rows}, {self.cfg.cols}], got {codes.shape}"
            )
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
