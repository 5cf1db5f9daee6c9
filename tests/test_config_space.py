# amaranth: UnusedElaboratable=no
"""The whole configuration space, sampled: Verilog that Icarus compiles, or one line and exit 2.

Hypothesis draws command lines of ``python -m hw.generate`` in which every option is
absent, a good value, or a bad one (out of range, a keyword, an empty mode, text for a
number, an array too large to build, widths past 64 bits). Each must either print
Verilog that ``iverilog -g2005`` compiles (or the ``--info`` text) with exit 0, or print
exactly one ``error:`` line on stderr, nothing on stdout, and exit 2: never a traceback.

The run is derandomized (the same examples every time, no example database) and kept
short for ``make test``; ``CONFIG_SPACE_EXAMPLES=500 make test-config-space`` samples
more. The counts are printed at the end.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hw.generate import main
from hw.params import MAX_ACC_BITS, ArrayConfig

EXAMPLES = int(os.environ.get("CONFIG_SPACE_EXAMPLES", "60"))

# Per option: values the generator should accept, then values it must refuse.
# Sizes above 512 are refused whatever the other dimension (the skew alone is too big),
# so no accepted draw takes long to generate.
OPTIONS = {
    "--rows": ([1, 2, 3, 4, 5], [0, -1, 513, 100000, "2.5", "eight"]),
    "--cols": ([1, 2, 3, 4], [0, 513, 10**9]),
    "--act-bits": ([2, 3, 4, 8, 16], [1, 0, 17, 64]),
    "--weight-bits": ([2, 3, 4, 5, 7, 9, 16], [1, 17]),
    "--weight-format": (["int", "apot", "APoT"], ["float", ""]),
    "--apot-term-bits": ([1, 2, 3, 4, 8, 15], [0, -1, 16]),
    "--overq": (
        ["none", "range", "precision", "range,precision", "precision, range"],
        ["", ",", "range,", "turbo"],
    ),
    "--cascade": ([1, 2], [0, -1, 9]),
    "--acc-bits": ([12, 40, 64], [0, 1, 65, 67]),
    "--name": (["top", "arr", "x_1", "_t"], ["bufif0", "logic", "module", "9lives", "a-b", ""]),
}
FLAGS = [
    "--allow-overflow",
    "--product-register",
    "--input-register",
    "--double-buffer",
    "--encoder",
]
OUTPUTS = ([[], [], [], ["--info"], ["--info", "--json"]], [["--json"]])  # mostly Verilog


@st.composite
def command_lines(draw) -> list[str]:
    """0 (half the time), 1 or 2 options get a bad value; the others are absent or good.

    Good values still combine into refusals (an APoT split that does not divide the
    code, widths past 64 bits, a cascade longer than the array, an overflowing
    accumulator, an encoder without OverQ), so the sample covers both outcomes.
    The choices come from a Hypothesis-controlled ``random`` so that every option is
    equally likely to be the faulty one (Hypothesis' own draws favour some values).
    """
    r = draw(st.randoms(use_true_random=True))
    names = list(OPTIONS) + ["output"]
    bad = set(r.sample(names, r.choice([0, 0, 0, 1, 1, 2])))
    argv: list[str] = []
    for option, (good_values, bad_values) in OPTIONS.items():
        if option in bad:
            argv += [option, str(r.choice(bad_values))]
        elif r.random() < 0.5:
            argv += [option, str(r.choice(good_values))]
    argv += [flag for flag in FLAGS if r.random() < (0.1 if flag == "--encoder" else 0.3)]
    argv += r.choice(OUTPUTS[1] if "output" in bad else OUTPUTS[0])
    return argv


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as stop:  # argparse's own exit (--help is never drawn)
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def _compiles(text: str, workdir: Path) -> str:
    """Icarus' complaints about ``text`` ('' when it compiles cleanly)."""
    path = workdir / "design.v"
    path.write_text(text)
    done = subprocess.run(
        ["iverilog", "-g2005", "-o", os.devnull, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    return "" if done.returncode == 0 else (done.stdout + done.stderr or "failed")


def test_every_configuration_builds_or_is_refused_in_one_line():
    tally: Counter = Counter()
    reasons: Counter = Counter()
    start = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)

        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            print_blob=True,
        )
        @given(command_lines())
        def check(argv):
            tally["tried"] += 1
            code, out, err = _run(argv)
            shown = "python -m hw.generate " + " ".join(
                repr(a) if not a or " " in a else a for a in argv
            )
            if code == 2:
                assert out == "", shown
                assert err.startswith("error: ") and err.count("\n") == 1 and err.endswith("\n"), (
                    shown,
                    err,
                )
                assert "Traceback" not in err, shown
                tally["refused"] += 1
                reasons[" ".join(err.split()[1:3])] += 1
                return
            assert code == 0 and err == "", (shown, code, err)
            if "--info" in argv:
                if "--json" in argv:
                    info = json.loads(out)
                    assert 2 <= info["acc_bits"] <= MAX_ACC_BITS, shown
                else:
                    assert out.startswith("module "), shown
                tally["info"] += 1
                return
            assert out.startswith("// overq:"), shown
            assert _compiles(out, workdir) == "", shown
            tally["compiled"] += 1

        check()
    elapsed = time.monotonic() - start
    assert tally["tried"] >= EXAMPLES
    # the sample is not degenerate: it reaches the generator and the checks alike
    assert tally["compiled"] + tally["info"] >= EXAMPLES // 5, tally
    assert tally["compiled"] >= EXAMPLES // 10, tally
    assert tally["refused"] >= EXAMPLES // 5, tally
    summary = (
        f"config space: {tally['tried']} command lines in {elapsed:.0f} s: "
        f"{tally['compiled']} compiled by Icarus, {tally['info']} --info, "
        f"{tally['refused']} refused in one line ({', '.join(f'{k}: {n}' for k, n in reasons.most_common())})"
    )
    print(summary)
    report = os.environ.get("CONFIG_SPACE_REPORT")
    if report:
        Path(report).write_text(summary + "\n")


# --- the Python API: every field, any type -----------------------------------------

FIELD_VALUES = {
    "rows": st.one_of(st.integers(-2, 600), st.sampled_from([10**6, 2.5, "8", None, True])),
    "cols": st.one_of(st.integers(-2, 600), st.sampled_from([10**6, 4.0, None])),
    "act_bits": st.one_of(st.integers(-1, 70), st.sampled_from([4.0, "4", None])),
    "weight_bits": st.one_of(st.integers(-1, 70), st.sampled_from([4.5, None])),
    "weight_format": st.sampled_from(["int", "apot", " APOT ", "float", "", None, 3]),
    "apot_term_bits": st.one_of(st.integers(-3, 20), st.sampled_from([2.0, None])),
    "overq": st.one_of(
        st.sampled_from(["none", "range", "precision", "range,precision", "", ",", "x", None, 5]),
        st.sets(st.sampled_from(["range", "precision", "", "RANGE", "turbo"]), max_size=3),
    ),
    "cascade": st.one_of(st.none(), st.integers(-1, 600), st.just(1.5)),
    "acc_bits": st.one_of(st.none(), st.integers(-1, 130), st.just("16")),
    "allow_overflow": st.sampled_from([False, True, 1, "yes"]),
    "product_register": st.sampled_from([False, True, 0, None]),
    "input_register": st.sampled_from([False, True, "no"]),
    "double_buffer": st.sampled_from([False, True, 1]),
    "encoder": st.sampled_from([False, True, 1]),
}


@settings(max_examples=400, derandomize=True, database=None, deadline=None)
@given(st.fixed_dictionaries({}, optional=FIELD_VALUES))
def test_array_config_accepts_only_what_can_be_built(kwargs):
    """Any field of any type: a config whose every width and size is in bounds, or a
    one-line ValueError."""
    try:
        cfg = ArrayConfig(**kwargs)
    except ValueError as exc:  # the one exception type the generator turns into exit 2
        assert str(exc) and "\n" not in str(exc), kwargs
        return
    assert 2 <= cfg.acc_width <= MAX_ACC_BITS
    assert cfg.product_bits <= cfg.min_acc_bits <= MAX_ACC_BITS
    assert cfg.build_units <= 1 << 17
    cfg.describe(), cfg.key()  # everything presentable
