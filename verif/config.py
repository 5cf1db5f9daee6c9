"""Carry an ``ArrayConfig`` and a run's knobs from the runner into the simulator.

The testbench runs inside the simulator process, so the configuration travels
through the environment (``OVERQ_CONFIG``, JSON of the dataclass fields), never
through globals. The replay command of a run is built here too, so that the
scoreboard and the CLI print the same one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
from dataclasses import dataclass

from hw.params import STRUCTURE_SWITCHES, ArrayConfig

__all__ = ["RunSettings", "config_to_json", "config_from_json", "replay_command"]

ENV_CONFIG = "OVERQ_CONFIG"
ENV_SEED = "OVERQ_SEED"
ENV_SIM = "OVERQ_SIM"
ENV_RTL = "OVERQ_RTL"
ENV_LAYER = "OVERQ_LAYER_NPZ"
ENV_OUT = "OVERQ_OUT_DIR"
ENV_BENCH = "OVERQ_BENCH_VECTORS"


def config_to_json(cfg: ArrayConfig) -> str:
    """Every field of ``cfg`` (not the derived numbers), as JSON."""
    fields = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    fields["overq"] = cfg.overq_text
    return json.dumps(fields, sort_keys=True)


def config_from_json(text: str) -> ArrayConfig:
    return ArrayConfig(**json.loads(text))


@dataclass(frozen=True)
class RunSettings:
    """What one simulator run needs to know besides the DUT handle.

    ``rtl`` is the user's Verilog file (None: generated); ``layer`` a .npz of
    real-data tiles to stream (None: skip the layer test); ``out_dir`` where the
    testbench may write results (the layer's outputs, the bench timing);
    ``bench_vectors`` > 0 enables the streaming benchmark with that many vectors.
    """

    cfg: ArrayConfig
    seed: int
    sim: str
    rtl: str | None = None
    layer: str | None = None
    out_dir: str | None = None
    bench_vectors: int = 0

    def to_env(self) -> dict[str, str]:
        env = {
            ENV_CONFIG: config_to_json(self.cfg),
            ENV_SEED: str(self.seed),
            ENV_SIM: self.sim,
        }
        if self.rtl:
            env[ENV_RTL] = self.rtl
        if self.layer:
            env[ENV_LAYER] = self.layer
        if self.out_dir:
            env[ENV_OUT] = self.out_dir
        if self.bench_vectors:
            env[ENV_BENCH] = str(self.bench_vectors)
        return env

    @classmethod
    def from_env(cls, environ=None) -> "RunSettings":
        environ = os.environ if environ is None else environ
        if ENV_CONFIG not in environ:
            raise RuntimeError(
                f"{ENV_CONFIG} is not set: run the testbench through verif.runner "
                "or `python -m verif.sim`"
            )
        return cls(
            cfg=config_from_json(environ[ENV_CONFIG]),
            seed=int(environ.get(ENV_SEED, "1")),
            sim=environ.get(ENV_SIM, "icarus"),
            rtl=environ.get(ENV_RTL) or None,
            layer=environ.get(ENV_LAYER) or None,
            out_dir=environ.get(ENV_OUT) or None,
            bench_vectors=int(environ.get(ENV_BENCH, "0")),
        )

    def replay_command(self) -> str:
        return replay_command(self.cfg, self.seed, self.sim, self.rtl)


def replay_command(cfg: ArrayConfig, seed: int, sim: str, rtl: str | None = None) -> str:
    """One line that reruns the same stimulus on the same design: ``make sim ...``."""
    parts = [
        "make sim",
        f"SIM={sim}",
        f"ROWS={cfg.rows}",
        f"COLS={cfg.cols}",
        f"ACT_BITS={cfg.act_bits}",
        f"WEIGHT_BITS={cfg.weight_bits}",
        f"WEIGHT_FORMAT={cfg.weight_format}",
        f"OVERQ={cfg.overq_text}",
        f"CASCADE={cfg.cascade}",
    ]
    if cfg.acc_bits is not None:
        parts.append(f"ACC_BITS={cfg.acc_bits}")
    parts += [f"{var}=1" for field, _, _, var in STRUCTURE_SWITCHES if getattr(cfg, field)]
    parts.append(f"SEED={seed}")
    if rtl:
        parts.append(f"RTL={shlex.quote(str(rtl))}")
    # Fields the Makefile has no variable for: say so rather than print a wrong line.
    extra = []
    if cfg.apot_term_bits != ArrayConfig.apot_term_bits:
        extra.append(f"apot_term_bits={cfg.apot_term_bits}")
    if cfg.allow_overflow:
        extra.append("allow_overflow=True")
    if extra:
        parts.append("  # not make variables: " + ", ".join(extra))
    return " ".join(parts)
