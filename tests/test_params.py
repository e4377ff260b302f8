"""Params: an immutable mapping of read-only arrays."""

import pickle

import numpy as np
import pytest
import toolz
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from funnet.params import Params, as_dtype, assoc, tree_map, tree_map2

arrays = hnp.arrays(
    dtype=st.sampled_from([np.float32, np.float64]),
    shape=hnp.array_shapes(min_dims=1, max_dims=2, max_side=4),
    elements=st.floats(-10, 10, width=32),
)
param_dicts = st.dictionaries(
    st.sampled_from(["W1", "b1", "W2", "b2", "gamma"]), arrays, min_size=1
)


def test_setting_a_key_raises_type_error():
    p = Params(W1=np.ones(2))
    with pytest.raises(TypeError, match="immutable: cannot set 'W1'"):
        p["W1"] = np.zeros(2)
    with pytest.raises(TypeError, match="immutable: cannot set 'new'"):
        p["new"] = np.zeros(2)


def test_deleting_a_key_raises_type_error():
    p = Params(W1=np.ones(2))
    with pytest.raises(TypeError, match="cannot delete 'W1'"):
        del p["W1"]


def test_setting_an_attribute_raises_type_error():
    p = Params(W1=np.ones(2))
    with pytest.raises(TypeError, match="immutable"):
        p._data = {}


def test_writing_into_an_array_raises():
    p = Params(W1=np.ones((2, 2)))
    with pytest.raises(ValueError, match="read-only"):
        p["W1"][0, 0] = 5.0
    with pytest.raises(ValueError, match="read-only"):
        p["W1"] += 1


def test_arrays_cannot_be_made_writeable_again():
    p = Params(W1=np.ones((2, 2)))
    fresh = Params._own({"W1": np.ones(2) * 3})
    for params in (p, fresh):
        with pytest.raises(ValueError, match="cannot set WRITEABLE flag"):
            params["W1"].setflags(write=True)


def test_the_callers_array_stays_writeable_and_changes_do_not_leak_in():
    W = np.ones(3)
    p = Params(W=W)
    assert W.flags.writeable
    W[0] = 7.0
    assert p["W"][0] == 1.0


@given(param_dicts)
def test_params_round_trip_through_dict_losslessly(d):
    p = Params(d)
    back = dict(p)
    assert back.keys() == d.keys()
    for key in d:
        assert back[key].dtype == d[key].dtype
        np.testing.assert_array_equal(back[key], d[key])
    assert Params(back) == p
    assert Params(p.to_dict()) == p
    assert all(v.flags.writeable for v in p.to_dict().values())


@given(param_dicts)
def test_params_pickle_to_an_equal_immutable_copy(d):
    p = Params(d)
    q = pickle.loads(pickle.dumps(p))
    assert isinstance(q, Params)
    assert q == p
    assert not any(v.flags.writeable for v in q.values())


def test_repr_shows_names_dtypes_and_shapes():
    p = Params(W1=np.zeros((3, 2), np.float32), b1=np.zeros(2, np.float32))
    assert repr(p) == "Params(W1=float32(3, 2), b1=float32(2,))"


def test_equality_compares_values_shapes_and_dtypes():
    p = Params(W=np.ones(2))
    assert p == Params(W=np.ones(2))
    assert p != Params(W=np.ones(2, np.float32))
    assert p != Params(W=np.ones(3))
    assert p != Params(W=np.array([1.0, 2.0]))
    assert p != Params(V=np.ones(2))


def test_non_string_keys_and_object_arrays_are_rejected():
    with pytest.raises(TypeError, match="keys must be strings"):
        Params({1: np.ones(2)})
    with pytest.raises(TypeError, match="dtype object"):
        Params(W=np.array([None, 1], dtype=object))


@given(param_dicts)
def test_assoc_returns_new_params_and_leaves_the_input_alone(d):
    p = Params(d)
    key = next(iter(d))
    q = assoc(p, key, np.asarray(d[key]) + 1)
    assert isinstance(q, Params)
    assert p == Params(d)
    np.testing.assert_array_equal(q[key], np.asarray(d[key]) + 1)


@given(param_dicts)
def test_tree_maps_return_read_only_params_and_keep_inputs(d):
    p = Params(d)
    doubled = tree_map(lambda a: a * 2, p)
    summed = tree_map2(np.add, p, doubled)
    for result in (doubled, summed):
        assert isinstance(result, Params)
        assert not any(v.flags.writeable for v in result.values())
    for key in d:
        np.testing.assert_array_equal(summed[key], np.asarray(d[key]) * 3)
        assert summed[key].dtype == d[key].dtype
    assert p == Params(d)


def test_tree_map2_names_keys_that_differ():
    with pytest.raises(KeyError, match="only one of them: \\['V', 'W'\\]"):
        tree_map2(np.add, Params(W=np.ones(1)), Params(V=np.ones(1)))


def test_toolz_dict_tools_work_on_params():
    p = Params(W1=np.ones(2), b1=np.zeros(2))
    weights = Params(toolz.keyfilter(lambda k: k.startswith("W"), p))
    assert list(weights) == ["W1"]
    merged = Params(toolz.merge_with(sum, [p, p]))
    np.testing.assert_array_equal(merged["W1"], np.full(2, 2.0))


def test_as_dtype_casts_every_array_and_keeps_the_input():
    p = Params(W=np.ones(2))
    q = as_dtype(p, np.float32)
    assert q.dtype == np.float32
    assert p.dtype == np.float64


def test_tree_maps_never_freeze_or_alias_the_callers_arrays():
    d = {"w": np.ones(3)}
    e = {"w": np.zeros(3)}
    mapped = tree_map(np.asarray, d)
    picked = tree_map2(lambda x, y: x, d, e)
    assert d["w"].flags.writeable and e["w"].flags.writeable
    d["w"][0] = 5.0
    assert mapped["w"][0] == 1.0 and picked["w"][0] == 1.0
