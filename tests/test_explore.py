"""synth.explore: the Pareto front, the area model, the accuracy seams and the cache."""

import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from hw.params import ArrayConfig
from sw_ref import overq
from sw_ref.qnet import OverQAct
from synth.explore import cost, front, report
from synth.explore.accuracy import OrderedOverQAct, accuracy_key
from synth.explore.grid import Grid, Point
from synth.explore.run import Options, explore


def _row(label, area, fid, kl=0.0):
    return {"label": label, "area_um2": area, "fidelity": fid, "kl": kl}


# --- the front --------------------------------------------------------------------------

HAND = [
    _row("a", 10.0, 0.90),
    _row("b", 12.0, 0.85),  # larger and worse than a: dominated
    _row("c", 12.0, 0.95),
    _row("d", 15.0, 0.95, kl=0.1),  # same agreement as c, larger: dominated
    _row("e", 15.0, 0.97, kl=0.2),
    _row("f", 20.0, 0.97, kl=0.1),  # same agreement as e, lower KL: on the front
    _row("g", 25.0, 0.96),  # larger and worse than f: dominated
    _row("h", 9.0, 0.50),  # the smallest: always on the front
]


def test_front_of_hand_made_points():
    got = [r["label"] for r in front.pareto_front(HAND)]
    assert got == ["h", "a", "c", "e", "f"]
    # The definition, checked pairwise: nothing on the front is dominated, all else is.
    on = set(got)
    for r in HAND:
        dominated = any(front.dominates(q, r) for q in HAND if q is not r)
        assert dominated == (r["label"] not in on), r["label"]


def test_front_keeps_exact_ties_and_budget_picks_the_best_that_fits():
    rows = HAND + [_row("c2", 12.0, 0.95)]
    labels = [r["label"] for r in front.pareto_front(rows)]
    assert "c" in labels and "c2" in labels
    assert front.best_within(HAND, 14.0)["label"] == "c"
    assert front.best_within(HAND, 19.9)["label"] == "e"
    assert front.best_within(HAND, 30.0)["label"] == "f"
    assert front.best_within(HAND, 8.0) is None


# --- the area model ---------------------------------------------------------------------


@pytest.mark.parametrize("overq", ["none", "range", "range,precision"])
@pytest.mark.parametrize("rows", [2, 8, 32])
def test_row_widths_end_at_the_accumulator_and_grow(rows, overq):
    cfg = ArrayConfig(rows=rows, cols=rows, act_bits=4, weight_bits=5, overq=overq, cascade=1)
    widths = cost.row_widths(cfg)
    assert len(widths) == rows and widths[-1] == cfg.min_acc_bits
    assert widths == sorted(widths)
    assert sum(n for _, n in cost.array_parts(cfg) if _.kind in ("pe", "pe0")) == rows * rows


def test_normalized_pe_part_is_the_array_pe():
    """A part is built from a normalized config; its logic must be the array's PE."""
    from hw.emit import emit_leaves
    from hw.pe import ProcessingElement

    real = replace(
        ArrayConfig(
            rows=16,
            cols=16,
            act_bits=3,
            weight_bits=5,
            weight_format="apot",
            overq="range",
            cascade=4,
        ),
        acc_bits=12,
        allow_overflow=True,
    )
    part = cost._pe_cfg(real, 12)
    a = emit_leaves([("pe", ProcessingElement(real, row=3))])
    b = emit_leaves([("pe", ProcessingElement(part, row=1))])
    assert a == b


def test_delay_lines_are_their_flip_flop_count(tmp_path):
    """The skew and de-skew are priced as flip-flops x one delay bit: check it."""
    cfgs = [
        ArrayConfig(rows=5, cols=4, act_bits=3, weight_bits=3, overq=o) for o in ("none", "range")
    ]
    parts = [cost.Part("delay")]
    for c in cfgs:
        parts += [cost.Part("skew", c), cost.Part("deskew", c)]
    res = cost.synthesize_parts(parts, synth_cache=tmp_path / "s", index_dir=tmp_path / "i")
    bit = res[cost.Part("delay")]
    assert bit.flip_flops == 1 and bit.area == bit.sequential_area
    for c in cfgs:
        skew, deskew = res[cost.Part("skew", c)], res[cost.Part("deskew", c)]
        assert skew.flip_flops == cost.skew_flops(c) and deskew.flip_flops == cost.deskew_flops(c)
        assert skew.area == pytest.approx(cost.skew_flops(c) * bit.area)
        assert deskew.area == pytest.approx(cost.deskew_flops(c) * bit.area)


def test_parts_price_an_array_close_to_its_whole_synthesis(tmp_path):
    """Sum of parts vs the flattened array, at 4x4 (the report checks 8x8)."""
    from synth.batch import run_jobs
    from synth.designs import Job

    cfgs = [
        ArrayConfig(rows=4, cols=4, act_bits=3, weight_bits=3, overq=o) for o in ("none", "range")
    ]
    whole = run_jobs(
        [Job("array", c) for c in cfgs], workers=2, cache_dir=tmp_path / "s", progress=False
    )
    parts = cost.synthesize_parts(
        [p for c in cfgs for p, _ in cost.array_parts(c)],
        synth_cache=tmp_path / "s",
        index_dir=tmp_path / "i",
    )
    for c, (job, w) in zip(cfgs, whole.items()):
        priced = cost.price(c, parts)
        assert priced["area_um2"] == pytest.approx(w.area, rel=0.05), c.key()
    assert cost.price(cfgs[1], parts)["area_um2"] > cost.price(cfgs[0], parts)["area_um2"]


# --- accuracy seams ---------------------------------------------------------------------


def test_ordered_overq_is_overq_on_permuted_slots():
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.exponential(1.0, size=(50, 12)).astype(np.float32))
    cfg = ArrayConfig(rows=4, act_bits=3, overq="range", cascade=2)
    perm = rng.permutation(12)
    ident = OrderedOverQAct(0.2, cfg, np.arange(12))(x)
    assert torch.equal(ident, OverQAct(0.2, cfg)(x))
    got = OrderedOverQAct(0.2, cfg, perm)(x)
    enc = overq.encode(x[:, perm].numpy(), 0.2, cfg)
    want = overq.decode(enc.values, enc.states, 0.2, cfg)[:, np.argsort(perm)]
    assert np.allclose(got.numpy(), want)


def test_accuracy_key_ignores_rows_without_overq():
    assert accuracy_key(Point(8, 4, 4)) == accuracy_key(Point(32, 4, 4))
    assert accuracy_key(Point(8, 4, 4, overq="range", cascade=2)) != accuracy_key(
        Point(16, 4, 4, overq="range", cascade=2)
    )


def test_grid_points():
    g = Grid(
        rows=(8,),
        act_bits=(4,),
        int_weight_bits=(4,),
        apot_weight_bits=(5,),
        overq=("none", "range-c2"),
        order=(False, True),
        budgets=(4,),
    )
    labels = [p.label for p in g.points()]
    assert labels == sorted(set(labels), key=labels.index)  # no duplicates
    assert "R8 A4 W4" in labels and "R8 A4 W5 APoT range c=2 +order" in labels
    assert not any("+order" in lab and "range" not in lab for lab in labels)
    with pytest.raises(ValueError):
        Point(8, 4, 4, order=True)


# --- end to end -------------------------------------------------------------------------


@pytest.mark.slow
def test_small_grid_end_to_end_then_cached(tmp_path):
    caches = {
        "acc_cache": tmp_path / "acc",
        "synth_cache": tmp_path / "synth",
        "index_dir": tmp_path / "parts",
    }
    opts = Options(net="digits", n_eval=64, n_calib=64, workers=1, progress=False, **caches)
    grid = Grid(
        rows=(4,),
        act_bits=(4,),
        int_weight_bits=(4,),
        apot_weight_bits=(),
        overq=("none", "range-c2"),
        order=(False,),
        budgets=(),
    )
    first = explore(grid, opts)
    assert first["stats"]["points"] == 2
    assert first["stats"]["accuracy_computed"] == 2 and first["stats"]["parts_synthesized"] > 0
    rows = {r["label"]: r for r in first["rows"]}
    plain, oq = rows["R4 A4 W4"], rows["R4 A4 W4 range c=2"]
    assert oq["area_um2"] > plain["area_um2"] > 0
    for r in rows.values():
        assert 0.0 <= r["fidelity"] <= 1.0 and r["kl"] >= 0.0
        assert set(r["sqnr_db"]) == {"conv1", "conv2", "fc"}
    assert "coverage" in oq and "coverage" not in plain

    data = report.build(
        first, grid.describe(), None, {"act_method": "aciq_laplace", "weight_method": "mse"}, "test"
    )
    written = report.write(data, tmp_path / "out")
    assert [p.name for p in written] == ["explore.md", "explore.json", "explore.png"]
    saved = json.loads((tmp_path / "out" / "explore.json").read_text())
    assert saved["fronts"]["4"] == [r["label"] for r in front.pareto_front(first["rows"])]
    assert "## Pareto fronts" in (tmp_path / "out" / "explore.md").read_text()

    second = explore(grid, opts)  # everything from the caches
    assert second["stats"]["accuracy_computed"] == 0
    assert second["stats"]["parts_synthesized"] == 0
    assert second["rows"] == first["rows"]

    # One more OverQ choice: only its accuracy is new; its PE parts are shared.
    wider = replace(grid, overq=("none", "range-c2", "range-c1"))
    third = explore(wider, opts)
    assert third["stats"]["accuracy_computed"] == 1
    assert third["stats"]["parts_synthesized"] == 1  # the encoder part


def test_cli_rejects_bad_arguments(capsys):
    from synth.explore.cli import main

    assert main(["--net", "nope"]) == 2
    assert "unknown network" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--overq", "sideways"])


def test_minilm_workload_is_registered_without_loading_the_model():
    from synth.explore import nets

    wl = nets.get("minilm_l6", n_eval=16, n_calib=16)
    assert wl.evaluate is not None and wl.fidelity_name.startswith("mean cosine")
    assert wl.supports(Point(8, 4, 8)) and not wl.supports(Point(8, 4, 4, "apot"))
    assert wl.fingerprint == nets.get("minilm_l6", n_eval=16, n_calib=16).fingerprint
    assert wl.fingerprint != nets.get("minilm_l6", n_eval=32, n_calib=16).fingerprint


def test_each_network_has_its_own_report_name():
    from synth.explore.cli import report_stem

    assert report_stem("digits") == "explore"
    assert report_stem("efficientnet_lite0") == "explore_efficientnet_lite0"
    assert report_stem("minilm_l6") == "explore_minilm_l6"
    assert report_stem("minilm_l6", "mine") == "mine"


@pytest.mark.slow
def test_efficientnet_two_points_on_four_crops(tmp_path):
    """The EfficientNet-Lite0 workload: a point is the evaluation's EScheme, end to end.

    Four test and four calibration crops keep it to seconds; the numbers are checked
    against a direct ``Evaluator.run`` of the scheme the point stands for.
    """

    from sw_ref.effnet_eval import EScheme

    caches = {
        "acc_cache": tmp_path / "acc",
        "synth_cache": tmp_path / "synth",
        "index_dir": tmp_path / "parts",
    }
    opts = Options(
        net="efficientnet_lite0", n_eval=4, n_calib=4, workers=1, progress=False, **caches
    )
    grid = Grid(
        rows=(4,),
        act_bits=(6,),
        int_weight_bits=(8,),
        apot_weight_bits=(),
        overq=("none", "range-c2"),
        order=(True,),
        budgets=(),
    )
    first = explore(grid, opts)
    assert first["stats"]["points"] == 2 and first["stats"]["accuracy_computed"] == 2
    rows = {r["label"]: r for r in first["rows"]}
    plain, oq = rows["R4 A6 W8"], rows["R4 A6 W8 range c=2 +order"]
    wl = first["workload"]
    assert wl.name == "efficientnet_lite0" and first["settings"].act_method == "mse"
    for r in (plain, oq):
        assert 0.0 <= r["fidelity"] <= 1.0 and r["kl"] >= 0.0
        assert r["fidelity"] == r["agreement"]
        assert any(k.endswith("_project_conv") for k in r["sqnr_db"])
    assert "coverage" in oq and "coverage" not in plain
    assert 0.0 <= oq["coverage"] <= 1.0 and oq["outliers"] > 0
    assert oq["area_um2"] > plain["area_um2"] > 0

    # The point is exactly this scheme of the evaluation.
    from sw_ref.effnet_eval import Evaluator
    from sw_ref.nets import photos
    from sw_ref.nets.activations import efficientnet_lite0_acts

    ev = Evaluator(
        efficientnet_lite0_acts("calib", 4, progress=False),
        efficientnet_lite0_acts("test", 4, progress=False),
        photos.images("test", 4),
    )
    want = ev.run(
        EScheme(
            "x",
            "x",
            w_bits=8,
            w_method="mse",
            w_per_channel=True,
            a_bits=6,
            a_method="mse",
            overq="range",
            cascade=2,
            rows=4,
            order="channel",
        )
    )
    assert oq["agreement"] == pytest.approx(want["top1_agreement"])
    assert oq["kl"] == pytest.approx(want["kl"])
    assert oq["coverage"] == pytest.approx(want["coverage"])

    second = explore(grid, opts)
    assert second["stats"]["accuracy_computed"] == 0 and second["rows"] == first["rows"]
