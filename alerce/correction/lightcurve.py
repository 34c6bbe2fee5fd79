"""One-call light-curve correction: dedupe, correct, flag, magstats and object stats."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from alerce.codes import first_rows, key_values, sort_order

from ._util import require_columns
from .flags import flag_dubious
from .magnitudes import add_correction
from .magstats import magstats as compute_magstats
from .objstats import object_stats


@dataclass
class LightCurveResult:
    """Output of :func:`correct_lightcurves`.

    Attributes
    ----------
    detections : DataFrame
        Deduplicated detections with ``corrected, magpsf_corr, sigmapsf_corr, sigmapsf_corr_ext,
        dubious``, sorted by ``(oid, mjd, candid)``.
    non_detections : DataFrame
        Non-detections deduplicated on ``(oid, fid, mjd)``, sorted by ``(oid, mjd, fid)``.
    magstats : DataFrame
        One row per ``(oid, fid)`` (:func:`alerce.correction.magstats`).
    objects : DataFrame
        One row per oid (:func:`alerce.correction.object_stats`).
    """

    detections: pd.DataFrame
    non_detections: pd.DataFrame
    magstats: pd.DataFrame
    objects: pd.DataFrame


def _dedupe_order(detections: pd.DataFrame) -> np.ndarray:
    """Positions of the rows kept by :func:`dedupe_detections`, ordered by ``(oid, mjd, candid)``."""
    require_columns(detections, ("oid", "candid"), "detections")
    n = len(detections)
    keys = {"oid": key_values(detections["oid"]), "candid": key_values(detections["candid"])}
    if "has_stamp" in detections.columns:
        keys["_nostamp"] = ~detections["has_stamp"].fillna(False).to_numpy(dtype=bool)
    else:
        keys["_nostamp"] = np.ones(n, dtype=bool)
    if "parent_candid" in detections.columns:
        keys["parent_candid"] = key_values(detections["parent_candid"])
    kept = first_rows(keys, ["oid", "candid"], [k for k in keys if k not in ("oid", "candid")])
    mjd = detections["mjd"].to_numpy() if "mjd" in detections.columns else np.full(n, np.nan)
    final = {"oid": keys["oid"][kept], "mjd": mjd[kept], "candid": keys["candid"][kept]}
    return kept[sort_order(final, ["oid", "mjd", "candid"])]


def dedupe_detections(detections: pd.DataFrame) -> pd.DataFrame:
    """Keep one row per ``(oid, candid)``, preferring ``has_stamp=True`` (then the smallest
    ``parent_candid``, nulls last), independently of the input row order.

    Returns a new frame sorted by ``(oid, mjd, candid)`` with a fresh index.
    """
    return detections.iloc[_dedupe_order(detections)].reset_index(drop=True)


def dedupe_non_detections(non_detections: pd.DataFrame) -> pd.DataFrame:
    """Keep one row per ``(oid, fid, mjd)``: the one with the smallest ``diffmaglim`` (then
    ``parent_candid``), so the choice is deterministic; duplicates normally differ only in
    ``parent_candid``."""
    require_columns(non_detections, ("oid", "fid", "mjd"), "non_detections")
    by = [c for c in ("diffmaglim", "parent_candid") if c in non_detections.columns]
    kept = non_detections.take(first_rows(non_detections, ["oid", "fid", "mjd"], by))
    return kept.take(sort_order(kept, ["oid", "mjd", "fid"])).reset_index(drop=True)


def correct_lightcurves(
    detections: pd.DataFrame,
    non_detections: pd.DataFrame | None = None,
    ps1: pd.DataFrame | None = None,
    hist: pd.DataFrame | None = None,
    reference: pd.DataFrame | None = None,
) -> LightCurveResult:
    """Correct many light curves at once and compute their ``magstat`` and ``object`` rows.

    Parameters
    ----------
    detections : DataFrame
        :data:`alerce.batch.DETECTION_COLUMNS` rows of any number of objects, duplicates allowed.
    non_detections : DataFrame, optional
        :data:`alerce.batch.NON_DETECTION_COLUMNS` rows, duplicates allowed.
    ps1, hist, reference : DataFrame, optional
        See :func:`alerce.correction.magstats` and :func:`alerce.correction.object_stats`.

    Returns
    -------
    LightCurveResult
        The result does not depend on the row order of the inputs.
    """
    dets = add_correction(dedupe_detections(detections))
    dets["dubious"] = flag_dubious(dets).to_numpy()
    if non_detections is None:
        from ..batch import NON_DETECTION_COLUMNS

        non_detections = pd.DataFrame({c: pd.Series(dtype="float64") for c in NON_DETECTION_COLUMNS})
    nd = dedupe_non_detections(non_detections)
    ms = compute_magstats(dets, nd, ps1=ps1)
    objs = object_stats(dets, ms, hist=hist, reference=reference)
    return LightCurveResult(detections=dets, non_detections=nd, magstats=ms, objects=objs)
