"""The ECP5 flow: real Yosys and nextpnr runs on tiny arrays, and the report built from them."""

import copy
import json
import re

import pytest

from hw.generate import generate_verilog
from hw.params import ArrayConfig
from synth import fpga_tools
from synth.fpga_flow import pnr_seed, run_flow, summarize, synth_variant
from synth.fpga_report import build_report, render_markdown, top_luts
from synth.fpga_variants import (
    ENCODER_FLAVOURS,
    FLAVOURS,
    PRODUCT_REG_FLAVOURS,
    SEEDS,
    Variant,
    all_variants,
    default_variants,
)
from synth.fpga_wrapper import OUT_PINS, parse_ports, wrapper_verilog

TINY = ArrayConfig(rows=2, cols=2, overq="none", cascade=1)


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("fpga-cache")


@pytest.fixture(scope="module")
def flow_2x2(cache):
    """The 2x2 baseline through Yosys (LUT-only) and nextpnr at seed 1."""
    synth, synth_dir = synth_variant(TINY, nodsp=True, cache_dir=cache)
    run = pnr_seed(synth_dir, synth["netlist_digest"], 1, cache)
    return synth, synth_dir, run


def test_flow_on_2x2_gives_luts_ffs_and_fmax(flow_2x2, cache):
    synth, _, run = flow_2x2
    assert "error" not in run, run.get("error")
    summary = summarize(synth, [run])
    assert run_flow(TINY, nodsp=True, seeds=(1,), cache_dir=cache) == summary
    assert summary["top"]["lut4"] > 0 and summary["top"]["ff"] > 0
    assert summary["placed"]["lut4"] > 0 and summary["placed"]["ff"] > 0
    assert summary["fmax_mhz"] > 0
    # the placed design holds top and the wrapper
    assert summary["placed"]["ff"] >= synth["top"]["ff"] + synth["wrapper"]["ff"]


def test_more_pes_use_more_luts(cache):
    small, _ = synth_variant(TINY, nodsp=True, cache_dir=cache)
    big, _ = synth_variant(
        ArrayConfig(rows=3, cols=3, overq="none", cascade=1), nodsp=True, cache_dir=cache
    )
    assert top_luts(big["top"]) > top_luts(small["top"])
    assert big["top"]["ff"] > small["top"]["ff"]


def test_wrapper_keeps_every_cell_of_top(tmp_path):
    """top inside the wrapper has exactly the cells it has when synthesized alone."""
    cfg = ArrayConfig(rows=2, cols=2, overq="range", cascade=1)
    verilog = generate_verilog(cfg)
    inside = fpga_tools.synthesize(verilog, tmp_path / "wrapped", nodsp=False)
    alone = fpga_tools.synthesize_alone(verilog, tmp_path / "alone", nodsp=False)
    assert inside.top_cells == alone
    assert alone["dsp"] == cfg.rows * cfg.cols  # one multiplier per PE, in a DSP


def test_wrapper_feeds_every_input_and_observes_every_output():
    cfg = ArrayConfig(rows=2, cols=3, overq="range", cascade=1)
    ports = {p.name: p for p in parse_ports(generate_verilog(cfg))}
    assert ports["a_data"].width == cfg.rows * cfg.act_bits
    assert ports["y_data"].width == cfg.cols * cfg.acc_width
    text = wrapper_verilog(list(ports.values()))
    n_in = sum(p.width for p in ports.values() if p.direction == "input") - 2  # clk, rst
    assert f"reg [{n_in - 1}:0] in_sr;" in text
    n_out = ports["y_data"].width + ports["y_valid"].width
    assert f"reg [{n_out - 1}:0] out_r;" in text
    # every registered y_data bit enters the XOR tree exactly once
    first_stage = re.findall(r"wide_r\[(\d+)\]", "".join(re.findall(r"xr0\[\d+\] <= .*", text)))
    assert sorted(map(int, first_stage)) == list(range(ports["y_data"].width))
    q_width = int(re.search(r"output \[(\d+):0\] q", text).group(1)) + 1
    assert q_width <= OUT_PINS + 1


def _raw_report(flow_2x2) -> dict:
    """nextpnr's own --report JSON of seed 1, as the flow left it in the cache."""
    synth, synth_dir, _ = flow_2x2
    entry = next((synth_dir.parent.parent / "pnr").glob(f"{synth['netlist_digest']}_s1_*"))
    return json.loads((entry / "report_s1.json").read_text())


def test_nextpnr_report_is_parsed_not_invented(flow_2x2):
    run = flow_2x2[2]
    raw = _raw_report(flow_2x2)
    parsed = fpga_tools.parse_nextpnr_report(raw)
    (clock,) = raw["fmax"].values()
    assert parsed["fmax_mhz"] == clock["achieved"] == run["fmax_mhz"]
    assert parsed["lut4"] == raw["utilization"]["TRELLIS_COMB"]["used"] == run["lut4"]
    assert parsed["ff"] == raw["utilization"]["TRELLIS_FF"]["used"]


def test_report_takes_its_numbers_from_the_parsed_results(flow_2x2):
    """Change the tool's report and the table changes with it."""
    synth = flow_2x2[0]
    raw = _raw_report(flow_2x2)
    edited = copy.deepcopy(raw)
    (clock,) = edited["fmax"].values()
    clock["achieved"] = 123.456
    edited["utilization"]["TRELLIS_COMB"]["used"] = 4242
    edited["utilization"]["TRELLIS_FF"]["used"] = 1717
    run = {"seed": 1, "cpu_s": 0.0, **fpga_tools.parse_nextpnr_report(edited)}
    base = Variant(8, 4, "baseline", True, (1,))  # labels only: 8x8 for the MAC count
    slower = dict(run, fmax_mhz=100.0)
    results = [
        (base, summarize(synth, [run])),
        (Variant(8, 4, "range", True, (1,)), summarize(synth, [slower])),
    ]
    report = build_report(results)
    first = report["variants"][0]
    assert first["fmax_mhz"] == 123.46 and first["placed"]["lut4"] == 4242
    assert first["throughput_gmac_s"] == pytest.approx(123.456e6 * 64 / 1e9, abs=0.01)
    assert report["variants"][1]["overhead_vs_baseline"]["fmax_pct"] == pytest.approx(
        100 * (100.0 - 123.46) / 123.46, abs=0.1
    )
    text = render_markdown(report)
    assert "| 4242 | 1717 |" in text and "123.5" in text


def test_median_over_seeds():
    synth = {"top": {"lut4": 1, "ff": 1, "dsp": 0, "ccu2c": 0}, "wrapper": {}, "cpu_s": 0.0}
    runs = [
        {"seed": s, "fmax_mhz": f, "lut4": 10, "ff": 5, "dsp": 0, "io": 3, "cpu_s": 1}
        for s, f in ((1, 90.0), (2, 110.0), (3, 100.0))
    ]
    assert summarize(synth, runs)["fmax_mhz"] == 100.0


def test_variant_matrix():
    full = all_variants()
    assert len(full) == 2 * 2 * 2 * len(FLAVOURS)
    for v in full:
        v.cfg  # every configuration is valid
    headline = [v for v in default_variants() if v.group == "8x8 A4W4"]
    assert len(headline) == 2 * (len(FLAVOURS) + len(PRODUCT_REG_FLAVOURS) + len(ENCODER_FLAVOURS))
    assert all(v.seeds == SEEDS for v in headline)
    piped = [v for v in headline if v.flavour in PRODUCT_REG_FLAVOURS]
    assert {v.cfg.overq_text for v in piped} == {"none", "range"}
    assert all(v.cfg.product_register and v.cfg.latency == 16 for v in piped)
    encoded = [v for v in headline if v.flavour in ENCODER_FLAVOURS]
    assert all(
        v.cfg.encoder and v.cfg.overq_text == "range" and v.cfg.latency == 16 for v in encoded
    )
    apot8 = Variant(8, 8, "apot", False).cfg
    assert apot8.weight_bits == 7 and len(apot8.apot_exponents) == 3


def test_scheduler_shares_identical_netlists(cache):
    """APoT has no multiplier: its DSP and LUT-only netlists are one, placed once."""
    from synth.fpga import run_variants

    pair = [Variant(3, 4, "apot", nodsp, (1,)) for nodsp in (False, True)]
    (_, dsp), (_, lut) = run_variants(pair, jobs=2, cache_dir=cache)
    assert dsp["netlist_digest"] == lut["netlist_digest"]
    assert dsp["top"]["dsp"] == 0 and dsp["fmax_mhz"] == lut["fmax_mhz"] > 0
    runs = list((cache / "pnr").glob(f"{dsp['netlist_digest']}_s1_*"))
    assert len(runs) == 1


def test_pipeline_variants_pair_baseline_and_range_per_option():
    """Every pipelining option of the pipeline report has a baseline and a range row in
    both mappings; the operand-register rows use three seeds (the Fmax target is on
    their median)."""
    from synth.fpga_pipeline import OPTIONS
    from synth.fpga_variants import pipeline_variants

    vs = pipeline_variants(both_registers=True, double_buffer=True)
    names = {(v.flavour, v.mapping) for v in vs}
    assert len(pipeline_variants()) == 4  # the others only when asked
    for suffix in list(OPTIONS.values())[2:]:
        for mapping in ("DSP", "LUT"):
            assert ("baseline" + suffix, mapping) in names and ("range" + suffix, mapping) in names
    for v in vs:
        assert v.cfg.input_register and v.group == "8x8 A4W4"
        assert len(v.seeds) == (3 if v.flavour.endswith("input reg") else 1)


def test_pipeline_report_pairs_and_throughput_come_from_the_entries():
    """Ratios are range / baseline of the same pipelining and mapping; GMAC/s is
    Fmax x utilisation x 64; the double-buffered column uses the placed
    double-buffered Fmax when there is one."""
    import copy
    import json
    from pathlib import Path

    from synth.fpga_pipeline import _config, _reference_entries, build, render
    from verif.utilisation import layer_shapes, utilisation

    path = Path(__file__).resolve().parent.parent / "synth" / "reports" / "fpga.json"
    ref = [e for e in _reference_entries(path) if "product" not in e["flavour"]]
    placed = []
    for e in ref:
        for suffix, extra, fmax in (
            (", input reg", {"input_register": True}, 100.0),
            (", input reg, double buffer", {"input_register": True, "double_buffer": True}, 80.0),
        ):
            f = copy.deepcopy(e)
            f.update(
                flavour=e["flavour"] + suffix,
                name=e["name"] + suffix,
                source="this run",
                fmax_mhz=fmax if e["flavour"] == "baseline" else fmax * 0.9,
            )
            f["config"].update(extra)
            placed.append(f)
    entries = ref + placed
    areas = {_config(e).key(): {"area_um2": 1.0, "ff": 1, "depth": 1} for e in entries}
    report = build(entries, areas, json.loads(path.read_text()))
    pairs = {(p["option"], p["mapping"]): p for p in report["pairs"]}
    assert pairs[("operand registers", "DSP")]["ratio_pct"] == 90.0
    assert pairs[("none", "DSP")]["ratio_pct"] == round(100 * 60.8 / 100.1, 1)
    rows = {(r["flavour"], r["mapping"]): (r, db) for r, db in report["throughput"]}
    row, db = rows[("baseline, input reg", "LUT")]
    assert db == 80.0
    digits = layer_shapes()[0]
    cfg = ArrayConfig(overq="none", input_register=True)
    u1 = utilisation(cfg, digits.vectors, digits.tiles(cfg), False)
    assert row["gmacs"][digits.name]["single"] == round(100.0 * u1 * 64 / 1000, 2)
    assert row["gmacs"][digits.name]["double"] == round(80.0 * 64 / 1000, 2)  # utilisation 1
    assert "| operand registers | DSP |" in render(report)


def test_update_keeps_the_stored_rows_byte_for_byte():
    """``--update`` rebuilds the report from stored rows (plus new runs): the stored
    rows alone give back the committed report exactly."""
    from synth.fpga import REPORT_DIR, stored_summary

    committed = json.loads((REPORT_DIR / "fpga.json").read_text())
    stored = {e["name"]: e for e in committed["variants"]}
    variants = [v for v in default_variants() if v.name in stored]
    assert len(variants) == len(stored)
    report = build_report([(v, stored_summary(stored[v.name])) for v in variants])
    assert json.dumps(report, indent=1) + "\n" == (REPORT_DIR / "fpga.json").read_text()
    assert render_markdown(report) == (REPORT_DIR / "fpga.md").read_text()
