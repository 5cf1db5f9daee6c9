"""In-order scoreboard: every output of ``top`` against the model, in arrival order.

On the first mismatch it logs the vector's index and label, expected and actual
per column, the inputs, the seed, the configuration and a one-line replay
command; later mismatches are only counted. ``finish()`` fails the test for any
mismatch, missing or unexpected output, or wrong latency.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

import numpy as np

from hw.params import STATE_NAMES, ArrayConfig
from verif.monitor import Output

__all__ = ["Expected", "InOrderScoreboard", "ScoreboardError"]


class ScoreboardError(AssertionError):
    pass


@dataclass(frozen=True)
class Expected:
    index: int  # position in the test's stream of vectors
    label: str  # where it came from (tile, directed case name, ...)
    values: np.ndarray  # [C]
    inputs: tuple[np.ndarray, np.ndarray]  # (values [R], states [R]) driven


class InOrderScoreboard:
    def __init__(self, cfg: ArrayConfig, seed: int, replay: str, log: logging.Logger | None = None):
        self.cfg = cfg
        self.seed = seed
        self.replay = replay
        self.log = log or logging.getLogger("verif.scoreboard")
        self._pending: deque[Expected] = deque()
        self._count = 0
        self.matched = 0
        self.mismatches = 0
        self.unexpected = 0
        self.arrival: dict[int, int] = {}  # vector index -> edge after which it came out
        self.first_failure: str | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def expect(
        self, values: np.ndarray, inputs: tuple[np.ndarray, np.ndarray], labels
    ) -> list[Expected]:
        """Queue expected outputs [N, C] for vectors [N, R] in the order they are sent."""
        items = []
        for i in range(values.shape[0]):
            item = Expected(self._count, labels[i], values[i], (inputs[0][i], inputs[1][i]))
            self._count += 1
            self._pending.append(item)
            items.append(item)
        return items

    def drop_pending(self) -> list[Expected]:
        """Forget every pending output (a reset cleared them from the pipeline)."""
        dropped = list(self._pending)
        self._pending.clear()
        return dropped

    def receive(self, out: Output) -> None:
        if not self._pending:
            self.unexpected += 1
            self._fail(
                f"UNEXPECTED output after edge {out.cycle}: nothing was pending\n"
                f"  actual: {out.values.tolist()}"
            )
            return
        item = self._pending.popleft()
        self.arrival[item.index] = out.cycle
        if np.array_equal(item.values, out.values):
            self.matched += 1
            return
        self.mismatches += 1
        self._fail(self._mismatch_text(item, out))

    def _mismatch_text(self, item: Expected, out: Output) -> str:
        cfg = self.cfg
        lines = [
            f"MISMATCH at vector {item.index} ({item.label}), output after edge {out.cycle}",
            "  column | expected | actual",
        ]
        for c in range(cfg.cols):
            flag = "" if item.values[c] == out.values[c] else "   <-- differs"
            lines.append(f"  {c:6d} | {int(item.values[c]):8d} | {int(out.values[c]):6d}{flag}")
        v, f = item.inputs
        lines.append(f"  a_data  (row 0..{cfg.rows - 1}): {np.asarray(v).tolist()}")
        lines.append(
            "  a_state (row 0..{}): {}".format(cfg.rows - 1, [STATE_NAMES[int(s)] for s in f])
        )
        return "\n".join(lines)

    def _fail(self, text: str) -> None:
        if self.first_failure is None:
            self.first_failure = text
            self.log.error(
                "%s\n  seed=%d config=%s\n  replay: %s",
                text,
                self.seed,
                self.cfg.key(),
                self.replay,
            )

    def latencies(self, placed: dict[int, int]) -> dict[int, int]:
        """Vector index -> cycles from being placed on the ports to coming out."""
        return {i: self.arrival[i] - placed[i] for i in self.arrival if i in placed}

    def finish(self, latency: int | None = None, placed: dict[int, int] | None = None) -> None:
        """Raise ScoreboardError unless every expected output arrived, equal, and (given
        the cycles ``placed`` of each vector) exactly ``latency`` cycles later."""
        problems = []
        if self.mismatches:
            problems.append(f"{self.mismatches} mismatching output(s)")
        if self.unexpected:
            problems.append(f"{self.unexpected} unexpected output(s)")
        if self._pending:
            problems.append(
                f"{len(self._pending)} output(s) never came (first: vector "
                f"{self._pending[0].index}, {self._pending[0].label})"
            )
        if latency is not None and placed:
            lat = self.latencies(placed)
            wrong = {i: d for i, d in lat.items() if d != latency}
            if wrong:
                first = min(wrong)
                problems.append(
                    f"{len(wrong)} output(s) with latency != L={latency} "
                    f"(vector {first}: {wrong[first]} cycles)"
                )
        if problems:
            raise ScoreboardError(
                "; ".join(problems)
                + f" [seed={self.seed} config={self.cfg.key()}]\n"
                + (self.first_failure or "")
                + f"\n  replay: {self.replay}"
            )
