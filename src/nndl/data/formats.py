"""Other data users have: image-folder trees and ``.npz`` files.

Both yield ``(X, y, class_names)`` with X uint8 (N, H, W, 3) and y int64 (N,).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from nndl.data.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
MAX_IMAGE_PIXELS = 50_000_000  # images are decoded in full before resizing
ENV_MAX_PIXELS = "NNDL_MAX_IMAGE_PIXELS"


def read_image(path, size=(32, 32), max_pixels=None):
    """An image file as uint8 (H, W, 3) RGB, resized to ``size`` (width, height).

    Only the header is read before the pixel count is checked: an image of more
    than ``max_pixels`` pixels (default :func:`max_image_pixels`) is refused
    before it is decoded, so a small file claiming a huge image (a decompression
    bomb) costs no memory. Pillow's own hard limit still applies above that.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise ImportError("reading images needs Pillow: pip install 'nndl[all]'") from exc
    limit = max_image_pixels() if max_pixels is None else max_pixels
    too_big = f"is over the limit of {limit:,} pixels ({ENV_MAX_PIXELS} raises it)"
    try:
        with Image.open(path) as img:
            width, height = img.size
            if width * height > limit:
                raise DataError(f"{path}: image of {width}x{height} pixels {too_big}")
            img = img.convert("RGB")
            if size is not None and img.size != tuple(size):
                img = img.resize(tuple(size), Image.BILINEAR)
            return np.asarray(img, dtype=np.uint8)
    except Image.DecompressionBombError:  # over Pillow's limit: refused in the header too
        raise DataError(f"{path}: image of more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels "
                        f"{too_big}") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable PNG/JPEG image ({exc})") from exc


def max_image_pixels():
    """The most pixels an image may have to be decoded: ``$NNDL_MAX_IMAGE_PIXELS``, else
    :data:`MAX_IMAGE_PIXELS` (50 megapixels, about 150 MB decoded as RGB)."""
    value = os.environ.get(ENV_MAX_PIXELS)
    if value is None:
        return MAX_IMAGE_PIXELS
    try:
        limit = int(value)
    except ValueError:
        limit = 0
    if limit < 1:
        raise ValueError(f"{ENV_MAX_PIXELS} must be a positive integer, got {value!r}")
    return limit


def load_image_folder(root, size=(32, 32)):
    """``root/<class_name>/*.png|jpg`` -> (X, y, class_names); classes sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    classes = sorted(p.name for p in root.iterdir() if p.is_dir())
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((root / name).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                images.append(read_image(path, size))
                labels.append(label)
    if not images:
        raise DataError(f"{root}: no images found (expected {root}/<class_name>/*.png or *.jpg)")
    return np.stack(images), np.asarray(labels, dtype=np.int64), tuple(classes)


def load_npz(path):
    """An ``.npz`` with arrays ``X`` (N, ...) and integer ``y`` (N,), read without pickle.

    Optional ``class_names`` (strings). Returns (X, y, class_names).
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = {"X", "y"} - set(data.files)
            if missing:
                raise DataError(f"{path}: missing array(s) {sorted(missing)}; expected X and y")
            X, y = data["X"], data["y"]
            names = tuple(str(n) for n in data["class_names"]) if "class_names" in data else None
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz without pickled objects ({exc})") from exc
    if y.ndim != 1 or len(y) != len(X) or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{path}: y must be integer labels of shape ({len(X)},), got "
                        f"{y.dtype} {y.shape}")
    if len(y) and y.min() < 0:
        raise DataError(f"{path}: negative label {y.min()}")
    num_classes = int(y.max()) + 1 if len(y) else 0
    names = names or tuple(str(i) for i in range(num_classes))
    if len(y) and y.max() >= len(names):
        raise DataError(f"{path}: label {y.max()} out of range for {len(names)} class names")
    return X, y.astype(np.int64), names
