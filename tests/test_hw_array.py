# amaranth: UnusedElaboratable=no
"""The whole array in Amaranth's simulator against ``sw_ref.overq.golden``.

Every test runs a program (weight loads, vectors, gaps, resets) through
``hw.simulate`` and checks the complete output trace: the right values, each exactly
L = cfg.latency cycles after its vector, in order, and nothing else (no output for a
vector caught by a reset).
"""

import numpy as np
import pytest

from hw.params import STATE_NORMAL, STATE_PRECISION, STATE_RANGE, STATE_SHIFTED, ArrayConfig
from hw.simulate import simulate
from sw_ref.apot import encode as apot_encode
from sw_ref.overq import encode, golden


def expected_trace(cfg, trace):
    """(cycle, y) docs/top-module.md "The generated top module" promises for the vectors of ``trace``."""
    L = cfg.latency
    resets = set(trace.resets)
    out = []
    for sent in trace.sent:
        if any(r in resets for r in range(sent.cycle, sent.cycle + L)):
            continue  # rst cleared its valid bit in flight
        y = golden(np.array(sent.values), np.array(sent.states), sent.weights, cfg)
        out.append((sent.cycle + L, _wrap(y, cfg).tolist()))
    return out


def _wrap(y, cfg):
    """y as an acc_width-bit two's-complement register holds it (identity unless overflow)."""
    bits = cfg.acc_width
    return ((np.asarray(y, dtype=np.int64) + (1 << (bits - 1))) % (1 << bits)) - (1 << (bits - 1))


def check(cfg, program):
    trace = simulate(cfg, program)
    expect = expected_trace(cfg, trace)
    assert trace.received == expect, _first_difference(trace.received, expect)
    return trace


def _first_difference(got, expect):
    for i, (g, e) in enumerate(zip(got, expect)):
        if g != e:
            return f"output {i}: got {g}, expected {e}"
    return f"{len(got)} outputs, expected {len(expect)}"


# --- stimulus ---------------------------------------------------------------------


def weight_codes(cfg, rng, kind="random"):
    """Codes [R, C]: random, or every weight at its most negative / positive value."""
    R, C = cfg.rows, cfg.cols
    if kind == "random":
        return rng.integers(0, 1 << cfg.weight_bits, (R, C))
    target = cfg.weight_min if kind == "min" else cfg.weight_max
    if cfg.weight_format == "apot":
        return np.asarray(apot_encode(np.full((R, C), target), cfg))
    return np.full((R, C), target & ((1 << cfg.weight_bits) - 1))


def random_vector(cfg, rng):
    states = rng.integers(0, 4, cfg.rows) if cfg.overq_enabled else np.zeros(cfg.rows, int)
    return ("vec", rng.integers(0, cfg.act_max + 1, cfg.rows), states)


def directed_vectors(cfg, rng):
    """The slot patterns docs/overq-encoding.md "OverQ encoding" produces, written out (v, f) per case."""
    R, M, c = cfg.rows, cfg.act_max, cfg.cascade
    N, S, RG, P = STATE_NORMAL, STATE_SHIFTED, STATE_RANGE, STATE_PRECISION
    cases = [
        ([0] * R, [N] * R),  # all zero
        ([M] * R, [N] * R),  # all max
        ([M] * R, [N] + [RG] * (R - 1)),  # every product at the largest scale
        ([0] * (R - 1) + [M], [N] * R),  # outlier in the last row: clipped to M, NORMAL
    ]
    if R >= 2:
        for k in range(R - 1):  # outlier next to a zero: low bits NORMAL, high bits RANGE
            v = rng.integers(0, M + 1, R)
            f = [N] * R
            f[k + 1] = RG
            cases.append((v, f))
        # precision pair at the end: high bits NORMAL, extra low bits PRECISION
        cases.append(([M] * (R - 2) + [M, 1], [N] * (R - 1) + [P]))
    if R > c + 1:
        # a range overwrite at row 0 reaching a zero c rows away: [N, RANGE, S, ..., S]
        v = rng.integers(1, M + 1, R)
        f = [N, RG] + [S] * (c - 1) + [N] * (R - c - 1)
        cases.append((v, f))
    if R >= 4:
        cases.append(([M] * R, ([N, S, RG, P] * R)[:R]))  # every state, side by side
    return [("vec", np.asarray(v), np.asarray(f)) for v, f in cases]


def encoded_vectors(cfg, rng, count):
    """Real encoder output for activations with outliers next to zeros."""
    x = rng.exponential(2.0, (count, cfg.rows)) * (rng.random((count, cfg.rows)) > 0.3)
    x[:, -1] += rng.random(count) * 4 * cfg.act_max  # outliers in the last row too
    enc = encode(x, 1.0, cfg)
    states = np.asarray(enc.states) if cfg.overq_enabled else np.zeros_like(enc.values)
    return [("vec", v, f) for v, f in zip(np.asarray(enc.values), states)]


def stream(cfg, rng, count, gaps=True):
    """``count`` random vectors, back to back or with random idle gaps."""
    ops = []
    for _ in range(count):
        ops.append(random_vector(cfg, rng))
        if gaps and rng.random() < 0.4:
            ops.append(("idle", int(rng.integers(1, 4))))
    return ops


def full_program(cfg, seed, count):
    """Load, directed + encoded + random vectors, drain, reload extremes, reset mid-stream."""
    rng = np.random.default_rng(seed)
    L = cfg.latency
    program = [("load", weight_codes(cfg, rng))]
    program += directed_vectors(cfg, rng)
    program += encoded_vectors(cfg, rng, max(2, count // 2))
    program += stream(cfg, rng, count, gaps=False)  # back to back
    program += stream(cfg, rng, count, gaps=True)
    program += [("idle", L)]  # the driver waits for the outputs before reloading
    for kind in ("min", "max"):
        program += [("load", weight_codes(cfg, rng, kind))]
        program += directed_vectors(cfg, rng)[1:3] + [("idle", L)]
    program += [("load", weight_codes(cfg, rng))]
    program += stream(cfg, rng, min(count, L + 2), gaps=False)
    program += [("reset", 2)]  # vectors in flight vanish, weights become zero
    program += stream(cfg, rng, 2, gaps=False) + [("idle", L)]
    program += [("load", weight_codes(cfg, rng))] + stream(cfg, rng, 3)
    return program


# --- the matrix of configurations ---------------------------------------------------

SHAPES = [
    ArrayConfig(rows=1, cols=1, cascade=1),
    ArrayConfig(rows=1, cols=1, cascade=1, overq="none"),
    ArrayConfig(rows=1, cols=8, cascade=1),
    ArrayConfig(rows=8, cols=1),
    ArrayConfig(rows=3, cols=5, cascade=1),
    ArrayConfig(rows=8, cols=8),
    ArrayConfig(rows=8, cols=8, weight_format="apot", overq="range,precision", cascade=3),
]

MODES = [
    ArrayConfig(rows=5, cols=3, weight_format=fmt, weight_bits=wb, overq=modes, cascade=3)
    for fmt, wb in (("int", 4), ("apot", 5))
    for modes in ("none", "range", "precision", "range,precision")
]

WIDTHS = [
    ArrayConfig(rows=4, cols=3, act_bits=b, weight_bits=w, overq="range,precision")
    for b, w in [(2, 2), (3, 8), (4, 3), (5, 5), (6, 7), (7, 4), (8, 8), (8, 2)]
]

APOT_SPLITS = [
    ArrayConfig(rows=4, cols=2, weight_format="apot", weight_bits=wb, apot_term_bits=k)
    for wb, k in [(4, 2), (6, 2), (7, 2), (4, 3), (4, 1)]
]


# Accumulators wider than the minimum, as the area report prices them (16 and 32 bits;
# range+precision at 16 bits is below its overflow-free width and wraps).
WIDE_ACCUMULATORS = [
    ArrayConfig(rows=8, cols=8, acc_bits=16),
    ArrayConfig(rows=8, cols=8, acc_bits=32, overq="none"),
    ArrayConfig(rows=8, cols=8, acc_bits=32, overq="range,precision"),
    ArrayConfig(rows=8, cols=8, acc_bits=16, overq="range,precision", allow_overflow=True),
    ArrayConfig(rows=8, cols=8, acc_bits=32, weight_format="apot"),
]


@pytest.mark.parametrize("cfg", SHAPES, ids=lambda c: c.key())
def test_shapes(cfg):
    check(cfg, full_program(cfg, seed=1, count=8))


@pytest.mark.parametrize("cfg", WIDE_ACCUMULATORS, ids=lambda c: c.key())
def test_accumulators_wider_than_the_minimum(cfg):
    assert cfg.acc_width != cfg.min_acc_bits
    check(cfg, full_program(cfg, seed=15, count=6))


@pytest.mark.parametrize("cfg", MODES, ids=lambda c: c.key())
def test_overq_mode_sets_and_weight_formats(cfg):
    check(cfg, full_program(cfg, seed=2, count=6))


@pytest.mark.parametrize("cfg", WIDTHS, ids=lambda c: c.key())
def test_int_widths(cfg):
    check(cfg, full_program(cfg, seed=3, count=6))


@pytest.mark.parametrize("cfg", APOT_SPLITS, ids=lambda c: c.key())
def test_apot_level_sets_even_and_uneven(cfg):
    check(cfg, full_program(cfg, seed=4, count=4))


@pytest.mark.parametrize("fmt", ["int", "apot"])
def test_16x16_few_vectors(fmt):
    """A 16 x 16 array with random, different weights per column: every vector's output
    comes out (the driver waits L cycles before the reset), and the vectors use every
    state, so the weight mux (SHIFTED/RANGE/PRECISION read W[k-1]) is exercised."""
    cfg = ArrayConfig(rows=16, cols=16, weight_format=fmt, overq="range,precision")
    rng = np.random.default_rng(5)
    L = cfg.latency
    weights = weight_codes(cfg, rng)
    assert len({tuple(col) for col in weights.T}) == cfg.cols  # columns differ
    vectors = (
        directed_vectors(cfg, rng)[:4]
        + encoded_vectors(cfg, rng, 6)
        + stream(cfg, rng, 6, gaps=True)
    )
    program = [("load", weights)] + vectors + [("idle", L), ("reset", 1)]
    program += [("load", weight_codes(cfg, rng, "min"))] + directed_vectors(cfg, rng)[1:3]
    program += [("idle", L)]
    trace = check(cfg, program)
    sent = [op for op in vectors if op[0] == "vec"]
    assert len(trace.received) == len(sent) + 2  # nothing lost to the reset
    states = {int(f) for op in sent for f in (op[2] if op[2] is not None else [0])}
    assert states == {STATE_NORMAL, STATE_SHIFTED, STATE_RANGE, STATE_PRECISION}


def test_vectors_in_flight_during_reset_produce_no_output():
    cfg = ArrayConfig(rows=3, cols=4, cascade=1)
    rng = np.random.default_rng(6)
    L = cfg.latency
    program = [("load", weight_codes(cfg, rng))] + stream(cfg, rng, L + 3, gaps=False)
    program += [("reset", 1), ("idle", L)]
    trace = check(cfg, program)
    reset = trace.resets[0]
    assert reset == cfg.rows + L + 3  # after the load and the stream
    # Outputs still appear in the reset cycle itself (y_valid is a register output);
    # the vectors sent at cycles rows .. rows+3 leave by then, the other L-1 never do.
    assert [cycle for cycle, _ in trace.received] == [reset - 3, reset - 2, reset - 1, reset]


def test_reset_zeroes_the_weights():
    cfg = ArrayConfig(rows=3, cols=4, cascade=1)
    rng = np.random.default_rng(7)
    program = [("load", weight_codes(cfg, rng)), ("reset", 1)]
    program += directed_vectors(cfg, rng)[1:3]
    trace = check(cfg, program)
    assert [y for _, y in trace.received] == [[0] * cfg.cols] * 2


def test_overflowing_accumulator_wraps_like_a_register():
    cfg = ArrayConfig(rows=4, cols=2, act_bits=4, weight_bits=4, acc_bits=8, allow_overflow=True)
    rng = np.random.default_rng(8)
    program = [("load", weight_codes(cfg, rng, "min"))] + directed_vectors(cfg, rng)[1:3]
    trace = check(cfg, program)
    exact = golden(
        np.array(trace.sent[1].values), np.array(trace.sent[1].states), trace.sent[1].weights, cfg
    )
    assert np.any(exact != _wrap(exact, cfg))  # this test really overflows


def _wrong_latency_traces(monkeypatch, cfg, program):
    """Traces of two designs whose outputs leave one cycle late / early.

    Late: the same array with the product register (every PE one cycle later, the
    values unchanged). Early: the generator with a valid pipeline one stage short.
    """
    import hw.array
    from hw.skew import ValidPipe

    late = simulate(ArrayConfig(**{**_fields(cfg), "product_register": True}), program)
    with monkeypatch.context() as patch:
        patch.setattr(hw.array, "ValidPipe", lambda depth: ValidPipe(depth - 1))
        early = simulate(cfg, program)
    return late, early


def _fields(cfg):
    import dataclasses

    return {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}


def test_trace_checker_catches_a_wrong_latency(monkeypatch):
    """The expectation is not derived from the DUT: designs whose outputs come one
    cycle late (values right, only the timing wrong) or one cycle early fail the
    check that the real design passes."""
    cfg = ArrayConfig(rows=2, cols=2, cascade=1)
    rng = np.random.default_rng(9)
    program = [("load", weight_codes(cfg, rng))] + stream(cfg, rng, 3) + [("idle", 1)]
    program += stream(cfg, rng, 4, gaps=False)
    check(cfg, program)  # the real design passes
    late, early = _wrong_latency_traces(monkeypatch, cfg, program)
    for wrong in (late, early):
        assert wrong.sent == check(cfg, program).sent  # same stimulus
        assert wrong.received != expected_trace(cfg, wrong), "wrong latency not caught"
    # The late design differs only in timing: the values alone would not catch it.
    assert [y for _, y in late.received] == [y for _, y in expected_trace(cfg, late)]
    assert [c - 1 for c, _ in late.received] == [c for c, _ in expected_trace(cfg, late)]
    assert [c + 1 for c, _ in early.received] == [c for c, _ in expected_trace(cfg, early)]


# --- the product register (cfg.product_register): one more cycle, same numbers ------

PRODUCT_REGISTER = [
    ArrayConfig(rows=3, cols=5, cascade=1, overq="range,precision", product_register=True),
    ArrayConfig(rows=8, cols=8, weight_format="apot", overq="range", product_register=True),
    ArrayConfig(rows=4, cols=3, overq="none", act_bits=5, weight_bits=6, product_register=True),
    ArrayConfig(rows=1, cols=4, cascade=1, product_register=True),
    ArrayConfig(rows=4, cols=2, acc_bits=8, allow_overflow=True, product_register=True),
]


@pytest.mark.parametrize("cfg", PRODUCT_REGISTER, ids=lambda c: c.key())
def test_product_register_matches_the_golden_model_one_cycle_later(cfg):
    """Back to back, gaps, weight reloads and a reset mid-stream, against sw_ref."""
    assert cfg.latency == cfg.rows + cfg.cols
    check(cfg, full_program(cfg, seed=10, count=6))


def test_product_register_adds_exactly_one_cycle():
    plain = ArrayConfig(rows=3, cols=4, cascade=1)
    piped = ArrayConfig(rows=3, cols=4, cascade=1, product_register=True)
    assert piped.latency == plain.latency + 1 == plain.rows + plain.cols
    program = [("load", weight_codes(plain, np.random.default_rng(12)))]
    program += stream(plain, np.random.default_rng(13), 5, gaps=True)
    a, b = check(plain, program), check(piped, program)
    assert [y for _, y in a.received] == [y for _, y in b.received]
    assert [c + 1 for c, _ in a.received] == [c for c, _ in b.received]


def test_product_register_reset_mid_stream_drops_the_vectors_in_flight():
    cfg = ArrayConfig(rows=3, cols=4, cascade=1, product_register=True)
    rng = np.random.default_rng(14)
    L = cfg.latency
    program = [("load", weight_codes(cfg, rng))] + stream(cfg, rng, L + 3, gaps=False)
    program += [("reset", 1), ("idle", L)]
    trace = check(cfg, program)
    reset = trace.resets[0]
    assert [cycle for cycle, _ in trace.received] == [reset - 3, reset - 2, reset - 1, reset]


# --- operand registers (cfg.input_register): one more cycle, same numbers ----------

INPUT_REGISTER = [
    ArrayConfig(rows=3, cols=5, cascade=1, overq="range,precision", input_register=True),
    ArrayConfig(rows=4, cols=3, weight_format="apot", overq="range", input_register=True),
    ArrayConfig(rows=4, cols=3, overq="none", act_bits=5, weight_bits=6, input_register=True),
    ArrayConfig(rows=1, cols=4, cascade=1, input_register=True),
    ArrayConfig(rows=4, cols=2, cascade=2, input_register=True, product_register=True),
]


@pytest.mark.parametrize("cfg", INPUT_REGISTER, ids=lambda c: c.key())
def test_input_register_matches_the_golden_model(cfg):
    """Back to back, gaps, weight reloads and a reset mid-stream, against sw_ref."""
    assert cfg.latency == cfg.rows + cfg.cols - 1 + 1 + int(cfg.product_register)
    check(cfg, full_program(cfg, seed=15, count=6))


def test_input_register_adds_exactly_one_cycle():
    plain = ArrayConfig(rows=3, cols=4, cascade=1)
    piped = ArrayConfig(rows=3, cols=4, cascade=1, input_register=True)
    assert piped.latency == plain.latency + 1 and piped.pe_latency == 2
    program = [("load", weight_codes(plain, np.random.default_rng(16)))]
    program += stream(plain, np.random.default_rng(17), 5, gaps=True)
    a, b = check(plain, program), check(piped, program)
    assert [y for _, y in a.received] == [y for _, y in b.received]
    assert [c + 1 for c, _ in a.received] == [c for c, _ in b.received]


# --- overflow, against a width worked out in the test (tests/acc_bounds.py) ---------
# expected_trace() wraps to cfg.acc_width, the width that also sizes the RTL; these
# tests compare with the exact extremes instead, so an accumulator one bit too narrow
# (a wrong min_acc_bits) fails here.

from acc_bounds import extreme_outputs, extreme_vector, extreme_weight_code, signed_width  # noqa: E402

OVERFLOW_FREE = (
    [
        ArrayConfig(rows=5, cols=2, weight_format=fmt, weight_bits=wb, overq=modes, cascade=2)
        for fmt, wb in (("int", 4), ("apot", 5))
        for modes in ("none", "range", "precision", "range,precision")
    ]
    + [
        ArrayConfig(rows=8, cols=3, act_bits=b, weight_bits=w, overq="range")
        for b, w in [(2, 2), (3, 8), (8, 3)]
    ]
    + [
        ArrayConfig(rows=1, cols=2, cascade=1, overq="range,precision"),
        ArrayConfig(rows=4, cols=2, overq="range", acc_bits=16),
        ArrayConfig(rows=4, cols=2, overq="range,precision", acc_bits=32, weight_format="apot"),
    ]
)


@pytest.mark.parametrize("cfg", OVERFLOW_FREE, ids=lambda c: c.key())
def test_extreme_outputs_come_out_exact_without_wrapping(cfg):
    lo, hi = extreme_outputs(cfg)
    width = signed_width(lo, hi)
    if cfg.acc_bits is None:
        assert cfg.min_acc_bits == width, "the default accumulator is not the smallest safe one"
    values, states = extreme_vector(cfg)
    program = []
    for which in ("max", "min"):
        program += [("load", np.full((cfg.rows, cfg.cols), extreme_weight_code(cfg, which)))]
        program += [("vec", np.array(values), np.array(states)), ("idle", cfg.latency)]
    trace = simulate(cfg, program)
    assert [y for _, y in trace.received] == [[hi] * cfg.cols, [lo] * cfg.cols]
