"""The netlist after synthesis (``synth.netlist``): the fast half of ``make synth``'s checks.

One priced PE is proven equivalent to its RTL in Yosys, and a netlist with one gate
changed is refused; a whole 4x4 array is simulated at gate level (the mapped cells,
modelled from the liberty file) under the cocotb testbench, and a netlist with one gate
changed fails it. ``make synth`` runs the same checks on every PE it prices.
"""

from __future__ import annotations

import re

import pytest

from hw.params import ArrayConfig
from synth.designs import Job
from synth.flow import SynthError, synthesize
from synth.liberty import cell_areas
from synth.netlist.cells import CellModelError, cell_models
from synth.netlist.equiv import check_equivalence
from synth.netlist.mapped import map_netlist
from verif.runner import available

PE_JOB = Job("pe", ArrayConfig())  # the OverQ range PE at A4W4, as the report prices it


def _break_one_gate(netlist: str) -> str:
    """The first NAND2 becomes an AND2 (same pins, the opposite output)."""
    broken = re.sub(r"\bNAND2_X1\b", "AND2_X1", netlist, count=1)
    assert broken != netlist
    return broken


@pytest.fixture(scope="module")
def pe_mapped():
    verilog = PE_JOB.verilog()
    priced = synthesize(verilog, PE_JOB.top, label=PE_JOB.label)
    return map_netlist(verilog, PE_JOB.top, priced), priced


def test_cell_models_cover_the_library_and_read_its_functions():
    text = cell_models()
    for cell in cell_areas():
        assert re.search(rf"^module {cell} \(", text, re.M), cell
    assert "assign ZN = (~(A1 & A2));" in text  # NAND2_X1, from "(!(A1 & A2))"
    assert "always @(posedge CK) IQ <= D;" in text  # DFF_X1 from its ff group


def test_cell_models_refuse_what_they_cannot_read(tmp_path):
    lib = tmp_path / "odd.lib"
    lib.write_text(
        "library (x) { cell (ODD_X1) { area : 1.0;\n"
        "pin (A) { direction : input; }\n"
        'pin (Z) { direction : output; function : "A + B\'"; } } }\n'
    )
    with pytest.raises(CellModelError):
        cell_models(lib)


def test_remapped_netlist_is_the_priced_one(pe_mapped):
    mapped, priced = pe_mapped
    assert mapped.result.area == pytest.approx(priced.area)
    assert mapped.result.cells == priced.cells
    assert sum(mapped.netlist.count(f"{cell} ") for cell in priced.cells) >= priced.num_cells
    wrong = type(priced)(**{**priced.to_json(), "area": priced.area + 1.0})
    with pytest.raises(SynthError, match="not be the one priced"):
        map_netlist(PE_JOB.verilog(), PE_JOB.top, wrong)


def test_pe_netlist_is_equivalent_to_its_rtl(pe_mapped):
    mapped, _ = pe_mapped
    result = check_equivalence(mapped.rtl, mapped.netlist, PE_JOB.top)
    assert result.equivalent, result.detail


def test_a_netlist_with_one_gate_changed_is_not_equivalent(pe_mapped):
    mapped, _ = pe_mapped
    result = check_equivalence(mapped.rtl, _break_one_gate(mapped.netlist), PE_JOB.top)
    assert not result.equivalent
    assert "fail" in result.detail.lower()


GATE_CFG = ArrayConfig(rows=4, cols=4, overq="range")


@pytest.mark.skipif(not available("icarus"), reason="iverilog is not installed")
def test_gate_level_4x4_array_passes_the_testbench():
    from synth.netlist.gatesim import simulate_gates

    result = simulate_gates(GATE_CFG)
    assert result.ok, result.summary()


@pytest.mark.skipif(not available("icarus"), reason="iverilog is not installed")
def test_gate_level_run_fails_on_a_netlist_with_one_gate_changed():
    from synth.netlist.gatesim import gate_level_text
    from verif.config import RunSettings
    from verif.runner import default_build_dir, run

    text, _ = gate_level_text(GATE_CFG)
    netlist, models = text.split("// Verilog models", 1)
    broken = _break_one_gate(netlist) + "// Verilog models" + models
    result = run(
        RunSettings(GATE_CFG, seed=1, sim="icarus"),
        default_build_dir(GATE_CFG, "icarus", "gates-broken"),
        rtl_text=broken,
        test_filter="test_directed",
    )
    assert result.passed or result.failed, "no results"
    assert result.failed, "the gate-level run did not notice a changed gate"
