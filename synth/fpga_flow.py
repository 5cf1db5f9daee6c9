"""One variant through the ECP5 flow: generate, synthesize, place and route (cached).

``synth_variant`` and ``pnr_seed`` are the two cached steps; ``run_flow`` is the whole
thing for one configuration, for tests and one-off use. ``synth.fpga`` schedules the
steps of many variants on a worker pool.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
from pathlib import Path

from hw.params import ArrayConfig
from synth import fpga_cache, fpga_tools
from synth.fpga_wrapper import parse_ports, wrapper_verilog

__all__ = ["synth_variant", "cached_synth", "pnr_seed", "pnr_cached", "summarize", "run_flow"]


def _generate(cfg: ArrayConfig) -> str:
    from hw.generate import generate_verilog  # imported late: amaranth is slow to load

    return generate_verilog(cfg, name="top")


def _logic_text(verilog: str) -> str:
    """The Verilog without comments and with whitespace collapsed: what the cache keys on,
    so that a changed header comment does not rerun every synthesis."""
    text = re.sub(r"/\*.*?\*/|//[^\n]*", " ", verilog, flags=re.S)
    return " ".join(text.split())


def _synth_entry(cfg: ArrayConfig, nodsp: bool, cache_dir: Path, verilog: str) -> Path:
    key = fpga_cache.digest(
        _logic_text(verilog),
        wrapper_verilog(parse_ports(verilog)),
        fpga_tools.yosys_script(nodsp),
        fpga_tools.tool_versions(),
    )
    return cache_dir / "synth" / f"{cfg.key()}_{'lut' if nodsp else 'dsp'}_{key}"


def synth_variant(
    cfg: ArrayConfig,
    nodsp: bool,
    cache_dir: Path = fpga_cache.DEFAULT_DIR,
    verilog: str | None = None,
) -> tuple[dict, Path]:
    """Yosys result of ``cfg`` (or of the given ``verilog``) and its cache directory."""
    verilog = _generate(cfg) if verilog is None else verilog

    def build(tmp: Path) -> dict:
        result = fpga_tools.synthesize(verilog, tmp, nodsp)
        return {
            "top": result.top_cells,
            "wrapper": result.wrapper_cells,
            "cpu_s": round(result.cpu_s, 2),
            "netlist_digest": fpga_cache.file_digest(result.netlist),
        }

    return fpga_cache.cached(_synth_entry(cfg, nodsp, cache_dir, verilog), build)


def cached_synth(
    cfg: ArrayConfig, nodsp: bool, cache_dir: Path = fpga_cache.DEFAULT_DIR
) -> dict | None:
    """The cached Yosys result of ``cfg``, or None if it was never synthesized."""
    done = _synth_entry(cfg, nodsp, cache_dir, _generate(cfg)) / "result.json"
    return json.loads(done.read_text()) if done.exists() else None


def pnr_cached(netlist_digest: str, seed: int, cache_dir: Path = fpga_cache.DEFAULT_DIR) -> bool:
    """Whether the place-and-route of this netlist and seed is in the cache."""
    return (_pnr_entry(netlist_digest, seed, cache_dir) / "result.json").exists()


def _pnr_entry(netlist_digest: str, seed: int, cache_dir: Path) -> Path:
    key = fpga_cache.digest(
        netlist_digest, fpga_tools.PART_ARGS, fpga_tools.TARGET_MHZ,
        fpga_tools.tool_versions(), seed,
    )  # fmt: skip
    return cache_dir / "pnr" / f"{netlist_digest}_s{seed}_{key}"


def pnr_seed(
    synth_dir: Path, netlist_digest: str, seed: int, cache_dir: Path = fpga_cache.DEFAULT_DIR
) -> dict:
    """nextpnr result for one seed of a synthesized netlist; failures are recorded.

    The cache keeps nextpnr's own report; it is parsed again on every call, so the
    numbers always come from the tool's file.
    """

    def build(tmp: Path) -> dict:
        netlist = tmp / "netlist.json"
        try:
            os.link(synth_dir / "netlist.json", netlist)
        except OSError:
            shutil.copyfile(synth_dir / "netlist.json", netlist)
        try:
            return {"seed": seed, "cpu_s": fpga_tools.place_and_route(netlist, seed)["cpu_s"]}
        except fpga_tools.ToolError as err:
            return {"seed": seed, "error": str(err)}
        finally:
            netlist.unlink()

    result, entry = fpga_cache.cached(_pnr_entry(netlist_digest, seed, cache_dir), build)
    if "error" in result:
        return result
    report = json.loads((entry / fpga_tools.report_name(seed)).read_text())
    return {**result, **fpga_tools.parse_nextpnr_report(report)}


def summarize(synth: dict, runs: list[dict]) -> dict:
    """One variant's numbers: Yosys cells of ``top``, placed counts and the median Fmax.

    The placed counts come from the run whose Fmax is the median (they do not depend on
    the seed in practice, but that keeps every figure from one real run).
    """
    ok = [r for r in runs if "error" not in r]
    out = {
        "top": synth["top"], "wrapper": synth["wrapper"], "seeds": [r["seed"] for r in runs],
        "netlist_digest": synth.get("netlist_digest"),
        "cpu_s": {"yosys": synth["cpu_s"],
                  "nextpnr": round(sum(r.get("cpu_s", 0.0) for r in runs), 1)},
    }  # fmt: skip
    if not ok:
        out["error"] = runs[0]["error"] if runs else "not placed"
        return out
    fmaxes = [r["fmax_mhz"] for r in ok]
    median = statistics.median_low(fmaxes)
    chosen = next(r for r in ok if r["fmax_mhz"] == median)
    out.update(
        fmax_mhz=round(median, 2),
        fmax_per_seed={str(r["seed"]): round(r["fmax_mhz"], 2) for r in ok},
        placed={k: chosen[k] for k in ("lut4", "ff", "dsp", "io")},
        critical_path=chosen.get("critical_path"),
    )
    return out


def run_flow(
    cfg: ArrayConfig,
    nodsp: bool = False,
    seeds=(1,),
    cache_dir: Path = fpga_cache.DEFAULT_DIR,
    verilog: str | None = None,
) -> dict:
    """The whole flow for one configuration, sequentially: the summary of ``summarize``."""
    synth, synth_dir = synth_variant(cfg, nodsp, cache_dir, verilog)
    runs = [pnr_seed(synth_dir, synth["netlist_digest"], s, cache_dir) for s in seeds]
    return summarize(synth, runs)
