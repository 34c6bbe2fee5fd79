"""Versioned class taxonomy of the hierarchical light-curve classifier (reference section 3.1).

A :class:`Taxonomy` is an ordered mapping ``group -> classes``. ALeRCE's deployed taxonomy
(:data:`DEFAULT_TAXONOMY`) has three top-level groups (``Stochastic``, ``Periodic``,
``Transient``) and 15 classes; the output order is the groups in that order and, inside a group,
the classes in alphabetical order (scikit-learn's ``classes_`` order of each child model).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

__all__ = ["Taxonomy", "DEFAULT_TAXONOMY", "CLASSIFIER_NAMES"]

#: ``classifier_name`` of the probability rows (reference 3.5): final, top and per group.
CLASSIFIER_NAMES = {
    "final": "lc_classifier",
    "top": "lc_classifier_top",
    "Stochastic": "lc_classifier_stochastic",
    "Periodic": "lc_classifier_periodic",
    "Transient": "lc_classifier_transient",
}


@dataclass(frozen=True)
class Taxonomy:
    """Two-level class hierarchy with a name and a version.

    Parameters
    ----------
    groups : mapping of str to sequence of str
        Top-level group -> its classes. Group order is kept; classes are sorted within a group.
    name : str
        Classifier name (the ``taxonomy`` table's ``classifier_name``).
    version : str
        Classifier version (``classifier_version``).

    Raises
    ------
    ValueError
        If a group is empty, a class appears twice or a class shares a group's name.
    """

    groups: tuple[tuple[str, tuple[str, ...]], ...]
    name: str = "lc_classifier"
    version: str = "1.0.0"
    _group_of: dict = field(init=False, repr=False, compare=False, hash=False)

    def __init__(self, groups: Mapping[str, Iterable[str]] | Iterable, name: str = "lc_classifier",
                 version: str = "1.0.0"):
        items = groups.items() if isinstance(groups, Mapping) else groups
        norm = tuple((str(g), tuple(sorted(str(c) for c in cs))) for g, cs in items)
        seen: dict[str, str] = {}
        for g, cs in norm:
            if not cs:
                raise ValueError(f"taxonomy group {g!r} has no classes")
            for c in cs:
                if c in seen:
                    raise ValueError(f"class {c!r} appears in groups {seen[c]!r} and {g!r}")
                seen[c] = g
        names = {g for g, _ in norm}
        if len(names) != len(norm):
            raise ValueError("duplicate group names in taxonomy")
        if names & set(seen):
            raise ValueError(f"names used both as group and class: {sorted(names & set(seen))}")
        object.__setattr__(self, "groups", norm)
        object.__setattr__(self, "name", str(name))
        object.__setattr__(self, "version", str(version))
        object.__setattr__(self, "_group_of", seen)

    # ----------------------------------------------------------------- queries
    @property
    def group_names(self) -> tuple[str, ...]:
        """Top-level groups, in output order."""
        return tuple(g for g, _ in self.groups)

    @property
    def classes(self) -> tuple[str, ...]:
        """All leaf classes: group by group, alphabetical within a group."""
        return tuple(c for _, cs in self.groups for c in cs)

    def classes_of(self, group: str) -> tuple[str, ...]:
        """Classes of one group (KeyError naming the group if unknown)."""
        for g, cs in self.groups:
            if g == group:
                return cs
        raise KeyError(f"unknown taxonomy group {group!r}; known: {list(self.group_names)}")

    def group_of(self, cls: str) -> str:
        """Top-level group of a class (KeyError naming the class if unknown)."""
        try:
            return self._group_of[cls]
        except KeyError:
            raise KeyError(f"unknown class {cls!r}; known: {list(self.classes)}") from None

    def map_groups(self, labels: Iterable[str]) -> list[str]:
        """Group of every label (ValueError listing the unknown labels)."""
        labels = [str(x) for x in labels]
        unknown = sorted(set(labels) - set(self._group_of))
        if unknown:
            raise ValueError(f"labels not in taxonomy {self.name} {self.version}: {unknown}")
        return [self._group_of[x] for x in labels]

    def __contains__(self, cls: object) -> bool:
        return cls in self._group_of

    # ----------------------------------------------------------------- serialization
    def to_dict(self) -> dict:
        """Plain JSON-able dict (``name``, ``version``, ``groups``)."""
        return {"name": self.name, "version": self.version,
                "groups": {g: list(cs) for g, cs in self.groups}}

    def to_json(self) -> str:
        """JSON text of :meth:`to_dict`."""
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: Mapping) -> Taxonomy:
        """Inverse of :meth:`to_dict` (ValueError on a missing key)."""
        try:
            return cls(data["groups"], name=data["name"], version=data["version"])
        except KeyError as exc:
            raise ValueError(f"taxonomy dict lacks key {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> Taxonomy:
        """Inverse of :meth:`to_json`."""
        return cls.from_dict(json.loads(text))

    def with_version(self, version: str) -> Taxonomy:
        """Same groups under another version."""
        return Taxonomy(self.groups, name=self.name, version=version)

    def table_rows(self, classifier_version: str | None = None) -> pd.DataFrame:
        """Rows of the ``taxonomy`` table, one per classifier (final, top, per group).

        Parameters
        ----------
        classifier_version : str, optional
            Defaults to :attr:`version`.

        Returns
        -------
        pandas.DataFrame
            ``classifier_name, classifier_version, classes`` with ``classes`` a JSON list text.
        """
        version = self.version if classifier_version is None else str(classifier_version)
        rows = [(self.name, list(self.classes)), (f"{self.name}_top", list(self.group_names))]
        rows += [(f"{self.name}_{g.lower()}", list(cs)) for g, cs in self.groups]
        return pd.DataFrame({
            "classifier_name": [r[0] for r in rows],
            "classifier_version": [version] * len(rows),
            "classes": [json.dumps(r[1]) for r in rows],
        })


#: ALeRCE's deployed 15-class taxonomy (LPV periodic, names ``E`` and ``CEP``).
DEFAULT_TAXONOMY = Taxonomy(
    {
        "Stochastic": ("AGN", "Blazar", "CV/Nova", "QSO", "YSO"),
        "Periodic": ("CEP", "DSCT", "E", "LPV", "Periodic-Other", "RRL"),
        "Transient": ("SLSN", "SNII", "SNIa", "SNIbc"),
    },
    name="lc_classifier",
    version="hierarchical_random_forest_1.0.0",
)
