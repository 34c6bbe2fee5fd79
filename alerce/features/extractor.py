"""Run feature families in dependency order over packed light curves.

:class:`Extractor` composes :class:`~alerce.features.base.FeatureFamily` objects; each family's
output columns become available to later families through ``context`` (e.g. the folded and
harmonics families read ``Multiband_period``). :func:`default_extractor` composes ALeRCE's full
178-feature set and :func:`extract_features` chains preprocessing, packing and extraction.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from alerce.features.base import FeatureFamily, PackedLightCurves
from alerce.features.incremental import StoredFeatures, previous_band_features, same_band_points
from alerce.features.pack import pack_lightcurves
from alerce.features.preprocess import preprocess_detections, preprocess_non_detections

__all__ = ["Extractor", "default_extractor", "extract_features", "FAMILY_CLASSES"]

#: (module, class) of every family of the default set, in ALeRCE's output order.
FAMILY_CLASSES: tuple[tuple[str, str], ...] = (
    ("alerce.features.turbofats", "TurboFatsFamily"),
    ("alerce.features.drw", "GPDRWFamily"),
    ("alerce.features.mhps", "MHPSFamily"),
    ("alerce.features.iqr", "IQRFamily"),
    ("alerce.features.sn", "SNDetectionFamily"),
    ("alerce.features.spm", "SPMFamily"),
    ("alerce.features.periodogram", "PeriodFamily"),
    ("alerce.features.folded", "FoldedKimFamily"),
    ("alerce.features.harmonics", "HarmonicsFamily"),
    ("alerce.features.colors", "ColorFamily"),
    ("alerce.features.colors", "WiseColorFamily"),
    ("alerce.features.other", "MetadataFamily"),
)


class Extractor:
    """Compute several feature families over packed light curves.

    Parameters
    ----------
    families : sequence of FeatureFamily
        Families to run. Each family's ``depends`` must be produced by another family of the list
        or be passed in ``context`` to :meth:`compute`. Output columns keep the order of
        ``families``; execution follows dependencies.

    Raises
    ------
    ValueError
        On duplicate feature names or a dependency cycle.
    """

    def __init__(self, families: Sequence[FeatureFamily]):
        self.families: list[FeatureFamily] = list(families)
        self._names = [list(f.names) for f in self.families]
        seen: dict[str, str] = {}
        for fam, names in zip(self.families, self._names):
            for name in names:
                if name in seen:
                    raise ValueError(
                        f"feature {name!r} is produced by both {seen[name]} and "
                        f"{type(fam).__name__}"
                    )
                seen[name] = type(fam).__name__
        self._producer = {name: k for k, names in enumerate(self._names) for name in names}

    @property
    def names(self) -> list[str]:
        """All output feature names, family by family."""
        return [n for names in self._names for n in names]

    def order(self, available: Sequence[str] = ()) -> list[FeatureFamily]:
        """Families in an execution order that satisfies every ``depends``.

        Parameters
        ----------
        available : sequence of str
            Feature names supplied from outside (``context``); a family depending on them needs no
            producer in the list.

        Raises
        ------
        ValueError
            If a dependency has no producer or the dependencies form a cycle.
        """
        available = set(available)
        state = [0] * len(self.families)  # 0 new, 1 visiting, 2 done
        out: list[int] = []

        def visit(k: int, path: tuple[str, ...]) -> None:
            if state[k] == 2:
                return
            name = type(self.families[k]).__name__
            if state[k] == 1:
                raise ValueError(f"feature dependency cycle: {' -> '.join(path + (name,))}")
            state[k] = 1
            for dep in self.families[k].depends:
                if dep in self._producer:
                    visit(self._producer[dep], path + (name,))
                elif dep not in available:
                    raise ValueError(
                        f"{name} depends on {dep!r}, which no family of this extractor produces "
                        "and which is not in the given context"
                    )
            state[k] = 2
            out.append(k)

        for k in range(len(self.families)):
            visit(k, ())
        return [self.families[k] for k in out]

    def compute(
        self, lc: PackedLightCurves, context: Mapping[str, np.ndarray] | None = None, *,
        reuse: np.ndarray | None = None, previous: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """All features of every packed object.

        Parameters
        ----------
        lc : PackedLightCurves
            Packed light curves (see :func:`~alerce.features.pack.pack_lightcurves`).
        context : mapping, optional
            Extra per-object arrays (length ``len(lc)``) visible to the families, e.g. an external
            ``Multiband_period``. Families of this extractor override same-named entries only for
            families that run after them.
        reuse : ndarray of bool, optional
            Shape ``(len(lc), len(lc.bands))``: True where the object's band has exactly the
            detections it had when ``previous`` was computed. The
            :attr:`~alerce.features.base.FeatureFamily.band_local` families skip those bands and
            take their columns from ``previous``; every other family runs as usual.
        previous : pandas.DataFrame, optional
            Earlier features indexed by oid, with every band-local column of the reused bands
            (see :mod:`alerce.features.incremental`).

        Returns
        -------
        pandas.DataFrame
            float64, indexed by ``oid``, columns :attr:`names`.
        """
        n = len(lc)
        if reuse is not None:
            reuse = np.asarray(reuse, dtype=bool)
            if not reuse.any():
                reuse = None
            elif previous is None:
                raise ValueError("reuse needs the previous features")
            else:
                reduced = lc.without_bands(reuse)
        ctx: dict[str, np.ndarray] = {}
        for key, value in (context or {}).items():
            arr = np.ascontiguousarray(value, dtype=np.float64)
            if arr.shape != (n,):
                raise ValueError(f"context[{key!r}] has shape {arr.shape}, expected ({n},)")
            ctx[key] = arr
        results: dict[int, np.ndarray] = {}
        for fam in self.order(available=tuple(ctx)):
            k = self.families.index(fam)
            names = self._names[k]
            for attr in fam.required:
                if not hasattr(lc, attr):
                    raise ValueError(f"{type(fam).__name__} requires lc.{attr}, which is missing")
            skip = reuse is not None and fam.band_local
            values = np.asarray(fam.compute(reduced if skip else lc, ctx), dtype=np.float64)
            if values.shape != (n, len(names)):
                raise ValueError(
                    f"{type(fam).__name__}.compute returned shape {values.shape}, "
                    f"expected ({n}, {len(names)})"
                )
            if skip:
                _take_previous(values, names, lc, reuse, previous)
            results[k] = values
            for j, name in enumerate(names):
                ctx[name] = np.ascontiguousarray(values[:, j])  # C-contiguous for numba kernels
        data = (np.hstack([results[k] for k in range(len(self.families))])
                if self.families else np.empty((n, 0)))
        index = pd.Index(np.asarray(lc.oids, dtype=object), name="oid")
        return pd.DataFrame(data, index=index, columns=self.names)

    def extract(
        self,
        detections: pd.DataFrame,
        non_detections: pd.DataFrame | None = None,
        metadata: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Preprocess, pack and compute (see :func:`extract_features`)."""
        return extract_features(detections, non_detections, metadata, extractor=self)

    def __repr__(self) -> str:
        fams = ", ".join(type(f).__name__ for f in self.families)
        return f"Extractor([{fams}], {len(self.names)} features)"


def _take_previous(values: np.ndarray, names: Sequence[str], lc: PackedLightCurves,
                   reuse: np.ndarray, previous: pd.DataFrame) -> None:
    """Overwrite, in place, the columns of the reused (object, band) pairs with ``previous``."""
    rows = previous.index.get_indexer(pd.Index(np.asarray(lc.oids, dtype=object)))
    for j, name in enumerate(names):
        band = int(name.rsplit("_", 1)[1])
        if band not in lc.bands:
            continue
        take = reuse[:, lc.bands.index(band)]
        if not take.any():
            continue
        if name not in previous.columns or (rows[take] < 0).any():
            raise ValueError(f"reuse asks for previous {name!r} of objects the previous features lack")
        values[take, j] = previous[name].to_numpy(dtype=np.float64, na_value=np.nan)[rows[take]]


def default_extractor(strict: bool = False) -> Extractor:
    """ALeRCE's full feature set (178 features with every family available).

    Parameters
    ----------
    strict : bool
        Raise ImportError when a family module is missing instead of warning and skipping it.
    """
    families = []
    for module, cls in FAMILY_CLASSES:
        try:
            klass = getattr(importlib.import_module(module), cls)
        except (ImportError, AttributeError) as exc:
            if strict:
                raise ImportError(f"feature family {module}.{cls} is unavailable: {exc}") from exc
            warnings.warn(f"feature family {module}.{cls} is unavailable and skipped: {exc}",
                          RuntimeWarning, stacklevel=2)
            continue
        families.append(klass())
    return Extractor(families)


def extract_features(
    detections: pd.DataFrame,
    non_detections: pd.DataFrame | None = None,
    metadata: pd.DataFrame | None = None,
    extractor: Extractor | None = None,
    stored: StoredFeatures | None = None,
) -> pd.DataFrame:
    """Light-curve features of every object with enough clean detections.

    Parameters
    ----------
    detections : pandas.DataFrame
        Corrected detections (:data:`alerce.batch.DETECTION_COLUMNS` + ``magpsf_corr``,
        ``sigmapsf_corr_ext``, ``corrected``), all bands.
    non_detections : pandas.DataFrame, optional
        ``oid, fid, mjd, diffmaglim``.
    metadata : pandas.DataFrame, optional
        Per-object frame (``oid`` column or index): ``sgscore1``, AllWISE ``W1mag, W2mag, W3mag``
        and optionally ``corrected`` (then used for the magnitude choice, ALeRCE batch rule).
    extractor : Extractor, optional
        Defaults to :func:`default_extractor`.
    stored : StoredFeatures, optional
        The stored detections, object rows and features of these objects: the band-local
        families skip every band whose preprocessed points equal the stored ones and take the
        stored values (:mod:`alerce.features.incremental`; same result, less work).

    Returns
    -------
    pandas.DataFrame
        float64 features indexed by ``oid``. Objects removed by preprocessing (fewer than 6 clean
        detections in both g and r) are absent. ``attrs["reused_bands"]``: how many (object, band)
        pairs took stored values.
    """
    extractor = extractor if extractor is not None else default_extractor()
    det = _preprocessed(detections, metadata)
    nd = None
    if non_detections is not None and len(non_detections):
        nd = non_detections.reset_index() if "oid" not in non_detections.columns else non_detections
        nd = preprocess_non_detections(nd)
    lc = pack_lightcurves(det, nd, metadata=metadata)
    reuse, previous = _reusable(extractor, lc, stored)
    features = extractor.compute(lc, reuse=reuse, previous=previous)
    features.attrs["reused_bands"] = int(reuse.sum()) if reuse is not None else 0
    return features


def _preprocessed(detections: pd.DataFrame, metadata: pd.DataFrame | None) -> pd.DataFrame:
    # the object table's ``corrected`` flag (``oid`` column or index) decides the magnitudes
    objects = metadata if metadata is not None and "corrected" in metadata.columns else None
    det = detections.reset_index() if "oid" not in detections.columns else detections
    return preprocess_detections(det, objects)


def _reusable(extractor: Extractor, lc: PackedLightCurves,
              stored: StoredFeatures | None) -> tuple[np.ndarray | None, pd.DataFrame | None]:
    """Which (object, band) pairs may take their band-local features from ``stored``."""
    names = [n for fam in extractor.families if fam.band_local for n in fam.names]
    if stored is None or not names or not len(lc) or not len(stored.features) or not len(stored.detections):
        return None, None
    old = _preprocessed(stored.detections, stored.objects)
    if not len(old):
        return None, None
    same = same_band_points(lc, pack_lightcurves(old, None, bands=lc.bands))
    previous, complete = previous_band_features(stored.features, names, stored.version, lc.oids, lc.bands)
    return same & complete, previous
