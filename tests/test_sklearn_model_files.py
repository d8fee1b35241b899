"""Model files from ``nndl.sklearn.save_model`` (issue 21): the input range the estimator
was fitted on travels with the model, so an image file predicts what the estimator predicts
for its row."""

import re
import warnings

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from nndl.cli import main
from nndl.model_io import load_model
from nndl.sklearn import TwoLayerNetClassifier, save_model

DIGITS = 40  # the first digits of scikit-learn's set, as PNG files


@pytest.fixture(scope="module")
def digits_pipeline():
    """A Pipeline fitted on scikit-learn's digits as they come (values 0-16), and the rows."""
    X, y = load_digits(return_X_y=True)
    pipe = make_pipeline(StandardScaler(), TwoLayerNetClassifier(
        std=0.1, learning_rate=0.5, num_iters=300, random_state=0)).fit(X, y)
    return pipe, X


def _as_pixels(rows):
    """Rows of 0-16 values as 8x8 grayscale images of pixels 0-255 (N, 8, 8), rounded as a
    PNG stores them."""
    return np.rint(rows.reshape(-1, 8, 8) * (255 / 16)).astype(np.uint8)


def _printed_probabilities(output, classes):
    """{image path: (C,) probabilities} from ``nndl predict --top C``'s lines."""
    table = {}
    for line in output.strip().splitlines():
        path, ranked = line.rsplit(": ", 1)
        probs = np.zeros(classes)
        for name, value in re.findall(r"(\S+) (\d\.\d{3})", ranked):
            probs[int(name)] = float(value)
        table[path] = probs
    return table


def test_png_digits_predict_what_the_estimator_predicts(tmp_path, digits_pipeline, capsys):
    pipe, X = digits_pipeline
    path = save_model(pipe, tmp_path / "digits.npz", image_shape=(8, 8, 1),
                      input_range=(0, 16))
    files = []
    for i, image in enumerate(_as_pixels(X[:DIGITS])):
        files.append(str(tmp_path / f"digit{i}.png"))
        Image.fromarray(image).save(files[-1])
    assert main(["predict", str(path), *files, "--top", "10"]) == 0
    printed = _printed_probabilities(capsys.readouterr().out, 10)
    expected = pipe.predict_proba(X[:DIGITS])
    got = np.array([printed[f] for f in files])
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    # printed to 3 decimals, from pixels rounded to 1/255 of the range
    np.testing.assert_allclose(got, expected, atol=0.01)


def test_input_range_maps_pixels_exactly_onto_the_fitted_scale(tmp_path, digits_pipeline):
    pipe, X = digits_pipeline
    model = load_model(save_model(pipe, tmp_path / "m.npz", image_shape=(8, 8, 1),
                                  input_range=(0, 16)))
    assert model.input_range == (0.0, 16.0)
    pixels = X.reshape(-1, 8, 8, 1) * (255 / 16)  # unrounded: the very same rows
    np.testing.assert_allclose(model.predict_proba_images(pixels), pipe.predict_proba(X),
                               rtol=1e-10, atol=1e-12)


def test_no_input_range_warns_that_pixels_are_taken_as_they_are(tmp_path, digits_pipeline):
    pipe, X = digits_pipeline
    with pytest.warns(UserWarning, match=r"pixel values 0-255 as they are.*input_range"):
        path = save_model(pipe, tmp_path / "m.npz", image_shape=(8, 8, 1))
    model = load_model(path)
    assert model.input_range is None
    pixels = X[:5].reshape(-1, 8, 8, 1).astype(float)  # taken as they are: the same rows
    np.testing.assert_allclose(model.predict_proba_images(pixels), pipe.predict_proba(X[:5]),
                               rtol=1e-10, atol=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an explicit range, even 0-255, is no warning
        save_model(pipe, tmp_path / "m255.npz", image_shape=(8, 8, 1), input_range=(0, 255))


def test_a_scaler_fitted_outside_the_range_is_refused(tmp_path, digits_pipeline):
    pipe, _ = digits_pipeline  # the scaler's means go up to ~15
    with pytest.raises(ValueError, match=r"input_range \(0, 1\) cannot hold.*StandardScaler"):
        save_model(pipe, tmp_path / "m.npz", image_shape=(8, 8, 1), input_range=(0, 1))
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("bad", [(16, 0), (0, float("nan")), (0,), "0-16", (0, "16"),
                                 (True, 2)])
def test_malformed_input_ranges_are_named(tmp_path, digits_pipeline, bad):
    pipe, _ = digits_pipeline
    with pytest.raises(ValueError, match="input_range must be"):
        save_model(pipe, tmp_path / "m.npz", image_shape=(8, 8, 1), input_range=bad)


def test_the_courses_two_layer_net_is_refused_by_its_full_name(tmp_path):
    """Both TwoLayerNets are called TwoLayerNet: the refusal names the module."""
    from nndl.fc_net import TwoLayerNet as CourseTwoLayerNet

    with pytest.raises(TypeError, match=r"an nndl\.neural_net\.TwoLayerNet or a Pipeline .*, "
                                        r"got nndl\.fc_net\.TwoLayerNet$"):
        save_model(CourseTwoLayerNet(input_dim=12, hidden_dims=5), tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []
