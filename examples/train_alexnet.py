#!/usr/bin/env python
"""Train AlexNet (keras_lrn.applications.AlexNet) with the 2012 paper's recipe.

Script twin of ``02_train_alexnet.ipynb``; the notebook imports its helpers
from here, so both run the same code.

Recipe (Krizhevsky et al., 2012, Sec. 4-5): SGD with momentum 0.9, weight
decay 5e-4, batch 128, learning rate 0.01 divided by 10 when the validation
loss stops improving (the paper watched the validation error, see
``LR_SCHEDULE_NOTE``), random crops + horizontal flips, PCA colour
augmentation (std 0.1), dropout 0.5, 10-crop evaluation (4 corners + centre,
and their mirrors). Models compile with Keras's default ``jit_compile="auto"``
(XLA on a GPU; off on CPU-only TensorFlow); on a GPU it turns on mixed
precision, and with several GPUs it uses ``MirroredStrategy``.

Datasets (``--dataset`` or ``KERAS_LRN_DATASET``):

* ``digits`` (default, offline): scikit-learn's bundled 8x8 handwritten
  digits (1,797 real images shipped inside the scikit-learn wheel), upsampled
  to the network's input. Nothing is downloaded.
* ``imagenette``: ``tfds.load("imagenette/320px")`` (downloaded by tfds on
  first use; about 330 MB).
* ``imagenet2012``: ``tfds.load("imagenet2012")`` -- manual download: put
  ``ILSVRC2012_img_train.tar`` and ``ILSVRC2012_img_val.tar`` in
  ``~/tensorflow_datasets/downloads/manual/`` first.

Three splits (``SPLITS_NOTE``): *training*; *validation*, which drives the
learning-rate schedule and nothing else; *test*, which selects nothing and
gives the accuracies reported. Digits are split 60/20/20, stratified, by
``--split-seed``; for the tfds datasets, validation is the last
``HELD_OUT_PERCENT`` of tfds's train split and test is tfds's validation
split (the images the paper's numbers are reported on).

``--mock`` runs the tfds paths on ``tensorflow_datasets.testing.mock_data``
(random images, no download) to check the pipeline offline.

Scales (``--scale`` or ``KERAS_LRN_SCALE``):

* ``ci``: seconds; tiny subset, 67x67 input, 1 epoch (used by the tests).
* ``offline`` (default; what it costs: the README's set-up section): digits at 67x67
  (AlexNet's smallest valid input), 15 epochs, batch 32.
* ``full``: the paper's settings: 227x227 crops from 256x256 images,
  batch 128, 90 epochs.

``--normalization`` replaces the two LRN layers (after conv1 and conv2) by
nothing, BatchNorm (momentum 0.9, see ``batchnorm_note``) or a learned LRN, for ablations.

The fc6/fc7 biases start at the paper's 1 for ``imagenet2012`` and at 0 for
the 10-class datasets at every scale (see ``FC_BIAS_NOTE``).

Output (``--out-dir``, default ``alexnet_run/<scale>/``, e.g.
``alexnet_run/offline/``; ``alexnet_run/<dataset>_<scale>/`` for the tfds
datasets): the final model
``alexnet_final.keras`` (weights and optimizer state; ``import keras_lrn``
before ``keras.models.load_model``), ``history.csv``,
``learning_curves.png`` and ``results.json``. No best-epoch checkpoint is
kept: the accuracies reported are the final model's on the test split, and
the final model is the file. While training, ``<out-dir>/resume/`` holds the last finished
epoch's state (``keras.callbacks.BackupAndRestore``, about the size of the
final model); run the same command again after an interruption and training
continues from there. It is removed when training finishes.

Output on the console: a banner (configuration, backend, device, versions,
output folder), then Keras's live progress bar on a terminal or one plain
line per epoch otherwise (a log file gets no carriage returns or colour
codes), then a summary naming the output folder and each file with its size.

A run never replaces another run's results: where the output folder holds
a finished run's files, the script stops and says so before it imports
TensorFlow (``--overwrite`` replaces them). The command line is parsed
before TensorFlow is imported, so ``--help`` and a mistyped option answer
at once.

Run the main job (offline, the digits at the offline scale):

    python examples/train_alexnet.py
"""

import argparse
import dataclasses
import json
import logging
import os
import platform
import re
import sys
import tempfile
import time
import warnings

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from quiet_tensorflow import import_tensorflow  # noqa: E402

# TensorFlow, Keras and keras-lrn (seconds to import) are imported at the
# end of this file, after the command line is parsed: see the bottom.

# Third-party noise this job triggers, each filtered by its exact message so
# that anything else still shows:
# - Keras's TensorFlow backend turns tensors into NumPy arrays with np.array()
#   (keras.ops.convert_to_numpy, which ReduceLROnPlateau calls every epoch),
#   and TensorFlow's __array__ lacks NumPy 2's `copy` argument: NumPy warns on
#   every call, about code neither this script nor its user wrote.
warnings.filterwarnings(
    "ignore", message=r"__array__ implementation doesn't accept a copy keyword",
    category=DeprecationWarning)


class _DropTfdsNoise(logging.Filter):
    """tensorflow_datasets logs, through absl, that its own code reads its
    deprecated `TensorInfo.dtype`, and that `testing.mock_data`'s metadata
    for imagenette has no dataset_info.json (only with --mock): nothing a
    user of this script can act on."""

    NOISE = re.compile(r"`TensorInfo\.dtype` is deprecated|^Variant folder .* has no dataset_info\.json")

    def filter(self, record):
        return not self.NOISE.search(record.getMessage())


logging.getLogger("absl").addFilter(_DropTfdsNoise())


class _DropPredictRetracingNoise(logging.Filter):
    """Each model traces its own predict function once per input shape
    (evaluate_ten_crop's last batch is smaller). TensorFlow's retracing
    detector counts those traces across models, so a process that trains
    several models in turn (an ablation) is told about "excessive"
    retracing that is one trace per model and shape. Likewise, Keras's
    TensorFlow backend runs a grouped convolution called eagerly on a CPU
    (conv2, conv4, conv5) through a new XLA-compiled function each call
    (keras/src/backend/tensorflow/nn.py, `_conv_xla`), which the detector
    reports the same way."""

    NOISE = re.compile(r"(one_step_on_data_distributed|conv\.<locals>\._conv_xla) at .* "
                       r"triggered tf\.function retracing")

    def filter(self, record):
        return not self.NOISE.search(record.getMessage())


logging.getLogger("tensorflow").addFilter(_DropPredictRetracingNoise())

DATASETS = ("digits", "imagenette", "imagenet2012")
SCALES = ("ci", "offline", "full")
PROGRESS = ("auto", "bar", "epochs", "none")
NORMALIZATIONS = ("lrn", "none", "batchnorm", "learned")
BATCHNORM_MOMENTUM = 0.9
KERAS_BATCHNORM_MOMENTUM = 0.99  # keras.layers.BatchNormalization's default


def batchnorm_note(steps):
    """Why BatchNorm (``--normalization batchnorm``) keeps its moving
    statistics with ``BATCHNORM_MOMENTUM``, with the numbers of a run of
    `steps` training steps (epochs x batches per epoch)."""
    if not isinstance(steps, (int, np.integer)) or isinstance(steps, bool) or steps < 1:
        raise ValueError(f"`steps` must be a positive integer (the run's training steps). "
                         f"Received: steps={steps!r}")
    default = KERAS_BATCHNORM_MOMENTUM
    steps = int(steps)
    left = 100 * default ** steps
    left = f"{left:.1f}%" if left >= 0.05 else "less than 0.1%"
    return (
        f"BatchNorm (--normalization batchnorm) keeps its moving statistics with momentum "
        f"{BATCHNORM_MOMENTUM}, not Keras's default {default}, for short runs (this run: "
        f"{steps:,} steps): momentum m averages the statistics over about 1/(1-m) steps and "
        f"keeps m^S of their initial values (mean 0, variance 1) after S steps. With {default} "
        f"the average would span the last ~{1 / (1 - default):.0f} steps of weights that kept "
        f"changing and, after {steps:,} steps, still hold {default}^{steps} = {left} of the "
        f"initial values, so a network that trained well can score badly in inference mode; "
        f"with {BATCHNORM_MOMENTUM} it spans the last ~{1 / (1 - BATCHNORM_MOMENTUM):.0f} steps.")


TFDS_NAMES = {"imagenette": "imagenette/320px", "imagenet2012": "imagenet2012"}


@dataclasses.dataclass
class Config:
    dataset: str = "digits"
    scale: str = "offline"
    image_size: int = 67          # crop fed to the network (paper: 227)
    resize_size: int = 76         # images are first resized to this square (paper: 256)
    batch_size: int = 32          # paper: 128
    epochs: int = 15              # paper: ~90
    learning_rate: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    lr_patience: int = 2
    pca_std: float = 0.1
    flip: bool = False            # off for digits (mirrored digits change meaning)
    train_limit: int = 0          # 0 = whole split
    val_limit: int = 0
    test_limit: int = 0
    fc_bias: float = None         # None: the paper's bias 1 in fc6/fc7 (see FC_BIAS_NOTE)
    variant: str = "original"
    normalization: str = "lrn"
    seed: int = 0                 # weights' initialization, shuffling, augmentation
    split_seed: int = 0           # digits' train/validation/test split (tfds splits are fixed)
    mock: bool = False
    data_dir: str = ""
    out_dir: str = "alexnet_run"
    progress: str = "auto"        # "auto": a live bar on a terminal, else one line per epoch
    save_model: bool = True       # write alexnet_final.keras (off for the ci smoke run)
    distribute: bool = False      # data parallel over every device (and process)


FC_BIAS_NOTE = """\
The paper initialises the fc6/fc7 biases to 1. With only 10 classes this
makes the first SGD steps unstable: fc7's 4096 activations are all about 1,
so one step moves every logit by about lr * ||fc7||^2 = 0.01 * 4096 = 41
times the batch's mean (p - y), and momentum adds up a few such steps, which
can push the fc ReLUs into their dead range, after which the loss
stays at chance (`--fc-bias 1` runs the paper's value, to see it). With 1000
ImageNet classes, mean(p - y) per class is ~30x smaller. The 10-class datasets (digits, imagenette) therefore start
the fc6/fc7 biases at 0 (`fc_bias=0.0`) at every scale; everything else
follows the paper, and imagenet2012 keeps the paper's 1."""

LR_SCHEDULE_NOTE = """\
The paper divided the learning rate by 10 when the validation error stopped
improving. A small run from the paper's N(0, 0.01) initialization can sit at
chance for its first epochs, where the validation error only jitters near
1 - 1/classes, so a schedule watching it can cut the rate before training has
started. The validation loss includes the weight-decay term, which shrinks
through those epochs, so the schedule watches the validation loss instead
(ReduceLROnPlateau: divided by 10 after lr_patience epochs without a new low)."""

SPLITS_NOTE = """\
Validation and test are separate. The validation split drives the learning-
rate schedule (ReduceLROnPlateau on its loss); no best-epoch checkpoint is
selected, so the final model is the one reported. The test split selects
nothing: it is evaluated once, after training, and gives the reported
accuracies. Digits: 60% training, 20% validation, 20% test, stratified by
class, drawn by --split-seed (--seed does not move it)."""

LOSS_NOTE = """\
Keras's `loss` and `val_loss` are the cross-entropy plus the weight-decay
term, (5e-4 / 2) * ||w||^2 over the conv and fc kernels (the L2 regularizer
that makes SGD's update decay each weight by 5e-4 * w). `crossentropy` is
the cross-entropy alone; val_loss - val_crossentropy is the decay term of
the weights at the end of the epoch. The schedule watches val_loss, the sum."""

# Percent of tfds's train split held out as the validation split; tfds's
# validation split is the test split.
HELD_OUT_PERCENT = {"imagenette": 5, "imagenet2012": 1}

# fc6/fc7 bias init per dataset (FC_BIAS_NOTE): None is the paper's 1.
FC_BIAS = {"digits": 0.0, "imagenette": 0.0, "imagenet2012": None}

PRESETS = {
    "ci": dict(image_size=67, resize_size=76, batch_size=32, epochs=1,
               train_limit=128, val_limit=64, test_limit=64, lr_patience=1,
               save_model=False),
    "offline": dict(image_size=67, resize_size=76, batch_size=32, epochs=15,
                    lr_patience=2),
    "full": dict(image_size=227, resize_size=256, batch_size=128, epochs=90,
                 lr_patience=3),
}


def make_config(dataset=None, scale=None, **overrides):
    """Builds a Config from a preset, environment variables and overrides."""
    dataset = dataset or os.environ.get("KERAS_LRN_DATASET", "digits")
    scale = scale or os.environ.get("KERAS_LRN_SCALE", "offline")
    if dataset not in DATASETS:
        raise ValueError(f"Unknown dataset={dataset!r}; expected one of {DATASETS}.")
    if scale not in SCALES:
        raise ValueError(f"Unknown scale={scale!r}; expected one of {SCALES}.")
    values = dict(PRESETS[scale])
    values["fc_bias"] = FC_BIAS[dataset]
    values["flip"] = dataset != "digits"
    values.update({k: v for k, v in overrides.items() if v is not None})
    return Config(dataset=dataset, scale=scale, **values)


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def load_raw(cfg):
    """Returns (train_ds, val_ds, test_ds, num_classes); datasets of
    (uint8 image, label). Validation drives the learning-rate schedule, test
    selects nothing (SPLITS_NOTE)."""
    if cfg.dataset == "digits":
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        d = load_digits()
        # 0..16 grey levels -> 0..255, replicated to 3 channels.
        images = np.repeat((d.images * (255.0 / 16.0)).round().astype("uint8")[..., None], 3, -1)
        # 20% test, then 20% of the whole (a quarter of the rest) validation
        xrest, xte, yrest, yte = train_test_split(
            images, d.target, test_size=0.2, stratify=d.target,
            random_state=cfg.split_seed,
        )
        xtr, xva, ytr, yva = train_test_split(
            xrest, yrest, test_size=0.25, stratify=yrest, random_state=cfg.split_seed,
        )
        train, val, test = (tf.data.Dataset.from_tensor_slices((x, y.astype("int64")))
                            for x, y in ((xtr, ytr), (xva, yva), (xte, yte)))
        num_classes = 10
    else:
        import tensorflow_datasets as tfds

        kwargs = dict(as_supervised=True, with_info=True)
        if cfg.data_dir:
            kwargs["data_dir"] = cfg.data_dir
        name = TFDS_NAMES[cfg.dataset]
        keep = 100 - HELD_OUT_PERCENT[cfg.dataset]
        splits = [f"train[:{keep}%]", f"train[{keep}%:]", "validation"]

        def load():
            (train, info), (val, _), (test, _) = (tfds.load(name, split=s, **kwargs)
                                                  for s in splits)
            return train, val, test, info

        if cfg.mock:
            n = max(cfg.train_limit, cfg.val_limit, cfg.test_limit, 16)
            with tfds.testing.mock_data(num_examples=n):
                train, val, test, info = load()
        else:
            train, val, test, info = load()
        num_classes = info.features["label"].num_classes
    if cfg.train_limit:
        train = train.take(cfg.train_limit)
    if cfg.val_limit:
        val = val.take(cfg.val_limit)
    if cfg.test_limit:
        test = test.take(cfg.test_limit)
    return train, val, test, num_classes


def resize_square(image, size):
    """Paper: rescale the shorter side to `size`, then take the central square."""
    image = tf.cast(image, tf.float32)
    shape = tf.shape(image)
    h, w = tf.cast(shape[0], tf.float32), tf.cast(shape[1], tf.float32)
    scale = tf.cast(size, tf.float32) / tf.minimum(h, w)
    nh = tf.cast(tf.math.ceil(h * scale), tf.int32)
    nw = tf.cast(tf.math.ceil(w * scale), tf.int32)
    image = tf.image.resize(image, (nh, nw), method="bilinear")
    return tf.image.resize_with_crop_or_pad(image, size, size)


def colour_statistics(ds, resize_size, max_images=512):
    """Per-channel mean (0..255 scale) and the eigen-decomposition of the RGB
    covariance of pixels scaled to [0, 1] (for PCA colour augmentation),
    estimated from up to `max_images` training images."""
    pixels = []
    for image, _ in ds.take(max_images):
        img = resize_square(image, resize_size).numpy().reshape(-1, 3)
        pixels.append(img[:: max(1, len(img) // 1024)])
    pixels = np.concatenate(pixels).astype("float64")
    mean = pixels.mean(0)
    cov = np.cov(((pixels - mean) / 255.0).T)
    eigval, eigvec = np.linalg.eigh(cov)
    return mean.astype("float32"), np.maximum(eigval, 0).astype("float32"), eigvec.astype("float32")


def pca_colour(image, eigval, eigvec, std):
    """AlexNet Sec. 4.1: add sum_i alpha_i * lambda_i * p_i, alpha_i ~ N(0, std).

    The eigenpairs are those of the covariance of [0, 1]-scaled RGB values
    (the usual convention, e.g. fb.resnet.torch), so the shift is multiplied
    by 255 for our 0..255 pixels: a few grey levels, not thousands.
    """
    alpha = tf.random.normal((3,), stddev=std)
    delta = tf.linalg.matvec(eigvec, alpha * eigval) * 255.0
    return image + delta


def make_pipelines(cfg, train_raw, val_raw, stats, test_raw=None):
    """The training pipeline (random crops, flips when `cfg.flip`, PCA
    colour) and centre-crop pipelines for validation (and test, when
    `test_raw` is given): (train, val) or (train, val, test)."""
    mean, eigval, eigvec = stats
    s, r = cfg.image_size, cfg.resize_size

    def train_map(image, label):
        image = resize_square(image, r)
        image = tf.image.random_crop(image, (s, s, 3))
        if cfg.flip:
            image = tf.image.random_flip_left_right(image)
        if cfg.pca_std > 0:
            image = pca_colour(image, eigval, eigvec, cfg.pca_std)
        return image - mean, label

    def val_map(image, label):
        image = resize_square(image, r)
        return tf.image.resize_with_crop_or_pad(image, s, s) - mean, label

    auto = tf.data.AUTOTUNE
    train = (train_raw.cache().shuffle(4096, seed=cfg.seed, reshuffle_each_iteration=True)
             .map(train_map, num_parallel_calls=auto).batch(cfg.batch_size).prefetch(auto))
    centre = [raw.cache().map(val_map, num_parallel_calls=auto).batch(cfg.batch_size).prefetch(auto)
              for raw in ((val_raw,) if test_raw is None else (val_raw, test_raw))]
    return (train, *centre)


def ten_crops(image, size, mirror=True):
    """The paper's test-time crops: 4 corners + centre, and their mirrors
    (only the 5 unmirrored crops with `mirror=False`)."""
    h = tf.shape(image)[0]
    w = tf.shape(image)[1]
    offsets = [(0, 0), (0, w - size), (h - size, 0), (h - size, w - size),
               ((h - size) // 2, (w - size) // 2)]
    crops = [tf.image.crop_to_bounding_box(image, oy, ox, size, size) for oy, ox in offsets]
    crops = tf.stack(crops)
    if not mirror:
        return crops
    return tf.concat([crops, tf.image.flip_left_right(crops)], 0)


def evaluate_ten_crop(model, cfg, raw, mean):
    """Top-1 / top-5 accuracy averaging the softmax over the paper's 10 crops.

    Mirrored crops are only used when training used flips (`cfg.flip`):
    for digits, trained without flips, this is a 5-crop average.
    """
    n_crops = 10 if cfg.flip else 5

    def crops_map(image, label):
        crops = ten_crops(resize_square(image, cfg.resize_size), cfg.image_size, mirror=cfg.flip)
        return crops - mean, label

    top1 = top5 = n = 0
    for crops, labels in raw.map(crops_map).batch(max(1, cfg.batch_size // n_crops)):
        b = tf.shape(crops)[0]
        flat = tf.reshape(crops, (-1, cfg.image_size, cfg.image_size, 3))
        probs = model.predict_on_batch(flat.numpy())  # (a NumPy array: JAX's DataParallel)
        probs = np.asarray(probs, dtype="float32").reshape(int(b), n_crops, -1).mean(1)
        order = np.argsort(-probs, axis=1)
        labels = labels.numpy()
        top1 += int((order[:, 0] == labels).sum())
        top5 += int((order[:, :5] == labels[:, None]).any(1).sum())
        n += len(labels)
    return top1 / n, top5 / n


# --------------------------------------------------------------------------
# Model and training
# --------------------------------------------------------------------------

def device_setup(distribute=False):
    """Mixed precision + XLA on GPU; MirroredStrategy with several GPUs.

    With `distribute` (`--distribute`): data parallel over every device, on
    JAX with Keras's `DataParallel` across every process too (started with
    the `KERAS_DISTRIBUTION_JOB_ADDRESSES`, `_NUM_PROCESSES` and
    `_PROCESS_ID` variables: docs/guides/distributed.md), on TensorFlow with
    `MirroredStrategy` over this process's devices."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        keras.mixed_precision.set_global_policy("mixed_float16")
    if distribute and keras.backend.backend() == "jax":
        if int(os.environ.get("KERAS_DISTRIBUTION_NUM_PROCESSES", "1")) > 1:
            keras.distribution.initialize()
        keras.distribution.set_distribution(keras.distribution.DataParallel(
            devices=keras.distribution.list_devices()))
        return tf.distribute.get_strategy(), bool(gpus)
    strategy = (tf.distribute.MirroredStrategy() if len(gpus) > 1 or distribute
                else tf.distribute.get_strategy())
    return strategy, bool(gpus)


def describe_distribution(strategy):
    """How many processes and devices train, for the banner."""
    distribution = keras.distribution.distribution()
    if distribution is not None:
        import jax

        devices = int(np.prod(distribution.device_mesh.shape))
        processes = jax.process_count()
        return (f"{processes} process{'es' if processes > 1 else ''}, "
                f"{_plural(devices, 'device')} (Keras DataParallel)")
    replicas = strategy.num_replicas_in_sync
    how = (f" ({type(strategy).__name__})"
           if strategy is not tf.distribute.get_strategy() or replicas > 1 else "")
    return f"1 process, {_plural(replicas, 'device')}{how}"


def build_model(cfg, num_classes, jit_compile="auto"):
    """AlexNet compiled with the paper's optimizer. `jit_compile` defaults to
    Keras's own "auto" (XLA where Keras turns it on: GPUs, not CPU-only
    TensorFlow)."""
    keras.utils.set_random_seed(cfg.seed)
    model = AlexNet(
        input_shape=(cfg.image_size, cfg.image_size, 3),
        classes=num_classes,
        variant=cfg.variant,
        normalization=cfg.normalization,
        # The paper's decay 5e-4 enters the momentum update as 5e-4 * w,
        # i.e. the gradient of (5e-4 / 2) * ||w||^2.
        kernel_regularizer=keras.regularizers.L2(cfg.weight_decay / 2),
    )
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = BATCHNORM_MOMENTUM  # batchnorm_note
    if cfg.fc_bias is not None:
        for name in ("fc6", "fc7"):
            bias = model.get_layer(name).bias
            bias.assign(keras.ops.full(bias.shape, cfg.fc_bias, dtype=bias.dtype))
    model.compile(
        optimizer=keras.optimizers.SGD(cfg.learning_rate, momentum=cfg.momentum),
        loss="sparse_categorical_crossentropy",
        # `loss` is the cross-entropy plus the weight-decay term (the L2
        # regularizer); `crossentropy` is the first alone (LOSS_NOTE).
        metrics=["accuracy",
                 keras.metrics.SparseTopKCategoricalAccuracy(5, name="top5"),
                 keras.metrics.SparseCategoricalCrossentropy(name="crossentropy")],
        jit_compile=jit_compile,
    )
    return model


def resume_dir(cfg):
    """Where `keras.callbacks.BackupAndRestore` keeps the last finished
    epoch's state while training (removed when training finishes)."""
    return os.path.join(cfg.out_dir, "resume")


def callbacks(cfg, verbose=1):
    """The learning-rate schedule, the resume state and the CSV history.

    No best-epoch checkpoint: the accuracies reported are the final model's,
    and the final model is saved once training ends. `verbose=1` lets
    ReduceLROnPlateau announce its steps (EpochLines does that per line).
    """
    os.makedirs(cfg.out_dir, exist_ok=True)
    # A smoke run without --save-model keeps no resume state either: it
    # writes no copy of the model at all.
    resume = [keras.callbacks.BackupAndRestore(resume_dir(cfg))] if cfg.save_model else []
    return [
        # LR_SCHEDULE_NOTE: the validation loss, not the paper's error rate
        keras.callbacks.ReduceLROnPlateau(monitor="val_loss", mode="min",
                                          factor=0.1, patience=cfg.lr_patience,
                                          verbose=verbose),
        *resume,
        keras.callbacks.CSVLogger(os.path.join(cfg.out_dir, "history.csv"),
                                  append=os.path.isdir(resume_dir(cfg))),
    ]


def _learning_rate(model):
    # float() of the variable: keras.ops.convert_to_numpy calls np.array on
    # a TensorFlow tensor, which NumPy 2 answers with a DeprecationWarning.
    return float(model.optimizer.learning_rate)


def _plural(n, word):
    return f"{n} {word}" + ("" if n == 1 else "s")


def read_history(path):
    """history.csv (CSVLogger) as {column: [float per epoch]}: the whole run,
    also when it was resumed."""
    import csv

    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: [float(r[k]) for r in rows] for k in (rows[0] if rows else {}) if k != "epoch"}


def plot_history(history, path=None, num_classes=None):
    """Learning curves: cross-entropy and the weight-decay term apart
    (LOSS_NOTE), top-1 error, learning rate; every axis labelled. `history`
    is a Keras History or read_history's dict. With `path`, the figure is
    saved there as a PNG, drawn off pyplot (no backend or open figure of the
    caller's is touched); without, it is a pyplot figure to show."""
    import matplotlib.figure
    import matplotlib.ticker

    h = {k: np.asarray(v, dtype="float64")
         for k, v in (history if isinstance(history, dict) else history.history).items()}
    epochs = np.arange(1, len(h["loss"]) + 1)
    if path is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(17, 4.4))
    else:
        fig = matplotlib.figure.Figure(figsize=(17, 4.4))
    axes = fig.subplots(1, 4)
    ax = axes[0]
    ax.plot(epochs, h["crossentropy"], "o-", label="training (running mean over the epoch)")
    ax.plot(epochs, h["val_crossentropy"], "o-", label="validation (end of epoch)")
    if num_classes:
        ax.axhline(np.log(num_classes), color="grey", ls=":",
                   label=f"chance: ln {num_classes} = {np.log(num_classes):.2f}")
    ax.set_title("cross-entropy (loss without weight decay)")
    ax.set_ylabel("cross-entropy (nats)")
    ax = axes[1]
    ax.plot(epochs, h["val_loss"] - h["val_crossentropy"], "o-", color="C2",
            label="val_loss - val_crossentropy")
    ax.set_title("weight-decay term (decay / 2) ||w||²")
    ax.set_ylabel("added to the loss (nats)")
    # from zero: the term's size, not a zoom into its last-digit noise
    decay = h["val_loss"] - h["val_crossentropy"]
    if np.all(np.isfinite(decay)) and decay.size:
        ax.set_ylim(0, 1.15 * max(float(np.max(decay)), 1e-12))
    ax = axes[2]
    ax.plot(epochs, 100 * (1 - h["accuracy"]), "o-", label="training (running mean)")
    ax.plot(epochs, 100 * (1 - h["val_accuracy"]), "o-", label="validation (centre crop)")
    ax.set_title("top-1 error")
    ax.set_ylabel("top-1 error (%)")
    ax = axes[3]
    ax.semilogy(epochs, h["learning_rate"], "o-", color="C3", label="SGD learning rate")
    # a decade of room on each side: a constant rate is a line inside the
    # axes, not on its top edge
    low, high = np.nanmin(h["learning_rate"]), np.nanmax(h["learning_rate"])
    if np.isfinite(low) and low > 0:
        ax.set_ylim(low / 10, high * 10)
    ax.set_title("learning rate (÷10 when val_loss is flat)")
    ax.set_ylabel("learning rate")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        # below the axes, never over the curves
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), frameon=False)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=90)
    return fig


# --------------------------------------------------------------------------
# The command-line job
# --------------------------------------------------------------------------

def say(*parts):
    """Prints a line of the job's console output at once (logs stay in order)."""
    print(*parts, flush=True)


def format_size(num_bytes):
    """1234567 -> '1.2 MB' (powers of 1000)."""
    value = float(num_bytes)
    for unit in ("bytes", "kB", "MB"):
        if value < 1000:
            return f"{value:.0f} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"


def resolve_progress(progress, stream=None):
    """"auto" -> "bar" when `stream` (stdout) is a terminal, else "epochs"."""
    if progress not in PROGRESS:
        raise ValueError(f"Unknown progress={progress!r}; expected one of {PROGRESS}.")
    if progress != "auto":
        return progress
    stream = sys.stdout if stream is None else stream
    return "bar" if getattr(stream, "isatty", lambda: False)() else "epochs"


def describe_device(on_gpu):
    if not on_gpu:
        return f"CPU ({os.cpu_count()} cores), float32"
    names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
             for g in tf.config.list_physical_devices("GPU")]
    return f"{len(names)} GPU(s): {', '.join(names)}; mixed_float16"


def print_banner(cfg, on_gpu, progress, strategy=None):
    out_dir = os.path.abspath(cfg.out_dir)
    fc_bias = "1 (the paper)" if cfg.fc_bias is None else f"{cfg.fc_bias:g}"
    data = {"digits": "scikit-learn's bundled 8x8 digits (offline)",
            "imagenette": "tfds imagenette/320px", "imagenet2012": "tfds imagenet2012"}
    say("keras-lrn main job: train AlexNet with the 2012 paper's recipe")
    say(f"  dataset        {cfg.dataset}: {data[cfg.dataset]}{' on mock data' if cfg.mock else ''}"
        f", scale {cfg.scale}")
    say(f"  configuration  {_plural(cfg.epochs, 'epoch')}, batch {cfg.batch_size}, "
        f"{cfg.image_size}x{cfg.image_size} crops of {cfg.resize_size}x{cfg.resize_size}, "
        f"flips {'on' if cfg.flip else 'off'}, PCA colour sd {cfg.pca_std:g}")
    say(f"                 AlexNet {cfg.variant}, normalization {cfg.normalization}, "
        f"fc6/fc7 bias {fc_bias}; SGD lr {cfg.learning_rate:g} "
        f"(/10 after {_plural(cfg.lr_patience, 'epoch')} without a lower val_loss), "
        f"momentum {cfg.momentum:g}, "
        f"weight decay {cfg.weight_decay:g}")
    say(f"                 seed {cfg.seed} (initialization, shuffling, augmentation), "
        f"split seed {cfg.split_seed}"
        + (f", at most {cfg.train_limit or 'all'} train / {cfg.val_limit or 'all'} validation / "
           f"{cfg.test_limit or 'all'} test images"
           if cfg.train_limit or cfg.val_limit or cfg.test_limit else ""))
    say(f"  backend        {keras.backend.backend()}")
    say(f"  device         {describe_device(on_gpu)}")
    if strategy is not None:
        say(f"  distribution   {describe_distribution(strategy)}")
    say(f"  versions       keras-lrn {keras_lrn.__version__}, Keras {keras.__version__}, "
        f"TensorFlow {tf.__version__}, NumPy {np.__version__}, "
        f"Python {platform.python_version()}")
    replaced = " (--overwrite: the previous run's results are replaced)" if finished_run(
        cfg.out_dir) and not os.path.isdir(resume_dir(cfg)) else ""
    say(f"  output folder  {out_dir}{replaced}")
    if os.path.isdir(resume_dir(cfg)):
        say(f"  resuming       from {os.path.abspath(resume_dir(cfg))} (an interrupted run's "
            f"last finished epoch)")
    say("  progress       " + {"bar": "a live bar (stdout is a terminal)",
                                "epochs": "one line per epoch",
                                "none": "none (--progress none)"}[progress])


OUTPUT_FILES = {
    "alexnet_final.keras": "the trained model and optimizer state (load it after `import keras_lrn`)",
    "history.csv": "loss, cross-entropy, accuracy and learning rate per epoch",
    "learning_curves.png": "the same as curves",
    "results.json": "configuration, test-split accuracies, timings, history",
}


def default_out_dir(cfg):
    """One folder per scale (per dataset and scale for the tfds datasets),
    so that a ci run and an offline run keep their own results."""
    name = cfg.scale if cfg.dataset == "digits" else f"{cfg.dataset}_{cfg.scale}"
    return os.path.join("alexnet_run", name)


def finished_run(out_dir):
    """The files of a run that finished (or got as far as saving), in
    `out_dir`: what a new run there would replace."""
    return [name for name in OUTPUT_FILES if os.path.exists(os.path.join(out_dir, name))]


def run(cfg):
    """Full job: data -> model -> fit (validation: LR schedule) -> centre and
    multi-crop evaluation on the test split -> save/load .keras. Returns
    (model, history, results)."""
    t0 = time.time()
    progress = resolve_progress(cfg.progress)
    strategy, on_gpu = device_setup(cfg.distribute)
    print_banner(cfg, on_gpu, progress, strategy)
    keras.utils.set_random_seed(cfg.seed)
    train_raw, val_raw, test_raw, num_classes = load_raw(cfg)
    stats = colour_statistics(train_raw, cfg.resize_size)
    train, val, test = make_pipelines(cfg, train_raw, val_raw, stats, test_raw)
    sizes = [int(d.cardinality()) for d in (train_raw, val_raw, test_raw)]
    say("data: " + (f"{sizes[0]:,} training / {sizes[1]:,} validation (learning-rate "
                    f"schedule) / {sizes[2]:,} test (reported) images, "
                    if min(sizes) >= 0 else "") + f"{num_classes} classes")
    with strategy.scope():
        model = build_model(cfg, num_classes)
    weight_bytes = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
    say(f"model: {model.count_params():,} parameters ({format_size(weight_bytes)} of weights; "
        f"the saved model and the resume state hold twice that with SGD's momentum); "
        f"jit_compile={model.jit_compile} (Keras's default \"auto\")")
    steps_per_epoch = int(train.cardinality())
    if cfg.normalization == "batchnorm" and steps_per_epoch > 0:
        say(batchnorm_note(cfg.epochs * steps_per_epoch))

    cbs = callbacks(cfg, verbose=int(progress == "bar"))
    if progress == "epochs":
        cbs.append(EpochLines(cfg.epochs, print_fn=say))
    t_fit = time.time()
    history = model.fit(train, validation_data=val, epochs=cfg.epochs, callbacks=cbs,
                        verbose=1 if progress == "bar" else 0,
                        # make_pipelines shuffles; Keras cannot shuffle a
                        # tf.data.Dataset and warns about its default True.
                        shuffle=False)
    fit_s = time.time() - t_fit
    # SPLITS_NOTE: the test split is evaluated once, here, and selects nothing
    centre = model.evaluate(test, verbose=0, return_dict=True)
    n_crops = 10 if cfg.flip else 5
    top1_multi, top5_multi = evaluate_ten_crop(model, cfg, test_raw, stats[0])

    # The model is saved and loaded back either way; without --save-model
    # (the ci smoke run) in a temporary folder, removed at once.
    with tempfile.TemporaryDirectory() as scratch:
        final_path = os.path.join(cfg.out_dir if cfg.save_model else scratch,
                                  "alexnet_final.keras")
        model.save(final_path)
        reloaded = keras.models.load_model(final_path)
        batch = next(iter(val))[0][:4].numpy()
        same = np.allclose(model.predict_on_batch(batch), reloaded.predict_on_batch(batch),
                           rtol=1e-5, atol=1e-6)
        if not same:
            raise RuntimeError(f"The reloaded {final_path} gives different predictions.")
    whole_run = read_history(os.path.join(cfg.out_dir, "history.csv"))
    plot_history(whole_run, os.path.join(cfg.out_dir, "learning_curves.png"), num_classes)
    results = {
        "config": dataclasses.asdict(cfg),
        "output_dir": os.path.abspath(cfg.out_dir),
        "num_classes": num_classes,
        "params": int(model.count_params()),
        "epochs_run": len(whole_run["loss"]),
        "fit_seconds": round(fit_s, 1),
        "steps_per_epoch": steps_per_epoch,
        "images": {"train": sizes[0], "validation": sizes[1], "test": sizes[2]},
        "evaluated_on": "test",
        "validation_top1": whole_run["val_accuracy"][-1],
        "test_crossentropy": float(centre["crossentropy"]),
        "centre_crop_top1": float(centre["accuracy"]),
        "centre_crop_top5": float(centre["top5"]),
        "multi_crop_count": n_crops,
        "multi_crop": ("4 corners + centre and their mirrors" if cfg.flip else
                       "4 corners + centre (no mirrors: trained without flips)"),
        "multi_crop_top1": float(top1_multi),
        "multi_crop_top5": float(top5_multi),
        "reloaded_predictions_match": bool(same),
        "model_file": "alexnet_final.keras" if cfg.save_model else None,
        "device": "GPU" if on_gpu else "CPU",
        "jit_compile": bool(model.jit_compile),
        "history": whole_run,
    }
    results["total_seconds"] = round(time.time() - t0, 1)
    with open(os.path.join(cfg.out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    print_summary(cfg, results)
    return model, history, results


def print_summary(cfg, results):
    out_dir = os.path.abspath(cfg.out_dir)
    say(f"results on the test split: centre crop top-1 {results['centre_crop_top1']:.4f}, "
        f"top-5 {results['centre_crop_top5']:.4f}; "
        f"{results['multi_crop_count']}-crop top-1 {results['multi_crop_top1']:.4f}, "
        f"top-5 {results['multi_crop_top5']:.4f} (chance {1 / results['num_classes']:.4f}); "
        f"{_plural(results['epochs_run'], 'epoch')}, {results['total_seconds']:.0f} s in all")
    written = {name: what for name, what in OUTPUT_FILES.items()
               if os.path.exists(os.path.join(out_dir, name))}
    say(f"wrote {len(written)} files to {out_dir}:")
    total = 0
    width = max(map(len, written))
    for name, what in written.items():
        size = os.path.getsize(os.path.join(out_dir, name))
        total += size
        say(f"  {name:<{width}}  {format_size(size):>9}  {what}")
    say(f"output folder: {out_dir} ({format_size(total)})")


def _preset_help(field):
    values = [f"{PRESETS[s].get(field, getattr(Config, field))} ({s})" for s in SCALES]
    return "default: " + ", ".join(values)


def build_parser():
    """The command line; every option's help says its default."""
    p = argparse.ArgumentParser(
        prog="train_alexnet.py", description=__doc__.split("\n\n")[0],
        epilog="Output: a banner, a live bar on a terminal or one line per epoch "
               "otherwise, and a summary naming the output folder and its files. "
               "An interrupted run continues from its last finished epoch when the "
               "same command runs again (state in <out-dir>/resume/ until the end).")
    p.add_argument("--dataset", choices=DATASETS,
                   help="default: $KERAS_LRN_DATASET, else digits (offline)")
    p.add_argument("--scale", choices=SCALES,
                   help="size preset; default: $KERAS_LRN_SCALE, else offline")
    p.add_argument("--epochs", type=int, help=_preset_help("epochs"))
    p.add_argument("--batch-size", type=int, help=_preset_help("batch_size"))
    p.add_argument("--image-size", type=int,
                   help="crop fed to the network; " + _preset_help("image_size"))
    p.add_argument("--resize-size", type=int,
                   help="images are resized to this square first; " + _preset_help("resize_size"))
    p.add_argument("--learning-rate", type=float,
                   help=f"SGD's initial rate; default: {Config.learning_rate}")
    p.add_argument("--train-limit", type=int,
                   help="use at most this many training images (0: all); "
                        + _preset_help("train_limit"))
    p.add_argument("--val-limit", type=int,
                   help="use at most this many validation images (0: all); "
                        + _preset_help("val_limit"))
    p.add_argument("--test-limit", type=int,
                   help="use at most this many test images (0: all); "
                        + _preset_help("test_limit"))
    p.add_argument("--fc-bias", type=float,
                   help="fc6/fc7 bias init; default: 0 for the 10-class digits and "
                        "imagenette, 1 (the paper) for imagenet2012 (FC_BIAS_NOTE in the script)")
    p.add_argument("--variant", choices=("original", "caffenet"),
                   help=f"default: {Config.variant}")
    p.add_argument("--normalization", choices=NORMALIZATIONS,
                   help="after conv1 and conv2: lrn (the paper's LRN), none, batchnorm, or "
                        "learned (LRN with trainable alpha, beta, bias); "
                        f"default: {Config.normalization}")
    p.add_argument("--seed", type=int,
                   help="initialization, shuffling and augmentation; the data split "
                        f"does not change with it; default: {Config.seed}")
    p.add_argument("--split-seed", type=int,
                   help="digits' train/validation/test split (tfds splits are fixed); "
                        f"default: {Config.split_seed}")
    p.add_argument("--mock", action="store_true", default=None,
                   help="run the tfds datasets on tensorflow_datasets.testing.mock_data "
                        "(no download); default: off")
    p.add_argument("--data-dir",
                   help="tfds data folder; default: tfds's own (~/tensorflow_datasets)")
    p.add_argument("--out-dir",
                   help="output folder; default: alexnet_run/<scale> (alexnet_run/offline, "
                        "alexnet_run/ci, alexnet_run/full), alexnet_run/<dataset>_<scale> for "
                        "imagenette and imagenet2012, in the current folder")
    p.add_argument("--save-model", action="store_true", default=None,
                   help="write the trained model, alexnet_final.keras (with the optimizer "
                        "state: 162 MB at the offline and ci scales); default: on, off for "
                        "--scale ci (a smoke run saves and reloads it in a temporary folder)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the results of a finished run in the output folder; without "
                        "it the job stops before training (an interrupted run, with "
                        "<out-dir>/resume/, continues either way); default: off")
    p.add_argument("--distribute", action="store_true", default=None,
                   help="data parallel over every device: Keras's DataParallel on JAX "
                        "(across processes too: docs/guides/distributed.md), "
                        "MirroredStrategy on TensorFlow; default: off (one device)")
    p.add_argument("--progress", choices=PROGRESS,
                   help="bar: Keras's live progress bar; epochs: one plain line per epoch; "
                        "default: auto (bar when stdout is a terminal, else epochs)")
    return p


def parse_config(argv=None):
    """The command line as a Config, checked before anything is imported or
    written: exits with a message (status 2) for a bad option, or where the
    output folder holds a finished run's results and `--overwrite` is not
    given."""
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    overwrite = args.pop("overwrite")
    given_out_dir = args["out_dir"] is not None
    cfg = make_config(**args)
    if not given_out_dir:
        cfg = dataclasses.replace(cfg, out_dir=default_out_dir(cfg))
    previous = finished_run(cfg.out_dir)
    if previous and not overwrite and not os.path.isdir(resume_dir(cfg)):
        # the refusal alone, first (no usage block: the command line was fine)
        where = "" if given_out_dir else f" (the default output folder of --scale {cfg.scale})"
        sys.stderr.write(f"{parser.prog}: {cfg.out_dir}{where} holds a finished run's results "
                         f"({', '.join(previous)}); pass --overwrite to replace them, or "
                         f"--out-dir DIR to write to another folder.\n")
        sys.exit(2)
    return cfg


def main(argv=None):
    _, _, results = run(parse_config(argv))
    return results


if __name__ == "__main__":
    # Parse and check the command line first: `--help`, a mistyped option or
    # a folder holding another run's results answer without TensorFlow.
    _CONFIG = parse_config()

# TensorFlow (without its start-up lines), Keras and keras-lrn, here and not
# at the top so that the command line above is answered first. Imported as a
# module (notebook 2, the tests), this file imports them at once, as usual.
tf = import_tensorflow()
import keras  # noqa: E402

import keras_lrn  # noqa: E402
from keras_lrn.applications import AlexNet  # noqa: E402


class EpochLines(keras.callbacks.Callback):
    """One plain line per epoch, for logs: no progress bar, no ETA, no
    carriage returns or colour codes; the learning rate the epoch used, its
    wall time (validation included), and a note when ReduceLROnPlateau
    lowers the rate (put this callback after it)."""

    def __init__(self, epochs, print_fn=print):
        super().__init__()
        self.epochs = epochs
        self.print_fn = print_fn

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()
        self._lr = _learning_rate(self.model)

    def on_epoch_end(self, epoch, logs=None):
        seconds = time.perf_counter() - self._start
        logs = {k: v for k, v in (logs or {}).items() if k != "learning_rate"}
        # loss first, then the metrics; training before validation
        order = sorted(logs, key=lambda k: (k.startswith("val_"), not k.endswith("loss"), k))
        metrics = "  ".join(f"{k} {float(logs[k]):.4f}" for k in order)
        steps = (self.params or {}).get("steps") or 0
        per_step = f", {seconds / steps:.2f} s/step" if steps else ""
        width = len(str(self.epochs))
        line = (f"epoch {epoch + 1:>{width}}/{self.epochs}  {metrics}  "
                f"lr {self._lr:g}  {seconds:.1f} s{per_step}")
        lr = _learning_rate(self.model)
        if lr != self._lr:
            line += f"  (val_loss flat: lr now {lr:g})"
        self.print_fn(line)


if __name__ == "__main__":
    run(_CONFIG)
