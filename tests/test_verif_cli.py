"""``python -m verif.sim`` (what ``make sim`` runs): exit codes, --rtl, --waves, errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hw.params import ArrayConfig
from verif.mutants import mutate
from verif.runner import available

pytestmark = pytest.mark.skipif(not available("icarus"), reason="iverilog is not installed")

SMALL = ["--rows", "3", "--cols", "2", "--overq", "range", "--cascade", "2", "--layer-images", "0"]


def _sim(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "verif.sim", "--sim", "icarus", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def test_generated_design_passes_and_waves_are_written(tmp_path):
    proc = _sim(*SMALL, "--seed", "3", "--waves", "--build-dir", str(tmp_path / "b"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "7 passed, 0 failed" in proc.stderr
    line = next(l for l in proc.stderr.splitlines() if "waves written to" in l)
    wave = line.split("waves written to ", 1)[1].strip()
    assert wave.endswith((".fst", ".vcd")) and (tmp_path / "b").exists()
    assert __import__("pathlib").Path(wave).stat().st_size > 0


def test_a_broken_rtl_file_fails_with_a_replay_command(tmp_path):
    from hw.generate import generate_verilog

    rtl = tmp_path / "broken top.v"
    rtl.write_text(
        mutate(generate_verilog(ArrayConfig(rows=3, cols=2, cascade=2)), "mux_inputs_swapped")
    )
    proc = _sim(*SMALL, "--rtl", str(rtl), "--build-dir", str(tmp_path / "b"))
    assert proc.returncode == 1, proc.stderr[-3000:]
    out = proc.stdout + proc.stderr
    assert "MISMATCH at vector" in out
    assert "replay: make sim SIM=icarus ROWS=3 COLS=2" in out and "RTL='" in out


def test_a_bad_configuration_is_one_line_and_exit_2():
    proc = _sim("--rows", "4", "--cascade", "9")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "cascade" in proc.stderr
    assert "Traceback" not in proc.stderr
