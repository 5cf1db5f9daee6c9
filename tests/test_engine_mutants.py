"""Each planted engine bug (verif.engine_mutants) fails verif.tb_engine on Icarus."""

from __future__ import annotations

import pytest

from hw.engine.emit import generate_engine_verilog
from hw.params import ArrayConfig, EngineConfig
from verif.engine_mutants import ENGINE_MUTANTS
from verif.engine_sim import run_engine
from verif.runner import available

CFG = EngineConfig(ArrayConfig(rows=4, cols=3), max_m=9, max_k=14, max_n=7)  # as test_engine_sim


@pytest.mark.parametrize("mutant", ENGINE_MUTANTS, ids=lambda m: m.name)
def test_engine_mutant_is_killed(mutant, tmp_path):
    if not available("icarus"):
        pytest.skip("icarus is not installed (make setup installs it)")
    text = mutant.apply(generate_engine_verilog(CFG))
    result = run_engine(
        CFG,
        "icarus",
        seed=3,
        commands=4,
        build_dir=tmp_path,
        rtl_text=text,
        testcase="random_commands",
    )
    assert result.failed == ["random_commands"], f"{mutant.name} survived: {result.summary()}"
