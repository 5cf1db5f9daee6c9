# amaranth: UnusedElaboratable=no
"""``python -m hw.generate``: write the Verilog of one overq array to stdout.

Python entry points (used by verif/ and synth/):
  ``generate_verilog(cfg, name="top")``       the whole array, one file
  ``generate_pe_verilog(cfg, row=1, name="pe")`` one PE on its own (area of a single PE)
  ``interface_info(cfg, name="top")``          the ``--info --json`` sidecar as a dict
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from hw import dedupe
from hw.array import SystolicArray
from hw.emit import emit_leaves, header, structural_top, waive_leaves
from hw.names import check_name
from hw.params import STATE_NAMES, ArrayConfig, EngineConfig
from hw.pe import ProcessingElement

__all__ = ["generate_verilog", "generate_pe_verilog", "interface_info", "main"]

# One file holds several modules, so no file name can match them all (docs/hw.md).
_FILE_WAIVER = "/* verilator lint_off DECLFILENAME */\n"


def _leaf_prefix(name: str) -> str:
    """Leaf modules of a top not called ``top`` get its name as prefix (no clashes)."""
    return "" if name == "top" else f"{name}_"


def generate_verilog(cfg: ArrayConfig, name: str = "top") -> str:
    """The Verilog-2005 text of the whole array: header, ``top``, one definition per leaf."""
    check_name(name)
    array = SystolicArray(cfg)
    prefix = _leaf_prefix(name)
    leaves = emit_leaves(
        ((prefix + child.module_name, child) for child in array.children.values()), prefix
    )
    leaf_ports = {leaf: dedupe.module_ports(text) for leaf, text in leaves}
    top = structural_top(array, name, prefix, leaf_ports)
    title = (
        f"overq: {cfg.rows}x{cfg.cols} weight-stationary array `{name}` ({len(leaves) + 1} modules)"
    )
    body = top + "\n" + waive_leaves([text for _, text in leaves])
    return header(cfg, title, name) + _FILE_WAIVER + "\n" + body


def generate_pe_verilog(cfg: ArrayConfig, row: int = 1, name: str = "pe") -> str:
    """One PE of row ``row`` as its own top, with the registers it has in the array."""
    check_name(name)
    pe = ProcessingElement(cfg, row=row)
    leaves = emit_leaves([(name, pe)])
    title = f"overq: one processing element `{name}` (row {row}) of this array"
    command = f"hw.generate.generate_pe_verilog(cfg, row={row}, name={name!r})"
    return (
        header(cfg, title, command=command)
        + _FILE_WAIVER
        + "\n"
        + waive_leaves([text for _, text in leaves])
    )


def interface_info(cfg: ArrayConfig, name: str = "top") -> dict:
    """Configuration, latency and ports of the generated top (``--info --json``)."""
    check_name(name)
    array = SystolicArray(cfg)
    return {
        "module": name,
        "latency": cfg.latency,
        "acc_bits": cfg.acc_width,
        "clock": "clk",
        "reset": "rst (active high, synchronous)",
        "states": list(STATE_NAMES),
        "config": cfg.describe(),
        "interface": array.metadata.as_json()["interface"],
        # Amaranth's metadata describes each port as one packed, unsigned vector; what
        # the fields packed in it are (y_data's are two's complement) is said here.
        "fields": port_fields(cfg),
    }


def port_fields(cfg: ArrayConfig) -> dict:
    """Per bus port: how many fields, their width, their encoding, and where field i sits."""
    weight = (
        "two's complement"
        if cfg.weight_format == "int"
        else "APoT code: sign bit, then the terms, MSB first"
    )

    def bus(count, width, signed, meaning):
        return {
            "count": count,
            "width": width,
            "signed": signed,
            "meaning": meaning,
            "field_i_at": f"[i*{width} +: {width}]",
        }

    fields = {
        "w_data": bus(
            cfg.cols,
            cfg.weight_bits,
            cfg.weight_format == "int",
            f"weight code of column i ({weight})",
        )
    }
    if cfg.encoder:
        fields["a_code"] = bus(cfg.rows, cfg.code_bits, False, "code of slot i (unsigned)")
    else:
        fields["a_data"] = bus(cfg.rows, cfg.act_bits, False, "value v_i of slot i (unsigned)")
        if cfg.overq_enabled:
            fields["a_state"] = bus(
                cfg.rows,
                2,
                False,
                "state f_i of slot i: " + ", ".join(f"{n}={i}" for i, n in enumerate(STATE_NAMES)),
            )
    fields["y_data"] = bus(cfg.cols, cfg.acc_width, True, "output y[i] (two's complement)")
    return fields


def _info_text(cfg: ArrayConfig, name: str) -> str:
    lines = [
        f"module         {name}",
        f"latency L      {cfg.latency} cycles",
        f"acc_bits       {cfg.acc_width} (overflow-free minimum {cfg.min_acc_bits})",
    ]
    if cfg.input_register or cfg.product_register:  # default text unchanged
        stages = ["multiply + accumulate"]
        if cfg.input_register:
            stages.insert(0, "operand registers")
        if cfg.product_register:
            stages[-1:] = ["multiply", "accumulate"]
        lines.append(f"PE pipeline    {cfg.pe_latency} stages: {' -> '.join(stages)}")
    if cfg.double_buffer:
        lines.append(
            "weights        double-buffered: w_shift fills the shadow copy at any "
            "time, w_swap makes it active for the vector of that cycle on"
        )
    if cfg.encoder:
        lines.append(
            f"encoder        {cfg.code_bits}-bit codes on a_code; slot k encoded "
            f"k + 1 cycles after a_valid (included in L)"
        )
    lines += [
        "configuration:",
    ]
    lines += [f"  {key:<15}{value}" for key, value in cfg.describe().items()]
    return "\n".join(lines) + "\n"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults, except for flags and for options whose help says it already."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


class _ArgumentError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line on stderr, exit 2, like a bad value
        raise _ArgumentError(message)


EXAMPLES = """examples:
  python -m hw.generate --rows 8 --cols 8 > rtl_out/top.v          the default array
  python -m hw.generate --weight-format apot --weight-bits 5 --overq range,precision --cascade 3
  python -m hw.generate --engine --max-k 1280 --info                the layer engine's limits and memories
"""

# ArrayConfig's field names, as the command line spells them, for its error messages
_OPTION_OF = {
    f: "--" + f.replace("_", "-")
    for f in (
        "rows",
        "cols",
        "act_bits",
        "weight_bits",
        "weight_format",
        "apot_term_bits",
        "overq",
        "cascade",
        "acc_bits",
        "allow_overflow",
        "product_register",
        "input_register",
        "double_buffer",
        "encoder",
        "max_m",
        "max_k",
        "max_n",
    )
}


def as_options(message: str) -> str:
    """An ArrayConfig message with each field named as the option a user typed."""
    text = re.sub(
        r"(?<![\w-])(" + "|".join(_OPTION_OF) + r")(?![\w])",
        lambda m: _OPTION_OF[m.group(1)],
        message,
    )
    return re.sub(r"(--[\w-]+) / \1", r"\1", text)  # "field / --option" said once


def _parser() -> argparse.ArgumentParser:
    d = ArrayConfig()
    p = _Parser(
        prog="python -m hw.generate",
        description="Write the Verilog-2005 of an overq systolic array to stdout.",
        formatter_class=_HelpFormatter,
        epilog=EXAMPLES,
    )
    p.add_argument("--rows", type=int, default=d.rows, help="PE rows R (vector length)")
    p.add_argument("--cols", type=int, default=d.cols, help="PE columns C (outputs per vector)")
    p.add_argument("--act-bits", type=int, default=d.act_bits, help="bits per activation slot b")
    p.add_argument("--weight-bits", type=int, default=d.weight_bits, help="bits per weight code")
    p.add_argument(
        "--weight-format", default=d.weight_format, metavar="{int,apot}", help="weight code format"
    )
    p.add_argument(
        "--apot-term-bits", type=int, default=d.apot_term_bits, help="bits per APoT term k"
    )
    p.add_argument(
        "--overq",
        default=d.overq_text,
        metavar="MODES",
        help="OverQ modes: range,precision | range | precision | range,victim | none",
    )
    p.add_argument(
        "--cascade",
        type=int,
        default=None,
        help=f"range overwrite reach c (default: {d.cascade}, or R-1 when that is smaller)",
    )
    p.add_argument(
        "--acc-bits",
        type=int,
        default=None,
        help="accumulator width (default: the overflow-free minimum)",
    )
    p.add_argument(
        "--allow-overflow",
        action="store_true",
        help="accept --acc-bits below the overflow-free width",
    )
    p.add_argument(
        "--product-register",
        action="store_true",
        help="register the scaled product before the accumulate: +1 cycle of latency, "
        "shorter critical path",
    )
    p.add_argument(
        "--input-register",
        action="store_true",
        help="register each PE's multiplier operands (activation, mux-selected weight; "
        "the state delayed to match): +1 cycle of latency, the weight mux leaves the "
        "multiplier's path",
    )
    p.add_argument(
        "--double-buffer",
        action="store_true",
        help="shadow weights shifted by w_shift at any time, made active by w_swap for "
        "the vector of that cycle on: tiles back to back with no idle cycle",
    )
    p.add_argument(
        "--encoder",
        action="store_true",
        help="put the OverQ encoder in front of the array: top takes integer codes "
        "(a_code) instead of a_data/a_state; +1 cycle of latency",
    )
    p.add_argument(
        "--engine",
        action="store_true",
        help="the layer engine (docs/engine.md): the array with the encoder, double-buffered "
        "weights, activation/accumulator memories, requantizer and controller behind "
        "AXI4-Stream ports (implies --encoder and --double-buffer)",
    )
    e = EngineConfig()
    p.add_argument(
        "--max-m", type=int, default=e.max_m, help="with --engine: most rows of X per command"
    )
    p.add_argument("--max-k", type=int, default=e.max_k, help="with --engine: longest reduction K")
    p.add_argument("--max-n", type=int, default=e.max_n, help="with --engine: most outputs N")
    p.add_argument("--name", default="top", help="name of the top module")
    p.add_argument(
        "--info",
        action="store_true",
        help="print L, acc_bits and the configuration instead of Verilog",
    )
    p.add_argument("--json", action="store_true", help="with --info: print the interface as JSON")
    return p


def main(argv=None) -> int:
    e = EngineConfig()
    try:
        args = _parser().parse_args(argv)
        cfg = ArrayConfig(
            rows=args.rows,
            cols=args.cols,
            act_bits=args.act_bits,
            weight_bits=args.weight_bits,
            weight_format=args.weight_format,
            apot_term_bits=args.apot_term_bits,
            overq=args.overq,
            cascade=args.cascade,
            acc_bits=args.acc_bits,
            allow_overflow=args.allow_overflow,
            product_register=args.product_register,
            input_register=args.input_register,
            double_buffer=args.double_buffer and not args.engine,
            encoder=args.encoder and not args.engine,
        )
        engine = None
        if args.engine:
            engine = EngineConfig(cfg, max_m=args.max_m, max_k=args.max_k, max_n=args.max_n)
        elif (args.max_m, args.max_k, args.max_n) != (e.max_m, e.max_k, e.max_n):
            raise ValueError("--max-m/--max-k/--max-n need --engine")
        check_name(args.name)
        if args.json and not args.info:
            raise ValueError("--json needs --info")
    except (_ArgumentError, ValueError) as exc:
        print(f"error: {as_options(str(exc))}", file=sys.stderr)
        return 2
    if engine is not None:
        from hw.engine.emit import generate_engine_verilog
        from hw.engine.info import engine_info, engine_info_text

        if args.info:
            text = (
                json.dumps(engine_info(engine, args.name), indent=2) + "\n"
                if args.json
                else engine_info_text(engine, args.name)
            )
        else:
            text = generate_engine_verilog(engine, args.name)
        return _write(text)
    if args.info:
        if args.json:
            text = json.dumps(interface_info(cfg, args.name), indent=2) + "\n"
        else:
            text = _info_text(cfg, args.name)
    else:
        text = generate_verilog(cfg, args.name)
    return _write(text)


def _write(text: str) -> int:
    """Write ``text`` to stdout: a failed write is one line on stderr and exit 1.

    A full disk (``> /dev/full``) says so; a reader that stopped early (``| head``)
    is not an error worth a line. Either way stdout is pointed at /dev/null so the
    interpreter's last flush cannot print a traceback.
    """
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        _discard_stdout()
        return 1
    except OSError as exc:
        _discard_stdout()
        print(f"error: cannot write to stdout: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


def _discard_stdout() -> None:
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError):  # no file descriptor (captured stdout): nothing to do
        pass


if __name__ == "__main__":
    sys.exit(main())
