"""Safe model bundles: skops files (never bare pickle) plus a JSON model card.

A bundle is a folder with

``model.skops``
    The scikit-learn objects (a dict, e.g. ``{"classifier": ..., "outliers": ...}``) written by
    :func:`skops.io.dump`. On load only the types of :data:`TRUSTED_TYPES` (and the types skops
    trusts itself: numpy, builtins, sklearn's trees and forests) may be constructed.
``model_card.json``
    Name, version, taxonomy, feature list, training data, metrics, library versions and the
    SHA-256 of ``model.skops`` (a modified file is refused).
"""

from __future__ import annotations

import hashlib
import json
import platform
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import skops.io as sio
from skops.io.exceptions import UntrustedTypesFoundException

__all__ = ["TRUSTED_TYPES", "BundleError", "Bundle", "save_bundle", "load_bundle",
           "library_versions", "load_card", "MODEL_FILE", "CARD_FILE"]

MODEL_FILE = "model.skops"
CARD_FILE = "model_card.json"

#: Types beyond skops' defaults that a bundle may contain.
TRUSTED_TYPES: tuple[str, ...] = (
    "alerce.classifiers.lc.model.HierarchicalRandomForest",
    "alerce.classifiers.lc.preprocessing.FeatureImputer",
    "alerce.classifiers.outliers.GroupIsolationForest",
    "alerce.classifiers.taxonomy.Taxonomy",
    "imblearn.ensemble._forest.BalancedRandomForestClassifier",
    "imblearn.pipeline.Pipeline",
    "imblearn.under_sampling._prototype_selection._random_under_sampler.RandomUnderSampler",
    "sklearn.tree._tree.Tree",
    "sklearn.ensemble._iforest.IsolationForest",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.tree._classes.DecisionTreeClassifier",
)


class BundleError(ValueError):
    """A bundle is missing, incomplete, modified or holds a type that is not trusted."""


@dataclass
class Bundle:
    """A loaded bundle: the objects of ``model.skops`` and the model card."""

    objects: dict
    card: dict
    path: Path

    def __getitem__(self, key: str) -> Any:
        return self.objects[key]


def library_versions(packages: Iterable[str] = ("numpy", "pandas", "scikit-learn",
                                                 "imbalanced-learn", "skops")) -> dict:
    """Installed versions of the libraries that matter for unpickling/predicting."""
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_bundle(out_dir: str | Path, objects: Mapping[str, Any], card: Mapping[str, Any]) -> Path:
    """Write ``objects`` with skops and ``card`` (plus hash and library versions) as JSON.

    Parameters
    ----------
    out_dir : str or Path
        Folder (created if needed; existing bundle files are overwritten).
    objects : mapping of str to object
        The models, e.g. ``{"classifier": hrf, "outliers": detector}``.
    card : mapping
        JSON-able model card fields (``name``, ``version``, ``taxonomy`` ...).

    Returns
    -------
    Path
        The bundle folder.

    Raises
    ------
    BundleError
        If an object holds a type outside :data:`TRUSTED_TYPES` (it could not be loaded back).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_path = out / MODEL_FILE
    sio.dump(dict(objects), model_path, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    bad = sorted(set(sio.get_untrusted_types(file=model_path)) - set(TRUSTED_TYPES))
    if bad:
        model_path.unlink()
        raise BundleError(f"cannot bundle untrusted type(s) {bad}; extend TRUSTED_TYPES "
                          "only after review")
    full = dict(card)
    full["model_file"] = MODEL_FILE
    full["model_sha256"] = _sha256(model_path)
    full["objects"] = sorted(objects)
    full.setdefault("library_versions", library_versions())
    (out / CARD_FILE).write_text(json.dumps(full, indent=2, sort_keys=False, default=_json_default))
    return out


def _json_default(value):
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"model card value of type {type(value).__name__} is not JSON-able")


def load_card(path: str | Path) -> dict:
    """The model card of a bundle folder (BundleError naming the file if absent/invalid)."""
    card_path = Path(path) / CARD_FILE
    try:
        return json.loads(card_path.read_text())
    except FileNotFoundError:
        raise BundleError(f"{card_path}: model card not found") from None
    except json.JSONDecodeError as exc:
        raise BundleError(f"{card_path}: invalid JSON at offset {exc.pos}: {exc.msg}") from None


def load_bundle(path: str | Path, extra_trusted: Iterable[str] = ()) -> Bundle:
    """Load a bundle written by :func:`save_bundle`, refusing anything unexpected.

    Parameters
    ----------
    path : str or Path
        Bundle folder.
    extra_trusted : iterable of str
        Additional fully-qualified type names to accept (reviewed by the caller).

    Returns
    -------
    Bundle

    Raises
    ------
    BundleError
        Missing files, a ``model.skops`` whose SHA-256 differs from the card's (tampered), an
        unreadable skops archive, or a type outside the trusted list.
    """
    folder = Path(path)
    card = load_card(folder)
    model_path = folder / card.get("model_file", MODEL_FILE)
    if not model_path.is_file():
        raise BundleError(f"{model_path}: model file not found")
    expected = card.get("model_sha256")
    actual = _sha256(model_path)
    if expected != actual:
        raise BundleError(f"{model_path}: SHA-256 {actual} differs from the model card's "
                          f"{expected}; the file was modified, refusing to load")
    trusted = sorted(set(TRUSTED_TYPES) | set(extra_trusted))
    try:
        # one parse: skops raises if the file holds any type outside ``trusted``
        objects = sio.load(model_path, trusted=trusted)
    except UntrustedTypesFoundException:
        bad = sorted(set(sio.get_untrusted_types(file=model_path)) - set(trusted))
        raise BundleError(f"{model_path}: refusing untrusted type(s) {bad}") from None
    except Exception as exc:  # corrupt zip / schema
        raise BundleError(f"{model_path}: not a readable skops file ({exc})") from None
    if not isinstance(objects, dict):
        raise BundleError(f"{model_path}: expected a dict of models, got {type(objects).__name__}")
    return Bundle(objects=objects, card=card, path=folder)
