"""The layer engine's cocotb tests (verif.tb_engine) on Icarus and Verilator.

One small engine (4 x 3, K and N limits not multiples of R and C) per simulator:
random commands with random gaps and stalls on every port, a refused command, a reset
mid-command, each bit-exact against sw_ref.engine. The long randomized runs are
`make sim ENGINE=1`.
"""

from __future__ import annotations

import pytest

from hw.params import ArrayConfig, EngineConfig
from verif.engine_sim import run_engine
from verif.runner import available

CFG = EngineConfig(ArrayConfig(rows=4, cols=3), max_m=9, max_k=14, max_n=7)


@pytest.mark.parametrize("sim", ["icarus", "verilator"])
def test_engine_on_both_simulators(sim, tmp_path):
    if not available(sim):
        pytest.skip(f"{sim} is not installed (make setup installs it)")
    result = run_engine(CFG, sim, seed=3, commands=4, build_dir=tmp_path / sim)
    assert result.ok, result.summary()
    assert set(result.passed) == {
        "random_commands",
        "refused_command_then_good_one",
        "reset_mid_command",
    }, result.passed
