"""Benchmark the hierarchical light-curve classifier.

1. ``predict_proba`` throughput (objects/s) of the default bundle on 300, 10^3 and 10^4 objects,
   against a baseline in the same process: the same four forests called one object at a time
   (how a naive per-alert step would call them); and the four forests on the same batch through
   scikit-learn's ``predict_proba`` (which our packed numba forests replace).
2. Outlier scores (``GroupIsolationForest.score``, one isolation forest per group) on 300 objects:
   the packed numba isolation forests against ``IsolationForest.score_samples``, same values.
3. Training time: the default bundle's recorded timings, and a fit of the hierarchical model
   against a single 15-class BalancedRandomForest on the same synthetic data.

Run: ``python benchmarks/bench_lc_classifier.py``
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from imblearn.ensemble import BalancedRandomForestClassifier

from alerce.classifiers.lc import HierarchicalRandomForest, load_default_model
from alerce.classifiers.lc.preprocessing import impute_features
from alerce.classifiers.taxonomy import DEFAULT_TAXONOMY

GOLDEN = Path("/work/shared/data/golden/alerce_lc_classifier/data_examples/100_objects_features.csv")


def feature_rows(columns, n, rng):
    """n realistic rows: ALeRCE's golden features resampled with 5% jitter, else Gaussian noise."""
    if GOLDEN.is_file():
        base = pd.read_csv(GOLDEN).set_index("objectId").reindex(columns=columns)
        take = base.iloc[rng.integers(0, len(base), n)].to_numpy(dtype=float)
        take = take * (1 + 0.05 * rng.standard_normal(take.shape))
    else:
        take = rng.standard_normal((n, len(columns)))
    return pd.DataFrame(take, columns=columns,
                        index=pd.Index([f"OBJ{i:07d}" for i in range(n)], name="oid"))


def per_object(model, X: pd.DataFrame) -> np.ndarray:
    """Baseline: impute and call the four forests one object at a time."""
    cols = list(model.preprocessor_.feature_names_out_)
    out = []
    for k in range(len(X)):
        x = impute_features(X.iloc[[k]][cols].to_numpy())
        top = model.top_.predict_proba(x)[0]
        parts = []
        for g in DEFAULT_TAXONOMY.group_names:
            j = list(model.groups_).index(g)
            parts.append(top[j] * model.children_[g].predict_proba(x)[0])
        out.append(np.concatenate(parts))
    return np.asarray(out)


def main() -> None:
    warnings.simplefilter("ignore")
    rng = np.random.default_rng(0)
    bundle = load_default_model()
    model = bundle["classifier"]
    card = bundle.card
    print(f"default bundle {card['version']}: {model.n_estimators} trees per forest, "
          f"{len(model.feature_names_in_)} features")
    cols = list(model.feature_names_in_)
    n_base = 100
    Xb = feature_rows(cols, n_base, rng)
    t = time.perf_counter()
    ref = per_object(model, Xb)
    base_rate = n_base / (time.perf_counter() - t)
    np.testing.assert_allclose(model.predict_proba(Xb), ref, atol=1e-12)
    print(f"baseline (4 forests, one object per call, {n_base} objects): {base_rate:9.1f} obj/s")
    for n in (300, 1_000, 10_000):
        X = feature_rows(cols, n, rng)
        t = time.perf_counter()
        model.predict_proba(X)
        rate = n / (time.perf_counter() - t)
        # the same batch through scikit-learn's own ForestClassifier.predict_proba (per-tree calls)
        Xt = model.preprocessor_.transform(X)
        t = time.perf_counter()
        model.top_.predict_proba(Xt)
        for child in model.children_.values():
            if child is not None:
                child.predict_proba(Xt)
        sk_rate = n / (time.perf_counter() - t)
        print(f"predict_proba batch of {n:>6}: {rate:9.1f} obj/s  ratio vs baseline "
              f"{rate / base_rate:6.1f}x; the four forests via scikit-learn {sk_rate:9.1f} obj/s "
              f"(packed numba forests {rate / sk_rate:4.1f}x)")

    outliers = bundle.objects.get("outliers")
    if outliers is not None:
        from alerce.classifiers.outliers import _score_samples

        X = feature_rows(cols, 300, rng)
        Xt = outliers.preprocessor_.transform(X)
        forests = list(outliers.detectors_.values())
        for f in forests:
            _score_samples(f, Xt[:5])  # compile / pack once
        best = {}
        for name, fn in (("scikit-learn", lambda f: f.score_samples(Xt)), ("packed", lambda f: _score_samples(f, Xt))):
            runs = []
            for _ in range(3):
                t = time.perf_counter()
                out = [fn(f) for f in forests]
                runs.append(time.perf_counter() - t)
            best[name] = (min(runs), out)
        for a, b in zip(best["scikit-learn"][1], best["packed"][1]):
            np.testing.assert_array_equal(a, b)
        print(f"outlier scores, 300 objects x {len(forests)} isolation forests: scikit-learn "
              f"{1e3 * best['scikit-learn'][0]:.1f} ms, packed {1e3 * best['packed'][0]:.1f} ms "
              f"({best['scikit-learn'][0] / best['packed'][0]:.1f}x, identical values)")

    timings = card.get("timings_s", {})
    print("default bundle training (model card): " + ", ".join(
        f"{k}={v:.1f} s" for k, v in timings.items()))
    n_train = 2000
    Xt = feature_rows(cols, n_train, rng)
    y = np.asarray(DEFAULT_TAXONOMY.classes, dtype=object)[rng.integers(0, 15, n_train)]
    trees = model.n_estimators
    t = time.perf_counter()
    BalancedRandomForestClassifier(n_estimators=trees, max_features="sqrt", random_state=0,
                                   sampling_strategy="auto", replacement=False,
                                   bootstrap=True).fit(impute_features(Xt.to_numpy()), y)
    flat = time.perf_counter() - t
    t = time.perf_counter()
    HierarchicalRandomForest(n_estimators=trees, random_state=0).fit(Xt, y)
    hier = time.perf_counter() - t
    print(f"fit on {n_train} synthetic objects, {trees} trees: hierarchical {hier:.2f} s, "
          f"flat 15-class BRF {flat:.2f} s, ratio {hier / flat:.2f}")


if __name__ == "__main__":
    main()
