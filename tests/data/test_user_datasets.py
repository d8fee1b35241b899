"""The user's own data: image folders and .npz files, their errors, and the
memory-mapped cache that serves any size."""

import json

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits

from nndl.data import DataError, load_dataset
from nndl.data.cache import cache_folder


def digits_uint8():
    bunch = load_digits()
    return np.rint(bunch.images * (255 / 16)).astype(np.uint8), bunch.target


def write_folder(root, images, labels, names, mode="L"):
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).convert(mode).save(folder / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def digits():
    X, y = digits_uint8()
    return X[:200], y[:200]


def test_image_folder_from_digits_is_grayscale_with_folder_class_names(tmp_path, digits):
    X, y = digits
    names = [f"digit{d}" for d in range(10)]
    data = load_dataset(write_folder(tmp_path / "digits", X, y, names))
    order = np.argsort(y, kind="stable")  # files are read class by class
    assert data.class_names == tuple(names) and data.image_shape == (8, 8, 1)
    np.testing.assert_array_equal(data.X_train[..., 0], X[order])
    assert data.y_train.tolist() == y[order].tolist() and data.X_test is None
    assert data.name == str(tmp_path / "digits")


def test_train_test_layout_rgb_and_resize(tmp_path):
    for split, n in (("train", 3), ("test", 2)):
        for cls, colour in (("cat", (200, 10, 10)), ("dog", (10, 10, 200))):
            (tmp_path / split / cls).mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (20, 10), colour).save(tmp_path / split / cls / f"{i}.jpg")
    Image.new("L", (20, 10), 90).save(tmp_path / "train" / "dog" / "gray.png")
    data = load_dataset(tmp_path, image_size=(6, 4))
    assert data.X_train.shape == (7, 4, 6, 3) and data.X_test.shape == (4, 4, 6, 3)
    assert data.y_test.tolist() == [0, 0, 1, 1] and data.class_names == ("cat", "dog")
    assert data.X_train[-1, 0, 0].tolist() == [90, 90, 90]  # gray converted to RGB
    assert abs(int(data.X_test[0, 2, 3, 0]) - 200) < 8  # JPEG


def test_npz_made_from_digits(tmp_path):
    X, y = digits_uint8()
    names = np.array([f"n{d}" for d in range(10)])
    np.savez_compressed(tmp_path / "d.npz", X=X[:1500], y=y[:1500], X_test=X[1500:],
                        y_test=y[1500:], class_names=names)
    data = load_dataset(tmp_path / "d.npz")
    assert data.X_train.shape == (1500, 8, 8, 1) and data.X_test.shape == (297, 8, 8, 1)
    np.testing.assert_array_equal(data.X_test[..., 0], X[1500:])
    assert data.y_train.dtype == np.int64 and data.class_names == tuple(names)
    np.savez(tmp_path / "f.npz", X=(X[:10, ..., None] / 255).astype(np.float64), y=y[:10])
    floats = load_dataset(tmp_path / "f.npz")
    assert floats.X_train.dtype == np.float32 and floats.class_names == tuple("0123456789")


def test_npz_streams_in_blocks_and_keeps_integer_pixels(tmp_path, monkeypatch):
    monkeypatch.setattr("nndl.data.npzfile._BLOCK_BYTES", 100)  # 2 images a block
    X = np.random.default_rng(0).integers(0, 256, (9, 5, 5, 3))  # int64 values 0..255
    np.savez(tmp_path / "i.npz", X=X, y=np.arange(9) % 2)
    data = load_dataset(tmp_path / "i.npz")
    assert data.X_train.dtype == np.uint8
    np.testing.assert_array_equal(data.X_train, X)
    np.savez(tmp_path / "big.npz", X=X * 2, y=np.arange(9) % 2)
    with pytest.raises(DataError, match=r"big.npz: X holds integer pixel values outside "
                                        r"0\.\.255"):
        load_dataset(tmp_path / "big.npz")


def test_memory_mapped_and_decoded_once(tmp_path, digits, monkeypatch):
    X, y = digits
    np.savez(tmp_path / "d.npz", X=X, y=y)
    first = load_dataset(tmp_path / "d.npz")
    assert isinstance(first.X_train, np.memmap) and isinstance(first.y_train, np.memmap)
    manifest = cache_folder("npz", tmp_path / "d.npz") / "manifest.json"
    stamp = manifest.stat().st_mtime_ns
    monkeypatch.setattr("nndl.data.datasets.read_npz", lambda *a: pytest.fail("decoded"))
    second = load_dataset(tmp_path / "d.npz")
    assert manifest.stat().st_mtime_ns == stamp
    np.testing.assert_array_equal(second.X_train, first.X_train)
    assert json.loads(manifest.read_text())["info"]["class_names"][0] == "0"


def test_image_folder_decodes_in_blocks(tmp_path, digits, monkeypatch):
    monkeypatch.setattr("nndl.data.imagefolder._BLOCK_BYTES", 64 * 7)  # 7 images a block
    X, y = digits
    data = load_dataset(write_folder(tmp_path / "d", X[:50], y[:50], list("0123456789")))
    order = np.argsort(y[:50], kind="stable")
    np.testing.assert_array_equal(data.X_train[..., 0], X[:50][order])


# --- bad data: every message names the file or folder -------------------------------

@pytest.fixture
def folder(tmp_path):
    for cls in ("a", "b"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (8, 6)).save(tmp_path / "imgs" / cls / f"{i}.png")
    return tmp_path / "imgs"


def test_unreadable_image_is_named_or_skipped_with_a_count(folder):
    bad = folder / "b" / "broken.png"
    bad.write_bytes(b"not a png")
    with pytest.raises(DataError, match=rf"{bad}: not a readable PNG/JPEG image"):
        load_dataset(folder)
    with pytest.warns(UserWarning, match=rf"skipped 1 unreadable image\(s\), e.g. {bad}"):
        data = load_dataset(folder, skip_unreadable=True)
    assert data.skipped == (str(bad),) and len(data.X_train) == 4


def test_truncated_image_is_found_while_decoding(folder):
    png = folder / "a" / "0.png"
    Image.new("RGB", (8, 6), (1, 2, 3)).save(png)
    png.write_bytes(png.read_bytes()[:-30])  # header intact, pixels cut
    with pytest.raises(DataError, match=rf"{png}: not a readable"):
        load_dataset(folder)
    with pytest.warns(UserWarning):
        assert len(load_dataset(folder, skip_unreadable=True).X_train) == 3


def test_class_without_images(folder):
    (folder / "c").mkdir()
    (folder / "c" / "readme.txt").write_text("no images")
    with pytest.raises(DataError, match=rf"{folder / 'c'}: class 'c' has no images"):
        load_dataset(folder)


def test_test_class_unknown_in_training(tmp_path, folder):
    (tmp_path / "split" / "test" / "z").mkdir(parents=True)
    folder.rename(tmp_path / "split" / "train")
    with pytest.raises(DataError, match=r"split/test: class folder\(s\) \['z'\] not in"):
        load_dataset(tmp_path / "split")


def test_mixed_sizes_need_image_size(folder):
    odd = folder / "b" / "odd.png"
    Image.new("RGB", (5, 5)).save(odd)
    with pytest.raises(DataError, match=rf"{folder}: images of 2 different sizes: 8x6 \(4 "
                                        rf"images\), 5x5 \(1 image\) \({odd} is 5x5\); .*"
                                        r"--image-size 8x6, the most common size"):
        load_dataset(folder)
    assert load_dataset(folder, image_size=(8, 6)).X_train.shape == (5, 6, 8, 3)


def _with(array, index, value):
    array[index] = value
    return array


@pytest.mark.parametrize("arrays, message", [
    ({"X": np.zeros((3, 4, 4), np.uint8), "y": np.array([0, 1])},
     "X has 3 images but y has 2 labels"),
    ({"X": np.zeros((2, 4, 4), np.uint8), "y": np.array([0.0, 1.0])},
     r"y must be integer labels of shape \(N,\), got float64"),
    ({"X": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, np.nan])},
     r"y must be integer labels .* got float64 .*nan"),
    ({"X": np.zeros((2, 4, 4), np.uint8), "y": np.array([True, False])},
     r"y must be integer labels .* got bool"),
    ({"X": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, -1])},
     "y holds the negative label -1"),
    ({"X": np.zeros((2, 16), np.uint8), "y": np.array([0, 1])},
     r"X must be images of shape \(N, H, W\) or \(N, H, W, C\) with C 1 or 3, got shape "
     r"\(2, 16\)"),
    ({"X": np.zeros((2, 4, 4, 4), np.uint8), "y": np.array([0, 1])},
     r"X must be images .* with C 1 or 3, got shape \(2, 4, 4, 4\)"),
    ({"X": np.zeros((2, 4, 4), bool), "y": np.array([0, 1])},
     "X must hold uint8 or float pixel values, got bool"),
    ({"X": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, 1]),
      "X_test": np.zeros((1, 4, 4), np.uint8)}, "X_test and y_test go together"),
    ({"X": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, 1]),
      "X_test": np.zeros((1, 5, 4), np.uint8), "y_test": np.array([0])},
     r"X_test images of shape \(5, 4\) differ from X's \(4, 4\)"),
    ({"X": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, 2]),
      "class_names": np.array(["a", "b"])}, "label 2 out of range for 2 class names"),
    ({"X": _with(np.zeros((3, 4, 4)), (1, 2, 3), np.nan), "y": np.array([0, 1, 0])},
     r"X holds pixel values that are not finite float32 numbers \(NaN, infinity or beyond "
     r"3\.4e\+38\), e\.g\. in image 1"),
    ({"X": _with(np.zeros((3, 4, 4)), (2, 0, 0), -np.inf), "y": np.array([0, 1, 0])},
     r"X holds pixel values that are not finite .* in image 2"),
    ({"X": _with(np.zeros((3, 4, 4)), (0, 0, 0), 1e300), "y": np.array([0, 1, 0])},
     r"X holds pixel values that are not finite .* in image 0"),
    ({"X": np.zeros((3, 4, 4), np.uint8), "y": np.array([0, 1, 2**63], np.uint64)},
     r"y holds the label 9223372036854775808, too large for a class index"),
    ({"X": np.zeros((3, 0, 4), np.uint8), "y": np.array([0, 1, 0])},
     r"X images of shape \(0, 4\) have no pixels"),
    ({"X": np.zeros((2, 4, 4), np.uint8), "y": np.array([0, 1]),
      "class_names": np.array([b"a\xff", b"b"])},
     r"class_names holds b'a\\xff', which is not UTF-8 text"),
    ({"X": np.zeros((3, 4, 4), np.uint8), "y": np.array([1, 1, 1]),
      "class_names": np.array(["a", "b"])},
     r"y holds one class only \(1, 'b'\); a classifier needs at least 2"),
    ({"X": np.zeros((10, 4, 4), np.uint8), "y": np.arange(10) % 5,
      "X_test": np.zeros((5, 4, 4), np.uint8), "y_test": np.arange(7, 12)},
     r"y_test holds label\(s\) 7, 8, 9, 10, 11 that y never holds; a network trained on y "
     r"cannot predict them"),
], ids=["lengths", "float", "nan", "bool", "negative", "rank", "channels", "bool-X",
        "test-half", "test-shape", "names", "nan-X", "inf-X", "1e300-X", "uint64-label",
        "zero-width", "non-utf8-names", "one-class", "unseen-test-labels"])
def test_bad_npz_is_named(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=rf"^{tmp_path / 'bad.npz'}: {message}"):
        load_dataset(tmp_path / "bad.npz")


def test_not_an_npz_and_missing_path(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DataError, match=r"junk.npz: not a readable .npz file"):
        load_dataset(tmp_path / "junk.npz")
    with pytest.raises(DataError, match=r"nope: no such file or folder \(and not a named"):
        load_dataset(tmp_path / "nope")


def test_mixed_sizes_that_tie_are_listed_and_the_smallest_suggested(tmp_path):
    """Four sizes, one image each: no size is "the most common"."""
    sizes = [(40, 30), (32, 32), (20, 20), (64, 48)]
    for i, size in enumerate(sizes):
        (tmp_path / "c" / f"k{i % 2}").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size).save(tmp_path / "c" / f"k{i % 2}" / f"{i}.png")
    with pytest.raises(DataError) as exc:
        load_dataset(tmp_path / "c")
    message = str(exc.value)
    assert "images of 4 different sizes: 20x20 (1 image), 32x32 (1 image), 40x30 (1 image), "\
        "64x48 (1 image) (" in message
    assert "most common size" not in message
    assert message.endswith("e.g. --image-size 20x20, the smallest of the 4 sizes that tie as "
                            "the most common (1 image each)")


def test_cli_info_describes_a_folder_with_mixed_sizes(folder):
    from tests.test_cli import run_nndl

    Image.new("L", (5, 5)).save(folder / "b" / "odd.png")
    result = run_nndl("data", "info", str(folder))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "format         image folder, RGB, images of 2 different sizes (not decoded)",
        f"location       {folder}",
        "train images   5 files",
        "train classes  a 2, b 3",
        "image sizes    8x6 (4 images), 5x5 (1 image)",
        "training       needs --image-size WxH (every image is resized to it), e.g. "
        "--image-size 8x6, the most common size"]
    result = run_nndl("data", "info", str(folder), "--image-size", "8x6")
    assert result.returncode == 0, result.stderr
    assert "format         image folder, RGB uint8" in result.stdout
    assert "train images   (5, 6, 8, 3) uint8" in result.stdout
    result = run_nndl("data", "info", str(folder), "--image-size", "8")
    assert result.returncode == 2 and "invalid image_size value: '8'" in result.stderr
