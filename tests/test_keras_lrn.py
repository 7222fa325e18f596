"""keras_lrn/__init__.py: the package's public names, each the object of
the module that defines it (what each does is tested in that module's test
module)."""

import keras_lrn
from keras_lrn import applications
from keras_lrn import layer
from keras_lrn import legacy
from keras_lrn import ops


def test_public_names_are_their_home_modules_objects():
    assert sorted(keras_lrn.__all__) == sorted(
        ["LRN", "LocalResponseNormalization", "applications",
         "legacy_objects", "native_for_export", "ops", "__version__"])
    assert keras_lrn.LocalResponseNormalization is (
        layer.LocalResponseNormalization)
    assert keras_lrn.LRN is layer.LocalResponseNormalization
    assert keras_lrn.applications is applications
    assert keras_lrn.ops is ops
    assert keras_lrn.legacy_objects is legacy.legacy_objects
    assert keras_lrn.native_for_export is ops.native_for_export
    for name in keras_lrn.__all__:
        assert hasattr(keras_lrn, name), name
