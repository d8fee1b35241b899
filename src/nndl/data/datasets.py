"""Any image-classification data set as one :class:`Dataset` of memory-mapped arrays.

``load_dataset(name_or_path)`` takes a name of :data:`DATASETS` (``cifar10``,
``cifar100``, ``mnist``, ``fashion-mnist``, ``digits``) or a path: an image folder
(:mod:`nndl.data.imagefolder`), an ``.npz`` file (:mod:`nndl.data.npzfile`) or a
CIFAR-10 copy. Named data sets are found in ``root``, else ``$NNDL_DATA``, else the
user cache, and downloaded into the first of those when absent (md5-checked,
resumable; mirrors: :mod:`nndl.data.catalog`). Every data set is decoded once into
the user cache as ``.npy`` files (:mod:`nndl.data.cache`) and opened memory-mapped,
so loading one larger than memory costs no memory.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nndl._typing import PathLike
from nndl.data.cache import CACHE_VERSION, CacheWriter, cache_folder, cached, files_fingerprint
from nndl.data.cache import load_cached as _load_cifar10_cached
from nndl.data.catalog import DATASETS, FASHION_MNIST_CLASSES, DatasetSpec
from nndl.data.cifar10 import CIFAR10Arrays, Source, locate
from nndl.data.cifar100 import read_cifar100
from nndl.data.download import download_archive, download_files
from nndl.data.errors import DataError, DataNotFoundError, disk_full
from nndl.data.idx import read_mnist
from nndl.data.imagefolder import decode_folder, find_images
from nndl.data.location import candidate_roots, data_root
from nndl.data.npzfile import read_npz

__all__ = ["DATASETS", "Dataset", "DatasetSpec", "download_dataset", "find_cifar10", "find_dataset",
           "load_cifar10", "load_dataset"]

#: other folder names a data root may hold a named data set under (torchvision's)
_ALSO_FOUND_IN = {"mnist": ("MNIST/raw",), "fashion-mnist": ("FashionMNIST/raw",)}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A whole data set: ``X_*`` (N, H, W, C) uint8 (float32 for a float ``.npz``), C 1
    or 3, usually read-only memory maps; ``y_*`` int64 (N,) in ``[0, len(class_names))``.

    ``X_test``/``y_test`` are the official test set, None when the source has none;
    ``skipped`` lists the unreadable image files left out (``skip_unreadable``).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray | None
    y_test: np.ndarray | None
    class_names: tuple[str, ...]
    skipped: tuple[str, ...] = ()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of one image."""
        height, width, channels = self.X_train.shape[1:]
        return int(height), int(width), int(channels)

    @property
    def num_classes(self) -> int:
        """The number of classes."""
        return len(self.class_names)

    def digest(self) -> str:
        """A short fingerprint of what decides the splits: the images' shapes, the class
        names and every label (cheap: labels only). A model file records it, so that
        ``nndl evaluate`` knows when the data changed since the run (images added or
        removed, classes renamed)."""
        h = hashlib.sha1()
        for part in (self.X_train.shape, None if self.X_test is None else self.X_test.shape,
                     self.class_names):
            h.update(repr(part).encode())
        for labels in (self.y_train, self.y_test):
            if labels is not None:
                h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
        return h.hexdigest()[:16]


def load_dataset(name_or_path: PathLike = "cifar10", root: PathLike | None = None, *,
                 download: bool = True, progress: bool = True, labels: str = "fine",
                 image_size: tuple[int, int] | None = None,
                 skip_unreadable: bool = False) -> Dataset:
    """The data set ``name_or_path`` (a name of :data:`DATASETS` or a path; see the module
    docstring) as a :class:`Dataset`, decoded once and then served from the cache.

    Parameters
    ----------
    root : where named data sets are looked for and downloaded to (default
        ``$NNDL_DATA``, else the user cache).
    download : download a missing named data set; else DataNotFoundError.
    progress : show a download progress bar.
    labels : ``"fine"`` (100 classes) or ``"coarse"`` (20 superclasses), CIFAR-100 only.
    image_size : (width, height) to resize an image folder's images to; without it they
        must all have one size.
    skip_unreadable : leave out an image folder's unreadable images (listed in
        ``Dataset.skipped`` and warned about) instead of raising a DataError.
    """
    name = str(name_or_path)
    _check_options(name, labels, image_size)
    if name == "digits":
        return _digits()
    if name in DATASETS:
        spec = DATASETS[name]
        find = locate if name == "cifar10" else _folder_finder(spec)
        found = _find_or_download(spec, root, download, progress, find)
        return _cifar10_dataset(name, found) if name == "cifar10" else _named(spec, found, labels)
    return _from_path(Path(name).expanduser(), image_size, skip_unreadable)


def _check_options(name, labels, image_size):
    if labels not in ("fine", "coarse"):
        raise ValueError(f"labels must be 'fine' or 'coarse', got {labels!r}")
    if labels == "coarse" and name != "cifar100":
        raise ValueError("labels='coarse' (the 20 superclasses) applies to cifar100 only")
    if image_size is None:
        return
    if name in DATASETS:
        raise ValueError(f"image_size applies to image folders, not to {name}")
    if (len(image_size) != 2 or not all(isinstance(v, int | np.integer) and v > 0
                                        for v in image_size)):
        raise ValueError(f"image_size must be (width, height), two positive integers, "
                         f"got {image_size!r}")


def download_dataset(name: str, root: PathLike | None = None, *, url: str | None = None,
                     progress: bool = True, md5: str | None = None) -> Path:
    """Download the named data set into ``root`` (default ``$NNDL_DATA``, else the user
    cache) unless it is there; returns its folder.

    Files are md5-checked, an interrupted download resumes when run again, and the
    folder appears only once complete. ``url`` is a mirror (see
    :mod:`nndl.data.catalog`); ``md5`` replaces the official sum of a single-file data
    set's tarball. ``digits`` needs no download: its folder in scikit-learn is returned.
    """
    spec = _spec(name)
    if not spec.files:
        return Path(_sklearn_datasets().__file__).parent / "data"
    target = data_root(root)
    if spec.archive:
        file_name, official = spec.files[0]
        return download_archive(target, spec.folder, file_name, md5 or official,
                                spec.urls(file_name, url), progress=progress)
    if md5 is not None:
        raise ValueError(f"md5 applies to the single-file data sets; {name} has "
                         f"{len(spec.files)} files")
    files = [(file_name, sum_, spec.urls(file_name, url)) for file_name, sum_ in spec.files]
    return download_files(target, spec.folder, files, progress=progress)


def _spec(name):
    if name not in DATASETS:
        raise DataError(f"unknown data set {name!r}; the named ones are {', '.join(DATASETS)}")
    return DATASETS[name]


def _find_or_download(spec: DatasetSpec, root: PathLike | None, download: bool,
                     progress: bool, find: Callable[[Path], object]) -> object:
    """``find(data_root)`` for the first data root that has the data set (see the module
    docstring), downloading it when none has and ``download`` is true; else
    DataNotFoundError saying where it looked and how to provide it."""
    for place, _ in candidate_roots(root):
        found = find(place)
        if found is not None:
            return found
    reason = "downloading is off"
    if download:
        try:
            download_dataset(spec.name, root, progress=progress)
            found = find(data_root(root))
            if found is not None:
                return found
        except (DataError, OSError) as exc:  # OSError: e.g. the root cannot be created
            reason = f"the download failed: {exc}"
    looked = "; ".join(f"{path} ({why})" for path, why in candidate_roots(root))
    title = spec.description.split(":")[0]
    what = f"{spec.folder}/ (or the tarball)" if spec.archive else f"{spec.folder}/"
    raise DataNotFoundError(
        f"{title} not found. Looked in: {looked}. {reason[0].upper()}{reason[1:]}. "
        f"Provide it by setting NNDL_DATA to a folder that contains {what}, passing that "
        f"folder explicitly (--data), or running 'nndl data download {spec.name}' with "
        "internet access.")


def _folder_finder(spec):
    """A ``find`` for :func:`find_or_download`: the data set's folder in a data root."""
    def find(place):
        for folder in (spec.folder, *_ALSO_FOUND_IN.get(spec.name, ())):
            if (place / folder).is_dir():
                return place / folder
        return None
    return find


def find_dataset(name: str, root: PathLike | None = None) -> Path | None:
    """The folder (for cifar10: the folder or tarball) of the first copy of the named
    data set where nndl looks, or None; ``digits``: scikit-learn's data folder."""
    spec = _spec(name)
    if not spec.files:
        return download_dataset(name)
    if name == "cifar10":
        source = find_cifar10(root)
        return None if source is None else source.path
    find = _folder_finder(spec)
    return next((found for place, _ in candidate_roots(root)
                 if (found := find(place)) is not None), None)


def find_cifar10(root: PathLike | None = None) -> Source | None:
    """The first CIFAR-10 copy found where nndl looks (see module docstring), or None."""
    for path, _ in candidate_roots(root):
        source = locate(path)
        if source is not None:
            return source
    return None


def load_cifar10(root: PathLike | None = None, *, download: bool = True,
                 progress: bool = True) -> CIFAR10Arrays:
    """The whole of CIFAR-10 as :class:`CIFAR10Arrays` (uint8 images, in memory), cached
    after the first decode; downloaded when missing and ``download`` is true."""
    source = _find_or_download(DATASETS["cifar10"], root, download, progress, locate)
    return _load_cifar10_cached(source)


def _cifar10_dataset(name, source):
    data = _load_cifar10_cached(source, mmap=True)
    return Dataset(name, data.X_train, data.y_train.astype(np.int64), data.X_test,
                   data.y_test.astype(np.int64), tuple(data.class_names))


def _named(spec, folder, labels):
    def build(writer):
        if spec.name == "cifar100":
            *arrays, names = read_cifar100(folder, labels)
        else:
            arrays, names = read_mnist(folder), _class_names(spec)
        _save_splits(writer, arrays)
        return {"class_names": list(names)}

    files = sorted(p for p in folder.iterdir() if p.is_file())
    options = {"labels": labels} if spec.name == "cifar100" else {}
    return _cached_dataset(spec.name, folder, options, files_fingerprint(files), build)


def _class_names(spec):
    if spec.name == "fashion-mnist":
        return FASHION_MNIST_CLASSES
    return tuple(str(i) for i in range(spec.num_classes))


def _save_splits(writer, arrays):
    """Save ``(X_train, y_train, X_test, y_test)`` (labels as int64) with ``writer``."""
    for split, (X, y) in zip(("train", "test"), (arrays[:2], arrays[2:])):
        writer.save(f"X_{split}", X)
        writer.save(f"y_{split}", np.asarray(y, dtype=np.int64))


def _digits():
    datasets = _sklearn_datasets()
    import sklearn

    def build(writer):
        bunch = datasets.load_digits()
        X = np.rint(bunch.images * (255 / 16)).astype(np.uint8)[..., None]
        writer.save("X_train", X)
        writer.save("y_train", bunch.target.astype(np.int64))
        return {"class_names": [str(name) for name in bunch.target_names]}

    source = Path(datasets.__file__).parent
    return _cached_dataset("digits", source, {}, sklearn.__version__, build)


def _sklearn_datasets():
    try:
        import sklearn.datasets
    except ImportError as exc:
        raise ImportError("the digits data set comes with scikit-learn: "
                          "pip install 'nndl[sklearn]'") from exc
    return sklearn.datasets


def _from_path(path, image_size, skip_unreadable):
    if not path.exists():
        raise DataError(f"{path}: no such file or folder (and not a named data set: "
                        f"{', '.join(DATASETS)})")
    if path.is_file() and path.suffix.lower() == ".npz":
        if image_size is not None:
            raise ValueError(f"image_size applies to image folders, not to {path}")
        return _cached_dataset("npz", path, {}, files_fingerprint([path]),
                               lambda writer: read_npz(path, writer), name=str(path))
    source = locate(path)
    if source is not None:
        return _cifar10_dataset(str(path), source)
    if not path.is_dir():
        raise DataError(f"{path}: not an image folder, an .npz file or a CIFAR-10 copy")
    names, files = find_images(path)
    options = {"image_size": list(image_size or ()), "skip_unreadable": skip_unreadable}

    def build(writer):
        info = decode_folder(path, files, writer, image_size, skip_unreadable)
        return {"class_names": list(names), **info}

    fingerprint = files_fingerprint(p for pairs in files.values() for p, _ in pairs)
    return _cached_dataset("folder", path, options, fingerprint, build, name=str(path))


def _cached_dataset(kind: str, source: Path, options: dict, fingerprint: str,
                    build: Callable[[CacheWriter], dict], name: str | None = None) -> Dataset:
    """The Dataset of ``build``'s arrays, from the cache when its fingerprint is current."""
    folder = cache_folder(kind, source, options)
    stamp = {"version": CACHE_VERSION, "options": options, "source": fingerprint}
    try:
        arrays, info = cached(folder, stamp, build)
    except OSError as exc:
        if disk_full(exc):
            raise DataError(f"{folder}: no space left on the disk that holds this folder, "
                            f"while writing the decoded copy of {source}; free space there, "
                            "or set XDG_CACHE_HOME to a folder on a disk with room") from exc
        raise DataError(f"cannot write the decoded copy of {source} to {folder} ({exc}); "
                        "make the user cache writable (e.g. set XDG_CACHE_HOME)") from exc
    skipped = tuple(info.get("skipped", ()))
    if skipped:
        warnings.warn(f"{source}: skipped {len(skipped)} unreadable image(s), e.g. "
                      f"{skipped[0]}", stacklevel=4)
    return Dataset(name or kind, arrays["X_train"], arrays["y_train"], arrays.get("X_test"),
                   arrays.get("y_test"), tuple(info["class_names"]), skipped)
