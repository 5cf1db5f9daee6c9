"""The tree stays clean: ruff (lint and format) and mypy on hw/ and the reference numerics,
exactly as `make lint` and the pre-commit hooks run them."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


@pytest.mark.parametrize(
    "command", [["ruff", "check", "."], ["ruff", "format", "--check", "."]], ids=" ".join
)
def test_ruff_is_clean(command):
    exe = BIN / command[0]
    assert exe.exists() or shutil.which(command[0]), "ruff is a test dependency (make setup)"
    done = subprocess.run([str(exe), *command[1:]], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]


def test_mypy_is_clean_on_the_typed_modules():
    makefile = (ROOT / "Makefile").read_text()
    typed = makefile.split("TYPED := ", 1)[1].split("\n.PHONY", 1)[0].replace("\\", " ").split()
    done = subprocess.run([str(BIN / "mypy"), *typed], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
