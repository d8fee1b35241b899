"""Preprocessing fit on training rows only, and saved with a model.

Each transform maps rows (N, D) to rows (N, D') and exposes its fitted state
as plain arrays (``state()``), so a model file can store it without pickle
and ``make_transform(name, **state)`` can rebuild it. A :class:`Pipeline`
composes them. Rows of images are flattened (height, width, channel).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from nndl._typing import NDArray, RandomState

PREPROCESSING = ("mean", "standardize", "pca", "zca")


class _Fitted:
    name = ""
    _state_keys: tuple = ()
    # fitted state: None until fit (or given when a saved transform is restored)
    mean_: Any
    scale_: Any
    components_: Any

    def fit(self, X: NDArray) -> _Fitted:
        raise NotImplementedError

    def transform(self, X: NDArray, copy: bool = True) -> NDArray:
        raise NotImplementedError

    def fit_transform(self, X: NDArray, copy: bool = True) -> NDArray:
        return self.fit(X).transform(X, copy=copy)

    def state(self):
        return {k: getattr(self, k) for k in self._state_keys}

    def _cast(self, X):
        return np.asarray(X, dtype=X.dtype if np.issubdtype(X.dtype, np.floating) else np.float64)


class MeanImage(_Fitted):
    """Subtract the training mean (the assignment's mean image), ``mean_`` (D,)."""

    name, _state_keys = "mean", ("mean_",)

    def __init__(self, mean_: NDArray | None = None) -> None:
        self.mean_ = mean_

    def fit(self, X: NDArray) -> MeanImage:
        self.mean_ = np.mean(X, axis=0, dtype=np.float64)
        return self

    def transform(self, X: NDArray, copy: bool = True) -> NDArray:
        """``X - mean_``; with ``copy=False`` a float ``X`` is changed in place."""
        X = self._cast(X)
        if copy or not np.issubdtype(X.dtype, np.floating):
            return X - self.mean_.astype(X.dtype, copy=False)
        X -= self.mean_.astype(X.dtype, copy=False)
        return X


class Standardize(_Fitted):
    """Per-feature standardization: ``(x - mean_) / scale_``; ``scale_`` is the training
    standard deviation (features with none are left unscaled)."""

    name, _state_keys = "standardize", ("mean_", "scale_")

    def __init__(self, mean_: NDArray | None = None, scale_: NDArray | None = None) -> None:
        self.mean_, self.scale_ = mean_, scale_

    def fit(self, X: NDArray) -> Standardize:
        self.mean_ = np.mean(X, axis=0, dtype=np.float64)
        std = np.std(X, axis=0, dtype=np.float64)
        self.scale_ = np.where(std > 0, std, 1.0)
        return self

    def transform(self, X: NDArray, copy: bool = True) -> NDArray:
        """``(X - mean_) / scale_``; with ``copy=False`` a float ``X`` is changed in place."""
        cast = self._cast(X)
        X = cast.copy() if copy and cast is X else cast  # then in place: no temporaries
        X -= self.mean_.astype(X.dtype)
        X /= self.scale_.astype(X.dtype)
        return X


class PCAWhiten(_Fitted):
    """Project onto the top ``n_components`` principal components, each scaled to unit
    variance: ``(x - mean_) @ components_.T / scale_``.

    ``epsilon`` (relative to the mean eigenvalue) regularizes small eigenvalues.
    """

    name, _state_keys = "pca", ("mean_", "components_", "scale_")

    def __init__(self, n_components: int | None = None, epsilon: float = 1e-2,
                 mean_: NDArray | None = None, components_: NDArray | None = None,
                 scale_: NDArray | None = None) -> None:
        self.n_components, self.epsilon = n_components, epsilon
        self.mean_, self.components_, self.scale_ = mean_, components_, scale_

    def fit(self, X: NDArray) -> PCAWhiten:
        self.mean_ = np.mean(X, axis=0, dtype=np.float64)
        centred = np.asarray(X, dtype=np.float64) - self.mean_
        cov = centred.T @ centred / max(len(X) - 1, 1)
        eigvals, eigvecs = np.linalg.eigh(cov)
        order = np.argsort(eigvals)[::-1][: self.n_components or len(eigvals)]
        eigvals, eigvecs = np.clip(eigvals[order], 0, None), eigvecs[:, order]
        self.components_ = eigvecs.T
        self.scale_ = np.sqrt(eigvals + self.epsilon * eigvals.mean())
        return self

    def transform(self, X: NDArray, copy: bool = True) -> NDArray:
        X = self._cast(X)
        centred = X - self.mean_.astype(X.dtype)
        return (centred @ self.components_.T.astype(X.dtype)) / self.scale_.astype(X.dtype)


class ZCAWhiten(PCAWhiten):
    """PCA whitening rotated back to pixel space (D' = D): ``whiten(x) @ components_``."""

    name = "zca"

    def transform(self, X: NDArray, copy: bool = True) -> NDArray:
        white = super().transform(X)
        return white @ self.components_.astype(white.dtype)


_REGISTRY = {cls.name: cls for cls in (MeanImage, Standardize, PCAWhiten, ZCAWhiten)}


def make_transform(name: str, **kwargs: Any) -> Any:
    """A transform by name (one of :data:`PREPROCESSING`), from options or saved state."""
    if name not in _REGISTRY:
        raise ValueError(f"preprocessing must be one of {PREPROCESSING}, got {name!r}")
    return _REGISTRY[name](**kwargs)


class Pipeline:
    """Transforms applied in order, each fit on the previous one's training output."""

    def __init__(self, steps: Sequence[Any] = ()) -> None:
        self.steps = [make_transform(s) if isinstance(s, str) else s for s in steps]

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.steps]

    def fit_transform(self, X: NDArray, copy: bool = True) -> NDArray:
        """Fit each step on the previous one's output; ``copy=False`` lets steps work
        in place on a float ``X`` the caller owns (saves a copy of the data)."""
        for step in self.steps:
            X = step.fit_transform(X, copy=copy)
        return X

    def transform(self, X: NDArray, copy: bool = True) -> NDArray:
        for step in self.steps:
            X = step.transform(X, copy=copy)
        return X

    def fit_chunks(self, chunks: Callable[[], Iterable[NDArray]]) -> Pipeline:
        """Fit on training rows too large to hold at once: ``chunks()`` yields them as
        (n, D) arrays, afresh for each of one pass per step. Mean and standardize only
        (their statistics are sums; the mean is the same as :meth:`fit_transform`'s, the
        standard deviation equal to rounding); pca and zca need the rows in memory."""
        fitted: list[Any] = []
        for step in self.steps:
            if not isinstance(step, (MeanImage, Standardize)):
                raise ValueError(f"{step.name} preprocessing needs the training images in "
                                 "memory; with data this large use mean or standardize")
            n, total, squares = 0, 0.0, 0.0
            for rows in chunks():
                rows = np.asarray(rows, dtype=np.float64)
                for done in fitted:
                    rows = done.transform(rows, copy=False)
                n, total, squares = n + len(rows), total + rows.sum(axis=0), \
                    squares + np.einsum("ij,ij->j", rows, rows)
            step.mean_ = total / n
            if isinstance(step, Standardize):
                std = np.sqrt(np.maximum(squares / n - step.mean_ ** 2, 0.0))
                step.scale_ = np.where(std > 0, std, 1.0)
            fitted.append(step)
        return self

    def __call__(self, X: NDArray) -> NDArray:
        return self.transform(X)

    def to_arrays(self) -> tuple[list[str], dict[str, NDArray]]:
        """(names, {"<i>.<key>": array}) for storage without pickle."""
        arrays = {f"{i}.{k}": np.asarray(v) for i, s in enumerate(self.steps)
                  for k, v in s.state().items()}
        return self.names, arrays

    @classmethod
    def from_arrays(cls, names: Sequence[str], arrays: Mapping[str, NDArray]) -> Pipeline:
        steps = []
        for i, name in enumerate(names):
            state = {k.split(".", 1)[1]: v for k, v in arrays.items() if k.startswith(f"{i}.")}
            steps.append(make_transform(name, **state))
        return cls(steps)


# -- augmentation: drawn per minibatch and per image --------------------------------
def random_flip(images: NDArray, rng: RandomState) -> NDArray:
    """Mirror each image (N, H, W, C) left-right with probability 1/2."""
    from nndl._random import uniform

    flip = uniform(rng, (len(images),)) < 0.5
    out = images.copy()
    out[flip] = images[flip, :, ::-1]
    return out


def random_translate(images: NDArray, rng: RandomState, max_shift: int) -> NDArray:
    """Shift each image (N, H, W, C) by up to ``max_shift`` pixels in each direction,
    filling with the edge pixels (a padded random crop)."""
    from nndl._random import sample_indices

    n, h, w, _ = images.shape
    side = 2 * max_shift + 1
    padded = np.pad(images, ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0)),
                    mode="edge")
    dy = sample_indices(rng, side, n)
    dx = sample_indices(rng, side, n)
    out = np.empty_like(images)
    shift = dy * side + dx
    for code in np.unique(shift):  # one slice copy per distinct shift, not per pixel
        members = np.flatnonzero(shift == code)
        y0, x0 = divmod(int(code), side)
        out[members] = padded[members, y0 : y0 + h, x0 : x0 + w]
    return out


def make_batch_transform(pipeline: Pipeline, dtype: DTypeLike, augment: Any = None
                         ) -> Callable[[NDArray, RandomState], NDArray]:
    """``(images (B, H, W, C), rng) -> rows (B, D')``: augmentation (an object with
    ``apply(images, rng)``, e.g. :class:`nndl.config.Augmentation`, or None), flattening,
    then the fitted preprocessing — what the training loop applies to each minibatch."""

    def transform(images, rng):
        if augment is not None:
            images = augment.apply(images, rng)
        rows = images.reshape(len(images), -1).astype(dtype)
        return pipeline.transform(rows, copy=False) if pipeline.steps else rows

    return transform
