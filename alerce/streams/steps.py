"""The per-batch work of the pipeline, as plain functions on frames.

:func:`process_alerts` is pure: a decoded :class:`~alerce.batch.AlertBatch` plus the stored state of
its objects in, the rows to upsert out. :func:`run_batch` wraps it with the store reads and writes
and is what a Dask task executes, live and in replay alike.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from alerce.batch import (
    DATAQUALITY_COLUMNS,
    DETECTION_COLUMNS,
    GAIA_COLUMNS,
    PS1_COLUMNS,
    REFERENCE_COLUMNS,
    SS_COLUMNS,
    AlertBatch,
    DeadLetter,
)
from alerce.codes import first_rows, key_values, sorted_codes
from alerce.streams.rowdiff import changed_rows, not_stored_earlier

#: Version string written to ``step_id_corr`` and the ``step`` table.
CORRECTION_STEP_ID = "alerce.correction 0.1.0"

#: Detection columns no step reads from stored rows (the correction, features, classifiers and the
#: output stream use the others). Loading them was a third of the cost of reading the state.
UNREAD_DETECTION_COLUMNS: tuple[str, ...] = (
    "pid", "nid", "magap", "sigmagap", "rbversion", "drb", "drbversion", "magapbig", "sigmagapbig",
    "step_id_corr",
)

#: Columns of the stored state :func:`process_alerts` needs, where it needs fewer than all
#: (``Store.load_state(..., columns=STATE_COLUMNS)``): stored forced photometry is only used to
#: skip rows already written by an earlier alert; stored detections without
#: :data:`UNREAD_DETECTION_COLUMNS`.
STATE_COLUMNS: dict[str, list[str]] = {
    "forced_photometry": ["oid", "pid", "parent_candid"],
    "detection": [c for c in (*DETECTION_COLUMNS, "magpsf_corr", "sigmapsf_corr", "sigmapsf_corr_ext",
                              "corrected", "dubious")
                  if c not in UNREAD_DETECTION_COLUMNS],
}

#: Minimum detections in one band for the feature and light-curve classifier steps (paper: >= 6).
MIN_DETECTIONS_FOR_FEATURES = 6


@dataclass(frozen=True)
class OutputConfig:
    """Where the annotated output stream goes (credentials come from the worker's environment)."""

    kafka: str
    topic: str


@dataclass
class PipelineConfig:
    """What a batch goes through, and where it is stored.

    Attributes
    ----------
    store_url : str
        SQLAlchemy URL of the store (``sqlite:///path.db`` or ``postgresql+psycopg://...``).
    features : bool
        Compute light-curve features for objects with enough detections (``alerce[features]``).
    stamp_classifier : bool
        Classify the first alert of each object new to the store with the stamp CNN (needs torch).
    lc_classifier : bool
        Classify objects whose features were computed with the light-curve classifier.
    output : OutputConfig, optional
        Publish one annotated message per processed alert once it is stored.
    xmatch_catalog : str, optional
        Directory of a HEALPix catalog (``alerce catalog build``) cross-matched with the batch's
        objects (``xmatch_radius`` arcsec, nearest source); an AllWISE-like catalog also fills
        ``allwise`` and feeds the W1/W2/W3 colour features.
    numba_threads : int, optional
        Threads of the numba feature kernels in a batch. Default: inside a Dask worker
        ``$ALERCE_NUMBA_THREADS`` or 1 (the cluster already runs one task per core; nested OpenMP
        threads would oversubscribe the cores and spin), all cores otherwise.
    """

    store_url: str = "sqlite:///alerce.db"
    features: bool = True
    stamp_classifier: bool = False
    lc_classifier: bool = False
    output: OutputConfig | None = None
    xmatch_catalog: str | None = None
    xmatch_radius: float = 1.0
    numba_threads: int | None = None


@dataclass
class BatchSummary:
    """Counts reported by one processed batch (summed by the sinks)."""

    alerts: int = 0
    objects: int = 0
    detections: int = 0
    non_detections: int = 0
    forced_photometry: int = 0
    features: int = 0
    #: (object, band) pairs whose band-local features were taken from the store (unchanged points)
    reused_bands: int = 0
    probabilities: int = 0
    rows_written: int = 0
    seconds: float = 0.0
    #: seconds per stage (``load``, ``process``, ``science``, ``write``, ``output``, and ``write_wait``:
    #: waiting for the store's write lock, not counted in ``write``), summed
    stages: dict[str, float] = field(default_factory=dict)
    candids: list[int] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __add__(self, other: BatchSummary) -> BatchSummary:
        return BatchSummary(
            alerts=self.alerts + other.alerts,
            objects=self.objects + other.objects,
            detections=self.detections + other.detections,
            non_detections=self.non_detections + other.non_detections,
            forced_photometry=self.forced_photometry + other.forced_photometry,
            features=self.features + other.features,
            reused_bands=self.reused_bands + other.reused_bands,
            probabilities=self.probabilities + other.probabilities,
            rows_written=self.rows_written + other.rows_written,
            seconds=self.seconds + other.seconds,
            stages={k: self.stages.get(k, 0.0) + other.stages.get(k, 0.0)
                    for k in {**self.stages, **other.stages}},
            candids=self.candids + other.candids,
            dead_letters=self.dead_letters + other.dead_letters,
            errors=self.errors + other.errors,
        )

    @property
    def bad_alerts(self) -> int:
        return len(self.dead_letters)


def _frame(df: pd.DataFrame | None, columns) -> pd.DataFrame:
    if df is None or not len(df):
        return pd.DataFrame(columns=list(columns))
    return df


def _first_per_oid(df: pd.DataFrame, by: str, ascending: bool) -> pd.DataFrame:
    """Row with the smallest (or largest) ``by`` per oid, deterministic under row shuffles."""
    if not len(df):
        return df
    return df.take(first_rows(df, ["oid"], [by], ascending=[True, ascending])).reset_index(drop=True)


def _alert_rows(alerts: pd.DataFrame, columns) -> pd.DataFrame:
    present = set(alerts.columns)
    cols = ["oid", "candid", *[c for c in columns if c in present and c not in ("oid", "candid")]]
    return alerts[cols]


def _merge_detections(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Stored plus new detections, one row per (oid, candid).

    The alert's own row (``has_stamp``) wins; otherwise the row reported by the earliest alert
    (smallest ``parent_candid``), so the result does not depend on arrival order.
    """
    frames = [f for f in (stored, new) if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=list(DETECTION_COLUMNS))
    dets = pd.concat(frames, ignore_index=True)
    dets["has_stamp"] = dets["has_stamp"].fillna(False).astype(bool)
    dets["parent_candid"] = dets["parent_candid"].astype("Int64")
    keep = first_rows(dets, ["oid", "candid"], ["has_stamp", "parent_candid"],
                      ascending=[True, True, False, True], nulls="first")
    return dets.take(keep).reset_index(drop=True)


def _merge_non_detections(stored: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Stored plus new non-detections, one row per (oid, fid, mjd), earliest reporting alert."""
    frames = [f for f in (stored, new) if f is not None and len(f)]
    if not frames:
        return pd.DataFrame(columns=["oid", "fid", "mjd", "diffmaglim", "parent_candid"])
    nd = pd.concat(frames, ignore_index=True)
    if "parent_candid" not in nd:
        nd["parent_candid"] = pd.NA
    nd["parent_candid"] = nd["parent_candid"].astype("Int64")
    return nd.take(first_rows(nd, ["oid", "fid", "mjd"], ["parent_candid"])).reset_index(drop=True)


def _ps1_rows(alerts: pd.DataFrame, stored: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """PS1 rows of every alert of the objects, with ALeRCE's ``unique1..3`` flags.

    ``unique<k>`` is True while the object's alerts all name the same k-th PS1 neighbour.
    Also returns which rows need a write: the batch's own rows, and stored rows whose flags
    changed (the other stored rows would be rewritten with the values they already hold).
    """
    new = _alert_rows(alerts, PS1_COLUMNS)
    stored = _frame(stored, new.columns)
    n_stored = len(stored)
    rows = pd.concat([f for f in (stored, new) if len(f)], ignore_index=True)
    oid, _ = sorted_codes(key_values(rows["oid"]))
    keys = {"oid": oid, "candid": key_values(rows["candid"]), "later_first": -np.arange(len(rows))}
    keep = np.sort(first_rows(keys, ["oid", "candid"], ["later_first"]))  # the last row of each (oid, candid)
    rows, oid, from_store = rows.take(keep), oid[keep], keep < n_stored
    write = ~from_store
    for k in (1, 2, 3):
        col = f"objectidps{k}"
        if col in rows:
            flag = _distinct_per_group(oid, rows[col])[oid] <= 1
            if from_store.any() and f"unique{k}" in rows:
                old = rows[f"unique{k}"]
                same = old.notna().to_numpy() & (old.astype("boolean").fillna(False).to_numpy(dtype=bool) == flag)
                write |= ~same
            else:
                write |= True
            rows[f"unique{k}"] = flag
    return rows.reset_index(drop=True), write


def _distinct_per_group(group: np.ndarray, values: pd.Series) -> np.ndarray:
    """Number of distinct non-null ``values`` of each group code (``pandas`` ``nunique``)."""
    codes, _ = sorted_codes(key_values(values), nulls="first")
    valid = codes >= 0
    g = group[valid]
    pairs = first_rows({"group": g, "value": codes[valid]}, ["group", "value"])  # one row per distinct pair
    return np.bincount(g[pairs], minlength=int(group.max()) + 1 if len(group) else 0)


def _hist_rows(alerts: pd.DataFrame, stored_objects: pd.DataFrame,
               stored_dets: pd.DataFrame) -> pd.DataFrame:
    """``ndethist``-style columns from the alert with the largest candid, stored or new."""
    cols = ["ndethist", "ncovhist", "jdstarthist", "jdendhist"]
    new = _first_per_oid(alerts[["oid", "candid", *cols]], "candid", ascending=False)
    new = new.assign(mjdstarthist=new["jdstarthist"] - 2400000.5,
                     mjdendhist=new["jdendhist"] - 2400000.5).drop(columns=["jdstarthist", "jdendhist"])
    if stored_objects is None or not len(stored_objects):
        return new
    stamped = stored_dets[stored_dets["has_stamp"].astype(bool)] if len(stored_dets) else stored_dets
    stored_max = stamped.groupby("oid")["candid"].max() if len(stamped) else pd.Series(dtype="int64")
    old = stored_objects[["oid", "ndethist", "ncovhist", "mjdstarthist", "mjdendhist"]].copy()
    old["candid"] = old["oid"].map(stored_max).fillna(-1).astype("int64")
    both = pd.concat([old, new], ignore_index=True)
    return _first_per_oid(both, "candid", ascending=False)


def _reference_rows(alerts: pd.DataFrame, stored: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """One row per (oid, rfid), from the earliest alert that used that reference image.

    Also returns which rows need a write: those not kept from the store (a kept stored row would
    be rewritten with the values it already holds).
    """
    new = _alert_rows(alerts, [c for c in REFERENCE_COLUMNS if c not in ("mjdstartref", "mjdendref")])
    new["mjdstartref"] = alerts["jdstartref"].to_numpy() - 2400000.5 if "jdstartref" in alerts else np.nan
    new["mjdendref"] = alerts["jdendref"].to_numpy() - 2400000.5 if "jdendref" in alerts else np.nan
    new = new[new["rfid"].notna()]
    stored = _frame(stored, new.columns)
    rows = pd.concat([f for f in (stored, new) if len(f)], ignore_index=True)
    if not len(rows):
        return rows, np.zeros(0, dtype=bool)
    rows["_from_store"] = np.arange(len(rows)) < len(stored)
    rows = rows.take(first_rows(rows, ["oid", "rfid"], ["candid"])).reset_index(drop=True)
    write = ~rows.pop("_from_store").to_numpy(dtype=bool)
    return rows, write


def _detection_writes(changed: pd.DataFrame, new: pd.DataFrame,
                      stored: pd.DataFrame) -> list[pd.DataFrame] | pd.DataFrame:
    """Changed detection rows to write, never overwriting columns that were not read.

    Stored rows are loaded without some columns (:data:`UNREAD_DETECTION_COLUMNS` absent from
    ``stored``), so after the merge those columns are NaN wherever a stored row won. Rows of the
    batch's detections take them back from the batch's copy of the same candid (the measurement
    is the same); the other rows are written without them, so the stored values stay.
    """
    unread = [c for c in new.columns if c in changed.columns and c not in stored.columns
              and c not in ("oid", "candid")]
    if not len(changed) or not len(stored) or not unread:
        return changed
    # only rows whose candid is stored can be a stored row (most changed rows are new detections)
    maybe = changed["candid"].isin(stored["candid"]).to_numpy()
    if not maybe.any():
        return changed
    rows = changed[maybe]
    copy = new[new["candid"].isin(rows["candid"])].drop_duplicates(["oid", "candid"])[["oid", "candid", *unread]]
    keyed = rows.drop(columns=unread).merge(copy, on=["oid", "candid"], how="left", indicator=True)
    in_batch = keyed.pop("_merge").eq("both").to_numpy()
    full = pd.concat([changed[~maybe], keyed[in_batch][list(changed.columns)]], ignore_index=True)
    partial = rows[~in_batch].drop(columns=unread).reset_index(drop=True)
    return [f for f in (full, partial) if len(f)] or changed.iloc[:0]


@dataclass
class ProcessedBatch:
    """Result of :func:`process_alerts`.

    Attributes
    ----------
    tables : dict of DataFrame
        Table name to the rows to upsert.
    detections, non_detections : DataFrame
        The full corrected light curves of the batch's objects (stored plus new).
    objects : DataFrame
        Object rows (one per oid) with the metadata the feature step needs (sgscore1 ...).
    """

    tables: dict[str, pd.DataFrame]
    detections: pd.DataFrame
    non_detections: pd.DataFrame
    objects: pd.DataFrame


def process_alerts(batch: AlertBatch, state: dict[str, pd.DataFrame] | None = None, *,
                   step_id: str = CORRECTION_STEP_ID) -> ProcessedBatch:
    """Merge a batch with the stored light curves of its objects and compute the tables to write.

    Parameters
    ----------
    batch : AlertBatch
        Decoded alerts (any number of objects and alerts per object).
    state : dict of DataFrame, optional
        ``Store.load_state(batch.oids)``: stored ``detection``, ``non_detection``,
        ``forced_photometry``, ``reference``, ``ps1_ztf`` and ``object`` rows of these objects.
    step_id : str
        Written to ``step_id_corr``.

    Returns
    -------
    ProcessedBatch
        The rows to upsert and the full corrected light curves. The result depends only on the
        union of stored and new alerts, not on the order in which alerts arrived.
    """
    from alerce.correction import correct_lightcurves, forced_photometry_magnitudes

    state = state or {}
    alerts = batch.alerts
    if not len(alerts):
        empty = pd.DataFrame()
        return ProcessedBatch({}, empty, empty, empty)
    stored_dets = _frame(state.get("detection"), DETECTION_COLUMNS)
    dets = _merge_detections(stored_dets, batch.detections)
    nd = _merge_non_detections(state.get("non_detection"), batch.non_detections)

    ps1, ps1_write = _ps1_rows(alerts, state.get("ps1_ztf"))
    first_ps1 = _first_per_oid(ps1, "candid", ascending=True)[["oid", "sgscore1", "distpsnr1"]]
    hist = _hist_rows(alerts, state.get("object"), stored_dets)
    reference, reference_write = _reference_rows(alerts, state.get("reference"))

    result = correct_lightcurves(dets, nd, ps1=first_ps1, hist=hist,
                                 reference=reference[["oid", "rfid", "mjdendref"]])
    detections = result.detections.assign(step_id_corr=step_id)
    objects = result.objects.assign(step_id_corr=step_id)
    magstats = result.magstats.assign(step_id_corr=step_id)

    new_nd = changed_rows(result.non_detections, state.get("non_detection"),
                          ["oid", "fid", "mjd"], ["parent_candid"])

    fp = batch.forced_photometry
    if len(fp):
        # one row per (oid, pid), from the earliest alert that carried it; skip what is stored
        fp = fp.assign(parent_candid=fp["parent_candid"].astype("Int64"))
        fp = fp.take(first_rows(fp, ["oid", "pid"], ["parent_candid"])).reset_index(drop=True)
        fp = not_stored_earlier(fp, state.get("forced_photometry"), ["oid", "pid"], "parent_candid")
        if len(fp):
            fp = forced_photometry_magnitudes(fp)

    last = _first_per_oid(alerts, "candid", ascending=False)
    tables = {
        "object": objects,
        "magstat": magstats,
        "detection": _detection_writes(
            changed_rows(detections, stored_dets, ["oid", "candid"],
                         ["corrected", "dubious", "has_stamp", "parent_candid"]),
            batch.detections, stored_dets),
        "non_detection": new_nd,
        "forced_photometry": fp,
        "ps1_ztf": ps1[ps1_write],
        "ss_ztf": _alert_rows(last, SS_COLUMNS),
        "gaia_ztf": _alert_rows(last, GAIA_COLUMNS),
        "reference": reference[reference_write] if len(reference) else reference,
        "dataquality": _alert_rows(alerts, DATAQUALITY_COLUMNS),
    }
    tables = {name: df for name, df in tables.items() if df is not None and len(df)}
    objects = objects.merge(first_ps1, on="oid", how="left")
    return ProcessedBatch(tables, detections, result.non_detections, objects)


def state_bounds(batch: AlertBatch) -> dict[str, tuple[str, object]]:
    """What :func:`process_alerts` needs of the stored forced photometry: rows from the batch's
    smallest ``pid`` on (it only compares stored rows with the batch's (oid, pid) pairs), none
    when the batch has no forced photometry. Keeps the read bounded by the alerts' 30-day window
    instead of growing with each object's whole history.
    """
    fp = batch.forced_photometry
    pids = pd.to_numeric(fp["pid"], errors="coerce") if len(fp) and "pid" in fp else pd.Series(dtype=float)
    low = pids.min() if pids.notna().any() else None
    return {"forced_photometry": ("pid", None if low is None else int(low))}


def objects_with_enough_detections(detections: pd.DataFrame,
                                   minimum: int = MIN_DETECTIONS_FOR_FEATURES) -> np.ndarray:
    """Object ids with at least ``minimum`` detections in g or r (the paper's feature rule)."""
    if not len(detections):
        return np.array([], dtype=object)
    counts = detections[detections["fid"].isin([1, 2])].groupby(["oid", "fid"]).size()
    ok = counts[counts >= minimum].index.get_level_values("oid")
    return pd.unique(ok)


def run_batch(batch: AlertBatch, config: PipelineConfig, prev=None) -> BatchSummary:
    """Load state, process, write: one Dask task of the pipeline.

    Never raises: a failure becomes an error string plus dead letters for the batch's alerts
    (so the Kafka offsets of those alerts are not committed and a replay can retry them).
    ``prev`` is the summary of the previous batch of the same lane; taking it as an argument
    makes Dask run the lanes' batches in order.
    """
    t0 = time.perf_counter()
    summary = BatchSummary(dead_letters=list(batch.dead_letters))
    if not len(batch):
        summary.seconds = time.perf_counter() - t0
        return summary
    stages = summary.stages

    def lap(stage: str, start: float) -> float:
        now = time.perf_counter()
        stages[stage] = now - start
        return now

    try:
        store = _cached_store(config.store_url)
        state = store.load_state(list(batch.oids), columns=STATE_COLUMNS,
                                 at_least=state_bounds(batch))
        if config.features:
            stored_features = read_stored_features(store, batch.oids)
            if stored_features is not None:
                state["feature"] = stored_features
        t = lap("load", t0)
        processed = process_alerts(batch, state)
        tables = processed.tables
        t = lap("process", t)
        stats: dict[str, int] = {}
        tables.update(run_science_steps(batch, processed, state, config, stats))
        summary.reused_bands = stats.get("reused_bands", 0)
        t = lap("science", t)
        written = store.write(without_unchanged_features(store, tables, state.get("feature")))
        t = lap("write", t)
        stages["write_wait"] = min(store.last_write_wait, stages["write"])  # waiting for the write lock
        stages["write"] -= stages["write_wait"]
        if config.output is not None:
            from alerce.streams.output import publish_annotations

            publish_annotations(config.output, batch, processed, tables, store)
            lap("output", t)
        summary.alerts = len(batch.alerts)
        summary.objects = len(batch.oids)
        summary.detections = len(batch.detections)
        summary.non_detections = len(batch.non_detections)
        summary.forced_photometry = len(batch.forced_photometry)
        summary.features = int(tables["feature"]["oid"].nunique()) if "feature" in tables else 0
        summary.probabilities = len(tables.get("probability", ()))
        summary.rows_written = int(sum(written.values())) if isinstance(written, dict) else 0
        summary.candids = batch.alerts["candid"].astype("int64").tolist()
    except Exception as exc:  # noqa: BLE001 - reported, alerts kept as dead letters
        reason = f"{type(exc).__name__}: {exc}"
        summary.errors.append(reason + "\n" + traceback.format_exc(limit=5))
        summary.dead_letters.extend(
            DeadLetter(source=str(src), reason=f"processing failed: {reason}")
            for src in batch.alerts.get("source", pd.Series(["?"] * len(batch))).tolist()
        )
    summary.seconds = time.perf_counter() - t0
    return summary


def read_stored_features(store, oids) -> pd.DataFrame | None:
    """The stored ``feature`` rows of ``oids`` where reads are cheap (SQLite with the columnar
    reader), else None. The feature step reuses the values of unchanged bands
    (:mod:`alerce.features.incremental`) and the write skips rows that did not change."""
    if not store.reads_columnar or not len(oids):
        return None
    return store.read_objects("feature", list(oids), ["oid", "name", "fid", "value", "version"])


def without_unchanged_features(store, tables: dict[str, pd.DataFrame],
                               stored: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """``tables`` without the ``feature`` rows the store already holds with the same value and version.

    A new detection in one band leaves about half of an object's features as they were (those of
    the other band); skipping them halves the feature upserts, the largest write of a batch.
    ``stored``: the stored feature rows of (at least) these objects when already read; otherwise
    they are read where reads are cheap (SQLite with the columnar reader) and elsewhere ``tables``
    is returned as given.
    """
    feature = tables.get("feature")
    if feature is None or not len(feature):
        return tables
    if stored is None:
        stored = read_stored_features(store, pd.unique(feature["oid"]))
        if stored is None:
            return tables
    return {**tables, "feature": changed_rows(feature, stored, ["oid", "name", "fid"], ["value", "version"])}


def run_science_steps(batch: AlertBatch, processed: ProcessedBatch, state: dict[str, pd.DataFrame],
                      config: PipelineConfig, stats: dict[str, int] | None = None) -> dict[str, pd.DataFrame]:
    """Feature, classifier and stamp steps after the correction (each optional)."""
    from alerce.streams import science

    return science.run(batch, processed, state, config, stats)


_STORES: dict[str, object] = {}


def _cached_store(url: str):
    """One open :class:`~alerce.store.Store` per URL per process (Dask workers reuse it)."""
    from alerce.store import Store

    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = Store(url)
    return store
