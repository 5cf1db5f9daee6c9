"""The exploration's cost model: stored bits, memories, dataflow counts, energy, codecs.

Every count here is checked against a number worked out by hand in the comment
next to it; the codecs against ``sw_ref.overq.encode`` in simulation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from synth.explore import energy, formats, memory
from synth.explore.layers import Layer, network_layers


def test_bits_per_slot_of_each_format():
    def bps(fmt, b, r, oq="range", c=2):
        return formats.bits_per_slot(fmt, b, r, oq, c).bits_per_slot

    assert bps("plain", 5, 8, "none", 1) == 5
    assert bps("state2", 4, 16) == (16 * 4 + 15 * 2) / 16  # slot 0's state not stored
    assert bps("codes", 4, 16) == 8  # CB = 2b with range
    assert bps("codes", 4, 16, "range,precision") == 12  # CB = 3b with precision
    assert bps("flag1", 4, 8, "range", 1) == (8 * 4 + 7) / 8  # one state bit, slots 1..7
    # R16, c=2, range: count 1 bit + (row 4 bits + distance 1 bit) = 6 bits per 16 slots
    assert formats.header_bits(16, 1, 2, False) == 6
    assert bps("header1", 4, 16) == 4 + 6 / 16
    # R8, c=2, precision: count 2 bits + 2 x (row 3 bits + kind 2 bits) = 12
    assert formats.header_bits(8, 2, 2, True) == 12
    assert bps("header2", 4, 8, "range,precision") == 4 + 12 / 8
    with pytest.raises(ValueError):
        bps("flag1", 4, 8, "range", 2)  # cascade 2 has SHIFTED slots
    with pytest.raises(ValueError):
        bps("state2", 4, 8, "none", 1)
    assert formats.lossless("header4", 8) and not formats.lossless("header2", 8)
    assert formats.formats_for("range", 1) == ("codes", "state2", "flag1", "header1", "header2")


def test_header_loss_counts_events_per_tile():
    # Two tiles of 4: tile 0 has RANGE events at slots 1 and 3, tile 1 one PRECISION.
    states = np.array([[0, 2, 0, 2, 0, 0, 3, 0]])
    one = formats.header_loss(states, rows=4, events=1)
    assert one["tiles"] == 2 and one["events"] == 3 and one["range_events"] == 2
    assert one["range_kept"] == 1 and one["events_lost"] == 1 and one["tiles_over"] == 1
    assert formats.header_loss(states, rows=4, events=2)["range_kept_share"] == 1.0
    # K = 6 is zero-padded to two tiles of 4.
    assert formats.header_loss(states[:, :6], rows=4, events=1)["tiles"] == 2


def test_sram_energy_interpolates_horowitz_points():
    kib = 8 * 1024
    assert memory.sram_pj_per_bit(8 * kib) == pytest.approx(10 / 64)
    assert memory.sram_pj_per_bit(32 * kib) == pytest.approx(20 / 64)
    assert memory.sram_pj_per_bit(1024 * kib) == pytest.approx(100 / 64)
    # log-log between 8 KB and 32 KB: 16 KB is the geometric mean
    assert memory.sram_pj_per_bit(16 * kib) == pytest.approx(math.sqrt(10 * 20) / 64)


def test_accumulator_width_grows_with_k_tiles():
    # An 8-row A4W4 plain array: outputs in 8 * 15 * [-8, 7] = [-960, 840] (11 bits).
    rng = (-960, 840)
    assert memory.acc_bits_for(rng, 8, 8) == 11  # one K tile
    assert memory.acc_bits_for(rng, 9, 8) == 12  # two: [-1920, 1680]
    assert memory.acc_bits_for(rng, 40, 8) == 14  # five: [-4800, 4200]


def _two_layers():
    # a: 10 x 20 -> 12 (input OverQ-encoded), b: 10 x 12 -> 7 (input plain)
    return (
        Layer("a", "gemm", 10, 20, 12, 200, 120, "overq", 240),
        Layer("b", "gemm", 10, 12, 7, 120, 70, "act", 84),
    )


# R = 8, A4: a plain tile 32 bits, an OverQ tile (b + 2, slot 0 without state) 46 bits.
STORAGE = memory.Storage(8, 32, 46)


def test_count_layer_by_hand():
    a, _ = _two_layers()
    c = energy.count_layer(a, cols=8, storage=STORAGE, weight_bits=8, acc_bits=20, latency=15)
    # KT = 3, NT = 2: 6 passes of 10 cycles + latency 15
    assert c.cycles == 75
    assert STORAGE.x_bits(a) == 10 * 3 * 46  # M x KT stored tiles
    assert c.act_write_bits == 1380 and c.act_read_bits == 2 * 1380  # once per N tile
    # a word of 8 accumulators per vector: read on K tiles 2, 3, written on 1, 2
    assert c.acc_write_bits == c.acc_read_bits == 2 * 2 * 10 * 8 * 20
    assert c.weight_sram_bits == 2 * (3 * 2) * 64 * 8 and c.dram_bits == 240 * 8
    short = Layer("s", "gemm", 3, 8, 8, 24, 24, "act", 64)
    # M = 3 < R = 8: the 8 weight-shift cycles set the pace; one K tile: no acc traffic
    one = energy.count_layer(short, 8, STORAGE, 4, 12, 15)
    assert one.cycles == 8 + 15 and one.acc_read_bits == one.acc_write_bits == 0
    dw = Layer("dw", "depthwise", 16, 9, 4, 64, 64, "act", 36)
    d = energy.count_layer(dw, 8, STORAGE, 8, 0, 15)
    # 16 pixels of 4 channels, one (padded) tile of 8 slots each: 16 * 32 bits
    assert d.cycles == 0 and d.depthwise_macs == 16 * 9 * 4 and d.act_read_bits == 512


def test_memories_and_network_counts_by_hand():
    layers = _two_layers()
    rng = (-960, 840)
    mems = memory.size_memories(layers, 8, STORAGE, weight_bits=8, output_range=rng)
    # a: X 1380 + its output = b's X, 10 x 2 x 32 = 640; b: 640 + 70 x 8 (last, 8-bit)
    assert mems.activation_bits == max(1380 + 640, 640 + 560)
    assert mems.weight_bits == 2 * 8 * 8 * 8
    assert mems.accumulator_bits == 10 * 8 * 13  # a: 3 K tiles, [-2880, 2520]: 13 bits
    sized = energy.count_network(layers, 8, STORAGE, 8, rng, 15, mems)
    # DRAM: both layers' weights, the network input (200 slots at 46/8 bits), the output
    assert sized.dram_bits == (240 + 84) * 8 + 200 * 46 // 8 + 560
    assert sized.cycles == (3 * 2 * 10 + 15) + (2 * 1 * 10 + 15)
    # A budget of 400 bytes leaves 3200 - 1024 (the weight tile) = 2176 bits.
    budget = memory.size_memories(layers, 8, STORAGE, 8, rng, mode="budget", budget_bytes=400)
    assert budget.activation_bits == 2176
    spilled = energy.count_network(layers, 8, STORAGE, 8, rng, 15, budget)
    # a needs 1380 + 640 + 10*8*13 = 3060 bits > 2176: 2 chunks (weights twice, output
    # to DRAM); b needs 640 + 560 + 10*8*12 = 2160: fits, reads its input back.
    assert spilled.chunks == {"a": 2, "b": 1}
    assert spilled.dram_bits == (2 * 240 * 8 + 1150 + 640) + (84 * 8 + 640 + 560)
    e = energy.energy_pj(sized, mems, array_pj_per_cycle=1.0, mac_pj=0.5)
    assert e["dram"] == pytest.approx(sized.dram_bits * 20.0)  # 640 pJ / 32 bits
    assert e["array"] == pytest.approx(sized.cycles * 1.0)
    assert e["total"] == pytest.approx(sum(v for k, v in e.items() if k != "total"))


def test_mac_reference_is_horowitz():
    assert energy.mac_reference_pj(8) == pytest.approx(0.2 + 0.03)
    assert energy.mac_reference_pj(32) == pytest.approx(0.2 + 0.1)
    assert energy.mac_reference_pj(20) == pytest.approx(0.2 + 0.03 + 0.07 * 12 / 24)


def test_network_layers_shapes():
    digits = network_layers("digits")
    assert [(x.m, x.k, x.n) for x in digits] == [(64, 9, 16), (64, 144, 32), (1, 512, 10)]
    minilm = network_layers("minilm_l6")
    assert len(minilm) == 36 and sum(x.in_role == "overq" for x in minilm) == 6
    assert sum(x.macs for x in minilm) == 128 * 6 * (4 * 384 * 384 + 2 * 384 * 1536)


def _simulate(dut_in, dut_out, rows_in):
    from amaranth.hdl import Module
    from amaranth.sim import Simulator

    m = Module()
    m.submodules.pack, m.submodules.unpack = dut_in, dut_out
    first_out = list(dut_in.signature.members)[-1]
    first_in = list(dut_out.signature.members)[0]
    m.d.comb += getattr(dut_out, first_in).eq(getattr(dut_in, first_out))
    got = []

    async def bench(ctx):
        for row in rows_in:
            ctx.set(dut_in.states, sum(int(s) << (2 * i) for i, s in enumerate(row)))
            v = ctx.get(dut_out.states)
            got.append([(v >> (2 * i)) & 3 for i in range(len(row))])

    sim = Simulator(m)
    sim.add_testbench(bench)
    sim.run()
    return np.array(got)


def _drop_after(states: np.ndarray, events: int) -> np.ndarray:
    """Reference: a tile's events after the first ``events`` become NORMAL slots."""
    out = states.copy()
    for row in out:
        seen = 0
        for i in range(1, len(row)):
            if row[i] in (2, 3):
                seen += 1
                if seen > events:
                    row[i] = 0
                    j = i + 1
                    while row[i] == 0 and j < len(row) and row[j] == 1:
                        row[j] = 0
                        j += 1
    return out


@pytest.mark.parametrize(
    "overq,cascade,events",
    [("range", 2, 4), ("range,precision", 2, 4), ("range", 3, 1), ("range,precision", 2, 2)],
)
def test_header_codec_matches_encoder(overq, cascade, events):
    from hw.params import ArrayConfig
    from sw_ref import overq as oq
    from synth.explore.codec import HeaderPack, HeaderUnpack

    rows = 8
    cfg = ArrayConfig(rows=rows, cols=1, act_bits=2, weight_bits=2, overq=overq, cascade=cascade)
    rng = np.random.default_rng(1)
    x = rng.exponential(1.0, size=(120, rows)) * (rng.random((120, rows)) > 0.5)
    states = np.asarray(oq.encode(x, 0.6, cfg).states)
    assert (states == 2).sum() > 20
    precision = "precision" in overq
    got = _simulate(
        HeaderPack(rows, events, cascade, precision),
        HeaderUnpack(rows, events, cascade, precision),
        states,
    )
    np.testing.assert_array_equal(got, _drop_after(states, events))


def test_flag_codec_round_trip_and_is_free():
    from hw.params import ArrayConfig
    from sw_ref import overq as oq
    from synth.explore.codec import FlagPack, FlagUnpack, price_codecs

    cfg = ArrayConfig(rows=8, cols=1, act_bits=2, weight_bits=2, overq="range", cascade=1)
    rng = np.random.default_rng(2)
    x = rng.exponential(1.0, size=(60, 8)) * (rng.random((60, 8)) > 0.5)
    states = np.asarray(oq.encode(x, 0.6, cfg).states)
    assert set(np.unique(states)) <= {0, 2}
    np.testing.assert_array_equal(_simulate(FlagPack(8), FlagUnpack(8), states), states)
    area = price_codecs([(8, "flag1", 1, False)], cache_dir=None)[(8, "flag1", 1, False)]
    assert area == {"pack_um2": 0.0, "unpack_um2": 0.0}  # wiring only
