"""A content-addressed cache for the FPGA flow (``synth/cache/fpga/``, gitignored).

A synthesis is keyed by the Verilog, the wrapper, the Yosys script and the tool
versions; a place-and-route by the hash of the netlist it reads, the nextpnr arguments
and the seed. So a changed generator reruns only what changed, and two variants whose
netlists come out identical (APoT with and without -nodsp: it has no multiplier) share
one place-and-route. Every entry is built in a private temporary directory and renamed
into place when complete, so parallel runs (pytest-xdist) never see half an entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

__all__ = ["DEFAULT_DIR", "digest", "file_digest", "cached"]

DEFAULT_DIR = Path(__file__).resolve().parent / "cache" / "fpga"
_RESULT = "result.json"


def digest(*parts) -> str:
    """A short stable hash of strings / JSON-able values."""
    h = hashlib.sha256()
    for part in parts:
        data = part if isinstance(part, bytes) else json.dumps(part, sort_keys=True).encode()
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()[:20]


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:20]


def cached(entry: Path, build: Callable[[Path], dict]) -> tuple[dict, Path]:
    """The result of ``entry`` (a directory), running ``build(tmpdir)`` if it is missing.

    ``build`` writes its files into the directory it is given and returns a JSON-able
    dict; the result and the files then live in ``entry``.
    """
    done = entry / _RESULT
    if done.exists():
        return json.loads(done.read_text()), entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=entry.name + ".tmp-", dir=entry.parent))
    try:
        result = build(tmp)
        (tmp / _RESULT).write_text(json.dumps(result, indent=1, sort_keys=True))
        try:
            os.rename(tmp, entry)
        except OSError:  # another process finished the same entry first
            if not done.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return json.loads(done.read_text()), entry
