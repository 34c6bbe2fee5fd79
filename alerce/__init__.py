"""alerce: astronomical alert streams to classified, queryable science.

``import alerce`` is light: Kafka, torch and Dask clusters are imported only when used.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public entry points, imported lazily on first attribute access.
_LAZY = {
    "AlertBatch": ("alerce.batch", "AlertBatch"),
    "read_alerts": ("alerce.io", "read_alerts"),
    "replay": ("alerce.streams.replay", "replay"),
    "simulate": ("alerce.simulate", "simulate"),
    "Store": ("alerce.store", "Store"),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'alerce' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
