"""Functional coverage of the OverQ situations a run's stimulus exercised.

Bins are derived from the configuration (a 1-row array has no RANGE bin, a
baseline array no state bins besides NORMAL). ``check()`` fails a run that missed
a *required* bin; optional bins are shown in the table for information.
Sampling is vectorised over a batch of vectors.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from hw.params import (
    STATE_NAMES,
    STATE_NORMAL,
    STATE_PRECISION,
    STATE_RANGE,
    STATE_SHIFTED,
    ArrayConfig,
)

__all__ = ["Coverage", "CoverageError", "OUTPUT_MIN_BIN", "OUTPUT_MAX_BIN"]

OUTPUT_MIN_BIN = "y at its most negative bound"
VICTIM_BIN = "encoder: victim taken (no zero in reach)"
VICTIM_TIE_BIN = "encoder: victim declined on a tie q_(k+1) == q' - M (clipped)"
VICTIM_PAIR_BIN = "encoder: victim beside a victim"
VICTIM_ZERO_WINS_BIN = "encoder: zero in reach wins over a cheap neighbour"
OUTPUT_MAX_BIN = "y at its most positive bound"


class CoverageError(AssertionError):
    """A run finished without hitting every required coverage bin."""


class Coverage:
    """Hit counts of named bins; ``required`` bins must all be hit."""

    def __init__(self, cfg: ArrayConfig):
        self.cfg = cfg
        self._hits: OrderedDict[str, int] = OrderedDict()
        self._required: dict[str, bool] = {}
        for name, required in self._bins():
            self._hits[name] = 0
            self._required[name] = required

    # --- the bins --------------------------------------------------------------

    def _bins(self):
        cfg = self.cfg
        r, c = cfg.rows, cfg.cascade
        for state, name in enumerate(STATE_NAMES):
            for k in range(r):
                if self._state_possible(state, k):
                    yield self._state_bin(state, k), True
        if cfg.range_enabled:
            for length in range(1, c + 1):
                if length + 1 <= r:
                    yield self._cascade_bin(length), True
            if r >= 2:
                yield "RANGE pair saturated at 2^(2b)-1", True
        if cfg.range_enabled and cfg.precision_enabled and r >= 4:
            yield "RANGE pair then PRECISION pair", True
            yield "PRECISION pair then RANGE pair", True
        if cfg.encoder:
            yield from self._encoder_bins()
        yield "outlier clipped to M", True
        yield "all-zero vector", True
        yield "all-max vector", True
        yield "weight_min loaded", True
        yield "weight_max loaded", True
        yield "M x weight_min (NORMAL)", True
        yield "M x weight_max (NORMAL)", True
        yield OUTPUT_MIN_BIN, False
        yield OUTPUT_MAX_BIN, False
        if cfg.overq_enabled:
            yield "row 0 driven non-NORMAL (ignored)", False
        if cfg.weight_format == "apot":
            yield "APoT negative zero code", False

    def _encoder_bins(self):
        """The hardware encoder's decisions, seen from the codes on ``a_code``."""
        cfg = self.cfg
        r = cfg.rows
        if cfg.range_enabled:
            for distance in range(1, min(cfg.cascade, r - 1) + 1):
                yield self._distance_bin(distance), True
            if r >= 2:
                yield "encoder: outlier clipped, no zero in reach", True
        yield "encoder: outlier clipped in the last slot", True
        if cfg.precision_enabled and r >= 2:
            yield "encoder: precision pair", True
        if r >= 2:
            yield "encoder: outliers in adjacent slots", True
        if cfg.victim_enabled and r >= 2:
            yield VICTIM_BIN, True
            yield VICTIM_TIE_BIN, True
            yield "encoder: outlier pruned as a victim", False
            if r >= 4:
                yield VICTIM_PAIR_BIN, True
            if r >= 3 and cfg.cascade >= 2:
                yield VICTIM_ZERO_WINS_BIN, True

    @staticmethod
    def _distance_bin(distance: int) -> str:
        return f"encoder: outlier handled at distance {distance}"

    def _state_possible(self, state: int, row: int) -> bool:
        cfg = self.cfg
        if state == STATE_NORMAL:
            return True
        if row == 0:
            return False
        if state == STATE_RANGE:
            return cfg.range_enabled
        if state == STATE_SHIFTED:
            return cfg.range_enabled and cfg.cascade >= 2 and row >= 2
        return cfg.precision_enabled  # STATE_PRECISION

    @staticmethod
    def _state_bin(state: int, row: int) -> str:
        return f"{STATE_NAMES[state]} in row {row}"

    @staticmethod
    def _cascade_bin(length: int) -> str:
        return f"RANGE ending a cascade of length {length}"

    # --- sampling --------------------------------------------------------------

    def _hit(self, name: str, count) -> None:
        if name in self._hits:
            self._hits[name] += int(count)

    def sample_weights(self, codes: np.ndarray, values: np.ndarray) -> None:
        """One loaded weight tile: its codes and integer values [R, C]."""
        cfg = self.cfg
        self._hit("weight_min loaded", np.count_nonzero(values == cfg.weight_min))
        self._hit("weight_max loaded", np.count_nonzero(values == cfg.weight_max))
        if cfg.weight_format == "apot":
            self._hit(
                "APoT negative zero code", np.count_nonzero(codes == 1 << (cfg.weight_bits - 1))
            )

    def sample_vectors(self, values, states, weights: np.ndarray, raw=None) -> None:
        """A batch [N, R] driven against the weight values [R, C] then loaded.

        ``raw`` is q = round(x / step) before encoding, when known.
        """
        cfg = self.cfg
        v = np.asarray(values, dtype=np.int64)
        if v.size == 0:
            return
        f = np.asarray(states, dtype=np.int64).copy()
        if not cfg.overq_enabled:
            f[:] = STATE_NORMAL
        self._hit("row 0 driven non-NORMAL (ignored)", np.count_nonzero(f[:, 0] != STATE_NORMAL))
        f[:, 0] = STATE_NORMAL  # what row 0's PE applies
        busy = v > 0
        for state in range(4):
            per_row = np.count_nonzero((f == state) & busy, axis=0)
            for k in range(cfg.rows):
                self._hit(self._state_bin(state, k), per_row[k])
        if cfg.range_enabled:
            self._sample_cascades(f)
        if cfg.range_enabled and cfg.precision_enabled and cfg.rows >= 4:
            a, n, b = f[:, :-2], f[:, 1:-1], f[:, 2:]
            self._hit(
                "RANGE pair then PRECISION pair",
                np.count_nonzero((a == STATE_RANGE) & (n == STATE_NORMAL) & (b == STATE_PRECISION)),
            )
            self._hit(
                "PRECISION pair then RANGE pair",
                np.count_nonzero((a == STATE_PRECISION) & (n == STATE_NORMAL) & (b == STATE_RANGE)),
            )
        self._hit("all-zero vector", np.count_nonzero(~busy.any(axis=1)))
        self._hit("all-max vector", np.count_nonzero((v == cfg.act_max).all(axis=1)))
        full = (v == cfg.act_max) & (f == STATE_NORMAL)
        w = np.asarray(weights, dtype=np.int64)
        for label, value in (("min", cfg.weight_min), ("max", cfg.weight_max)):
            rows_with = (w == value).any(axis=1)
            self._hit(f"M x weight_{label} (NORMAL)", np.count_nonzero(full & rows_with[None, :]))
        if raw is not None:
            q = np.asarray(raw, dtype=np.int64)
            outliers = np.count_nonzero(q > cfg.act_max, axis=1)
            paired = np.count_nonzero(f == STATE_RANGE, axis=1)
            self._hit("outlier clipped to M", np.count_nonzero(outliers > paired))
            if cfg.range_enabled and cfg.rows >= 2:
                # A RANGE at slot i holds the high bits of the outlier at slot i-1.
                sat = (f[:, 1:] == STATE_RANGE) & (q[:, :-1] > cfg.wide_max)
                self._hit("RANGE pair saturated at 2^(2b)-1", np.count_nonzero(sat))

    def sample_codes(self, codes, states) -> None:
        """Codes [N, R] as driven on ``a_code`` and the states the encoder must make.

        A slot the scan decides on is NORMAL (a slot an earlier decision wrote is
        SHIFTED, RANGE or PRECISION), so an outlier at a NORMAL slot k was handled at
        distance d when slot k+1 is RANGE followed by d-1 SHIFTED slots, else clipped.
        """
        cfg = self.cfg
        c = np.asarray(codes, dtype=np.int64)
        if c.size == 0:
            return
        f = np.asarray(states, dtype=np.int64)
        b = cfg.act_bits
        q = c
        if cfg.precision_enabled:  # round(u / 2^b), half to even
            q = (c + (1 << (b - 1)) - 1 + ((c >> b) & 1)) >> b
        outlier = (q > cfg.act_max) & (f == STATE_NORMAL)
        self._hit("encoder: outlier clipped in the last slot", np.count_nonzero(outlier[:, -1]))
        if cfg.rows < 2:
            return
        self._hit(
            "encoder: outliers in adjacent slots",
            np.count_nonzero((q[:, 1:] > cfg.act_max) & (q[:, :-1] > cfg.act_max)),
        )
        self._hit("encoder: precision pair", np.count_nonzero(f == STATE_PRECISION))
        if not cfg.range_enabled:
            return
        handled = outlier[:, :-1] & (f[:, 1:] == STATE_RANGE)
        self._hit(
            "encoder: outlier clipped, no zero in reach",
            np.count_nonzero(outlier[:, :-1] & ~handled),
        )
        n, r = f.shape
        run = np.zeros((n, r + 1), dtype=np.int64)  # SHIFTED run length starting at i
        for i in range(r - 1, -1, -1):
            run[:, i] = np.where(f[:, i] == STATE_SHIFTED, run[:, i + 1] + 1, 0)
        for k in range(r - 1):
            distance = run[handled[:, k], k + 2] + 1
            for d, count in zip(*np.unique(distance, return_counts=True)):
                self._hit(self._distance_bin(int(d)), count)
        if cfg.victim_enabled:
            self._sample_victims(q, f, outlier, handled, run)

    def _sample_victims(self, q, f, outlier, handled, run) -> None:
        """A handled outlier at k whose RANGE slot k+1 held a non-zero q and starts no
        SHIFTED run took a victim; an outlier left NORMAL-clipped whose neighbour sits
        exactly at q' - M was declined on the tie."""
        cfg = self.cfg
        m = cfg.act_max
        victim = handled & (q[:, 1:] > 0) & (run[:, 2:] == 0)
        self._hit(VICTIM_BIN, np.count_nonzero(victim))
        self._hit("encoder: outlier pruned as a victim", np.count_nonzero(victim & (q[:, 1:] > m)))
        self._hit(VICTIM_PAIR_BIN, np.count_nonzero(victim[:, :-2] & victim[:, 2:]))
        wide = np.minimum(q, cfg.wide_max)
        tie = outlier[:, :-1] & ~handled & (q[:, 1:] == wide[:, :-1] - m)
        self._hit(VICTIM_TIE_BIN, np.count_nonzero(tie))
        if q.shape[1] >= 3:
            cheap = q[:, 1:-1] < wide[:, :-2] - m
            zero_won = handled[:, :-1] & cheap & (q[:, 1:-1] > 0) & (run[:, 2:-1] > 0)
            self._hit(VICTIM_ZERO_WINS_BIN, np.count_nonzero(zero_won))

    def sample_outputs(self, y: np.ndarray) -> None:
        """Expected outputs [N, C]: do they reach the exact bounds of ``acc_bits``?"""
        lo, hi = self.cfg.output_range
        self._hit(OUTPUT_MIN_BIN, np.count_nonzero(y == lo))
        self._hit(OUTPUT_MAX_BIN, np.count_nonzero(y == hi))

    def _sample_cascades(self, f: np.ndarray) -> None:
        """A RANGE at slot i followed by m-1 SHIFTED slots ends a cascade of length m."""
        n, r = f.shape
        run = np.zeros((n, r + 1), dtype=np.int64)  # SHIFTED run length starting at i
        for i in range(r - 1, -1, -1):
            run[:, i] = np.where(f[:, i] == STATE_SHIFTED, run[:, i + 1] + 1, 0)
        for i in range(1, r):
            rng_here = f[:, i] == STATE_RANGE
            if not rng_here.any():
                continue
            lengths = run[rng_here, i + 1] + 1
            for length, count in zip(*np.unique(lengths, return_counts=True)):
                self._hit(self._cascade_bin(int(length)), count)

    # --- results ---------------------------------------------------------------

    @property
    def hits(self) -> dict[str, int]:
        return dict(self._hits)

    def missing(self) -> list[str]:
        return [name for name, hits in self._hits.items() if self._required[name] and hits == 0]

    def merge(self, other: "Coverage") -> None:
        for name, hits in other._hits.items():
            self._hit(name, hits)

    def table(self) -> str:
        """The coverage table as Markdown."""
        lines = ["| bin | hits | required |", "|---|---:|:---:|"]
        for name, hits in self._hits.items():
            mark = "yes" if self._required[name] else "no"
            if self._required[name] and hits == 0:
                mark = "**MISSED**"
            lines.append(f"| {name} | {hits} | {mark} |")
        required = [n for n in self._hits if self._required[n]]
        lines.append(f"\n{len(required) - len(self.missing())}/{len(required)} required bins hit")
        return "\n".join(lines)

    def check(self, also: tuple[str, ...] = ()) -> None:
        """Raise CoverageError for a missed required bin (or a missed bin in ``also``)."""
        missing = self.missing() + [name for name in also if self._hits.get(name, 0) == 0]
        if missing:
            raise CoverageError(
                f"{len(missing)} required coverage bin(s) missed: " + "; ".join(missing)
            )
