"""Image files, read safely: PNG and JPEG only, a pixel cap checked in the header before
decoding, 8 bits a channel.

Formats are what the file holds, not its name: a GIF, BMP, TIFF or WebP named ``.png`` is
refused (nndl promises PNG and JPEG, and reads those exactly). 16-bit grayscale PNGs are
scaled to 8 bits (value / 257, rounded); palette images with transparency go through RGBA,
as Pillow advises, so no warning is printed.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from nndl._typing import PathLike
from nndl._validation import env_int
from nndl.data.errors import DataError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
IMAGE_FORMATS = ("PNG", "JPEG", "MPO")  # MPO: a camera's JPEG with extra pictures
MAX_IMAGE_PIXELS = 50_000_000  # images are decoded in full before resizing
ENV_MAX_PIXELS = "NNDL_MAX_IMAGE_PIXELS"


def read_image(path: PathLike, size: tuple[int, int] | None = (32, 32),
               max_pixels: int | None = None, mode: str = "RGB") -> np.ndarray:
    """An image file as uint8 (H, W, 3) RGB, or (H, W) when ``mode`` is ``"L"``
    (grayscale), resized to ``size`` (width, height) unless it is None.

    Only the header is read before the pixel count is checked (see :func:`open_image`).
    """
    from PIL import Image

    with open_image(path, max_pixels) as img:
        img = _eight_bit(img).convert(mode)
        if size is not None and img.size != tuple(size):
            img = img.resize(tuple(size), Image.Resampling.BILINEAR)
        return np.asarray(img, dtype=np.uint8)


def _eight_bit(img):
    """``img`` with 8-bit channels that ``convert`` maps faithfully: 16-bit grayscale
    (Pillow's modes ``I;16*``, and ``I`` in older Pillows) scaled by 255/65535 (``convert``
    would clip every value above 255 to white); a palette image with transparency as RGBA
    (what Pillow's warning asks for)."""
    from PIL import Image

    if img.mode.startswith("I"):
        values = np.rint(np.asarray(img, dtype=np.float64) / 257)
        return Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), "L")
    if img.mode == "P" and "transparency" in img.info:
        return img.convert("RGBA")
    return img


@contextmanager
def open_image(path: PathLike, max_pixels: int | None = None) -> Iterator[Any]:
    """The PIL image at ``path``, opened but not decoded, inside a ``with`` block whose
    failures to read it become DataErrors naming ``path``.

    A file that is not a PNG or JPEG image is refused, naming its format. An image of more
    than ``max_pixels`` pixels (default :func:`max_image_pixels`) is refused before it is
    decoded, so a small file claiming a huge image (a
    decompression bomb) costs no memory. Pillow's own hard limit still applies above
    that.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError as exc:
        raise ImportError("reading images needs Pillow: pip install 'nndl[all]'") from exc
    limit = max_image_pixels() if max_pixels is None else max_pixels
    too_big = f"is over the limit of {limit:,} pixels ({ENV_MAX_PIXELS} raises it)"
    try:
        with warnings.catch_warnings():  # its pixels are checked below, in nndl's words
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            opened = Image.open(path)
        with opened as img:
            if img.format not in IMAGE_FORMATS:
                raise DataError(f"{path}: a {img.format} image; nndl reads PNG and JPEG images "
                                "only (convert it, e.g. to PNG)")
            width, height = img.size
            if width * height > limit:
                raise DataError(f"{path}: image of {width}x{height} pixels {too_big}")
            yield img
    except Image.DecompressionBombError:  # over Pillow's limit: refused in the header too
        raise DataError(f"{path}: image of more than {2 * (Image.MAX_IMAGE_PIXELS or 0):,} pixels "
                        f"{too_big}") from None
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise DataError(f"{path}: not a readable PNG/JPEG image ({exc})") from exc


def max_image_pixels():
    """The most pixels an image may have to be decoded: ``$NNDL_MAX_IMAGE_PIXELS``, else
    :data:`MAX_IMAGE_PIXELS` (50 megapixels, about 150 MB decoded as RGB)."""
    return env_int(ENV_MAX_PIXELS, MAX_IMAGE_PIXELS, meaning="the most pixels an image may "
                   "have")
