"""The training core on the PyTorch CPU backend gives NumPy's results; a GPU asked for where
there is none is a clear error (skipped where torch or cupy finds one)."""

import os

import numpy as np
import pytest

from nndl.backend import BackendUnavailable, get_backend
from nndl.config import TrainOptions
from nndl.neural_net import TwoLayerNet
from nndl.training import Member, train_members


@pytest.fixture(scope="module")
def torch_backend():
    try:
        return get_backend("torch", "cpu")
    except BackendUnavailable:
        if os.environ.get("CI"):
            pytest.fail("CI=true but torch is not installed (.ci/run installs it)")
        pytest.skip("torch is not installed")


MIXED = [dict(learning_rate=0.05, reg=0.01, learning_rate_decay=0.9),
         dict(learning_rate=0.01, optimizer="adamw", weight_decay=0.1, schedule="cosine"),
         dict(learning_rate=0.05, optimizer="nesterov", label_smoothing=0.1, dropout=0.2),
         dict(learning_rate=0.003, optimizer="rmsprop", reg=0.02),
         dict(learning_rate=0.02, optimizer="adamw", weight_decay=0.01)]


def test_mixed_population_on_torch_matches_numpy(blobs, torch_backend):
    X, y, Xv, yv = blobs
    runs = []
    for backend in ("numpy", "torch"):
        members = [Member(TwoLayerNet(8, 6, 3, std=0.1, random_state=i).params,
                          TrainOptions(num_iters=40, batch_size=32, backend=backend, **o))
                   for i, o in enumerate(MIXED)]
        runs.append(train_members(members, X, y, Xv, yv, rng=np.random.default_rng(3)))
    for a, b in zip(*runs):
        for name in a.params:
            np.testing.assert_allclose(b.params[name], a.params[name], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b.history["loss_history"], a.history["loss_history"],
                                   rtol=1e-9)
        assert b.history["val_acc_history"] == a.history["val_acc_history"]


@pytest.mark.parametrize("batchnorm", [False, True])
def test_a_deep_mixed_population_on_torch_matches_numpy(blobs, torch_backend, batchnorm):
    """The array-API branches of every layer past the first, and batch normalization."""
    from nndl.architecture import Architecture, init_params

    X, y, Xv, yv = blobs
    arch = Architecture((8, 7, 6, 5, 3), batchnorm)
    runs = []
    for backend in ("numpy", "torch"):
        members = [Member(init_params(arch, "auto", np.random.default_rng(i)),
                          TrainOptions(num_iters=40, batch_size=32, backend=backend, **o))
                   for i, o in enumerate(MIXED)]
        runs.append(train_members(members, X, y, Xv, yv, rng=np.random.default_rng(3)))
    for a, b in zip(*runs):
        assert set(a.params) == set(b.params) == set(arch.param_shapes())
        for name in a.params:
            if batchnorm and name in ("b1", "b2", "b3"):
                # a bias before batch normalization has a zero gradient but for rounding,
                # which Adam and RMSProp scale up to whole steps: those wander apart
                continue
            np.testing.assert_allclose(b.params[name], a.params[name], rtol=1e-8, atol=1e-10,
                                       err_msg=name)
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


def gpu_found():
    """Whether torch or cupy (either installed) sees a CUDA device here."""
    try:
        import torch

        if torch.cuda.is_available():
            return True
    except ImportError:
        pass
    try:
        import cupy

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - not installed, or cupy's own CUDA errors: none found
        return False


def test_missing_gpu_is_a_clear_error():
    if gpu_found():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(BackendUnavailable, match="no CUDA GPU is available"):
        get_backend("auto", "cuda")


def test_torch_without_a_gpu_says_so(torch_backend):
    import torch

    if torch.cuda.is_available():
        pytest.skip("torch finds a CUDA GPU here")
    with pytest.raises(BackendUnavailable, match="torch finds no CUDA GPU"):
        get_backend("torch", "cuda")


def test_auto_on_a_gpu_machine_picks_a_gpu_backend():
    if not gpu_found():
        pytest.skip("no CUDA GPU here")
    backend = get_backend("auto", "cuda")
    assert backend.name in ("cupy", "torch") and str(backend.device).startswith("cuda")


def test_numpy_refuses_the_gpu_whatever_the_machine():
    with pytest.raises(BackendUnavailable, match="numpy backend runs on the CPU only"):
        get_backend("numpy", "cuda")


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="backend must be one of"):
        get_backend("jax")
