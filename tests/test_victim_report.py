"""sw_ref.victim_report's table and verdicts on made-up rows (the networks run in
``make victim-report``, not here)."""

import numpy as np

from sw_ref import victim_report as vr


def _net(shift):
    rng = np.random.default_rng(0)
    base = rng.random(50)
    rows = {}
    for i, key in enumerate(vr.KEYS):
        cos = base + shift * i  # every row a little better than the one before
        rows[key] = {
            "label": key,
            "coverage": None if key in ("uniform", "A5") else 0.5,
            "fidelity": {"cosine": float(cos.mean())},
            "per_input": {"cosine": cos},
            "mse_step2": 1.0 / (i + 1),
        }
    return {"meta": {"layers": ["a", "b"]}, "rows": rows, "metrics": [("cosine", True)]}


def test_intervals_and_render():
    net = _net(0.01)
    vr._intervals(net)
    r = net["rows"]["victim channel"]["vs_range_natural"]["cosine"]
    assert r["low"] <= r["diff"] <= r["high"] and abs(r["diff"] - 0.03) < 1e-12
    c = net["comparisons"]["victim channel - olive"]["cosine"]
    assert vr._verdict(c, True) == "worse"  # olive comes after victim channel in KEYS
    text = vr.render({"meta": {"command": "x"}, "nets": {"toy": net}})
    assert "| victim channel | 0.500 |" in text
    assert "range 0.5000 -> victim 0.2500 step² (0.50x)" in text
    same = _net(0.0)
    vr._intervals(same)
    assert vr._verdict(same["comparisons"]["victim channel - A5"]["cosine"], True) == "within noise"
