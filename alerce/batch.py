"""The canonical columnar alert batch every survey adapter produces.

An :class:`AlertBatch` holds pandas frames, one row per entity, with column names that follow
ALeRCE's ZTF tables (reference section 5.3). All survey adapters (ZTF Avro of every schema version,
ZTF Parquet, Rubin/LSST) produce exactly these frames, so every later step is survey agnostic.

Frames
------
``alerts``
    One row per decoded packet: ``oid`` (str, ZTF ``objectId`` / LSST ``diaObjectId``), ``candid``
    (int64), ``mjd`` (float64), ``survey`` (``"ztf"`` | ``"lsst"``), ``schemavsn`` (str), ``source``
    (where the packet came from, e.g. ``path:offset`` or ``topic/partition/offset``), then every
    field of the alert's ``candidate`` record (ZTF names: ``jd, fid, pid, ra, dec, magpsf, sigmapsf,
    isdiffpos, rb, drb, sgscore1, distpsnr1, ssdistnr, neargaia, magnr, jdendref, ndethist, ...``).
    ``isdiffpos`` is an int8 of +1/-1 everywhere. PS1, Gaia, solar-system, reference and data-quality
    metadata are read from this frame (see :data:`PS1_COLUMNS` etc.).
``detections``
    The new candidate of each packet plus every ``prv_candidates`` entry with a non-null ``candid``;
    columns :data:`DETECTION_COLUMNS`. ``parent_candid`` is the packet's candid for previous
    candidates and null (``<NA>``) for the packet's own candidate; ``has_stamp`` is True only for the
    packet's own candidate.
``non_detections``
    ``prv_candidates`` entries with a null ``candid``; columns :data:`NON_DETECTION_COLUMNS`.
``forced_photometry``
    ZTF ``fp_hists`` (schema >= 4.0) entries; columns :data:`FORCED_PHOTOMETRY_COLUMNS` (raw fluxes;
    magnitudes are computed by :mod:`alerce.correction`).
``stamps``
    ``oid, candid, science, template, difference``: the raw gzipped-FITS cutouts as ``bytes`` (or
    None); decoding is lazy (:func:`alerce.io.stamps.decode_stamp`).

Bad packets never raise inside a batch: they become :class:`DeadLetter` entries in
``AlertBatch.dead_letters``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: Columns of the ``detections`` frame (the ALeRCE ``detection`` table plus the raw reference
#: columns needed to recompute the correction, and ``mjdendref``).
DETECTION_COLUMNS: tuple[str, ...] = (
    "oid", "candid", "mjd", "fid", "pid", "diffmaglim", "isdiffpos", "nid", "ra", "dec",
    "magpsf", "sigmapsf", "magap", "sigmagap", "distnr", "rb", "rbversion", "drb", "drbversion",
    "magapbig", "sigmagapbig", "rfid", "magnr", "sigmagnr", "chinr", "sharpnr", "mjdendref",
    "parent_candid", "has_stamp",
)

#: Columns of the ``non_detections`` frame (key ``(oid, fid, mjd)``).
NON_DETECTION_COLUMNS: tuple[str, ...] = ("oid", "fid", "mjd", "diffmaglim", "parent_candid")

#: Columns of the ``forced_photometry`` frame (key ``(oid, pid)``): ZTF ``fp_hists`` fields with
#: ``jd`` turned into ``mjd``, plus ``oid`` and ``parent_candid``.
FORCED_PHOTOMETRY_COLUMNS: tuple[str, ...] = (
    "oid", "pid", "mjd", "fid", "field", "rcid", "rfid", "sciinpseeing", "scibckgnd", "scisigpix",
    "magzpsci", "magzpsciunc", "magzpscirms", "clrcoeff", "clrcounc", "exptime", "adpctdif1",
    "adpctdif2", "diffmaglim", "programid", "forcediffimflux", "forcediffimfluxunc", "procstatus",
    "distnr", "ranr", "decnr", "magnr", "sigmagnr", "chinr", "sharpnr", "parent_candid",
)

#: Columns of the ``stamps`` frame.
STAMP_COLUMNS: tuple[str, ...] = ("oid", "candid", "science", "template", "difference")

#: Alert metadata blocks, as stored in ALeRCE's ``ps1_ztf``, ``ss_ztf``, ``gaia_ztf``,
#: ``reference`` and ``dataquality`` tables (all read from the ``alerts`` frame).
PS1_COLUMNS: tuple[str, ...] = (
    "objectidps1", "sgmag1", "srmag1", "simag1", "szmag1", "sgscore1", "distpsnr1",
    "objectidps2", "sgmag2", "srmag2", "simag2", "szmag2", "sgscore2", "distpsnr2",
    "objectidps3", "sgmag3", "srmag3", "simag3", "szmag3", "sgscore3", "distpsnr3", "nmtchps",
)
SS_COLUMNS: tuple[str, ...] = ("ssdistnr", "ssmagnr", "ssnamenr")
GAIA_COLUMNS: tuple[str, ...] = ("neargaia", "neargaiabright", "maggaia", "maggaiabright")
REFERENCE_COLUMNS: tuple[str, ...] = (
    "rfid", "fid", "rcid", "field", "magnr", "sigmagnr", "chinr", "sharpnr", "ranr", "decnr",
    "mjdstartref", "mjdendref", "nframesref",
)
DATAQUALITY_COLUMNS: tuple[str, ...] = (
    "fid", "xpos", "ypos", "chipsf", "sky", "fwhm", "classtar", "mindtoedge", "seeratio",
    "aimage", "bimage", "aimagerat", "bimagerat", "nneg", "nbad", "sumrat", "scorr", "dsnrms",
    "ssnrms", "magzpsci", "magzpsciunc", "magzpscirms", "nmatches", "clrcoeff", "clrcounc",
    "zpclrcov", "zpmed", "clrmed", "clrrms", "exptime",
)
#: Columns every ``alerts`` frame carries first (the rest are candidate fields).
ALERT_KEY_COLUMNS: tuple[str, ...] = ("oid", "candid", "mjd", "survey", "schemavsn", "source")

#: Band codes (``fid``) for every survey: ZTF's own 1=g, 2=r, 3=i; Rubin u/z/y get 4/5/6.
FID = {"g": 1, "r": 2, "i": 3, "u": 4, "z": 5, "y": 6}
BAND_NAME = {v: k for k, v in FID.items()}

#: Offset between Julian date and modified Julian date.
MJD_OFFSET = 2400000.5


@dataclass(frozen=True)
class DeadLetter:
    """A packet that could not be decoded or processed.

    Attributes
    ----------
    source : str
        Where the packet came from (``path``, ``path:offset``, ``topic/partition/offset``).
    reason : str
        Human-readable reason (exception type and message).
    payload : bytes or None
        The raw packet when it is available (kept so it can be re-processed).
    """

    source: str
    reason: str
    payload: bytes | None = None


def _empty(columns: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in columns})


@dataclass
class AlertBatch:
    """Columnar batch of decoded alerts (see module docstring for the frames' schema)."""

    alerts: pd.DataFrame = field(default_factory=lambda: _empty(ALERT_KEY_COLUMNS))
    detections: pd.DataFrame = field(default_factory=lambda: _empty(DETECTION_COLUMNS))
    non_detections: pd.DataFrame = field(default_factory=lambda: _empty(NON_DETECTION_COLUMNS))
    forced_photometry: pd.DataFrame = field(
        default_factory=lambda: _empty(FORCED_PHOTOMETRY_COLUMNS)
    )
    stamps: pd.DataFrame = field(default_factory=lambda: _empty(STAMP_COLUMNS))
    dead_letters: list[DeadLetter] = field(default_factory=list)

    FRAMES = ("alerts", "detections", "non_detections", "forced_photometry", "stamps")

    def __len__(self) -> int:
        return len(self.alerts)

    @property
    def oids(self) -> np.ndarray:
        """Unique object ids of the batch's packets."""
        return pd.unique(self.alerts["oid"]) if len(self.alerts) else np.array([], dtype=object)

    @classmethod
    def concat(cls, batches: Iterable[AlertBatch]) -> AlertBatch:
        """Concatenate batches frame by frame (dead letters are concatenated too)."""
        batches = list(batches)
        if not batches:
            return cls()
        out = {}
        for name in cls.FRAMES:
            frames = [getattr(b, name) for b in batches if len(getattr(b, name))]
            out[name] = (
                pd.concat(frames, ignore_index=True) if frames else getattr(batches[0], name)
            )
        dead = [d for b in batches for d in b.dead_letters]
        return cls(**out, dead_letters=dead)

    def select(self, oids: Iterable[str]) -> AlertBatch:
        """Sub-batch with only the given objects (dead letters are not carried)."""
        keep = set(oids)
        out = {}
        for name in self.FRAMES:
            frame = getattr(self, name)
            out[name] = frame[frame["oid"].isin(keep)].reset_index(drop=True) if len(frame) else frame
        return AlertBatch(**out)

    def without_stamps(self) -> AlertBatch:
        """Same batch with an empty ``stamps`` frame (cheap to ship between workers)."""
        return AlertBatch(
            alerts=self.alerts,
            detections=self.detections,
            non_detections=self.non_detections,
            forced_photometry=self.forced_photometry,
            dead_letters=self.dead_letters,
        )

    def summary(self) -> dict[str, int]:
        """Row counts per frame plus the number of dead letters."""
        out = {name: len(getattr(self, name)) for name in self.FRAMES}
        out["objects"] = len(self.oids)
        out["dead_letters"] = len(self.dead_letters)
        return out
