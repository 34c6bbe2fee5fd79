"""Simulated ZTF alert streams and labelled light curves ("LSST-like stream experiments").

Public API
----------
:func:`simulate`
    Write schema-valid ZTF 4.02 Avro alerts (with stamps) night by night, plus truth labels.
:func:`simulate_lightcurves`
    Labelled detections / non-detections frames, without Avro (light-curve classifier training).
:func:`make_stamps`
    Class-consistent science / template / difference cutouts (stamp classifier training).
"""

from __future__ import annotations

import importlib

from alerce.simulate.classes import ALL_CLASSES, DEFAULT_MIX, GROUP, LC_CLASSES, TAXONOMY
from alerce.simulate.lightcurves import simulate_lightcurves
from alerce.simulate.stamps import fits_gz_bytes, make_stamps

__all__ = [
    "ALL_CLASSES", "DEFAULT_MIX", "GROUP", "LC_CLASSES", "TAXONOMY", "SimulationSummary",
    "fits_gz_bytes", "main", "make_stamps", "simulate", "simulate_lightcurves",
]

_LAZY = {
    "simulate": ("alerce.simulate.writer", "simulate"),
    "SimulationSummary": ("alerce.simulate.writer", "SimulationSummary"),
    "main": ("alerce.simulate.cli", "main"),
}


def __getattr__(name: str):
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'alerce.simulate' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
