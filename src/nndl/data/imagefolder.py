"""Image folders: ``root/<class>/*.png|jpg|jpeg``, or ``root/train/<class>/...`` plus an
optional ``root/test/<class>/...``; classes are the folder names, sorted.

Decoding streams: image headers are read first (sizes, colour modes, unreadable
files), then the images are decoded block by block into a cache writer. Images are
RGB, or one channel when every image is grayscale. Without ``image_size`` all images
must have one size.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nndl.data.cache import CacheWriter
from nndl.data.errors import DataError
from nndl.data.formats import IMAGE_SUFFIXES, open_image, read_image

GRAY_MODES = {"1", "L", "LA", "I", "I;16", "F"}
_BLOCK_BYTES = 64 << 20

Files = dict[str, list[tuple[Path, int]]]


def find_images(root: Path) -> tuple[tuple[str, ...], Files]:
    """``(class_names, {"train": [(path, label), ...], "test": [...]})`` of the folder;
    "test" only in the train/test layout. A DataError for a missing folder, no class
    folders, a class folder without images, or a test class unknown in training."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    subfolders = _subfolders(root)
    split = "train" in subfolders and set(subfolders) <= {"train", "test"}
    tops = {"train": root / "train", "test": root / "test"} if split else {"train": root}
    classes = _subfolders(tops["train"])
    if not classes:
        raise DataError(f"{tops['train']}: no class folders (expected "
                        f"{tops['train']}/<class_name>/*.png or *.jpg)")
    files: Files = {}
    for name, top in tops.items():
        if not top.is_dir():
            continue
        unknown = sorted(set(_subfolders(top)) - set(classes))
        if unknown:
            raise DataError(f"{top}: class folder(s) {unknown} not in {tops['train']}")
        files[name] = [(path, label) for label, cls in enumerate(classes)
                       for path in _class_images(top / cls)]
    return tuple(classes), files


def _subfolders(folder):
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_images(folder):
    if not folder.is_dir():
        return []  # a class absent from the test folder
    images = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES
                    and not p.name.startswith(".") and p.is_file())
    if not images:
        raise DataError(f"{folder}: class {folder.name!r} has no images (*.png, *.jpg, *.jpeg)")
    return images


def decode_folder(root: Path, files: Files, writer: CacheWriter,
                  image_size: tuple[int, int] | None = None,
                  skip_unreadable: bool = False) -> dict:
    """Decode ``files`` (from :func:`find_images`) into ``writer`` as ``X_<split>`` uint8
    (N, H, W, C) and ``y_<split>`` int64 (N,); returns ``{"skipped": [paths]}``.

    ``image_size`` (width, height) resizes; without it, mixed sizes are a DataError
    listing them. Unreadable images are a DataError naming the file, or skipped when
    ``skip_unreadable``.
    """
    skipped: list[str] = []
    sizes, gray = _survey(files, skip_unreadable, skipped)
    width, height = image_size or _one_size(root, sizes)
    unreadable = set(skipped)
    mode, channels = ("L", 1) if gray else ("RGB", 3)
    per_block = max(1, _BLOCK_BYTES // (width * height * channels))
    for split, pairs in files.items():
        pairs = [p for p in pairs if str(p[0]) not in unreadable]
        labels = []
        for start in range(0, len(pairs), per_block):
            block = []
            for path, label in pairs[start:start + per_block]:
                image = _read(path, (width, height), mode, skip_unreadable, skipped)
                if image is not None:
                    block.append(image.reshape(height, width, channels))
                    labels.append(label)
            if block:
                writer.append(f"X_{split}", np.stack(block))
        if not labels and split == "train":
            raise DataError(f"{root}: no readable images ({len(skipped)} skipped)")
        if labels:
            writer.save(f"y_{split}", np.asarray(labels, dtype=np.int64))
    return {"skipped": skipped}


def _survey(files, skip_unreadable, skipped):
    """The sizes ({(width, height): [count, first path]}) and whether every image is
    grayscale, from the headers; unreadable files are recorded in ``skipped`` or raised."""
    sizes = {}
    gray = True
    for path, _ in (pair for pairs in files.values() for pair in pairs):
        try:
            with open_image(path) as img:
                size, mode = img.size, img.mode
        except DataError:
            if not skip_unreadable:
                raise
            skipped.append(str(path))
            continue
        sizes.setdefault(size, [0, path])[0] += 1
        gray = gray and mode in GRAY_MODES
    return sizes, gray


def _one_size(root, sizes):
    if len(sizes) <= 1:
        return next(iter(sizes), (1, 1))
    ranked = sorted(sizes.items(), key=lambda item: -item[1][0])
    listing = ", ".join(f"{w}x{h} ({n} images)" for (w, h), (n, _) in ranked[:5])
    more = f" and {len(ranked) - 5} more" if len(ranked) > 5 else ""
    (w, h), _ = ranked[0]
    (odd_w, odd_h), (_, odd) = ranked[-1]
    raise DataError(f"{root}: images of {len(ranked)} different sizes: {listing}{more} "
                    f"({odd} is {odd_w}x{odd_h}); pass image_size=(width, height) "
                    f"(--image-size WxH) to resize them, e.g. --image-size {w}x{h}, the most "
                    "common size")


def _read(path, size, mode, skip_unreadable, skipped):
    try:
        return read_image(path, size, mode=mode)
    except DataError:  # a header that reads but pixels that do not
        if not skip_unreadable:
            raise
        skipped.append(str(path))
        return None


def parse_image_size(text: str) -> tuple[int, int]:
    """``"WxH"`` (e.g. ``"32x32"``) as ``(width, height)``; ValueError otherwise."""
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise ValueError(f"image size must be WIDTHxHEIGHT such as 32x32, got {text!r}")
    return int(parts[0]), int(parts[1])
