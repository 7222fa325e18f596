"""Names the docstring examples use, for ``pytest --doctest-modules keras_lrn``.

The examples in the package's docstrings are run as tests; like a user's
session, they start with ``keras``, ``np`` (NumPy) and ``keras_lrn`` imported.
"""

import keras
import numpy as np
import pytest

import keras_lrn


@pytest.fixture(autouse=True)
def _docstring_example_names(doctest_namespace):
    doctest_namespace.update(keras=keras, np=np, keras_lrn=keras_lrn)
