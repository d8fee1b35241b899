import numpy as np
import pytest
from PIL import Image

from nndl.data import DataError
from nndl.data.formats import load_image_folder, load_npz, read_image


def test_image_folder(tmp_path):
    for name, color in (("cats", (255, 0, 0)), ("dogs", (0, 0, 255))):
        (tmp_path / name).mkdir()
        for i in range(2):
            Image.new("RGB", (40 + i, 20), color).save(tmp_path / name / f"{i}.png")
    (tmp_path / "dogs" / "notes.txt").write_text("ignored")
    X, y, names = load_image_folder(tmp_path)
    assert names == ("cats", "dogs") and y.tolist() == [0, 0, 1, 1]
    assert X.shape == (4, 32, 32, 3) and X.dtype == np.uint8
    assert X[0, 5, 5].tolist() == [255, 0, 0] and X[3, 5, 5].tolist() == [0, 0, 255]


def test_empty_image_folder_and_bad_image(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(DataError, match="no images found"):
        load_image_folder(tmp_path)
    (tmp_path / "a" / "x.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match=r"x.png: not a readable"):
        read_image(tmp_path / "a" / "x.png")


def test_npz_roundtrip_and_errors(tmp_path):
    X = np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3)
    np.savez(tmp_path / "ok.npz", X=X, y=np.array([1, 0]), class_names=np.array(["a", "b"]))
    X2, y2, names = load_npz(tmp_path / "ok.npz")
    np.testing.assert_array_equal(X2, X)
    assert y2.tolist() == [1, 0] and names == ("a", "b")
    np.savez(tmp_path / "noy.npz", X=X)
    with pytest.raises(DataError, match=r"noy.npz: missing array\(s\) \['y'\]"):
        load_npz(tmp_path / "noy.npz")
    np.savez(tmp_path / "obj.npz", X=X, y=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="obj.npz: not a readable .npz without pickled"):
        load_npz(tmp_path / "obj.npz")
    np.savez(tmp_path / "short.npz", X=X, y=np.array([1]))
    with pytest.raises(DataError, match=r"y must be integer labels of shape \(2,\)"):
        load_npz(tmp_path / "short.npz")
