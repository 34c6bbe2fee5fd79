"""Light-curve features: ALeRCE's full set (178), numba-accelerated.

Typical use::

    from alerce.features import extract_features
    features = extract_features(detections, non_detections, metadata)

Building blocks: :func:`preprocess_detections` (reference 2.1), :func:`pack_lightcurves`
(flat arrays + offsets), :class:`Extractor` (families in dependency order) and one small
:class:`FeatureFamily` class per family. Family classes are imported lazily.
"""

from __future__ import annotations

import importlib

from alerce.features.base import BANDS, FeatureFamily, PackedLightCurves, per_band_names

_LAZY = {
    "preprocess_detections": "alerce.features.preprocess",
    "preprocess_non_detections": "alerce.features.preprocess",
    "pack_lightcurves": "alerce.features.pack",
    "Extractor": "alerce.features.extractor",
    "default_extractor": "alerce.features.extractor",
    "extract_features": "alerce.features.extractor",
    "feature_rows": "alerce.features.step",
    "SNDetectionFamily": "alerce.features.sn",
    "SPMFamily": "alerce.features.spm",
    "ColorFamily": "alerce.features.colors",
    "WiseColorFamily": "alerce.features.colors",
    "MetadataFamily": "alerce.features.other",
    "TurboFatsFamily": "alerce.features.turbofats",
    "GPDRWFamily": "alerce.features.drw",
    "MHPSFamily": "alerce.features.mhps",
    "IQRFamily": "alerce.features.iqr",
    "PeriodFamily": "alerce.features.periodogram",
    "FoldedKimFamily": "alerce.features.folded",
    "HarmonicsFamily": "alerce.features.harmonics",
}

__all__ = ["BANDS", "FeatureFamily", "PackedLightCurves", "per_band_names", *_LAZY]


def __getattr__(name: str):
    try:
        module = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'alerce.features' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
