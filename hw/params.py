"""The one configuration of an overq array, shared by hw, sw_ref, verif and synth.

Every width, scale and latency formula lives here, computed once, so that the
generator, the reference model, the testbenches and the synthesis flow cannot
disagree about them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Iterable

__all__ = [
    "ArrayConfig",
    "OVERQ_MODES",
    "WEIGHT_FORMATS",
    "STATE_NORMAL",
    "STATE_SHIFTED",
    "STATE_RANGE",
    "STATE_PRECISION",
    "STATE_NAMES",
    "apot_official_exponents",
    "apot_paper_exponents",
    "EngineConfig",
]

# "victim" (needs "range"): an outlier with no zero in reach prunes its right neighbour
# when that costs less than clipping (docs/victim.md); listed last, so the
# names of configurations without it never change.
OVERQ_MODES = ("range", "precision", "victim")
WEIGHT_FORMATS = ("int", "apot")

# The 2-bit OverQ state that travels with every activation slot.
STATE_NORMAL = 0  # own weight W[k]
STATE_SHIFTED = 1  # weight of the row above, W[k-1], normal scale
STATE_RANGE = 2  # W[k-1], scaled by 2^b more than normal (the outlier's high bits)
STATE_PRECISION = 3  # W[k-1], scale 1 (the extra low bits of a precise value)
STATE_NAMES = ("NORMAL", "SHIFTED", "RANGE", "PRECISION")

DEFAULT_CASCADE = 2  # how far a range overwrite reaches unless told otherwise
MAX_BITS = 16  # an upper bound that keeps the generated widths sane

# The optional on/off structure switches, in the order every name, key and replay
# command lists them: (field, CLI flag, configuration-key part, make variable). Each
# appears only when on, so a default configuration's artefacts never change.
STRUCTURE_SWITCHES = (
    ("product_register", "--product-register", "preg", "PRODUCT_REGISTER"),
    ("input_register", "--input-register", "ireg", "INPUT_REGISTER"),
    ("double_buffer", "--double-buffer", "dbuf", "DOUBLE_BUFFER"),
    ("encoder", "--encoder", "enc", "ENCODER"),
)
# Every width the array holds (decoded weights, products, accumulators and outputs) is
# at most this many bits: acc_bits and the derived overflow-free width obey the same
# bound, so int64 carries every value in sw_ref, verif and the simulators.
MAX_ACC_BITS = 64
# What the generator can build at once: PEs plus the registers of the input skew and
# output de-skew (R(R-1)/2 + C(C-1)/2), each costing about the same time and memory to
# convert. 2^17 admits 256x256 (130816) and refuses what would take hours or run out of
# memory minutes after the start. The per-unit costs are measured on the 2-core build
# machine: a 2x512 array (131841 units) took 419 s and 1.7 GB, a 32x32 one 9.5 s.
MAX_BUILD_UNITS = 1 << 17
_SECONDS_PER_UNIT = 3.2e-3
_BYTES_PER_UNIT = 13e3


def apot_paper_exponents(term_bits: int, n_terms: int) -> tuple[tuple[int, ...], ...]:
    """Exponents of the APoT paper's level set, scaled so every level is an integer.

    Term i with code t > 0 is 2^(E - i - (t-1)*n), E = (n-1) + (2^k-2)*n
    (k = term_bits, n = n_terms); code 0 is the value 0 and is not listed.
    """
    k, n = term_bits, n_terms
    top = (n - 1) + (2**k - 2) * n
    return tuple(tuple(top - i - (t - 1) * n for t in range(1, 2**k)) for i in range(n))


def apot_official_exponents(magnitude_bits: int) -> tuple[tuple[int, ...], ...]:
    """Per-term exponent tables of the official APoT code (``build_power_value``).

    For 2, 4 and 6 magnitude bits these equal the paper's even split with 2-bit
    terms; for 3 and 5 bits the official code splits unevenly (2+1 and 2+2+1 bits),
    which no single term width can express, so the tables are listed here.
    Levels are scaled by the smallest power of two that makes them integers.
    """
    tables = {
        2: ((2, 1, 0),),
        # base_a = {1/2, 1/4, 1/16}, base_b = {1/8}; times 16
        3: ((3, 2, 0), (1,)),
        4: apot_paper_exponents(2, 2),
        # base_a = {1/2, 1/8, 1/64}, base_b = {1/4, 1/16, 1/128}, base_c = {1/32}; x128
        5: ((6, 4, 1), (5, 3, 0), (2,)),
        6: apot_paper_exponents(2, 3),
    }
    if magnitude_bits not in tables:
        raise ValueError(
            f"no official APoT level set for {magnitude_bits} magnitude bits; "
            f"allowed: {sorted(tables)}"
        )
    return tables[magnitude_bits]


def _parse_overq(overq) -> frozenset[str]:
    """Modes from a set, or from text; an empty name (``''``, ``','``) is an error."""
    if overq is None:
        return frozenset()
    if isinstance(overq, str):
        text = overq.strip().lower()
        if text in ("none", "off", "baseline"):
            return frozenset()
        items: Iterable[str] = [part.strip() for part in text.split(",")]
    else:
        try:
            items = [str(part).strip().lower() for part in overq]
        except TypeError:
            raise ValueError(
                f"overq must be a set of modes or text such as 'range,precision', got {overq!r}"
            ) from None
    if "" in items:
        raise ValueError(
            f"overq has an empty mode name in {overq!r}; allowed: range, precision, "
            "range,precision, range,victim, range,precision,victim or none"
        )
    modes = frozenset(items)
    unknown = sorted(modes - set(OVERQ_MODES))
    if unknown:
        raise ValueError(
            f"unknown OverQ mode(s) {', '.join(unknown)}; allowed: range, precision, "
            "victim (with range), or none"
        )
    if "victim" in modes and "range" not in modes:
        raise ValueError(
            f"overq mode victim needs range (a victim takes the outlier's RANGE half), "
            f"got {overq!r}; allowed: range,victim or range,precision,victim"
        )
    return modes


_BYTE_UNITS = ((1e12, "TB"), (1e9, "GB"), (1e6, "MB"), (1.0, "bytes"))
_TIME_UNITS = ((86400.0, "days"), (3600.0, "h"), (60.0, "min"), (1.0, "s"))


def _amount(value: float, units) -> str:
    """``value`` in the largest unit it reaches: "1.7 GB", "190 days", "6.5e+15 TB"."""
    size, name = next((u for u in units if value >= u[0]), units[-1])
    v = value / size
    return f"{v:.2g} {name}" if v < 100 else f"{v:.0f} {name}" if v < 1e6 else f"{v:.1e} {name}"


def _signed_bits_for(lo: int, hi: int) -> int:
    """Smallest two's-complement width that holds every integer in [lo, hi].

    ``n.bit_length() + 1`` bits hold n >= 0; ``(~lo).bit_length() + 1`` = that of
    -lo - 1 holds lo < 0 (exact for the huge values a bad APoT setting derives).
    """
    negative = (~lo).bit_length() if lo < 0 else 0
    return 1 + max(max(hi, 0).bit_length(), negative)


@dataclass(frozen=True)
class ArrayConfig:
    """Configuration of one OverQ-enabled weight-stationary array.

    ``rows`` is the reduction dimension (one activation vector has ``rows`` slots),
    ``cols`` the number of outputs per vector. ``overq`` accepts a set of modes or a
    string such as ``"range,precision"`` / ``"none"``. ``acc_bits=None`` selects the
    smallest width that can never overflow for any value on the ports.
    ``product_register`` registers each PE's scaled product before the accumulate:
    one more cycle of latency, a shorter critical path (off by default).
    ``input_register`` registers each PE's multiplier operands (the activation and the
    mux-selected weight, the state delayed to match): one more cycle of latency, and
    the weight mux leaves the multiplier's path (off by default).
    ``double_buffer`` adds a shadow copy of the weights, shifted at any time, made
    active by ``w_swap`` in step with the wavefront (off by default).
    ``encoder`` puts the OverQ encoder in front of the array: ``top`` takes integer
    codes (``a_code``, ``code_bits`` per slot) instead of ``a_data``/``a_state``
    (off by default; needs an OverQ mode).
    """

    rows: int = 8
    cols: int = 8
    act_bits: int = 4
    weight_bits: int = 4
    weight_format: str = "int"
    apot_term_bits: int = 2
    overq: frozenset = field(default_factory=lambda: frozenset({"range"}))
    cascade: int | None = None
    acc_bits: int | None = None
    allow_overflow: bool = False
    product_register: bool = False
    input_register: bool = False
    double_buffer: bool = False
    encoder: bool = False

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)  # noqa: E731
        set_("overq", _parse_overq(self.overq))
        set_("weight_format", str(self.weight_format).strip().lower())
        for name in ("rows", "cols", "act_bits", "weight_bits", "apot_term_bits", "cascade"):
            value = getattr(self, name)
            if name == "cascade" and value is None:
                # the default reach, 2, shortened for 1- and 2-row arrays
                set_("cascade", min(DEFAULT_CASCADE, max(1, self.rows - 1)))
            elif isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
        if self.rows < 1 or self.cols < 1:
            raise ValueError(f"rows and cols must be >= 1, got rows={self.rows} cols={self.cols}")
        self._validate_size()
        if not 2 <= self.act_bits <= MAX_BITS:
            raise ValueError(f"act_bits must be in 2..{MAX_BITS}, got {self.act_bits}")
        if not 2 <= self.weight_bits <= MAX_BITS:
            raise ValueError(f"weight_bits must be in 2..{MAX_BITS}, got {self.weight_bits}")
        if not 1 <= self.apot_term_bits < MAX_BITS:
            raise ValueError(
                f"apot_term_bits must be in 1..{MAX_BITS - 1}, got {self.apot_term_bits}"
            )
        for name in ("product_register", "input_register", "double_buffer"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if not isinstance(self.allow_overflow, bool):
            raise ValueError(f"allow_overflow must be True or False, got {self.allow_overflow!r}")
        if not isinstance(self.encoder, bool):
            raise ValueError(f"encoder must be True or False, got {self.encoder!r}")
        if self.encoder and self.double_buffer:
            raise ValueError(
                "double_buffer with encoder is not supported yet: the swap token would "
                "have to travel through the encoder's pipeline; choose one of them"
            )
        if self.encoder and not self.overq_enabled:
            raise ValueError(
                "encoder needs an OverQ mode (range and/or precision): with overq=none "
                "there is nothing to encode"
            )
        if self.weight_format not in WEIGHT_FORMATS:
            raise ValueError(f"weight_format must be int or apot, got {self.weight_format!r}")
        if self.weight_format == "apot":
            self._validate_apot()
        max_cascade = max(1, self.rows - 1)
        if not 1 <= self.cascade <= max_cascade:
            raise ValueError(
                f"cascade must be in 1..{max_cascade} for rows={self.rows}, got {self.cascade}"
            )
        if self.acc_bits is not None:
            if isinstance(self.acc_bits, bool) or not isinstance(self.acc_bits, int):
                raise ValueError(f"acc_bits must be an integer, got {self.acc_bits!r}")
            if self.acc_bits < 2 or self.acc_bits > MAX_ACC_BITS:
                raise ValueError(f"acc_bits must be in 2..{MAX_ACC_BITS}, got {self.acc_bits}")
        self._validate_widths()
        if self.acc_bits is not None:
            if self.acc_bits < self.min_acc_bits and not self.allow_overflow:
                raise ValueError(
                    f"acc_bits={self.acc_bits} can overflow; the overflow-free width is "
                    f">= {self.min_acc_bits} (pass allow_overflow / --allow-overflow)"
                )

    def _validate_apot(self):
        magnitude = self.weight_bits - 1
        k = self.apot_term_bits
        if magnitude % k == 0:
            return
        if k == 2 and magnitude in (3, 5):
            return  # the official code's uneven split (2+1, 2+2+1 bits)
        raise ValueError(
            f"weight_bits - 1 = {magnitude} must be a multiple of apot_term_bits = {k} "
            "(or apot_term_bits=2 with weight_bits 4 or 6 for the official uneven sets)"
        )

    def _validate_size(self):
        """Refuse, before any work, an array too large to generate (with its cost)."""
        units = self.build_units
        if units <= MAX_BUILD_UNITS:
            return
        raise ValueError(
            f"a {self.rows}x{self.cols} array is larger than the generator builds: "
            f"{self.rows * self.cols} "
            f"PEs and {units - self.rows * self.cols} skew registers (estimated "
            f"{_amount(units * _BYTES_PER_UNIT, _BYTE_UNITS)} of memory, "
            f"{_amount(units * _SECONDS_PER_UNIT, _TIME_UNITS)}); allowed: PEs + skew "
            f"registers = R*C + R(R-1)/2 + C(C-1)/2 <= {MAX_BUILD_UNITS} (256x256 fits)"
        )

    def _validate_widths(self):
        """Every derived width (weights, products, outputs) obeys the acc_bits bound.

        The outputs' overflow-free width holds the products, which hold the decoded
        weights, so one comparison covers them all; the message names the first
        width that is too wide and what would fit.
        """
        if self.min_acc_bits <= MAX_ACC_BITS:
            return
        limit = f"every width must fit in 2..{MAX_ACC_BITS} bits, like acc_bits"
        if self.weight_format == "apot":
            fits = [k for k in range(1, MAX_BITS) if self._apot_fits(k)]
            choice = (
                f"apot_term_bits {', '.join(map(str, fits))} fit"
                if fits
                else "no apot_term_bits fits"
            )
            raise ValueError(
                f"APoT weights with weight_bits={self.weight_bits}, apot_term_bits="
                f"{self.apot_term_bits} reach 2^{max(map(max, self.apot_exponents))} "
                f"({self.weight_value_bits}-bit values, {self.min_acc_bits}-bit outputs); "
                f"{limit}: {choice}"
            )
        raise ValueError(
            f"rows={self.rows}, act_bits={self.act_bits}, weight_bits={self.weight_bits}, "
            f"overq={self.overq_text} need {self.min_acc_bits}-bit outputs (products of "
            f"{self.product_bits} bits); {limit}: use fewer bits or rows, or fewer modes"
        )

    def _apot_fits(self, term_bits: int) -> bool:
        """Would this configuration with ``apot_term_bits=term_bits`` pass every check?"""
        trial = copy.copy(self)  # not validated: only the width formulas below are read
        object.__setattr__(trial, "apot_term_bits", term_bits)
        try:
            trial._validate_apot()
        except ValueError:
            return False
        return trial.min_acc_bits <= MAX_ACC_BITS

    # --- derived quantities: computed here and nowhere else -----------------------

    @property
    def overq_enabled(self) -> bool:
        return bool(self.overq)

    @property
    def range_enabled(self) -> bool:
        return "range" in self.overq

    @property
    def precision_enabled(self) -> bool:
        return "precision" in self.overq

    @property
    def victim_enabled(self) -> bool:
        """An outlier with no zero in reach may prune its right neighbour (needs range)."""
        return "victim" in self.overq

    @property
    def act_max(self) -> int:
        """M = 2^b - 1, the largest value one slot holds."""
        return (1 << self.act_bits) - 1

    @property
    def wide_max(self) -> int:
        """2^(2b) - 1, the largest value a slot pair holds after an overwrite."""
        return (1 << (2 * self.act_bits)) - 1

    @property
    def code_bits(self) -> int:
        """CB: bits of one slot's code at the encoder's input.

        Range only: q with 2b bits (the widest value a RANGE pair holds); with
        precision: the fine code u with 3b bits (q = round(u / 2^b) is derived from it).
        """
        return (3 if self.precision_enabled else 2) * self.act_bits

    @property
    def state_shifts(self) -> tuple[int, int, int, int]:
        """Left shift applied to the product, indexed by state (the state table of docs/overq-encoding.md)."""
        b = self.act_bits
        normal = b if self.precision_enabled else 0
        return (normal, normal, normal + b, 0)

    @property
    def apot_exponents(self) -> tuple[tuple[int, ...], ...]:
        """Per term, the exponent selected by code t = 1, 2, ... (code 0 is zero)."""
        if self.weight_format != "apot":
            raise ValueError("apot_exponents needs weight_format='apot'")
        magnitude = self.weight_bits - 1
        k = self.apot_term_bits
        if magnitude % k == 0:
            return apot_paper_exponents(k, magnitude // k)
        return apot_official_exponents(magnitude)

    @property
    def apot_term_widths(self) -> tuple[int, ...]:
        """Bits of each APoT term in the code, term 0 first (next to the sign)."""
        return tuple((len(exps)).bit_length() for exps in self.apot_exponents)

    @property
    def weight_min(self) -> int:
        """Most negative weight value in integer units."""
        if self.weight_format == "int":
            return -(1 << (self.weight_bits - 1))
        return -self.weight_max

    @property
    def weight_max(self) -> int:
        """Most positive weight value in integer units."""
        if self.weight_format == "int":
            return (1 << (self.weight_bits - 1)) - 1
        return sum(1 << max(exps) for exps in self.apot_exponents)

    @property
    def weight_value_bits(self) -> int:
        """Two's-complement width of a decoded weight value (APoT: after the shifts)."""
        return _signed_bits_for(self.weight_min, self.weight_max)

    @property
    def product_bits(self) -> int:
        """Two's-complement width of one unscaled product v * W (a PE's multiplier)."""
        return _signed_bits_for(self.act_max * self.weight_min, self.act_max * self.weight_max)

    @property
    def max_scale_sum(self) -> int:
        """Sum over rows of the largest product scale each row's PE can apply.

        Row 0 has no row above: its PE has no mux and always acts as NORMAL.
        """
        shifts = self.state_shifts
        if not self.overq_enabled:
            return self.rows
        return (1 << shifts[0]) + (self.rows - 1) * (1 << max(shifts))

    @property
    def output_range(self) -> tuple[int, int]:
        """Exact bounds of y[c] over every value the ports can carry."""
        s = self.max_scale_sum * self.act_max
        return s * self.weight_min, s * self.weight_max

    @property
    def min_acc_bits(self) -> int:
        """The smallest overflow-free accumulator / output width."""
        return _signed_bits_for(*self.output_range)

    @property
    def acc_width(self) -> int:
        """The accumulator width in use (``acc_bits`` or the derived minimum)."""
        return self.acc_bits if self.acc_bits is not None else self.min_acc_bits

    @property
    def build_units(self) -> int:
        """PEs plus skew and de-skew registers: what generation time and memory scale with."""
        r, c = self.rows, self.cols
        return r * c + r * (r - 1) // 2 + c * (c - 1) // 2

    @property
    def latency(self) -> int:
        """L: cycles from a vector's ``a_valid`` to its ``y_valid``.

        One cycle per PE along the diagonal wavefront: the vector enters row k
        after k skew cycles, crosses ``cols`` columns and ``rows`` rows, and the
        de-skew registers align every column to the last one: L = R + C - 1.
        With ``product_register`` every PE adds its product one cycle after it
        multiplies; every PE is late by the same cycle, so the partial sums still
        meet in step and the whole array is one cycle later: L = R + C.
        With ``encoder`` the encoder's triangular pipeline replaces the input skew
        and registers every slot's (value, state) once more: slot k reaches row k
        k + 1 cycles after its code, one cycle later than through the skew (+1).
        With ``input_register`` every PE multiplies one cycle after its operands
        arrive, for the same reason as the product register one more cycle.
        ``double_buffer`` adds none: the swap travels with the vector.
        """
        return (
            self.rows
            + self.cols
            - 1
            + int(self.product_register)
            + int(self.encoder)
            + int(self.input_register)
        )

    @property
    def pe_latency(self) -> int:
        """Pipeline stages inside one PE, from its operands to its partial sum: 1, plus
        one for ``input_register`` and one for ``product_register``."""
        return 1 + int(self.input_register) + int(self.product_register)

    # --- presentation ------------------------------------------------------------

    @property
    def overq_text(self) -> str:
        return ",".join(m for m in OVERQ_MODES if m in self.overq) or "none"

    def describe(self) -> dict:
        """Every configuration field and derived number, for headers and --info."""
        info = {
            "rows": self.rows,
            "cols": self.cols,
            "act_bits": self.act_bits,
            "weight_bits": self.weight_bits,
            "weight_format": self.weight_format,
            "apot_term_bits": self.apot_term_bits,
            "overq": self.overq_text,
            "cascade": self.cascade,
            "acc_bits": self.acc_width,
            "min_acc_bits": self.min_acc_bits,
            "allow_overflow": self.allow_overflow,
        }
        if self.product_register:  # listed only when on: default headers stay as they were
            info["product_register"] = True
        if self.input_register:
            info["input_register"] = True
        if self.double_buffer:
            info["double_buffer"] = True
        if self.encoder:  # likewise
            info["encoder"] = True
            info["code_bits"] = self.code_bits
        info["latency"] = self.latency
        if self.weight_format == "apot":
            info["apot_exponents"] = [list(e) for e in self.apot_exponents]
        return info

    def key(self) -> str:
        """A short stable string naming this configuration (cache keys, build dirs)."""
        parts = [
            f"r{self.rows}c{self.cols}",
            f"a{self.act_bits}w{self.weight_bits}{self.weight_format}",
        ]
        if self.weight_format == "apot":
            parts.append(f"k{self.apot_term_bits}")
        parts.append("oq-" + self.overq_text.replace(",", "+"))
        parts.append(f"c{self.cascade}")
        parts.append(f"acc{self.acc_width}")
        parts += [key for field, _, key, _ in STRUCTURE_SWITCHES if getattr(self, field)]
        return "_".join(parts)


# --- the layer engine (`--engine`, docs/engine.md) ------------------------------------

ENGINE_FIELD_BITS = 16  # M, K, N in the command header: each a 16-bit field
ENGINE_CMD_BITS = 64  # one command-stream beat: the header or one column's parameters
ENGINE_CODE_MAX_BITS = 15  # code_max field of the header
ENGINE_BIAS_BITS = 32  # signed
ENGINE_MULT_BITS = 16  # unsigned
ENGINE_SHIFT_BITS = 6
ENGINE_SHIFT_MAX = 47
# Error flags of a refused command (bit positions of the engine's status_error port).
ENGINE_ERRORS = ("bad_m", "bad_k", "bad_n", "bad_code_max", "bad_shift")


def _bytes_wide(bits: int) -> int:
    """AXI4-Stream tdata is a whole number of bytes: ``bits`` rounded up to 8."""
    return -(-bits // 8) * 8


@dataclass(frozen=True)
class EngineConfig:
    """The layer engine: ``array`` plus the limits of one command (docs/engine.md).

    ``array`` is the PE array; the engine always double-buffers its weights and puts
    the OverQ encoder where activation codes enter (before the activation memory), so
    ``array`` is normalised to ``double_buffer=True, encoder=False`` (its ``encoder``
    flag would put a second encoder in front of the PEs). ``max_m`` bounds the rows of
    X per command (the accumulator memory's depth), ``max_k`` the reduction length
    (the accumulator width is overflow-free up to it), ``max_n`` the outputs (the
    parameter memory's depth). The activation memory holds all of X, max_m *
    ceil(max_k / R) vectors: X is sent once and reused for every N tile.
    """

    array: ArrayConfig = field(default_factory=ArrayConfig)
    max_m: int = 64
    max_k: int = 512
    max_n: int = 512

    def __post_init__(self):
        if not isinstance(self.array, ArrayConfig):
            raise ValueError(f"array must be an ArrayConfig, got {self.array!r}")
        import dataclasses

        if not self.array.overq_enabled:
            raise ValueError(
                "the engine needs an OverQ mode (range and/or precision): its encoder "
                "turns codes into (value, state) slots"
            )
        arr = dataclasses.replace(self.array, double_buffer=True, encoder=False)
        object.__setattr__(self, "array", arr)
        for name in ("max_m", "max_k", "max_n"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be an integer, got {value!r}")
            if not 1 <= value < (1 << ENGINE_FIELD_BITS):
                raise ValueError(
                    f"{name} must be in 1..{(1 << ENGINE_FIELD_BITS) - 1} (a "
                    f"{ENGINE_FIELD_BITS}-bit command field), got {value}"
                )
        if arr.code_bits > ENGINE_CODE_MAX_BITS:
            raise ValueError(
                f"the engine's code_max field has {ENGINE_CODE_MAX_BITS} bits but codes "
                f"have {arr.code_bits} (act_bits={arr.act_bits}, overq={arr.overq_text}); "
                f"allowed: code_bits <= {ENGINE_CODE_MAX_BITS}"
            )
        if self.acc_bits > MAX_ACC_BITS - 1:
            raise ValueError(
                f"max_k={self.max_k} needs {self.acc_bits}-bit accumulators; allowed: "
                f"at most {MAX_ACC_BITS - 1} bits (a smaller max_k)"
            )

    # --- derived quantities ----------------------------------------------------

    @property
    def max_k_tiles(self) -> int:
        return -(-self.max_k // self.array.rows)

    @property
    def max_n_tiles(self) -> int:
        return -(-self.max_n // self.array.cols)

    @property
    def acc_bits(self) -> int:
        """Accumulator width: overflow-free for a sum of max_k_tiles array outputs."""
        lo, hi = self.array.output_range
        return _signed_bits_for(lo * self.max_k_tiles, hi * self.max_k_tiles)

    @property
    def out_bits(self) -> int:
        """Bits per column in an output beat: a raw accumulator or a code."""
        return max(self.acc_bits, self.array.code_bits)

    @property
    def state_bits(self) -> int:
        """Stored state bits per slot: 1 where only NORMAL and one other state occur.

        Range with cascade 1 writes only NORMAL/RANGE (the zero is the next slot, so
        nothing is SHIFTED); precision alone only NORMAL/PRECISION; otherwise 2.
        """
        a = self.array
        if a.range_enabled and a.precision_enabled:
            return 2
        if a.range_enabled:
            return 1 if a.cascade == 1 else 2
        return 1

    @property
    def slot_bits(self) -> int:
        """Stored bits per activation slot: b + state bits (slot 0's state is not stored)."""
        return self.array.act_bits + self.state_bits

    @property
    def vector_bits(self) -> int:
        """One activation-memory word: R values and the states of slots 1..R-1."""
        a = self.array
        return a.rows * a.act_bits + (a.rows - 1) * self.state_bits

    @property
    def act_depth(self) -> int:
        return self.max_m * self.max_k_tiles

    @property
    def x_bits(self) -> int:
        return _bytes_wide(self.array.rows * self.array.code_bits)

    @property
    def w_bits(self) -> int:
        return _bytes_wide(self.array.cols * self.array.weight_bits)

    @property
    def y_bits(self) -> int:
        return _bytes_wide(self.array.cols * self.out_bits)

    @property
    def cmd_bits(self) -> int:
        return ENGINE_CMD_BITS

    @property
    def param_bits(self) -> int:
        """One column's requantizer parameters: bias, mult, shift."""
        return ENGINE_BIAS_BITS + ENGINE_MULT_BITS + ENGINE_SHIFT_BITS

    @property
    def biased_bits(self) -> int:
        """acc + bias, signed."""
        return max(self.acc_bits, ENGINE_BIAS_BITS) + 1

    @property
    def scaled_bits(self) -> int:
        """(acc + bias) * mult + r, signed."""
        return self.biased_bits + ENGINE_MULT_BITS + 1

    @property
    def requant_latency(self) -> int:
        """Registers in the requantizer: bias add, multiply, round/shift/clamp."""
        return 3

    @property
    def pipeline_depth(self) -> int:
        """Cycles from a vector's memory read to its output in the output FIFO."""
        return 1 + self.array.latency + self.requant_latency + 1

    @property
    def fifo_depth(self) -> int:
        """Output FIFO entries: one per vector that can be in flight, so a sink that
        is always ready never stalls the array (the controller issues on credit)."""
        depth = 4
        while depth < self.pipeline_depth + 2:
            depth *= 2
        return depth

    def describe(self) -> dict:
        info = self.array.describe()
        info.pop("latency")
        info |= {
            "engine": True,
            "max_m": self.max_m,
            "max_k": self.max_k,
            "max_n": self.max_n,
            "engine_acc_bits": self.acc_bits,
            "stored_bits_per_slot": self.slot_bits,
            "act_memory": f"{self.act_depth} x {self.vector_bits} bits",
            "array_latency": self.array.latency,
        }
        return info

    def key(self) -> str:
        return f"{self.array.key()}_eng-m{self.max_m}k{self.max_k}n{self.max_n}"
