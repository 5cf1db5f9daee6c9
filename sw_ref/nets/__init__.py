"""The networks that evaluation, co-simulation and exploration take by name.

``get(name)`` returns a network, ``names()`` (or ``NAMES``) the registered names.
Entries are import paths, so nothing heavy is imported (and no weights are read)
until a network is asked for: a caller that needs one network never pays for the
others' imports. To add a network, add one line to ``_ENTRIES``
("name": "module:function") and a module beside this file.

Direct entry points: ``sw_ref.nets.efficientnet_lite0()``, ``sw_ref.nets.digits()``,
``sw_ref.nets.minilm_l6()``.
"""

from __future__ import annotations

import importlib

__all__ = ["NAMES", "get", "names", "register", "digits", "efficientnet_lite0", "minilm_l6"]

_ENTRIES: dict[str, str] = {
    "digits": "sw_ref.nets.digits:digits",
    "efficientnet_lite0": "sw_ref.nets.efficientnet:efficientnet_lite0",
    "minilm_l6": "sw_ref.nets.minilm:minilm_l6",
}
NAMES = tuple(_ENTRIES)


def names() -> list[str]:
    """The registered network names, sorted."""
    return sorted(_ENTRIES)


def register(name: str, target: str) -> None:
    """Add (or replace) an entry ``name`` -> "module:function"."""
    global NAMES
    if ":" not in target:
        raise ValueError(f"target must be 'module:function', got {target!r}")
    _ENTRIES[name] = target
    NAMES = tuple(_ENTRIES)


def _resolve(name: str):
    if name not in _ENTRIES:
        raise ValueError(f"unknown network {name!r}; allowed: {', '.join(names())}")
    module, _, func = _ENTRIES[name].partition(":")
    return getattr(importlib.import_module(module), func)


def get(name: str, **options):
    """The network ``name`` (keyword options go to its loader)."""
    return _resolve(name)(**options)


def efficientnet_lite0(**options):
    """The pretrained ImageNet EfficientNet-Lite0, eval mode (see ``sw_ref.nets.efficientnet``)."""
    return get("efficientnet_lite0", **options)


def digits(**options):
    """The digits CNN, trained once and cached (see ``sw_ref.model``)."""
    return get("digits", **options)


def minilm_l6(**options):
    """all-MiniLM-L6-v2 sentence embeddings (``sw_ref.nets.minilm``)."""
    return get("minilm_l6", **options)
