"""cocotb tests of the generated ``top`` (COCOTB_TEST_MODULES=verif.tb_top).

The configuration, seed and options come from the environment (``verif.config``);
run them through ``verif.runner`` / ``python -m verif.sim``. Every test derives its
stimulus from (seed, its own name), so any test replays alone.
"""

from __future__ import annotations

import json
import os
import time

import cocotb
import numpy as np

from verif.config import ENV_BENCH, ENV_CONFIG, ENV_LAYER, RunSettings, config_from_json
from verif.coverage import OUTPUT_MAX_BIN, OUTPUT_MIN_BIN
from verif.drivers import Cycle
from verif.env import TopEnv
from verif.stimulus import (
    Vectors,
    directed_port_vectors,
    directed_vectors,
    extreme_weight_codes,
    port_vectors,
    random_gaps,
    random_vectors,
    random_weight_codes,
    rng_for,
)

# An array with the encoder has no a_data / a_state ports: port-level vectors (any
# value, any state) cannot be driven, only codes.
_ENCODER = ENV_CONFIG in os.environ and config_from_json(os.environ[ENV_CONFIG]).encoder

# Stimulus sizes: enough to close coverage on every shape, small enough for CI.
RANDOM_TILES = 4
RANDOM_VECTORS_PER_TILE = 120
PORT_VECTORS_PER_TILE = 60


def _env(dut) -> TopEnv:
    return TopEnv(dut, RunSettings.from_env())


def _double_buffer() -> bool:
    """Whether the design under test has double-buffered weights (decides which tests run)."""
    return ENV_CONFIG in os.environ and config_from_json(os.environ[ENV_CONFIG]).double_buffer


def back_to_back_cycles(cfg, tiles: list, lengths: list[int], first: bool = True) -> list[Cycle]:
    """Tiles with no idle cycle between them: tile t+1's R rows are shifted into the
    shadow copy while tile t streams (in idle cycles after it if tile t is shorter than
    R), and the swap comes with tile t+1's first vector. ``first``: shift tile 0 in
    before the stream (else it must already be in the shadow copy)."""
    R = cfg.rows
    rows_of = lambda codes: [np.asarray(codes)[k] for k in reversed(range(R))]  # noqa: E731
    cycles = [Cycle(row=row) for row in rows_of(tiles[0])] if first else []
    index = 0
    for t, n in enumerate(lengths):
        rows = rows_of(tiles[t + 1]) if t + 1 < len(tiles) else []
        for i in range(n):
            cycles.append(Cycle(vec=index, row=rows.pop(0) if rows else None, swap=i == 0))
            index += 1
        cycles += [Cycle(row=row) for row in rows]
    return cycles


@cocotb.test()
@cocotb.parametrize(timing=["back_to_back", "random_gaps"])
async def test_random(dut, timing):
    """Constrained-random encoded vectors over several weight tiles (reloaded between
    tiles); must close every required coverage bin."""
    env = _env(dut)
    rng = rng_for(env.settings.seed, "random", timing)
    await env.start()
    for tile in range(RANDOM_TILES):
        await env.load(random_weight_codes(env.cfg, rng))
        vectors = random_vectors(env.cfg, rng, RANDOM_VECTORS_PER_TILE)
        gaps = None if timing == "back_to_back" else random_gaps(rng, len(vectors))
        await env.stream(vectors, gaps, [f"tile {tile}"] * len(vectors))
    await env.drain()
    env.finish(coverage=True)


@cocotb.test(skip=_ENCODER)
async def test_port_level(dut):
    """Any value and any state the configuration allows in every row, row 0 included
    (its PE must ignore the state)."""
    env = _env(dut)
    rng = rng_for(env.settings.seed, "port")
    await env.start()
    for tile in range(2):
        await env.load(random_weight_codes(env.cfg, rng))
        vectors = port_vectors(env.cfg, rng, PORT_VECTORS_PER_TILE)
        await env.stream(vectors, random_gaps(rng, len(vectors)), [f"tile {tile}"] * len(vectors))
    await env.drain()
    env.finish()


@cocotb.test()
async def test_directed(dut):
    """The directed OverQ cases (encoded) and port-level patterns against a random
    tile and the all-max / all-min tiles; y must reach both of its bounds (every row
    RANGE, or every row NORMAL in a baseline array) unless the accumulator wraps."""
    env = _env(dut)
    cfg = env.cfg
    rng = rng_for(env.settings.seed, "directed")
    names, vectors = directed_vectors(cfg)
    port_names, port = directed_port_vectors(cfg)
    await env.start()
    tiles = {
        "random": random_weight_codes(cfg, rng),
        "all max": extreme_weight_codes(cfg, "max"),
        "all min": extreme_weight_codes(cfg, "min"),
    }
    for tile_name, codes in tiles.items():
        await env.load(codes)
        await env.stream(vectors, None, [f"{n}; weights {tile_name}" for n in names])
        if not cfg.encoder:
            await env.stream(port, None, [f"{n}; weights {tile_name}" for n in port_names])
    await env.drain()
    # The bounds need RANGE in every row (any OverQ mode), which port-level vectors
    # give and an encoder never makes.
    bounds_reachable = (
        not cfg.encoder or not cfg.overq_enabled or cfg.rows == 1
    ) and not cfg.allow_overflow
    env.finish(
        coverage=True, also_required=(OUTPUT_MIN_BIN, OUTPUT_MAX_BIN) if bounds_reachable else ()
    )


@cocotb.test()
async def test_weight_reload(dut):
    """Tiles reloaded as soon as the previous tile's outputs are out, the next
    stream starting on the cycle after the last weight row."""
    env = _env(dut)
    rng = rng_for(env.settings.seed, "reload")
    await env.start()
    for tile in range(4):
        await env.load(random_weight_codes(env.cfg, rng))
        vectors = random_vectors(env.cfg, rng, env.cfg.latency + 3)
        await env.stream(vectors, None, [f"tile {tile}"] * len(vectors))
    await env.drain()
    env.finish()


@cocotb.test()
async def test_reset_midstream(dut):
    """Reset with vectors in flight: those not out yet never come out, vectors
    presented during reset are ignored, the weights are zero afterwards, and the
    array works again after a reload."""
    env = _env(dut)
    rng = rng_for(env.settings.seed, "reset")
    cfg = env.cfg
    await env.start()
    await env.load(random_weight_codes(cfg, rng))
    first = random_vectors(cfg, rng, cfg.latency + 2)
    indices = await env.stream(first, None, ["before reset"] * len(first))
    reset_edge = env.cycle() + 1  # rst is placed now and sampled at the next edge
    await env.reset(2)
    # Vector i (placed after edge p) comes out after edge p + L; it survives only if
    # that edge is before the reset edge.
    survivors = [i for i in indices if env.placed[i] + cfg.latency < reset_edge]
    dropped = env.scoreboard.drop_pending()
    arrived = sorted(i for i in indices if i in env.scoreboard.arrival)
    assert arrived == survivors, f"outputs after reset: got vectors {arrived}, expected {survivors}"
    assert len(dropped) == len(indices) - len(survivors)
    for i in (d.index for d in dropped):
        env.placed.pop(i)
    await env.idle(cfg.latency + 4)  # anything still coming out is reported as unexpected
    # Vectors presented while rst is high are not taken either (sent without
    # expectations: any output of theirs is reported as unexpected).
    dut.rst.value = 1
    await env.driver.send(random_vectors(cfg, rng, 3))
    await env.reset(1)
    await env.idle(cfg.latency + 4)
    zeros = random_vectors(cfg, rng, 8)
    await env.stream(zeros, None, ["after reset, weights zero"] * len(zeros))
    await env.load(random_weight_codes(cfg, rng))
    again = random_vectors(cfg, rng, cfg.latency + 2)
    await env.stream(again, random_gaps(rng, len(again)), ["after reset and reload"] * len(again))
    await env.drain()
    env.finish()


@cocotb.test()
async def test_throughput_latency(dut):
    """Back-to-back vectors: one output per cycle, each exactly L cycles after its input."""
    env = _env(dut)
    rng = rng_for(env.settings.seed, "throughput")
    cfg = env.cfg
    await env.start()
    await env.load(random_weight_codes(cfg, rng))
    n = 4 * cfg.latency + 16
    indices = await env.stream(random_vectors(cfg, rng, n), None, ["back to back"] * n)
    await env.drain()
    env.finish()
    out = [env.scoreboard.arrival[i] for i in indices]
    cycles = out[-1] - out[0] + 1
    lat = env.scoreboard.latencies(env.placed)
    dut._log.info(
        "throughput: %d vectors out in %d cycles = %.3f vectors/cycle; latency %s (L=%d)",
        n,
        cycles,
        n / cycles,
        sorted(set(lat.values())),
        cfg.latency,
    )
    assert cycles == n, f"{n} back-to-back vectors took {cycles} cycles to come out"
    assert set(lat.values()) == {cfg.latency}


@cocotb.test(skip=not _double_buffer())
async def test_db_back_to_back_tiles(dut):
    """Double buffering: tiles back to back, random lengths (some shorter than R, whose
    successor's rows are shifted in gaps); with tiles of >= R vectors the outputs
    come one per cycle from the first vector of the first tile to the last."""
    env = _env(dut)
    cfg = env.cfg
    rng = rng_for(env.settings.seed, "db_tiles")
    await env.start()
    tiles = [random_weight_codes(cfg, rng) for _ in range(6)]
    lengths = [int(n) for n in rng.integers(1, 2 * cfg.rows + 4, len(tiles))]
    vectors = random_vectors(cfg, rng, sum(lengths))
    labels = [f"tile {t}" for t, n in enumerate(lengths) for _ in range(n)]
    await env.play(back_to_back_cycles(cfg, tiles, lengths), vectors, labels)
    long = [cfg.rows + 3] * 4
    tiles = [random_weight_codes(cfg, rng) for _ in long]
    vectors = random_vectors(cfg, rng, sum(long))
    indices = await env.play(
        back_to_back_cycles(cfg, tiles, long), vectors, ["long tile"] * len(vectors)
    )
    await env.drain()
    env.finish(coverage=False)
    out = [env.scoreboard.arrival[i] for i in indices]
    assert out == list(range(out[0], out[0] + len(out))), "an idle cycle between back-to-back tiles"


@cocotb.test(skip=not _double_buffer())
async def test_db_random_shift_swap(dut):
    """Double buffering: every cycle a random mix of vector, shadow shift and swap:
    swaps with and without a vector, shifts in gaps and under vectors, a swap and a
    shift in the same cycle (the swap takes the shadow as it was before the shift)."""
    env = _env(dut)
    cfg = env.cfg
    rng = rng_for(env.settings.seed, "db_random")
    await env.start()
    n = 300
    vectors = port_vectors(cfg, rng, n) if cfg.overq_enabled else random_vectors(cfg, rng, n)
    cycles, sent = [], 0
    while sent < n:
        vec = sent if rng.random() < 0.7 else None
        sent += vec is not None
        row = random_weight_codes(cfg, rng)[0] if rng.random() < 0.5 else None
        cycles.append(Cycle(vec=vec, row=row, swap=bool(rng.random() < 0.1)))
    await env.play(cycles, vectors, ["random cycle mix"] * n)
    await env.drain()
    env.finish()


@cocotb.test(skip=not _double_buffer())
async def test_db_reset_mid_tile(dut):
    """Double buffering: reset in the middle of back-to-back tiles, with shifts and a
    swap in flight: vectors not out yet never come out, both copies are zero after it
    (a swap then gives zero weights), and back-to-back tiles work again."""
    env = _env(dut)
    cfg = env.cfg
    rng = rng_for(env.settings.seed, "db_reset")
    await env.start()
    lengths = [cfg.rows + 2, cfg.rows + 2, cfg.rows + 2]
    tiles = [random_weight_codes(cfg, rng) for _ in lengths]
    vectors = random_vectors(cfg, rng, sum(lengths))
    cut = lengths[0] + lengths[1] // 2  # reset half-way through tile 1, tile 2 half shifted
    cycles = back_to_back_cycles(cfg, tiles, lengths)
    stop = next(i for i, c in enumerate(cycles) if c.vec == cut)
    indices = await env.play(
        cycles[:stop], Vectors(vectors.values[:cut], vectors.states[:cut]), ["before reset"] * cut
    )
    reset_edge = env.cycle() + 1
    await env.reset(2)
    survivors = [i for i in indices if env.placed[i] + cfg.latency < reset_edge]
    dropped = env.scoreboard.drop_pending()
    arrived = sorted(i for i in indices if i in env.scoreboard.arrival)
    assert arrived == survivors, f"outputs after reset: got vectors {arrived}, expected {survivors}"
    for i in (d.index for d in dropped):
        env.placed.pop(i)
    await env.idle(cfg.latency + 4)
    zeros = random_vectors(cfg, rng, 6)
    await env.play(
        [Cycle(vec=i, swap=i == 0) for i in range(6)], zeros, ["after reset, swap of zeros"] * 6
    )
    again = random_vectors(cfg, rng, sum(lengths))
    await env.play(back_to_back_cycles(cfg, tiles, lengths), again, ["after reset"] * len(again))
    await env.drain()
    env.finish()


@cocotb.test(skip=ENV_LAYER not in os.environ)
async def test_layer(dut):
    """Real data: a CNN layer lowered to tiles (``verif.layer``), streamed tile by
    tile; every output is checked against the model and saved for the caller."""
    env = _env(dut)
    data = np.load(env.settings.layer)
    codes, values, states = data["codes"], data["values"], data["states"]
    received = []
    env.monitor.add_callback(lambda out: received.append(out.values))
    await env.start()
    tiles, n = codes.shape[0], values.shape[1]
    start = env.cycle()  # the first weight row is presented in this cycle
    if env.cfg.double_buffer:  # back to back, the next tile shifted while this one streams
        flat = Vectors(values.reshape(-1, env.cfg.rows), states.reshape(-1, env.cfg.rows))
        labels = [f"layer tile {t}" for t in range(tiles) for _ in range(n)]
        await env.play(back_to_back_cycles(env.cfg, list(codes), [n] * tiles), flat, labels)
    else:
        act_codes = data["act_codes"] if "act_codes" in data.files else None
        for t in range(tiles):
            await env.load(codes[t])
            tile_codes = None if act_codes is None else act_codes[t]
            vectors = Vectors(values[t], states[t], None, tile_codes)
            await env.stream(vectors, None, [f"layer tile {t}"] * n)
    await env.drain()
    env.finish()
    last = max(env.scoreboard.arrival.values())  # y_valid high after this edge
    timing = {"cycles": int(last - start + 1), "tiles": int(tiles), "vectors": int(n)}
    with open(os.path.join(env.settings.out_dir or ".", "layer_timing.json"), "w") as f:
        json.dump(timing, f)
    y = np.stack(received).reshape(codes.shape[0], values.shape[1], env.cfg.cols)
    out = os.path.join(env.settings.out_dir or ".", "layer_outputs.npz")
    np.savez(out, y=y)
    dut._log.info(
        "layer: %d tiles x %d vectors bit-exact; outputs in %s",
        codes.shape[0],
        values.shape[1],
        out,
    )


@cocotb.test(skip=ENV_BENCH not in os.environ)
async def test_bench_stream(dut):
    """Benchmark (``python -m verif.bench``): wall-clock rate of a long back-to-back
    stream through the whole environment (driver, monitor, model, scoreboard)."""
    env = _env(dut)
    rng = rng_for(env.settings.seed, "bench")
    n = env.settings.bench_vectors
    await env.start()
    await env.load(random_weight_codes(env.cfg, rng))
    vectors = random_vectors(env.cfg, rng, n)
    start_cycle, start = env.cycle(), time.perf_counter()
    await env.stream(vectors, None, ["bench"] * n)
    await env.drain()
    seconds = time.perf_counter() - start
    cycles = env.cycle() - start_cycle
    env.finish()
    out = os.path.join(env.settings.out_dir or ".", "bench.json")
    with open(out, "w") as f:
        json.dump({"vectors": n, "cycles": cycles, "seconds": seconds}, f)
    dut._log.info("bench: %d vectors in %.2f s = %.0f vectors/s", n, seconds, n / seconds)
