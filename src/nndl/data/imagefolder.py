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
Size = tuple[int, int]


class MixedImageSizes(DataError):
    """Images of several sizes, and no ``image_size`` to resize them to.

    Attributes
    ----------
    sizes : dict
        ``{(width, height): number of images}``, most common first (see
        :func:`ranked_sizes`).
    grayscale : bool
        Whether every readable image is grayscale.
    skipped : list of str
        The unreadable images left out (with ``skip_unreadable``).
    """

    def __init__(self, message: str, sizes: dict[Size, int], grayscale: bool,
                 skipped: list[str]) -> None:
        super().__init__(message)
        self.sizes, self.grayscale, self.skipped = sizes, grayscale, skipped


def find_images(root: Path) -> tuple[tuple[str, ...], Files]:
    """``(class_names, {"train": [(path, label), ...], "test": [...]})`` of the folder;
    "test" only in the train/test layout. A DataError for a missing folder, fewer than
    two class folders, a class folder without images, or a test class unknown in training."""
    if not root.is_dir():
        raise DataError(f"{root}: no such folder")
    subfolders = _subfolders(root)
    split = "train" in subfolders and set(subfolders) <= {"train", "test"}
    tops = {"train": root / "train", "test": root / "test"} if split else {"train": root}
    classes = _subfolders(tops["train"])
    if not classes:
        raise DataError(f"{tops['train']}: no class folders (expected "
                        f"{tops['train']}/<class_name>/*.png or *.jpg)")
    if len(classes) == 1:
        raise DataError(f"{tops['train']}: one class folder ({classes[0]!r}); a classifier "
                        "needs at least 2 (a folder of images for each class)")
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
    width, height = image_size or _one_size(root, sizes, gray, skipped)
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


def _one_size(root, sizes, gray, skipped):
    if len(sizes) <= 1:
        return next(iter(sizes), (1, 1))
    counts = ranked_sizes({size: n for size, (n, _) in sizes.items()})
    (odd_w, odd_h), (_, odd) = min(sizes.items(), key=lambda item: item[1][0])
    raise MixedImageSizes(
        f"{root}: images of {len(counts)} different sizes: {size_listing(counts)} ({odd} is "
        f"{odd_w}x{odd_h}); pass image_size=(width, height) (--image-size WxH) to resize "
        f"them, e.g. {suggested_size(counts)}", counts, gray, skipped)


def ranked_sizes(counts: dict[Size, int]) -> dict[Size, int]:
    """``{(width, height): count}`` most common first; among equals, the smallest (by
    pixels, then width) first."""
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0][0] * item[0][1],
                                                         item[0])))


def size_listing(counts: dict[Size, int], limit: int = 5) -> str:
    """``"8x6 (4 images), 5x5 (1 image)"``: the first ``limit`` sizes of ``counts`` (ranked)
    and how many more there are."""
    shown = [f"{w}x{h} ({n} image{'s' if n != 1 else ''})"
             for (w, h), n in list(counts.items())[:limit]]
    more = f" and {len(counts) - limit} more" if len(counts) > limit else ""
    return ", ".join(shown) + more


def suggested_size(counts: dict[Size, int]) -> str:
    """The ``--image-size`` to suggest for ``counts`` (ranked) and why: the most common size
    when one is, else the smallest of those that tie (shrinking loses less than blowing up
    invents)."""
    (w, h), top = next(iter(counts.items()))
    ties = sum(n == top for n in counts.values())
    if ties == 1:
        return f"--image-size {w}x{h}, the most common size"
    return (f"--image-size {w}x{h}, the smallest of the {ties} sizes that tie as the most "
            f"common ({top} image{'s' if top != 1 else ''} each)")


def _read(path, size, mode, skip_unreadable, skipped):
    try:
        return read_image(path, size, mode=mode)
    except DataError:  # a header that reads but pixels that do not
        if not skip_unreadable:
            raise
        skipped.append(str(path))
        return None
