"""Model files: weights, preprocessing, class names, hyperparameters and history.

A model file is one ``.npz`` archive holding only numeric arrays: the
parameters (``param.W1`` ...), the fitted preprocessing (``transform.<i>.<key>``)
and ``metadata.json`` (UTF-8 JSON stored as a uint8 array). It is read with
``allow_pickle=False``: nothing in it is ever unpickled. Files are written to
a temporary name and renamed, so a crash never leaves a half-written model.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nndl._atomic import atomic_path
from nndl.neural_net import TwoLayerNet
from nndl.transforms import Pipeline

FORMAT = "nndl-model"
FORMAT_VERSION = 1
TTA = (None, "flip")  # test-time augmentations


class ModelFileError(ValueError):
    """A model file is damaged, not a model, or from a newer nndl."""


@dataclass
class SavedModel:
    """A network with everything needed to use it on new images.

    ``predict_images`` / ``predict_proba_images`` take uint8 or float images
    of shape (N, H, W, C) matching ``image_shape``, flatten them, apply the
    saved preprocessing and run the network.
    """

    net: TwoLayerNet
    transform: Pipeline = field(default_factory=Pipeline)
    class_names: tuple = ()
    hyperparameters: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    image_shape: tuple = (32, 32, 3)
    metrics: dict = field(default_factory=dict)

    def rows(self, images):
        images = np.asarray(images)
        if images.shape[1:] != tuple(self.image_shape):
            raise ValueError(f"images must have shape (N, {', '.join(map(str, self.image_shape))})"
                             f", got {images.shape}")
        rows = images.reshape(len(images), -1).astype(self.net.dtype)
        return self.transform.transform(rows) if self.transform.steps else rows

    def predict_proba_images(self, images, tta=None):
        """Class probabilities (N, C) for raw images (N, H, W, C).

        ``tta="flip"`` (test-time augmentation) averages the probabilities of each
        image and its left-right mirror: two passes of the same network.
        """
        if tta not in TTA:
            raise ValueError(f"tta must be one of {TTA}, got {tta!r}")
        probs = self.net.predict_proba(self.rows(images))
        if tta == "flip":
            probs = (probs + self.net.predict_proba(self.rows(np.asarray(images)[:, :, ::-1])))
            probs /= 2
        return probs

    def predict_images(self, images, tta=None):
        """Predicted labels (N,) for raw images (N, H, W, C); ``tta`` as in
        :meth:`predict_proba_images`."""
        if tta is None:
            return self.net.predict(self.rows(images))
        return np.argmax(self.predict_proba_images(images, tta), axis=1)


def save_model(path, model):
    """Write ``model`` (a :class:`SavedModel`) to ``path`` atomically; returns the path."""
    path = Path(path)
    names, transform_arrays = model.transform.to_arrays()
    net = model.net
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "architecture": {"input_size": net.input_size, "hidden_size": net.hidden_size,
                         "output_size": net.output_size, "dtype": net.dtype.name},
        "transform": names,
        "class_names": list(model.class_names),
        "image_shape": list(model.image_shape),
        "hyperparameters": model.hyperparameters,
        "history": model.history,
        "metrics": model.metrics,
    }
    arrays = {f"param.{k}": v for k, v in net.params.items()}
    arrays.update({f"transform.{k}": v for k, v in transform_arrays.items()})
    arrays["metadata.json"] = np.frombuffer(json.dumps(metadata).encode(), dtype=np.uint8)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
    return path


def load_model(path):
    """Read a model file written by :func:`save_model` (never unpickling anything)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelFileError(f"{path}: damaged or not an nndl model file ({exc})") from exc
    try:
        metadata = json.loads(arrays.pop("metadata.json").tobytes().decode())
    except (KeyError, ValueError) as exc:
        raise ModelFileError(f"{path}: not an nndl model file (no readable metadata)") from exc
    if metadata.get("format") != FORMAT:
        raise ModelFileError(f"{path}: not an nndl model file")
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ModelFileError(f"{path}: model format version {version} is newer than this nndl "
                             f"reads ({FORMAT_VERSION}); upgrade nndl")
    arch = metadata["architecture"]
    D, H, C = arch["input_size"], arch["hidden_size"], arch["output_size"]
    shapes = {"W1": (H, D), "b1": (H,), "W2": (C, H), "b2": (C,)}
    params = {}
    for name, shape in shapes.items():
        value = arrays.get(f"param.{name}")
        if value is None or value.shape != shape:
            raise ModelFileError(f"{path}: parameter {name} missing or of the wrong shape")
        params[name] = value.astype(arch["dtype"])
    net = TwoLayerNet.from_params(params, random_state=0)
    transform = Pipeline.from_arrays(
        metadata["transform"],
        {k[len("transform."):]: v for k, v in arrays.items() if k.startswith("transform.")})
    return SavedModel(net, transform, tuple(metadata["class_names"]),
                      metadata.get("hyperparameters", {}), metadata.get("history", {}),
                      tuple(metadata["image_shape"]), metadata.get("metrics", {}))
