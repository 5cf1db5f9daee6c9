"""The cocotb tests of verif.tb_top against the generated ``top``, on Icarus and Verilator.

Each case is one build and one simulator run of every testbench test (random with
coverage closure, port level, directed, weight reload, reset mid-stream, throughput
and latency, and, where asked, the real-data layer compared bit for bit). Icarus
builds in about a second, so it gets the many shapes; Verilator builds take tens of
seconds, so it gets the two real-data configurations.
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from layer_figures import LAYER_SQNR_DB, SQNR_TOLERANCE_DB

from hw.params import ArrayConfig
from verif.config import RunSettings
from verif.runner import available, default_build_dir, run
from verif.sim import format_layer_report, run_layer

DB_TESTS = ("test_db_back_to_back_tiles", "test_db_random_shift_swap", "test_db_reset_mid_tile")
TB_TESTS = (
    "test_random",
    "test_port_level",
    "test_directed",
    "test_weight_reload",
    "test_reset_midstream",
    "test_throughput_latency",
)

# (simulator, configuration, digits images for the layer test or 0)
CASES = [
    ("icarus", ArrayConfig(), 1),  # the default 8x8, int weights, range
    ("icarus", ArrayConfig(weight_format="apot", overq="range,precision", cascade=3), 1),
    (
        "icarus",
        ArrayConfig(rows=4, cols=6, overq="range,precision", cascade=3, act_bits=3, weight_bits=6),
        0,
    ),
    (
        "icarus",
        ArrayConfig(rows=7, cols=3, overq="precision", weight_format="apot", weight_bits=7),
        0,
    ),
    ("icarus", ArrayConfig(rows=5, cols=2, overq="none", act_bits=5, weight_bits=8), 0),
    ("icarus", ArrayConfig(rows=1, cols=5, overq="range", cascade=1), 0),  # 1 row
    ("icarus", ArrayConfig(rows=6, cols=1, overq="range", cascade=5, act_bits=2), 0),  # 1 column
    (
        "icarus",
        ArrayConfig(
            rows=16, cols=4, overq="range,precision", cascade=4, weight_format="apot", weight_bits=5
        ),
        0,
    ),
    (
        "icarus",
        ArrayConfig(rows=5, cols=4, overq="range,precision", cascade=2, product_register=True),
        0,
    ),  # L = R + C
    # double-buffered weights (+ the back-to-back, random shift/swap and reset tests);
    # the layer streams its tiles back to back
    ("icarus", ArrayConfig(double_buffer=True), 1),
    (
        "icarus",
        ArrayConfig(
            rows=5,
            cols=4,
            overq="range,precision",
            cascade=2,
            input_register=True,
            double_buffer=True,
        ),
        0,
    ),
    ("icarus", ArrayConfig(rows=4, cols=3, overq="none", double_buffer=True), 0),
    ("icarus", ArrayConfig(rows=6, cols=5, input_register=True), 0),  # L = R + C
    ("verilator", ArrayConfig(double_buffer=True, input_register=True), 1),
    # accumulators wider than the minimum, as the area report prices them
    ("icarus", ArrayConfig(acc_bits=16), 0),
    ("icarus", ArrayConfig(overq="range,precision", acc_bits=32, weight_format="apot"), 0),
    # the hardware encoder in front (a_code, L + 1): codes from the digits layer too
    ("icarus", ArrayConfig(encoder=True), 1),
    ("icarus", ArrayConfig(rows=6, cols=3, overq="range,precision", cascade=3, encoder=True), 0),
    (
        "icarus",
        ArrayConfig(
            rows=5, cols=2, overq="precision", act_bits=3, encoder=True, product_register=True
        ),
        0,
    ),
    ("verilator", ArrayConfig(), 1),
    ("verilator", ArrayConfig(overq="range,precision", cascade=3, encoder=True), 1),
    ("verilator", ArrayConfig(weight_format="apot", overq="range,precision", cascade=3), 1),
]


def _id(case):
    sim, cfg, images = case
    return f"{sim}-{cfg.key()}" + ("-layer" if images else "")


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_generated_top_passes_every_testbench_test(case):
    sim, cfg, images = case
    if not available(sim):
        pytest.skip(f"{sim} is not installed (make setup installs both)")
    settings = RunSettings(cfg, seed=1, sim=sim)
    build_dir = default_build_dir(cfg, sim, "pytest")
    if images:
        result, report = run_layer(settings, images, build_dir)
    else:
        result, report = run(settings, build_dir), None
    assert not result.failed, result.summary() + f"; log in {build_dir}"
    ran = {name.split("/")[0] for name in result.passed}
    expected = set(TB_TESTS) - ({"test_port_level"} if cfg.encoder else set())  # no a_data port
    assert expected <= ran, f"tests that did not run: {expected - ran}"
    if cfg.double_buffer:
        assert set(DB_TESTS) <= ran, f"tests that did not run: {set(DB_TESTS) - ran}"
    if images:
        assert report is not None, "the layer test wrote no outputs"
        (build_dir / "layer_report.json").write_text(json.dumps(report, indent=1))
        print(format_layer_report(report))
        assert report["bit_exact"], format_layer_report(report)
        # pipelining and double buffering change the timing, not the numbers
        same_numbers = dataclasses.replace(cfg, input_register=False, double_buffer=False)
        measured = LAYER_SQNR_DB[same_numbers.key()]
        assert abs(report["sqnr_db"] - measured) < SQNR_TOLERANCE_DB, format_layer_report(report)
        # the cycles the layer took are the cycle model's (verif.utilisation)
        assert report["cycles"] == report["cycles_model"], format_layer_report(report)
        if cfg.double_buffer:
            assert report["utilisation"] >= 0.98, format_layer_report(report)
