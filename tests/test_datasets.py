"""The bundled data sets, the split and the file loaders."""

import numpy as np
import pytest

from funnet import datasets


def test_digits_has_1797_images_of_64_pixels_and_ten_classes():
    X, y = datasets.load("digits")
    assert X.shape == (1797, 64) and y.shape == (1797,)
    assert X.min() == 0 and X.max() == 16
    assert set(np.unique(y)) == set(range(10))


def test_breast_cancer_has_569_samples_of_30_features_and_two_classes():
    X, y = datasets.load("breast_cancer")
    assert X.shape == (569, 30)
    assert np.bincount(y).tolist() == [212, 357]
    assert np.isfinite(X).all()


def test_unknown_data_set_names_the_known_ones():
    with pytest.raises(
        ValueError,
        match="unknown data set 'mnist'; expected one of \\['digits', 'breast_cancer'\\]",
    ):
        datasets.load("mnist")


def test_split_is_stratified_seeded_and_disjoint():
    X, y = datasets.load("digits")
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(X, y, test_size=0.25, seed=4)
    assert len(X_tr) + len(X_te) == len(X)
    share = np.bincount(y_te) / np.bincount(y)
    assert np.all(np.abs(share - 0.25) < 0.01)
    rows = {tuple(r) for r in np.c_[X_tr, y_tr]} & {tuple(r) for r in np.c_[X_te, y_te]}
    assert len(rows) <= 5  # identical images can occur in both parts
    again = datasets.train_test_split(X, y, test_size=0.25, seed=4)
    np.testing.assert_array_equal(again[1], X_te)
    other = datasets.train_test_split(X, y, test_size=0.25, seed=5)
    assert not np.array_equal(other[1], X_te)


def test_split_keeps_every_row_exactly_once():
    X = np.arange(30, dtype=float)[:, None]
    y = np.arange(30) % 3
    X_tr, X_te, _, _ = datasets.train_test_split(X, y, test_size=0.3, seed=0)
    assert sorted(np.r_[X_tr[:, 0], X_te[:, 0]]) == list(range(30))


def test_standardizer_uses_training_statistics_and_survives_constant_columns():
    X = np.array([[1.0, 5.0], [3.0, 5.0]])
    scale = datasets.Standardizer.fit(X)
    np.testing.assert_allclose(scale(X), [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(scale(np.array([[2.0, 7.0]])), [[0.0, 2.0]])
    assert scale(X, np.float32).dtype == np.float32


def test_npz_and_csv_files_load(tmp_path):
    X = np.arange(12, dtype=float).reshape(4, 3)
    y = np.array([0, 1, 1, 0])
    np.savez(tmp_path / "d.npz", X=X, y=y)
    X2, y2 = datasets.load_file(tmp_path / "d.npz")
    np.testing.assert_array_equal(X2, X) and np.testing.assert_array_equal(y2, y)
    (tmp_path / "d.csv").write_text(
        "a,b,c,label\n" + "".join(f"{r[0]},{r[1]},{r[2]},{t}\n" for r, t in zip(X, y))
    )
    X3, y3 = datasets.load_file(tmp_path / "d.csv")
    np.testing.assert_array_equal(X3, X)
    assert y3.dtype == np.int64 and list(y3) == list(y)
    X4, y4 = datasets.load_csv(tmp_path / "d.csv", target="a")
    np.testing.assert_array_equal(y4, X[:, 0])


def test_bad_files_get_clear_errors(tmp_path):
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(ValueError, match="object arrays"):
        datasets.load_npz(tmp_path / "obj.npz")
    np.savez(tmp_path / "noy.npz", X=np.zeros((2, 2)))
    with pytest.raises(ValueError, match="arrays named 'X' and 'y'"):
        datasets.load_npz(tmp_path / "noy.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable .npz"):
        datasets.load_npz(tmp_path / "junk.npz")
    with pytest.raises(ValueError, match="expected a .npz or .csv"):
        datasets.load_file(tmp_path / "data.txt")
    (tmp_path / "ragged.csv").write_text("1,2,0\n3,1\n")
    with pytest.raises(ValueError, match="equally long rows"):
        datasets.load_csv(tmp_path / "ragged.csv")


def test_standardizing_data_of_another_width_is_refused():
    with pytest.raises(
        ValueError, match=r"X has shape \(2, 3\); expected \(samples, 4\)"
    ):
        datasets.standardize(np.ones((5, 4)), np.ones((2, 3)))
    with pytest.raises(ValueError, match="must be 2-D"):
        datasets.Standardizer.fit(np.ones(5))


def test_csv_with_a_byte_order_mark_or_an_empty_cell_keeps_its_first_row(tmp_path):
    (tmp_path / "bom.csv").write_bytes("\ufeff1,2,0\n3,4,1\n".encode("utf-8"))
    X, y = datasets.load_csv(tmp_path / "bom.csv")
    assert X.shape == (2, 2) and list(y) == [0, 1]
    (tmp_path / "gap.csv").write_text("1,,0\n3,4,1\n")
    with pytest.raises(ValueError, match="must hold numbers"):
        datasets.load_csv(tmp_path / "gap.csv")


def test_npz_that_is_text_or_complex_gets_a_clear_error(tmp_path):
    (tmp_path / "t.npz").write_text("hi")
    with pytest.raises(ValueError, match="does not start like a zip archive"):
        datasets.load_npz(tmp_path / "t.npz")
    np.savez(tmp_path / "c.npz", X=np.ones((2, 2)) * 1j, y=np.zeros(2))
    with pytest.raises(
        ValueError, match="X must hold real numbers, got dtype complex128"
    ):
        datasets.load_npz(tmp_path / "c.npz")


def test_standardizing_makes_no_float64_copy_of_the_whole_data():
    import tracemalloc

    X = np.random.default_rng(0).normal(3.0, 5.0, (20000, 50)).astype(np.float32)
    scale = datasets.Standardizer.fit(X[:100])
    expected = ((X.astype(np.float64) - scale.mean) / scale.std).astype(np.float32)
    tracemalloc.start()
    try:
        out = scale(X, np.float32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(out, expected)
    assert peak < out.nbytes + X.nbytes / 2  # a float64 copy alone is 2x X


@pytest.mark.parametrize(
    "saved, loaded",
    [(np.float32, np.float32), (np.float64, np.float64), (np.uint8, np.float64)],
)
def test_npz_files_keep_float32_and_turn_other_numbers_into_float64(
    tmp_path, saved, loaded
):
    X = (np.arange(12).reshape(4, 3) % 7).astype(saved)
    np.savez(tmp_path / "d.npz", X=X, y=np.arange(4) % 2)
    got, _ = datasets.load_npz(tmp_path / "d.npz")
    assert got.dtype == loaded
    np.testing.assert_array_equal(got, X.astype(loaded))
