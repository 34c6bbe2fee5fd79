"""Light-curve correction, per-band magnitude statistics and object statistics (ALeRCE Gen-1).

Public API
----------
:func:`correct`
    Corrected (reference + difference) magnitudes of detections.
:func:`flag_dubious`
    Gen-1 ``dubious`` flag.
:func:`magstats`
    The ``magstat`` table (one row per ``(oid, fid)``).
:func:`object_stats`
    The ``object`` table (one row per oid).
:func:`forced_photometry_magnitudes`
    Magnitudes and corrected magnitudes of ZTF forced photometry.
:func:`correct_lightcurves`
    All of the above in one call (:class:`LightCurveResult`).
"""

from .flags import flag_dubious, stellar_flags
from .forced import forced_photometry_magnitudes
from .lightcurve import LightCurveResult, correct_lightcurves
from .magnitudes import correct, correct_magnitudes
from .magstats import MAGSTATS_COLUMNS, magstats
from .objstats import OBJECT_COLUMNS, object_stats

__all__ = [
    "LightCurveResult",
    "MAGSTATS_COLUMNS",
    "OBJECT_COLUMNS",
    "correct",
    "correct_lightcurves",
    "correct_magnitudes",
    "flag_dubious",
    "forced_photometry_magnitudes",
    "magstats",
    "object_stats",
    "stellar_flags",
]
