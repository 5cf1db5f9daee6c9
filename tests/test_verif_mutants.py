"""The testbench must fail on broken designs: mutants of the generated Verilog.

Each mutant (``verif.mutants``) is run through the same cocotb tests as the real
design; the unmutated design must pass the same run, so the failure is the
mutation's. Icarus only: the bugs are in the design, not in the simulator.
"""

from __future__ import annotations

import pytest

from hw.params import ArrayConfig
from verif.config import RunSettings
from verif.mutants import (
    DATAPATH_MUTANTS,
    DB_MUTANTS,
    ENCODER_MUTANTS,
    MUTANTS,
    VICTIM_MUTANTS,
    mutate,
)
from verif.runner import available, default_build_dir, run

CFG = ArrayConfig(rows=4, cols=3, overq="range", cascade=2)
TESTS = "test_random|test_directed|test_reset_midstream"  # exposes each bug in ~2 s

pytestmark = pytest.mark.skipif(not available("icarus"), reason="iverilog is not installed")


@pytest.fixture(scope="module")
def generated():
    from hw.generate import generate_verilog

    return generate_verilog(CFG)


def _run(text: str, tag: str):
    return run(
        RunSettings(CFG, seed=1, sim="icarus"),
        default_build_dir(CFG, "icarus", tag),
        rtl_text=text,
        test_filter=TESTS,
    )


def test_unmutated_design_passes(generated):
    result = _run(generated, "mutant-none")
    assert result.ok and not result.failed, result.summary()


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_fails(generated, name):
    result = _run(mutate(generated, name), f"mutant-{name}")
    assert result.passed or result.failed, "no results"
    assert "(simulator crashed: no results file)" not in result.failed, result.summary()
    assert result.failed, f"the testbench did not notice mutant {name}: {MUTANTS[name].description}"


# --- double buffering: a swap out of step with the wavefront must be caught -----------

DB_CFG = ArrayConfig(rows=4, cols=3, overq="range", cascade=2, double_buffer=True)
DB_TESTS = "test_db_back_to_back_tiles|test_db_random_shift_swap"


@pytest.fixture(scope="module")
def generated_db():
    from hw.generate import generate_verilog

    return generate_verilog(DB_CFG)


def _run_db(text: str, tag: str):
    return run(
        RunSettings(DB_CFG, seed=1, sim="icarus"),
        default_build_dir(DB_CFG, "icarus", tag),
        rtl_text=text,
        test_filter=DB_TESTS,
    )


def test_unmutated_double_buffer_design_passes(generated_db):
    result = _run_db(generated_db, "mutant-none")
    assert result.ok and not result.failed, result.summary()
    assert len(result.passed) == 2, result.summary()


@pytest.mark.parametrize("name", list(DB_MUTANTS))
def test_double_buffer_mutant_fails(generated_db, name):
    result = _run_db(mutate(generated_db, name), f"mutant-{name}")
    assert "(simulator crashed: no results file)" not in result.failed, result.summary()
    assert result.failed, (
        f"the testbench did not notice mutant {name}: {DB_MUTANTS[name].description}"
    )


# --- the hardware encoder (--encoder): its mutants against a design that has it ------

ENC_CFG = ArrayConfig(rows=4, cols=3, overq="range", cascade=2, encoder=True)
ENC_TESTS = "test_random|test_directed"


@pytest.fixture(scope="module")
def generated_encoder():
    from hw.generate import generate_verilog

    return generate_verilog(ENC_CFG)


def _run_encoder(text: str, tag: str):
    return run(
        RunSettings(ENC_CFG, seed=1, sim="icarus"),
        default_build_dir(ENC_CFG, "icarus", tag),
        rtl_text=text,
        test_filter=ENC_TESTS,
    )


def test_unmutated_encoder_design_passes(generated_encoder):
    result = _run_encoder(generated_encoder, "mutant-none")
    assert result.ok and not result.failed, result.summary()


@pytest.mark.parametrize("name", list(ENCODER_MUTANTS))
def test_encoder_mutant_fails(generated_encoder, name):
    result = _run_encoder(mutate(generated_encoder, name), f"mutant-{name}")
    assert result.passed or result.failed, "no results"
    assert "(simulator crashed: no results file)" not in result.failed, result.summary()
    assert result.failed, (
        f"the testbench did not notice mutant {name}: {ENCODER_MUTANTS[name].description}"
    )


VIC_CFG = ArrayConfig(rows=4, cols=3, overq="range,victim", cascade=2, encoder=True)


@pytest.fixture(scope="module")
def generated_victim():
    from hw.generate import generate_verilog

    return generate_verilog(VIC_CFG)


def _run_victim(text: str, tag: str):
    return run(
        RunSettings(VIC_CFG, seed=1, sim="icarus"),
        default_build_dir(VIC_CFG, "icarus", tag),
        rtl_text=text,
        test_filter=ENC_TESTS,
    )


def test_unmutated_victim_design_passes(generated_victim):
    result = _run_victim(generated_victim, "mutant-none")
    assert result.ok and not result.failed, result.summary()


@pytest.mark.parametrize("name", list(VICTIM_MUTANTS))
def test_victim_mutant_fails(generated_victim, name):
    result = _run_victim(mutate(generated_victim, name), f"mutant-{name}")
    assert result.passed or result.failed, "no results"
    assert "(simulator crashed: no results file)" not in result.failed, result.summary()
    assert result.failed, (
        f"the testbench did not notice mutant {name}: {VICTIM_MUTANTS[name].description}"
    )


# --- the datapath: APoT multiplier, PRECISION scale, de-skew, weight chain, accumulator

DP_CFG = ArrayConfig(
    rows=4, cols=3, overq="range,precision", cascade=2, weight_format="apot", weight_bits=5
)
DP_TESTS = "test_random|test_port_level|test_directed|test_reset_midstream"


@pytest.fixture(scope="module")
def generated_datapath():
    from hw.generate import generate_verilog

    return generate_verilog(DP_CFG)


def _run_datapath(text: str, tag: str):
    return run(
        RunSettings(DP_CFG, seed=1, sim="icarus"),
        default_build_dir(DP_CFG, "icarus", tag),
        rtl_text=text,
        test_filter=DP_TESTS,
    )


def test_unmutated_datapath_design_passes(generated_datapath):
    result = _run_datapath(generated_datapath, "mutant-none")
    assert result.ok and not result.failed, result.summary()


@pytest.mark.parametrize("name", list(DATAPATH_MUTANTS))
def test_datapath_mutant_fails(generated_datapath, name):
    result = _run_datapath(mutate(generated_datapath, name), f"mutant-{name}")
    assert result.passed or result.failed, "no results"
    assert "(simulator crashed: no results file)" not in result.failed, result.summary()
    assert result.failed, (
        f"the testbench did not notice mutant {name}: {DATAPATH_MUTANTS[name].description}"
    )
