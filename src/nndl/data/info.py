"""``nndl data info``: what a data set holds — format, splits, shapes, classes, checksums."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nndl._typing import PathLike
from nndl.data.cache import load_cached
from nndl.data.catalog import DATASETS
from nndl.data.cifar10 import OFFICIAL_MD5, TARBALL_MD5, Source, locate
from nndl.data.cifar100 import OFFICIAL_MD5 as CIFAR100_MD5
from nndl.data.datasets import Dataset, find_dataset, load_dataset
from nndl.data.download import md5sum
from nndl.data.errors import DataError
from nndl.data.imagefolder import MixedImageSizes, find_images, size_listing, suggested_size


def describe(name_or_path: PathLike, root: PathLike | None = None, *, labels: str = "fine",
             image_size: tuple[int, int] | None = None,
             skip_unreadable: bool = False) -> list[tuple[str, str]]:
    """``(label, value)`` lines describing a named data set (found in ``root``, not
    downloaded) or the data at a path."""
    name = str(name_or_path)
    if name in DATASETS:
        return _describe_named(name, root, labels)
    path = Path(name)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    source = locate(path)
    if source is not None:
        return _describe_cifar10(source)
    try:
        data = load_dataset(path, image_size=image_size, skip_unreadable=skip_unreadable)
    except MixedImageSizes as exc:
        return _describe_mixed_sizes(path, exc)
    kind = "npz arrays" if path.is_file() else "image folder"
    colour = "grayscale" if data.image_shape[2] == 1 else "RGB"
    lines = [("format", f"{kind}, {colour} {data.X_train.dtype}"), ("location", str(path))]
    lines += _splits(data)
    return lines + _skipped(data.skipped)


def _describe_mixed_sizes(path, mixed):
    """An image folder whose images differ in size, described from their headers (it is
    decoded only with ``image_size``): files and classes per split, the sizes found."""
    names, files = find_images(path)
    colour = "grayscale" if mixed.grayscale else "RGB"
    lines = [("format", f"image folder, {colour}, images of {len(mixed.sizes)} different "
              "sizes (not decoded)"), ("location", str(path))]
    skipped = set(mixed.skipped)
    for split, pairs in files.items():
        labels = [label for file, label in pairs if str(file) not in skipped]
        lines.append((f"{split} images", f"{len(labels)} files"))
        lines.append((f"{split} classes", _class_counts(names, labels)))
    lines.append(("image sizes", size_listing(mixed.sizes, limit=10)))
    lines.append(("training", "needs --image-size WxH (every image is resized to it), "
                  f"e.g. {suggested_size(mixed.sizes)}"))
    return lines + _skipped(mixed.skipped)


def _skipped(skipped):
    if not skipped:
        return []
    return [("skipped", f"{len(skipped)} unreadable images, e.g. {skipped[0]}")]


def _describe_named(name, root, labels):
    spec = DATASETS[name]
    lines = [("data set", spec.description), ("source", spec.homepage)]
    folder = find_dataset(name, root)
    if folder is None:
        sums = ", ".join(f"{file} md5 {md5}" for file, md5 in spec.files)
        return lines + [("download", f"{spec.size}: {sums}"),
                        ("location", f"not downloaded; run 'nndl data download {name}'")]
    if name == "cifar10":
        return lines + _describe_cifar10(locate(folder))
    data = load_dataset(name, root, download=False, labels=labels)
    lines += [("location", str(folder))] + _splits(data)
    return lines + [("checksums", _named_checksums(name, folder))]


def _describe_cifar10(source: Source) -> list[tuple[str, str]]:
    data = load_cached(source, mmap=True)
    fmt = (f"CIFAR-10, {source.kind} version" if source.kind != "tarball"
           else "CIFAR-10 tarball")
    dataset = Dataset("cifar10", data.X_train, data.y_train, data.X_test, data.y_test,
                      tuple(data.class_names))
    return ([("format", fmt), ("location", str(source.path))] + _splits(dataset)
            + [("checksums", _checksum_status(source))])


def _splits(data):
    lines = []
    for split, X, y in (("train", data.X_train, data.y_train), ("test", data.X_test,
                                                                 data.y_test)):
        if X is None:
            lines.append((f"{split} images", "none (no official test set)"))
            continue
        lines.append((f"{split} images", f"{X.shape} {X.dtype}"))
        lines.append((f"{split} classes", _class_counts(data.class_names, y)))
    return lines


def _class_counts(names, labels):
    """``"cat 30, dog 28"``: each class name and how many of ``labels`` it has."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=len(names))
    return ", ".join(f"{n} {c}" for n, c in zip(names, counts))


def _named_checksums(name, folder):
    if name == "digits":
        return "not applicable (bundled with scikit-learn)"
    official = CIFAR100_MD5 if name == "cifar100" else {
        file: md5 for file, md5 in DATASETS[name].files}
    return _compare([(folder / file, md5) for file, md5 in official.items()
                     if (folder / file).is_file()], "official")


def _checksum_status(source):
    if source.kind == "tarball":
        ok = md5sum(source.path) == TARBALL_MD5
        return "official tarball md5" if ok else "md5 differs from the official tarball"
    if source.kind == "binary":
        return "not checked (no official per-file sums for the binary version)"
    files = [p for p in source.files() if p.name in OFFICIAL_MD5]
    return _compare([(p, OFFICIAL_MD5[p.name]) for p in files], "official")


def _compare(expected, what):
    same = [p for p, md5 in expected if md5sum(p) == md5]
    if len(same) == len(expected):
        return f"all {len(expected)} files match the {what} md5 sums"
    return (f"{len(expected) - len(same)} of {len(expected)} files differ from the {what} "
            "md5 sums (a re-packed copy; the arrays decoded fine)")


def format_lines(lines: list[tuple[str, str]]) -> str:
    """The lines as two aligned columns."""
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in lines)
