"""Deliberately broken versions of the generated ``top``, to show the testbench fails.

Each mutant is a text edit of the generator's Verilog that a plausible design bug
would make. ``mutate`` raises ``MutationNotApplicable`` when the pattern is not in
the text (the generator's output changed): a mutant that silently did nothing
would make its test meaningless.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

__all__ = [
    "MUTANTS",
    "ENCODER_MUTANTS",
    "VICTIM_MUTANTS",
    "DATAPATH_MUTANTS",
    "DB_MUTANTS",
    "Mutant",
    "MutationNotApplicable",
    "mutate",
]


class MutationNotApplicable(ValueError):
    pass


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    apply: Callable[[str], str]


def _module(text: str, name: str) -> tuple[int, int]:
    m = re.search(rf"^module {re.escape(name)}\s*\(.*?^endmodule", text, re.S | re.M)
    if not m:
        raise MutationNotApplicable(f"no module `{name}` in the Verilog")
    return m.start(), m.end()


def _edit_module(text: str, name: str, edit: Callable[[str], str]) -> str:
    start, end = _module(text, name)
    body = text[start:end]
    new = edit(body)
    if new == body:
        raise MutationNotApplicable(f"the edit changed nothing in module `{name}`")
    return text[:start] + new + text[end:]


def _swap_mux(text: str) -> str:
    """The OverQ PE picks its own weight for a non-NORMAL state and the weight of the
    row above for NORMAL (the two inputs of the 2:1 weight mux swapped)."""

    def edit(body):
        return re.sub(r"\?\s*w_in\s*:\s*w_out\b", "? w_out : w_in", body, count=1)

    return _edit_module(text, "pe", edit)


def _select_ignores_shifted(text: str) -> str:
    """The weight mux select decodes only state bit 1: SHIFTED (01) wrongly keeps the
    PE's own weight. Visible only when a cascade moves a value."""

    def edit(body):
        return re.sub(r"(assign\s+\w+\s*=\s*)\|\s*state_in\s*;", r"\1state_in[1];", body, count=1)

    return _edit_module(text, "pe", edit)


def _drop_shift(text: str) -> str:
    """The first scaled product (a left shift written as zeros appended to a
    sign-extended product) loses its shift: the zeros become sign bits."""
    pattern = re.compile(r"\{\s*((?:(\w+)\[(\d+)\],\s*)+)(\w+),\s*(\d+)'h0\s*\}")

    def edit(body):
        def repl(m):
            sign, n = f"{m.group(2)}[{m.group(3)}]", int(m.group(5))
            return "{ " + m.group(1) + ", ".join([sign] * n) + ", " + m.group(4) + " }"

        return pattern.sub(repl, body, count=1)

    return _edit_module(text, "pe", edit)


def _skew_off_by_one(text: str) -> str:
    """The input skew of the last delayed row is one register short."""

    def edit(body):
        m = re.search(r"assign\s+a_out\s*=\s*\{(.*?)\};", body, re.S)
        if not m:
            return body
        regs = re.findall(r"\b(a_r(\d+)_d(\d+))\b", m.group(1))
        deep = [(name, int(r), int(d)) for name, r, d in regs if int(d) >= 2]
        if not deep:
            return body
        name, r, d = deep[0]
        inner = m.group(1).replace(name, f"a_r{r}_d{d - 1}", 1)
        return body[: m.start(1)] + inner + body[m.end(1) :]

    return _edit_module(text, "skew", edit)


def _valid_early(text: str) -> str:
    """``y_valid`` comes one cycle early (a stage missing in the valid pipeline)."""

    def edit(body):
        regs = sorted({int(n) for n in re.findall(r"\bvalid_d(\d+)\b", body)})
        if len(regs) < 2:
            return body
        last = max(n for n in regs if re.search(rf"=\s*valid_d{n}\s*;", body))
        return re.sub(rf"=\s*valid_d{last}\s*;", f"= valid_d{last - 1};", body, count=1)

    return _edit_module(text, "valid_pipe", edit)


def _reset_misses_a_stage(text: str) -> str:
    """One stage of the valid pipeline ignores ``rst``: a vector in flight survives."""

    def edit(body):
        return re.sub(r"\n\s*if \(rst\) begin\s*\\\$\d+\s*=\s*1'h0;\s*end", "", body, count=1)

    return _edit_module(text, "valid_pipe", edit)


MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant("mux_inputs_swapped", "OverQ weight mux inputs swapped", _swap_mux),
        Mutant(
            "mux_select_ignores_shifted",
            "weight mux select wrong for SHIFTED",
            _select_ignores_shifted,
        ),
        Mutant("dropped_shift", "a scaled product loses its left shift", _drop_shift),
        Mutant("skew_off_by_one", "input skew one register short in one row", _skew_off_by_one),
        Mutant("valid_early", "y_valid one cycle early", _valid_early),
        Mutant("reset_misses_a_stage", "a valid pipeline stage ignores rst", _reset_misses_a_stage),
    )
}


# --- double buffering (designs generated with --double-buffer) -----------------------


def _pe_modules(text: str) -> list[str]:
    return [name for name in ("pe_row0", "pe") if re.search(rf"^module {name}\s*\(", text, re.M)]


def _swap_late(text: str) -> str:
    """Every PE applies a swap one cycle late: the vector that comes with the swap
    still multiplies by the old weights (no bypass from the shadow copy)."""

    def edit(body):
        body = re.sub(
            r"assign weight_now = swap_in \? shadow : weight;", "assign weight_now = weight;", body
        )
        return re.sub(
            r"assign above_now = swap_in \? w_in : weight_above;",
            "assign above_now = weight_above;",
            body,
        )

    for name in _pe_modules(text):
        text = _edit_module(text, name, edit)
    return text


def _swap_line(body: str) -> tuple[re.Match, list[str]]:
    m = re.search(r"assign\s+swap_out\s*=\s*\{(.*?)\};", body, re.S)
    if not m:
        raise MutationNotApplicable("no swap_out concatenation in module `skew`")
    return m, [part.strip() for part in m.group(1).split(",")]


def _shorter(token: str) -> str:
    """The swap token one register earlier (``swap_r3_d3`` -> ``swap_r3_d2``, d1 -> a_swap)."""
    r, d = map(int, re.fullmatch(r"swap_r(\d+)_d(\d+)", token).groups())
    return "a_swap" if d == 1 else f"swap_r{r}_d{d - 1}"


def _swap_early(text: str) -> str:
    """The swap reaches rows 1..R-1 one cycle early (row 0 cannot see the future): the
    vector before the swap already uses the new weights below row 0."""

    def edit(body):
        m, parts = _swap_line(body)
        parts = [p if p == "a_swap" else _shorter(p) for p in parts]
        return body[: m.start(1)] + " " + ", ".join(parts) + " " + body[m.end(1) :]

    return _edit_module(text, "skew", edit)


def _swap_row_out_of_step(text: str) -> str:
    """Only the last row swaps one cycle early, out of step with the wavefront."""

    def edit(body):
        m, parts = _swap_line(body)
        if parts[0] == "a_swap":
            return body
        parts[0] = _shorter(parts[0])  # the concatenation lists row R-1 first
        return body[: m.start(1)] + " " + ", ".join(parts) + " " + body[m.end(1) :]

    return _edit_module(text, "skew", edit)


def _above_ignores_swap(text: str) -> str:
    """SHIFTED / RANGE / PRECISION slots read the shadow copy of the row above, not the
    W[k-1] of their own tile."""

    def edit(body):
        return re.sub(
            r"assign above_now = swap_in \? w_in : weight_above;", "assign above_now = w_in;", body
        )

    return _edit_module(text, "pe", edit)


DB_MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant("swap_late", "every PE swaps one cycle late", _swap_late),
        Mutant("swap_early", "rows 1..R-1 swap one cycle early", _swap_early),
        Mutant("swap_row_out_of_step", "the last row swaps one cycle early", _swap_row_out_of_step),
        Mutant("above_ignores_swap", "W[k-1] read from the shadow copy", _above_ignores_swap),
    )
}


def _window_short(text: str) -> str:
    """The range window ends one slot early: the zero c slots away is never seen
    (every stage's farthest zero flag is ignored)."""

    def edit(body):
        flags = re.findall(r"\bzero_k(\d+)_j(\d+)\b", body)
        if not flags:
            return body
        reach = max(int(j) - int(k) for k, j in flags)
        for k, j in sorted(set(flags)):
            if int(j) - int(k) == reach:
                body = body.replace(f"if (zero_k{k}_j{j}) begin", "if (1'h0) begin")
        return body

    return _edit_module(text, "encoder", edit)


def _zero_off_by_one(text: str) -> str:
    """The window's zero test also accepts q = 1 (it ignores the code's lowest bit),
    so an outlier's high bits overwrite a slot that held a 1 (range-only codes)."""

    def edit(body):
        return re.sub(
            r"(assign\s+\S+\s*=\s*\|\s*)(code[\w\[\]:]*)(\s*;)",
            lambda m: f"{m.group(1)}({m.group(2)} >> 1){m.group(3)}",
            body,
        )

    return _edit_module(text, "encoder", edit)


def _shift_unclipped(text: str) -> str:
    """A value moved one slot right by a cascade is not clipped to M: its low b bits
    are moved instead (wrong for a moved outlier). The moved value is the default of
    every stage's ``partner_value`` (the SHIFTED partner)."""

    def edit(body):
        unclipped = dict(
            re.findall(
                r"assign\s+clipped_k(\d+)\s*=\s*outlier_k\d+\s*\?\s*\S+\s*:\s*([^;]+?)\s*;", body
            )
        )
        return re.sub(
            r"(partner_value_k(\d+)\s*=\s*)clipped_k\2(\s*;)",
            lambda m: m.group(1) + unclipped.get(m.group(2), f"clipped_k{m.group(2)}") + m.group(3),
            body,
        )

    return _edit_module(text, "encoder", edit)


def _victim_on_tie(text: str) -> str:
    """The victim comparison is off by one: q_(k+1) <= q' - M, so a tie prunes the
    neighbour instead of clipping the outlier."""

    def edit(body):
        return re.sub(r"(assign\s+cheap_k\d+\s*=\s*[^;<]+)<(\s*[^;=][^;]*;)", r"\1<=\2", body)

    return _edit_module(text, "encoder", edit)


def _victim_over_zero(text: str) -> str:
    """A victim is taken when a zero was in reach: an outlier with a cheap neighbour
    pairs with slot k+1 (skip 1: the neighbour's value is lost) instead of moving it
    towards the zero."""

    def edit(body):
        return re.sub(
            r"(skip_k(\d+)\s*=\s*)(zero_at_k\2)(\s*;)",
            lambda m: (
                f"{m.group(1)}cheap_k{m.group(2)} ? 1 : {m.group(3)}{m.group(4)}"
                if f"cheap_k{m.group(2)}" in body
                else m.group(0)
            ),
            body,
        )

    return _edit_module(text, "encoder", edit)


# Mutants of the victim rule: they apply to encoders built with ``range,victim``.
VICTIM_MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant(
            "encoder_victim_on_tie", "victim comparison off by one (ties prune)", _victim_on_tie
        ),
        Mutant(
            "encoder_victim_over_zero", "a victim taken when a zero was in reach", _victim_over_zero
        ),
    )
}


# Mutants of the hardware encoder (``--encoder``): they apply to designs that have it.
ENCODER_MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant("encoder_window_short", "range window one slot short of c", _window_short),
        Mutant("encoder_zero_off_by_one", "zero test also accepts q = 1", _zero_off_by_one),
        Mutant(
            "encoder_shift_unclipped",
            "a moved (SHIFTED) value is not clipped to M",
            _shift_unclipped,
        ),
    )
}


def _apot_levels_swapped(text: str) -> str:
    """The APoT multiplier's first term swaps its first two levels (code 1 and code 2
    select each other's shift)."""

    def edit(body):
        m = re.search(r"casez \(w\[[^\]]+\]\)\s*\n(.*?)endcase", body, re.S)
        if not m:
            return body
        arms = re.findall(r"(\d+'h(\d+):\s*\n\s*(\w+) = ([^;]+);)", m.group(1))
        table = {code: rhs for _, code, _, rhs in arms}
        if "1" not in table or "2" not in table:
            return body
        block = m.group(1)
        for whole, code, lhs, rhs in arms:
            if code in ("1", "2"):
                other = table["2" if code == "1" else "1"]
                block = block.replace(whole, whole.replace(rhs, other), 1)
        return body[: m.start(1)] + block + body[m.end(1) :]

    return _edit_module(text, "mul_apot", edit)


def _apot_negative_zero(text: str) -> str:
    """The APoT negative zero (sign set, every term 0) multiplies by -1 instead of 0."""

    def edit(body):
        return re.sub(
            r"(assign\s+(\\\$\d+)\s*=\s*)-\s*magnitude\s*;",
            r"\1(magnitude == 0) ? (0 - a) : (0 - magnitude);",
            body,
            count=1,
        )

    return _edit_module(text, "mul_apot", edit)


def _precision_scale(text: str) -> str:
    """PRECISION products get the NORMAL scale (2^b) instead of 1."""

    def edit(body):
        normal = re.search(r"\d+'h0, \d+'h1:\s*\n\s*scaled = ([^;]+);", body)
        precision = re.search(r"(\d+'h3:\s*\n\s*scaled = )([^;]+);", body)
        if not normal or not precision:
            return body
        return body[: precision.start(2)] + normal.group(1) + body[precision.end(2) :]

    return _edit_module(text, "pe", edit)


def _deskew_off_by_one(text: str) -> str:
    """Column 0's output de-skew is one register short."""

    def edit(body):
        m = re.search(r"assign\s+y_out\s*=\s*\{(.*?)\};", body, re.S)
        if not m:
            return body
        depth = max((int(d) for d in re.findall(r"\by_c0_d(\d+)\b", m.group(1))), default=0)
        if depth < 2:
            return body
        inner = m.group(1).replace(f"y_c0_d{depth}", f"y_c0_d{depth - 1}", 1)
        return body[: m.start(1)] + inner + body[m.end(1) :]

    return _edit_module(text, "deskew", edit)


def _weight_shift_always(text: str) -> str:
    """The PE's weight register ignores ``w_shift``: the chain shifts every cycle."""

    def edit(body):
        return re.sub(r"if \(w_shift\) begin", "if (1'h1) begin", body, count=1)

    return _edit_module(text, "pe", edit)


def _weight_reset_missing(text: str) -> str:
    """The PE's weight register ignores ``rst``: weights survive a reset."""

    def edit(body):
        return re.sub(r"\n\s*if \(rst\) begin\s*\\\$\d+\s*=\s*\d+'h0+;\s*end", "", body, count=1)

    return _edit_module(text, "pe", edit)


def _acc_one_bit_short(text: str) -> str:
    """The PE's accumulator register is one bit narrower than the port (its top bit
    copies the one below, a sign extension): sums near the bounds wrap."""

    def edit(body):
        def repl(m):
            sig, hi = m.group(2), int(m.group(3))
            return f"{m.group(1)}{{ {sig} [{hi - 1}], {sig} [{hi - 1}:0] }};"

        return re.sub(r"(psum_out <= )(\\\$\d+ )\[(\d+):0\];", repl, body, count=1)

    return _edit_module(text, "pe", edit)


# Mutants of the datapath that need APoT weights and the precision mode to show:
# ``tests/test_verif_mutants.py`` runs them on such a design.
DATAPATH_MUTANTS: dict[str, Mutant] = {
    m.name: m
    for m in (
        Mutant("apot_levels_swapped", "APoT term 0 levels 1 and 2 swapped", _apot_levels_swapped),
        Mutant("apot_negative_zero", "APoT negative zero multiplies by -1", _apot_negative_zero),
        Mutant("precision_scale_normal", "PRECISION product scaled like NORMAL", _precision_scale),
        Mutant(
            "deskew_off_by_one", "output de-skew of column 0 one register short", _deskew_off_by_one
        ),
        Mutant("weight_shift_always", "weight chain shifts without w_shift", _weight_shift_always),
        Mutant("weight_reset_missing", "weight register ignores rst", _weight_reset_missing),
        Mutant("acc_one_bit_short", "accumulator register one bit too narrow", _acc_one_bit_short),
    )
}


def mutate(text: str, name: str) -> str:
    every = {**MUTANTS, **ENCODER_MUTANTS, **VICTIM_MUTANTS, **DATAPATH_MUTANTS, **DB_MUTANTS}
    if name not in every:
        raise ValueError(f"unknown mutant {name!r}; allowed: {', '.join(every)}")
    return every[name].apply(text)
