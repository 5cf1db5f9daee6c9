"""verif's parts on their own, without a simulator: port packing, configuration
transport, coverage bins, stimulus closure, scoreboard reports, mutants, layer tiling."""

from __future__ import annotations

import dataclasses
import logging
import re

import numpy as np
import pytest
from layer_figures import LAYER_SQNR_DB, SQNR_TOLERANCE_DB

from hw.params import STATE_NORMAL as N
from hw.params import STATE_PRECISION as P
from hw.params import STATE_RANGE as RG
from hw.params import STATE_SHIFTED as S
from hw.params import ArrayConfig
from verif.config import RunSettings, config_from_json, config_to_json, replay_command
from verif.coverage import Coverage, CoverageError
from verif.model import ArrayModel
from verif.monitor import Output
from verif.ports import pack_fields, unpack_signed, weight_codes, weight_values
from verif.scoreboard import InOrderScoreboard, ScoreboardError
from verif.stimulus import (
    directed_vectors,
    extreme_weight_codes,
    port_vectors,
    random_gaps,
    random_vectors,
    random_weight_codes,
    rng_for,
)

# --- ports ---------------------------------------------------------------------------


def test_pack_fields_places_field_k_at_k_times_width():
    assert pack_fields([[1, 2, 3]], 4) == [0x321]
    wide = pack_fields([[0xFFFF] * 9], 16)[0]  # 144 bits: beyond int64
    assert wide == (1 << 144) - 1
    with pytest.raises(ValueError):
        pack_fields([[16]], 4)


def test_unpack_signed_round_trip():
    rng = np.random.default_rng(0)
    vals = rng.integers(-(1 << 20), 1 << 20, size=12)
    word = pack_fields([vals & ((1 << 21) - 1)], 21)[0]
    assert unpack_signed(word, 12, 21).tolist() == vals.tolist()


@pytest.mark.parametrize(
    "fmt,bits", [("int", 2), ("int", 4), ("int", 8), ("apot", 4), ("apot", 5), ("apot", 7)]
)
def test_weight_codes_round_trip_every_code(fmt, bits):
    cfg = ArrayConfig(weight_format=fmt, weight_bits=bits)
    codes = np.arange(1 << bits)
    values = weight_values(codes, cfg)
    assert values.min() == cfg.weight_min and values.max() == cfg.weight_max
    assert np.array_equal(weight_values(weight_codes(values, cfg), cfg), values)


# --- configuration transport -----------------------------------------------------------


CFGS = [
    ArrayConfig(),
    ArrayConfig(rows=1, cols=5, overq="range", cascade=1),
    ArrayConfig(rows=6, cols=1, weight_format="apot", weight_bits=7, overq="precision"),
    ArrayConfig(rows=5, cols=3, overq="none", act_bits=3, weight_bits=6, acc_bits=30),
    ArrayConfig(rows=3, cols=4, overq="range,precision", cascade=2, product_register=True),
    ArrayConfig(rows=3, cols=4, cascade=2, input_register=True, double_buffer=True),
    ArrayConfig(rows=4, cols=2, overq="range,precision", cascade=3, encoder=True),
]


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: c.key())
def test_config_travels_through_the_environment(cfg):
    assert config_from_json(config_to_json(cfg)) == cfg
    s = RunSettings(cfg, 7, "verilator", rtl="/x/top.v")
    assert RunSettings.from_env(s.to_env()) == s


@pytest.mark.parametrize("cfg", CFGS, ids=lambda c: c.key())
def test_replay_command_names_every_make_variable(cfg):
    line = replay_command(cfg, 42, "icarus", "my design.v")
    assert line.startswith("make sim ")
    words = dict(re.findall(r"(\w+)=('[^']*'|\S+)", line))
    back = ArrayConfig(
        rows=int(words["ROWS"]),
        cols=int(words["COLS"]),
        act_bits=int(words["ACT_BITS"]),
        weight_bits=int(words["WEIGHT_BITS"]),
        weight_format=words["WEIGHT_FORMAT"],
        overq=words["OVERQ"],
        cascade=int(words["CASCADE"]),
        acc_bits=int(words["ACC_BITS"]) if "ACC_BITS" in words else None,
        product_register=words.get("PRODUCT_REGISTER") == "1",
        input_register=words.get("INPUT_REGISTER") == "1",
        double_buffer=words.get("DOUBLE_BUFFER") == "1",
        encoder=words.get("ENCODER") == "1",
    )
    assert back == cfg
    assert words["SEED"] == "42" and words["SIM"] == "icarus" and words["RTL"] == "'my design.v'"


# --- coverage --------------------------------------------------------------------------


def test_encoder_coverage_bins_follow_the_decisions():
    """Codes -> encoder decisions: handled at distance 1 and 2, clipped (no zero / last
    slot), a precision pair, adjacent outliers."""
    from sw_ref.overq import encode_codes

    cfg = ArrayConfig(rows=6, cols=1, act_bits=2, overq="range,precision", cascade=2, encoder=True)
    cov = Coverage(cfg)
    # u codes (b = 2): 0 zero, 8 -> q 2 normal, 40 -> q 10 outlier
    codes = np.array(
        [
            [40, 0, 8, 8, 8, 40],  # handled at distance 1, then a non-pair, last-slot outlier
            [40, 8, 0, 8, 0, 8],  # handled at distance 2, then a precision pair
            [40, 40, 8, 8, 8, 8],  # adjacent outliers, both clipped (no zero in reach)
        ]
    )
    enc = encode_codes(codes, cfg)
    cov.sample_codes(codes, enc.states)
    hits = cov.hits
    assert hits["encoder: outlier handled at distance 1"] == 1
    assert hits["encoder: outlier handled at distance 2"] == 1
    assert hits["encoder: outlier clipped in the last slot"] == 1
    assert hits["encoder: outlier clipped, no zero in reach"] == 2
    assert hits["encoder: precision pair"] == 1
    assert hits["encoder: outliers in adjacent slots"] == 1
    assert "encoder: precision pair" not in Coverage(ArrayConfig(encoder=True)).hits
    assert not any(n.startswith("encoder:") for n in Coverage(ArrayConfig()).hits)


def test_coverage_bins_follow_the_configuration():
    one_row = Coverage(ArrayConfig(rows=1, cols=3, cascade=1)).hits
    assert "NORMAL in row 0" in one_row and not any("RANGE" in b for b in one_row)
    base = Coverage(ArrayConfig(rows=4, overq="none")).hits
    assert not any(s in b for b in base for s in ("SHIFTED", "RANGE", "PRECISION"))
    full = Coverage(ArrayConfig(rows=8, overq="range,precision", cascade=3)).hits
    assert "SHIFTED in row 2" in full and "SHIFTED in row 1" not in full
    assert "RANGE in row 0" not in full and "PRECISION in row 7" in full
    assert [b for b in full if "cascade" in b] == [
        f"RANGE ending a cascade of length {m}" for m in (1, 2, 3)
    ]


def test_coverage_counts_cascades_and_neighbouring_pairs():
    cfg = ArrayConfig(rows=8, overq="range,precision", cascade=3)
    cov = Coverage(cfg)
    states = np.array(
        [
            [N, RG, S, S, N, N, N, N],  # cascade of length 3
            [N, RG, N, P, N, N, N, N],  # length 1, then a PRECISION pair next to it
            [N, P, N, RG, S, N, N, N],  # PRECISION pair, then a cascade of length 2
        ]
    )
    values = np.full(states.shape, 5)
    cov.sample_vectors(values, states, np.ones((8, 8), dtype=np.int64))
    hits = cov.hits
    assert [hits[f"RANGE ending a cascade of length {m}"] for m in (1, 2, 3)] == [1, 1, 1]
    assert hits["RANGE pair then PRECISION pair"] == 1
    assert hits["PRECISION pair then RANGE pair"] == 1
    assert hits["SHIFTED in row 3"] == 1 and hits["PRECISION in row 1"] == 1
    with pytest.raises(CoverageError, match="all-zero vector"):
        cov.check()
    assert "**MISSED**" in cov.table()


def test_coverage_clipped_and_saturated_outliers_need_the_raw_values():
    cfg = ArrayConfig(rows=2, cols=1, cascade=1)
    cov = Coverage(cfg)
    raw = np.array([[300, 0], [0, 20]])  # saturating outlier paired; last-row outlier clipped
    values = np.array([[15, 15], [0, 15]])
    states = np.array([[N, RG], [N, N]])
    cov.sample_vectors(values, states, np.ones((2, 1), dtype=np.int64), raw)
    assert cov.hits["RANGE pair saturated at 2^(2b)-1"] == 1
    assert cov.hits["outlier clipped to M"] == 1


SHAPES = [(1, 1), (1, 6), (6, 1), (3, 7), (8, 8), (16, 4)]


@pytest.mark.parametrize("overq", ["none", "range", "precision", "range,precision"])
@pytest.mark.parametrize("rows,cols", SHAPES)
def test_random_and_directed_stimulus_close_coverage(rows, cols, overq):
    """What tb_top.test_random and test_directed send closes every required bin."""
    from verif import tb_top

    for fmt, bits in (("int", 8), ("apot", 4)):
        cfg = ArrayConfig(
            rows=rows,
            cols=cols,
            overq=overq,
            weight_format=fmt,
            weight_bits=bits,
            cascade=max(1, rows - 1),
        )
        for seed in (1, 2):
            rng = rng_for(seed, "random", "back_to_back")
            cov, model = Coverage(cfg), ArrayModel(cfg)
            for _ in range(tb_top.RANDOM_TILES):
                model.load(random_weight_codes(cfg, rng))
                cov.sample_weights(model.codes, model.weights)
                v = random_vectors(cfg, rng, tb_top.RANDOM_VECTORS_PER_TILE)
                cov.sample_vectors(v.values, v.states, model.weights, v.raw)
            cov.check()
        _, v = directed_vectors(cfg)
        cov, model = Coverage(cfg), ArrayModel(cfg)
        for codes in (extreme_weight_codes(cfg, "max"), extreme_weight_codes(cfg, "min")):
            model.load(codes)
            cov.sample_weights(model.codes, model.weights)
            cov.sample_vectors(v.values, v.states, model.weights, v.raw)
        cov.check()


# --- stimulus --------------------------------------------------------------------------


def test_stimulus_is_a_function_of_seed_and_name():
    cfg = ArrayConfig(overq="range,precision")
    a = random_vectors(cfg, rng_for(5, "random"), 50)
    b = random_vectors(cfg, rng_for(5, "random"), 50)
    c = random_vectors(cfg, rng_for(5, "other"), 50)
    assert np.array_equal(a.values, b.values) and np.array_equal(a.states, b.states)
    assert not np.array_equal(a.values, c.values)
    assert np.array_equal(random_gaps(rng_for(1, "g"), 30), random_gaps(rng_for(1, "g"), 30))


@pytest.mark.parametrize("overq", ["none", "range", "precision", "range,precision"])
def test_port_level_stimulus_drives_every_state_into_every_row(overq):
    """With any OverQ mode on, the RTL implements all four states; the port-level
    stimulus (random and directed) drives each of them into every row, row 0
    included, whatever the encoder of that mode would emit."""
    from verif.stimulus import directed_port_vectors

    cfg = ArrayConfig(rows=4, overq=overq, cascade=2)
    want = {N, S, RG, P} if cfg.overq_enabled else {N}
    v = port_vectors(cfg, rng_for(1, "p"), 200)
    _, d = directed_port_vectors(cfg)
    for states in (v.states, d.states):
        for row in range(cfg.rows):
            assert set(np.unique(states[:, row])) == want, (overq, row)
    assert v.values.max() == cfg.act_max


def test_directed_cases_are_named_and_unique():
    names, v = directed_vectors(ArrayConfig(rows=8, overq="range,precision", cascade=3))
    assert len(names) == len(set(names)) == len(v)
    assert any("beyond c" in n for n in names)


# --- scoreboard ------------------------------------------------------------------------


def _board(cfg):
    return InOrderScoreboard(
        cfg, seed=9, replay=replay_command(cfg, 9, "icarus"), log=logging.getLogger("t")
    )


def test_scoreboard_reports_the_first_mismatch_with_a_replay_command(caplog):
    cfg = ArrayConfig(rows=2, cols=3, cascade=1)
    board = _board(cfg)
    exp = np.array([[1, 2, 3], [4, 5, 6]])
    inputs = (np.array([[1, 2], [3, 4]]), np.array([[0, 0], [0, 2]]))
    board.expect(exp, inputs, ["first", "second"])
    board.receive(Output(10, np.array([1, 2, 3])))
    with caplog.at_level(logging.ERROR):
        board.receive(Output(11, np.array([4, -5, 6])))
    text = caplog.text
    assert "MISMATCH at vector 1 (second)" in text and "differs" in text
    assert "seed=9" in text and cfg.key() in text and "replay: make sim" in text
    assert "RANGE" in text  # the inputs are shown with state names
    with pytest.raises(ScoreboardError, match="1 mismatching"):
        board.finish()


def test_scoreboard_catches_missing_unexpected_and_late_outputs():
    cfg = ArrayConfig(rows=2, cols=1, cascade=1)
    board = _board(cfg)
    board.expect(np.array([[1], [2]]), (np.zeros((2, 2)), np.zeros((2, 2))), ["a", "b"])
    board.receive(Output(5 + cfg.latency + 1, np.array([1])))
    with pytest.raises(ScoreboardError, match="never came"):
        board.finish()
    with pytest.raises(ScoreboardError, match="latency"):
        board.finish(cfg.latency, {0: 5, 1: 6})
    board.receive(Output(20, np.array([2])))
    board.receive(Output(21, np.array([3])))
    with pytest.raises(ScoreboardError, match="1 unexpected"):
        board.finish()


# --- mutants ---------------------------------------------------------------------------


def test_every_mutant_changes_the_generated_verilog():
    from hw.generate import generate_verilog
    from verif.mutants import MUTANTS, mutate

    text = generate_verilog(ArrayConfig(rows=4, cols=3, overq="range", cascade=2))
    for name in MUTANTS:
        assert mutate(text, name) != text, name
    from verif.mutants import ENCODER_MUTANTS

    text = generate_verilog(ArrayConfig(rows=4, cols=3, overq="range", cascade=2, encoder=True))
    for name in ENCODER_MUTANTS:
        assert mutate(text, name) != text, name
    from verif.mutants import DB_MUTANTS

    text = generate_verilog(
        ArrayConfig(rows=4, cols=3, overq="range", cascade=2, double_buffer=True)
    )
    for name in DB_MUTANTS:
        assert mutate(text, name) != text, name


# --- the real-data layer's tiling ------------------------------------------------------


@pytest.mark.parametrize(
    "cfg",
    [
        ArrayConfig(),
        ArrayConfig(rows=5, cols=3, weight_format="apot", overq="range,precision", cascade=3),
    ],
    ids=lambda c: c.key(),
)
def test_layer_tiles_add_up_to_the_reference_and_the_units_are_right(cfg):
    """Per-tile golden outputs, assembled, equal the whole-K reference; and the
    reference in real units equals the decoded activations times the real weights."""
    from sw_ref.overq import decode, golden
    from verif.layer import build_layer_case

    case = build_layer_case(cfg, images=1)
    per_tile = np.stack(
        [
            golden(case.values[t], case.states[t], weight_values(case.codes[t], cfg), cfg)
            for t in range(len(case.tile_index))
        ]
    )
    assert np.array_equal(case.assemble(per_tile), case.reference)
    acts = decode(case.slots, case.slot_states, case.act_step, cfg)  # real activations
    real = acts @ (case.weights * case.w_unit)
    o = case.reference.shape[1]
    np.testing.assert_allclose(case.reference * case.unit, real[:, :o], rtol=1e-9, atol=1e-9)
    err = case.float_error(case.reference)
    # Measured on the shipped network (tests/layer_figures.py says why this holds anywhere).
    assert abs(err["sqnr_db"] - LAYER_SQNR_DB[cfg.key()]) < SQNR_TOLERANCE_DB, err
    # OverQ must beat clipping the same data: the gain measured is 0.04 dB (int,
    # range) and 0.13 dB (APoT, range+precision), above the tolerance.
    plain = build_layer_case(dataclasses.replace(cfg, overq=frozenset()), images=1)
    gain = err["sqnr_db"] - plain.float_error(plain.reference)["sqnr_db"]
    assert gain > SQNR_TOLERANCE_DB, gain


def test_sim_refuses_an_rtl_whose_header_disagrees_with_the_make_variables(tmp_path, capsys):
    from hw.generate import generate_verilog
    from verif.sim import main

    rtl = tmp_path / "other.v"
    rtl.write_text(generate_verilog(ArrayConfig(rows=4, cols=3)))
    assert main(["--rtl", str(rtl), "--rows", "8", "--cols", "3"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "error:" in err and "rows=4 in the file" in err


def test_header_mismatches_name_each_differing_field():
    from verif.sim import header_mismatches

    text = "// Configuration:\n//   rows           = 4\n//   cols           = 3\n//   latency        = 6\n"
    assert header_mismatches(text, ArrayConfig(rows=4, cols=3)) == []
    problems = header_mismatches(text, ArrayConfig(rows=8, cols=3))
    assert any(p.startswith("rows=4") for p in problems) and any("latency" in p for p in problems)


def test_every_conditionally_skipped_cocotb_test_says_why():
    """A skipped cocotb test is reported with its reason (verif.runner.SKIP_REASONS)."""
    from pathlib import Path

    from verif.runner import SKIP_REASONS

    source = (Path(__file__).resolve().parents[1] / "verif" / "tb_top.py").read_text()
    skippable = re.findall(r"@cocotb\.test\(skip=[^\n]*\)\s*\nasync def (\w+)", source)
    assert skippable and set(skippable) <= set(SKIP_REASONS), set(skippable) - set(SKIP_REASONS)
