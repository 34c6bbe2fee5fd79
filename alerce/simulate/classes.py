"""Simulated object classes: ALeRCE's 15 light-curve classes plus ``asteroid`` and ``bogus``.

Class names follow ALeRCE's deployed light-curve classifier taxonomy exactly. Each class has a
*group* (``Periodic``, ``Stochastic``, ``Transient``, ``asteroid`` or ``bogus``) and a model
*kind* that selects the light-curve generator in :mod:`alerce.simulate.lightcurves`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: The 15 light-curve classes, by group (ALeRCE hierarchical classifier taxonomy).
TAXONOMY: dict[str, tuple[str, ...]] = {
    "Stochastic": ("AGN", "Blazar", "CV/Nova", "QSO", "YSO"),
    "Periodic": ("CEP", "DSCT", "E", "LPV", "Periodic-Other", "RRL"),
    "Transient": ("SLSN", "SNII", "SNIa", "SNIbc"),
}

#: All 15 light-curve classes, in taxonomy order.
LC_CLASSES: tuple[str, ...] = tuple(c for group in TAXONOMY.values() for c in group)

#: Every class the simulator can produce.
ALL_CLASSES: tuple[str, ...] = (*LC_CLASSES, "asteroid", "bogus")

#: Group of every class.
GROUP: dict[str, str] = {c: g for g, cs in TAXONOMY.items() for c in cs}
GROUP.update({"asteroid": "asteroid", "bogus": "bogus"})

#: Default class mix of :func:`alerce.simulate.simulate`: roughly like the ZTF public stream
#: (many variable stars and AGN, some supernovae, asteroids and bogus candidates).
DEFAULT_MIX: dict[str, float] = {
    "AGN": 0.08, "Blazar": 0.01, "CV/Nova": 0.02, "QSO": 0.08, "YSO": 0.04,
    "CEP": 0.02, "DSCT": 0.03, "E": 0.13, "LPV": 0.08, "Periodic-Other": 0.04, "RRL": 0.09,
    "SLSN": 0.005, "SNII": 0.02, "SNIa": 0.06, "SNIbc": 0.01,
    "asteroid": 0.15, "bogus": 0.135,
}


def normalize_mix(classes: Sequence[str] | Mapping[str, float] | None,
                  default: Mapping[str, float] | None = None) -> dict[str, float]:
    """Turn a class selection into normalized fractions.

    Parameters
    ----------
    classes : sequence of str, mapping of str to float, or None
        A list of class names (equal fractions), a ``{class: weight}`` mapping (normalized
        to sum 1) or None for ``default`` (itself defaulting to :data:`DEFAULT_MIX`).
    default : mapping, optional
        Mix used when ``classes`` is None.

    Returns
    -------
    dict
        ``{class: fraction}`` in :data:`ALL_CLASSES` order, fractions summing to 1.

    Raises
    ------
    ValueError
        On an unknown class name, a negative weight or an all-zero mix.
    """
    if classes is None:
        weights = dict(default if default is not None else DEFAULT_MIX)
    elif isinstance(classes, Mapping):
        weights = {str(k): float(v) for k, v in classes.items()}
    else:
        weights = {str(c): 1.0 for c in classes}
    unknown = sorted(set(weights) - set(ALL_CLASSES))
    if unknown:
        raise ValueError(f"unknown class name(s) {unknown}; known: {list(ALL_CLASSES)}")
    if any(w < 0 or not np.isfinite(w) for w in weights.values()):
        raise ValueError(f"class weights must be finite and >= 0, got {weights}")
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("class mix has no positive weight")
    return {c: weights[c] / total for c in ALL_CLASSES if weights.get(c, 0) > 0}


def sample_classes(n: int, mix: Mapping[str, float], rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` class names (object array) from normalized fractions ``mix``."""
    names = np.array(list(mix), dtype=object)
    p = np.array(list(mix.values()), dtype=float)
    return names[rng.choice(len(names), size=n, p=p / p.sum())]
