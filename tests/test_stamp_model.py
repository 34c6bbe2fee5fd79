"""Stamp classifier network, loss, estimator persistence and determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from alerce.classifiers.stamp import CLASSES, StampClassifier, StampInputs  # noqa: E402
from alerce.classifiers.stamp.estimator import balanced_order  # noqa: E402
from alerce.classifiers.stamp.network import (  # noqa: E402
    DeepHitsWithFeatures,
    entropy_regularized_loss,
)
from alerce.classifiers.stamp.preprocess import preprocess_images  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return StampClassifier(random_state=1, num_threads=1).initialize()


@pytest.fixture(scope="module")
def raw_and_features():
    rng = np.random.default_rng(0)
    raw = rng.gamma(2.0, 50.0, (7, 3, 63, 63)).astype(np.float32)
    raw[:, :, 28:35, 28:35] += rng.uniform(0, 500, (7, 3, 1, 1)).astype(np.float32)
    feats = rng.normal(0, 1, (7, 23)) * 5
    return raw, feats


def test_layer_shapes():
    net = DeepHitsWithFeatures(kernel_size=5).eval()
    x = torch.rand(3, 3, 21, 21)
    assert net.conv(x).shape == (3, 2304)            # 6x6x64 after the second max-pool
    assert net.embed(x).shape == (3, 64)
    assert net(x, torch.randn(3, 23)).shape == (3, 5)
    shapes = {n: tuple(p.shape) for n, p in net.named_parameters()}
    assert shapes["conv.1.weight"] == (32, 3, 4, 4)
    assert shapes["conv.3.weight"] == (32, 32, 5, 5)
    assert shapes["conv.6.weight"] == (64, 32, 5, 5)
    assert shapes["dense1.weight"] == (64, 2304)
    assert shapes["dense2.weight"] == (64, 87)
    assert shapes["logits.weight"] == (5, 64)
    assert shapes["feature_norm.weight"] == (23,)


def test_rotation_invariance(model, raw_and_features):
    raw, feats = raw_and_features
    p0 = model.predict_proba(StampInputs(preprocess_images(raw), feats))
    for k in (1, 2, 3):
        rotated = np.ascontiguousarray(np.rot90(raw, k, axes=(2, 3)))
        pk = model.predict_proba(StampInputs(preprocess_images(rotated), feats))
        np.testing.assert_allclose(pk, p0, rtol=0, atol=1e-6)
    # the image embedding itself is invariant to rot90, but not to a shift (negative control)
    net = model.network_.eval()
    with torch.no_grad():
        e0 = net.embed(torch.from_numpy(preprocess_images(raw)))
        e1 = net.embed(torch.from_numpy(preprocess_images(
            np.ascontiguousarray(np.rot90(raw, 1, axes=(2, 3))))))
        es = net.embed(torch.from_numpy(preprocess_images(np.roll(raw, 3, axis=3))))
    scale = e0.abs().max().item()
    assert (e1 - e0).abs().max().item() < 1e-5 * scale
    assert (es - e0).abs().max().item() > 1e-2 * scale


def test_loss_matches_manual_computation():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, (8, 5))
    y = rng.integers(0, 5, 8)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    ce = -np.log(p[np.arange(8), y])
    h = -(p * np.log(p)).sum(1)
    for beta in (0.0, 0.5, 1e-3):
        want = np.mean(ce - beta * h)
        got = entropy_regularized_loss(torch.tensor(z), torch.tensor(y), beta).item()
        assert np.isclose(got, want, rtol=1e-10)


def test_save_load_round_trip_identical(tmp_path, model, raw_and_features):
    raw, feats = raw_and_features
    X = StampInputs(preprocess_images(raw), feats)
    model.save(tmp_path)
    card = json.loads((tmp_path / "model_card.json").read_text())
    assert card["classes"] == list(CLASSES) and len(card["features"]) == 23
    assert card["feature_normalization"]["magpsf"] == {"mean": 18.917, "std": 1.408}
    loaded = StampClassifier.load(tmp_path, num_threads=1)   # same thread count -> same sums
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    assert loaded.get_params() == model.get_params()
    # the thread count is a runtime setting: it is not restored from the bundle
    assert StampClassifier.load(tmp_path).num_threads is None
    from safetensors.torch import load_file

    tensors = load_file(str(tmp_path / "model.safetensors"))  # plain tensors, no pickle
    assert tensors["dense1.weight"].shape == (64, 2304)


def test_load_rejects_bad_bundle(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="model_card.json"):
        StampClassifier.load(tmp_path)
    model.save(tmp_path)
    (tmp_path / "model_card.json").write_text("{not json")
    with pytest.raises(ValueError, match="model_card.json: invalid JSON at offset"):
        StampClassifier.load(tmp_path)


def test_deterministic_and_batch_independent(model, raw_and_features):
    raw, feats = raw_and_features
    X = StampInputs(preprocess_images(raw), feats)
    a, b = model.predict_proba(X), model.predict_proba(X)
    np.testing.assert_array_equal(a, b)
    one_by_one = np.concatenate([model.predict_proba(X.subset(np.array([i])))
                                 for i in range(len(X))])
    np.testing.assert_allclose(one_by_one, a, atol=1e-6)
    np.testing.assert_allclose(a.sum(1), 1.0, atol=1e-12)
    assert set(model.predict(X)) <= set(CLASSES)


def test_num_threads_is_used_and_restored(raw_and_features):
    raw, feats = raw_and_features
    clf = StampClassifier(num_threads=1, random_state=2).initialize()
    seen = []
    hook = clf.network_.register_forward_pre_hook(lambda *a: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        clf.predict_proba(StampInputs(preprocess_images(raw), feats))
        assert torch.get_num_threads() == 2          # restored after the call
    finally:
        hook.remove()
        torch.set_num_threads(before)
    assert seen and set(seen) == {1}


def test_balanced_order_replicates_minorities():
    codes = np.array([0] * 10 + [1] * 3 + [3] * 1)
    order = balanced_order(codes, np.random.default_rng(0))
    counts = np.bincount(codes[order], minlength=5)
    assert counts.tolist() == [10, 10, 0, 10, 0]
    assert set(order[codes[order] == 0]) == set(range(10))   # majority kept once each


def test_fit_learns_a_separable_toy_problem():
    rng = np.random.default_rng(2)
    n = 60
    images = rng.uniform(0, 0.1, (n, 3, 21, 21)).astype(np.float32)
    y = np.array(["SN", "bogus"] * (n // 2), dtype=object)
    images[y == "SN", :, 8:13, 8:13] = 1.0
    feats = rng.normal(0, 1, (n, 23))
    clf = StampClassifier(max_epochs=15, eval_every=3, patience=100, batch_size=16,
                          random_state=0, dropout=0.0, beta=0.0, learning_rate=3e-3, num_threads=1)
    clf.fit(StampInputs(images, feats), y)
    # model selection keeps the weights of the lowest validation loss seen
    assert clf.history_ and clf.best_val_loss_ <= min(h["val_loss"] for h in clf.history_) + 1e-9
    assert np.mean(clf.predict(StampInputs(images, feats)) == y) > 0.9
    with pytest.raises(ValueError, match="unknown class labels"):
        clf.fit(StampInputs(images, feats), np.array(["nope"] * n))


def test_unfitted_model_raises():
    with pytest.raises(RuntimeError, match="not fitted"):
        StampClassifier().predict_proba((np.zeros((1, 3, 21, 21)), np.zeros((1, 23))))
