"""cocotb tests of the layer engine (COCOTB_TEST_MODULES=verif.tb_engine).

Drivers are cocotbext-axi's AXI4-Stream source and sink (0.1.28 runs on cocotb 2.1):
one source per input port, a sink on m_axis_y, each with a random pause generator,
so every port sees random tvalid gaps and random tready. Commands are random layers
(M, K, N drawn up to the limits, so K and N are rarely multiples of R and C), checked
bit for bit against ``sw_ref.engine.run``. The configuration and the knobs come from
the environment (``verif.engine_sim``); a mismatch prints the replay command.
"""

from __future__ import annotations

import json
import logging
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from hw.engine import beats as fmt
from hw.params import ENGINE_ERRORS, ArrayConfig, EngineConfig
from sw_ref import engine

ENV_ENGINE = "OVERQ_ENGINE"  # JSON: {"array": {...}, "max_m": ..., "commands": ..., ...}


def _settings() -> dict:
    return json.loads(os.environ[ENV_ENGINE])


def _config(settings: dict) -> EngineConfig:
    array = ArrayConfig(**settings["array"])
    return EngineConfig(array, settings["max_m"], settings["max_k"], settings["max_n"])


def _to_bytes(beats, bits: int) -> bytes:
    return b"".join(int(b).to_bytes(bits // 8, "little") for b in beats)


def _from_bytes(data: bytes, bits: int) -> list[int]:
    n = bits // 8
    return [int.from_bytes(data[i : i + n], "little") for i in range(0, len(data), n)]


def _pauses(rng: random.Random, prob: float):
    while True:
        yield rng.random() < prob


class EngineEnv:
    """The DUT's four streams, a clock, and the reset; nothing global."""

    def __init__(self, dut, cfg: EngineConfig, rng: random.Random, pause: float):
        self.dut, self.cfg, self.rng = dut, cfg, rng
        self.src = {
            name: AxiStreamSource(
                AxiStreamBus.from_prefix(dut, name), dut.clk, dut.rst, reset_active_level=True
            )
            for name in ("s_axis_cmd", "s_axis_w", "s_axis_x")
        }
        self.sink = AxiStreamSink(
            AxiStreamBus.from_prefix(dut, "m_axis_y"), dut.clk, dut.rst, reset_active_level=True
        )
        for port in list(self.src.values()) + [self.sink]:
            port.set_pause_generator(_pauses(rng, pause))
            port.log.setLevel(logging.WARNING)  # no line per frame
        self.cycle = 0

    async def start(self):
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns").start())
        cocotb.start_soon(self._count())
        await self.reset()

    async def _count(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def reset(self, cycles: int = 2):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def send(self, cmd: dict, data: bool = True):
        cfg = self.cfg
        beats = fmt.command_beats(
            *cmd["x"].shape,
            cmd["w"].shape[1],
            cmd["bias"],
            cmd["mult"],
            cmd["shift"],
            cmd["code_max"],
        )
        await self.src["s_axis_cmd"].send(
            AxiStreamFrame(_to_bytes([b for b, _ in beats], cfg.cmd_bits))
        )
        if data:
            await self.src["s_axis_w"].send(
                AxiStreamFrame(_to_bytes(fmt.weight_beats(cmd["w"], cfg), cfg.w_bits))
            )
            await self.src["s_axis_x"].send(
                AxiStreamFrame(_to_bytes(fmt.x_beats(cmd["x"], cfg), cfg.x_bits))
            )

    async def receive(self, cmd: dict) -> np.ndarray:
        m, n = cmd["x"].shape[0], cmd["w"].shape[1]
        counts = fmt.beat_counts(m, cmd["x"].shape[1], n, self.cfg)
        # a lost or extra beat must fail, not hang: 20x the beats of the command, at
        # least 2000 cycles, then the test fails with a timeout
        limit = 10 * 20 * max(2000, counts["x"] + counts["w"] + counts["y"] + n)
        frame = await with_timeout(self.sink.recv(), limit, "ns")
        beats = _from_bytes(bytes(frame.tdata), self.cfg.y_bits)
        assert len(beats) == fmt.beat_counts(m, cmd["x"].shape[1], n, self.cfg)["y"], len(beats)
        return fmt.y_from_beats(beats, m, n, cmd["bias"] is None, self.cfg)

    async def idle(self):
        while int(self.dut.status_busy.value):
            await RisingEdge(self.dut.clk)


def random_command(rng: np.random.Generator, cfg: EngineConfig, raw: bool) -> dict:
    a = cfg.array
    m = int(rng.integers(1, cfg.max_m + 1))
    k = int(rng.integers(1, cfg.max_k + 1))
    n = int(rng.integers(1, cfg.max_n + 1))
    x = rng.integers(0, 1 << a.code_bits, size=(m, k))
    x[rng.random((m, k)) < 0.4] = 0
    if a.weight_format == "apot":
        w = rng.integers(0, 1 << a.weight_bits, size=(k, n))
    else:
        w = rng.integers(a.weight_min, a.weight_max + 1, size=(k, n))
    cmd = {"x": x, "w": w, "bias": None, "mult": None, "shift": None, "code_max": None}
    if not raw:
        # Scale most columns so that their codes spread over 0..code_max (rounding and
        # both clamps matter there); a few keep wholly random parameters.
        code_max = int(rng.integers(1, 1 << a.code_bits))
        bias = rng.integers(-(1 << 12), 1 << 12, size=n)
        span = np.abs(engine.accumulate(x, w, cfg) + bias).max(axis=0) + 1
        shift = rng.integers(1, 30, size=n)
        mult = np.clip(
            np.round(code_max * 2.0**shift / span * rng.uniform(0.5, 2, size=n)), 0, (1 << 16) - 1
        ).astype(np.int64)
        wild = rng.random(n) < 0.2
        shift[wild] = rng.integers(0, 48, size=int(wild.sum()))
        mult[wild] = rng.integers(0, 1 << 16, size=int(wild.sum()))
        cmd |= {"bias": bias, "mult": mult, "shift": shift, "code_max": code_max}
    return cmd


def expected(cmd: dict, cfg: EngineConfig) -> np.ndarray:
    return engine.run(
        cmd["x"], cmd["w"], cmd["bias"], cmd["mult"], cmd["shift"], cmd["code_max"], cfg
    )


def _check(got, want, what: str, settings: dict):
    if not np.array_equal(got, want):
        wrong = np.argwhere(got != want)
        bad = tuple(int(i) for i in wrong[0])
        raise AssertionError(
            f"{what}: y{bad} = {got[bad]}, sw_ref.engine says {want[bad]} "
            f"({len(wrong)} of {got.size} outputs differ, rows "
            f"{sorted(set(int(i) for i in wrong[:, 0]))}); replay: {settings['replay']}"
        )


@cocotb.test()
async def layer_throughput(dut):
    """One given layer (``settings["layer"]`` = [M, K, N]), no pauses: cycles from the
    header beat to the last output beat and the utilisation, written to layer.json."""
    settings = _settings()
    if not settings.get("layer"):
        return
    cfg = _config(settings)
    m, k, n = settings["layer"]
    rng = np.random.default_rng(settings["seed"])
    a = cfg.array
    x = rng.integers(0, 1 << a.code_bits, size=(m, k))
    x[rng.random((m, k)) < 0.5] = 0
    w = rng.integers(a.weight_min, a.weight_max + 1, size=(k, n))
    cmd = {
        "x": x,
        "w": w,
        "bias": rng.integers(-100, 100, size=n),
        "mult": np.full(n, 1 << 10),
        "shift": np.full(n, 16),
        "code_max": 15,
    }
    env = EngineEnv(dut, cfg, random.Random(0), 0.0)
    await env.start()
    start = env.cycle
    await env.send(cmd)
    got = await env.receive(cmd)
    cycles = env.cycle - start
    _check(got, expected(cmd, cfg), f"layer {m}x{k}x{n}", settings)
    result = {
        "m": m,
        "k": k,
        "n": n,
        "cycles": cycles,
        "utilisation": m * k * n / (a.rows * a.cols * cycles),
    }
    with open(os.path.join(settings["out_dir"], "layer.json"), "w") as f:
        json.dump(result, f)


@cocotb.test()
async def network(dut):
    """``settings["network"]`` images of the digits CNN, every matrix layer on the engine,
    chained through the host's im2col / max-pool (verif.engine_network); every layer's
    output is checked against the sw_ref integer path; cycles per layer to network.json."""
    from verif import engine_network as net

    settings = _settings()
    cfg = _config(settings)
    env = EngineEnv(dut, cfg, random.Random(0), 0.0)
    await env.start()
    layers = net.digits_layers(cfg)
    images, labels = net.digits_inputs(settings["network"])
    reference = net.run(layers, images, net.model_command(cfg))
    stats, y = [], None
    for index, layer in enumerate(layers):
        x = net.host_input(index, y, images.shape[0], images)
        parts, cycles = [], 0
        for start in range(0, x.shape[0], cfg.max_m):
            cmd = {
                "x": x[start : start + cfg.max_m],
                "w": layer.w,
                "bias": layer.bias,
                "mult": layer.mult,
                "shift": layer.shift,
                "code_max": layer.code_max,
            }
            if layer.mult is None:
                cmd["bias"] = None
            begin = env.cycle
            await env.send(cmd)
            out = await env.receive(cmd)
            cycles += env.cycle - begin
            parts.append(out + layer.bias if layer.mult is None else out)
        y = np.concatenate(parts)
        _check(y, reference[index], f"layer {layer.name}", settings)
        m, k = x.shape
        n = layer.w.shape[1]
        stats.append(
            {
                "layer": layer.name,
                "m": int(m),
                "k": int(k),
                "n": int(n),
                "commands": -(-m // cfg.max_m),
                "cycles": cycles,
                "utilisation": m * k * n / (cfg.array.rows * cfg.array.cols * cycles),
            }
        )
    accuracy = float((y.argmax(axis=1) == labels).mean())
    with open(os.path.join(settings["out_dir"], "network.json"), "w") as f:
        json.dump({"layers": stats, "accuracy": accuracy, "images": int(images.shape[0])}, f)


@cocotb.test()
async def random_commands(dut):
    """Random layers, raw and requantized, random gaps and stalls on every port."""
    settings, cfg, rng, env = await _start(dut, 0)
    for index in range(settings["commands"]):
        cmd = random_command(rng, cfg, raw=index % 3 == 0)
        start = env.cycle
        await env.send(cmd)
        got = await env.receive(cmd)
        await env.idle()
        assert int(dut.status_error.value) == 0
        _check(
            got, expected(cmd, cfg), f"command {index} {cmd['x'].shape}x{cmd['w'].shape}", settings
        )
        dut._log.info(
            "command %d: M,K,N = %d,%d,%d in %d cycles",
            index,
            *cmd["x"].shape,
            cmd["w"].shape[1],
            env.cycle - start,
        )


async def _start(dut, offset: int):
    """Settings, configuration, a numpy generator and a started environment, all seeded
    from the run's seed + ``offset`` (each test replays alone)."""
    settings = _settings()
    cfg = _config(settings)
    rng = np.random.default_rng(settings["seed"] + offset)
    env = EngineEnv(dut, cfg, random.Random(settings["seed"] + offset), settings["pause"])
    await env.start()
    return settings, cfg, rng, env


@cocotb.test()
async def refused_command_then_good_one(dut):
    """A bad header (N above max_n) sets bad_n, takes no data beat, and the next runs."""
    settings, cfg, rng, env = await _start(dut, 1)
    bad = random_command(rng, cfg, raw=True)
    bad["w"] = np.zeros((bad["x"].shape[1], cfg.max_n + 1), dtype=np.int64)
    await env.send(bad, data=False)
    for _ in range(20):
        await RisingEdge(dut.clk)
        assert not int(dut.s_axis_w_tready.value) and not int(dut.s_axis_x_tready.value)
    await env.idle()
    assert int(dut.status_error.value) == 1 << ENGINE_ERRORS.index("bad_n")
    good = random_command(rng, cfg, raw=False)
    await env.send(good)
    _check(await env.receive(good), expected(good, cfg), "after a refused command", settings)
    assert int(dut.status_error.value) == 0


@cocotb.test()
async def reset_mid_command(dut):
    """A reset in the middle of a command loses it; the next command is exact."""
    settings, cfg, rng, env = await _start(dut, 2)
    cut = random_command(rng, cfg, raw=False)
    m, k = cfg.max_m, cfg.max_k
    cut["x"] = rng.integers(0, 1 << cfg.array.code_bits, size=(m, k))
    cut["w"] = np.resize(cut["w"], (k, cut["w"].shape[1]))
    await env.send(cut)
    await ClockCycles(dut.clk, int(rng.integers(5, 40)))
    assert int(dut.status_busy.value), "the command to cut ended already"
    await env.reset()
    for port in list(env.src.values()):
        port.clear()
    env.sink.clear()
    assert not int(dut.status_busy.value)
    good = random_command(rng, cfg, raw=True)
    await env.send(good)
    _check(await env.receive(good), expected(good, cfg), "after a reset", settings)
