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
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr)
                     + _chunk(b"IDAT", zlib.compress(b"\0" * 16)) + _chunk(b"IEND", b""))
    return path


def _chunk(kind, data):
    """A PNG chunk: length, kind, data, CRC."""
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


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
    with pytest.raises(ValueError, match=r"NNDL_MAX_IMAGE_PIXELS must be an integer >= 1 "
                                         r"\(the most pixels an image may have\), got 'lots'"):
        read_image(tmp_path / "small.png")


@pytest.mark.parametrize("command", ["predict", "data info"])
def test_cli_refuses_an_image_over_pillows_warning_limit_in_one_line(tmp_path, command):
    """Between Pillow's warning limit and twice it, Pillow printed its own
    DecompressionBombWarning before nndl's error."""
    side = int((1.5 * Image.MAX_IMAGE_PIXELS) ** 0.5)
    (tmp_path / "cats").mkdir()
    big = png_header_only(tmp_path / "cats" / "big.png", side, side)
    (tmp_path / "dogs").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "dogs" / "dog.png")
    if command == "predict":
        model = save_model(tmp_path / "m.npz", SavedModel(TwoLayerNet(3072, 4, 2), class_names=(
            "a", "b")))
        result = run_nndl("predict", str(model), str(big))
    else:
        result = run_nndl("data", "info", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr == (f"nndl {command.split()[0]}: error: {big}: image of {side}x{side} "
                             "pixels is over the limit of 50,000,000 pixels "
                             "(NNDL_MAX_IMAGE_PIXELS raises it)\n")


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


# --- issue 22, items 9 and 15: 16-bit PNGs, palette PNGs, formats beyond PNG/JPEG -----

def _png(path, width, height, bit_depth, colour_type, rows):
    """A PNG written byte by byte (Pillow cannot write every depth): ``rows`` are the
    unfiltered scanlines as bytes."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    data = zlib.compress(b"".join(b"\0" + row for row in rows))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", data)
                     + _chunk(b"IEND", b""))
    return path


SIXTEEN_BIT = np.array([[0, 257 * 10, 32768, 65535]], dtype=">u2")  # 8-bit: 0, 10, 128, 255


def test_sixteen_bit_grayscale_png_is_scaled_not_saturated(tmp_path):
    png = _png(tmp_path / "g16.png", 4, 1, 16, 0, [SIXTEEN_BIT[0].tobytes()])
    assert read_image(png, size=None, mode="L").tolist() == [[0, 10, 128, 255]]
    assert read_image(png, size=None)[0, :, 0].tolist() == [0, 10, 128, 255]
    for cls in ("a", "b"):  # a folder of mid-gray 16-bit images: mean 128, not 254.6
        (tmp_path / "f" / cls).mkdir(parents=True)
        _png(tmp_path / "f" / cls / "0.png", 4, 1, 16, 0, [np.full(4, 32768, ">u2").tobytes()])
    data = load_dataset(tmp_path / "f")
    assert data.image_shape == (1, 4, 1) and np.asarray(data.X_train).mean() == 128


def test_sixteen_bit_rgb_png_keeps_its_values(tmp_path):
    rgb = np.repeat(SIXTEEN_BIT[..., None], 3, axis=2)
    png = _png(tmp_path / "rgb16.png", 4, 1, 16, 2, [rgb[0].tobytes()])
    assert read_image(png, size=None)[0, :, 1].tolist() == [0, 10, 128, 255]


def test_palette_png_with_transparency_reads_without_pillows_warning(tmp_path, recwarn):
    image = Image.new("P", (2, 1))
    image.putpalette([200, 10, 20, 5, 6, 7] + [0] * 762)
    image.putdata([0, 1])
    image.save(tmp_path / "p.png", transparency=b"\x80\xff")  # alpha 128 and 255
    with Image.open(tmp_path / "p.png") as saved:
        assert saved.mode == "P" and saved.info["transparency"] == b"\x80\xff"
    assert read_image(tmp_path / "p.png", size=None).tolist() == [[[200, 10, 20], [5, 6, 7]]]
    assert [str(w.message) for w in recwarn] == []


@pytest.mark.parametrize("kind", ["GIF", "BMP", "TIFF", "WEBP"])
def test_formats_beyond_png_and_jpeg_are_refused_naming_the_file(tmp_path, kind):
    disguised = tmp_path / "photo.png"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(disguised, format=kind)
    with pytest.raises(DataError, match=rf"^{disguised}: a {kind} image; nndl reads PNG and "
                                        "JPEG images only"):
        read_image(disguised)
    jpeg = tmp_path / "photo.jpg"
    Image.new("RGB", (4, 4), (1, 2, 3)).save(jpeg)
    assert read_image(jpeg, size=None).shape == (4, 4, 3)
