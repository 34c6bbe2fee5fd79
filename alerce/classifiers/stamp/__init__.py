"""Rotation-invariant stamp classifier (Carrasco-Davis et al. 2021, reference section 4).

Classifies the first alert of an object from its three 63x63 cutouts (science, template,
difference) plus 23 alert metadata features into ``AGN``, ``SN``, ``VS``, ``asteroid`` or
``bogus``.  Requires PyTorch: ``pip install alerce-broker[torch]``.

Main entry points
-----------------
:func:`classify_alerts`
    ``alerts`` + ``stamps`` frames of an :class:`alerce.batch.AlertBatch` -> ``probability`` rows.
:func:`load_default_model`
    The bundled model (cached per process).
:class:`StampClassifier`
    scikit-learn style estimator (fit / predict_proba / predict / save / load).
:func:`train_stamp_classifier`, :func:`main`
    Training and the ``alerce train stamps`` command line.
"""

from __future__ import annotations

try:  # pragma: no cover - exercised only when torch is absent
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover
    raise ImportError(
        "alerce.classifiers.stamp needs PyTorch; install the extra with "
        "`pip install alerce-broker[torch]`"
    ) from exc

from alerce.classifiers.stamp.constants import CLASSES, CLASSIFIER_NAME, FEATURE_NAMES
from alerce.classifiers.stamp.estimator import StampClassifier, StampInputs
from alerce.classifiers.stamp.features import metadata_features
from alerce.classifiers.stamp.pipeline import (
    classify_alerts,
    default_model_dir,
    load_default_model,
    prepare_inputs,
)
from alerce.classifiers.stamp.preprocess import preprocess_stamps
from alerce.classifiers.stamp.rules import asteroid_mask, sn_rejected_mask
from alerce.classifiers.stamp.training import main, train_stamp_classifier

__all__ = [
    "CLASSES",
    "CLASSIFIER_NAME",
    "FEATURE_NAMES",
    "StampClassifier",
    "StampInputs",
    "asteroid_mask",
    "classify_alerts",
    "default_model_dir",
    "load_default_model",
    "main",
    "metadata_features",
    "prepare_inputs",
    "preprocess_stamps",
    "sn_rejected_mask",
    "train_stamp_classifier",
]
