"""Model files: weights, preprocessing, class names, hyperparameters and history.

A model file is one ``.npz`` archive holding only numeric arrays (nndl's format,
:mod:`nndl._archive`): the parameters (``param.W1`` ...), the fitted preprocessing
(``transform.<i>.<key>``) and ``metadata.json`` (UTF-8 JSON stored as a uint8 array). It
is read header first: nothing in it is ever unpickled. Files are written to
a temporary name and renamed, so a crash never leaves a half-written model.

Images reach a model as pixel values 0-255 (what ``nndl predict`` reads from
image files and every dataset loader gives). A model fitted on another scale
records it as ``input_range`` (low, high): pixels are mapped linearly onto it
before the saved preprocessing. Files without it (all files before it existed)
take pixels as they are. A file that records an ``input_range`` is written as
format version 2, so an nndl too old to apply it refuses the file instead of
predicting from the wrong scale; every other file stays version 1.

Model files hold the first assignment's network, :class:`nndl.neural_net.TwoLayerNet`
(``W1`` (H, D), ``W2`` (C, H)), or a :class:`nndl.network.Network` of any depth (layer sizes
``architecture.sizes``, ``architecture.batchnorm``), and record which as
``architecture.network``. A Network's file is format version 3 (an nndl that knows only the
two-layer network refuses it by its version); a TwoLayerNet's stays version 1 or 2 as
before. A file that records another network (the course's ``nndl.fc_net`` ones store ``W1``
as (D, H)) is refused, and so is saving one. The course's networks are saved by the
Solver's checkpoints (:mod:`nndl.solver`); each reader names the other when handed the
other's file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import partial
from numbers import Real
from pathlib import Path

import numpy as np

from nndl import _memory
from nndl._archive import (
    CHECKPOINT_FORMAT,
    MODEL_FORMAT,
    Archive,
    check_format,
    decode_metadata,
    write_archive,
)
from nndl._typing import ArrayLike, NDArray, PathLike
from nndl.architecture import BN_EPS, Architecture
from nndl.network import Network
from nndl.neural_net import TwoLayerNet
from nndl.transforms import PREPROCESSING, Pipeline, make_transform

FORMAT = MODEL_FORMAT
#: The networks model files hold, as their ``architecture.network`` records them.
NETWORK = "nndl.neural_net.TwoLayerNet"
DEEP_NETWORK = "nndl.network.Network"
#: the newest this nndl reads and writes (2: ``input_range``; 3: a Network of any depth)
FORMAT_VERSION = 3
PIXEL_RANGE = (0.0, 255.0)  # the values images arrive in
TTA = (None, "flip")  # test-time augmentations
IMAGE_CHANNELS = (1, 3)  # grayscale or RGB: what nndl's image readers give


class ModelFileError(ValueError):
    """A model file is damaged, not a model, or from a newer nndl."""


@dataclass
class SavedModel:
    """A network with everything needed to use it on new images.

    ``predict_images`` / ``predict_proba_images`` take uint8 or float images
    of shape (N, H, W, C) matching ``image_shape`` with pixel values 0-255,
    flatten them, map them onto ``input_range`` (the (low, high) scale the
    network was fitted on; None: 0-255, taken as they are), apply the saved
    preprocessing and run the network.
    """

    net: TwoLayerNet | Network
    transform: Pipeline = field(default_factory=Pipeline)
    class_names: tuple = ()
    hyperparameters: dict = field(default_factory=dict)
    history: dict = field(default_factory=dict)
    image_shape: tuple = (32, 32, 3)
    metrics: dict = field(default_factory=dict)
    input_range: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        self.image_shape = check_image_shape(self.image_shape)
        if self.input_range is not None:
            self.input_range = check_input_range(self.input_range)

    def rows(self, images: ArrayLike) -> NDArray:
        """The network's input rows (N, D) for images (N, H, W, C) of pixels 0-255."""
        images = np.asarray(images)
        if images.shape[1:] != tuple(self.image_shape):
            raise ValueError(f"images must have shape (N, {', '.join(map(str, self.image_shape))})"
                             f", got {images.shape}")
        rows = images.reshape(len(images), -1).astype(self.net.dtype)
        if self.input_range is not None:
            low, high = self.input_range
            rows *= (high - low) / PIXEL_RANGE[1]
            rows += low
        return self.transform.transform(rows) if self.transform.steps else rows

    def predict_proba_images(self, images: ArrayLike, tta: str | None = None) -> NDArray:
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

    def predict_images(self, images: ArrayLike, tta: str | None = None) -> NDArray:
        """Predicted labels (N,) for raw images (N, H, W, C); ``tta`` as in
        :meth:`predict_proba_images`."""
        if tta is None:
            return self.net.predict(self.rows(images))
        return np.argmax(self.predict_proba_images(images, tta), axis=1)


def prediction_memory(model: SavedModel, images: int, tta: str | None = None
                      ) -> _memory.Estimate:
    """Bytes :meth:`SavedModel.predict_proba_images` allocates for ``images`` images: their
    float rows (and the preprocessing's copy, and the mirrored ones with ``tta``), the
    hidden layer and the scores and probabilities of each pass."""
    net, s = model.net, model.net.dtype.itemsize
    passes = 2 if tta else 1
    return (_memory.Estimate()
            .add("rows", passes * 3 * images * net.input_size * s)
            .add("activations", passes * images * (hidden_units(net) + 3 * net.output_size)
                 * s))


def hidden_units(net: TwoLayerNet | Network) -> int:
    """The hidden units of ``net``, summed over its hidden layers."""
    if isinstance(net, TwoLayerNet):
        return net.hidden_size
    return sum(net.sizes[1:-1])


def check_input_range(value: object) -> tuple[float, float]:
    """``value`` (a pair of real numbers, finite, low < high) as (low, high) floats; else a
    ValueError naming ``input_range``."""
    pair = list(value) if isinstance(value, list | tuple | np.ndarray) else []
    if len(pair) != 2 or not all(isinstance(v, Real) and not isinstance(v, bool) for v in pair):
        raise ValueError(f"input_range must be (low, high), two numbers, got {value!r}")
    low, high = float(pair[0]), float(pair[1])
    if not (np.isfinite([low, high]).all() and low < high):
        raise ValueError(f"input_range must be (low, high), finite with low < high, got "
                         f"{value!r}")
    return low, high


def save_model(path: PathLike, model: SavedModel) -> Path:
    """Write ``model`` (a :class:`SavedModel`) to ``path`` atomically; returns the path."""
    path = Path(path)
    net = model.net
    if not isinstance(net, TwoLayerNet | Network):
        raise TypeError(f"model files hold {NETWORK} or {DEEP_NETWORK} (W1 (H, D)), not "
                        f"{_class_name(net)}: save the course's networks with the Solver's "
                        "checkpoint_name")
    names, transform_arrays = model.transform.to_arrays()
    if isinstance(net, Network):
        version = 3
        architecture = {"input_size": net.input_size, "output_size": net.output_size,
                        "sizes": list(net.sizes), "batchnorm": net.architecture.batchnorm,
                        "network": DEEP_NETWORK}
    else:
        version = 1 if model.input_range is None else 2
        architecture = {"input_size": net.input_size, "hidden_size": net.hidden_size,
                        "output_size": net.output_size, "network": NETWORK}
    metadata = {
        "format": FORMAT,
        "format_version": version,
        "architecture": {**architecture, "dtype": net.dtype.name},
        "transform": names,
        "class_names": list(model.class_names),
        "image_shape": list(model.image_shape),
        "hyperparameters": model.hyperparameters,
        "history": model.history,
        "metrics": model.metrics,
    }
    if model.input_range is not None:
        metadata["input_range"] = list(model.input_range)
    arrays = {f"param.{k}": v for k, v in net.params.items()}
    arrays.update({f"transform.{k}": v for k, v in transform_arrays.items()})
    return write_archive(path, arrays, metadata)


def load_model(path: PathLike) -> SavedModel:
    """Read a model file written by :func:`save_model` (never unpickling anything).

    Everything is checked before use: the metadata key by key (JSON nested at most
    :data:`nndl._archive.MAX_JSON_DEPTH` deep, ``image_shape`` of 1 or 3 channels), each
    parameter's shape against the architecture (``W1`` (H, D), ``b1`` (H,), ``W2`` (C,
    H), ``b2`` (C,)), each preprocessing array's shape against the rows it receives
    (``image_shape`` flattened, then each step's output), every array for NaN or infinity,
    and the forward pass for overflow (:func:`forward_bound`). Members are read header
    first (:class:`nndl._archive.Archive`): one larger than its shape needs, or compressed
    more than :data:`nndl._archive.MAX_COMPRESSION` to one, is refused before it is
    decompressed, and so is a file whose arrays would not fit in memory
    (:class:`nndl._memory.MemoryLimitError`).
    A :class:`ModelFileError` names the file and what is wrong.
    """
    path = Path(path)
    with Archive.open(path, ModelFileError, "model") as archive:
        metadata = _read_metadata(path, archive.metadata())
        arch = metadata["architecture"]
        archive.check_memory()
        params = _read_params(path, archive, arch)
        net = Network.from_params(params, random_state=0) if arch["network"] == DEEP_NETWORK \
            else TwoLayerNet.from_params(params, random_state=0)
        transform = _read_transform(path, archive, metadata)
    model = SavedModel(net, transform, tuple(metadata["class_names"]),
                       metadata["hyperparameters"], metadata["history"],
                       tuple(metadata["image_shape"]), metadata["metrics"],
                       metadata["input_range"])
    bound = forward_bound(model)
    if not bound < np.finfo(net.dtype).max / 4:
        raise ModelFileError(f"{path}: the weights are too large for {net.dtype.name}: the "
                             f"scores of an image could reach {bound:.3g} and overflow")
    return model


def forward_bound(model: SavedModel) -> float:
    """An upper bound of the magnitude of every value the forward pass of ``model``
    computes for any image of pixels 0-255: the pixels mapped onto ``input_range``, each
    preprocessing step's output, the hidden layer and the scores. It follows from the
    largest absolute row sums of the matrices (``|A x|_max <= max_i sum_j |A_ij| |x|_max``),
    so a file whose bound overflows its dtype may predict NaN (weights of 1e300 did) and
    is refused by :func:`load_model`; an infinite or NaN bound (a scale of 0) too."""
    def row_sums(matrix):
        return float(np.max(np.sum(np.abs(matrix), axis=1, dtype=np.float64), initial=0.0))

    def largest(vector):
        return float(np.max(np.abs(vector), initial=0.0))

    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        x = PIXEL_RANGE[1] if model.input_range is None else max(map(abs, model.input_range))
        bounds = [x]
        for step in model.transform.steps:
            x = x + largest(step.mean_)
            if step.name == "standardize":
                x = x / np.min(np.abs(step.scale_))
            elif step.name in ("pca", "zca"):
                x = x * row_sums(step.components_) / np.min(np.abs(step.scale_), initial=np.inf)
                bounds.append(x)
                if step.name == "zca":  # rotated back: @ components_
                    x = x * row_sums(np.asarray(step.components_).T)
            bounds.append(x)
        p, layer = model.net.params, 1
        while f"W{layer}" in p:  # each layer's output; batch normalization's too
            x = row_sums(p[f"W{layer}"]) * x + largest(p[f"b{layer}"])
            bounds.append(x)
            if f"gamma{layer}" in p:
                x = (x + largest(p[f"running_mean{layer}"])) / np.sqrt(
                    np.min(p[f"running_var{layer}"]) + BN_EPS)
                x = x * largest(p[f"gamma{layer}"]) + largest(p[f"beta{layer}"])
                bounds.append(x)
            layer += 1
        return float(np.nan) if np.isnan(bounds).any() else float(max(bounds))


_MISSING = object()


def _class_name(obj):
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _metadata_key(path, metadata, key, ok, expected, default=_MISSING):
    """``metadata[key]`` (a dotted key looks inside objects) once ``ok(value)`` accepts
    it; else a ModelFileError naming ``path``, the key and ``expected``."""
    value = metadata
    for part in key.split("."):
        value = value.get(part, default) if isinstance(value, dict) else default
    if value is _MISSING:
        raise ModelFileError(f"{path}: metadata key {key!r} is missing")
    if not ok(value):
        raise ModelFileError(f"{path}: metadata key {key!r} must be {expected}, "
                             f"got {value!r:.80}")
    return value


def _read_metadata(path, raw):
    """The metadata (a dict) of the model file at ``path``, checked key by key."""
    metadata = decode_metadata(path, raw, ModelFileError, "model")
    if metadata.get("format") == CHECKPOINT_FORMAT:
        raise ModelFileError(f"{path}: not an nndl model file but a Solver checkpoint (model "
                             f"{metadata.get('model')!s:.80}): read it with "
                             "nndl.solver.load_checkpoint")
    check_format(path, metadata, ModelFileError, "model", FORMAT, FORMAT_VERSION)
    key = partial(_metadata_key, path, metadata)
    key("architecture", lambda v: isinstance(v, dict), "a JSON object")
    network = metadata["architecture"].setdefault("network", NETWORK)  # files before it
    if network not in (NETWORK, DEEP_NETWORK):
        raise ModelFileError(f"{path}: records network {network!s:.80}; model files load "
                             f"{NETWORK} and {DEEP_NETWORK} (W1 (H, D)) only")
    sizes = ("input_size", "output_size") if network == DEEP_NETWORK else \
        ("input_size", "hidden_size", "output_size")
    for size in sizes:
        key(f"architecture.{size}", _is_count, "a positive int")
    if network == DEEP_NETWORK:
        arch = metadata["architecture"]
        key("architecture.sizes", lambda v: isinstance(v, list) and len(v) >= 3
            and all(map(_is_count, v)) and v[0] == arch["input_size"]
            and v[-1] == arch["output_size"], "a list of at least 3 positive ints from "
            "input_size to output_size")
        key("architecture.batchnorm", lambda v: isinstance(v, bool), "true or false")
    key("architecture.dtype", lambda v: v in ("float32", "float64"), "'float32' or 'float64'")
    key("transform", lambda v: isinstance(v, list) and all(n in PREPROCESSING for n in v),
        f"a list of names among {PREPROCESSING}")
    outputs = metadata["architecture"]["output_size"]
    key("class_names", lambda v: isinstance(v, list) and len(v) == outputs
        and all(isinstance(n, str) for n in v) and len(set(v)) == len(v),
        f"a list of {outputs} names (one per output)")
    key("image_shape", _is_image_shape, "3 positive ints (height, width, channels), with 1 or "
        "3 channels")
    for name in ("hyperparameters", "history", "metrics"):
        metadata[name] = key(name, lambda v: isinstance(v, dict), "a JSON object", default={})
    metadata["input_range"] = key("input_range", _is_input_range,
                                  "null or [low, high], two finite numbers with low < high",
                                  default=None)
    return metadata


def check_image_shape(value: object) -> tuple[int, int, int]:
    """``value`` as (height, width, channels): three positive ints, 1 (grayscale) or 3
    (RGB) channels, what nndl's image readers give; else a ValueError naming
    ``image_shape``."""
    shape = list(value) if isinstance(value, tuple | list) else []
    if not _is_image_shape([int(v) if isinstance(v, np.integer) else v for v in shape]):
        raise ValueError(f"image_shape must be (height, width, channels), positive ints with "
                         f"1 or 3 channels, got {value!r}")
    height, width, channels = map(int, shape)
    return height, width, channels


def _is_image_shape(value):
    return (isinstance(value, list) and len(value) == 3 and all(map(_is_count, value))
            and value[2] in IMAGE_CHANNELS)


def _is_input_range(value):
    """None, or a JSON list that :func:`check_input_range` accepts."""
    if value is None:
        return True
    try:
        return isinstance(value, list) and bool(check_input_range(value))
    except ValueError:
        return False


def _checked_array(path, what, value, shape, dtype=None):
    """``value`` (cast to ``dtype`` when given) when it is a real, finite array of
    ``shape``; else a ModelFileError naming ``path`` and ``what``."""
    if value.dtype.kind not in "fiu":
        raise ModelFileError(f"{path}: {what} must hold real numbers, got dtype {value.dtype}")
    if value.shape != shape:
        raise ModelFileError(f"{path}: {what} must have shape {shape}, got {value.shape}")
    if dtype is not None:
        with np.errstate(over="ignore"):  # an overflow to inf is refused just below
            value = value.astype(dtype)
    if not np.isfinite(value).all():
        raise ModelFileError(f"{path}: {what} holds NaN or infinite values")
    return value


def _read_params(path, archive, arch):
    """The network's parameters, each checked against the shape its architecture gives
    (a running variance must also be >= 0)."""
    if arch["network"] == DEEP_NETWORK:
        weights = [n for n in archive.names("param.W") if n[len("param.W"):].isdigit()]
        if len(weights) < len(arch["sizes"]) - 1:  # before making any layer's shapes
            raise ModelFileError(f"{path}: records {len(arch['sizes']) - 1} layers but holds "
                                 f"{len(weights)} weight matrices")
        layers = Architecture(tuple(arch["sizes"]), arch["batchnorm"])
    else:
        layers = Architecture((arch["input_size"], arch["hidden_size"], arch["output_size"]))
    shapes = layers.param_shapes()
    extra = sorted(n[len("param."):] for n in archive.names("param.")
                   if n[len("param."):] not in shapes)
    if extra:  # e.g. batchnorm false over batch-norm members: another network
        shown = ", ".join(extra[:4]) + (", ..." if len(extra) > 4 else "")
        raise ModelFileError(f"{path}: parameters {shown} do not belong to a network of "
                             f"sizes {list(layers.sizes)} (batchnorm "
                             f"{str(layers.batchnorm).lower()})")
    params = {}
    for name, shape in shapes.items():
        what = f"parameter {name}"
        if f"param.{name}" not in archive.members:
            raise ModelFileError(f"{path}: {what} is missing")
        value = archive.array(f"param.{name}", what, shape)
        params[name] = _checked_array(path, what, value, shape, arch["dtype"])
        if name.startswith("running_var") and (params[name] < 0).any():
            raise ModelFileError(f"{path}: {what} holds negative variances")
    return params


def _state_shapes(name, width, state):
    """The shape of each fitted array of a ``name`` step fed rows of ``width`` values,
    and the width of the rows it gives."""
    if name in ("mean", "standardize"):
        return {k: (width,) for k in state}, width
    components = state["components_"]
    k = components.shape[0] if components.ndim else 0
    shapes = {"mean_": (width,), "components_": (k, width), "scale_": (k,)}
    return shapes, k if name == "pca" else width


def _read_transform(path, archive, metadata):
    """The saved preprocessing, each step's arrays checked against the rows it receives
    (a step's arrays hold at most width x width values: pca's components)."""
    names, image_shape = metadata["transform"], metadata["image_shape"]
    width = math.prod(image_shape)
    steps = []
    for i, name in enumerate(names):
        what = f"transform {i} ({name})"
        prefix = f"transform.{i}."
        keys = sorted(k[len(prefix):] for k in archive.names(prefix))
        expected = sorted(make_transform(name).state())
        if keys != expected:
            raise ModelFileError(f"{path}: {what}: arrays must be {expected}, got {keys}")
        state = {k: archive.array(prefix + k, f"{what}: {k}", max_values=width * width)
                 for k in keys}
        shapes, out = _state_shapes(name, width, state)
        for key, shape in shapes.items():
            _checked_array(path, f"{what}: {key}", state[key], shape)
        steps.append(make_transform(name, **state))
        width = out
    inputs = metadata["architecture"]["input_size"]
    if width != inputs:
        after = f" after transform {names}" if names else ""
        raise ModelFileError(f"{path}: image_shape {image_shape}{after} gives rows of {width} "
                             f"values but the network takes {inputs}")
    return Pipeline(steps)
