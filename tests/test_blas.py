"""``_blas.gemm`` (out = alpha * a @ b + beta * out) and ``add_product`` (C += alpha * A.T @ B),
through NumPy's OpenBLAS or NumPy."""

import itertools

import numpy as np
import pytest

from nndl import _blas


def _operands(dtype, rng, wide=False):
    A = rng.standard_normal((20, 7)).astype(dtype)
    B = rng.standard_normal((20, 12 if wide else 5)).astype(dtype)
    C = rng.standard_normal((7, 12 if wide else 5)).astype(dtype)
    return A, B, C


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("blas", [True, False], ids=["blas", "numpy"])
def test_add_product_matches_numpy(dtype, blas, monkeypatch):
    if blas and not _blas.available(dtype):
        pytest.skip("NumPy's OpenBLAS is not reachable here")
    if not blas:
        monkeypatch.setattr(_blas, "_gemm", lambda dtype: None)
    rng = np.random.default_rng(0)
    A, B, C = _operands(dtype, rng)
    expected = C.astype(np.float64) - 0.5 * (A.T.astype(np.float64) @ B)
    out = _blas.add_product(C, A, B, -0.5)
    assert out is C
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_product_on_column_blocks_leaves_other_columns(dtype):
    """A column slice of a wider C (BLAS's leading dimension) and of B."""
    rng = np.random.default_rng(1)
    A, B, C = _operands(dtype, rng, wide=True)
    before = C.copy()
    _blas.add_product(C[:, 4:9], A, B[:, 4:9], 2.0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C[:, 4:9], before[:, 4:9] + 2 * A.T @ B[:, 4:9], rtol=tol,
                               atol=tol)
    np.testing.assert_array_equal(C[:, :4], before[:, :4])
    np.testing.assert_array_equal(C[:, 9:], before[:, 9:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_add_product_into_a_column_contiguous_C(dtype, monkeypatch):
    """C the transpose of a C-order array (Population's float64 layout), and a column
    block of it: the product goes into C.T (through BLAS where it is reachable), and the
    columns outside stay as they were."""
    if _blas.available(dtype):
        monkeypatch.setattr(_blas, "_numpy_gemm", None)  # calling it would fail
    rng = np.random.default_rng(3)
    A, B, C = _operands(dtype, rng, wide=True)
    C = np.ascontiguousarray(C.T).T  # same values, columns contiguous
    before = C.copy()
    _blas.add_product(C[:, 4:9], A, B[:, 4:9], -1.5)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(C[:, 4:9], before[:, 4:9] - 1.5 * A.T @ B[:, 4:9], rtol=tol,
                               atol=tol)
    np.testing.assert_array_equal(C[:, :4], before[:, :4])
    np.testing.assert_array_equal(C[:, 9:], before[:, 9:])
    assert C.flags.f_contiguous  # updated in place, the layout kept


def _laid_out(a, transposed):
    """The values of ``a`` stored C-ordered, or as the transpose of a C-ordered array."""
    return np.ascontiguousarray(a.T).T if transposed else np.ascontiguousarray(a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layouts", list(itertools.product([False, True], repeat=3)),
                         ids=lambda t: "".join("T" if x else "C" for x in t))
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-0.25, 0.0), (2.0, 1.0), (0.5, 0.75)])
def test_gemm_in_every_layout_through_blas(dtype, layouts, alpha, beta, monkeypatch):
    """Every mix of C-ordered and transposed operands goes to BLAS (where reachable) and
    gives ``alpha * a @ b + beta * out``; with beta = 0 a NaN in ``out`` is never read."""
    if _blas.available(dtype):
        monkeypatch.setattr(_blas, "_numpy_gemm", None)  # calling it would fail
    rng = np.random.default_rng(4)
    a, b, c = (rng.standard_normal(shape) for shape in ((6, 9), (9, 4), (6, 4)))
    if beta == 0:
        c[2, 3] = np.nan
    expected = alpha * (a @ b) + (beta * c if beta else 0)
    a, b, out = (_laid_out(x.astype(dtype), t) for x, t in zip((a, b, c), layouts))
    assert _blas.gemm(out, a, b, alpha, beta) is out
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, expected, rtol=tol, atol=tol)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (-3.0, 0.0), (0.5, 2.0)])
def test_gemm_falls_back_to_numpy_for_other_strides(alpha, beta):
    rng = np.random.default_rng(5)
    a = rng.standard_normal((12, 5))[::2]  # every other row
    b = rng.standard_normal((5, 3))
    out = rng.standard_normal((6, 6))[:, ::2]  # every other column
    expected = alpha * (a @ b) + beta * out
    _blas.gemm(out, a, b, alpha, beta)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_gemm_of_big_endian_arrays_goes_to_numpy():
    """BLAS reads native byte order only: ``>f8`` arrays take NumPy's path."""
    rng = np.random.default_rng(6)
    a, b, out = (rng.standard_normal(shape).astype(">f8") for shape in ((4, 3), (3, 5), (4, 5)))
    expected = 2.0 * (a.astype(np.float64) @ b.astype(np.float64)) + out.astype(np.float64)
    _blas.gemm(out, a, b, 2.0, 1.0)
    np.testing.assert_allclose(out, expected, rtol=1e-12)


def test_add_product_with_strided_operand_falls_back():
    rng = np.random.default_rng(2)
    A = rng.standard_normal((40, 7))[::2]  # rows every other: not BLAS-readable as given
    B = rng.standard_normal((20, 5))[:, ::-1]  # negative column stride
    C = rng.standard_normal((7, 5))
    expected = C + A.T @ B
    _blas.add_product(C, A, B, 1.0)
    np.testing.assert_allclose(C, expected, rtol=1e-12)


@pytest.mark.parametrize("shapes", [((4, 3), (7, 5), (4, 5)),  # inner sizes differ
                                    ((4, 3), (3, 5), (4, 6)),  # out too wide
                                    ((4, 3), (3, 5), (9, 5)),  # out too tall
                                    ((4, 3), (3, 5), (20,))])  # out not 2-D
def test_gemm_refuses_shapes_that_do_not_agree(shapes):
    """BLAS trusts the sizes it is given: a mismatch would read and write outside the
    arrays, so it is refused first (before any foreign call), naming the shapes."""
    a, b, out = (np.ones(shape, np.float32) for shape in shapes)
    before = out.copy()
    with pytest.raises(ValueError, match=r"do not agree"):
        _blas.gemm(out, a, b, 1.0, 1.0)
    np.testing.assert_array_equal(out, before)


def test_add_product_refuses_a_first_operand_of_another_width():
    """``C += A.T @ B`` with A wider than C is tall: refused, C untouched."""
    C, A, B = np.zeros((10, 5), np.float32), np.ones((20, 4000), np.float32), \
        np.ones((20, 5), np.float32)
    with pytest.raises(ValueError, match=r"\(4000, 20\) @ \(20, 5\) -> \(10, 5\)"):
        _blas.add_product(C, A, B, -1.0)
    assert not C.any()


def test_blas_threads_are_set_and_read_back():
    """The thread count of NumPy's OpenBLAS (the two-core split holds it at one)."""
    threads = _blas.num_threads()
    if threads is None:
        assert _blas.set_num_threads(1) is None  # no library: nothing to set
        return
    try:
        assert _blas.set_num_threads(1) == threads
        assert _blas.num_threads() == 1
    finally:
        assert _blas.set_num_threads(threads) == 1
    assert _blas.num_threads() == threads


def test_numpy_wheel_blas_is_found_on_linux_wheels():
    """Where NumPy ships its OpenBLAS in ``numpy.libs`` (Linux wheels), it is used."""
    if not any(True for _ in _blas._library_paths()):
        pytest.skip("this NumPy does not ship OpenBLAS in its wheel folders")
    assert _blas.available(np.float32) and _blas.available(np.float64)
    assert not _blas.available(np.int64)
