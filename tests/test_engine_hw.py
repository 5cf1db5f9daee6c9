"""hw.engine in amaranth.sim: each block alone, then whole commands against sw_ref.engine."""

import random

import numpy as np
import pytest
from amaranth.hdl import ClockDomain, Module
from amaranth.sim import Simulator

from hw.engine import OutputFifo, Requantizer
from hw.engine import beats as fmt
from hw.engine.simulate import Command, simulate
from hw.params import ENGINE_ERRORS, ArrayConfig, EngineConfig
from sw_ref import engine

SMALL = EngineConfig(ArrayConfig(rows=4, cols=4), max_m=8, max_k=20, max_n=12)


def _run(dut, bench):
    top = Module()
    top.submodules.dut = dut
    top.domains.sync = ClockDomain("sync")
    sim = Simulator(top)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


def _requant_hw(cfg, acc, bias, mult, shift, code_max, raw=False, mask=None):
    """Rows of acc [V, C] through the Requantizer, one per cycle; returns [V, C]."""
    C, A, O, P = cfg.array.cols, cfg.acc_bits, cfg.out_bits, cfg.param_bits
    dut = Requantizer(cfg)
    params = sum(fmt.param_beat(bias[c], mult[c], shift[c]) << (c * P) for c in range(C))
    rows = []

    async def bench(ctx):
        ctx.set(dut.params, params)
        ctx.set(dut.code_max, code_max)
        ctx.set(dut.raw, int(raw))
        ctx.set(dut.mask, (1 << C) - 1 if mask is None else mask)
        for i, vec in enumerate(list(acc) + [None] * dut.latency):
            if vec is not None:
                ctx.set(dut.valid_in, 1)
                ctx.set(dut.last_in, int(i == len(acc) - 1))
                ctx.set(
                    dut.acc, sum((int(v) & ((1 << A) - 1)) << (c * A) for c, v in enumerate(vec))
                )
            else:
                ctx.set(dut.valid_in, 0)
            await ctx.tick()
            if ctx.get(dut.valid_out):
                word = ctx.get(dut.out)
                row = [(word >> (c * O)) & ((1 << O) - 1) for c in range(C)]
                rows.append([v - (1 << O) if raw and v >> (O - 1) else v for v in row])
                assert ctx.get(dut.last_out) == (len(rows) == len(acc))

    _run(dut, bench)
    return np.array(rows)


@pytest.mark.parametrize("shift", [0, 1, 2, 13, 31, 46, 47])
def test_requantizer_every_kind_of_shift(shift):
    cfg = EngineConfig(ArrayConfig(rows=2, cols=4), max_m=4, max_k=64, max_n=4)
    rng = np.random.default_rng(shift)
    lim = 1 << (cfg.acc_bits - 1)
    acc = rng.integers(-lim, lim, size=(12, 4))
    acc[0] = [lim - 1, -lim, 0, 1]
    bias = [-(1 << 31), (1 << 31) - 1, 0, int(rng.integers(-1000, 1000))]
    mult = [65535, 65535, 1 << 15, int(rng.integers(0, 65536))]
    shifts = [shift] * 4
    hw = _requant_hw(cfg, acc, bias, mult, shifts, 255)
    assert (hw == engine.requantize(acc, bias, mult, shifts, 255, cfg)).all()


def test_requantizer_ties_clamps_raw_and_mask():
    cfg = EngineConfig(ArrayConfig(rows=2, cols=4), max_m=4, max_k=64, max_n=4)
    # ties at shift 1 and 2 round up; -0.5 -> 0; above code_max -> code_max
    acc = np.array([[5, 6, -1, 300], [7, 5, -3, 9]])
    shifts = [1, 2, 1, 0]
    hw = _requant_hw(cfg, acc, [0] * 4, [1] * 4, shifts, 200)
    assert hw.tolist() == [[3, 2, 0, 200], [4, 1, 0, 9]]
    assert (hw == engine.requantize(acc, [0] * 4, [1] * 4, shifts, 200, cfg)).all()
    raw = _requant_hw(cfg, acc, [0] * 4, [1] * 4, shifts, 200, raw=True, mask=0b0111)
    assert raw.tolist() == [[5, 6, -1, 0], [7, 5, -3, 0]]


def test_output_fifo_keeps_order_under_random_ready():
    dut = OutputFifo(8, 4)
    rng = random.Random(2)
    got = []

    async def bench(ctx):
        pushed = 0
        for _ in range(200):
            push = pushed < 50 and ctx.get(dut.level) < 4 and rng.random() < 0.7
            ctx.set(dut.w_en, int(push))
            ctx.set(dut.w_data, pushed)
            ready = int(rng.random() < 0.5)
            ctx.set(dut.r.ready, ready)
            _, _, valid, data = await ctx.tick().sample(dut.r.valid, dut.r.payload)
            if valid and ready:
                got.append(data)
            pushed += push

    _run(dut, bench)
    assert got == list(range(50))


def _layer(rng, m, k, n, cfg, requant=True):
    a = cfg.array
    x = rng.integers(0, 1 << a.code_bits, size=(m, k))
    x[rng.random((m, k)) < 0.4] = 0  # zeros for the encoder to use
    if a.weight_format == "apot":
        w = rng.integers(0, 1 << a.weight_bits, size=(k, n))
    else:
        w = rng.integers(a.weight_min, a.weight_max + 1, size=(k, n))
    if not requant:
        return Command(x, w)
    bias = rng.integers(-2000, 2000, size=n)
    mult = rng.integers(0, 1 << 16, size=n)
    shift = rng.integers(10, 20, size=n)
    return Command(x, w, bias, mult, shift, int(rng.integers(1, 1 << a.code_bits)))


def _expected(cmd, cfg):
    return engine.run(cmd.x, cmd.w, cmd.bias, cmd.mult, cmd.shift, cmd.code_max, cfg)


CONFIGS = {
    "4x4-range-c2": SMALL,
    # one row: every tile is one weight beat, so K tiles of M = 1 follow in consecutive
    # cycles and the accumulator is read in the cycle it is written (transparent port)
    "1x2-range": EngineConfig(ArrayConfig(rows=1, cols=2), max_m=3, max_k=5, max_n=3),
    "3x5-range-c1-registers": EngineConfig(
        ArrayConfig(rows=3, cols=5, cascade=1, product_register=True, input_register=True),
        max_m=6,
        max_k=10,
        max_n=11,
    ),
    "4x3-precision-apot": EngineConfig(
        ArrayConfig(
            rows=4, cols=3, act_bits=3, weight_bits=5, weight_format="apot", overq="range,precision"
        ),
        max_m=5,
        max_k=13,
        max_n=7,
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_commands_bit_exact_with_random_gaps_and_stalls(name):
    cfg = CONFIGS[name]
    rng = np.random.default_rng(len(name))
    cmds = [
        _layer(rng, cfg.max_m, cfg.max_k, cfg.max_n, cfg, requant=False),
        _layer(rng, 1, 1, 1, cfg),
        _layer(rng, 1, cfg.max_k, cfg.max_n, cfg),  # M = 1: K tiles back to back
        _layer(
            rng,
            int(rng.integers(2, cfg.max_m)),
            int(rng.integers(2, cfg.max_k)),
            int(rng.integers(2, cfg.max_n)),
            cfg,
        ),
    ]
    results = simulate(cfg, cmds, seed=len(name), valid_prob=0.6, ready_prob=0.4)
    for cmd, res in zip(cmds, results):
        assert res.error == 0
        assert (res.y == _expected(cmd, cfg)).all(), cmd.shape


def test_k_tiles_accumulate_on_chip():
    # one weight per K tile: acc = sum over tiles, so a tile not accumulated shows
    cfg = SMALL
    k = 4 * 5
    x = np.zeros((3, k), dtype=np.int64)
    x[:, ::4] = [[1], [2], [3]]  # slot 0 of every tile
    w = np.zeros((k, 1), dtype=np.int64)
    w[::4, 0] = [1, 2, 3, 4, 5]
    (res,) = simulate(cfg, [Command(x, w)], valid_prob=0.8, ready_prob=0.8, seed=1)
    assert res.y[:, 0].tolist() == [15, 30, 45]


@pytest.mark.parametrize(
    "shape,requant",
    [((8, 20, 12), True), ((3, 9, 5), False), ((4, 4, 4), True), ((1, 1, 1), False)],
)
def test_cycle_count_is_the_documented_one(shape, requant):
    """No stalls: one vector per cycle; the count is verif.engine_utilisation's exactly
    (minus the header and parameter beats, which come before the first data beat)."""
    from verif.engine_utilisation import data_cycles

    cfg = SMALL
    m, k, n = shape
    cmd = _layer(np.random.default_rng(4), m, k, n, cfg, requant=requant)
    (res,) = simulate(cfg, [cmd])
    assert (res.y == _expected(cmd, cfg)).all()
    tiles = -(-k // 4) * -(-n // 4)
    assert res.cycles == data_cycles(cfg, m, tiles)


@pytest.mark.parametrize(
    "fields,flag",
    [
        ((0, 4, 4, 3), "bad_m"),
        ((9, 4, 4, 3), "bad_m"),
        ((2, 0, 4, 3), "bad_k"),
        ((2, 21, 4, 3), "bad_k"),
        ((2, 4, 0, 3), "bad_n"),
        ((2, 4, 13, 3), "bad_n"),
        ((2, 4, 4, 256), "bad_code_max"),
    ],
)
def test_bad_header_is_refused_and_consumes_no_data(fields, flag):
    m, k, n, code_max = fields
    bad = Command(
        np.zeros((m, k), int),
        np.zeros((k, n), int),
        np.zeros(n, int),
        np.ones(n, int),
        np.zeros(n, int),
        code_max,
        send_data=False,
    )
    good = _layer(np.random.default_rng(0), 3, 6, 5, SMALL)
    res = simulate(SMALL, [bad, good], valid_prob=0.7, ready_prob=0.7)
    assert res[0].error == 1 << ENGINE_ERRORS.index(flag)
    assert not res[0].data_ready
    assert res[1].error == 0 and (res[1].y == _expected(good, SMALL)).all()


def test_bad_shift_is_refused():
    rng = np.random.default_rng(1)
    good = _layer(rng, 3, 6, 5, SMALL)
    bad = _layer(rng, 3, 6, 5, SMALL)
    bad.shift = bad.shift.copy()
    bad.shift[3] = 48
    bad.send_data = False
    res = simulate(SMALL, [bad, good], valid_prob=0.7, ready_prob=0.7)
    assert res[0].error == 1 << ENGINE_ERRORS.index("bad_shift")
    assert not res[0].data_ready
    assert (res[1].y == _expected(good, SMALL)).all()


@pytest.mark.parametrize("after", [3, 40])
def test_reset_mid_command_loses_only_that_command(after):
    rng = np.random.default_rng(after)
    cut, good = _layer(rng, 8, 20, 12, SMALL), _layer(rng, 5, 9, 6, SMALL)
    res = simulate(SMALL, [cut, good], abort_after=after, valid_prob=0.8, ready_prob=0.5)
    assert len(res) == 1 and (res[0].y == _expected(good, SMALL)).all()


def test_worked_example_of_the_docs():
    """docs/engine.md "Worked example": its beats and its outputs."""
    cfg = EngineConfig(ArrayConfig(rows=4, cols=4), max_m=8, max_k=16, max_n=8)
    x = np.array([[3, 40, 0, 2, 7], [0, 0, 0, 0, 1]])
    w = np.array([[1, 0, -1], [2, 1, 0], [-3, 5, 7], [0, -2, 1], [1, 1, 1]])
    bias, mult, shift = np.array([10, -40, 0]), np.array([1, 1, 1 << 15]), np.array([3, 0, 16])
    assert engine.run(x, w, None, None, None, None, cfg).tolist() == [[90, 43, 6], [1, 1, 1]]
    assert [b for b, _ in fmt.command_beats(2, 5, 3, bias, mult, shift, 15)] == [
        0x000F000300050002,
        0x000300010000000A,
        0x00000001FFFFFFD8,
        0x0010800000000000,
    ]
    assert fmt.weight_beats(w, cfg) == [0x1E0, 0x75D, 0x12, 0xF01, 0, 0, 0, 0x111]
    assert fmt.x_beats(x, cfg) == [0x2002803, 0, 7, 1]
    (res,) = simulate(cfg, [Command(x, w, bias, mult, shift, 15)], valid_prob=0.5, ready_prob=0.5)
    assert res.beats == [0x00000003_0003_000D, 0x00000001_0000_0001]
    assert res.y.tolist() == [[13, 3, 3], [1, 0, 1]]
