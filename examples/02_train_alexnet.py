# %% [markdown]
# # 2. Train AlexNet with the paper's recipe
#
# `keras_lrn.applications.AlexNet` is the 2012 network (Krizhevsky,
# Sutskever & Hinton, *ImageNet Classification with Deep Convolutional
# Neural Networks*, NIPS 2012) with its LRN layers (n=5, k=2, alpha=1e-4,
# beta=0.75). This notebook trains it with the paper's recipe; its helpers
# live in `examples/train_alexnet.py`, the script twin (`python
# examples/train_alexnet.py` runs the same job).
#
# | | paper (Sec. 4-5) | here, `offline` default | `full` |
# |---|---|---|---|
# | data | ImageNet 2012, 256x256 | scikit-learn digits (bundled), resized to 76x76 | `imagenet2012` (manual download) or `imagenette` |
# | crops | random 224 (227) crops + flips | random 67x67 crops (AlexNet's smallest valid input), no flips (mirrored digits change meaning) | random 227 crops + flips |
# | colour | PCA colour augmentation, sd 0.1 | same | same |
# | optimiser | SGD, momentum 0.9, weight decay 5e-4 | same | same |
# | batch / lr | 128 / 0.01, divided by 10 on plateau | 32 / 0.01, divided by 10 after 2 flat epochs | 128 / 0.01, patience 3 |
# | init | N(0, 0.01); bias 1 in conv2,4,5, fc6, fc7 | same, except fc6/fc7 bias 0 (see below) | paper (imagenette: fc6/fc7 bias 0) |
# | evaluation | 10 crops (corners + centre, mirrored) | 5 crops (mirrors only when trained with flips) | 10 crops |
# | epochs | ~90 | 15 | 90 |
#
# On a GPU the helpers turn on mixed precision (`mixed_float16`) and XLA
# (`jit_compile=True`), and with several GPUs train under
# `tf.distribute.MirroredStrategy`.
#
# **Settings (first code cell):** `KERAS_LRN_SCALE` = `ci` (seconds, used by
# the tests) | `offline` (default) | `full`; `KERAS_LRN_DATASET` = `digits`
# (default) | `imagenette` | `imagenet2012`. Full scale is one parameter
# away: `KERAS_LRN_SCALE=full KERAS_LRN_DATASET=imagenet2012`. For
# `imagenet2012`, tfds needs `ILSVRC2012_img_train.tar` and
# `ILSVRC2012_img_val.tar` in `~/tensorflow_datasets/downloads/manual/`;
# `imagenette` is downloaded by tfds on first use. The committed outputs come
# from the run labelled in the first cell.

# %%
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SCALE = os.environ.get("KERAS_LRN_SCALE", "offline")        # "ci" | "offline" | "full"
DATASET = os.environ.get("KERAS_LRN_DATASET", "digits")     # "digits" | "imagenette" | "imagenet2012"
OUT_DIR = os.environ.get("KERAS_LRN_OUT_DIR", "alexnet_run")

import numpy as np
import matplotlib.pyplot as plt
import tensorflow as tf
import keras

import train_alexnet as T  # the script twin, in this folder

cfg = T.make_config(dataset=DATASET, scale=SCALE, out_dir=OUT_DIR)
print(f"settings: KERAS_LRN_SCALE={SCALE!r}, KERAS_LRN_DATASET={DATASET!r}")
print(cfg)
print(f"machine: {platform.platform()}, {os.cpu_count()} CPU cores, "
      f"GPUs: {len(tf.config.list_physical_devices('GPU'))}")
print(f"keras {keras.__version__} (backend {keras.backend.backend()}), tensorflow {tf.__version__}")

# %% [markdown]
# ## Input pipeline
#
# Images are resized so the shorter side is `resize_size` and centre-cropped
# to a square (the paper's 256x256), then random crops, optional flips and
# PCA colour augmentation: add $\sum_i \alpha_i \lambda_i p_i$ with
# $\alpha_i \sim N(0, 0.1)$, where $(\lambda_i, p_i)$ are the eigenpairs of
# the RGB covariance of the training pixels (Sec. 4.1). The per-channel mean
# is subtracted; pixels stay in the 0..255 range, as in the paper (LRN's
# effect depends on that scale).

# %%
train_raw, val_raw, num_classes = T.load_raw(cfg)
stats = T.colour_statistics(train_raw, cfg.resize_size)
train_ds, val_ds = T.make_pipelines(cfg, train_raw, val_raw, stats)
print(f"{num_classes} classes; RGB mean {stats[0].round(1)}, eigenvalues {stats[1].round(4)}")

images, labels = next(iter(train_ds))
fig, axes = plt.subplots(1, 8, figsize=(16, 2.3))
for ax, im, lab in zip(axes, images.numpy(), labels.numpy()):
    ax.imshow(np.clip((im + stats[0]) / 255.0, 0, 1))
    ax.set_title(f"label {lab}")
    ax.axis("off")
fig.suptitle("augmented training crops")
plt.show()

# %% [markdown]
# ### The tfds pipelines for `imagenet2012` and `imagenette`
#
# The same helpers build the ImageNet/Imagenette pipelines from
# `tfds.load(...)`. Unless `KERAS_LRN_DATASET` selects them, this cell runs
# them on `tensorflow_datasets.testing.mock_data` (random images with the
# real datasets' features and splits, no download), so the code path is
# exercised offline.

# %%
for name in ["imagenette", "imagenet2012"]:
    mock = DATASET != name
    c = T.make_config(dataset=name, scale="ci", mock=mock, out_dir=OUT_DIR)
    tr, va, n = T.load_raw(c)
    st = T.colour_statistics(tr, c.resize_size, max_images=8)
    tr_ds, va_ds = T.make_pipelines(c, tr, va, st)
    xb, yb = next(iter(tr_ds))
    crops = T.ten_crops(T.resize_square(next(iter(va))[0], c.resize_size), c.image_size)
    print(f"{name:13} ({'mock data' if mock else 'real data'}): {n} classes, "
          f"train batch {tuple(xb.shape)}, 10-crop stack {tuple(crops.shape)}")

# %% [markdown]
# ## The model
#
# `AlexNet(variant="original")` at this input size. (At 227x227 and 1000
# classes it has 60,965,224 parameters; at 67x67, pool5 is 1x1x256 so fc6
# is smaller.) **Why fc6/fc7 biases are 0 in the small presets:**

# %%
print(T.FC_BIAS_NOTE)
strategy, on_gpu = T.device_setup()
with strategy.scope():
    model = T.build_model(cfg, num_classes, jit_compile=on_gpu)
print(f"strategy: {type(strategy).__name__}, mixed precision: {on_gpu}, jit_compile: {on_gpu}")
print(f"parameters: {model.count_params():,}")
model.summary(line_length=100)

# %% [markdown]
# ## Training
#
# `ReduceLROnPlateau` divides the learning rate by 10 when the validation
# loss stops improving (`T.LR_SCHEDULE_NOTE` says why not the accuracy); `BackupAndRestore` keeps the last finished epoch
# in `OUT_DIR/resume/` until training ends (run again after an interruption
# to resume); `CSVLogger` writes `history.csv`.

# %%
t0 = time.time()
history = model.fit(train_ds, validation_data=val_ds, epochs=cfg.epochs,
                    callbacks=T.callbacks(cfg), verbose=1)
fit_seconds = time.time() - t0
steps = len(history.history["loss"]) * int(train_ds.cardinality())
print(f"training: {fit_seconds:.0f} s, {1000 * fit_seconds / max(steps, 1):.0f} ms/step "
      f"(includes validation) on {'GPU' if on_gpu else f'{os.cpu_count()} CPU cores'}")

# %%
T.plot_history(history)
plt.show()

# %% [markdown]
# ## Evaluation: centre crop and the paper's 10-crop average

# %%
centre = model.evaluate(val_ds, verbose=0, return_dict=True)
top1_10, top5_10 = T.evaluate_ten_crop(model, cfg, val_raw, stats[0])
print(f"centre crop: top-1 {centre['accuracy']:.4f}, top-5 {centre['top5']:.4f}")
label = "10 crops" if cfg.flip else "5 crops (no mirrored crops: trained without flips)"
print(f"{label}: top-1 {top1_10:.4f}, top-5 {top5_10:.4f}")
print(f"chance     : top-1 {1 / num_classes:.4f}")

# %% [markdown]
# ## Save and reload (`.keras`)
#
# The LRN layer is registered as serializable, so the whole model round-trips
# through `model.save` / `keras.models.load_model` without `custom_objects`;
# `AlexNet(weights=path)` also accepts the file.

# %%
from keras_lrn.applications import AlexNet

path = os.path.join(cfg.out_dir, "alexnet_final.keras")
model.save(path)
reloaded = keras.models.load_model(path)
batch = next(iter(val_ds))[0][:8]
diff = np.abs(np.asarray(model.predict_on_batch(batch)) - np.asarray(reloaded.predict_on_batch(batch))).max()
rebuilt = AlexNet(weights=path, input_shape=(cfg.image_size, cfg.image_size, 3), classes=num_classes)
diff2 = np.abs(np.asarray(model.predict_on_batch(batch)) - np.asarray(rebuilt.predict_on_batch(batch))).max()
assert diff < 1e-5 and diff2 < 1e-5, (diff, diff2)
print(f"saved {path} ({os.path.getsize(path) / 1e6:.0f} MB); reloaded max |diff| {diff:.1e}, "
      f"AlexNet(weights=path) max |diff| {diff2:.1e}")
print("checkpoint:", os.path.exists(os.path.join(cfg.out_dir, "checkpoint.keras")))

# %% [markdown]
# ## The trained AlexNet: Caffe's bvlc_alexnet from the ONNX model zoo
#
# The ONNX model zoo (https://github.com/onnx/models,
# `validated/vision/classification/alexnet/model/bvlcalexnet-12.onnx`) publishes
# Caffe's trained bvlc_alexnet; its table reports 54.80% top-1 and 78.23% top-5
# on ILSVRC-2012 validation for that file (and the model card 57.1% / 80.2% for
# Caffe's centre-crop evaluation). Download it next to this notebook and
# `pip install onnx`: the cell below converts it (LRN through
# `LocalResponseNormalization.from_onnx`, grouped convolutions, 224x224 BGR
# mean-subtracted input). It runs only when the file is present, so CI stays
# offline.

# %%
from keras_lrn.applications import decode_predictions, preprocess_input

ZOO_FILE = "bvlcalexnet-12.onnx"
if os.path.exists(ZOO_FILE):
    bvlc = AlexNet(weights=ZOO_FILE, variant="bvlc")
    print([(layer.name, layer.to_onnx()) for layer in bvlc.layers
           if layer.name.startswith("norm")])
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3))  # put a photo here
    print(decode_predictions(bvlc.predict(preprocess_input(image), verbose=0), top=3))
else:
    print(f"{ZOO_FILE} not found: skipped (see above for where to get it)")

# %% [markdown]
# ## Reading the result
#
# The offline run is a smoke-scale reproduction: 1,437 tiny grey images
# instead of 1.2 million photographs, 15 epochs instead of 90, a 67x67 input
# instead of 227x227. It shows the recipe and pipeline working end to end
# (and how slowly AlexNet's N(0, 0.01) initialisation gets going), not
# AlexNet's accuracy. To reproduce the paper's setting, run
# `KERAS_LRN_SCALE=full KERAS_LRN_DATASET=imagenet2012` on GPUs; for the
# LRN ablation at scale, repeat with `--normalization none` and
# `--normalization batchnorm` (see notebook 3).
