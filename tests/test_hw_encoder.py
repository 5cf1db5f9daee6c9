# amaranth: UnusedElaboratable=no
"""The hardware OverQ encoder (``hw.encoder``) against ``sw_ref.overq.encode_codes``.

Every code vector of small shapes, random vectors of 8, 16 and 32 slots, back-to-back
and gapped streams, reset, and the whole array behind it (``top`` with ``a_code``).
"""

from __future__ import annotations

import itertools
import os
import re

import numpy as np
import pytest

from hw.params import ArrayConfig
from hw.simulate import simulate, simulate_encoder
from sw_ref.overq import encode_codes, golden


def _expected(codes, cfg):
    enc = encode_codes(np.asarray(codes, dtype=np.int64), cfg)
    return np.asarray(enc.values, np.int64), np.asarray(enc.states, np.int64)


# Every code vector of the small shapes, every cascade and mode: 27 s of CPU with two
# workers, so `make test` runs them all.


def _check(cfg, codes, gaps=None, slots_per_stage=None):
    codes = np.asarray(codes, dtype=np.int64)
    out = simulate_encoder(cfg, codes, gaps, slots_per_stage=slots_per_stage)
    values, states = _expected(codes, cfg)
    bad = np.flatnonzero(
        (out["values"] != values).any(axis=1) | (out["states"] != states).any(axis=1)
    )
    if bad.size:
        i = bad[0]
        raise AssertionError(
            f"{len(bad)} of {len(codes)} vectors differ ({cfg.key()}); first: codes {codes[i].tolist()} "
            f"-> RTL {out['values'][i].tolist()}/{out['states'][i].tolist()}, "
            f"encode_codes {values[i].tolist()}/{states[i].tolist()}"
        )
    # one valid_out per vector, R cycles after it was presented
    assert out["valid_out"] == [t + cfg.rows for t in out["presented"]]
    return out


# u values for b = 2 that cover every case of q = round(u / 4) (half to even):
# zero (0, 2: a half rounds down to 0), the first non-zero (3), a plain 1 (5), halves
# rounding to even (6 -> 2, 10 -> 2, 14 -> 4), M = 3 at its largest u (13), the first
# outliers (14, 15), and the top of the range (61 -> 15, 62 -> 16 saturating, 63).
PRECISION_U_B2 = (0, 2, 3, 5, 6, 10, 13, 14, 15, 61, 62, 63)


@pytest.mark.parametrize("cascade", [1, 2, 3])
def test_every_code_vector_range_r4_b2(cascade):
    """All 2^16 vectors of four 4-bit codes q, back to back."""
    cfg = ArrayConfig(rows=4, cols=1, act_bits=2, overq="range", cascade=cascade, encoder=True)
    codes = np.array(list(itertools.product(range(16), repeat=4)), dtype=np.int64)
    _check(cfg, codes)


@pytest.mark.parametrize(
    "overq,cascade",
    [("range,precision", 1), ("range,precision", 2), ("range,precision", 3), ("precision", 2)],
)
def test_every_code_vector_precision_r4_b2(overq, cascade):
    """Every vector over 12 fine codes u per slot that reach every rounding case
    (12^4 vectors); every one of the 64 u values is also tried in every slot. (The
    cascade only matters with range: precision alone runs once.)"""
    cfg = ArrayConfig(rows=4, cols=1, act_bits=2, overq=overq, cascade=cascade, encoder=True)
    _check_every_fine_code(cfg, cascade)


def _check_every_fine_code(cfg, seed):
    """Every vector over PRECISION_U_B2, then each of the 64 u values in every slot."""
    r = cfg.rows
    codes = np.array(list(itertools.product(PRECISION_U_B2, repeat=r)), dtype=np.int64)
    _check(cfg, codes)
    rng = np.random.default_rng(seed)
    single = rng.choice(PRECISION_U_B2, size=(64 * r, r))
    for k in range(r):
        single[k * 64 : (k + 1) * 64, k] = np.arange(64)
    _check(cfg, single)


def _random_codes(cfg, rng, n):
    """Codes with many zeros and outliers, so that cascades and pairs are frequent."""
    b = cfg.act_bits
    top = (1 << cfg.code_bits) - 1
    scale = 1 << b if cfg.precision_enabled else 1
    kind = rng.choice(4, size=(n, cfg.rows), p=[0.3, 0.35, 0.25, 0.1])
    normal = rng.integers(1, cfg.act_max * scale + 1, size=(n, cfg.rows))
    outlier = rng.integers((cfg.act_max + 1) * scale, top + 1, size=(n, cfg.rows))
    extreme = rng.choice([top, (cfg.act_max + 1) * scale, cfg.act_max * scale], size=(n, cfg.rows))
    return np.select([kind == 0, kind == 1, kind == 2], [0 * normal, normal, outlier], extreme)


@pytest.mark.parametrize(
    "rows,act_bits,overq,cascade",
    [
        (8, 4, "range", 2),
        (8, 4, "range,precision", 4),
        (8, 3, "precision", 1),
        (16, 4, "range", 4),
        (16, 2, "range,precision", 2),
        (32, 4, "range", 2),
        (32, 4, "range,precision", 7),
    ],
)
def test_random_vectors(rows, act_bits, overq, cascade):
    cfg = ArrayConfig(
        rows=rows, cols=1, act_bits=act_bits, overq=overq, cascade=cascade, encoder=True
    )
    rng = np.random.default_rng(rows * 100 + cascade)
    n = 600 if rows <= 16 else 300
    codes = _random_codes(cfg, rng, n)
    gaps = np.where(rng.random(n) < 0.3, rng.integers(1, 4, size=n), 0)
    _check(cfg, codes, gaps)


@pytest.mark.parametrize("slots_per_stage", [1, 3, 4, 8])
def test_other_stage_groupings(slots_per_stage):
    """The structure is a parameter (G slots decided per stage); each G is bit-exact
    and has the same timing."""
    cfg = ArrayConfig(rows=8, cols=1, overq="range,precision", cascade=3, encoder=True)
    rng = np.random.default_rng(slots_per_stage)
    _check(cfg, _random_codes(cfg, rng, 300), slots_per_stage=slots_per_stage)


def test_reset_clears_valid():
    """Vectors in flight during rst never raise valid_out; later ones are unaffected."""
    cfg = ArrayConfig(rows=8, cols=1, overq="range", encoder=True)
    rng = np.random.default_rng(7)
    codes = _random_codes(cfg, rng, 20)
    out = simulate_encoder(cfg, codes, reset_at=(12,))
    presented = out["presented"]
    # vector t raises valid_out in cycle t + R unless a reset edge came in between
    expected = [t + cfg.rows for t in presented if not t <= 12 < t + cfg.rows]
    assert out["valid_out"] == expected
    values, states = _expected(codes, cfg)
    late = [i for i, t in enumerate(presented) if t > 12]
    assert (out["values"][late] == values[late]).all() and (
        out["states"][late] == states[late]
    ).all()


@pytest.mark.parametrize(
    "rows,cols,overq,cascade,preg",
    [(4, 3, "range", 2, False), (8, 8, "range,precision", 2, False), (5, 2, "precision", 1, True)],
)
def test_array_with_encoder(rows, cols, overq, cascade, preg):
    """top with --encoder: y = golden(encode_codes(codes)), exactly L cycles later,
    back to back and gapped, across a weight reload and a reset."""
    cfg = ArrayConfig(
        rows=rows, cols=cols, overq=overq, cascade=cascade, encoder=True, product_register=preg
    )
    rng = np.random.default_rng(rows + cols)
    program = []
    for _ in range(2):
        w = rng.integers(0, 1 << cfg.weight_bits, size=(rows, cols))
        program.append(("load", w))
        for i, codes in enumerate(_random_codes(cfg, rng, 30)):
            program.append(("codes", codes))
            if i % 7 == 3:
                program.append(("idle", int(rng.integers(1, 3))))
        program.append(("idle", cfg.latency))
    program.append(("reset", 1))
    program.append(("codes", _random_codes(cfg, rng, 1)[0]))
    trace = simulate(cfg, program)
    assert len(trace.received) == len(trace.sent)
    for sent, (cycle, ys) in zip(trace.sent, trace.received):
        assert cycle == sent.cycle + cfg.latency
        values, states = _expected(np.array(sent.codes)[None, :], cfg)
        y = golden(values, states, sent.weights, cfg)[0]
        assert list(ys) == [int(v) for v in y]


def test_latency_and_ports():
    cfg = ArrayConfig(rows=8, cols=8, encoder=True)
    base = ArrayConfig(rows=8, cols=8)
    assert cfg.latency == base.latency + 1
    assert cfg.code_bits == 8
    assert ArrayConfig(rows=8, cols=8, overq="range,precision", encoder=True).code_bits == 12
    with pytest.raises(ValueError, match="nothing to encode"):
        ArrayConfig(overq="none", encoder=True)


# --- the generator: --encoder ---------------------------------------------------------


def test_encoder_flag_ports_header_and_info(capsys):
    from hw.generate import generate_verilog, interface_info, main

    args = ["--rows", "4", "--cols", "3", "--overq", "range,precision"]
    assert main(args + ["--encoder"]) == 0
    text = capsys.readouterr().out
    cfg = ArrayConfig(rows=4, cols=3, overq="range,precision", encoder=True)
    assert text == generate_verilog(cfg)
    assert "--encoder" in text.splitlines()[1]
    assert f"Latency L = {cfg.latency} cycles" in text and cfg.latency == 4 + 3
    assert "input  wire [47:0] a_code" in text  # R * 3b bits with precision
    assert "a_data" not in text and "a_state" not in text and "skew skew" not in text
    assert "encoder encoder (" in text
    for name in ("outlier_k1", "zero_at_k1", "claim_k1", "covered_k1", "pair_k1", "skip_k1"):
        assert re.search(rf"\b{name}\b", text), name
    members = interface_info(cfg)["interface"]["members"]
    assert members["a_code"]["width"] == 4 * cfg.code_bits and "a_data" not in members
    assert main(args + ["--encoder", "--info"]) == 0
    info = capsys.readouterr().out
    assert "latency L      7 cycles" in info and "12-bit codes on a_code" in info


def test_encoder_without_overq_is_a_one_line_error(capsys):
    from hw.generate import main

    assert main(["--overq", "none", "--encoder"]) == 2
    out, err = capsys.readouterr()
    assert (
        out == ""
        and err.count("\n") == 1
        and err.startswith("error: --encoder needs an OverQ mode")
    )


def test_default_output_does_not_change():
    from pathlib import Path

    from hw.generate import generate_verilog

    committed = Path(__file__).resolve().parents[1] / "rtl_out" / "top.v"
    assert generate_verilog(ArrayConfig()) == committed.read_text()
    assert ArrayConfig().latency == 15 and "encoder" not in ArrayConfig().describe()


# --- victim overwrite (docs/victim.md) ---------------------------------

# q values for b = 2 that reach every victim decision with a neighbour: zero, each
# normal value, the first outliers (4: q' - M = 1, no neighbour is cheaper than 1 but
# the zero), the tie-makers (5, 6: q' - M = 2, 3 against neighbours 1..3), and the top.
VICTIM_Q_B2 = (0, 1, 2, 3, 4, 5, 6, 7, 9, 15)


@pytest.mark.parametrize("cascade", [1, 2, 3])
def test_every_code_vector_victim_r4_b2(cascade):
    """Victim mode: all 2^16 vectors of four 4-bit codes back to back at c = 2 (every c
    with OVERQ_EXHAUSTIVE=1, 12 s each), every vector over the deciding q values at
    every c, with gaps between the vectors."""
    cfg = ArrayConfig(
        rows=4, cols=1, act_bits=2, overq="range,victim", cascade=cascade, encoder=True
    )
    if cascade == 2 or os.environ.get("OVERQ_EXHAUSTIVE") == "1":
        codes = np.array(list(itertools.product(range(16), repeat=4)), dtype=np.int64)
        _check(cfg, codes)
    few = np.array(list(itertools.product(VICTIM_Q_B2, repeat=4)), dtype=np.int64)
    rng = np.random.default_rng(cascade)
    _check(cfg, few, np.where(rng.random(len(few)) < 0.3, 1, 0))
    assert encode_codes(few, cfg).stats.victims > 0


@pytest.mark.parametrize("cascade", [1, 2])
def test_every_code_vector_victim_precision_r3_b2(cascade):
    """Victim mode with precision: every vector over the fine codes of every rounding
    case (12^3), and every u in every slot."""
    cfg = ArrayConfig(
        rows=3, cols=1, act_bits=2, overq="range,precision,victim", cascade=cascade, encoder=True
    )
    _check_every_fine_code(cfg, cascade)


@pytest.mark.parametrize(
    "rows,act_bits,overq,cascade",
    [
        (8, 4, "range,victim", 2),
        (8, 4, "range,precision,victim", 3),
        (16, 3, "range,victim", 4),
    ],
)
def test_random_vectors_victim(rows, act_bits, overq, cascade):
    cfg = ArrayConfig(
        rows=rows, cols=1, act_bits=act_bits, overq=overq, cascade=cascade, encoder=True
    )
    rng = np.random.default_rng(rows * 100 + cascade + 7)
    codes = _random_codes(cfg, rng, 400)
    gaps = np.where(rng.random(400) < 0.3, rng.integers(1, 4, size=400), 0)
    _check(cfg, codes, gaps)
    assert encode_codes(codes, cfg).stats.victims > 0
