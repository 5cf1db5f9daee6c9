"""``python -m verif.engine_sim``: the layer engine's cocotb tests on Icarus or Verilator.

Generates the engine's Verilog for the configuration, builds it once per
configuration and simulator (``build/verif/<sim>/<key>``), and runs
``verif.tb_engine``: random commands (random M, K, N up to the limits), a refused
command, a reset mid-command; every result bit-exact against ``sw_ref.engine``.
``make test`` runs a small engine on both simulators; ``make sim ENGINE=1`` the long
randomized runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from hw.params import ArrayConfig, EngineConfig
from verif import runner
from verif.tb_engine import ENV_ENGINE

__all__ = ["run_engine", "main"]


def run_engine(
    cfg: EngineConfig,
    sim: str,
    *,
    seed: int = 1,
    commands: int = 4,
    pause: float = 0.3,
    build_dir: Path | None = None,
    waves: bool = False,
    testcase=None,
    layer=None,
    rtl_text: str | None = None,
    network: int = 0,
):
    from cocotb_tools.runner import get_runner

    from hw.engine.emit import engine_cli_arguments, generate_engine_verilog

    runner.apply_simulator_env()
    build_dir = Path(build_dir or runner.default_build_dir(cfg.array, sim, "engine-" + cfg.key()))
    build_dir = build_dir.resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    source = runner.generated_rtl(cfg.array, build_dir, rtl_text or generate_engine_verilog(cfg))
    r = get_runner(sim)
    runner._build(r, sim, source, build_dir, waves, False)
    array = {f.name: getattr(cfg.array, f.name) for f in dataclasses.fields(cfg.array)}
    array["overq"] = cfg.array.overq_text
    array["double_buffer"] = False  # EngineConfig sets it again
    replay = (
        f"python -m verif.engine_sim --sim {sim} --seed {seed} --commands {commands} "
        f"--pause {pause} {engine_cli_arguments(cfg)}".replace(" --engine", "")
    )
    settings = {
        "array": array,
        "max_m": cfg.max_m,
        "max_k": cfg.max_k,
        "max_n": cfg.max_n,
        "seed": seed,
        "commands": commands,
        "pause": pause,
        "replay": replay,
        "layer": list(layer) if layer else None,
        "out_dir": str(build_dir),
        "network": network,
    }
    if layer:
        testcase = "layer_throughput"
    elif network:
        testcase = "network"
    elif testcase is None:
        testcase = ["random_commands", "refused_command_then_good_one", "reset_mid_command"]
    results_xml = build_dir / "results.xml"
    results_xml.unlink(missing_ok=True)
    env = {
        ENV_ENGINE: json.dumps(settings),
        "PYTHONPATH": os.pathsep.join(
            filter(None, [str(runner.REPO), os.environ.get("PYTHONPATH")])
        ),
    }
    try:
        r.test(
            test_module="verif.tb_engine",
            hdl_toplevel="top",
            hdl_toplevel_lang="verilog",
            testcase=testcase,
            seed=seed,
            extra_env=env,
            build_dir=build_dir,
            test_dir=build_dir,
            results_xml=str(results_xml),
            waves=waves,
            timescale=runner.TIMESCALE,
        )
    except SystemExit:
        pass
    passed, failed, skipped = runner._parse_results(results_xml)
    return runner.RunResult(sim, build_dir, results_xml, passed, failed, skipped)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m verif.engine_sim",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--sim", default="icarus", choices=runner.SIMULATORS)
    p.add_argument("--rows", type=int, default=4)
    p.add_argument("--cols", type=int, default=4)
    p.add_argument("--act-bits", type=int, default=4)
    p.add_argument("--weight-bits", type=int, default=4)
    p.add_argument("--weight-format", default="int")
    p.add_argument("--apot-term-bits", type=int, default=2)
    p.add_argument("--overq", default="range")
    p.add_argument("--cascade", type=int, default=None)
    p.add_argument("--max-m", type=int, default=12)
    p.add_argument("--max-k", type=int, default=30)
    p.add_argument("--max-n", type=int, default=14)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--commands", type=int, default=20, help="random commands")
    p.add_argument(
        "--pause", type=float, default=0.3, help="probability of a pause cycle on every port"
    )
    p.add_argument("--waves", action="store_true")
    p.add_argument(
        "--network",
        type=int,
        default=0,
        metavar="IMAGES",
        help="instead of the random tests: this many digits images through the "
        "digits CNN, every matrix layer on the engine (verif.engine_network)",
    )
    p.add_argument(
        "--layer",
        metavar="M,K,N",
        help="instead of the random tests: one M x K x N command with no pauses; "
        "prints its cycles and utilisation (the limits grow to fit it)",
    )
    args = p.parse_args(argv)
    layer = None
    if args.layer:
        layer = [int(v) for v in args.layer.split(",")]
        args.max_m, args.max_k, args.max_n = (
            max(a, b) for a, b in zip((args.max_m, args.max_k, args.max_n), layer)
        )
    if args.network:
        from verif.engine_network import NETWORK_CONFIG

        args.max_m, args.max_k, args.max_n = (
            NETWORK_CONFIG.max_m,
            NETWORK_CONFIG.max_k,
            NETWORK_CONFIG.max_n,
        )
    try:
        cfg = EngineConfig(
            ArrayConfig(
                rows=args.rows,
                cols=args.cols,
                act_bits=args.act_bits,
                weight_bits=args.weight_bits,
                weight_format=args.weight_format,
                apot_term_bits=args.apot_term_bits,
                overq=args.overq,
                cascade=args.cascade,
            ),
            max_m=args.max_m,
            max_k=args.max_k,
            max_n=args.max_n,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import time

    began = time.time()
    result = run_engine(
        cfg,
        args.sim,
        seed=args.seed,
        commands=args.commands,
        pause=args.pause,
        waves=args.waves,
        layer=layer,
        network=args.network,
    )
    print(result.summary())
    if args.network and result.ok:
        report = json.loads((result.build_dir / "network.json").read_text())
        print(
            f"digits CNN, {report['images']} images, every layer bit-exact against the "
            f"sw_ref integer path; accuracy {report['accuracy']:.1%} "
            f"({time.time() - began:.0f} s with the build)"
        )
        print("| layer | M | K | N | commands | cycles | utilisation |")
        print("|---|--:|--:|--:|--:|--:|--:|")
        for row in report["layers"]:
            print(
                f"| {row['layer']} | {row['m']} | {row['k']} | {row['n']} | {row['commands']} "
                f"| {row['cycles']} | {row['utilisation']:.2%} |"
            )
    if layer and result.ok:
        numbers = json.loads((result.build_dir / "layer.json").read_text())
        print(
            f"layer M={layer[0]} K={layer[1]} N={layer[2]} on {cfg.array.rows}x"
            f"{cfg.array.cols}: {numbers['cycles']} cycles, utilisation "
            f"{numbers['utilisation']:.2%} ({time.time() - began:.0f} s with the build)"
        )
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
