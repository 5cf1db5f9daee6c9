"""Outlier channel splitting (OCS, Zhao et al., arXiv 1901.09504).

Weight OCS halves the input channel that holds the largest |w| and appends the
halved copy as a new input channel fed by a duplicate of the same activation
channel, so ``w_split @ concat(x, x[:, index]) == w @ x`` while the weight range
shrinks. Activation OCS does the dual: it halves and duplicates a producer's output
channel (valid through ReLU and max-pooling, which commute with a positive scale)
and duplicates the consumer's input weights for it.

Quantization-aware splitting keeps the rounding of the split weights consistent
with the unsplit one: for the grid ``step``, ``Q(w1) + Q(w2) == Q(w)`` exactly,
where ``Q(v) = round_half_even(v / step)`` computed in float64 like
``sw_ref.quant.quantize`` (the grid, before range clipping).
The paper offsets the halves by +-step/4; under round half to even that fails on
ties (w = 2.5 step: 1.5 -> 2 and 1.0 -> 1 sum to 3, but Q(w) = 2), and near ties a
float error decides. Here each half is centred in its own rounding cell instead:
with q = Q(w) and e = w/step - q (|e| <= 1/2), the halves are (ceil(q/2) + e/2) and
(floor(q/2) + e/2) steps. That is plain halving when q is even and an offset of
+-step/2 when q is odd; both halves lie within step/4 of their integers, so neither
ties nor float rounding can change their codes.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from sw_ref import checks

__all__ = [
    "OCSInput",
    "grid_split",
    "merge_channels",
    "split_activations",
    "split_layer",
    "split_model",
    "split_model_activations",
    "split_weights",
]


def _check_ratio(expand_ratio: float) -> None:
    if isinstance(expand_ratio, bool) or not (
        isinstance(expand_ratio, (int, float)) and 0 <= expand_ratio <= 1
    ):
        raise ValueError(f"expand_ratio must be in [0, 1], got {expand_ratio!r}")


def _check_weights(w, name: str = "w") -> torch.Tensor:
    """A float tensor of finite weights: halving integers would truncate them."""
    if not isinstance(w, torch.Tensor):
        w = torch.as_tensor(checks.real_data(w, name))
    return checks.real_data(w, name, integers=False)


def grid_split(w: torch.Tensor, step: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Split w into w1 + w2 == w with round(w1/step) + round(w2/step) == round(w/step).

    ``w`` is a floating-point tensor (integer weights are refused: their halves would
    be truncated), ``step`` a finite number > 0, or a tensor of them that broadcasts
    against ``w`` (one step per weight: per-channel grids).
    """
    step = _check_step(step)
    w = _check_weights(w)
    wd = w.to(torch.float64)  # the grid as sw_ref.quant.quantize computes it
    odd = torch.remainder(torch.round(wd / step), 2)  # 0 or 1, also for negative codes
    offset = odd * (step / 2)
    return (wd / 2 + offset).to(w.dtype), (wd / 2 - offset).to(w.dtype)


def _check_step(step):
    """A finite step > 0, or a float64 tensor of them (per-channel grids)."""
    if isinstance(step, torch.Tensor) and step.ndim > 0:
        return checks.positive_values(step, "step").to(torch.float64)
    return checks.positive(step, "step")


def split_weights(w, expand_ratio: float, step: float | None = None):
    """Greedy weight OCS along the input-channel axis (axis 1) of ``w`` [O, I, ...].

    Splits ceil(expand_ratio * I) times; each time the channel (original or added)
    holding the largest |w| is halved and its copy appended. Returns ``(w_split,
    index)``: ``index[j]`` is the original input channel that feeds added channel
    I + j, so ``x_ext = concat(x, x[:, index])``. With ``step`` the halves are split
    on that grid (see module docstring); otherwise they are exact halves. ``step`` may
    also be one step per output channel (a tensor of O entries, per-channel weights).

    ``w`` must be a non-empty floating-point tensor: integer weights are refused
    (TypeError) rather than converted, since their halves would not be integers.
    """
    _check_ratio(expand_ratio)
    if step is not None:
        step = _check_step(step)
    w = _check_weights(w)
    if w.ndim < 2:
        raise ValueError(f"w needs shape [O, I, ...], got {tuple(w.shape)}")
    checks.real_data(w, "w", empty=False)
    if isinstance(step, torch.Tensor):  # per output channel -> per entry of a row
        if step.shape != (w.shape[0],):
            raise ValueError(
                f"a per-channel step needs {w.shape[0]} entries (one per output "
                f"channel), got shape {tuple(step.shape)}"
            )
        step = step.repeat_interleave(math.prod(w.shape[2:]))
    n_in = w.shape[1]
    n_split = math.ceil(expand_ratio * n_in)
    # channel-major view [I + n, O * k...] so one row is one input channel
    rows = w.transpose(0, 1).reshape(n_in, -1).clone()
    rows = torch.cat([rows, rows.new_zeros(n_split, rows.shape[1])])
    source = list(range(n_in))
    peak = rows[:n_in].abs().amax(dim=1)
    peak = torch.cat([peak, peak.new_full((n_split,), -1.0)])
    for j in range(n_split):  # sequential: every split changes the next choice
        c = int(torch.argmax(peak))
        if step is None:
            a = b = rows[c] / 2
        else:
            a, b = grid_split(rows[c], step)
        rows[c], rows[n_in + j] = a, b
        peak[c], peak[n_in + j] = a.abs().max(), b.abs().max()
        source.append(source[c])
    w_split = rows.reshape(n_in + n_split, w.shape[0], *w.shape[2:]).transpose(0, 1)
    index = torch.tensor(source[n_in:], dtype=torch.long)
    return w_split.contiguous(), index


class OCSInput(nn.Module):
    """A layer whose input gains the duplicated channels ``x[:, index]`` first.

    ``inner`` is the widened Conv2d/Linear that a hardware array would run.
    """

    def __init__(self, inner: nn.Module, index: torch.Tensor):
        if not isinstance(index, torch.Tensor) or index.ndim != 1 or index.is_floating_point():
            raise TypeError(f"index must be a 1-d integer tensor, got {index!r}")
        super().__init__()
        self.inner = inner
        self.register_buffer("index", index.clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.cat([x, x[:, self.index]], dim=1))


def _widened(layer: nn.Module, weight: torch.Tensor) -> nn.Module:
    """A copy of ``layer`` with ``weight`` (more input channels) and the same bias."""
    new = copy.deepcopy(layer)
    new.weight = nn.Parameter(weight.detach().clone(), requires_grad=layer.weight.requires_grad)
    if isinstance(new, nn.Conv2d):
        new.in_channels = weight.shape[1]
    else:
        new.in_features = weight.shape[1]
    return new


def _check_layer(layer: nn.Module) -> None:
    if isinstance(layer, nn.Conv2d):
        if layer.groups != 1:
            raise ValueError("OCS supports Conv2d with groups=1 only")
    elif not isinstance(layer, nn.Linear):
        raise ValueError(f"OCS supports nn.Conv2d and nn.Linear, got {type(layer).__name__}")


def split_layer(layer: nn.Module, expand_ratio: float, step: float | None = None) -> OCSInput:
    """Weight OCS of one Conv2d/Linear, returned as an equivalent ``OCSInput``."""
    _check_layer(layer)
    w_split, index = split_weights(layer.weight.detach(), expand_ratio, step)
    return OCSInput(_widened(layer, w_split), index)


def split_model(
    model: nn.Module, expand_ratio: float, steps: dict | None = None, names=None
) -> nn.Module:
    """A copy of ``model`` with every (or each named) Conv2d/Linear weight-split.

    ``steps`` optionally maps a layer name to its grid step for a
    quantization-aware split. The copy computes the same function.
    """
    model = copy.deepcopy(model)
    targets = [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, (nn.Conv2d, nn.Linear)) and (names is None or name in names)
    ]
    found = {name for name, _ in targets}
    for arg, wanted in (("names", names), ("steps", steps)):
        missing = sorted(set(wanted or ()) - found)
        if missing:
            raise ValueError(
                f"{arg} lists layers that are not Conv2d/Linear layers of the model "
                f"(or not in names): {', '.join(map(str, missing))}"
            )
    for name, step in (steps or {}).items():
        checks.positive(step, f"steps[{name!r}]")
    for name, mod in targets:
        parent_name, _, attr = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        step = (steps or {}).get(name)
        setattr(parent, attr, split_layer(mod, expand_ratio, step))
    return model


def split_activations(
    producer: nn.Module, consumer: nn.Module, channel_peak, expand_ratio: float
) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    """Activation OCS between a producer and its consumer layer.

    ``channel_peak[c]`` is the largest activation seen on the producer's output
    channel c (after ReLU). Greedily halve the channel with the largest peak
    ceil(expand_ratio * C) times: the producer's output row (weights and bias) is
    halved and duplicated, and the consumer's input weights for the channel are
    duplicated. Only positively homogeneous ops (ReLU, max-pool, flatten) may sit
    between the two. A Linear consumer after a flatten sees each channel as
    ``in_features / C`` consecutive features. Returns (producer', consumer', index)
    where ``index[j]`` is the original channel behind new channel C + j.
    """
    _check_ratio(expand_ratio)
    _check_layer(producer)
    _check_layer(consumer)
    w_p = producer.weight.detach().clone()
    b_p = producer.bias.detach().clone() if producer.bias is not None else None
    n_ch = w_p.shape[0]
    w_c = consumer.weight.detach()
    if w_c.shape[1] % n_ch:
        raise ValueError(
            f"consumer has {w_c.shape[1]} inputs, not a multiple of the producer's {n_ch} channels"
        )
    group = w_c.shape[1] // n_ch  # features per channel (1 for conv, H*W after a flatten)
    w_c = w_c.reshape(w_c.shape[0], n_ch, group, *w_c.shape[2:])
    checks.nonnegative_values(channel_peak, "channel_peak")
    peak = torch.as_tensor(channel_peak, dtype=torch.float64).clone()
    if peak.shape != (n_ch,):
        raise ValueError(f"channel_peak must have {n_ch} entries, got {tuple(peak.shape)}")
    index = []
    for _ in range(math.ceil(expand_ratio * n_ch)):  # sequential greedy choice
        c = int(torch.argmax(peak))
        peak[c] /= 2
        peak = torch.cat([peak, peak[c : c + 1]])
        w_p[c] /= 2
        w_p = torch.cat([w_p, w_p[c : c + 1]])
        if b_p is not None:
            b_p[c] /= 2
            b_p = torch.cat([b_p, b_p[c : c + 1]])
        w_c = torch.cat([w_c, w_c[:, c : c + 1]], dim=1)
        index.append(c if c < n_ch else index[c - n_ch])
    new_p = copy.deepcopy(producer)
    new_p.weight = nn.Parameter(w_p)
    if b_p is not None:
        new_p.bias = nn.Parameter(b_p)
    if isinstance(new_p, nn.Conv2d):
        new_p.out_channels = w_p.shape[0]
    else:
        new_p.out_features = w_p.shape[0]
    new_c = _widened(consumer, w_c.reshape(w_c.shape[0], -1, *w_c.shape[3:]))
    return new_p, new_c, torch.tensor(index, dtype=torch.long)


def split_model_activations(
    model: nn.Module, pairs, channel_peaks: dict, expand_ratio: float
) -> tuple[nn.Module, dict]:
    """A copy of ``model`` with activation OCS on each (producer, consumer) name pair.

    Pairs are applied in order, so a layer may be a consumer and then a producer
    (conv1 -> conv2, then conv2 -> fc). ``channel_peaks[producer]`` holds the largest
    activation of each of its output channels. Returns the model and, per producer,
    the ``index`` of its added output channels (see ``merge_channels``).
    """
    model = copy.deepcopy(model)
    added = {}
    for prod_name, cons_name in pairs:
        if prod_name not in channel_peaks:
            raise ValueError(f"channel_peaks has no entry for the producer {prod_name!r}")
        prod, cons = model.get_submodule(prod_name), model.get_submodule(cons_name)
        new_p, new_c, index = split_activations(prod, cons, channel_peaks[prod_name], expand_ratio)
        for name, mod in ((prod_name, new_p), (cons_name, new_c)):
            parent_name, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent_name) if parent_name else model, attr, mod)
        added[prod_name] = index
    return model, added


def merge_channels(y: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Fold a split producer's output [N, C + n, ...] back to its C original channels."""
    if not isinstance(index, torch.Tensor) or index.ndim != 1 or index.is_floating_point():
        raise TypeError(f"index must be a 1-d integer tensor, got {index!r}")
    if not isinstance(y, torch.Tensor) or y.ndim < 2:
        raise ValueError(f"y must be a tensor [N, C + n, ...], got {getattr(y, 'shape', y)!r}")
    n_orig = y.shape[1] - len(index)
    if n_orig < 1:
        raise ValueError(
            f"index has {len(index)} entries but y only {y.shape[1]} channels; y must have "
            "the C original channels and one per index entry"
        )
    outside = (index < 0) | (index >= n_orig)
    if bool(outside.any()):
        raise ValueError(
            f"index must hold original channels 0..{n_orig - 1}, found {index[outside][0].item()}"
        )
    return y[:, :n_orig].clone().index_add_(1, index.to(y.device), y[:, n_orig:])
