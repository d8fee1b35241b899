import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from nndl.data import DataError, load_dataset
from nndl.data.formats import read_image
from nndl.model_io import SavedModel, save_model
from nndl.neural_net import TwoLayerNet
from tests.test_cli import run_nndl


def test_image_folder(tmp_path):
    for name, color in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (40 + i, 20), color).save(tmp_path / name / f"{i}.png")
    (tmp_path / "dogs" / "notes.txt").write_text("ignored")
    data = load_dataset(tmp_path, image_size=(32, 32))
    assert data.class_names == ("cats", "dogs") and data.y_train.tolist() == [0, 0, 1, 1]
    assert data.X_train.shape == (4, 32, 32, 3) and data.X_train.dtype == np.uint8
    assert data.X_train[0, 5, 5].tolist() == [255, 0, 0]
    assert data.X_train[3, 5, 5].tolist() == [0, 0, 255]


def test_empty_image_folder_and_bad_image(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match="a: class 'a' has no images"):
        load_dataset(tmp_path)
    (tmp_path / "a" / "x.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"x.png: not a readable"):
        read_image(tmp_path / "a" / "x.png")


def test_npz_roundtrip_and_errors(tmp_path):
    X = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    np.savez(tmp_path / "ok.npz", X=X, y=np.array([1, 0]), class_names=np.array(["a", "b"]))
    data = load_dataset(tmp_path / "ok.npz")
    np.testing.assert_array_equal(data.X_train, X)
    assert data.y_train.tolist() == [1, 0] and data.class_names == ("a", "b")
    np.savez(tmp_path / "noy.npz", X=X)
    with pytest.raises(DataError, match=r"noy.npz: missing array\(s\) \['y'\]"):
        load_dataset(tmp_path / "noy.npz")
    np.savez(tmp_path / "obj.npz", X=X, y=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="obj.npz: y holds pickled objects"):
        load_dataset(tmp_path / "obj.npz")
    np.savez(tmp_path / "short.npz", X=X, y=np.array([1]))
    with pytest.raises(DataError, match=r"short.npz: X has 2 images but y has 1 labels"):
        load_dataset(tmp_path / "short.npz")


def png_header_only(path, width, height):
    """A PNG that declares ``width`` x ``height`` pixels but holds almost no data: what a
    decompression bomb looks like to a reader of its header."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("side", [8000, 20000], ids=["over-nndl-cap", "over-pillow-limit"])
def test_huge_image_is_refused_before_decoding(tmp_path, side):
    path = png_header_only(tmp_path / "bomb.png", side, side)
    # Pillow refuses a header over twice its limit itself, before telling the size
    size = f"{side}x{side}" if side < 10000 else f"more than {2 * Image.MAX_IMAGE_PIXELS:,}"
    with pytest.raises(DataError, match=rf"bomb.png: image of {size} pixels is over the "
                                        r"limit of 50,000,000 pixels"):
        read_image(path)


def test_pixel_cap_can_be_raised_or_lowered(tmp_path, monkeypatch):
    Image.new("RGB", (40, 30)).save(tmp_path / "small.png")
    assert read_image(tmp_path / "small.png", max_pixels=1200).shape == (32, 32, 3)
    with pytest.raises(DataError, match=r"40x30 pixels is over the limit of 1,199 pixels"):
        read_image(tmp_path / "small.png", max_pixels=1199)
    monkeypatch.setenv("NNDL_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(DataError, match=r"over the limit of 1,000 pixels \(NNDL_MAX_IMAGE_PIXELS"):
        read_image(tmp_path / "small.png")
    monkeypatch.setenv("NNDL_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match=r"NNDL_MAX_IMAGE_PIXELS must be a positive integer, "
                                         r"got 'lots'"):
        read_image(tmp_path / "small.png")


@pytest.mark.parametrize("command", ["predict", "data info"])
def test_cli_refuses_a_huge_image_in_one_line(tmp_path, command):
    (tmp_path / "cats").mkdir()
    bomb = png_header_only(tmp_path / "cats" / "bomb.png", 20000, 20000)
    (tmp_path / "dogs").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "dogs" / "dog.png")
    if command == "predict":
        model = save_model(tmp_path / "m.npz", SavedModel(TwoLayerNet(3072, 4, 2), class_names=(
            "a", "b")))
        result = run_nndl("predict", str(model), str(bomb))
    else:
        result = run_nndl("data", "info", str(tmp_path))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"nndl {command.split()[0]}: error: {bomb}: image of more than "
                             f"{2 * Image.MAX_IMAGE_PIXELS:,} pixels is over the limit of "
                             "50,000,000 pixels (NNDL_MAX_IMAGE_PIXELS raises it)\n")
