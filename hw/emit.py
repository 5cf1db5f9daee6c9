"""Verilog emission: Amaranth-converted leaf modules plus a structural ``top``.

Every distinct leaf (``pe``, ``pe_row0``, ``mul_int``, ``skew``, ...) is converted by
Amaranth once, on its own, so its ports keep the names of its signature. The top only
instantiates them; it is written from ``SystolicArray.connections()``, the same list the
Amaranth elaboration wires up, so the simulated and the emitted top agree. (Converting
the whole array at once makes Amaranth rebuild each instance's ports from its
neighbours: edge PEs lose ports, row 0 absorbs constants, and no two copies match.)
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager

from amaranth.back import rtlil, verilog
from amaranth.lib import wiring

from hw import dedupe
from hw.netlist import Connection, Const, Ref
from hw.params import STRUCTURE_SWITCHES, ArrayConfig

__all__ = ["emit_leaves", "structural_top", "waive_leaves", "header", "cli_arguments"]


def _hierarchy(component, path: str) -> dict[str, str]:
    """Escaped hierarchical name -> definition name, for every descendant."""
    mapping = {}
    for name, child in component.children.items():
        child_path = f"{path}.{name}"
        mapping[child_path] = child.module_name
        mapping.update(_hierarchy(child, child_path))
    return mapping


def emit_leaves(named, prefix: str = "") -> list[tuple[str, str]]:
    """``(definition name, Verilog)`` for each distinct module of ``named``.

    ``named`` yields ``(definition name, component)``; descendants are named
    ``prefix + module_name``. Components sharing a definition name are identical by
    construction (``module_name`` is derived from everything that shapes the logic;
    a test checks it), so only the first is converted.
    """
    todo = {}
    mapping = {}
    order = []  # each definition, then its descendants: the order of the file
    for name, component in named:
        if name not in todo:
            todo[name] = component
            hierarchy = _hierarchy(component, name)
            mapping.update({path: prefix + leaf for path, leaf in hierarchy.items()})
            order += [name] + [mapping[path] for path in hierarchy]
    text = _to_verilog(list(todo.items()))
    modules = dedupe.split_modules(dedupe.rename_modules(text, mapping))
    rank = {name: i for i, name in reversed(list(enumerate(order)))}
    modules.sort(key=lambda module: rank.get(module[0], len(rank)))  # Yosys sorts by name
    return dedupe.collapse(modules)


_PIN_LOCK = threading.RLock()


@contextmanager
def _pinned_yosys():
    """Use the Yosys that ships with Amaranth unless the user chose one.

    Amaranth prefers a ``yosys`` on PATH by default; a different version there would
    change the output, so the generator pins the bundled one (``AMARANTH_USE_YOSYS``
    still overrides it). The environment is process-wide, so threads that generate at
    the same time (the FPGA flow) take turns.
    """
    with _PIN_LOCK:
        if "AMARANTH_USE_YOSYS" in os.environ:
            yield
            return
        os.environ["AMARANTH_USE_YOSYS"] = "builtin"
        try:
            yield
        finally:
            del os.environ["AMARANTH_USE_YOSYS"]


def _batch_converter():
    """Amaranth's internal RTLIL -> Verilog step, or None if this Amaranth lacks it."""
    return getattr(verilog, "_convert_rtlil_text", None)


def _to_verilog(items: list[tuple[str, object]]) -> str:
    """Verilog of every ``(name, component)``: one Yosys run for all of them.

    Yosys starts in a subprocess that costs more than the conversion itself, so the
    RTLIL of every component is handed to it at once (Amaranth's own
    ``verilog.convert`` pipeline, minus the per-call start-up). If a future Amaranth
    drops that internal helper, each component is converted on its own instead; a
    test checks that both routes give the same file.
    """
    with _pinned_yosys():
        batch = _batch_converter()
        if batch is None:
            return "".join(
                verilog.convert(c, name=n, emit_src=False, strip_internal_attrs=True)
                for n, c in items
            )
        il = "\n".join(rtlil.convert(c, name=n, emit_src=False) for n, c in items)
        return batch(il, strip_internal_attrs=True)


def _range(width: int) -> str:
    return "" if width == 1 else f"[{width - 1}:0] "


def _ports(component):
    """``(name, is_input, width)`` of each port, in signature order."""
    for path, member, value in component.signature.flatten(component):
        yield "__".join(map(str, path)), member.flow == wiring.In, len(value)


def _expr(ref: Ref | Const) -> str:
    if isinstance(ref, Const):
        return f"{ref.width}'h{ref.value:x}"
    base = ref.port if ref.instance is None else f"{ref.instance}_{ref.port}"
    if ref.whole:
        return base
    lo, hi = ref.bits
    if hi - lo == 1:
        return f"{base}[{lo}]"
    return f"{base}[{hi - 1}:{lo}]"


def _drivers(connections: list[Connection]) -> dict[tuple, str]:
    """(instance, port) of each sink -> one Verilog expression (slices concatenated)."""
    pieces: dict[tuple, list[Connection]] = {}
    for conn in connections:
        pieces.setdefault((conn.sink.instance, conn.sink.port), []).append(conn)
    drivers = {}
    for key, conns in pieces.items():
        if len(conns) == 1 and conns[0].sink.whole:
            drivers[key] = _expr(conns[0].source)
            continue
        conns = sorted(conns, key=lambda c: c.sink.bits[0])
        edges = [c.sink.bits for c in conns]
        if edges[0][0] != 0 or any(a[1] != b[0] for a, b in zip(edges, edges[1:])):
            raise ValueError(f"sink {key} is not driven by contiguous slices: {edges}")
        drivers[key] = "{" + ", ".join(_expr(c.source) for c in reversed(conns)) + "}"
    return drivers


def _port_list(array) -> list[str]:
    """The ANSI port list of top: clk, rst, then the signature's ports."""
    decls = [("clk", "  input  wire clk"), ("rst", "  input  wire rst")]
    for port, is_input, width in _ports(array):
        direction = "input  wire" if is_input else "output wire"
        decls.append((port, f"  {direction} {_range(width)}{port}"))
    lines = []
    for i, (port, decl) in enumerate(decls):
        decl += "," if i + 1 < len(decls) else ""
        if port == "a_state":
            # Row 0 is always NORMAL, so a_state[1:0] is read by nothing (docs/overq-encoding.md "OverQ encoding").
            decl = _waived("UNUSEDSIGNAL", decl)
        lines.append(decl)
    return lines


def _instance(def_name, inst, ports, drivers, used, clocked) -> list[str]:
    """One instantiation; outputs that feed nothing are left open (``.a_out()``)."""
    pins = [f"    .{p}({p})" for p in clocked]
    for port, is_input, _ in ports:
        if is_input:
            if (inst, port) not in drivers:
                raise ValueError(f"input {inst}.{port} is not driven")
            pins.append(f"    .{port}({drivers[(inst, port)]})")
        else:
            pins.append(f"    .{port}({inst}_{port})" if (inst, port) in used else f"    .{port}()")
    return ["", f"  {def_name} {inst} (", ",\n".join(pins), "  );"]


def structural_top(array, name: str, prefix: str, leaf_ports: dict[str, list[str]]) -> str:
    """Verilog-2005 text of the top module: port list, one wire per used output, instances.

    ``leaf_ports`` (definition name -> its ports) tells which leaves take clk / rst.
    """
    connections = array.connections()
    drivers = _drivers(connections)
    used = {
        (c.source.instance, c.source.port)
        for c in connections
        if isinstance(c.source, Ref) and c.source.instance is not None
    }
    children = array.children
    ports: dict[str, list] = {}  # one port list per definition: its instances share it
    for child in children.values():
        ports.setdefault(prefix + child.module_name, list(_ports(child)))
    lines = [f"module {name} ("] + _port_list(array) + [");", ""]
    for inst, child in children.items():
        for port, is_input, width in ports[prefix + child.module_name]:
            if not is_input and (inst, port) in used:
                lines.append(f"  wire {_range(width)}{inst}_{port};")
    # Outputs at the array's edges (last column's a_out/state_out, last row's w_out)
    # feed nothing; leaving them open keeps one definition per PE kind.
    lines += ["", "  /* verilator lint_off PINCONNECTEMPTY */"]
    for inst, child in children.items():
        def_name = prefix + child.module_name
        clocked = [p for p in ("clk", "rst") if p in leaf_ports[def_name]]
        lines += _instance(def_name, inst, ports[def_name], drivers, used, clocked)
    lines += ["  /* verilator lint_on PINCONNECTEMPTY */", ""]
    for port, is_input, _ in _ports(array):
        if not is_input:
            lines.append(f"  assign {port} = {drivers[(None, port)]};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


def _waived(warning: str, line: str) -> str:
    return f"  /* verilator lint_off {warning} */\n{line}\n  /* verilator lint_on {warning} */"


# Amaranth's Verilog (via Yosys) keeps alias wires for named signals, writes every
# register's init value and its reset, and leaves some sign extension to Verilog's
# context rules; Verilator's -Wall style checks flag exactly these. See docs/hw.md.
LEAF_WAIVERS = ("UNUSEDSIGNAL", "PROCASSINIT", "WIDTHEXPAND")


def waive_leaves(leaf_texts: list[str]) -> str:
    """The leaf definitions between lint_off/lint_on of ``LEAF_WAIVERS`` only."""
    off = "".join(f"/* verilator lint_off {w} */\n" for w in LEAF_WAIVERS)
    on = "".join(f"/* verilator lint_on {w} */\n" for w in LEAF_WAIVERS)
    note = "// Leaf modules, emitted by Amaranth (Verilator style waivers: docs/hw.md).\n"
    return note + off + "".join("\n" + text for text in leaf_texts) + "\n" + on


def cli_arguments(cfg: ArrayConfig, name: str = "top") -> str:
    """The ``python -m hw.generate`` options that reproduce ``cfg``."""
    args = [
        f"--rows {cfg.rows}",
        f"--cols {cfg.cols}",
        f"--act-bits {cfg.act_bits}",
        f"--weight-bits {cfg.weight_bits}",
        f"--weight-format {cfg.weight_format}",
    ]
    if cfg.weight_format == "apot":
        args.append(f"--apot-term-bits {cfg.apot_term_bits}")
    args += [f"--overq {cfg.overq_text}", f"--cascade {cfg.cascade}"]
    if cfg.acc_bits is not None:
        args.append(f"--acc-bits {cfg.acc_bits}")
    if cfg.allow_overflow:
        args.append("--allow-overflow")
    args += [flag for field, flag, _, _ in STRUCTURE_SWITCHES if getattr(cfg, field)]
    if name != "top":
        args.append(f"--name {name}")
    return " ".join(args)


def header(cfg: ArrayConfig, title: str, name: str = "top", command: str | None = None) -> str:
    """The comment block that opens every generated file: every field and L."""
    info = cfg.describe()
    width = max(len(key) for key in info)
    command = command or f"python -m hw.generate {cli_arguments(cfg, name)}"
    lines = [
        f"// {title}",
        f"// Generated by: {command}",
        "// Do not edit: regenerate instead. Configuration:",
    ]
    for key, value in info.items():
        lines.append(f"//   {key:<{width}} = {value}")
    lines.append(
        f"// Latency L = {cfg.latency} cycles (a_valid in cycle t -> y_valid in cycle t+L)."
    )
    return "\n".join(lines) + "\n"
