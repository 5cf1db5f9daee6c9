"""Deliberately broken engines, to show that verif.tb_engine catches each bug.

Text edits of the generator's Verilog (``verif.mutants``' way): each names the bug it
plants; ``MutationNotApplicable`` if the pattern is gone (a mutant that changes nothing
would make its test meaningless).
"""

from __future__ import annotations

import re

from verif.mutants import Mutant, _edit_module  # _edit_module raises MutationNotApplicable

__all__ = ["ENGINE_MUTANTS"]


def _sub(module: str, pattern: str, replacement: str, count: int = 0):
    def apply(text: str) -> str:
        return _edit_module(
            text, module, lambda body: re.sub(pattern, replacement, body, count=count, flags=re.M)
        )

    return apply


ENGINE_MUTANTS = (
    Mutant(
        "k_tile_not_accumulated",
        "every K tile overwrites the accumulator instead of adding to it",
        _sub("top", r"^(  assign prior_c\d+ = )[^;]*;", r"\g<1>0;"),
    ),
    Mutant(
        "rounding_off_by_one",
        "the requantizer floors instead of rounding half up (r = 0)",
        # r = (1 << shift) >> 1; Yosys inlines half_c* into the sum, so the edit is
        # on the shifted one
        _sub("top_requant", r"^(  assign \S+ +=) 1'h1 << (shift_c\d+_d2);", r"\g<1> 1'h0 << \2;"),
    ),
    Mutant(
        "beat_dropped_under_backpressure",
        "the output FIFO pops its head whether or not the sink is ready",
        _sub("top_out_fifo", r"^(  assign pop = )r__valid & r__ready;", r"\g<1>r__valid;"),
    ),
    Mutant(
        "stale_weight_tile",
        "only the first K tile of each N tile swaps its weights in; later K tiles "
        "compute with the first tile's weights",
        _sub("top", r"^(    w_swap <= )(\S+) ;", r"\g<1>\2 & ~|issue_k;", count=1),
    ),
)
