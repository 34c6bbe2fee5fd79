"""Pipeline entry point: alerts + stamps frames -> ``probability`` table rows."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from alerce.classifiers.stamp.constants import CLASSES, CLASSIFIER_NAME
from alerce.classifiers.stamp.estimator import StampClassifier, StampInputs
from alerce.classifiers.stamp.features import INPUT_COLUMNS, metadata_features
from alerce.classifiers.stamp.preprocess import (
    CHANNELS,
    preprocess_images,
    stack_cutout_columns,
)
from alerce.classifiers.stamp.rules import asteroid_mask, sn_rejected_mask

log = logging.getLogger(__name__)

#: Columns of the returned ``probability`` rows.
PROBABILITY_COLUMNS: tuple[str, ...] = (
    "oid", "candid", "class_name", "classifier_name", "classifier_version", "probability",
    "ranking",
)


#: ``alerts`` columns read by :func:`classify_alerts` (keys, features and rules).
_ALERT_COLUMNS_USED: tuple[str, ...] = tuple(dict.fromkeys(
    ("oid", "candid", "ssdistnr", *INPUT_COLUMNS)))


def default_model_dir() -> Path:
    """Folder of the bundled default model (``alerce/models/stamp_classifier``)."""
    return Path(__file__).resolve().parents[2] / "models" / "stamp_classifier"


@lru_cache(maxsize=1)
def load_default_model() -> StampClassifier:
    """The bundled model, loaded once per process (a Dask worker pays the load cost once).

    The returned object is shared: do not mutate it. Thread count is left to the process
    (``torch.set_num_threads``); see ``docs/stamp_classifier.md``.
    """
    return StampClassifier.load(default_model_dir())


def prepare_inputs(alerts: pd.DataFrame, stamps: pd.DataFrame
                   ) -> tuple[StampInputs, np.ndarray, pd.DataFrame]:
    """Join alerts with their stamps and build model inputs.

    Parameters
    ----------
    alerts : DataFrame
        ``alerts`` frame (needs ``oid``, ``candid`` and the candidate columns of section 4.2).
    stamps : DataFrame
        ``stamps`` frame (``oid, candid, science, template, difference``).

    Returns
    -------
    inputs : StampInputs
        For the alerts that have three well-formed cutouts.
    positions : ndarray of int
        Row positions in ``alerts`` of ``inputs``' rows.
    dropped : DataFrame
        ``oid, candid, reason`` of alerts without usable stamps.
    """
    alerts = alerts.reset_index(drop=True)
    candid = _int_keys(alerts["candid"])
    n_st = len(stamps)
    st_candid = _int_keys(stamps["candid"]) if n_st else np.zeros(0, dtype=np.int64)
    pos_in_stamps = _first_match(st_candid, candid)
    has = pos_in_stamps >= 0
    alert_oid = alerts["oid"].to_numpy()
    alert_candid = alerts["candid"].to_numpy()
    missing = pd.DataFrame({"oid": alert_oid[~has], "candid": alert_candid[~has],
                            "reason": "no stamps for this candid"})
    with_stamps = np.flatnonzero(has)
    rows = pos_in_stamps[with_stamps]
    columns = [stamps[c].to_numpy(dtype=object)[rows] if c in stamps
               else np.full(len(rows), None, dtype=object) for c in CHANNELS]
    pre = stack_cutout_columns(columns, alert_oid[with_stamps], st_candid[rows])
    images = preprocess_images(pre.images)
    positions = with_stamps[pre.kept]
    feats = metadata_features(alerts).to_numpy()[positions]
    dropped = pd.concat([d for d in (missing, pre.dropped) if len(d)] or [missing],
                        ignore_index=True)
    return StampInputs(images, feats), positions, dropped


def _int_keys(values: pd.Series) -> np.ndarray:
    """``candid`` as int64 with -1 for missing / non-numeric keys (never matched)."""
    if values.dtype.kind in "iu" and not isinstance(values.dtype, pd.api.extensions.ExtensionDtype):
        return values.to_numpy(dtype=np.int64)
    num = pd.to_numeric(values, errors="coerce").astype("Int64")
    return num.to_numpy(dtype=np.int64, na_value=-1)


def _first_match(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Position of the first occurrence of each needle in ``haystack`` (-1 when absent or < 0)."""
    if len(haystack) == 0:
        return np.full(len(needles), -1, dtype=np.int64)
    uniq, first = np.unique(haystack, return_index=True)
    at = np.searchsorted(uniq, needles).clip(0, len(uniq) - 1)
    found = (uniq[at] == needles) & (needles >= 0)
    return np.where(found, first[at], -1)


def probability_rows(oid: np.ndarray, candid: np.ndarray, probabilities: np.ndarray,
                     version: str) -> pd.DataFrame:
    """Long-format ``probability`` rows (5 per alert, ranking 1 = most probable, ties by class
    order)."""
    n, k = probabilities.shape
    order = np.argsort(-probabilities, axis=1, kind="stable")
    ranking = np.empty_like(order)
    np.put_along_axis(ranking, order, np.arange(1, k + 1)[None, :].repeat(n, 0), axis=1)
    return pd.DataFrame({
        "oid": np.repeat(np.asarray(oid, dtype=object), k),
        "candid": np.repeat(np.asarray(candid, dtype=np.int64), k),
        "class_name": np.tile(np.asarray(CLASSES, dtype=object), n),
        "classifier_name": CLASSIFIER_NAME,
        "classifier_version": version,
        "probability": probabilities.reshape(-1).astype(np.float64),
        "ranking": ranking.reshape(-1).astype(np.int64),
    }, columns=list(PROBABILITY_COLUMNS))


def classify_alerts(alerts: pd.DataFrame, stamps: pd.DataFrame,
                    model: StampClassifier | None = None, *, return_dropped: bool = False
                    ) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame]:
    """Classify the given alerts and return ``probability`` table rows.

    Every given alert is classified (the orchestration chooses which: ALeRCE classifies the first
    alert of each object new to the store). Rules of reference 4.5:

    * ``ssdistnr`` known (:func:`~alerce.classifiers.stamp.rules.asteroid_mask`): the model is
      skipped and ``asteroid = 1``, others 0 (no stamps needed);
    * argmax ``SN`` with negative isdiffpos or ``sgscore1 > 0.5 and distpsnr1 < 1``
      (:func:`~alerce.classifiers.stamp.rules.sn_rejected_mask`): the alert's rows are dropped;
    * alerts without three 63x63 cutouts are dropped (logged with the reason).

    Parameters
    ----------
    alerts, stamps : DataFrame
        The ``alerts`` and ``stamps`` frames of an :class:`alerce.batch.AlertBatch`.
    model : StampClassifier, optional
        Defaults to :func:`load_default_model`.
    return_dropped : bool
        Also return the ``oid, candid, reason`` frame of dropped alerts.

    Returns
    -------
    DataFrame
        Columns :data:`PROBABILITY_COLUMNS`, 5 rows per classified alert.
    """
    model = model if model is not None else load_default_model()
    version = str(getattr(model, "model_version", "unknown"))
    alerts = alerts.reset_index(drop=True)
    is_ast = asteroid_mask(alerts)
    # only the columns the steps below read: slicing a wide alerts frame row-wise is costly
    others = alerts[[c for c in _ALERT_COLUMNS_USED if c in alerts]]
    if is_ast.any():
        others = others[~is_ast].reset_index(drop=True)
    inputs, positions, dropped = prepare_inputs(others, stamps)
    probs = model.predict_proba(inputs) if len(inputs) else np.zeros((0, len(CLASSES)))
    classified = others.iloc[positions].reset_index(drop=True)
    reject = sn_rejected_mask(classified, probs)
    cls_oid = classified["oid"].to_numpy(dtype=object)
    cls_candid = classified["candid"].to_numpy(dtype=np.int64)
    if reject.any():
        dropped = pd.concat([dropped, pd.DataFrame({
            "oid": classified["oid"].to_numpy()[reject],
            "candid": classified["candid"].to_numpy()[reject],
            "reason": "SN argmax rejected (negative isdiffpos or PS1 star within 1 arcsec)",
        })], ignore_index=True)
    keep = ~reject
    if is_ast.any():
        ast = alerts[is_ast]
        ast_probs = np.zeros((len(ast), len(CLASSES)))
        ast_probs[:, CLASSES.index("asteroid")] = 1.0
        out = probability_rows(
            np.concatenate([ast["oid"].to_numpy(dtype=object), cls_oid[keep]]),
            np.concatenate([ast["candid"].to_numpy(dtype=np.int64), cls_candid[keep]]),
            np.concatenate([ast_probs, probs[keep]]),
            version,
        )
    else:
        out = probability_rows(cls_oid[keep], cls_candid[keep], probs[keep], version)
    if len(dropped):
        log.info("stamp classifier dropped %d alert(s): %s", len(dropped),
                 dropped["reason"].value_counts().to_dict())
    return (out, dropped) if return_dropped else out
