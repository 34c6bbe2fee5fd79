"""Constants of the stamp classifier (reference section 4)."""

from __future__ import annotations

import math

#: Output classes, in model order (reference 4.5).
CLASSES: tuple[str, ...] = ("AGN", "SN", "VS", "asteroid", "bogus")

#: ``classifier_name`` written to the ``probability`` table.
CLASSIFIER_NAME = "stamp_classifier"

#: Side of the raw cutouts and of the centre crop (indices 21..41 of 0..62).
STAMP_SIZE = 63
CROP_SIZE = 21
CROP_START = (STAMP_SIZE - CROP_SIZE) // 2  # 21

#: The 23 metadata features, in model order (reference 4.2).
FEATURE_NAMES: tuple[str, ...] = (
    "sgscore1", "distpsnr1", "sgscore2", "distpsnr2", "sgscore3", "distpsnr3", "isdiffpos",
    "fwhm", "magpsf", "sigmapsf", "ra", "dec", "diffmaglim", "classtar", "ndethist", "ncovhist",
    "ecl_lat", "ecl_long", "gal_lat", "gal_long", "non_detections", "chinr", "sharpnr",
)

#: Clipping bounds ``(low, high)``; ``None`` means unbounded (``FEATURES_CLIPPING_DICT``).
FEATURE_CLIPPING: dict[str, tuple[float | None, float | None]] = {
    "sgscore1": (-1.0, None), "distpsnr1": (-1.0, None),
    "sgscore2": (-1.0, None), "distpsnr2": (-1.0, None),
    "sgscore3": (-1.0, None), "distpsnr3": (-1.0, None),
    "fwhm": (None, 10.0), "ndethist": (None, 20.0), "ncovhist": (None, 3000.0),
    "chinr": (-1.0, 15.0), "sharpnr": (-1.0, 1.5), "non_detections": (None, 2000.0),
}

_ISDIFFPOS_STD = 0.471
#: The stored isdiffpos mean decodes to 0 (an int64 in the original pickle).  For a 0/1 variable
#: ``std**2 = p (1 - p)``; the root below 0.5 (negative alerts are the minority) is re-derived here.
ISDIFFPOS_MEAN = 0.5 - math.sqrt(0.25 - _ISDIFFPOS_STD**2)  # ~0.332

#: z-score statistics ``(mean, std)`` of the deployed model's training set (reference 4.2 table).
FEATURE_NORM_STATS: dict[str, tuple[float, float]] = {
    "sgscore1": (0.704, 0.380), "distpsnr1": (3.94, 5.95),
    "sgscore2": (0.462, 0.426), "distpsnr2": (10.89, 7.16),
    "sgscore3": (0.391, 0.528), "distpsnr3": (13.67, 8.04),
    "isdiffpos": (ISDIFFPOS_MEAN, _ISDIFFPOS_STD),
    "fwhm": (2.618, 1.629), "magpsf": (18.917, 1.408), "sigmapsf": (0.1415, 0.0601),
    "ra": (181.08, 96.24), "dec": (22.15, 24.43), "diffmaglim": (20.217, 0.602),
    "classtar": (0.857, 0.203), "ndethist": (5.344, 6.553), "ncovhist": (291.4, 424.5),
    "ecl_lat": (21.68, 27.23), "ecl_long": (166.73, 95.03),
    "gal_lat": (17.00, 38.88), "gal_long": (140.10, 84.23),
    "non_detections": (273.55, 390.17), "chinr": (1.180, 1.512), "sharpnr": (-0.0287, 0.2023),
}
