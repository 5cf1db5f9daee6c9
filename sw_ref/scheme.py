"""``Scheme``: how ``sw_ref.quantize`` quantizes a model, one frozen value.

One scheme holds every choice a user makes (bits, formats, the clipping method, OCS,
the OverQ array it runs on, the channel order); calibration makes the rest per layer
(signed or unsigned inputs, a zero point, the step). ``overrides`` maps module-name
patterns (``fnmatch``: ``"classifier"``, ``"*.dense"``, ``"layer.?.output.*"``) to field
values for the layers they match, applied in order, so a later pattern wins.
``scheme.for_layer(name)`` is the scheme one layer takes.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import asdict, dataclass, fields, replace

from hw.params import ArrayConfig
from sw_ref import quant

__all__ = ["CLIP_METHODS", "Scheme"]

# The clipping methods of ``sw_ref.quant`` plus "p99": the OverQ convention, a step
# of (99th percentile of the positive inputs) / (2^b - 1), which leaves about 1 % of
# the slots as outliers for the range mode to place.
CLIP_METHODS = tuple(quant.METHODS) + ("p99",)
WEIGHT_CLIPS = ("max", "mse", "percentile", "aciq_laplace", "aciq_gauss", "kl")
# Bits the channel order and the OverQ step are planned for when act_bits is None
# (float activations): the array's default code width.
PLAN_ACT_BITS = ArrayConfig().act_bits


def _bits(value, name: str, lo: int) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= 16:
        raise ValueError(f"{name} must be None or an integer in {lo}..16, got {value!r}")


@dataclass(frozen=True)
class Scheme:
    """What every Conv2d/Linear of a model becomes (see the module docstring).

    - ``act_bits`` / ``weight_bits``: code widths; None keeps that side in float (the
      reparametrizations, channel order and OCS, still apply).
    - ``weight_format``: ``int`` (symmetric signed) or ``apot``; ``per_channel``:
      one weight threshold per output channel; ``weight_clip``: its method.
    - ``clip``: the activation clipping method (``CLIP_METHODS``).
    - ``ocs_ratio``: weight OCS expand ratio (0: none); grid-aware for int weights.
    - ``overq``: the array's modes for unsigned (or floored) inputs, e.g. ``"range"``,
      ``"range,precision"``; None or ``"none"``: the plain uniform quantizer.
    - ``rows`` (R) and ``cascade`` (c): the array the vectors are tiled for.
    - ``channel_order``: an OverQ-aware order of each layer's reduction slots.
    - ``overrides``: {pattern: {field: value}}; stored as a tuple of pairs.
    """

    act_bits: int | None = 4
    weight_bits: int | None = 8
    weight_format: str = "int"
    per_channel: bool = True
    clip: str = "mse"
    ocs_ratio: float = 0.0
    overq: str | None = "range"
    rows: int = 8
    cascade: int = 2
    channel_order: bool = False
    overrides: object = ()
    weight_clip: str = "max"

    def __post_init__(self):
        _bits(self.act_bits, "act_bits", 2)
        _bits(self.weight_bits, "weight_bits", 2)
        if self.weight_format not in ("int", "apot"):
            raise ValueError(f"weight_format must be int or apot, got {self.weight_format!r}")
        if self.weight_format == "apot" and self.weight_bits is not None:
            from sw_ref import apot

            apot.config_for(self.weight_bits)  # 1 sign bit + 2-bit terms: odd widths
        if self.clip not in CLIP_METHODS:
            raise ValueError(f"clip must be one of {', '.join(CLIP_METHODS)}, got {self.clip!r}")
        if self.weight_clip not in WEIGHT_CLIPS:
            raise ValueError(
                f"weight_clip must be one of {', '.join(WEIGHT_CLIPS)}, got {self.weight_clip!r}"
            )
        if isinstance(self.ocs_ratio, bool) or not (
            isinstance(self.ocs_ratio, (int, float)) and 0 <= self.ocs_ratio <= 1
        ):
            raise ValueError(f"ocs_ratio must be in [0, 1], got {self.ocs_ratio!r}")
        for name in ("per_channel", "channel_order"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be True or False, got {getattr(self, name)!r}")
        if self.overq == "none":
            object.__setattr__(self, "overq", None)
        object.__setattr__(self, "overrides", _normalise_overrides(self.overrides))
        for _, values in self.overrides:  # every override must make a valid scheme
            replace(self, overrides=(), **dict(values))
        self.array_config()  # rows, cascade, modes and bits must make an array

    def array_config(self, act_bits: int | None = None) -> ArrayConfig:
        """The OverQ array the input vectors are encoded for (``act_bits`` or the plan bits)."""
        bits = act_bits or self.act_bits or PLAN_ACT_BITS
        return ArrayConfig(
            rows=self.rows, act_bits=bits, overq=self.overq or (), cascade=self.cascade
        )

    @property
    def overq_enabled(self) -> bool:
        return self.overq is not None

    def for_layer(self, name: str) -> "Scheme":
        """The scheme of module ``name``: every matching override applied, in order."""
        s = replace(self, overrides=())
        for pattern, values in self.overrides:
            if fnmatch.fnmatchcase(name, pattern):
                s = replace(s, **dict(values))
        return s

    def matched(self, names) -> set[str]:
        """The override patterns that match at least one of ``names``."""
        return {p for p, _ in self.overrides if any(fnmatch.fnmatchcase(n, p) for n in names)}

    def to_dict(self) -> dict:
        d = asdict(self)
        d["overrides"] = {p: dict(v) for p, v in self.overrides}
        return d

    def key(self) -> str:
        """A stable text of every field (cache keys, JSON)."""
        return json.dumps(self.to_dict(), sort_keys=True)


_FIELDS = None


def _normalise_overrides(overrides) -> tuple:
    """{pattern: {field: value}} (or its pairs) -> ((pattern, ((field, value), ...)), ...)."""
    global _FIELDS
    if _FIELDS is None:
        _FIELDS = {f.name for f in fields(Scheme)} - {"overrides"}
    items = overrides.items() if isinstance(overrides, dict) else overrides
    out = []
    for pattern, values in items:
        if not isinstance(pattern, str):
            raise ValueError(f"override patterns must be strings, got {pattern!r}")
        values = dict(values)
        unknown = sorted(set(values) - _FIELDS)
        if unknown:
            raise ValueError(
                f"override {pattern!r} sets unknown fields {', '.join(unknown)}; "
                f"allowed: {', '.join(sorted(_FIELDS))}"
            )
        out.append((pattern, tuple(sorted(values.items()))))
    return tuple(out)
