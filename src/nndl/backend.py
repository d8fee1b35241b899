"""Array backends: NumPy (default), PyTorch and CuPy through the Python array API.

``get_backend(name, device)`` returns a :class:`Backend` whose ``xp`` is an
array-API namespace (``array_api_compat``'s wrappers for torch and cupy).
The training core (:mod:`nndl.population`, which also trains single
networks) is written against ``xp`` only, so the same code runs on all three.

Names: ``numpy``; ``torch`` (``device`` "cpu" or "cuda"); ``cupy`` (CUDA);
``auto`` with ``device="cuda"`` picks CuPy, else PyTorch, whichever has a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BACKENDS = ("numpy", "torch", "cupy", "auto")


class BackendUnavailable(RuntimeError):
    """The requested backend or device is not installed or not present."""


@dataclass
class Backend:
    name: str
    xp: object
    device: object = None

    def asarray(self, x, dtype=None):
        """``x`` (NumPy or backend array) on this backend's device, optionally cast."""
        if self.name == "numpy":
            return np.asarray(x, dtype=dtype)
        xp = self.xp
        dt = None if dtype is None else getattr(xp, np.dtype(dtype).name)
        if self.name == "torch":
            import torch

            if isinstance(x, np.ndarray):
                x = torch.from_numpy(np.ascontiguousarray(x))
            return x.to(device=self.device, dtype=dt)
        return xp.asarray(x, dtype=dt)

    def to_numpy(self, x):
        if self.name == "numpy":
            return np.asarray(x)
        if self.name == "torch":
            return x.detach().cpu().numpy()
        return x.get()

    def dtype(self, dtype):
        return np.dtype(dtype) if self.name == "numpy" else getattr(self.xp,
                                                                    np.dtype(dtype).name)

    def synchronize(self):
        """Wait for queued device work (for timing)."""
        if self.name == "torch" and str(self.device).startswith("cuda"):
            import torch

            torch.cuda.synchronize()
        elif self.name == "cupy":
            import cupy

            cupy.cuda.Device().synchronize()


NUMPY = Backend("numpy", np)


def get_backend(name="numpy", device=None):
    """The backend called ``name`` on ``device``; a clear error when it is not available."""
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    if name == "numpy":
        if device not in (None, "cpu"):
            raise BackendUnavailable(f"the numpy backend runs on the CPU only, not {device!r}; "
                                     "use --device cuda with cupy or torch installed")
        return NUMPY
    if name == "auto":
        errors = []
        for candidate in ("cupy", "torch"):
            try:
                return get_backend(candidate, device or "cuda")
            except BackendUnavailable as exc:
                errors.append(str(exc))
        raise BackendUnavailable("no CUDA GPU is available: " + "; ".join(errors))
    if name == "torch":
        try:
            import torch
            from array_api_compat import torch as xp
        except ImportError as exc:
            raise BackendUnavailable(f"the torch backend needs torch and array-api-compat "
                                     f"({exc})") from exc
        device = device or "cpu"
        if str(device).startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("torch finds no CUDA GPU on this machine")
        return Backend("torch", xp, torch.device(device))
    try:
        import cupy
        from array_api_compat import cupy as xp
    except ImportError as exc:
        raise BackendUnavailable(f"the cupy backend needs cupy and array-api-compat ({exc})") \
            from exc
    try:
        cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # noqa: BLE001 - cupy raises its own CUDA error types
        raise BackendUnavailable(f"cupy finds no CUDA GPU on this machine ({exc})") from exc
    return Backend("cupy", xp, "cuda")


def resolve_backend(name="numpy", device="cpu"):
    """The :class:`Backend` for a configuration's ``backend`` and ``device``: device cuda
    with the numpy backend means whichever GPU backend is installed (``auto``)."""
    if name == "numpy" and device != "cpu":
        name = "auto"
    return NUMPY if name == "numpy" else get_backend(name, device)
