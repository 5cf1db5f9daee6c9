"""Verilog models of the liberty cells, for simulating a mapped netlist.

Each cell of ``synth/cells45.lib`` becomes a small Verilog module written from the
cell's own ``function`` strings (combinational cells) or its ``ff`` group (the flip-flop),
parsed here in Python, not by Yosys: a gate-level simulation with these models does not
share Yosys's reading of the library with the mapping it checks. The flip-flop has no
reset and no initial value, so it starts as X, as silicon starts unknown: the netlist
has to be brought to a known state by ``rst`` and the inputs, like the chip.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..liberty import LIBERTY, _cells

__all__ = ["CellModelError", "cell_models"]

_PIN = re.compile(r"\bpin\s*\(\s*\"?(\w+)\"?\s*\)\s*\{(.*?)\}", re.S)
_DIRECTION = re.compile(r"\bdirection\s*:\s*(\w+)\s*;")
_FUNCTION = re.compile(r"\bfunction\s*:\s*\"([^\"]*)\"\s*;")
_FF = re.compile(r"\bff\s*\(\s*\"?(\w+)\"?\s*,\s*\"?(\w+)\"?\s*\)\s*\{(.*?)\}", re.S)
_NEXT = re.compile(r"\bnext_state\s*:\s*\"([^\"]*)\"\s*;")
_CLOCK = re.compile(r"\bclocked_on\s*:\s*\"([^\"]*)\"\s*;")
_TOKEN = re.compile(r"\s*(\w+|[!&|^()])")


class CellModelError(ValueError):
    """A liberty construct this translator does not handle (it refuses to guess)."""


def _expression(text: str, names: set[str], cell: str) -> str:
    """A liberty boolean expression (!, &, |, ^, parentheses) as Verilog."""
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m:
            raise CellModelError(f"{cell}: cannot read function {text!r} at {text[pos:]!r}")
        token = m.group(1)
        if token[0].isalnum() or token[0] == "_":
            if token not in names:
                raise CellModelError(f"{cell}: function {text!r} names unknown pin {token}")
            out.append(token)
        else:
            out.append("~" if token == "!" else token)
        pos = m.end()
    return " ".join(out).replace("( ", "(").replace(" )", ")").replace("~ ", "~")


def _module(name: str, body: str) -> str:
    pins = [(p, _DIRECTION.search(b), _FUNCTION.search(b)) for p, b in _PIN.findall(body)]
    if not pins or any(d is None for _, d, _ in pins):
        raise CellModelError(f"{name}: every pin needs a direction")
    inputs = [p for p, d, _ in pins if d.group(1) == "input"]
    outputs = [(p, f) for p, d, f in pins if d.group(1) == "output"]
    lines = [f"module {name} ({', '.join(p for p, _, _ in pins)});"]
    lines += [f"  input {p};" for p in inputs] + [f"  output {p};" for p, _ in outputs]
    ff = _FF.search(body)
    names = set(inputs)
    if ff:
        state, state_n, group = ff.groups()
        nxt, clk = _NEXT.search(group), _CLOCK.search(group)
        if not nxt or not clk or re.search(r"\b(clear|preset)\b", group):
            raise CellModelError(f"{name}: only a plain edge-triggered ff is modelled")
        clock = clk.group(1).strip()
        if clock not in inputs:
            raise CellModelError(f"{name}: clocked_on {clock!r} is not a plain input pin")
        lines += [
            f"  reg {state};",
            f"  wire {state_n} = ~{state};",
            f"  always @(posedge {clock}) {state} <= {_expression(nxt.group(1), names, name)};",
        ]
        names |= {state, state_n}
    for pin, function in outputs:
        if function is None:
            raise CellModelError(f"{name}: output {pin} has no function")
        lines.append(f"  assign {pin} = {_expression(function.group(1), names, name)};")
    lines.append("endmodule")
    return "\n".join(lines)


@lru_cache(maxsize=None)
def cell_models(liberty: Path = LIBERTY) -> str:
    """Verilog-2005 modules for every cell of the liberty file."""
    cells = _cells(Path(liberty).read_text())
    header = (
        f"// Verilog models of the cells of {Path(liberty).name}, written from its\n"
        "// function strings by synth.netlist.cells (for gate-level simulation).\n"
    )
    return header + "\n\n".join(_module(n, b) for n, b in cells.items()) + "\n"
