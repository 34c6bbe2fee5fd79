"""A custom feature family: per-band peak-to-peak magnitude range and detection rate.

Run it with ``python examples/custom_feature_family.py``. It shows the three parts of a family:
a module-level numba kernel over the packed arrays (one compiled loop over all objects), a small
class with ``names``/``required``/``compute``, and composing it with built-in families in an
:class:`~alerce.features.Extractor`.
"""

from __future__ import annotations

import numba
import numpy as np
import pandas as pd

from alerce.features import Extractor, FeatureFamily, PackedLightCurves, per_band_names
from alerce.features.pack import pack_lightcurves
from alerce.features.sn import SNDetectionFamily


@numba.njit(nogil=True, cache=True, parallel=True)
def range_rate_kernel(time, mag, band_offsets, min_points):
    """Per object and band: ``max(mag) - min(mag)`` and detections per day (NaN if too few)."""
    n_obj = band_offsets.shape[0]
    n_bands = band_offsets.shape[1] - 1
    out = np.full((n_obj, 2 * n_bands), np.nan)
    for i in numba.prange(n_obj):
        for b in range(n_bands):
            s, e = band_offsets[i, b], band_offsets[i, b + 1]
            if e - s < min_points:
                continue
            out[i, 2 * b] = np.max(mag[s:e]) - np.min(mag[s:e])
            span = time[e - 1] - time[s]
            if span > 0:
                out[i, 2 * b + 1] = (e - s) / span
    return out


class RangeRateFamily(FeatureFamily):
    """``mag_range_<fid>`` and ``det_rate_<fid>`` (per band)."""

    required = ("time", "mag")

    def __init__(self, min_points: int = 2, bands=(1, 2)):
        self.min_points = int(min_points)
        self.bands = tuple(bands)

    @property
    def names(self) -> list[str]:
        return per_band_names(("mag_range", "det_rate"), self.bands)

    def compute(self, lc: PackedLightCurves, context: dict) -> np.ndarray:
        out = range_rate_kernel(lc.time, lc.mag, lc.band_offsets, self.min_points)
        cols = [c for b in self.bands for c in (2 * lc.bands.index(b), 2 * lc.bands.index(b) + 1)]
        return out[:, cols]


class RangeOverDeltaFamily(FeatureFamily):
    """A family that depends on another one's output: ``mag_range_<fid> / delta_mag_fid_<fid>``."""

    required = ()
    depends = ("mag_range_1", "mag_range_2", "delta_mag_fid_1", "delta_mag_fid_2")

    @property
    def names(self) -> list[str]:
        return ["range_ratio_1", "range_ratio_2"]

    def compute(self, lc: PackedLightCurves, context: dict) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.column_stack([
                context["mag_range_1"] / context["delta_mag_fid_1"],
                context["mag_range_2"] / context["delta_mag_fid_2"],
            ])


def demo() -> pd.DataFrame:
    """Features of two synthetic objects."""
    rng = np.random.default_rng(0)
    rows = []
    for oid in ("obj_a", "obj_b"):
        for fid in (1, 2):
            t = np.sort(rng.uniform(58000, 58100, 12))
            rows.append(pd.DataFrame({"oid": oid, "fid": fid, "mjd": t,
                                      "magpsf": 18 + 0.3 * np.sin(t), "sigmapsf": 0.05}))
    detections = pd.concat(rows, ignore_index=True)
    lc = pack_lightcurves(detections)
    # dependency order is resolved by the Extractor, whatever the list order
    extractor = Extractor([RangeOverDeltaFamily(), RangeRateFamily(), SNDetectionFamily()])
    return extractor.compute(lc)


if __name__ == "__main__":
    print(demo().T)
