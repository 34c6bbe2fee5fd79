"""Pipeline entry point: alerts + stamps frames -> ``probability`` table rows."""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from alerce.classifiers.stamp.constants import CLASSES, CLASSIFIER_NAME
from alerce.classifiers.stamp.estimator import StampClassifier, StampInputs
from alerce.classifiers.stamp.features import metadata_features
from alerce.classifiers.stamp.preprocess import preprocess_stamps
from alerce.classifiers.stamp.rules import asteroid_mask, sn_rejected_mask

log = logging.getLogger(__name__)

#: Columns of the returned ``probability`` rows.
PROBABILITY_COLUMNS: tuple[str, ...] = (
    "oid", "candid", "class_name", "classifier_name", "classifier_version", "probability",
    "ranking",
)


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
    candid = pd.to_numeric(alerts["candid"], errors="coerce").astype("Int64")
    if len(stamps):
        st = stamps.assign(candid=pd.to_numeric(stamps["candid"], errors="coerce").astype("Int64"))
        st = st.drop_duplicates("candid").set_index("candid")
        pos_in_stamps = st.index.get_indexer(candid)
    else:
        st = pd.DataFrame(columns=["oid", "science", "template", "difference"])
        pos_in_stamps = np.full(len(alerts), -1)
    has = pos_in_stamps >= 0
    missing = pd.DataFrame({"oid": alerts["oid"].to_numpy()[~has],
                            "candid": alerts["candid"].to_numpy()[~has],
                            "reason": "no stamps for this candid"})
    with_stamps = np.flatnonzero(has)
    sub = st.iloc[pos_in_stamps[with_stamps]].reset_index()
    sub["oid"] = alerts["oid"].to_numpy()[with_stamps]
    pre = preprocess_stamps(sub)
    positions = with_stamps[pre.kept]
    feats = metadata_features(alerts.iloc[positions]).to_numpy()
    dropped = pd.concat([d for d in (missing, pre.dropped) if len(d)] or [missing],
                        ignore_index=True)
    return StampInputs(pre.images, feats), positions, dropped


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
    others = alerts[~is_ast].reset_index(drop=True)
    inputs, positions, dropped = prepare_inputs(others, stamps)
    probs = model.predict_proba(inputs) if len(inputs) else np.zeros((0, len(CLASSES)))
    classified = others.iloc[positions].reset_index(drop=True)
    reject = sn_rejected_mask(classified, probs)
    if reject.any():
        dropped = pd.concat([dropped, pd.DataFrame({
            "oid": classified["oid"].to_numpy()[reject],
            "candid": classified["candid"].to_numpy()[reject],
            "reason": "SN argmax rejected (negative isdiffpos or PS1 star within 1 arcsec)",
        })], ignore_index=True)
    ast = alerts[is_ast]
    ast_probs = np.zeros((len(ast), len(CLASSES)))
    ast_probs[:, CLASSES.index("asteroid")] = 1.0
    keep = ~reject
    out = probability_rows(
        np.concatenate([ast["oid"].to_numpy(dtype=object),
                        classified["oid"].to_numpy(dtype=object)[keep]]),
        np.concatenate([ast["candid"].to_numpy(dtype=np.int64),
                        classified["candid"].to_numpy(dtype=np.int64)[keep]]),
        np.concatenate([ast_probs, probs[keep]]),
        version,
    )
    if len(dropped):
        log.info("stamp classifier dropped %d alert(s): %s", len(dropped),
                 dropped["reason"].value_counts().to_dict())
    return (out, dropped) if return_dropped else out
