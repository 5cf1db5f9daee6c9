"""The cell library the flow maps to, and the cell areas read back from it.

The areas are read from the ``.lib`` itself so that the theoretical-minimum figures in
the report can never drift from what Yosys charges for the same cells.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

__all__ = ["LIBERTY", "cell_areas", "sequential_cells"]

LIBERTY = Path(__file__).with_name("cells45.lib")

_COMMENT = re.compile(r"/\*.*?\*/", re.S)
_CELL = re.compile(r"\bcell\s*\(\s*\"?([A-Za-z0-9_]+)\"?\s*\)\s*\{")
_AREA = re.compile(r"\barea\s*:\s*([0-9.eE+-]+)\s*;")


def _cells(text: str) -> dict[str, str]:
    """Map each cell name to the text of its body (up to the next cell)."""
    text = _COMMENT.sub("", text)
    starts = list(_CELL.finditer(text))
    bodies = {}
    for here, after in zip(starts, starts[1:] + [None]):
        end = after.start() if after else len(text)
        bodies[here.group(1)] = text[here.end() : end]
    return bodies


@lru_cache(maxsize=None)
def cell_areas(path: Path = LIBERTY) -> dict[str, float]:
    """Area in um^2 of every cell in a Liberty file."""
    areas = {}
    for name, body in _cells(Path(path).read_text()).items():
        match = _AREA.search(body)
        if not match:
            raise ValueError(f"{path}: cell {name} has no area")
        areas[name] = float(match.group(1))
    return areas


@lru_cache(maxsize=None)
def sequential_cells(path: Path = LIBERTY) -> frozenset[str]:
    """Names of the cells that hold state (those with an ``ff`` group)."""
    return frozenset(
        name
        for name, body in _cells(Path(path).read_text()).items()
        if re.search(r"\bff\s*\(", body)
    )
