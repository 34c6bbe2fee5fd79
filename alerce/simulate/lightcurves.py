"""Labelled light curves without Avro: :func:`simulate_lightcurves` for classifier training."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from alerce.batch import DETECTION_COLUMNS, MJD_OFFSET, NON_DETECTION_COLUMNS
from alerce.simulate.cadence import make_schedule
from alerce.simulate.classes import LC_CLASSES, normalize_mix, sample_classes
from alerce.simulate.core import Chunk, field_centers, simulate_chunk

#: Truth columns added to the ``labels`` frame (NaN where not applicable to the class).
LABEL_PARAM_COLUMNS = (
    "period", "amp_g", "amp_r", "mean_g", "mean_r", "tau", "sigma", "peak_mjd", "peak_g",
    "peak_r",
)

_CHUNK = 2000


def detection_frame(chunk: Chunk) -> pd.DataFrame:
    """Detections of a chunk with the columns of :data:`alerce.batch.DETECTION_COLUMNS`.

    Reference-source values come from the object, data-quality values (``rb``, ``drb``,
    aperture magnitudes) are drawn around the PSF photometry; ``parent_candid`` is null and
    ``has_stamp`` False (no alert packet is involved).
    """
    rows = chunk.rows[chunk.rows["detected"].to_numpy()]
    obj = chunk.objects
    o = rows["obj"].to_numpy()
    g = rows["fid"].to_numpy() == 1
    n = len(rows)
    # deterministic pseudo-random scatter from the candid (independent of chunking)
    rng = np.random.default_rng(np.uint64(int(rows["candid"].sum()) % (2**63)) if n else 0)
    mag = rows["magpsf"].to_numpy()
    sig = rows["sigmapsf"].to_numpy()
    rb = np.clip(obj["rb_level"].to_numpy()[o] + rng.normal(0, 0.05, n), 0.0, 1.0)
    magap = mag + rng.normal(0, 1.0, n) * sig * 1.1
    magnr = np.where(g, obj["magnr_g"].to_numpy()[o], obj["magnr_r"].to_numpy()[o])
    out = pd.DataFrame({
        "oid": pd.array(obj["oid"].to_numpy()[o], dtype=object),
        "candid": rows["candid"].to_numpy(np.int64),
        "mjd": rows["mjd"].to_numpy(),
        "fid": rows["fid"].to_numpy(np.int64),
        "pid": rows["pid"].to_numpy(np.int64),
        "diffmaglim": rows["diffmaglim"].to_numpy(),
        "isdiffpos": rows["isdiffpos"].to_numpy(np.int8),
        "nid": rows["nid"].to_numpy(np.int64),
        "ra": obj["ra"].to_numpy()[o] + rng.normal(0, 0.06 / 3600, n),
        "dec": obj["dec"].to_numpy()[o] + rng.normal(0, 0.06 / 3600, n),
        "magpsf": mag,
        "sigmapsf": sig,
        "magap": magap,
        "sigmagap": sig * 1.1,
        "distnr": obj["distnr"].to_numpy()[o],
        "rb": rb,
        "rbversion": "t17_f5_c3",
        "drb": np.clip(rb + rng.normal(0.05, 0.05, n), 0.0, 1.0),
        "drbversion": "d6_m7",
        "magapbig": magap + rng.normal(0, 1.0, n) * sig * 0.3,
        "sigmagapbig": sig * 1.25,
        "rfid": obj["field"].to_numpy()[o] * 10**6 + 120000
        + rows["fid"].to_numpy() * 100 + rows["rcid"].to_numpy(),
        "magnr": magnr,
        "sigmagnr": obj["sigmagnr"].to_numpy()[o],
        "chinr": obj["chinr"].to_numpy()[o],
        "sharpnr": obj["sharpnr"].to_numpy()[o],
        "mjdendref": obj["jdendref"].to_numpy()[o] - MJD_OFFSET,
        "parent_candid": pd.array([pd.NA] * n, dtype="Int64"),
        "has_stamp": np.zeros(n, dtype=bool),
    })
    return out[list(DETECTION_COLUMNS)]


def nondetection_frame(chunk: Chunk) -> pd.DataFrame:
    """Non-detections (exposures without a significant difference flux) of a chunk."""
    rows = chunk.rows[~chunk.rows["detected"].to_numpy()]
    o = rows["obj"].to_numpy()
    out = pd.DataFrame({
        "oid": pd.array(chunk.objects["oid"].to_numpy()[o], dtype=object),
        "fid": rows["fid"].to_numpy(np.int64),
        "mjd": rows["mjd"].to_numpy(),
        "diffmaglim": rows["diffmaglim"].to_numpy(),
        "parent_candid": pd.array([pd.NA] * len(rows), dtype="Int64"),
    })
    return out[list(NON_DETECTION_COLUMNS)]


def label_frame(chunk: Chunk) -> pd.DataFrame:
    """Truth labels: ``oid, class, group`` plus key model parameters."""
    obj = chunk.objects
    out = pd.DataFrame({
        "oid": pd.array(obj["oid"].to_numpy(), dtype=object),
        "class": pd.array(obj["cls"].to_numpy(), dtype=object),
        "group": pd.array(obj["group"].to_numpy(), dtype=object),
    })
    for c in LABEL_PARAM_COLUMNS:
        out[c] = obj[c].to_numpy()
    return out


def simulate_lightcurves(
    n_objects: int,
    seed: int,
    classes: Sequence[str] | Mapping[str, float] | None = None,
    *,
    start_mjd: float = 58300.0,
    duration: float = 730.0,
    n_fields: int | None = None,
    min_detections: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Simulate labelled ZTF-like g/r light curves (no Avro, no stamps).

    Parameters
    ----------
    n_objects : int
        Number of objects drawn (before the ``min_detections`` cut).
    seed : int
        Random seed: same seed and arguments, same frames.
    classes : sequence of str, mapping of str to float, or None
        Classes to draw: a list (equal fractions), a ``{class: weight}`` mapping, or None
        for the 15 light-curve classes in equal fractions (:data:`LC_CLASSES`). ``asteroid``
        and ``bogus`` may be requested too.
    start_mjd, duration : float
        Time span of the survey [MJD, days]; fields have seasonal gaps within it.
    n_fields : int, optional
        Number of fields (default: one per 100 objects, at least 1).
    min_detections : int
        Objects with fewer detections are dropped from all three frames.

    Returns
    -------
    detections : pandas.DataFrame
        Columns :data:`alerce.batch.DETECTION_COLUMNS` (``oid, candid, mjd, fid, magpsf,
        sigmapsf, isdiffpos`` (+1/-1), ``diffmaglim, magnr, distnr, ...``), sorted by oid
        order of generation then time.
    non_detections : pandas.DataFrame
        Columns :data:`alerce.batch.NON_DETECTION_COLUMNS` (every exposure without a
        detection).
    labels : pandas.DataFrame
        ``oid, class, group`` and truth parameters (:data:`LABEL_PARAM_COLUMNS`).

    Raises
    ------
    ValueError
        On a negative ``n_objects``, non-positive ``duration`` or an unknown class.
    """
    if n_objects < 0:
        raise ValueError(f"n_objects must be >= 0, got {n_objects}")
    if duration <= 0:
        raise ValueError(f"duration must be > 0 days, got {duration}")
    mix = normalize_mix(classes, default={c: 1.0 for c in LC_CLASSES})
    rng = np.random.default_rng([int(seed), 0])
    nf = max(1, n_objects // 100) if n_fields is None else int(n_fields)
    end = start_mjd + duration
    schedule = make_schedule(rng, nf, start_mjd, end)
    fra, fdec = field_centers(rng, nf)
    peak_range = (start_mjd + 10.0, end - 10.0)
    dets, nondets, labels = [], [], []
    for k, lo in enumerate(range(0, n_objects, _CHUNK)):
        crng = np.random.default_rng([int(seed), 1, k])
        cls = sample_classes(min(_CHUNK, n_objects - lo), mix, crng)
        chunk = simulate_chunk(cls, crng, schedule, fra, fdec, index_offset=lo, seed=int(seed),
                               peak_range=peak_range, event_range=(start_mjd, end))
        dets.append(detection_frame(chunk))
        nondets.append(nondetection_frame(chunk))
        labels.append(label_frame(chunk))
    if not labels:
        from alerce.batch import _empty
        return (_empty(DETECTION_COLUMNS), _empty(NON_DETECTION_COLUMNS),
                pd.DataFrame(columns=["oid", "class", "group", *LABEL_PARAM_COLUMNS]))
    det = pd.concat(dets, ignore_index=True)
    nondet = pd.concat(nondets, ignore_index=True)
    lab = pd.concat(labels, ignore_index=True)
    if min_detections > 0:
        counts = det["oid"].value_counts()
        keep = set(counts.index[counts.to_numpy() >= min_detections])
        det = det[det["oid"].isin(keep)].reset_index(drop=True)
        nondet = nondet[nondet["oid"].isin(keep)].reset_index(drop=True)
        lab = lab[lab["oid"].isin(keep)].reset_index(drop=True)
    return det, nondet, lab
