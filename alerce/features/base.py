"""Building blocks of feature extraction: packed light curves and the feature-family contract.

Many light curves travel *packed*: one float64 array per column, sorted by (object, band, time),
plus offsets. A family's numba kernel walks all objects in one compiled loop (``prange``), so no
per-object Python runs in the hot path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
import pandas as pd

#: Bands used by ALeRCE's ZTF features, in suffix order (``_1`` = g, ``_2`` = r).
BANDS: tuple[int, ...] = (1, 2)


def positions(values: pd.Series | np.ndarray, index: pd.Index) -> np.ndarray:
    """Position of each value in ``index`` (-1 when absent or null), hashing each distinct value once."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    return np.append(index.get_indexer(uniques), -1)[codes]  # code -1 (null) -> the appended -1


def block_rows(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Row positions of consecutive blocks ``[starts[k], starts[k] + lengths[k])``, concatenated."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ahead = np.cumsum(lengths) - lengths  # rows of the earlier blocks
    return np.repeat(np.asarray(starts, dtype=np.int64) - ahead, lengths) + np.arange(int(lengths.sum()))


#: Per-detection arrays of :class:`PackedLightCurves` (all laid out by ``band_offsets``).
_DETECTION_ARRAYS = ("time", "mag", "err", "mag_raw", "err_raw", "isdiffpos", "rb", "ra", "dec")


@dataclass
class PackedLightCurves:
    """Detections and non-detections of many objects as flat arrays.

    Detections are sorted by (object, band, mjd). For object ``i`` and band index ``b`` (position in
    ``bands``), the detections are ``slice(band_offsets[i, b], band_offsets[i, b + 1])``; all of the
    object's detections are ``slice(band_offsets[i, 0], band_offsets[i, -1])``. Non-detections are
    laid out the same way in the ``nd_*`` arrays with ``nd_band_offsets``.

    Attributes
    ----------
    oids : np.ndarray
        Object ids, length ``n``.
    bands : tuple of int
        Band codes (``fid``) in offset order.
    time, mag, err : np.ndarray
        mjd (days), ``magpsf_ml`` and ``sigmapsf_ml`` (reference section 2.1).
    mag_raw, err_raw : np.ndarray
        Uncorrected ``magpsf`` and ``sigmapsf``.
    isdiffpos : np.ndarray
        +1/-1 as float64.
    rb, ra, dec : np.ndarray
        Real/bogus score and coordinates per detection.
    band_offsets : np.ndarray
        int64 array of shape ``(n, len(bands) + 1)``.
    nd_time, nd_diffmaglim : np.ndarray
        Non-detection mjd and limiting magnitude.
    nd_band_offsets : np.ndarray
        int64 array of shape ``(n, len(bands) + 1)``.
    metadata : pd.DataFrame
        Per-object scalars indexed by oid (``corrected``, ``sgscore1``, AllWISE magnitudes ...).
    """

    oids: np.ndarray
    bands: tuple[int, ...]
    time: np.ndarray
    mag: np.ndarray
    err: np.ndarray
    mag_raw: np.ndarray
    err_raw: np.ndarray
    isdiffpos: np.ndarray
    rb: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    band_offsets: np.ndarray
    nd_time: np.ndarray
    nd_diffmaglim: np.ndarray
    nd_band_offsets: np.ndarray
    metadata: pd.DataFrame = field(default_factory=pd.DataFrame)

    def __len__(self) -> int:
        return len(self.oids)

    def column(self, name: str) -> np.ndarray:
        """A packed array as the C-contiguous dtype kernels take (int64 offsets, float64 data)."""
        dtype = np.int64 if name.endswith("offsets") else np.float64
        return np.ascontiguousarray(getattr(self, name), dtype=dtype)

    def without_bands(self, drop: np.ndarray) -> PackedLightCurves:
        """A copy whose detections of the ``drop[i, b]`` (object, band) blocks are removed.

        ``drop`` is a boolean array of shape ``(len(self), len(self.bands))``. The objects stay
        (a dropped block becomes empty); non-detections and metadata are shared with ``self``.
        """
        drop = np.asarray(drop, dtype=bool)
        if drop.shape != (len(self), len(self.bands)):
            raise ValueError(f"drop has shape {drop.shape}, expected {(len(self), len(self.bands))}")
        offsets = np.asarray(self.band_offsets, dtype=np.int64)
        counts = np.diff(offsets, axis=1)
        keep_counts = np.where(drop, 0, counts)
        new_offsets = np.zeros_like(offsets)
        new_offsets[:, 1:] = np.cumsum(keep_counts, axis=1)
        total = np.cumsum(keep_counts.sum(axis=1))
        new_offsets[1:] += total[:-1, None]
        rows = block_rows(offsets[:, :-1][~drop], counts[~drop])  # kept blocks, in packed order
        det = {name: getattr(self, name)[rows] for name in _DETECTION_ARRAYS}
        return dataclasses.replace(self, band_offsets=new_offsets, **det)


class FeatureFamily:
    """One family of features (light-curve-python style).

    Subclasses set hyper-parameters in ``__init__``, expose ``names`` (the output column names, in
    order, with ALeRCE's ``_1``/``_2`` band suffixes), declare the :class:`PackedLightCurves`
    attributes they read in ``required`` and the features of other families they need in
    ``depends`` (e.g. ``("Multiband_period",)``), and implement :meth:`compute`, which should call a
    module-level ``@numba.njit(nogil=True)`` kernel over the packed arrays.
    """

    required: ClassVar[tuple[str, ...]] = ("time", "mag", "err")
    depends: ClassVar[tuple[str, ...]] = ()
    #: True when every output is per band (``<name>_<fid>``, :func:`per_band_names`) and depends only
    #: on that band's detections: no other band, no non-detections, no metadata, no ``depends``.
    #: :meth:`Extractor.compute <alerce.features.Extractor.compute>` may then skip a band whose
    #: points did not change and reuse its earlier values.
    band_local: ClassVar[bool] = False

    @property
    def names(self) -> list[str]:
        raise NotImplementedError

    def compute(self, lc: PackedLightCurves, context: dict[str, np.ndarray]) -> np.ndarray:
        """Return a float64 array of shape ``(len(lc), len(self.names))``.

        ``context`` maps every feature name computed by earlier families to its per-object array.
        NaN marks a feature that cannot be computed (too few points, failed fit ...).
        """
        raise NotImplementedError


def per_band_names(base: Sequence[str], bands: Sequence[int] = BANDS) -> list[str]:
    """``["A_1", "B_1", "A_2", "B_2"]`` style names: all features of band 1, then band 2."""
    return [f"{name}_{band}" for band in bands for name in base]
