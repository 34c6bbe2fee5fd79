"""Science steps that follow the correction: features, light-curve and stamp classifiers.

Each step is optional (:class:`~alerce.streams.steps.PipelineConfig`) and returns table rows to
upsert; keys starting with ``_`` are hand-offs between steps and are never written.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator

import pandas as pd

from alerce.batch import AlertBatch

#: Version written to the ``feature`` table's ``version`` column.
FEATURE_VERSION = "alerce.features 0.1.0"


def xmatch_step(processed, catalog: str, radius_arcsec: float) -> dict[str, pd.DataFrame]:
    """Cross-match the batch's objects with a local catalog (``xmatch``/``allwise`` rows + ``_wise``)."""
    from alerce.xmatch import crossmatch_tables, wise_metadata

    objects = processed.objects[["oid", "meanra", "meandec"]]
    tables = crossmatch_tables(objects, catalog, radius_arcsec=radius_arcsec, nearest=True)
    out = {name: frame for name, frame in tables.items() if len(frame)}
    if len(tables["xmatch"]) and len(tables["allwise"]):
        out["_wise"] = wise_metadata(tables["xmatch"], tables["allwise"])
    return out


@functools.lru_cache(maxsize=1)
def _extractor():
    """The default extractor, built once per process (its families keep per-grid plans)."""
    from alerce.features import default_extractor

    return default_extractor()


def feature_step(processed, wise: pd.DataFrame | None = None,
                 state: dict[str, pd.DataFrame] | None = None) -> dict[str, pd.DataFrame]:
    """Features of the objects with >= 6 detections in g or r (``feature`` rows + ``_features``).

    ``wise`` (``oid, W1mag, W2mag, W3mag``) feeds the AllWISE colour features. With the stored
    ``feature`` rows in ``state`` (next to its ``detection`` and ``object`` rows), bands whose
    points did not change keep their stored band-local features (:mod:`alerce.features.incremental`).
    """
    from alerce.features import extract_features, feature_rows
    from alerce.streams.steps import objects_with_enough_detections

    oids = objects_with_enough_detections(processed.detections)
    if not len(oids):
        return {}
    dets = processed.detections[processed.detections["oid"].isin(oids)]
    nd = processed.non_detections
    nd = nd[nd["oid"].isin(oids)] if len(nd) else nd
    meta_cols = [c for c in ("oid", "corrected", "sgscore1") if c in processed.objects.columns]
    metadata = processed.objects[meta_cols].set_index("oid").loc[oids]
    if wise is not None and len(wise):
        metadata = metadata.join(wise.set_index("oid"), how="left")
    stored = None
    if state is not None and state.get("feature") is not None and state.get("detection") is not None:
        from alerce.features.incremental import StoredFeatures

        stored = StoredFeatures(state["detection"], state.get("object"), state["feature"], FEATURE_VERSION)
    features = extract_features(dets, nd, metadata=metadata, extractor=_extractor(), stored=stored)
    if not len(features):
        return {}
    return {"feature": feature_rows(features, FEATURE_VERSION), "_features": features}


def stamp_step(batch: AlertBatch, state: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Stamp-classifier probabilities for the first alert of each object new to the store."""
    from alerce.classifiers.stamp import classify_alerts

    known = set(state.get("object", pd.DataFrame(columns=["oid"]))["oid"]) if state else set()
    alerts = batch.alerts[~batch.alerts["oid"].isin(known)]
    if not len(alerts) or not len(batch.stamps):
        return {}
    first = alerts.sort_values(["oid", "candid"], kind="mergesort").drop_duplicates("oid")
    stamps = batch.stamps[batch.stamps["candid"].isin(first["candid"])]
    rows = classify_alerts(first, stamps)
    if not len(rows):
        return {}
    import json

    from alerce.classifiers.stamp.constants import CLASSES

    taxonomy = rows[["classifier_name", "classifier_version"]].drop_duplicates().assign(
        classes=json.dumps(list(CLASSES)))
    return {"probability": rows, "taxonomy": taxonomy}


def run(batch: AlertBatch, processed, state, config, stats: dict[str, int] | None = None) -> dict[str, pd.DataFrame]:
    """Run the enabled science steps; return the extra tables to write.

    ``stats``, when given, receives ``reused_bands`` (see :func:`feature_step`).
    """
    with numba_threads(config.numba_threads):
        return _run(batch, processed, state, config, stats if stats is not None else {})


def _run(batch: AlertBatch, processed, state, config, stats: dict[str, int]) -> dict[str, pd.DataFrame]:
    out: dict[str, pd.DataFrame] = {}
    if config.stamp_classifier:
        _merge(out, stamp_step(batch, state))
    if config.xmatch_catalog:
        _merge(out, xmatch_step(processed, config.xmatch_catalog, config.xmatch_radius))
    if config.features:
        _merge(out, feature_step(processed, out.get("_wise"), state))
        if "_features" in out:
            stats["reused_bands"] = out["_features"].attrs.get("reused_bands", 0)
    if config.lc_classifier and "_features" in out:
        _merge(out, lc_classifier_step(out["_features"]))
    return {k: v for k, v in out.items() if not k.startswith("_")}


#: Environment variable with the numba threads of each task in a Dask worker (default 1).
NUMBA_THREADS_ENV = "ALERCE_NUMBA_THREADS"


@contextlib.contextmanager
def numba_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` numba threads in this thread.

    ``None``: in a Dask worker, ``$ALERCE_NUMBA_THREADS`` or 1 (the cluster already runs a task
    per core; :func:`alerce.streams.cluster.dask_client` sets the variable to the cores left per
    worker thread for the clusters it starts); elsewhere, unchanged. ``numba.set_num_threads``
    is thread-local; the previous value is restored on exit.
    """
    if n is None and _in_dask_worker():
        n = int(os.environ.get(NUMBA_THREADS_ENV) or 1)
    if n is None:
        yield
        return
    import numba

    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)


def _in_dask_worker() -> bool:
    try:
        from distributed import get_worker

        get_worker()
    except (ImportError, ValueError):
        return False
    return True


def _merge(out: dict[str, pd.DataFrame], new: dict[str, pd.DataFrame]) -> None:
    """Add a step's tables to ``out``, concatenating rows of tables both produced."""
    for name, frame in new.items():
        out[name] = pd.concat([out[name], frame], ignore_index=True) if name in out else frame


def lc_classifier_step(features: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Hierarchical-forest probabilities, outlier scores and the taxonomy rows of the model."""
    from alerce.classifiers.lc import classify_features, load_default_model, score_outliers

    model = load_default_model()
    rows = classify_features(features, model)
    out = {"probability": rows, "score": score_outliers(features, model)}
    versions = rows[["classifier_name", "classifier_version"]].drop_duplicates()
    taxonomy = _taxonomy_rows(model, versions)
    if len(taxonomy):
        out["taxonomy"] = taxonomy
    return out


def _taxonomy_rows(model, versions: pd.DataFrame) -> pd.DataFrame:
    """``taxonomy`` rows (classes as JSON) for every classifier name/version written."""
    from alerce.classifiers.taxonomy import DEFAULT_TAXONOMY

    table = DEFAULT_TAXONOMY.table_rows()
    merged = versions.merge(table.drop(columns="classifier_version"), on="classifier_name", how="left")
    return merged.dropna(subset=["classes"]).reset_index(drop=True)
