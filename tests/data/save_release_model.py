"""Writes lrn_v0_1_0.keras, the model file of keras-lrn's first release.

Kept so that every later release is tested to load what 0.1.0 saved
(tests/test_saving.py). Run once, by that release, under the lowest Keras it
supports (3.10.0: newer Keras loads older files, not the reverse); never
rewritten.
"""

import pathlib

import keras

import keras_lrn

keras.utils.set_random_seed(7)
inputs = keras.Input((6, 6, 4))
hidden = keras.layers.Conv2D(8, 1, name="pointwise")(inputs)
hidden = keras_lrn.LRN(size=5, alpha=1e-2, beta=0.75, bias=2.0,
                       name="across")(hidden)
hidden = keras_lrn.LRN(size=3, alpha=2e-2, beta=0.5, bias=1.0,
                       mode="within_channel", name="within")(hidden)
outputs = keras_lrn.LRN.from_torch(4, alpha=4e-2, beta=1.0, k=1.0,
                                   name="torch_even")(hidden)
model = keras.Model(inputs, outputs)
model.save(pathlib.Path(__file__).with_name("lrn_v0_1_0.keras"))
