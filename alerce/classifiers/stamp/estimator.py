"""scikit-learn style wrapper around the stamp network: fit, predict_proba, save, load."""

from __future__ import annotations

import contextlib
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from alerce.classifiers.stamp.constants import (
    CLASSES,
    FEATURE_CLIPPING,
    FEATURE_NAMES,
    FEATURE_NORM_STATS,
)
from alerce.classifiers.stamp.features import normalize_features
from alerce.classifiers.stamp.network import DeepHitsWithFeatures, entropy_regularized_loss

WEIGHTS_FILE = "model.safetensors"
#: Parameters describing the machine a model ran on, not the model: never restored by ``load``.
RUNTIME_PARAMS = ("num_threads", "device", "warm_start")
CARD_FILE = "model_card.json"


@dataclass
class StampInputs:
    """Model inputs for ``n`` alerts.

    Attributes
    ----------
    images : ndarray (n, 3, 21, 21) float32
        Preprocessed stamps (:func:`alerce.classifiers.stamp.preprocess.preprocess_stamps`).
    features : ndarray (n, 23) or DataFrame
        *Raw* metadata features (:func:`alerce.classifiers.stamp.features.metadata_features`);
        the estimator clips and z-scores them with its stored statistics.
    """

    images: np.ndarray
    features: np.ndarray | pd.DataFrame

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, index: np.ndarray) -> StampInputs:
        """Rows ``index`` of both arrays."""
        feats = self.features
        feats = feats.iloc[index] if isinstance(feats, pd.DataFrame) else np.asarray(feats)[index]
        return StampInputs(np.asarray(self.images)[index], feats)


def _as_inputs(X: Any) -> StampInputs:
    if isinstance(X, StampInputs):
        return X
    if isinstance(X, (tuple, list)) and len(X) == 2:
        return StampInputs(np.asarray(X[0]), X[1])
    raise TypeError("X must be a StampInputs or an (images, features) tuple")


@contextlib.contextmanager
def _torch_runtime(num_threads: int | None, deterministic: bool) -> Iterator[None]:
    """Temporarily set the thread count and deterministic-algorithms flag, then restore them."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    # changing the thread count rebuilds the OpenMP pool (slow): only touch it when it differs
    num_threads = int(num_threads) if num_threads and int(num_threads) != old_threads else None
    try:
        if num_threads:
            torch.set_num_threads(num_threads)
        if deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        yield
    finally:
        if num_threads:
            torch.set_num_threads(old_threads)
        if deterministic:
            torch.use_deterministic_algorithms(old_det)


class StampClassifier(ClassifierMixin, BaseEstimator):
    """Rotation-invariant stamp classifier (reference section 4) with a scikit-learn interface.

    Parameters
    ----------
    kernel_size : int, default 5
        Size of the "SAME" convolutions (the deployed ALeRCE weights use 5).
    dropout : float, default 0.5
    beta : float, default 0.5
        Entropy regularization weight of the loss ``CE - beta * H``.
    learning_rate : float, default 1e-3
        Adam learning rate.
    batch_size : int, default 64
    max_epochs : int, default 20
        Upper bound on passes over the (class-balanced) training set.
    max_time : float or None, default None
        Wall-clock budget for ``fit`` in seconds (training stops after the current evaluation).
    eval_every : int, default 100
        Iterations between validation-loss evaluations (model selection keeps the best weights).
    patience : int, default 10
        Evaluations without validation-loss improvement before stopping early.
    validation_fraction : float, default 0.1
        Stratified fraction held out for model selection when ``fit`` gets no validation set.
    random_state : int, default 0
        Seed for initialization, shuffling and dropout (the global torch RNG is not touched).
    num_threads : int or None, default None
        Threads torch may use inside ``fit``/``predict_proba`` (``torch.set_num_threads``, restored
        afterwards). ``None`` leaves the process setting alone (a Dask worker can call
        ``torch.set_num_threads(1)`` once per worker process instead).
    device : str, default "auto"
        ``"auto"`` uses CUDA when available, else CPU.
    model_version : str, default "1.0.0"
        Written as ``classifier_version``.
    warm_start : bool, default False
        ``fit`` continues from the current weights (e.g. of a loaded bundle) instead of a fresh
        initialization.

    Attributes
    ----------
    classes_ : ndarray of str
        ``["AGN", "SN", "VS", "asteroid", "bogus"]``.
    network_ : DeepHitsWithFeatures
    history_ : list of dict
        Training/validation loss at each evaluation.
    card_ : dict
        Model card (filled by training code and :meth:`load`).
    """

    def __init__(self, kernel_size: int = 5, dropout: float = 0.5, beta: float = 0.5,
                 learning_rate: float = 1e-3, batch_size: int = 64, max_epochs: int = 20,
                 max_time: float | None = None, eval_every: int = 100, patience: int = 10,
                 validation_fraction: float = 0.1, random_state: int = 0,
                 num_threads: int | None = None, device: str = "auto",
                 model_version: str = "1.0.0", warm_start: bool = False) -> None:
        self.kernel_size = kernel_size
        self.dropout = dropout
        self.beta = beta
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.max_time = max_time
        self.eval_every = eval_every
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.num_threads = num_threads
        self.device = device
        self.model_version = model_version
        self.warm_start = warm_start

    # ------------------------------------------------------------------ helpers
    def _device(self) -> torch.device:
        if self.device == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        return torch.device(self.device)

    def _new_network(self) -> DeepHitsWithFeatures:
        return DeepHitsWithFeatures(kernel_size=self.kernel_size, dropout=self.dropout)

    def _tensors(self, X: StampInputs, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        images = np.ascontiguousarray(np.asarray(X.images, dtype=np.float32))
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"images must have shape (n, 3, 21, 21), got {images.shape}")
        feats = normalize_features(X.features, self.norm_stats_, self.clipping_)
        return (torch.from_numpy(images).to(device), torch.from_numpy(feats).to(device))

    def _encode_labels(self, y: Sequence) -> np.ndarray:
        y = np.asarray(y)
        if y.dtype.kind in "iu":
            codes = y.astype(np.int64)
        else:
            lookup = {c: i for i, c in enumerate(self.classes_)}
            unknown = sorted({str(v) for v in y if v not in lookup})
            if unknown:
                raise ValueError(f"unknown class labels {unknown}; expected {list(self.classes_)}")
            codes = np.array([lookup[v] for v in y], dtype=np.int64)
        if len(codes) and (codes.min() < 0 or codes.max() >= len(self.classes_)):
            raise ValueError("integer labels must be in 0..4")
        return codes

    def _init_state(self) -> None:
        self.classes_ = np.array(CLASSES, dtype=object)
        self.norm_stats_ = dict(FEATURE_NORM_STATS)
        self.clipping_ = dict(FEATURE_CLIPPING)
        if not hasattr(self, "card_"):
            self.card_ = {}

    def initialize(self) -> StampClassifier:
        """Build an untrained network (seeded by ``random_state``) without fitting; useful for
        tests, benchmarks and warm starts."""
        self._init_state()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            self.network_ = self._new_network().eval()
        return self

    # ------------------------------------------------------------------ training
    def fit(self, X: Any, y: Sequence, X_val: Any = None, y_val: Sequence | None = None
            ) -> StampClassifier:
        """Train with Adam, class balance by replication and validation-loss model selection.

        Parameters
        ----------
        X : StampInputs or (images, features)
        y : sequence of class names (or indices into :attr:`classes_`)
        X_val, y_val : optional validation set; otherwise a stratified ``validation_fraction``
            of ``X`` is held out.
        """
        from sklearn.model_selection import train_test_split

        if not (self.warm_start and hasattr(self, "network_")):
            self._init_state()
        X = _as_inputs(X)
        codes = self._encode_labels(y)
        if X_val is None:
            idx = np.arange(len(X))
            strat = codes if np.bincount(codes).min() >= 2 else None
            tr, va = train_test_split(idx, test_size=self.validation_fraction,
                                      random_state=self.random_state, stratify=strat)
            X, X_val, codes, val_codes = X.subset(tr), X.subset(va), codes[tr], codes[va]
        else:
            X_val = _as_inputs(X_val)
            val_codes = self._encode_labels(y_val)
        device = self._device()
        rng = np.random.default_rng(self.random_state)
        start = time.perf_counter()
        with _torch_runtime(self.num_threads, deterministic=False), \
                torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.random_state)
            if self.warm_start and hasattr(self, "network_"):
                net = self.network_.to(device)
            else:
                net = self._new_network().to(device)
            opt = torch.optim.Adam(net.parameters(), lr=self.learning_rate, betas=(0.9, 0.999))
            images, feats = self._tensors(X, device)
            v_images, v_feats = self._tensors(X_val, device)
            target = torch.from_numpy(codes).to(device)
            v_target = torch.from_numpy(val_codes).to(device)
            best = (math.inf, None)
            self.history_ = []
            since_best, it, stop = 0, 0, False
            for epoch in range(self.max_epochs):
                order = balanced_order(codes, rng)
                running = []
                for lo in range(0, len(order) - self.batch_size + 1, self.batch_size):
                    batch = torch.from_numpy(order[lo:lo + self.batch_size]).to(device)
                    net.train()
                    loss = entropy_regularized_loss(
                        net(images[batch], feats[batch]), target[batch], self.beta)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    running.append(loss.item())
                    it += 1
                    over_time = self.max_time is not None and \
                        time.perf_counter() - start > self.max_time
                    if over_time:  # the final validation below still selects the best weights
                        stop = True
                        break
                    if it % self.eval_every == 0:
                        val = self._loss(net, v_images, v_feats, v_target)
                        self.history_.append({"iteration": it, "epoch": epoch,
                                              "train_loss": float(np.mean(running)),
                                              "val_loss": val})
                        running = []
                        if val < best[0]:
                            best = (val, {k: t.detach().clone() for k, t in
                                          net.state_dict().items()})
                            since_best = 0
                        else:
                            since_best += 1
                        if since_best >= self.patience:
                            stop = True
                            break
                if stop:
                    break
            val = self._loss(net, v_images, v_feats, v_target)
            if val < best[0] or best[1] is None:
                best = (val, {k: t.detach().clone() for k, t in net.state_dict().items()})
            net.load_state_dict(best[1])
        net.eval()
        self.network_ = net.cpu() if device.type != "cpu" else net
        self.best_val_loss_ = float(best[0])
        self.n_iter_ = it
        self.fit_time_ = time.perf_counter() - start
        return self

    def _loss(self, net: DeepHitsWithFeatures, images: torch.Tensor, feats: torch.Tensor,
              target: torch.Tensor) -> float:
        net.eval()
        with torch.no_grad():
            total = 0.0
            for lo in range(0, len(target), 512):
                sl = slice(lo, lo + 512)
                total += float(entropy_regularized_loss(
                    net(images[sl], feats[sl]), target[sl], self.beta)) * len(target[sl])
        return total / max(len(target), 1)

    # ------------------------------------------------------------------ inference
    def predict_proba(self, X: Any, batch_size: int = 16, fast: bool | None = None
                      ) -> np.ndarray:
        """Class probabilities ``(n, 5)`` in :attr:`classes_` order.

        Eval mode (no dropout), no gradients; on a GPU ``torch.use_deterministic_algorithms`` is
        switched on for the call. The same input always gives the same output.

        Parameters
        ----------
        X : StampInputs or (images, features)
        batch_size : int, default 16
            Alerts per forward pass (each expands to 4 rotated copies).
        fast : bool or None, default None
            Use the DFT-convolution forward pass
            (:class:`~alerce.classifiers.stamp.fastconv.FastStampForward`, equal to the module's
            forward within float32 rounding, ~1e-7 on the probabilities). ``None`` uses it on
            the CPU unless hooks are registered on the network (so that they still run);
            ``False`` always runs the module's own ``forward``.
        """
        if not hasattr(self, "network_"):
            raise RuntimeError("StampClassifier is not fitted; call fit() or load()")
        X = _as_inputs(X)
        if len(X) == 0:
            return np.zeros((0, len(self.classes_)))
        device = self._device()
        net = self.network_.to(device).eval()
        if fast is None:
            fast = device.type == "cpu" and not _has_hooks(net)
        forward = self._fast_forward(net) if fast else net
        out = []
        # CPU forward kernels are deterministic already and toggling the global flag per call
        # costs far more than the inference of one alert, so it is only switched on for GPUs.
        with _torch_runtime(self.num_threads, deterministic=device.type != "cpu"), \
                torch.inference_mode():
            images, feats = self._tensors(X, device)
            for lo in range(0, len(X), batch_size):
                logits = forward(images[lo:lo + batch_size], feats[lo:lo + batch_size])
                out.append(torch.softmax(logits.double(), dim=1).cpu().numpy())
        return np.concatenate(out)

    def _fast_forward(self, net: DeepHitsWithFeatures) -> Any:
        """The cached :class:`FastStampForward` of ``net``, rebuilt when its weights change."""
        from alerce.classifiers.stamp.fastconv import FastStampForward

        try:
            key = (id(net),) + tuple((id(t), t._version) for t in
                                     (*net.parameters(), *net.buffers()))
        except RuntimeError:  # inference tensors carry no version counter: never reuse
            key = None
        cached = getattr(self, "_fast_cache", None)
        if key is None or cached is None or cached[0] != key:
            cached = (key, FastStampForward(net))
            self._fast_cache = cached
        return cached[1]

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class name per sample."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    # ------------------------------------------------------------------ persistence
    def model_card(self) -> dict[str, Any]:
        """The JSON model card (training details from :attr:`card_` merged in)."""
        card = {
            "name": "stamp_classifier",
            "version": self.model_version,
            "architecture": "Deep-HiTS with rot90 cyclic average pooling + 23 metadata features "
                            "(Carrasco-Davis et al. 2021; alerce reference section 4.3)",
            "classes": list(self.classes_),
            "features": list(FEATURE_NAMES),
            "feature_clipping": {k: list(v) for k, v in self.clipping_.items()},
            "feature_normalization": {k: {"mean": m, "std": s}
                                      for k, (m, s) in self.norm_stats_.items()},
            "image_preprocessing": "channels [science, template, difference], 63x63 -> centre "
                                   "crop 21x21 (indices 21..41), per-image per-channel min-max, "
                                   "NaN -> 0",
            "params": self.get_params(),
            "weights_file": WEIGHTS_FILE,
        }
        for key, value in getattr(self, "card_", {}).items():
            card.setdefault(key, value)
        return card

    def save(self, path: str | Path) -> Path:
        """Write ``model.safetensors`` (tensors only) and ``model_card.json`` into ``path``."""
        from safetensors.torch import save_file

        if not hasattr(self, "network_"):
            raise RuntimeError("cannot save an unfitted StampClassifier")
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.network_.state_dict().items()}
        save_file(state, str(path / WEIGHTS_FILE))
        card = self.model_card()
        (path / CARD_FILE).write_text(json.dumps(card, indent=2, default=_json_default) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path, **overrides: Any) -> StampClassifier:
        """Load a bundle written by :meth:`save` (safetensors + JSON only; nothing is unpickled).

        ``overrides`` replace stored parameters (e.g. ``num_threads=1``, ``device="cpu"``);
        :data:`RUNTIME_PARAMS` of the training run are not restored.
        """
        from safetensors.torch import load_file

        path = Path(path)
        card_path, weights_path = path / CARD_FILE, path / WEIGHTS_FILE
        for p in (card_path, weights_path):
            if not p.is_file():
                raise FileNotFoundError(f"stamp classifier bundle is missing {p}")
        try:
            card = json.loads(card_path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{card_path}: invalid JSON at offset {exc.pos}: {exc.msg}") from exc
        if list(card.get("classes", [])) != list(CLASSES):
            raise ValueError(f"{card_path}: classes {card.get('classes')} != {list(CLASSES)}")
        if list(card.get("features", [])) != list(FEATURE_NAMES):
            raise ValueError(f"{card_path}: feature list differs from the 23 expected features")
        valid = set(cls().get_params()) - set(RUNTIME_PARAMS)
        params = {k: v for k, v in card.get("params", {}).items() if k in valid}
        params.update(overrides)
        model = cls(**params)
        model._init_state()
        model.norm_stats_ = {k: (float(v["mean"]), float(v["std"]))
                             for k, v in card["feature_normalization"].items()}
        model.clipping_ = {k: tuple(None if b is None else float(b) for b in v)
                           for k, v in card["feature_clipping"].items()}
        net = model._new_network()
        net.load_state_dict(load_file(str(weights_path)))
        model.network_ = net.eval()
        model.card_ = card
        return model


def _has_hooks(net: torch.nn.Module) -> bool:
    """True when any forward hook is registered on ``net`` or one of its submodules."""
    return any(m._forward_pre_hooks or m._forward_hooks for m in net.modules())


def balanced_order(codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shuffled training indices with every class replicated up to the majority count.

    Each class's samples are tiled (``balance_data_by_replication``) and the remainder drawn
    without replacement, so minority samples appear ``ceil(majority / n_class)`` times at most.
    """
    counts = np.bincount(codes)
    target = counts.max()
    parts = []
    for c in np.flatnonzero(counts):
        idx = np.flatnonzero(codes == c)
        reps, rest = divmod(target, len(idx))
        parts.append(np.concatenate([np.tile(idx, reps), rng.choice(idx, rest, replace=False)]))
    order = np.concatenate(parts)
    rng.shuffle(order)
    return order


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")
