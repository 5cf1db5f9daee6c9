# amaranth: UnusedElaboratable=no
"""The multipliers and one PE, exhaustively for small widths, in Amaranth's simulator.

Expectations come from ``sw_ref`` (APoT decode) and the state table written out a
second time in ``tests/acc_bounds.py`` (``scale_table``), never from ``hw.params``'s
``state_shifts``, which the RTL itself is built from: a wrong shift there must fail here.
"""

import itertools

import numpy as np
import pytest
from acc_bounds import scale_table
from amaranth.sim import Simulator

from hw.mul import ApotMultiplier, IntMultiplier, multiplier_for
from hw.params import STATE_NORMAL, ArrayConfig
from hw.pe import ProcessingElement
from hw.simulate import weight_values


def _run(dut, bench):
    sim = Simulator(dut)
    if isinstance(dut, ProcessingElement):
        sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


INT_CONFIGS = [
    ArrayConfig(act_bits=b, weight_bits=w) for b, w in [(2, 2), (4, 4), (3, 6), (2, 8), (8, 3)]
]
APOT_CONFIGS = [
    ArrayConfig(weight_format="apot", weight_bits=w, apot_term_bits=k, act_bits=b)
    for w, k, b in [(3, 2, 4), (4, 2, 4), (5, 2, 3), (6, 2, 2), (7, 2, 2), (4, 3, 3), (4, 1, 3)]
]


@pytest.mark.parametrize("cfg", INT_CONFIGS + APOT_CONFIGS, ids=lambda c: c.key())
def test_multiplier_every_activation_times_every_code(cfg):
    mul = multiplier_for(cfg)
    assert isinstance(mul, ApotMultiplier if cfg.weight_format == "apot" else IntMultiplier)
    codes = np.arange(1 << cfg.weight_bits)
    values = weight_values(codes, cfg)
    mismatches = []

    async def bench(ctx):
        for a in range(cfg.act_max + 1):
            ctx.set(mul.a, a)
            for code, value in zip(codes, values):
                ctx.set(mul.w, int(code))
                got = ctx.get(mul.p)  # a signed shape reads back as a signed int
                if got != a * int(value):
                    mismatches.append((a, int(code), got, a * int(value)))

    _run(mul, bench)
    assert not mismatches, mismatches[:5]


def test_apot_multiplier_is_shift_add_only():
    from amaranth.back import rtlil

    for cfg in APOT_CONFIGS:
        text = rtlil.convert(ApotMultiplier(cfg), name="m")
        assert "$mul" not in text, cfg.key()


def test_apot_multiplier_rejects_int_config():
    with pytest.raises(ValueError, match="weight_format='apot'"):
        ApotMultiplier(ArrayConfig())


PE_CONFIGS = [
    ArrayConfig(act_bits=2, weight_bits=3, overq="range"),
    ArrayConfig(act_bits=3, weight_bits=4, overq="range,precision"),
    ArrayConfig(act_bits=2, weight_bits=4, overq="precision"),
    ArrayConfig(act_bits=3, weight_bits=3, overq="none"),
    ArrayConfig(act_bits=2, weight_bits=5, weight_format="apot", overq="range,precision"),
    ArrayConfig(act_bits=3, weight_bits=4, weight_format="apot", overq="range"),
]


@pytest.mark.parametrize("row", [0, 1])
@pytest.mark.parametrize("cfg", PE_CONFIGS, ids=lambda c: c.key())
def test_pe_every_activation_weight_pair_and_state(cfg, row):
    """psum_out = psum_in + v * W[sel] << shift[state], one cycle later; a, state, W move on."""
    pe = ProcessingElement(cfg, row=row)
    assert pe.has_mux == (cfg.overq_enabled and row >= 1)
    assert hasattr(pe, "state_in") == pe.has_mux
    codes = list(range(1 << cfg.weight_bits))
    value = dict(zip(codes, weight_values(codes, cfg).tolist()))
    states = range(4) if pe.has_mux else [STATE_NORMAL]
    factor = scale_table(cfg)
    acc_max = (1 << (cfg.acc_width - 1)) - 1
    rng = np.random.default_rng(row)
    mismatches = []

    async def bench(ctx):
        for own in codes:
            ctx.set(pe.w_shift, 1)
            ctx.set(pe.w_in, own)
            await ctx.tick()
            ctx.set(pe.w_shift, 0)
            assert ctx.get(pe.w_out) == own
            # Without a mux the weight above is never read: one other code shows that.
            aboves = codes if pe.has_mux else [(own + 1) % len(codes)]
            for above, a, f in itertools.product(aboves, range(cfg.act_max + 1), states):
                psum = int(rng.integers(-acc_max // 2, acc_max // 2))
                ctx.set(pe.w_in, above)
                ctx.set(pe.a_in, a)
                ctx.set(pe.psum_in, psum)
                if pe.has_mux:
                    ctx.set(pe.state_in, f)
                w = value[own] if f == STATE_NORMAL else value[above]
                expect = (psum + a * w * factor[f], a, f)
                await ctx.tick()
                got = (ctx.get(pe.psum_out), ctx.get(pe.a_out))
                got += (ctx.get(pe.state_out),) if pe.has_mux else (f,)
                if got != expect:
                    mismatches.append((own, above, a, f, got, expect))

    _run(pe, bench)
    assert not mismatches, mismatches[:5]


def test_pe_weight_register_starts_at_zero_and_loads_only_on_w_shift():
    cfg = ArrayConfig(act_bits=3, weight_bits=4)
    pe = ProcessingElement(cfg, row=1)
    seen = []

    async def bench(ctx):
        ctx.set(pe.w_in, 5)
        await ctx.tick()
        seen.append(ctx.get(pe.w_out))  # w_shift low: still 0
        ctx.set(pe.w_shift, 1)
        await ctx.tick()
        seen.append(ctx.get(pe.w_out))  # loaded
        ctx.set(pe.w_shift, 0)
        ctx.set(pe.w_in, 9)
        await ctx.tick()
        seen.append(ctx.get(pe.w_out))  # held

    _run(pe, bench)
    assert seen == [0, 5, 5]


@pytest.mark.parametrize("kwargs", [dict(row=-1), dict(row=8), dict(row=True)])
def test_pe_rejects_rows_outside_the_array(kwargs):
    with pytest.raises(ValueError, match="row must be in 0..7"):
        ProcessingElement(ArrayConfig(), **kwargs)


# --- overflow, against a width worked out in the test (tests/acc_bounds.py) ---------

from acc_bounds import extreme_outputs, extreme_weight_code  # noqa: E402

PE_EXTREMES = [
    ArrayConfig(rows=8, act_bits=4, weight_bits=4, overq=modes)
    for modes in ("none", "range", "precision", "range,precision")
] + [
    ArrayConfig(rows=8, act_bits=3, weight_bits=5, weight_format="apot", overq="range"),
    ArrayConfig(rows=3, act_bits=8, weight_bits=2, overq="range,precision", cascade=1),
    ArrayConfig(rows=8, overq="range", acc_bits=16),
    ArrayConfig(rows=8, overq="range", acc_bits=32),
]


@pytest.mark.parametrize("cfg", PE_EXTREMES, ids=lambda c: c.key())
def test_last_row_pe_adds_the_extreme_product_to_the_extreme_partial_sum(cfg):
    """The PE of row R-1 given the largest partial sum rows 0..R-2 can send it and the
    largest scaled product gives the array's extreme output, exactly."""
    pe = ProcessingElement(cfg, row=cfg.rows - 1)
    lo, hi = extreme_outputs(cfg)
    m = 2**cfg.act_bits - 1
    state = 2 if pe.has_mux else STATE_NORMAL  # RANGE: the largest scale
    factor = scale_table(cfg)[state]
    code_value = {"max": hi, "min": lo}
    got, expect = [], []

    async def bench(ctx):
        for which in ("max", "min"):
            code = extreme_weight_code(cfg, which)
            w = int(weight_values([code], cfg)[0])
            product = m * w * factor
            ctx.set(pe.w_shift, 1)
            ctx.set(pe.w_in, code)  # own weight, and (mux rows) the weight above
            await ctx.tick()
            ctx.set(pe.w_shift, 0)
            ctx.set(pe.a_in, m)
            if pe.has_mux:
                ctx.set(pe.state_in, state)
            ctx.set(pe.psum_in, code_value[which] - product)
            await ctx.tick()
            got.append(ctx.get(pe.psum_out))
            expect.append(code_value[which])

    _run(pe, bench)
    assert got == expect
