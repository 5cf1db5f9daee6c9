"""The real PEs from hw/: OverQ never comes for free, and the minimum is priced right."""

from functools import lru_cache

import pytest

from synth.batch import run_job
from synth.designs import BASELINE, MIN_ACC, OVERQ_RANGE, VARIANTS, Job, counterpart
from synth.liberty import cell_areas
from synth.minimum import overq_minimum

# Small enough to synthesize in about a second each; APoT codes only at 4 bits.
OVERQ = {v.slug: v for v in VARIANTS if v.overq != "none"}
CASES = [
    ("oq-r", 4, MIN_ACC),
    ("oq-r", 4, 16),
    ("oq-r", 2, MIN_ACC),
    ("oq-rp", 4, MIN_ACC),
    ("oq-rp", 4, 16),
    ("apot-oq-r", 4, MIN_ACC),
]


@lru_cache(maxsize=None)  # counterparts are shared by several cases
def _pe(variant, act_bits, acc):
    return run_job(Job("pe", variant.config(act_bits, acc, rows=3, cols=2)), cache_dir=None)


@pytest.mark.parametrize("slug, act_bits, acc", CASES)
def test_overq_pe_is_never_smaller_than_its_counterpart(slug, act_bits, acc):
    variant = OVERQ[slug]
    plain = _pe(counterpart(variant), act_bits, acc)
    overq = _pe(variant, act_bits, acc)
    assert overq.area > plain.area
    assert overq.flip_flops >= plain.flip_flops + 2  # the state travels with the activation


def test_minimal_accumulator_grows_with_overq():
    assert OVERQ_RANGE.config(4).acc_width > BASELINE.config(4).acc_width
    assert BASELINE.config(4, 32).acc_width == 32


def test_theoretical_minimum_counts_the_overq_cells():
    assert overq_minimum(BASELINE.config(4)).area == 0
    cfg = OVERQ_RANGE.config(4)
    m = overq_minimum(cfg)
    # Shifts 0 or b on a P-bit product: b low bits are AND-gated, the P - 1 bits above
    # them choose between two product bits (the top bit is the sign either way).
    assert (m.state_ffs, m.weight_mux) == (2, cfg.weight_bits)
    assert (m.shift_and, m.shift_mux) == (cfg.act_bits, cfg.product_bits - 1)
    areas = cell_areas()
    assert m.area == pytest.approx(
        2 * areas["DFF_X1"]
        + (m.weight_mux + m.shift_mux) * areas["MUX2_X1"]
        + m.shift_and * areas["AND2_X1"]
    )
