"""The named data sets: where their official files are, their md5 sums, what they hold.

Facts (file names, md5 sums, URLs) are those torchvision uses. A mirror replaces the
official URLs: ``$NNDL_MIRROR_<NAME>`` (``NAME`` upper-cased, ``-`` as ``_``, e.g.
``NNDL_MIRROR_FASHION_MNIST``) or ``--url``, is the URL of a folder holding the data
set's official file names; for the single-file data sets (cifar10, cifar100) a URL that
does not end in ``/`` is the tarball itself. ``$NNDL_CIFAR10_URL`` still works.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from nndl.data.cifar10 import PY_FOLDER, TARBALL_MD5, TARBALL_NAME, TARBALL_URL


@dataclass(frozen=True)
class DatasetSpec:
    """One named data set.

    ``files`` are the official ``(file name, md5)`` pairs downloaded from each of
    ``mirrors`` (base URLs, tried in order) into ``root/folder``; when ``archive`` is
    true the single file is a tarball whose ``folder`` is extracted. ``num_classes``
    and ``image_shape`` (H, W, C) describe the images. ``flips_keep_class``: a left-right
    mirror of one of its images is an image of the same class that looks like the data
    set's own (see :func:`flips_keep_class`).
    """

    name: str
    description: str
    homepage: str
    folder: str
    files: tuple[tuple[str, str], ...]
    mirrors: tuple[str, ...]
    archive: bool
    size: str
    num_classes: int
    image_shape: tuple[int, int, int]
    num_train: int
    num_test: int | None
    flips_keep_class: bool = False

    @property
    def mirror_variable(self) -> str:
        """The environment variable that points this data set at a mirror."""
        return "NNDL_MIRROR_" + self.name.upper().replace("-", "_")

    def urls(self, file_name: str, url: str | None = None) -> list[str]:
        """The URLs to try, in order, for ``file_name``: ``url``, else the mirror
        variable, else the official mirrors (see the module docstring)."""
        override = url or os.environ.get(self.mirror_variable)
        if override is None and self.name == "cifar10":
            override = os.environ.get("NNDL_CIFAR10_URL")
        if override is None:
            return [base + file_name for base in self.mirrors]
        if self.archive and not override.endswith("/"):
            return [override]
        return [override.rstrip("/") + "/" + file_name]


_MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

DATASETS: dict[str, DatasetSpec] = {spec.name: spec for spec in (
    DatasetSpec(
        "cifar10", "CIFAR-10: 32x32 colour photographs of 10 classes",
        "https://www.cs.toronto.edu/~kriz/cifar.html", PY_FOLDER, ((TARBALL_NAME, TARBALL_MD5),),
        (TARBALL_URL.removesuffix(TARBALL_NAME),), True, "170 MB", 10, (32, 32, 3), 50000, 10000,
        flips_keep_class=True),
    DatasetSpec(
        "cifar100", "CIFAR-100: 32x32 colour photographs of 100 classes in 20 superclasses",
        "https://www.cs.toronto.edu/~kriz/cifar.html", "cifar-100-python",
        (("cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"),),
        ("https://www.cs.toronto.edu/~kriz/",), True, "169 MB", 100, (32, 32, 3), 50000, 10000,
        flips_keep_class=True),
    DatasetSpec(
        "mnist", "MNIST: 28x28 grayscale handwritten digits",
        "http://yann.lecun.com/exdb/mnist/", "mnist",
        tuple(zip(_MNIST_FILES, ("f68b3c2dcbeaaa9fbdd348bbdeb94873",
                                 "d53e105ee54ea40749a09fcbcd1e9432",
                                 "9fb629c4189551a2d022fa330f9573f3",
                                 "ec29112dd5afa0611ce80d1b7f02629c"))),
        ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        False, "12 MB", 10, (28, 28, 1), 60000, 10000),
    DatasetSpec(
        "fashion-mnist", "Fashion-MNIST: 28x28 grayscale photographs of 10 kinds of clothing",
        "https://github.com/zalandoresearch/fashion-mnist", "fashion-mnist",
        tuple(zip(_MNIST_FILES, ("8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                                 "25c81989df183df01b3e8a0aad5dffbe",
                                 "bef4ecab320f06d8554ea6380940ec79",
                                 "bb300cfdad3c16e7a12a480ee83cd310"))),
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        False, "31 MB", 10, (28, 28, 1), 60000, 10000),
    DatasetSpec(
        "digits", "scikit-learn's bundled 8x8 grayscale handwritten digits (no download)",
        "https://scikit-learn.org/stable/datasets/toy_dataset.html#digits-dataset", "",
        (), (), False, "bundled", 10, (8, 8, 1), 1797, None),
)}


def flips_keep_class(dataset: object) -> bool:
    """Whether test-time flips suit ``dataset`` (a name, or the path of a folder or .npz):
    its catalog flag for a named data set, False for anything else.

    On for natural photographs (cifar10, cifar100), whose mirror images are as natural.
    Off for handwriting (mnist, digits; a mirrored digit can be another digit, or none),
    and for fashion-mnist: its shoes all point one way, so a mirrored shoe is unlike any
    training image. Off for folders and ``.npz`` files: nndl cannot know, so the safe
    answer. ``nndl train`` records flip-averaged accuracies only where this is True.
    """
    spec = DATASETS.get(str(dataset))
    return spec is not None and spec.flips_keep_class


def warn_unless_flips_keep_class(dataset: object, tta: str | None) -> None:
    """Warn (a ``UserWarning``) when ``tta="flip"`` is asked of a dataset whose images may
    change class when mirrored (:func:`flips_keep_class`). A warning, not a refusal: the
    person asking may know their folder better than the catalog does."""
    if tta == "flip" and not flips_keep_class(dataset):
        import warnings

        example = " (a mirrored digit can be another digit)" \
            if str(dataset) in ("digits", "mnist") else ""
        warnings.warn(f"--tta flip on {dataset}: nndl does not know that a mirrored image of "
                      f"this dataset keeps its class{example}; flip-averaged results may "
                      "mislead", UserWarning, stacklevel=3)


FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
