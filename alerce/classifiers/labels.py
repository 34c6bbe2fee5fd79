"""Map several catalogues' class labels onto the classifier taxonomy (paper section 3.2).

Each catalogue gets an ordered list of ``(pattern, target)`` rules: ``pattern`` is an exact
name or an :mod:`fnmatch` glob (``"SN Ia*"``), ``target`` a taxonomy class or ``None`` (drop).
The first matching rule wins; labels matching no rule are dropped. When catalogues disagree on
an object, the one earliest in ``priority`` wins (ALeRCE's prioritized cross-match).

Shipped mappings: :data:`BTS_RULES` (Bright Transient Survey ``type``), :data:`TNS_RULES`
(TNS object types, also used for the superphot training set), :data:`ALERCE_RULES` (ALeRCE's
``classALeRCE`` labels, including the legacy names of reference 3.1: ``EA``, ``EB/EW``,
``Ceph``, ``RSCVn``, ``SNIIb``, ``SNIIn``).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from alerce.classifiers.taxonomy import DEFAULT_TAXONOMY, Taxonomy

__all__ = ["BTS_RULES", "TNS_RULES", "ALERCE_RULES", "DEFAULT_MAPPINGS", "DEFAULT_PRIORITY",
           "map_classes", "map_labels", "read_bts_labels", "read_superphot_labels",
           "read_alerce_labels"]

Rule = tuple[str, "str | None"]

#: Bright Transient Survey ``type`` column.
BTS_RULES: tuple[Rule, ...] = (
    ("SN Ia*", "SNIa"),
    ("SN II*", "SNII"),
    ("SN Ib*", "SNIbc"),
    ("SN Ic*", "SNIbc"),
    ("SLSN*", "SLSN"),
    ("nova", "CV/Nova"),
    ("TDE*", None),
)

#: TNS object types (also the superphot ``LABEL`` column).
TNS_RULES: tuple[Rule, ...] = (
    *BTS_RULES,
    ("Nova", "CV/Nova"),
    ("CV", "CV/Nova"),
    ("AGN", "AGN"),
    ("QSO", "QSO"),
    ("Blazar", "Blazar"),
    ("BL Lac", "Blazar"),
    ("YSO", "YSO"),
    ("Varstar", None),
    ("SN", None),
    ("SN I", None),
)

#: ALeRCE ``classALeRCE`` labels, current and legacy names (reference 3.1).
ALERCE_RULES: tuple[Rule, ...] = (
    *((c, c) for c in DEFAULT_TAXONOMY.classes),
    ("Ceph", "CEP"),
    ("EA", "E"),
    ("EB", "E"),
    ("EW", "E"),
    ("EB/EW", "E"),
    ("RSCVn", "Periodic-Other"),
    ("SNIIb", "SNII"),
    ("SNIIn", "SNII"),
    ("TDE", None),
    ("ZZ", None),
)

DEFAULT_MAPPINGS: dict[str, tuple[Rule, ...]] = {
    "alerce": ALERCE_RULES,
    "bts": BTS_RULES,
    "superphot": TNS_RULES,
    "tns": TNS_RULES,
}

#: Default priority: ALeRCE's curated labels, then BTS spectroscopy, then TNS reports.
DEFAULT_PRIORITY: tuple[str, ...] = ("alerce", "bts", "superphot", "tns")


def map_classes(values: pd.Series | Sequence[str], rules: Sequence[Rule],
                taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> pd.Series:
    """Apply ``rules`` to raw class names.

    Returns
    -------
    pandas.Series
        object dtype, same index as ``values`` (or 0..n-1); ``None`` where no rule maps the name.

    Raises
    ------
    ValueError
        If a rule targets a class that is not in ``taxonomy``.
    """
    bad = sorted({t for _, t in rules if t is not None and t not in taxonomy})
    if bad:
        raise ValueError(f"mapping targets not in taxonomy {taxonomy.version}: {bad}")
    series = values if isinstance(values, pd.Series) else pd.Series(list(values), dtype=object)
    lookup: dict[str, str | None] = {}
    for raw in pd.unique(series.dropna().astype(str)):
        name = raw.strip()
        target = None
        for pattern, tgt in rules:
            if name == pattern or fnmatch.fnmatchcase(name, pattern):
                target = tgt
                break
        lookup[raw] = target
    keys = series.astype(object).where(series.notna(), None)
    mapped = pd.Series(keys.to_numpy(dtype=object), index=series.index, dtype=object).map(
        {k: v for k, v in lookup.items() if v is not None})
    values = mapped.to_numpy(dtype=object)
    values[pd.isna(values)] = None
    return pd.Series(values, index=series.index, dtype=object)


def map_labels(frames: Mapping[str, pd.DataFrame],
               mapping: Mapping[str, Sequence[Rule]] | None = None,
               priority: Sequence[str] | None = None,
               taxonomy: Taxonomy = DEFAULT_TAXONOMY) -> pd.DataFrame:
    """Merge several catalogues' labels into one label per object.

    Parameters
    ----------
    frames : mapping of catalogue name to DataFrame
        Each with columns ``oid`` and ``class`` (the catalogue's own class names).
    mapping : mapping of catalogue name to rules, optional
        Default :data:`DEFAULT_MAPPINGS`. Every catalogue of ``frames`` needs rules.
    priority : sequence of str, optional
        Catalogue names, most trusted first (default: :data:`DEFAULT_PRIORITY`, then the
        remaining catalogues in ``frames`` order).
    taxonomy : Taxonomy

    Returns
    -------
    pandas.DataFrame
        ``oid, class, source, original_class, n_sources, conflict``: one row per object that
        at least one catalogue maps; ``source`` is the winning catalogue, ``n_sources`` how many
        catalogues mapped the object and ``conflict`` whether they disagreed.

    Raises
    ------
    ValueError
        A frame without ``oid``/``class`` columns or a catalogue without rules.
    """
    mapping = DEFAULT_MAPPINGS if mapping is None else mapping
    order = [c for c in (priority if priority is not None else DEFAULT_PRIORITY) if c in frames]
    order += [c for c in frames if c not in order]
    parts = []
    for rank, name in enumerate(order):
        frame = frames[name]
        missing = [c for c in ("oid", "class") if c not in frame.columns]
        if missing:
            raise ValueError(f"label frame {name!r} lacks column(s) {missing}")
        if name not in mapping:
            raise ValueError(f"no mapping rules for catalogue {name!r}; known: {sorted(mapping)}")
        mapped = map_classes(frame["class"].reset_index(drop=True), mapping[name], taxonomy)
        part = pd.DataFrame({
            "oid": frame["oid"].astype(str).to_numpy(dtype=object),
            "class": mapped.to_numpy(dtype=object),
            "source": name,
            "original_class": frame["class"].astype(str).to_numpy(dtype=object),
            "_rank": rank,
        })
        parts.append(part[part["class"].notna()].drop_duplicates("oid", keep="first"))
    columns = ["oid", "class", "source", "original_class", "n_sources", "conflict"]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns})
    allrows = pd.concat(parts, ignore_index=True)
    stats = allrows.groupby("oid", sort=False).agg(n_sources=("class", "size"),
                                                   n_classes=("class", "nunique"))
    best = allrows.sort_values(["oid", "_rank"], kind="stable").drop_duplicates("oid")
    best = best.join(stats, on="oid")
    best["conflict"] = best["n_classes"].to_numpy() > 1
    best["n_sources"] = best["n_sources"].astype(np.int64)
    return best[columns].reset_index(drop=True)


def read_bts_labels(catalog_csv: str | Path) -> pd.DataFrame:
    """``oid, class`` (raw BTS ``type``) from a BTS catalogue CSV (``ZTFID``, ``type``)."""
    df = pd.read_csv(catalog_csv, usecols=["ZTFID", "type"])
    return pd.DataFrame({"oid": df["ZTFID"].astype(str), "class": df["type"].astype(str)})


def read_superphot_labels(training_csv: str | Path) -> pd.DataFrame:
    """``oid, class`` (TNS type) from superphot's ``training_set.csv`` (``NAME``, ``LABEL``)."""
    df = pd.read_csv(training_csv, usecols=["NAME", "LABEL"])
    return pd.DataFrame({"oid": df["NAME"].astype(str), "class": df["LABEL"].astype(str)})


def read_alerce_labels(labels_csv: str | Path) -> pd.DataFrame:
    """``oid, class`` from an ALeRCE labels CSV (``objectId``/``oid``, ``classALeRCE``)."""
    df = pd.read_csv(labels_csv)
    oid = "objectId" if "objectId" in df.columns else "oid"
    if oid not in df.columns or "classALeRCE" not in df.columns:
        raise ValueError(f"{labels_csv}: expected columns objectId/oid and classALeRCE, got "
                         f"{list(df.columns)}")
    return pd.DataFrame({"oid": df[oid].astype(str), "class": df["classALeRCE"].astype(str)})
