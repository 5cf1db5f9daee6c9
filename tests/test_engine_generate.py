"""`python -m hw.generate --engine`: Verilog that Icarus compiles and Verilator lints
clean, --info, one-line errors, and the default output untouched."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pytest

from hw.engine.emit import generate_engine_verilog
from hw.params import ArrayConfig, EngineConfig
from verif.runner import simulator_env

GENERATE = [sys.executable, "-m", "hw.generate"]


def _run(*args):
    return subprocess.run(GENERATE + list(args), capture_output=True, text=True)


@pytest.mark.parametrize(
    "cfg",
    [
        EngineConfig(ArrayConfig(rows=3, cols=2, cascade=1), max_m=5, max_k=7, max_n=3),
        EngineConfig(
            ArrayConfig(
                rows=2, cols=3, weight_format="apot", weight_bits=5, overq="range,precision"
            ),
            max_m=4,
            max_k=9,
            max_n=5,
        ),
    ],
    ids=["range-c1", "apot-range-precision"],
)
def test_engine_verilog_compiles_and_lints(cfg, tmp_path):
    path = tmp_path / "top.v"
    path.write_text(generate_engine_verilog(cfg))
    if shutil.which("iverilog"):
        done = subprocess.run(
            ["iverilog", "-g2005", "-o", str(tmp_path / "a.vvp"), str(path)],
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr
    env = simulator_env()
    verilator = shutil.which("verilator", path=env.get("PATH"))
    if verilator is None:
        pytest.skip("verilator is not installed")
    lint = subprocess.run(
        [verilator, "--lint-only", "-Wall", "--top-module", "top", str(path)],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, **env},
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


def test_cli_info_reports_stored_bits_and_limits():
    done = _run("--engine", "--cascade", "1", "--info")
    assert done.returncode == 0, done.stderr
    assert "5 bits per activation slot" in done.stdout
    assert "M <= 64, K <= 512, N <= 512" in done.stdout
    info = json.loads(_run("--engine", "--rows", "2", "--cols", "2", "--info", "--json").stdout)
    assert info["stored_bits_per_slot"] == 5  # 2 rows: cascade 1, NORMAL/RANGE only
    assert info["streams"]["m_axis_y"]["tdata"] % 8 == 0
    assert info["errors"]["bad_shift"] == 16


@pytest.mark.parametrize(
    "args,message",
    [
        (["--engine", "--max-k", "0"], "--max-k must be in 1..65535"),
        (["--max-n", "9"], "need --engine"),
        (["--engine", "--overq", "none"], "needs an OverQ mode"),
    ],
)
def test_cli_errors_are_one_line(args, message):
    done = _run(*args)
    assert done.returncode == 2 and done.stdout == ""
    assert message in done.stderr and done.stderr.count("\n") == 1
