"""The shared configuration: validation messages and the derived numbers."""

import itertools
import re

import pytest

from hw.params import (
    MAX_ACC_BITS,
    MAX_BUILD_UNITS,
    ArrayConfig,
    apot_official_exponents,
    apot_paper_exponents,
)


def test_defaults_match_the_documented_interface():
    cfg = ArrayConfig()
    assert (cfg.rows, cfg.cols, cfg.act_bits, cfg.weight_bits) == (8, 8, 4, 4)
    assert cfg.weight_format == "int"
    assert cfg.overq == frozenset({"range"})
    assert cfg.cascade == 2
    assert cfg.latency == cfg.rows + cfg.cols - 1
    assert cfg.product_register is False


@pytest.mark.parametrize("rows, cols", [(1, 1), (3, 5), (8, 8), (16, 4)])
def test_latency_is_r_plus_c_minus_1_or_r_plus_c_with_the_product_register(rows, cols):
    cascade = 1 if rows < 3 else 2
    assert ArrayConfig(rows=rows, cols=cols, cascade=cascade).latency == rows + cols - 1
    piped = ArrayConfig(rows=rows, cols=cols, cascade=cascade, product_register=True)
    assert piped.latency == rows + cols


def test_product_register_appears_in_describe_and_key_only_when_on():
    off, on = ArrayConfig(), ArrayConfig(product_register=True)
    assert "product_register" not in off.describe()
    assert on.describe()["product_register"] is True
    assert on.describe()["latency"] == off.describe()["latency"] + 1
    assert list(on.describe())[-1] == "latency"
    assert off.key() == "r8c8_a4w4int_oq-range_c2_acc15"
    assert on.key() == off.key() + "_preg"
    with pytest.raises(ValueError, match="product_register must be True or False"):
        ArrayConfig(product_register=1)


@pytest.mark.parametrize(
    "text, modes",
    [
        ("none", set()),
        ("range", {"range"}),
        ("precision,range", {"range", "precision"}),
        (["range", "precision"], {"range", "precision"}),
        (None, set()),
    ],
)
def test_overq_modes_parse_from_text_or_sets(text, modes):
    assert ArrayConfig(overq=text).overq == frozenset(modes)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(rows=0), "rows and cols must be >= 1"),
        (dict(cols=0), "rows and cols must be >= 1"),
        (dict(act_bits=1), "act_bits must be in 2.."),
        (dict(weight_bits=1), "weight_bits must be in 2.."),
        (dict(cascade=0), "cascade must be in 1..7"),
        (dict(rows=4, cascade=4), "cascade must be in 1..3"),
        (dict(overq="range,turbo"), "unknown OverQ mode(s) turbo"),
        (dict(weight_format="float"), "weight_format must be int or apot"),
        (dict(weight_format="apot", weight_bits=8, apot_term_bits=2), "multiple of"),
        (dict(acc_bits=8), "can overflow"),
        (dict(rows=2.5), "rows must be an integer"),
        (dict(overq=""), "overq has an empty mode name in ''"),
        (dict(overq=","), "overq has an empty mode name in ','"),
        (dict(overq="range,"), "overq has an empty mode name"),
        (dict(apot_term_bits=-1), "apot_term_bits must be in 1..15, got -1"),
        (dict(apot_term_bits=16, weight_format="apot"), "apot_term_bits must be in 1..15"),
        (dict(allow_overflow="yes"), "allow_overflow must be True or False"),
        (dict(acc_bits=65), "acc_bits must be in 2..64, got 65"),
        (dict(act_bits=16, weight_bits=16, overq="range,precision"), "need 67-bit outputs"),
        (
            dict(weight_format="apot", weight_bits=9, apot_term_bits=8),
            "reach 2^254 (256-bit values, 266-bit outputs); every width must fit in 2..64 bits",
        ),
        (dict(weight_format="apot", weight_bits=16, apot_term_bits=15), "apot_term_bits 1, 3 fit"),
        (dict(rows=100000), "800000 PEs and 4999950028 skew registers (estimated"),
        (dict(rows=257, cols=257), "<= 131072 (256x256 fits)"),
    ],
)
def test_invalid_configurations_give_one_line_errors(kwargs, fragment):
    with pytest.raises(ValueError) as err:
        ArrayConfig(**kwargs)
    message = str(err.value)
    assert fragment in message
    assert "\n" not in message


def test_acc_bits_and_the_derived_width_share_one_bound():
    """64-bit outputs are accepted whether derived or asked for; 65 bits never are."""
    at_limit = dict(rows=64, cols=1, act_bits=14, weight_bits=16, overq="precision")
    assert ArrayConfig(**at_limit).acc_width == MAX_ACC_BITS == 64
    assert ArrayConfig(**at_limit, acc_bits=64).acc_width == 64
    with pytest.raises(ValueError, match="need 65-bit outputs"):
        ArrayConfig(**{**at_limit, "rows": 128})
    with pytest.raises(ValueError, match="need 65-bit outputs"):  # wrapping does not help
        ArrayConfig(**{**at_limit, "rows": 128}, acc_bits=64, allow_overflow=True)
    with pytest.raises(ValueError, match="acc_bits must be in 2..64"):
        ArrayConfig(**at_limit, acc_bits=65)


def test_every_apot_width_the_message_offers_is_accepted():
    with pytest.raises(ValueError) as err:
        ArrayConfig(weight_format="apot", weight_bits=9, apot_term_bits=8)
    offered = [
        int(k) for k in re.search(r"apot_term_bits ([\d, ]+) fit", str(err.value))[1].split(",")
    ]
    assert offered == [1, 2, 4]
    for k in offered:
        assert ArrayConfig(weight_format="apot", weight_bits=9, apot_term_bits=k).acc_width <= 64


def test_the_largest_array_is_accepted_and_one_more_row_is_not():
    assert ArrayConfig(rows=256, cols=256).build_units == 130816 <= MAX_BUILD_UNITS
    with pytest.raises(ValueError, match="a 257x256 array is larger than the generator builds"):
        ArrayConfig(rows=257, cols=256)


def test_one_row_array_allows_cascade_one():
    assert ArrayConfig(rows=1, cascade=1).cascade == 1


def test_narrow_accumulator_needs_explicit_permission():
    cfg = ArrayConfig(acc_bits=8, allow_overflow=True)
    assert cfg.acc_width == 8 < cfg.min_acc_bits


def brute_force_output_range(cfg):
    """Enumerate every per-row extreme (value, weight, state) to bound y exactly."""
    states = range(4) if cfg.overq_enabled else [0]
    lo = hi = 0
    for row in range(cfg.rows):
        row_states = [0] if row == 0 else states
        products = [
            v * w * (1 << cfg.state_shifts[s] if cfg.overq_enabled else 1)
            for v, w, s in itertools.product(
                (0, cfg.act_max), (cfg.weight_min, cfg.weight_max), row_states
            )
        ]
        lo += min(products)
        hi += max(products)
    return lo, hi


@pytest.mark.parametrize("overq", ["none", "range", "precision", "range,precision"])
@pytest.mark.parametrize(
    "rows, bits, fmt", [(1, 2, "int"), (8, 4, "int"), (5, 8, "int"), (8, 4, "apot"), (3, 5, "apot")]
)
def test_accumulator_width_is_minimal_and_overflow_free(overq, rows, bits, fmt):
    cfg = ArrayConfig(
        rows=rows, act_bits=bits, weight_bits=bits, weight_format=fmt, overq=overq, cascade=1
    )
    lo, hi = brute_force_output_range(cfg)
    assert cfg.output_range == (lo, hi)
    width = cfg.min_acc_bits
    assert -(1 << (width - 1)) <= lo and hi < (1 << (width - 1))
    narrower = width - 1
    assert lo < -(1 << (narrower - 1)) or hi >= (1 << (narrower - 1))


def test_range_overwrite_needs_act_bits_more_accumulator_bits():
    base = ArrayConfig(overq="none")
    overq = ArrayConfig(overq="range")
    assert overq.min_acc_bits - base.min_acc_bits == base.act_bits


def test_state_shifts_follow_the_scale_table():
    b = 4
    assert ArrayConfig(act_bits=b, overq="range").state_shifts == (0, 0, b, 0)
    assert ArrayConfig(act_bits=b, overq="range,precision").state_shifts == (b, b, 2 * b, 0)


def test_paper_apot_example_levels():
    exps = apot_paper_exponents(2, 2)
    assert exps == ((5, 3, 1), (4, 2, 0))
    terms = [[0] + [1 << e for e in t] for t in exps]
    levels = sorted({a + b for a in terms[0] for b in terms[1]})
    assert levels == [0, 1, 2, 3, 4, 6, 8, 9, 12, 16, 18, 24, 32, 33, 36, 48]


def test_official_uneven_apot_tables_have_the_right_code_widths():
    cfg = ArrayConfig(weight_format="apot", weight_bits=4)
    assert cfg.apot_term_widths == (2, 1)
    assert sum(cfg.apot_term_widths) == cfg.weight_bits - 1
    cfg6 = ArrayConfig(weight_format="apot", weight_bits=6)
    assert cfg6.apot_term_widths == (2, 2, 1)
    with pytest.raises(ValueError, match="allowed"):
        apot_official_exponents(7)


def test_key_names_every_field_that_changes_the_hardware():
    keys = {
        ArrayConfig(**kw).key()
        for kw in [
            {},
            dict(rows=4),
            dict(cols=4),
            dict(act_bits=5),
            dict(weight_bits=5),
            dict(weight_format="apot"),
            dict(overq="none"),
            dict(cascade=3),
            dict(acc_bits=32),
            dict(product_register=True),
        ]
    }
    assert len(keys) == 10


def test_default_cascade_shortens_for_short_arrays():
    assert ArrayConfig(rows=1).cascade == 1
    assert ArrayConfig(rows=2).cascade == 1
    assert ArrayConfig(rows=3).cascade == 2
    assert ArrayConfig(rows=16).cascade == 2


def test_input_register_and_double_buffer_appear_only_when_on():
    off = ArrayConfig()
    on = ArrayConfig(input_register=True, double_buffer=True)
    for name in ("input_register", "double_buffer"):
        assert name not in off.describe() and on.describe()[name] is True
        with pytest.raises(ValueError, match=f"{name} must be True or False"):
            ArrayConfig(**{name: 1})
    assert on.latency == off.latency + 1 and on.pe_latency == 2
    assert off.key() + "_ireg_dbuf" == on.key()
    assert ArrayConfig(double_buffer=True).latency == off.latency


def test_double_buffer_with_the_encoder_is_refused_in_one_line():
    with pytest.raises(ValueError, match="double_buffer with encoder is not supported"):
        ArrayConfig(double_buffer=True, encoder=True)
