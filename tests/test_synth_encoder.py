"""The encoder area report (``synth.encoder``): its plan, its arithmetic, and that the
committed report is what its own data renders to."""

from __future__ import annotations

import json

from synth.encoder import REPORTS, SIZES, VARIANTS, plan, render

REPORT = REPORTS / "encoder.json"


def test_plan_has_every_part_once():
    parts = plan(whole=(8,))
    labels = [p.label for p in parts]
    assert len(labels) == len(set(labels))
    encoders = {
        (p.cfg.rows, p.cfg.overq_text, p.cfg.cascade)
        for p in parts
        if p.module == "encoder" and p.slots_per_stage is None
    }
    assert encoders == {(r, o, c) for r in SIZES for o, c in VARIANTS}
    assert all(p.cfg.encoder for p in parts if p.module == "encoder")
    assert {p.module for p in parts} == {
        "pe_row0",
        "pe",
        "skew",
        "deskew",
        "valid_pipe",
        "encoder",
        "top",
    }


def test_committed_report_renders_from_its_data_and_adds_up():
    data = json.loads(REPORT.read_text())
    assert render(data) == (REPORTS / "encoder.md").read_text()
    for row in data["arrays"]:
        expect = 100.0 * (row["array_with_encoder_um2"] / row["array_um2"] - 1.0)
        assert abs(row["added_pct"] - expect) < 0.01
        # the encoder replaces the skew: the array grows by less than the encoder's area
        assert row["array_with_encoder_um2"] - row["array_um2"] < row["encoder"]["area_um2"]
    targets = {r["array"]: r for r in data["arrays"] if r["target_pct"] is not None}
    assert set(targets) == {"8x8", "32x32"}


def test_encoder_part_synthesizes_alone(tmp_path):
    """A small encoder, as the report builds it (G given: emitted on its own)."""
    from hw.params import ArrayConfig
    from synth.encoder import Part
    from synth.flow import synthesize

    cfg = ArrayConfig(rows=4, cols=1, act_bits=2, overq="range", cascade=2, encoder=True)
    g1 = synthesize(Part(cfg, "encoder", 1).verilog(), "encoder", cache_dir=tmp_path)
    g2 = synthesize(Part(cfg, "encoder", 2).verilog(), "encoder", cache_dir=tmp_path)
    assert g1.area > 0 and g2.area > 0
    assert g2.flip_flops < g1.flip_flops  # deciding two slots per stage keeps fewer codes
