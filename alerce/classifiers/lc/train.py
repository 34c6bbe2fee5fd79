"""Train the hierarchical light-curve classifier and write a bundle (``alerce train lc``).

Default training data: simulated objects of all 15 classes (:mod:`alerce.simulate`), the real
BTS transients (spectroscopic types) and ALeRCE's 25 labelled periodic curves. Features come
from :func:`alerce.features.extract_features`. A stratified held-out split (paper 3.5) is
evaluated (:mod:`alerce.classifiers.lc.evaluate`), real and simulated objects separately, and
the metrics go into the model card.
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from alerce.classifiers.bundle import library_versions, save_bundle
from alerce.classifiers.lc.data import load_bts, load_periodic_history, load_simulated
from alerce.classifiers.lc.evaluate import brightest_magnitude, evaluate_model
from alerce.classifiers.lc.model import ALERCE_EXCLUDED_FEATURES, HierarchicalRandomForest
from alerce.classifiers.outliers import GroupIsolationForest
from alerce.classifiers.taxonomy import DEFAULT_TAXONOMY

__all__ = ["TrainResult", "assemble", "extract_training_features", "train_lc_classifier",
           "main", "DEFAULT_VERSION"]

DEFAULT_VERSION = "hierarchical_random_forest_alerce_1.0.0"


@dataclass
class TrainResult:
    """What :func:`train_lc_classifier` produced."""

    model: HierarchicalRandomForest
    outliers: GroupIsolationForest
    metrics: dict
    train_oids: list = field(default_factory=list)
    test_oids: list = field(default_factory=list)
    bundle_path: Path | None = None
    timings: dict = field(default_factory=dict)


def assemble(n_sim: int = 1500, seed: int = 0, include_bts: bool = True,
             include_periodic: bool = True, bts_max_per_class: int | None = 300,
             bts_oids: Sequence[str] | None = None,
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Concatenate the default training sources into ``(detections, non_detections, labels)``.

    Real sources are skipped with a warning when the shared data folder is absent.
    """
    parts = []
    if n_sim > 0:
        parts.append(load_simulated(n_sim, seed))
    if include_bts:
        try:
            parts.append(load_bts(max_per_class=None if bts_oids else bts_max_per_class,
                                  seed=seed, oids=bts_oids))
        except FileNotFoundError as exc:
            warnings.warn(f"BTS light curves unavailable, training without them: {exc}",
                          RuntimeWarning, stacklevel=2)
    if include_periodic:
        try:
            parts.append(load_periodic_history())
        except FileNotFoundError as exc:
            warnings.warn(f"ALeRCE periodic curves unavailable: {exc}", RuntimeWarning,
                          stacklevel=2)
    if not parts:
        raise ValueError("no training data: n_sim=0 and no real data available")
    det = pd.concat([p[0] for p in parts], ignore_index=True)
    nd = pd.concat([p[1] for p in parts if len(p[1])], ignore_index=True) if any(
        len(p[1]) for p in parts) else parts[0][1]
    labels = pd.concat([p[2] for p in parts], ignore_index=True)
    return det, nd, labels


def extract_training_features(detections: pd.DataFrame, non_detections: pd.DataFrame | None,
                              labels: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Features of the labelled objects and the labels of the objects that have features."""
    from alerce.features import extract_features

    labels = labels.drop_duplicates("oid").reset_index(drop=True)
    det = detections[detections["oid"].isin(labels["oid"])]
    nd = None
    if non_detections is not None and len(non_detections):
        nd = non_detections[non_detections["oid"].isin(labels["oid"])]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        features = extract_features(det, nd)
    labels = labels[labels["oid"].isin(features.index)].reset_index(drop=True)
    features = features.loc[labels["oid"].to_numpy()]
    return features, labels


def _stratify_key(labels: pd.DataFrame, test_size: float) -> np.ndarray | None:
    """class+source when every stratum can be split, else class, else None."""
    for key in (labels["class"].astype(str) + "|" + labels["source"].astype(str) if "source" in labels else "",
                labels["class"].astype(str)):
        counts = key.value_counts()
        if counts.min() >= 2 and len(counts) <= test_size * len(key):
            return key.to_numpy()
    return None


def train_lc_classifier(labels: pd.DataFrame, detections: pd.DataFrame | None = None,
                        non_detections: pd.DataFrame | None = None,
                        out_dir: str | Path | None = None, *, features: pd.DataFrame | None = None,
                        n_estimators: int = 500, seed: int = 0, test_size: float = 0.3,
                        n_jobs: int | None = None, version: str = DEFAULT_VERSION,
                        outlier_estimators: int = 100, description: dict | None = None,
                        ) -> TrainResult:
    """Extract features, split, fit, evaluate and (optionally) write a bundle.

    Parameters
    ----------
    labels : pandas.DataFrame
        ``oid, class`` (taxonomy class names) and optionally ``source`` (e.g. ``bts``,
        ``simulated``): metrics are reported per source.
    detections, non_detections : pandas.DataFrame, optional
        ALeRCE detection / non-detection tables of the labelled objects (needed unless
        ``features`` is given).
    out_dir : str or Path, optional
        Bundle folder (``model.skops``, ``model_card.json``, ``report/``).
    features : pandas.DataFrame, optional
        Pre-computed features indexed by oid (skips extraction).
    n_estimators : int
        Trees per forest (ALeRCE: 500).
    seed : int
        Split and forest seed.
    test_size : float
        Held-out fraction (stratified by class and source).
    n_jobs : int, optional
        Parallel jobs of the forests.
    version : str
        ``classifier_version`` written into probability rows.
    outlier_estimators : int
        Trees of each outlier isolation forest.
    description : dict, optional
        Extra training-data description for the model card.

    Returns
    -------
    TrainResult
    """
    timings = {}
    t0 = time.perf_counter()
    if "source" not in labels.columns:
        labels = labels.assign(source="unknown")
    if features is None:
        if detections is None:
            raise ValueError("train_lc_classifier needs detections or features")
        features, labels = extract_training_features(detections, non_detections, labels)
    else:
        labels = labels.drop_duplicates("oid")
        labels = labels[labels["oid"].isin(features.index)].reset_index(drop=True)
        features = features.loc[labels["oid"].to_numpy()]
    timings["features_s"] = time.perf_counter() - t0
    unknown = sorted(set(labels["class"]) - set(DEFAULT_TAXONOMY.classes))
    if unknown:
        raise ValueError(f"labels not in the taxonomy: {unknown}")
    idx = np.arange(len(labels))
    train_idx, test_idx = train_test_split(idx, test_size=test_size, random_state=seed,
                                           stratify=_stratify_key(labels, test_size))
    y = labels["class"].astype(str).to_numpy(dtype=object)
    t1 = time.perf_counter()
    model = HierarchicalRandomForest(n_estimators=n_estimators, random_state=seed, n_jobs=n_jobs)
    model.fit(features.iloc[train_idx], y[train_idx])
    timings["fit_s"] = time.perf_counter() - t1
    groups = np.asarray(DEFAULT_TAXONOMY.map_groups(y[train_idx]), dtype=object)
    outliers = GroupIsolationForest(n_estimators=outlier_estimators, random_state=seed,
                                    exclude_features=ALERCE_EXCLUDED_FEATURES)
    outliers.fit(features.iloc[train_idx], groups)
    magnitude = brightest_magnitude(detections) if detections is not None else None
    report_dir = Path(out_dir) / "report" if out_dir is not None else None
    test_labels = labels.iloc[test_idx]
    if report_dir is not None:
        metrics = evaluate_model(model, features.iloc[test_idx], test_labels, report_dir,
                                 magnitude)
    else:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            metrics = evaluate_model(model, features.iloc[test_idx], test_labels, tmp, magnitude)
    timings["total_s"] = time.perf_counter() - t0
    result = TrainResult(model=model, outliers=outliers, metrics=metrics,
                         train_oids=list(labels["oid"].iloc[train_idx]),
                         test_oids=list(test_labels["oid"]), timings=timings)
    if out_dir is not None:
        card = model_card(result, labels, train_idx, version, n_estimators, seed, test_size,
                          description)
        result.bundle_path = save_bundle(out_dir, {"classifier": model.compact(),
                                                   "outliers": outliers},
                                         card)
    return result


def _counts(labels: pd.DataFrame) -> dict:
    tab = labels.groupby(["source", "class"]).size()
    out: dict = {}
    for (src, cls), n in tab.items():
        out.setdefault(str(src), {})[str(cls)] = int(n)
    return out


def _compact_metrics(metrics: dict) -> dict:
    keep = ("n", "balanced_accuracy", "macro_precision", "macro_recall", "macro_f1", "accuracy")
    out = {}
    for subset, m in metrics.items():
        row = {k: m[k] for k in keep if k in m}
        if "per_class" in m:
            row["per_class_recall"] = {c: v["recall"] for c, v in m["per_class"].items()
                                       if v["support"]}
        if "top" in m:
            row["top_balanced_accuracy"] = m["top"].get("balanced_accuracy")
        out[subset] = row
    return out


def model_card(result: TrainResult, labels: pd.DataFrame, train_idx: np.ndarray, version: str,
               n_estimators: int, seed: int, test_size: float, description: dict | None) -> dict:
    """JSON-able model card of a training run."""
    model = result.model
    train = labels.iloc[train_idx]
    real_test = [o for o, s in zip(labels["oid"], labels["source"])
                 if s == "bts" and o in set(result.test_oids)]
    return {
        "name": DEFAULT_TAXONOMY.name,
        "version": version,
        "estimator": "HierarchicalRandomForest (imblearn BalancedRandomForestClassifier x4)",
        "hyperparameters": {k: (v if isinstance(v, (int, float, str, type(None))) else str(v))
                            for k, v in model.get_params().items()},
        "n_estimators_note": (f"{n_estimators} trees per forest (ALeRCE uses 500)"
                              if n_estimators != 500 else "500 trees per forest, as ALeRCE"),
        "taxonomy": DEFAULT_TAXONOMY.to_dict(),
        "classes": list(model.classes_),
        "features": list(model.feature_names_in_),
        "excluded_features": list(model.exclude_features),
        "training_data": {
            "description": description or (
                "Simulated ZTF-like light curves (alerce.simulate) of all 15 classes, real Bright "
                "Transient Survey light curves (spectroscopic types, catalogue 2021-04-02) and "
                "ALeRCE's 25 labelled periodic curves; features from alerce.features."),
            "split": f"stratified by class and source, test_size={test_size}, seed={seed}",
            "train_counts": _counts(train),
            "all_counts": _counts(labels),
        },
        "metrics_heldout": _compact_metrics(result.metrics),
        "heldout_real_oids": real_test,
        "outliers": {"detector": "GroupIsolationForest (one IsolationForest per group)",
                     "status": "experimental"},
        "timings_s": result.timings,
        "library_versions": library_versions(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """CLI ``alerce train lc --out DIR [--n-sim N] [--seed S] [--n-estimators N]``."""
    parser = argparse.ArgumentParser(prog="alerce train lc",
                                     description="Train the hierarchical light-curve classifier.")
    parser.add_argument("--out", required=True, help="bundle folder to write")
    parser.add_argument("--n-sim", type=int, default=1500,
                        help="simulated objects, all 15 classes (default 1500)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-estimators", type=int, default=500,
                        help="trees per forest (ALeRCE: 500)")
    parser.add_argument("--bts-max-per-class", type=int, default=300,
                        help="cap of real BTS objects per class (default 300; 0 = no BTS)")
    parser.add_argument("--no-periodic", action="store_true",
                        help="skip ALeRCE's 25 labelled periodic curves")
    parser.add_argument("--test-size", type=float, default=0.3)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--version", default=DEFAULT_VERSION)
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    det, nd, labels = assemble(n_sim=args.n_sim, seed=args.seed,
                               include_bts=args.bts_max_per_class > 0,
                               include_periodic=not args.no_periodic,
                               bts_max_per_class=args.bts_max_per_class)
    print(f"training objects: {len(labels)} ({labels['source'].value_counts().to_dict()})")
    result = train_lc_classifier(labels, det, nd, args.out, n_estimators=args.n_estimators,
                                 seed=args.seed, test_size=args.test_size, n_jobs=args.n_jobs,
                                 version=args.version)
    for name, m in result.metrics.items():
        if m.get("n"):
            print(f"held-out {name:>15}: n={m['n']:5d} "
                  f"balanced_accuracy={m['balanced_accuracy']:.3f} macro_f1={m['macro_f1']:.3f}")
    print(f"timings: {', '.join(f'{k}={v:.1f}' for k, v in result.timings.items())}; "
          f"wall {time.perf_counter() - t0:.1f} s")
    print(f"bundle written to {result.bundle_path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
