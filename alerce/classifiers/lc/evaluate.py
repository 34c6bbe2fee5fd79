"""Evaluation of the light-curve classifier (paper section 3.5).

Metrics on a held-out set: balanced accuracy, macro precision / recall / F1, per-class recall,
the row-normalized confusion matrix (PNG like the paper's Figure 3) and recall against
magnitude. Every report is computed separately per data ``source`` subset (real BTS transients
apart from the simulations) and for all rows together.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    precision_recall_fscore_support,
)

__all__ = ["classification_metrics", "recall_vs_magnitude", "plot_confusion_matrix",
           "write_report", "evaluate_model", "evaluate_main", "brightest_magnitude"]


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str],
                           classes: Sequence[str]) -> dict:
    """Balanced accuracy, macro precision/recall/F1, per-class recall and confusion matrix.

    Macro averages run over the classes present in ``y_true`` (classes without held-out
    objects have an undefined recall and are reported as None).

    Returns
    -------
    dict
        JSON-able: ``n``, ``balanced_accuracy``, ``macro_precision``, ``macro_recall``,
        ``macro_f1``, ``per_class`` (``{class: {recall, precision, f1, support}}``),
        ``classes``, ``confusion_matrix`` (counts, rows = true class) and
        ``confusion_matrix_normalized``.
    """
    y_true = np.asarray(y_true, dtype=object).astype(str)
    y_pred = np.asarray(y_pred, dtype=object).astype(str)
    classes = [str(c) for c in classes]
    if len(y_true) == 0:
        return {"n": 0, "classes": classes}
    present = [c for c in classes if c in set(y_true)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=classes,
                                                     zero_division=0)
        cm = confusion_matrix(y_true, y_pred, labels=classes)
        bacc = balanced_accuracy_score(y_true, y_pred)
    rows = cm.sum(axis=1, keepdims=True)
    cmn = np.divide(cm, rows, out=np.zeros(cm.shape, dtype=float), where=rows > 0)
    idx = [classes.index(c) for c in present]
    per_class = {c: {"recall": float(r[k]) if s[k] else None, "precision": float(p[k]),
                     "f1": float(f[k]) if s[k] else None, "support": int(s[k])}
                 for k, c in enumerate(classes)}
    return {
        "n": int(len(y_true)),
        "balanced_accuracy": float(bacc),
        "macro_precision": float(np.mean(p[idx])),
        "macro_recall": float(np.mean(r[idx])),
        "macro_f1": float(np.mean(f[idx])),
        "accuracy": float(np.mean(y_true == y_pred)),
        "per_class": per_class,
        "classes": classes,
        "confusion_matrix": cm.tolist(),
        "confusion_matrix_normalized": cmn.tolist(),
    }


def brightest_magnitude(detections: pd.DataFrame) -> pd.Series:
    """Brightest (minimum) ``magpsf`` of every object, indexed by oid."""
    return detections.groupby("oid", sort=False)["magpsf"].min()


def recall_vs_magnitude(y_true: Sequence[str], y_pred: Sequence[str], magnitude: Sequence[float],
                        bins: Sequence[float] = (12, 15, 16, 17, 18, 19, 20, 21, 23)
                        ) -> pd.DataFrame:
    """Recall (fraction of correct predictions) per magnitude bin.

    Returns
    -------
    pandas.DataFrame
        ``mag_lo, mag_hi, n, recall`` (recall NaN for empty bins).
    """
    mag = np.asarray(magnitude, dtype=float)
    ok = np.asarray(y_true, dtype=object).astype(str) == np.asarray(y_pred, dtype=object).astype(str)
    edges = np.asarray(bins, dtype=float)
    which = np.digitize(mag, edges) - 1
    valid = (which >= 0) & (which < len(edges) - 1) & np.isfinite(mag)
    n = np.bincount(which[valid], minlength=len(edges) - 1)
    hits = np.bincount(which[valid], weights=ok[valid].astype(float), minlength=len(edges) - 1)
    recall = np.divide(hits, n, out=np.full(len(n), np.nan), where=n > 0)
    return pd.DataFrame({"mag_lo": edges[:-1], "mag_hi": edges[1:], "n": n, "recall": recall})


def plot_confusion_matrix(metrics: dict, path: str | Path, title: str = "") -> Path:
    """Row-normalized confusion matrix PNG (percentages, like the paper's Figure 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    classes = metrics["classes"]
    cmn = np.asarray(metrics["confusion_matrix_normalized"], dtype=float)
    k = len(classes)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k), dpi=90)
    ax.imshow(cmn, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(k), classes, rotation=90)
    ax.set_yticks(range(k), classes)
    for i in range(k):
        for j in range(k):
            if cmn[i, j] >= 0.005:
                ax.text(j, i, f"{100 * cmn[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if cmn[i, j] > 0.5 else "black")
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ba = metrics.get("balanced_accuracy")
    ax.set_title(f"{title} (n={metrics['n']}, BA={ba:.2f})" if ba is not None else title,
                 fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def _plot_recall_vs_mag(tables: dict[str, pd.DataFrame], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=90)
    for name, tab in tables.items():
        mid = 0.5 * (tab["mag_lo"] + tab["mag_hi"])
        ax.plot(mid, tab["recall"], marker="o", label=name)
    ax.set_xlabel("brightest magnitude")
    ax.set_ylabel("recall")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(predictions: pd.DataFrame, classes: Sequence[str], out_dir: str | Path,
                 top_classes: Sequence[str] | None = None) -> dict:
    """Write metrics per subset and plots into ``out_dir``.

    Parameters
    ----------
    predictions : pandas.DataFrame
        ``oid, true, pred, source, magnitude`` (and optionally ``true_group, pred_group``).
    classes : sequence of str
        Class order of the confusion matrices.
    out_dir : str or Path
        Report folder (created).
    top_classes : sequence of str, optional
        Top-level groups; with them, group-level metrics are added.

    Returns
    -------
    dict
        ``{subset: metrics}`` for ``all`` and every source; also written as ``metrics.json``.
        Files: ``predictions.csv``, ``confusion_matrix_<subset>.png``,
        ``recall_vs_magnitude.csv``/``.png``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    predictions.to_csv(out / "predictions.csv", index=False)
    subsets = {"all": predictions}
    for src in sorted(predictions["source"].astype(str).unique()):
        subsets[src] = predictions[predictions["source"].astype(str) == src]
    report: dict = {}
    recall_tables = {}
    for name, sub in subsets.items():
        m = classification_metrics(sub["true"], sub["pred"], classes)
        if top_classes is not None and "true_group" in sub.columns:
            m["top"] = classification_metrics(sub["true_group"], sub["pred_group"], top_classes)
            m["top"].pop("per_class", None)
        report[name] = m
        if m["n"]:
            plot_confusion_matrix(m, out / f"confusion_matrix_{name}.png", title=name)
            tab = recall_vs_magnitude(sub["true"], sub["pred"], sub["magnitude"])
            recall_tables[name] = tab
    if recall_tables:
        pd.concat([t.assign(subset=k) for k, t in recall_tables.items()]).to_csv(
            out / "recall_vs_magnitude.csv", index=False)
        _plot_recall_vs_mag(recall_tables, out / "recall_vs_magnitude.png")
    (out / "metrics.json").write_text(json.dumps(report, indent=2))
    return report


def predict_table(model, features: pd.DataFrame, labels: pd.DataFrame,
                  magnitude: pd.Series | None = None) -> pd.DataFrame:
    """Predictions of ``model`` (HierarchicalRandomForest) joined with the true labels."""
    lab = labels.drop_duplicates("oid").set_index("oid")
    feats = features[features.index.isin(lab.index)]
    h = model.predict_proba_hierarchical(feats)
    oids = feats.index
    true = lab.loc[oids, "class"].astype(str).to_numpy(dtype=object)
    tax = model.taxonomy
    from alerce.classifiers.taxonomy import DEFAULT_TAXONOMY

    tax = DEFAULT_TAXONOMY if tax is None else tax
    out = pd.DataFrame({
        "oid": np.asarray(oids, dtype=object),
        "true": true,
        "pred": h["class"].to_numpy(dtype=object),
        "true_group": tax.map_groups(true),
        "pred_group": np.asarray(h["top"].columns, dtype=object)[
            np.argmax(h["top"].to_numpy(), axis=1)],
        "source": (lab.loc[oids, "source"].astype(str).to_numpy(dtype=object)
                   if "source" in lab.columns else "unknown"),
        "magnitude": (magnitude.reindex(oids).to_numpy(dtype=float)
                      if magnitude is not None else np.nan),
        "probability": h["probabilities"].max(axis=1).to_numpy(),
    })
    return out


def evaluate_model(model, features: pd.DataFrame, labels: pd.DataFrame, out_dir: str | Path,
                   magnitude: pd.Series | None = None) -> dict:
    """Predict, then :func:`write_report` (see there for the files)."""
    table = predict_table(model, features, labels, magnitude)
    return write_report(table, list(model.classes_), out_dir, top_classes=list(model.groups_))


def evaluate_main(argv: Sequence[str] | None = None) -> int:
    """CLI ``alerce evaluate --model DIR [--out REPORT] [--n-sim N] [--seed S] [--no-bts]
    [--no-alerce-sne]``.

    Evaluates a bundle on freshly simulated objects (a seed different from training), on the
    real BTS objects held out at training time (their oids are in the model card) and on
    ALeRCE's 30 labelled supernovae; each source is reported separately.
    """
    from alerce.classifiers.bundle import load_bundle
    from alerce.classifiers.lc.train import assemble, extract_training_features

    parser = argparse.ArgumentParser(prog="alerce evaluate",
                                     description="Evaluate a light-curve classifier bundle.")
    parser.add_argument("--model", required=True, help="bundle folder")
    parser.add_argument("--out", default=None, help="report folder (default MODEL/evaluation)")
    parser.add_argument("--n-sim", type=int, default=600, help="simulated objects (0: none)")
    parser.add_argument("--seed", type=int, default=12345, help="simulation seed")
    parser.add_argument("--no-bts", action="store_true", help="skip the real BTS held-out set")
    parser.add_argument("--no-alerce-sne", action="store_true",
                        help="skip ALeRCE's 30 labelled supernovae (real, with non-detections)")
    args = parser.parse_args(argv)
    bundle = load_bundle(args.model)
    model = bundle["classifier"]
    heldout = [] if args.no_bts else list(bundle.card.get("heldout_real_oids", []))
    if args.n_sim > 0 or heldout:
        det, nd, labels = assemble(n_sim=args.n_sim, seed=args.seed, include_bts=bool(heldout),
                                   include_periodic=False, bts_oids=heldout)
    else:
        det, nd, labels = (pd.DataFrame(columns=["oid", "magpsf"]),
                           pd.DataFrame(columns=["oid", "fid", "mjd", "diffmaglim"]),
                           pd.DataFrame(columns=["oid", "class", "source"]))
    if not args.no_alerce_sne:
        from alerce.classifiers.lc.data import load_alerce_sne

        try:
            sne = load_alerce_sne()
        except FileNotFoundError as exc:
            print(f"ALeRCE supernovae unavailable, skipped: {exc}")
        else:
            det = pd.concat([det, sne[0]], ignore_index=True)
            nd = pd.concat([x for x in (nd, sne[1]) if len(x)], ignore_index=True)
            labels = pd.concat([labels, sne[2]], ignore_index=True)
    if not len(labels):
        parser.error("nothing to evaluate: --n-sim 0 and no real data selected or available")
    features, labels = extract_training_features(det, nd, labels)
    out = Path(args.out) if args.out else Path(args.model) / "evaluation"
    report = evaluate_model(model, features, labels, out, brightest_magnitude(det))
    for name, m in report.items():
        if m.get("n"):
            print(f"{name:>12}: n={m['n']:5d} balanced_accuracy={m['balanced_accuracy']:.3f} "
                  f"macro_f1={m['macro_f1']:.3f}")
    print(f"report written to {out}")
    return 0
