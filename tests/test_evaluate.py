"""sw_ref.evaluate and its pieces: the cached digits CNN, quantized runs, the CLI."""

import contextlib
import io
import json
from dataclasses import replace

import pytest
import torch

from sw_ref import evaluate, model
from sw_ref.evaluate import Scheme, make_context, run_scheme

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def ctx():
    return make_context(model.TrainSettings(), None, n_calib=128, rows=8, n_test=300)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    path = tmp_path_factory.mktemp("evaluate") / "out.json"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = evaluate.main(
            [
                "--quick",
                "--json",
                str(path),
                "--no-progress",
                "--test-images",
                "300",
                "--calib",
                "128",
            ]
        )
    assert rc == 0, err.getvalue()
    return json.loads(path.read_text()), out.getvalue()


def _rows(report, section, **match):
    return [
        r
        for r in report["results"]
        if r["section"] == section and all(r[k] == v for k, v in match.items())
    ]


# --- the model ----------------------------------------------------------------------


def test_cache_key_follows_the_settings():
    base = model.TrainSettings()
    assert base.key() == model.TrainSettings().key()
    assert replace(base, seed=1).key() != base.key()
    assert replace(base, epochs=5).key() != base.key()


def test_cached_model_loads_identically(tmp_path):
    settings = model.TrainSettings(epochs=1)
    first = model.load_model(settings, tmp_path)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == [f"digits_cnn_{settings.key()}.pt"]  # no temporary left behind
    second = model.load_model(settings, tmp_path)
    for k, v in first.state_dict().items():
        assert torch.equal(v, second.state_dict()[k])


def test_the_default_network_is_the_shipped_one_checked_by_its_sha256():
    meta = model.shipped_meta()
    assert model.weights_sha256(model.SHIPPED_WEIGHTS) == meta["sha256"]
    net = model.load_model()
    with __import__("numpy").load(model.SHIPPED_WEIGHTS) as shipped:
        for k, v in net.state_dict().items():
            assert torch.equal(v, torch.from_numpy(shipped[k])), k
    # its recorded accuracy is what it computes (argmax of 540 test images)
    assert abs(model.test_accuracy(net) - meta["test_accuracy"]) < 1e-6


def test_a_changed_weights_file_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "digits_cnn.npz"
    data = bytearray(model.SHIPPED_WEIGHTS.read_bytes())
    data[-100] ^= 1
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(model, "SHIPPED_WEIGHTS", bad)
    with pytest.raises(RuntimeError, match="SHA-256"):
        model.load_shipped()


def test_retraining_here_reaches_the_shipped_accuracy_within_a_point(tmp_path):
    """Training is available on any machine; its weights differ per CPU, its quality not."""
    retrained = model.load_model(model.TrainSettings(), tmp_path, retrain=True)
    assert abs(model.test_accuracy(retrained) - model.shipped_meta()["test_accuracy"]) <= 0.01


def test_committed_digits_report_is_of_the_shipped_network():
    """synth/reports/digits.md is written by its command on the shipped weights: its FP32
    row is the shipped network's test accuracy (a report from a retrained network fails)."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "synth" / "reports" / "digits.md").read_text()
    assert "Written by `python -m sw_ref.evaluate --report synth/reports/digits.md`" in text
    fp32 = next(line for line in text.splitlines() if line.startswith("| fp32 |"))
    assert fp32.split("|")[4].strip() == f"{100 * model.shipped_meta()['test_accuracy']:.2f}"


def test_digits_split_is_deterministic_and_scaled():
    a = model.load_digits_split()
    b = model.load_digits_split()
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    x_tr, y_tr, x_te, y_te = a
    assert x_tr.shape[1:] == (1, 8, 8) and len(x_te) == len(y_te) == 540
    assert float(x_tr.min()) == 0.0 and float(x_tr.max()) == 1.0


# --- quantized runs ---------------------------------------------------------------


def test_fp32_scheme_is_the_model(ctx):
    row = run_scheme(ctx, Scheme("fp32", "fp32"))
    assert row["accuracy"] > 0.9
    assert all(v == float("inf") for v in row["sqnr_db"].values())


def test_overq_without_modes_is_the_uniform_quantizer(ctx):
    """The encoder's baseline path and the elementwise quantizer must agree.

    On the same tensor they agree exactly. Through the network they cannot be held to
    bit equality: the vectorwise path computes a conv as im2col @ W (another float32
    summation order than conv2d), and a difference of one ulp in conv1's output can
    move a conv2 input across a rounding boundary. The digits model is trained on the
    machine, so which inputs sit near a boundary depends on it: seen, conv1 within
    1e-7 dB and fc within 1.1e-3 dB on one machine (equal within 1e-3 on another).
    0.01 dB is ten times that and far below any difference between methods here.
    """
    from hw.params import ArrayConfig
    from sw_ref import overq, quant

    for bits in (2, 4):
        x = torch.rand(64, 72) * 3
        step = 3.0 / (2**bits - 1) / 2
        cfg = ArrayConfig(rows=8, act_bits=bits, overq="none")
        enc = overq.encode(x.numpy(), step, cfg)
        dec = overq.decode(enc.values, enc.states, step, cfg)
        ref = quant.dequantize(quant.quantize(x, step, bits), step, dtype=torch.float64).numpy()
        assert (dec == ref).all(), "encoder baseline != uniform quantizer on one tensor"

        uniform = run_scheme(ctx, Scheme("t", "u", 8, bits, a_clip=0.5))
        encoded = run_scheme(ctx, Scheme("t", "e", 8, bits, a_clip=0.5, overq="none"))
        assert encoded["accuracy"] == uniform["accuracy"]
        first = next(iter(uniform["sqnr_db"]))
        assert encoded["sqnr_db"][first] == pytest.approx(uniform["sqnr_db"][first], abs=1e-6)
        for k, v in uniform["sqnr_db"].items():
            assert encoded["sqnr_db"][k] == pytest.approx(v, abs=1e-2)
        assert encoded["coverage"] == 0.0 and encoded["outliers"] > 0


def test_overq_range_recovers_outliers(ctx):
    base = run_scheme(ctx, Scheme("t", "b", 8, 3, a_clip=0.5, overq="none"))
    cov = []
    for c in (1, 2, 4):
        row = run_scheme(ctx, Scheme("t", "r", 8, 3, a_clip=0.5, overq="range", cascade=c))
        # conv1 sees the same input either way (later layers see OverQ's effect)
        assert row["outliers_per_layer"]["conv1"] == base["outliers_per_layer"]["conv1"] > 0
        cov.append(row["coverage"])
        # a handled outlier keeps its wide value instead of being clipped
        assert row["sqnr_db"]["conv1"] > base["sqnr_db"]["conv1"]
    assert 0 < cov[0] <= cov[1] <= cov[2] <= 1


def test_ocs_scheme_quantizes_the_split_weights(ctx):
    plain = run_scheme(ctx, Scheme("t", "p", 3, 8))
    split = run_scheme(ctx, Scheme("t", "s", 3, 8, ocs_ratio=0.05))
    # conv1 has one input channel: splitting it doubles its levels (Q(w1) + Q(w2))
    assert split["sqnr_db"]["conv1"] > plain["sqnr_db"]["conv1"] + 1.0


def test_activation_ocs_scheme_is_exact_before_quantization(ctx):
    row = run_scheme(ctx, Scheme("t", "a", None, None, act_ocs_ratio=0.1))
    ref = run_scheme(ctx, Scheme("fp32", "fp32"))
    assert row["accuracy"] == ref["accuracy"]
    # split channels are merged back before the SQNR: only float noise remains
    assert all(v > 100 for v in row["sqnr_db"].values())


# --- the command line -------------------------------------------------------------


def test_quick_run_is_sane(quick):
    report, table = quick
    fp32 = _rows(report, "fp32")[0]["accuracy"]
    assert fp32 > 0.9
    for row in _rows(report, "clip", w_bits=8, label="max"):
        assert row["accuracy"] >= fp32 - 0.01
        assert min(row["sqnr_db"].values()) > 35
    four = _rows(report, "clip", w_bits=4, label="max")[0]
    eight = _rows(report, "clip", w_bits=8, label="max")[0]
    assert all(four["sqnr_db"][k] < eight["sqnr_db"][k] for k in report["layers"])
    for row in _rows(report, "overq"):
        if row["overq"] is not None:
            assert 0.0 <= row["coverage"] <= 1.0
    assert report["layers"] == ["conv1", "conv2", "fc"]
    assert set(report["operating_points"]) >= {"clip", "ocs", "overq", "apot"}
    assert "| scheme | W | A | top-1 % |" in table
    assert table.count("### ") == len({r["section"] for r in report["results"]})


def test_help_shows_defaults(capsys):
    with pytest.raises(SystemExit) as exc:
        evaluate.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--quick" in text and "build/evaluate.json" in text and "default: 8" in text


def test_bad_option_is_a_one_line_error(capsys, tmp_path):
    assert evaluate.main(["--rows", "1", "--json", str(tmp_path / "x.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err
