"""Stimulus for ``top``: weight tiles and activation vectors, from a seed.

Activations are made as real numbers and OverQ-encoded by the reference
(``sw_ref.overq.encode``), so the testbench drives exactly what software would
send. The random activation source is a constrained-random mixture of *motifs*
(plain noise, a cascade of a chosen length, a RANGE pair next to a PRECISION pair,
all-zero / all-max / all-outlier vectors, an outlier in the last row) so that the
coverage bins of ``verif.coverage`` close without hand-written vectors. A
port-level source (any value, any state the configuration can produce, row 0
included) exercises inputs the encoder never emits.

Everything here is deterministic in the ``numpy.random.Generator`` it is given.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

from hw.params import (
    STATE_NORMAL,
    STATE_PRECISION,
    STATE_RANGE,
    STATE_SHIFTED,
    ArrayConfig,
)
from sw_ref.overq import codes as activation_codes
from sw_ref.overq import encode, encode_codes
from verif.ports import weight_codes

__all__ = [
    "Vectors",
    "rng_for",
    "random_weight_codes",
    "extreme_weight_codes",
    "encoded_vectors",
    "random_vectors",
    "port_states",
    "port_vectors",
    "directed_vectors",
    "directed_port_vectors",
    "random_gaps",
]

STEP = 1.0  # activations are made in units of the grid step


@dataclass(frozen=True)
class Vectors:
    """A batch of activation vectors as driven on ``a_data`` / ``a_state``.

    ``raw`` is q = round(x / step) before encoding (for coverage), or None when the
    vectors were made at port level. ``codes`` are the integer codes an array with
    ``--encoder`` takes on ``a_code`` (values/states are then what its encoder must
    make of them), or None.
    """

    values: np.ndarray  # [N, R] int64
    states: np.ndarray  # [N, R] int64
    raw: np.ndarray | None = None
    codes: np.ndarray | None = None

    def __len__(self) -> int:
        return self.values.shape[0]

    @staticmethod
    def concat(parts: "list[Vectors]") -> "Vectors":
        raw = codes = None
        if all(p.raw is not None for p in parts):
            raw = np.concatenate([p.raw for p in parts])
        if all(p.codes is not None for p in parts):
            codes = np.concatenate([p.codes for p in parts])
        return Vectors(
            np.concatenate([p.values for p in parts]),
            np.concatenate([p.states for p in parts]),
            raw,
            codes,
        )


def rng_for(seed: int, *names: str) -> np.random.Generator:
    """A generator that depends only on the run's seed and a stimulus name.

    Each test draws from its own stream, so running one test alone replays
    exactly the stimulus it saw in the full run.
    """
    return np.random.default_rng([seed & 0xFFFFFFFF, *(zlib.crc32(n.encode()) for n in names)])


# --- weights ---------------------------------------------------------------------


def random_weight_codes(cfg: ArrayConfig, rng: np.random.Generator) -> np.ndarray:
    """Codes [R, C] uniform over every ``w_data`` code (APoT: negative zero included),
    with ``weight_min`` and ``weight_max`` planted at random cells (one of them, at
    random, when the array has a single cell)."""
    codes = rng.integers(0, 1 << cfg.weight_bits, size=(cfg.rows, cfg.cols), dtype=np.int64)
    extremes = weight_codes(np.array([cfg.weight_min, cfg.weight_max]), cfg)
    cells = rng.choice(cfg.rows * cfg.cols, size=min(2, cfg.rows * cfg.cols), replace=False)
    rng.shuffle(extremes)
    for cell, code in zip(cells, extremes):
        codes.flat[cell] = code
    return codes


def extreme_weight_codes(cfg: ArrayConfig, which: str) -> np.ndarray:
    """A tile of all ``weight_max`` (``which='max'``) or all ``weight_min`` codes."""
    value = {"max": cfg.weight_max, "min": cfg.weight_min}[which]
    return weight_codes(np.full((cfg.rows, cfg.cols), value), cfg)


# --- activations -----------------------------------------------------------------


def encoded_vectors(x: np.ndarray, cfg: ArrayConfig, step: float = STEP) -> Vectors:
    """Encode real activations x [N, R] with the reference encoder.

    With ``cfg.encoder`` the vectors also carry their integer codes, and values/states
    are ``encode_codes`` of those codes (the same as ``encode`` of x).
    """
    x = np.asarray(x, dtype=np.float64)
    if cfg.encoder:
        c = np.asarray(activation_codes(x, step, cfg), np.int64)
        enc = encode_codes(c, cfg)
    else:
        c = None
        enc = encode(x, step, cfg)
    raw = np.rint(x / step).astype(
        np.int64
    )  # docs/overq-encoding.md "OverQ encoding": q = round half to even
    return Vectors(np.asarray(enc.values, np.int64), np.asarray(enc.states, np.int64), raw, c)


def _normal(cfg, rng, size):
    """Non-zero, non-outlier reals with a fractional part (PRECISION has work to do)."""
    return rng.uniform(0.5, cfg.act_max + 0.49, size=size)


def _outlier(cfg, rng, size):
    """Outliers from just above M to beyond 2^(2b) - 1 (saturating the RANGE pair)."""
    return rng.uniform(cfg.act_max + 0.51, (cfg.wide_max + 1) * 1.25, size=size)


def _noise(cfg, rng, n):
    kind = rng.choice(3, size=(n, cfg.rows), p=[0.3, 0.15, 0.55])
    x = _normal(cfg, rng, (n, cfg.rows))
    x[kind == 0] = 0.0
    out = _outlier(cfg, rng, (n, cfg.rows))
    x[kind == 1] = out[kind == 1]
    return x


def _motif(cfg: ArrayConfig, rng: np.random.Generator, name: str) -> np.ndarray:
    """One vector [R] with a planted situation on top of noise."""
    r, c = cfg.rows, cfg.cascade
    x = _noise(cfg, rng, 1)[0]
    if name == "cascade" and r >= 2:
        length = int(rng.integers(1, min(c, r - 1) + 1))
        k = int(rng.integers(0, r - length))
        x[k] = _outlier(cfg, rng, 1)[0]
        x[k + 1 : k + length] = _normal(cfg, rng, length - 1)
        x[k + length] = 0.0
    elif name == "pair_mix" and r >= 4:
        k = int(rng.integers(0, r - 3))
        first, second = (k, k + 2) if rng.random() < 0.5 else (k + 2, k)
        x[first] = _outlier(cfg, rng, 1)[0]
        x[second] = _normal(cfg, rng, 1)[0]
        x[k + 1] = x[k + 3] = 0.0
    elif name == "all_zero":
        x[:] = 0.0
    elif name == "all_max":
        x[:] = cfg.act_max
    elif name == "all_outlier":
        x[:] = _outlier(cfg, rng, r)
    elif name == "last_outlier":
        x[r - 1] = _outlier(cfg, rng, 1)[0]
    elif name == "victim" and r >= 2:
        # an outlier with no zero in reach and a neighbour at, or one below, the tie
        # q_(k+1) = q' - M (integer outliers, so q' is known exactly)
        k = int(rng.integers(0, r - 1))
        q = int(rng.integers(cfg.act_max + 1, cfg.wide_max + 1))
        x[k] = float(q)
        x[k + 1] = float(q - cfg.act_max - int(rng.integers(0, 2)))
        x[k + 2 : k + cfg.cascade + 1] = np.where(
            x[k + 2 : k + cfg.cascade + 1] == 0.0, 1.0, x[k + 2 : k + cfg.cascade + 1]
        )
    return x


_MOTIFS = ("noise", "cascade", "pair_mix", "all_zero", "all_max", "all_outlier", "last_outlier")
_MOTIF_P = (0.5, 0.25, 0.1, 0.05, 0.03, 0.03, 0.04)


def random_vectors(cfg: ArrayConfig, rng: np.random.Generator, n: int) -> Vectors:
    """n constrained-random real vectors, encoded by the reference."""
    motifs, p = _MOTIFS, _MOTIF_P
    if cfg.victim_enabled:  # only then: every other configuration's stream is unchanged
        motifs, p = motifs + ("victim",), tuple(0.8 * v for v in p) + (0.2,)
    picks = rng.choice(len(motifs), size=n, p=p)
    x = np.stack([_motif(cfg, rng, motifs[i]) for i in picks]) if n else np.zeros((0, cfg.rows))
    return encoded_vectors(x, cfg)


def allowed_states(cfg: ArrayConfig) -> tuple[int, ...]:
    """The states the configuration's encoder can emit (what the RTL must accept)."""
    states = [STATE_NORMAL]
    if cfg.range_enabled:
        states += [STATE_SHIFTED, STATE_RANGE]
    if cfg.precision_enabled:
        states.append(STATE_PRECISION)
    return tuple(states)


def port_states(cfg: ArrayConfig) -> tuple[int, ...]:
    """Every state the RTL accepts: all four whenever any OverQ mode is on (the PE
    implements the whole state table; the modes change only the scales and what the
    encoder emits), so a precision-only array is driven with RANGE too."""
    if not cfg.overq_enabled:
        return (STATE_NORMAL,)
    return (STATE_NORMAL, STATE_SHIFTED, STATE_RANGE, STATE_PRECISION)


def port_vectors(cfg: ArrayConfig, rng: np.random.Generator, n: int) -> Vectors:
    """n vectors of any value and any state the RTL accepts in every row, row 0
    included (its PE must ignore the state)."""
    values = rng.integers(0, cfg.act_max + 1, size=(n, cfg.rows), dtype=np.int64)
    choices = np.asarray(port_states(cfg), dtype=np.int64)
    states = choices[rng.integers(0, len(choices), size=(n, cfg.rows))]
    return Vectors(values, states, None)


def directed_vectors(cfg: ArrayConfig) -> tuple[list[str], Vectors]:
    """Named hand-made situations (the generator's directed list), encoded by the reference.

    Outliers next to zeros in every row, cascades of every length up to c and one
    longer (clipped), an outlier in the last row, outliers with no zero in reach,
    all-zero, all-max and all-outlier vectors, PRECISION pairs in every row, a
    RANGE pair next to a PRECISION pair, competing outliers, and one-hot vectors
    that isolate each row's weights.
    """
    r, c, m = cfg.rows, cfg.cascade, cfg.act_max
    big, huge, mid = m + 3.0, float(cfg.wide_max + 7), max(1.0, m // 2) + 0.25
    cases: list[tuple[str, np.ndarray]] = []

    def add(name, x):
        cases.append((name, np.asarray(x, dtype=np.float64)))

    base = np.full(r, mid)
    add("all zero", np.zeros(r))
    add("all max", np.full(r, float(m)))
    add("all outlier, saturating", np.full(r, huge))
    add("all ones", np.ones(r))
    for k in range(r):
        x = np.zeros(r)
        x[k] = float(m)
        add(f"one-hot max in row {k}", x)
    for k in range(r - 1):
        x = base.copy()
        x[k], x[k + 1] = big, 0.0
        add(f"outlier in row {k}, zero below", x)
    for length in range(1, min(c + 1, r - 1) + 1):
        for k in sorted({0, r - 1 - length}):
            x = base.copy()
            x[k] = huge if length % 2 else big
            x[k + length] = 0.0
            add(
                f"cascade of {length} from row {k}"
                + (" (beyond c: clipped)" if length > c else ""),
                x,
            )
    if c >= 2:
        for k in range(r - c):
            x = base.copy()
            x[k], x[k + c] = big, 0.0
            add(f"cascade of c={c} from row {k}", x)
    x = base.copy()
    x[r - 1] = huge
    add("outlier in the last row", x)
    add("outliers, no zero anywhere", np.where(np.arange(r) % 2 == 0, big, mid))
    add("outlier / zero alternating", np.where(np.arange(r) % 2 == 0, big, 0.0))
    if r >= 3:
        x = base.copy()
        x[0], x[1], x[2] = big, huge, 0.0
        add("two outliers compete for one zero", x)
        x = base.copy()
        x[0], x[1], x[2] = huge, big, 0.0
        add("a cascade moves an outlier (clipped to M)", x)
    for k in range(r - 1):
        x = base.copy()
        x[k], x[k + 1] = mid + 0.3, 0.0
        add(f"precision pair at row {k}", x)
    if r >= 4:
        add("range pair, then precision pair", np.array([big, 0.0, mid, 0.0] + [mid] * (r - 4)))
        add("precision pair, then range pair", np.array([mid, 0.0, big, 0.0] + [mid] * (r - 4)))
    if cfg.victim_enabled:
        cases += _victim_cases(cfg, base, big, huge)
    names = [name for name, _ in cases]
    return names, encoded_vectors(np.stack([x for _, x in cases]), cfg)


def _victim_cases(cfg: ArrayConfig, base, big: float, huge: float) -> list:
    """Victim mode's directed situations (docs/victim.md); only in that
    mode, so every other configuration's stimulus is unchanged. ``base`` has no zero:
    no outlier below has a zero in reach unless one is planted."""
    r, m = cfg.rows, cfg.act_max
    cases = []
    for k in range(r - 1):
        x = base.copy()
        x[k], x[k + 1] = huge, 1.0
        cases.append((f"victim in row {k + 1} of an outlier in row {k}", x))
    if r >= 2:
        x = base.copy()
        x[0], x[1] = big, 3.0  # q' - M = 3 == q_1: a tie clips
        cases.append(("victim declined on a tie", x))
        x = base.copy()
        x[0], x[1] = big, 2.0  # 2 < 3: pruned
        cases.append(("victim one below the tie", x))
        x = base.copy()
        x[0], x[1] = huge, float(m + 1)  # an outlier pruned by a larger one
        cases.append(("outlier pruned as a victim", x))
    if r >= 4:
        x = base.copy()
        x[0], x[2] = huge, huge
        cases.append(("victim beside a victim", x))
    if r >= 3 and cfg.cascade >= 2:
        x = base.copy()
        x[0], x[1], x[2] = huge, 1.0, 0.0  # the zero at distance 2 wins over the cheap 1
        cases.append(("zero in reach wins over a cheap neighbour", x))
    x = base.copy()
    x[r - 1] = huge
    cases.append(("victim mode: outlier in the last row clipped", x))
    return [(name, np.asarray(x, dtype=np.float64)) for name, x in cases]


def directed_port_vectors(cfg: ArrayConfig) -> tuple[list[str], Vectors]:
    """Named port-level patterns the encoder does not make but the array must take:
    every product at the largest scale (drives y to its bounds with the extreme
    weight tiles), every allowed state side by side, and row 0 given each
    non-NORMAL state (its PE ignores it)."""
    r, m = cfg.rows, cfg.act_max
    allowed = port_states(cfg)
    widest = STATE_RANGE if cfg.overq_enabled else STATE_NORMAL
    cases = [
        ("largest scale in every row", [m] * r, [STATE_NORMAL] + [widest] * (r - 1)),
        (
            "every allowed state side by side",
            [m] * r,
            [allowed[k % len(allowed)] for k in range(r)],
        ),
    ]
    for shift in range(1, len(allowed)):  # every state in every row, rotated
        cases.append(
            (
                f"every state side by side, rotated by {shift}",
                [m] * r,
                [allowed[(k + shift) % len(allowed)] for k in range(r)],
            )
        )
    for state in allowed[1:]:
        cases.append(
            (f"row 0 given state {state} (ignored)", [m] * r, [state] + [STATE_NORMAL] * (r - 1))
        )
    names = [name for name, _, _ in cases]
    values = np.array([v for _, v, _ in cases], dtype=np.int64)
    states = np.array([f for _, _, f in cases], dtype=np.int64)
    return names, Vectors(values, states, None)


# --- timing ----------------------------------------------------------------------


def random_gaps(
    rng: np.random.Generator, n: int, back_to_back: float = 0.5, max_gap: int = 4
) -> np.ndarray:
    """Idle cycles before each of n vectors: 0 with probability ``back_to_back``,
    else 1..max_gap; runs of back-to-back vectors and gaps alternate."""
    gaps = rng.integers(1, max_gap + 1, size=n)
    gaps[rng.random(n) < back_to_back] = 0
    return gaps
