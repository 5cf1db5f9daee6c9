"""The Yosys flow on small hand-written designs (no dependence on hw/)."""

import json

import pytest

from synth import flow
from synth.flow import SynthError, strip_src, synthesize
from synth.liberty import LIBERTY, cell_areas, sequential_cells

MAC = """
module mac(input clk, input [3:0] a, input signed [3:0] w, output reg signed [11:0] acc);
  always @(posedge clk) acc <= acc + $signed({1'b0, a}) * w;
endmodule
"""

# The same MAC, but the weight comes from one of two inputs (an OverQ-style mux).
MAC_MUX = """
module mac(input clk, input sel, input [3:0] a, input signed [3:0] w, input signed [3:0] w2,
           output reg signed [11:0] acc);
  wire signed [3:0] ws = sel ? w2 : w;
  always @(posedge clk) acc <= acc + $signed({1'b0, a}) * ws;
endmodule
"""

LATCH = """
module latch(input en, input d, output reg q);
  always @* if (en) q = d;
endmodule
"""


@pytest.fixture(scope="module")
def mac():
    return synthesize(MAC, "mac", cache_dir=None)


def test_small_design_has_positive_area_and_mapped_cells(mac):
    areas = cell_areas()
    assert mac.area > 0
    assert set(mac.cells) <= set(areas)
    assert mac.area == pytest.approx(sum(areas[c] * n for c, n in mac.cells.items()), abs=1e-3)
    assert mac.flip_flops == 12  # the 12-bit accumulator, nothing else
    assert mac.sequential_area == pytest.approx(12 * areas["DFF_X1"], abs=1e-3)
    assert 0 < mac.sequential_share < 1
    assert mac.depth > 0


def test_cell_count_changes_when_the_design_changes(mac):
    muxed = synthesize(MAC_MUX, "mac", cache_dir=None)
    assert muxed.num_cells != mac.num_cells
    assert muxed.area > mac.area


def test_unmapped_cells_are_an_error():
    # The library has no latch: the flow must say so instead of reporting a bogus area.
    with pytest.raises(SynthError, match="unmapped"):
        synthesize(LATCH, "latch", cache_dir=None)


def test_yosys_errors_are_reported():
    with pytest.raises(SynthError, match="yosys exited"):
        synthesize("module broken(input a; endmodule\n", "broken", cache_dir=None)


def test_src_attributes_do_not_change_the_key():
    tagged = MAC.replace("  always", '  (* src = "x.py:12" *)\n  always')
    assert strip_src(tagged) == MAC
    assert flow.digest(tagged, "mac") == flow.digest(MAC, "mac")
    assert flow.digest(MAC_MUX, "mac") != flow.digest(MAC, "mac")


def test_results_are_cached_by_design(tmp_path, monkeypatch, mac):
    first = synthesize(MAC, "mac", label="tiny mac", cache_dir=tmp_path)
    (entry,) = tmp_path.glob("*.json")
    assert entry.name.startswith("tiny_mac-")
    assert json.loads(entry.read_text())["area"] == first.area == mac.area

    def no_yosys(*_):
        raise AssertionError("a cached design ran Yosys again")

    monkeypatch.setattr(flow, "_run_yosys", no_yosys)
    assert synthesize(MAC, "mac", label="tiny mac", cache_dir=tmp_path) == first
    with pytest.raises(AssertionError):
        synthesize(MAC_MUX, "mac", label="tiny mac", cache_dir=tmp_path)


def test_library_has_what_abc_and_dfflibmap_need():
    areas = cell_areas(LIBERTY)
    assert {"INV_X1", "BUF_X1", "NAND2_X1", "DFF_X1"} <= set(areas)
    assert sequential_cells(LIBERTY) == {"DFF_X1"}
    # NanGate45 cells are whole multiples of a 0.19 um x 1.4 um placement site.
    for name, area in areas.items():
        sites = area / (0.19 * 1.4)
        assert sites == pytest.approx(round(sites), abs=1e-6), name
