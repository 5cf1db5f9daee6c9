"""Test tiers: `make test` runs everything; `make test-fast` the pure-Python and
amaranth.sim tests (no cocotb simulator run, no Yosys/nextpnr, no large network).

A module joins the full-only tier here, by name, so that a new test file is fast by
default and the list of what is slow stays in one place.
"""

import pytest

FULL_ONLY = {
    "test_claims",  # EfficientNet-Lite0 on photographs
    "test_config_space",  # Icarus compiles of sampled command lines
    "test_explore",  # synthesis of parts, network evaluations
    "test_explore_costmodel",  # the state codecs through Yosys
    "test_explore_dask",  # a Dask LocalCluster, synthesis of parts
    "test_fpga",  # nextpnr
    "test_lint",  # ruff and mypy over the tree
    "test_minilm",  # MiniLM-L6 evaluations
    "test_minilm_sim",  # MiniLM layer through the RTL
    "test_nets",  # loads every shipped network
    "test_synth_encoder",
    "test_synth_flow",
    "test_synth_netlist",
    "test_synth_pe",
    "test_synth_report",  # Yosys
    "test_utilisation",
    "test_verif_cli",
    "test_verif_mutants",
    "test_verif_sim",  # cocotb on Icarus and Verilator
    "test_engine_sim",
    "test_engine_mutants",  # the layer engine in cocotb
}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rsplit(".", 1)[-1] in FULL_ONLY:
            item.add_marker(pytest.mark.full)
