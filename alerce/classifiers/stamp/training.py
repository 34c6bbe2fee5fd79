"""Training of the stamp classifier and the ``alerce train stamps`` command line.

``alerce train stamps --out DIR [--n-sim N] [--seed S] [--epochs E] [--max-minutes M]`` simulates
``N`` first alerts per class (:mod:`alerce.classifiers.stamp.simulation`), adds the real ZTF
alerts of the shared data folder that can be labelled honestly
(:mod:`alerce.classifiers.stamp.realdata`, split in half by object: one half trains, the other
is the real test set), trains a :class:`StampClassifier`, and writes the model bundle plus an
evaluation folder (``DIR/evaluation``: ``metrics.json`` and one normalized confusion-matrix PNG
per test set).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alerce.classifiers.stamp.constants import CLASSES
from alerce.classifiers.stamp.estimator import StampClassifier, StampInputs
from alerce.classifiers.stamp.features import metadata_features
from alerce.classifiers.stamp.preprocess import preprocess_images

log = logging.getLogger(__name__)


def build_inputs(alerts: pd.DataFrame, stamps: pd.DataFrame | np.ndarray, labels: Sequence[str]
                 ) -> tuple[StampInputs, np.ndarray, pd.DataFrame]:
    """Model inputs + aligned labels from alerts and either a ``stamps`` frame or raw arrays.

    Parameters
    ----------
    alerts : DataFrame
    stamps : DataFrame (``stamps`` frame, decoded here) or ndarray ``(n, 3, 63, 63)`` aligned with
        ``alerts`` (simulated cutouts, no FITS round trip)
    labels : sequence of class names aligned with ``alerts``

    Returns
    -------
    inputs, labels, dropped
    """
    from alerce.classifiers.stamp.pipeline import prepare_inputs

    labels = np.asarray(labels, dtype=object)
    if len(labels) != len(alerts):
        raise ValueError(f"{len(alerts)} alerts but {len(labels)} labels")
    if isinstance(stamps, np.ndarray):
        if len(stamps) != len(alerts):
            raise ValueError(f"{len(alerts)} alerts but {len(stamps)} raw stamp stacks")
        inputs = StampInputs(preprocess_images(stamps), metadata_features(alerts).to_numpy())
        return inputs, labels, pd.DataFrame(columns=["oid", "candid", "reason"])
    inputs, positions, dropped = prepare_inputs(alerts, stamps)
    return inputs, labels[positions], dropped


def _concat(parts: Sequence[StampInputs]) -> StampInputs:
    return StampInputs(np.concatenate([p.images for p in parts]),
                       np.concatenate([np.asarray(p.features, dtype=np.float64) for p in parts]))


def evaluate(model: StampClassifier, inputs: StampInputs, labels: Sequence[str],
             out_dir: str | Path | None = None, name: str = "test") -> dict[str, Any]:
    """Balanced accuracy, per-class recall and confusion matrix (PNG normalized by true class).

    Returns a JSON-able dict; writes ``confusion_<name>.png`` into ``out_dir`` when given.
    """
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix, recall_score

    labels = np.asarray(labels, dtype=object)
    pred = model.predict(inputs)
    present = [c for c in CLASSES if np.any(labels == c)]
    cm = confusion_matrix(labels, pred, labels=list(CLASSES))
    recall = recall_score(labels, pred, labels=present, average=None, zero_division=0)
    result = {
        "n": int(len(labels)),
        "counts": {c: int(np.sum(labels == c)) for c in CLASSES},
        "balanced_accuracy": float(balanced_accuracy_score(labels, pred)) if len(labels) else None,
        "accuracy": float(np.mean(pred == labels)) if len(labels) else None,
        "recall": {c: float(r) for c, r in zip(present, recall)},
        "confusion_matrix": cm.tolist(),
    }
    if out_dir is not None:
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        plot_confusion_matrix(cm, out_dir / f"confusion_{name}.png",
                              title=f"{name} (n={len(labels)}, bal. acc. "
                                    f"{result['balanced_accuracy'] or 0:.3f})")
    return result


def plot_confusion_matrix(cm: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Confusion matrix normalized by true class (rows sum to 1, as in Carrasco-Davis et al.
    2021, Figure 4), with percentages and raw counts in each cell (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.nan_to_num(cm / cm.sum(axis=1, keepdims=True))
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{100 * norm[i, j]:.0f}%\n({int(cm[i, j])})", ha="center",
                    va="center", fontsize=8, color="white" if norm[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(CLASSES)), CLASSES)
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("Predicted label")
    ax.set_ylabel("True label")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def train_stamp_classifier(
    alerts: pd.DataFrame,
    stamps: pd.DataFrame | np.ndarray,
    labels: Sequence[str],
    out_dir: str | Path,
    *,
    test_sets: Mapping[str, tuple[pd.DataFrame, pd.DataFrame | np.ndarray, Sequence[str]]]
    | None = None,
    extra: Sequence[tuple[pd.DataFrame, pd.DataFrame | np.ndarray, Sequence[str], int]] = (),
    training_data: Mapping[str, Any] | None = None,
    init: str | Path | None = None,
    **params: Any,
) -> StampClassifier:
    """Train a :class:`StampClassifier`, write the bundle and the evaluation report.

    Parameters
    ----------
    alerts, stamps, labels
        Training alerts, their stamps (frame or raw ``(n, 3, 63, 63)`` arrays) and class names.
    out_dir : path
        Receives ``model.safetensors``, ``model_card.json`` and ``evaluation/``.
    test_sets : mapping name -> (alerts, stamps, labels), optional
        Held-out sets evaluated and reported separately (e.g. ``"simulated"``, ``"real"``).
    extra : sequence of (alerts, stamps, labels, replication)
        More training sources (e.g. real alerts), each replicated ``replication`` times.
    training_data : mapping, optional
        Description stored in the model card's ``training_data``.
    init : path, optional
        Bundle to continue training from (warm start).
    **params
        :class:`StampClassifier` parameters (``max_epochs``, ``max_time``, ``random_state`` ...).
    """
    out_dir = Path(out_dir)
    val_fraction = float(params.get("validation_fraction", 0.1))
    rng = np.random.default_rng(params.get("random_state", 0))
    parts, ys, val_parts, val_ys = [], [], [], []
    for a, s, y, rep in [(alerts, stamps, labels, 1), *extra]:
        inputs, lab, _ = build_inputs(a, s, y)
        # hold the validation rows out *before* replication so no copy is on both sides
        is_val = rng.random(len(lab)) < val_fraction
        parts.extend([inputs.subset(np.flatnonzero(~is_val))] * int(rep))
        ys.extend([lab[~is_val]] * int(rep))
        val_parts.append(inputs.subset(np.flatnonzero(is_val)))
        val_ys.append(lab[is_val])
    X, y = _concat(parts), np.concatenate(ys)
    X_val, y_val = _concat(val_parts), np.concatenate(val_ys)
    if init is not None:
        model = StampClassifier.load(init, **params, warm_start=True)
    else:
        model = StampClassifier(**params)
    log.info("training on %d samples (%s)", len(y), pd.Series(y).value_counts().to_dict())
    model.fit(X, y, X_val, y_val)
    metrics: dict[str, Any] = {}
    eval_dir = out_dir / "evaluation"
    for name, (a, s, lab) in (test_sets or {}).items():
        inputs, lab, _ = build_inputs(a, s, lab)
        metrics[name] = evaluate(model, inputs, lab, eval_dir, name)
    previous = dict(getattr(model, "card_", {}) or {}) if init is not None else {}
    model.card_ = {
        "training_data": dict(training_data or {}),
        "training": {
            "n_samples_after_replication": int(len(y)),
            "counts_after_replication": {c: int(np.sum(y == c)) for c in CLASSES},
            "iterations": int(model.n_iter_), "fit_seconds": round(model.fit_time_, 1),
            "best_validation_loss": model.best_val_loss_,
            "loss": "mean(CE - beta * entropy(softmax))", "optimizer": "Adam(lr, 0.9, 0.999)",
            "class_balance": "replication of minority classes up to the majority count",
            "model_selection": "lowest validation loss on a held-out fraction of every source "
                               "(taken before replication)",
            "n_validation": int(len(y_val)),
            "history": model.history_,
        },
        "metrics": metrics,
    }
    if init is not None:  # warm start: keep the record of the earlier session(s)
        model.card_["training"]["warm_started_from"] = {
            "training": previous.get("training"), "training_data": previous.get("training_data"),
            "metrics": previous.get("metrics"),
        }
    model.save(out_dir)
    eval_dir.mkdir(parents=True, exist_ok=True)
    (eval_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return model


def _default_shared() -> Path:
    env = os.environ.get("ALERCE_SHARED_DATA")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[3].parent / "shared" / "data"


def _split_real(alerts: pd.DataFrame, labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Half of the labelled real objects for training, half for testing (stratified by class,
    grouped by object so no object is on both sides)."""
    from sklearn.model_selection import StratifiedGroupKFold

    folds = StratifiedGroupKFold(n_splits=2, shuffle=True, random_state=seed)
    train, test = next(folds.split(np.zeros(len(labels)), labels, alerts["oid"].astype(str)))
    return train, test


def main(argv: Sequence[str] | None = None) -> int:
    """``alerce train stamps`` entry point (returns the exit status)."""
    p = argparse.ArgumentParser(prog="alerce train stamps", description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True, help="output folder of the model bundle")
    p.add_argument("--n-sim", type=int, default=1000, help="simulated training alerts per class")
    p.add_argument("--n-sim-test", type=int, default=200, help="simulated test alerts per class")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=8, help="maximum passes over the balanced set")
    p.add_argument("--max-minutes", type=float, default=9.0, help="training wall-clock budget")
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument("--shared-data", default=None,
                   help="shared data folder (default $ALERCE_SHARED_DATA or ../shared/data)")
    p.add_argument("--no-real", action="store_true", help="train on simulated alerts only")
    p.add_argument("--real-replication", type=int, default=5,
                   help="times each real training alert is repeated")
    p.add_argument("--version", default="1.0.0", help="model version written to the card")
    p.add_argument("--init", default=None, help="bundle to continue training from")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    from alerce.classifiers.stamp.simulation import simulate_alerts

    t0 = time.perf_counter()
    sim = simulate_alerts(args.n_sim, args.seed, oid_prefix="ZTFsimtrain")
    sim_test = simulate_alerts(args.n_sim_test, args.seed + 1, oid_prefix="ZTFsimtest")
    log.info("simulated %d + %d alerts in %.1f s", len(sim.alerts), len(sim_test.alerts),
             time.perf_counter() - t0)
    test_sets: dict[str, Any] = {"simulated": (sim_test.alerts, sim_test.raw, sim_test.labels)}
    extra = []
    description: dict[str, Any] = {
        "simulated": {
            "source": "alerce.classifiers.stamp.simulation.simulate_alerts (half of the cutouts "
                      "from alerce.simulate.stamps.make_stamps when available)",
            "seed": args.seed, "train_counts": {c: args.n_sim for c in CLASSES},
            "test_counts": {c: args.n_sim_test for c in CLASSES},
        },
    }
    shared = Path(args.shared_data) if args.shared_data else _default_shared()
    if not args.no_real and (shared / "ztf").exists():
        from alerce.classifiers.stamp.realdata import load_labeled_real_alerts

        ra, rs, rl = load_labeled_real_alerts(shared)
        tr, te = _split_real(ra, rl, args.seed)
        sel = lambda idx: (ra.iloc[idx].reset_index(drop=True),  # noqa: E731
                           rs[rs["candid"].isin(ra["candid"].iloc[idx])], rl[idx])
        a_tr, s_tr, l_tr = sel(tr)
        extra.append((a_tr, s_tr, l_tr, args.real_replication))
        test_sets["real"] = sel(te)
        description["real"] = {
            "source": "ZTF alerts in shared/data/ztf (Avro + Parquet), labelled by "
                      "alerce.classifiers.stamp.realdata (ssdistnr <= 5 arcsec -> asteroid, "
                      "TNS spectroscopic / SIMBAD types -> SN, AGN, VS, drb < 0.05 -> bogus)",
            "split": "half of the labelled objects train (StratifiedGroupKFold by oid), half test",
            "replication": args.real_replication,
            "train_counts": {c: int(np.sum(l_tr == c)) for c in CLASSES},
            "test_counts": {c: int(np.sum(rl[te] == c)) for c in CLASSES},
        }
    elif not args.no_real:
        log.warning("shared data not found at %s: training on simulated alerts only", shared)
    model = train_stamp_classifier(
        sim.alerts, sim.raw, sim.labels, args.out, test_sets=test_sets, extra=extra,
        training_data=description, max_epochs=args.epochs, max_time=args.max_minutes * 60,
        random_state=args.seed, num_threads=args.threads, model_version=args.version,
        init=args.init,
    )
    for name, m in model.card_["metrics"].items():
        log.info("%s: balanced accuracy %.3f, recall %s", name, m["balanced_accuracy"],
                 {k: round(v, 3) for k, v in m["recall"].items()})
    log.info("bundle written to %s in %.0f s", args.out, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
