"""Post-processing rules of the stamp classifier step (reference 4.5), as pure functions.

Each rule takes the ``alerts`` frame (and probabilities) and returns a boolean mask aligned with
its rows; :func:`alerce.classifiers.stamp.pipeline.classify_alerts` applies them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from alerce.classifiers.stamp.constants import CLASSES

_SN = CLASSES.index("SN")


def _numeric(alerts: pd.DataFrame, name: str) -> np.ndarray:
    if name not in alerts:
        return np.full(len(alerts), np.nan)
    return pd.to_numeric(alerts[name], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def asteroid_mask(alerts: pd.DataFrame) -> np.ndarray:
    """Alerts with a known solar-system object nearby: ``ssdistnr`` not null, != -999 and >= 0.

    ALeRCE tests only ``ssdistnr != -999``; null and other negative sentinels are treated as "no
    match" here too. Those alerts skip the model and get ``asteroid = 1``, all other classes 0.
    """
    ss = _numeric(alerts, "ssdistnr")
    with np.errstate(invalid="ignore"):
        return np.isfinite(ss) & (ss != -999.0) & (ss >= 0.0)


def negative_isdiffpos_mask(alerts: pd.DataFrame) -> np.ndarray:
    """Alerts whose difference is negative: isdiffpos -1 / 'f' / 0 (an int8 +1/-1 in the frame)."""
    if "isdiffpos" not in alerts:
        return np.zeros(len(alerts), dtype=bool)
    from alerce.classifiers.stamp.features import encode_isdiffpos

    return encode_isdiffpos(alerts["isdiffpos"]) == 1.0


def near_ps1_star_mask(alerts: pd.DataFrame) -> np.ndarray:
    """``sgscore1 > 0.5 and distpsnr1 < 1`` (a likely PS1 star within 1 arcsec; -999 never matches)."""
    sg, dist = _numeric(alerts, "sgscore1"), _numeric(alerts, "distpsnr1")
    with np.errstate(invalid="ignore"):
        return (sg > 0.5) & (dist < 1.0) & (dist >= 0.0)


def sn_rejected_mask(alerts: pd.DataFrame, probabilities: np.ndarray) -> np.ndarray:
    """Rows whose classification is dropped: argmax is ``SN`` but the alert is negative or sits on
    a PS1 star (:func:`negative_isdiffpos_mask` | :func:`near_ps1_star_mask`).

    Parameters
    ----------
    alerts : DataFrame, n rows
    probabilities : ndarray (n, 5) in :data:`CLASSES` order
    """
    probabilities = np.asarray(probabilities)
    if len(probabilities) != len(alerts):
        raise ValueError(f"{len(alerts)} alerts but {len(probabilities)} probability rows")
    if len(alerts) == 0:
        return np.zeros(0, dtype=bool)
    is_sn = np.argmax(probabilities, axis=1) == _SN
    return is_sn & (negative_isdiffpos_mask(alerts) | near_ps1_star_mask(alerts))
