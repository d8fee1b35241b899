"""The training core on the PyTorch CPU backend gives NumPy's results."""

import os

import numpy as np
import pytest

from nndl.backend import BackendUnavailable, get_backend
from nndl.neural_net import TwoLayerNet
from nndl.population import Member, train_population


@pytest.fixture(scope="module")
def torch_backend():
    try:
        return get_backend("torch", "cpu")
    except BackendUnavailable:
        if os.environ.get("CI"):
            pytest.fail("CI=true but torch is not installed (.ci/run installs it)")
        pytest.skip("torch is not installed")


def test_population_on_torch_matches_numpy(blobs, torch_backend):
    X, y, Xv, yv = blobs
    members = [Member(0.05, 0.01, 0.9, 0.1, seed=1), Member(0.2, 0.0, 1.0, 0.05, seed=2)]
    kwargs = dict(hidden_size=6, num_iters=40, batch_size=32, stream_seed=3, dtype=np.float64)
    on_numpy = train_population(members, X, y, Xv, yv, **kwargs)
    on_torch = train_population(members, X, y, Xv, yv, backend=torch_backend, **kwargs)
    for a, b in zip(on_numpy, on_torch):
        for name in a.net.params:
            np.testing.assert_allclose(b.net.params[name], a.net.params[name], rtol=1e-9,
                                       atol=1e-12)
        np.testing.assert_allclose(b.history["loss_history"], a.history["loss_history"],
                                   rtol=1e-9)
        assert b.history["val_acc_history"] == a.history["val_acc_history"]


@pytest.mark.parametrize("sampler", ["replacement", "blocks"])
def test_two_layer_net_trains_on_torch_like_on_numpy(blobs, torch_backend, sampler):
    X, y, Xv, yv = blobs
    results = []
    for backend in ("numpy", "torch"):
        net = TwoLayerNet(8, 10, 3, std=0.1, random_state=0, dtype=np.float32)
        stats = net.train(X, y, Xv, yv, learning_rate=0.1, reg=0.01, num_iters=60,
                          batch_size=40, backend=backend, batch_sampler=sampler)
        results.append((net.params, stats))
    (p_np, s_np), (p_t, s_t) = results
    for name in p_np:
        assert isinstance(p_t[name], np.ndarray)  # weights come back as NumPy arrays
        np.testing.assert_allclose(p_t[name], p_np[name], rtol=2e-4, atol=1e-5)
    np.testing.assert_allclose(s_t["loss_history"], s_np["loss_history"], rtol=1e-4)


def test_missing_gpu_is_a_clear_error():
    with pytest.raises(BackendUnavailable, match="no CUDA GPU is available"):
        try:
            import cupy  # noqa: F401

            pytest.skip("cupy is installed here")
        except ImportError:
            get_backend("auto", "cuda")


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="backend must be one of"):
        get_backend("jax")
