"""keras_lrn/ops.py: the functional API, its public names only, each the
one object of the module that defines it; the op computes the float64
formula (tests/reference.py) in every mode and layout, inside
`native_for_export()` too."""

import keras
import pytest

import keras_lrn
from keras_lrn import _dispatch
from keras_lrn import _operation
from keras_lrn import conventions
from tests import reference


def test_ops_exposes_only_its_public_names():
    names = {name for name in dir(keras_lrn.ops) if not name.startswith("__")}
    assert {"local_response_normalization", "native_for_export"} <= names
    assert sorted(keras_lrn.ops.__all__) == sorted(names)


def test_each_name_is_its_home_modules_object():
    assert (keras_lrn.ops.local_response_normalization
            is _operation.local_response_normalization)
    assert keras_lrn.ops.convention_arguments is (
        conventions.convention_arguments)
    assert keras_lrn.ops.native_for_export is _dispatch.native_for_export
    assert keras_lrn.native_for_export is keras_lrn.ops.native_for_export


CASES = [
    dict(size=5, alpha=1e-2, beta=0.75, bias=2.0),
    dict(size=4, alpha=3e-2, beta=0.5, bias=1.0, even_window_side="before",
         data_format="channels_first"),
    dict(size=3, alpha=1e-2, beta=1.0, bias=1.0, mode="within_channel"),
    dict(size=2, alpha=2e-2, beta=0.6, bias=0.5, mode="within_channel",
         data_format="channels_first"),
]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("switch", [False, True], ids=["plain",
                                                       "native_for_export"])
def test_the_op_computes_the_formula(rng, case, switch):
    x = rng.uniform(-4, 4, (2, 5, 6, 7)).astype("float32")
    if switch:
        with keras_lrn.ops.native_for_export():
            y = keras_lrn.ops.local_response_normalization(x, **case)
    else:
        y = keras_lrn.ops.local_response_normalization(x, **case)
    reference.assert_matches_in_dtype(keras.ops.convert_to_numpy(y),
                                      reference.lrn(x, **case), "float32")

