import numpy as np
import pytest

from nndl.transforms import Pipeline, make_transform, random_flip, random_translate


@pytest.fixture
def rows():
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(6, 6))
    return rng.normal(size=(500, 6)) @ mix + 5, rng.normal(size=(50, 6)) @ mix + 5


def test_pca_whitening_gives_identity_covariance(rows):
    train, _ = rows
    white = make_transform("pca", epsilon=0.0).fit_transform(train)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(6), atol=1e-8)
    reduced = make_transform("pca", n_components=3, epsilon=0.0).fit_transform(train)
    assert reduced.shape == (500, 3)


def test_zca_whitening_stays_close_to_the_input_space(rows):
    train, _ = rows
    zca = make_transform("zca", epsilon=0.0).fit(train)
    white = zca.transform(train)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(6), atol=1e-8)
    # ZCA's whitening matrix is symmetric (PCA's rotation is undone)
    w = zca.components_.T @ np.diag(1 / zca.scale_) @ zca.components_
    np.testing.assert_allclose(w, w.T, atol=1e-10)


def test_pipeline_round_trips_through_plain_arrays(rows):
    train, test = rows
    pipe = Pipeline(["mean", "standardize", "zca"])
    out = pipe.fit_transform(train)
    names, arrays = pipe.to_arrays()
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in arrays.values())
    again = Pipeline.from_arrays(names, arrays)
    np.testing.assert_array_equal(again.transform(test), pipe.transform(test))
    np.testing.assert_allclose(again.transform(train), out)


def test_unknown_preprocessing_is_named():
    with pytest.raises(ValueError, match="preprocessing must be one of"):
        make_transform("whiten-everything")


def _reference_crops(images, max_shift):
    """Every padded crop of each image: (N, side, side, H, W, C), edge-filled."""
    s = max_shift
    padded = np.pad(images, ((0, 0), (s, s), (s, s), (0, 0)), mode="edge")
    h, w = images.shape[1:3]
    return np.stack([np.stack([padded[:, y : y + h, x : x + w] for x in range(2 * s + 1)], 1)
                     for y in range(2 * s + 1)], 1)


def test_random_translate_is_an_edge_padded_crop_per_image():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (300, 6, 5, 3), dtype=np.uint8)
    out = random_translate(images, np.random.default_rng(1), 2)
    crops = _reference_crops(images, 2)
    match = (crops == out[:, None, None]).all(axis=(3, 4, 5))  # (N, 5, 5)
    assert match.any(axis=(1, 2)).all()  # every output is one of its own image's crops
    shifts = {tuple(np.argwhere(m)[0]) for m in match}
    assert len(shifts) == 25  # and all 25 shifts are drawn over 300 images
    assert out.dtype == images.dtype and out.shape == images.shape


def test_random_flip_mirrors_about_half_of_the_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (400, 4, 4, 3), dtype=np.uint8)
    out = random_flip(images, np.random.default_rng(2))
    same = (out == images).all(axis=(1, 2, 3))
    mirrored = (out == images[:, :, ::-1]).all(axis=(1, 2, 3))
    assert (same | mirrored).all()
    assert 150 < mirrored.sum() < 250
