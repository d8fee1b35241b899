import numpy as np
import pytest

from nndl.transforms import Pipeline, make_transform


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
