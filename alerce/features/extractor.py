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
        self, lc: PackedLightCurves, context: Mapping[str, np.ndarray] | None = None
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

        Returns
        -------
        pandas.DataFrame
            float64, indexed by ``oid``, columns :attr:`names`.
        """
        n = len(lc)
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
            values = np.asarray(fam.compute(lc, ctx), dtype=np.float64)
            if values.shape != (n, len(names)):
                raise ValueError(
                    f"{type(fam).__name__}.compute returned shape {values.shape}, "
                    f"expected ({n}, {len(names)})"
                )
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

    Returns
    -------
    pandas.DataFrame
        float64 features indexed by ``oid``. Objects removed by preprocessing (fewer than 6 clean
        detections in both g and r) are absent.
    """
    extractor = extractor if extractor is not None else default_extractor()
    # the object table's ``corrected`` flag (``oid`` column or index) decides the magnitudes
    objects = metadata if metadata is not None and "corrected" in metadata.columns else None
    det = detections.reset_index() if "oid" not in detections.columns else detections
    det = preprocess_detections(det, objects)
    nd = None
    if non_detections is not None and len(non_detections):
        nd = non_detections.reset_index() if "oid" not in non_detections.columns else non_detections
        nd = preprocess_non_detections(nd)
    lc = pack_lightcurves(det, nd, metadata=metadata)
    return extractor.compute(lc)
