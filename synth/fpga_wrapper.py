"""The thin FPGA-only wrapper that puts registers and a handful of pins around ``top``.

Fmax must measure the array, not the pads, and a 16x16 array has more port bits
(~800) than any ECP5 package has pins. So the wrapper (which lives only in this flow,
never in the product):

- feeds every input bit of ``top`` from a flip-flop of one long shift register that is
  loaded through a single pin, so every input toggles independently (nothing of ``top``
  is constant-folded) and each input path starts at a register;
- registers every output bit of ``top`` and XOR-reduces them through a pipelined tree,
  one LUT4 level per register stage, down to a few pins, so every output bit stays
  observable (nothing of ``top`` is removed as unused) and each output path ends at a
  register one LUT away at most.

The flow also marks ``top`` ``keep_hierarchy`` so that Yosys cannot optimise across the
boundary; the wrapper's cells are then counted apart from ``top``'s.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Port", "parse_ports", "wrapper_verilog", "WRAPPER_NAME", "OUT_PINS"]

WRAPPER_NAME = "fpga_wrapper"
OUT_PINS = 8  # XOR-reduced output pins (plus y_valid-like 1-bit outputs)
_FANIN = 4  # one LUT4 per reduction stage

_CLOCK, _RESET = "clk", "rst"


@dataclass(frozen=True)
class Port:
    direction: str  # "input" | "output"
    name: str
    width: int


_DECL = re.compile(
    r"\b(input|output)\b\s*(?:wire\b|reg\b|signed\b|\s)*"
    r"(?:\[\s*(\d+)\s*:\s*(\d+)\s*\])?\s*(\\\S+|[A-Za-z_]\w*)"
)


def _module_text(verilog: str, name: str) -> str:
    match = re.search(rf"\bmodule\s+\\?{re.escape(name)}\b(.*?)\bendmodule\b", verilog, re.S)
    if match is None:
        raise ValueError(f"no module {name!r} in the Verilog")
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", match.group(1), flags=re.S)


def parse_ports(verilog: str, name: str = "top") -> list[Port]:
    """The ports of module ``name`` in declaration order (ANSI or non-ANSI style)."""
    ports: dict[str, Port] = {}
    for direction, msb, lsb, ident in _DECL.findall(_module_text(verilog, name)):
        width = abs(int(msb) - int(lsb)) + 1 if msb else 1
        ports.setdefault(ident, Port(direction, ident, width))
    if _CLOCK not in ports:
        raise ValueError(f"module {name!r} has no {_CLOCK!r} port")
    return list(ports.values())


def _xor_tree(lines: list[str], src: str, width: int, pins: int) -> str:
    """Append a registered XOR-reduction of ``src[width]`` to ``pins`` bits; return its name."""
    stage = 0
    while width > pins:
        out_width = max(pins, -(-width // _FANIN))
        dst = f"xr{stage}"
        lines.append(f"  reg [{out_width - 1}:0] {dst};")
        lines.append("  always @(posedge clk) begin")
        for i in range(out_width):
            bits = [f"{src}[{j}]" for j in range(i, width, out_width)]
            lines.append(f"    {dst}[{i}] <= {' ^ '.join(bits)};")
        lines.append("  end")
        src, width, stage = dst, out_width, stage + 1
    return src


def wrapper_verilog(ports: list[Port], top_name: str = "top") -> str:
    """Verilog of ``fpga_wrapper``: pins clk, rst, sin in and ``q`` out, around ``top_name``."""
    inputs = [p for p in ports if p.direction == "input" and p.name not in (_CLOCK, _RESET)]
    outputs = [p for p in ports if p.direction == "output"]
    if not outputs:
        raise ValueError(f"module {top_name!r} has no outputs to observe")
    n_in = sum(p.width for p in inputs)
    n_out = sum(p.width for p in outputs)
    narrow = [p for p in outputs if p.width == 1]  # valid bits: one pin each
    wide = [p for p in outputs if p.width > 1]
    n_wide = sum(p.width for p in wide)
    n_q = len(narrow) + (min(OUT_PINS, n_wide) if wide else 0)

    lines = [
        f"// Flow-only wrapper around {top_name}: {n_in} input bits from a shift register,",
        f"// {n_out} output bits registered and XOR-reduced to {n_q} pins.",
        f"module {WRAPPER_NAME}(input clk, input rst, input sin, output [{n_q - 1}:0] q);",
        "  reg rst_r;",
    ]
    if n_in:
        lines.append(f"  reg [{n_in - 1}:0] in_sr;")
    lines.append(f"  reg [{n_out - 1}:0] out_r;")
    lines.append(f"  wire [{n_out - 1}:0] out_w;")
    lines.append("  always @(posedge clk) begin")
    lines.append("    rst_r <= rst;")
    if n_in > 1:
        lines.append(f"    in_sr <= {{in_sr[{n_in - 2}:0], sin}};")
    elif n_in == 1:
        lines.append("    in_sr <= sin;")
    lines.append("    out_r <= out_w;")
    lines.append("  end")

    conns = [f".{_CLOCK}(clk)"]
    if any(p.name == _RESET for p in ports):
        conns.append(f".{_RESET}(rst_r)")
    pos = 0
    for p in inputs:
        conns.append(f".{p.name}(in_sr[{pos + p.width - 1}:{pos}])")
        pos += p.width
    pos = 0
    slices = {}
    for p in outputs:
        conns.append(f".{p.name}(out_w[{pos + p.width - 1}:{pos}])")
        slices[p.name] = (pos, p.width)
        pos += p.width
    lines.append(f"  {top_name} dut ({', '.join(conns)});")

    q_bits = []
    for p in narrow:
        lo, _ = slices[p.name]
        q_bits.append(f"out_r[{lo}]")
    if wide:
        lines.append(
            f"  wire [{n_wide - 1}:0] wide_r = {{{', '.join(reversed([_slice(slices[p.name]) for p in wide]))}}};"
        )
        tree = _xor_tree(lines, "wide_r", n_wide, OUT_PINS)
        q_bits.append(tree if n_wide > OUT_PINS else "wide_r")
    lines.append(f"  assign q = {{{', '.join(reversed(q_bits))}}};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _slice(span: tuple[int, int]) -> str:
    lo, width = span
    return f"out_r[{lo + width - 1}:{lo}]"
