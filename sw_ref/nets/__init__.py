"""Networks for the evaluations, co-simulation and exploration, behind one interface.

``get(name)`` builds a registered network (imported lazily: a caller that needs one
network never pays for the others' imports); each also has its own function.
"""

from __future__ import annotations

from importlib import import_module

__all__ = ["NAMES", "get", "minilm_l6"]

# name -> (module, function), imported on first use
_REGISTRY = {
    "minilm_l6": ("sw_ref.nets.minilm", "minilm_l6"),
}
NAMES = tuple(_REGISTRY)


def get(name: str, **kwargs):
    """The network registered as ``name`` (see ``NAMES``)."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown network {name!r}; known: {', '.join(NAMES)}")
    module, func = _REGISTRY[name]
    return getattr(import_module(module), func)(**kwargs)


def minilm_l6(**kwargs):
    """all-MiniLM-L6-v2 sentence embeddings (``sw_ref.nets.minilm``)."""
    return get("minilm_l6", **kwargs)
