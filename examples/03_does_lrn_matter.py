# %% [markdown]
# # 3. Does LRN still matter?
#
# **Needs:** keras-lrn's `[notebooks]` extra with TensorFlow
# (`pip install tensorflow-cpu -e ".[notebooks]"`: scikit-learn, matplotlib,
# SciPy, Jupyter). No download.
#
# The question users ask (paraphrasing a well-known Cross Validated thread):
# *"AlexNet and other large CNNs use local response normalization. How
# important is it, and when should it be used?"* The usual answer quotes
# CS231n: "these layers have fallen out of favor because in practice their
# contribution has been shown to be minimal, if any", and points to batch
# normalization as the replacement.
#
# This notebook measures it on a dataset that runs here, with a set-up meant
# to survive a referee: every arm gets its own learning rate, chosen on a
# validation split over several seeds and off the edge of the grid; every
# arm is configured for the length of its training (BatchNorm included);
# accuracy is reported on a test split that chose nothing, for 10 seeds per
# arm; every "X beats Y" is corrected for the family of comparisons it
# belongs to; a seed pins a run down (shown by a rerun).
#
# **Network.** One small AlexNet-style network (conv-ReLU-norm-pool twice, a
# third conv, a dropout FC layer), identical in every arm except the layer at
# the two normalization positions:
#
# | arm | layer at `norm1`, `norm2` |
# |---|---|
# | `none` | nothing (identity) |
# | `batchnorm` | `keras.layers.BatchNormalization(momentum=0.9)`: batch statistics in training, moving statistics at test (momentum: see below) |
# | `lrn_across` | `LocalResponseNormalization()`: the paper's n=5, k=2, alpha=1e-4 per term, beta=0.75 |
# | `lrn_within_term` | `LocalResponseNormalization(size=5, mode="within_channel")`: 5x5 box, alpha=1e-4 on **each of the 25 terms** |
# | `lrn_within_caffe` | the same box with Caffe's WITHIN_CHANNEL convention alpha/n^2 = 1e-4/25 per term (k kept at the paper's 2, so only alpha differs) |
# | `lrn_learned` | learned LRN as in `AlexNet(normalization="learned")`: exponential window (window_scale 2.5), alpha, beta, k and window_scale trained from the paper's values |
# | `lrn_gain_invariant` | `LocalResponseNormalization(size=5, alpha=1, beta=0.5, bias=0.01)`: where alpha * sum >> k its output a / sqrt(sum a^2) does not depend on the input's scale |
#
# **Within vs across is not like for like.** With alpha per term, the
# within-channel window sums 5x5 = 25 squares where the across-channel window
# sums 5, so at similar activations alpha * sum is about 5x larger within the
# channel: `lrn_within_term` normalizes about 5x harder than `lrn_across`.
# Caffe divides alpha by n^2 = 25 in WITHIN_CHANNEL mode (by n = 5 across
# channels): alpha * sum is then alpha times the *mean* square of the box,
# 25x less than `lrn_within_term` and about 1/5 of `lrn_across`. The records
# hold the measured alpha * sum / k of every LRN arm, input and test gain.
#
# **BatchNorm configured for a short run.** Keras's default momentum, 0.99,
# averages the moving statistics over about 100 steps and keeps
# 0.99^S of their initial values (mean 0, variance 1) after S steps; this
# notebook's runs are a few hundred steps (printed below), so with 0.99 the
# statistics used at test time would still be partly the initial ones, and a
# BatchNorm network that trained well would score badly in inference mode.
# Here `momentum=0.9` (an average over about the last 10 steps; the initial
# values weigh 0.9^S, printed below). Two checks are recorded for every
# BatchNorm seed: the moving statistics against the true statistics of the
# training set, and the test accuracy with *batch* statistics (the test
# images in batches of 64, as in training), which does not use the moving
# statistics at all.
#
# **Inputs.** Both conventions: `raw`, AlexNet's (pixels 0..255 minus the
# training mean, std ~80) and `standardized` (divided by the training std:
# std 1). LRN's constants (k=2, alpha=1e-4) were chosen for raw pixels; the
# convention decides whether the layer is close to linear or not.
#
# **Initialization.** Keras's defaults: Glorot-uniform kernels, zero biases
# (what a Keras user gets). The paper's N(0, 0.01) with biases of 1 was set
# for a 227x227 network; in this small network it would measure the
# initialization, not the normalization.
#
# **Protocol.** scikit-learn's bundled digits (1,797 8x8 images, no
# download), upsampled to 16x16, split once (split seed 0, stratified) into
# train 60% / validation 20% / test 20%. SGD with momentum 0.9 and weight
# decay 5e-4 (the AlexNet recipe), batch 64.
#
# 1. *Learning rate, per arm and input.* A grid on the 1-3-10 ladder
#    (..., 1e-3, 3e-3, 1e-2, ...) starts at three rates; each rate is trained
#    with 3 sweep seeds (100, 101, 102) and scored on the **validation**
#    split by the median over those seeds (ties: the mean, then the smaller
#    rate). While the best rate is at an edge of what was swept, the next
#    rate beyond that edge is swept; the chosen rate is therefore *interior*:
#    both neighbours were swept and scored lower.
# 2. *Test.* 10 new seeds (0..9) train at the chosen rate and are scored
#    once on the **test** split.
# 3. *A seed pins a run down.* Each arm keeps one compiled model; before
#    every run **every** variable of the model is reset to a freshly built
#    model of that seed (weights, BatchNorm statistics, LRN's learned
#    parameters and Dropout's seed-generator state), the optimizer's
#    variables are zeroed (iteration count included), and the batches come
#    from a NumPy generator seeded with the run's seed. At the end, seed 0 of
#    every arm and input is run again, after all the other runs of that
#    model, and the records compare the two runs.
# 4. *Comparisons.* Per input convention, all 21 pairs of arms form one
#    family. Each pair: the difference in **median** test accuracy with a
#    bootstrap 95% interval (10,000 resamples of each arm's seeds), and the
#    two-sided Mann-Whitney U test computed **exactly** by enumerating every
#    split of the 20 runs (184,756; the conditional test, exact also with
#    ties: accuracies on 360 test images tie often), then **Holm's**
#    correction over the family's 21 p-values. "X beats Y" means a Holm p
#    below 0.05. "No difference" is said only as equivalence: the bootstrap
#    90% interval of the median difference inside +-delta, where delta is the
#    smallest difference the design can detect (printed per input);
#    otherwise the data *cannot tell*.
#
# A run **failed to train** if its final training loss is not finite or its
# accuracy (validation in the sweep, test for the seeds) is below 50%
# (chance is 10%).
#
# **Settings:** `KERAS_LRN_SCALE` = `ci` (a smoke run for the tests: one
# epoch, a 256-image training subset, raw inputs only, the arms `none`,
# `batchnorm`, `lrn_across` and `lrn_learned`, 2 sweep seeds, at most one
# widening step, 3 test seeds, 3 test gains; its numbers mean nothing),
# `offline` (default: the committed run, 6 epochs; settings printed below;
# 2,647 s until its records were written on 2 shared CPU cores) or `full`
# (more epochs and seeds).

# %%
import os
import platform
import time

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SCALE = os.environ.get("KERAS_LRN_SCALE", "offline")  # "ci" | "offline" | "full"
# "run": train every arm here; "records": read the training's runs back from the records file, after
# checking that its settings are this notebook's and that the package executing it computes the same bits
# for every arm's layer as the package that trained (the records' fingerprint)
TRAINING = os.environ.get("KERAS_LRN_TRAINING", "run")
THREADS = int(os.environ.get("KERAS_LRN_THREADS", "0"))  # TensorFlow's intra- and inter-op threads; 0: its default
CI = SCALE == "ci"
TEST_SEEDS = {"ci": [0, 1, 2], "offline": list(range(10)), "full": list(range(20))}[SCALE]
SWEEP_SEEDS = {"ci": [100, 101], "offline": [100, 101, 102], "full": [100, 101, 102, 103, 104]}[SCALE]
EPOCHS = {"ci": 1, "offline": 6, "full": 30}[SCALE]
TRAIN_LIMIT = {"ci": 256, "offline": None, "full": None}[SCALE]
MAX_WIDENINGS = 1 if CI else 8  # sweep steps beyond the starting grid, per arm and input
LADDER = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0]  # the 1-3-10 grid
START_GRID = {"raw": [3e-4, 1e-3, 3e-3], "standardized": [1e-2, 3e-2, 0.1]}
BN_MOMENTUM = 0.9
TIMING_ROUNDS, TIMING_STEPS = {"ci": (1, 2), "offline": (5, 10), "full": (10, 20)}[SCALE]
TEST_GAINS = [0.1, 1.0, 10.0] if CI else [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]
IMAGE_SIZE, BATCH_SIZE, SPLIT_SEED, FILTERS = 16, 64, 0, (16, 32, 32)
FAILED_BELOW = 0.5  # accuracy under which a run "failed to train" (chance: 0.1)
CLOSE_IMAGES = 2  # a rate chosen by this many validation images or fewer is a tie: its runner-up is tested too
ALPHA, BOOTSTRAP = 0.05, 10_000
EQUIVALENCE_MARGIN = 0.03  # points of test accuracy (11 of 360 images) within which two arms may be called equivalent
ARMS = ["none", "batchnorm", "lrn_across", "lrn_within_term", "lrn_within_caffe",
        "lrn_learned", "lrn_gain_invariant"]
if CI:  # one arm per code path
    ARMS = ["none", "batchnorm", "lrn_across", "lrn_learned"]
LRN_PAPER = ["lrn_across", "lrn_within_term", "lrn_within_caffe", "lrn_learned"]
INPUTS = ["raw"] if CI else ["raw", "standardized"]
RESULTS_PATH = os.path.join(os.environ.get("KERAS_LRN_OUT_DIR", "results"), "03_does_lrn_matter.json")

from quiet_tensorflow import import_tensorflow, quietly  # without TensorFlow's start-up lines on stderr

tf = import_tensorflow()
tf.get_logger().setLevel("ERROR")
if THREADS:
    tf.config.threading.set_intra_op_parallelism_threads(THREADS)
    tf.config.threading.set_inter_op_parallelism_threads(THREADS)
import itertools
import json
import math

import keras
import matplotlib.pyplot as plt
import numpy as np
import scipy.stats
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from keras_lrn import LocalResponseNormalization
from study_fingerprint import NORM_LAYERS, fingerprint
from study_provenance import provenance

n_gpus = len(quietly(lambda: tf.config.list_physical_devices("GPU")))
T_START = time.time()
print(f"settings: KERAS_LRN_SCALE={SCALE!r}: epochs={EPOCHS}, sweep seeds={SWEEP_SEEDS}, starting grids "
      f"{START_GRID} (ladder {LADDER[0]:g}..{LADDER[-1]:g}, at most {MAX_WIDENINGS} widening steps), "
      f"test seeds={TEST_SEEDS}, train limit={TRAIN_LIMIT}, {IMAGE_SIZE}x{IMAGE_SIZE} input, filters "
      f"{FILTERS}, batch {BATCH_SIZE}, split seed {SPLIT_SEED}, BatchNorm momentum {BN_MOMENTUM}, "
      f"timing {TIMING_ROUNDS} interleaved rounds x {TIMING_STEPS} steps, test gains {TEST_GAINS}")
print(f"machine: {platform.platform()}, {os.cpu_count()} CPU cores (shared), GPUs: {n_gpus}")
print(f"keras {keras.__version__} (backend {keras.backend.backend()}), tensorflow {tf.__version__}")
PROVENANCE = provenance()  # of this execution; the records' is the training's (see the training cell)
FINGERPRINT = fingerprint()  # the bits every LRN arm's layer computes here (examples/study_fingerprint.py)
print("provenance:", json.dumps(PROVENANCE))

# %% [markdown]
# ## Data, arms and the network

# %%
digits = load_digits()
images = tf.image.resize(digits.images[..., None] * (255.0 / 16.0), (IMAGE_SIZE, IMAGE_SIZE)).numpy()
x_train, x_rest, y_train, y_rest = train_test_split(
    images, digits.target, test_size=0.4, stratify=digits.target, random_state=SPLIT_SEED)
x_val, x_test, y_val, y_test = train_test_split(
    x_rest, y_rest, test_size=0.5, stratify=y_rest, random_state=SPLIT_SEED)
if TRAIN_LIMIT:
    x_train, y_train = x_train[:TRAIN_LIMIT], y_train[:TRAIN_LIMIT]
pixel_mean, pixel_std = x_train.mean(), x_train.std()
data = {}
for inputs in INPUTS:
    scale = 1.0 if inputs == "raw" else 1.0 / pixel_std
    data[inputs] = {name: ((x - pixel_mean) * scale).astype("float32")
                    for name, x in [("train", x_train), ("val", x_val), ("test", x_test)]}
STEPS_PER_EPOCH = math.ceil(len(x_train) / BATCH_SIZE)
STEPS = EPOCHS * STEPS_PER_EPOCH
print(f"train {len(x_train)}, validation {len(x_val)}, test {len(x_test)} images; "
      f"raw pixel std {pixel_std:.1f}, standardized std 1")
print(f"a run: {EPOCHS} epochs x {STEPS_PER_EPOCH} steps = {STEPS} steps. Weight of BatchNorm's initial "
      f"statistics at the end: momentum {BN_MOMENTUM}: {BN_MOMENTUM ** STEPS:.1e}; "
      f"Keras's default 0.99: {0.99 ** STEPS:.2f}")


SETTINGS = dict(scale=SCALE, epochs=EPOCHS, steps_per_run=STEPS, batch_size=BATCH_SIZE,
                sweep_seeds=SWEEP_SEEDS, test_seeds=TEST_SEEDS, start_grid=START_GRID, ladder=LADDER,
                max_widenings=MAX_WIDENINGS, test_gains=TEST_GAINS, image_size=IMAGE_SIZE,
                filters=list(FILTERS), train_images=len(x_train), failed_below=FAILED_BELOW,
                close_images=CLOSE_IMAGES, equivalence_margin=EQUIVALENCE_MARGIN, arms=ARMS, inputs=INPUTS)


def norm_layer(arm, name):
    """The layer at norm1 and norm2: the LRN arms' arguments are `study_fingerprint.NORM_LAYERS`, whose
    fingerprint the records hold."""
    if arm == "batchnorm":
        return keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)
    if arm in NORM_LAYERS:
        return LocalResponseNormalization(**NORM_LAYERS[arm], name=name)
    return keras.layers.Identity(name=name)


def small_alexnet(arm, seed):
    """A freshly initialized network of this arm; `seed` fixes every initial
    value, Dropout's seed generator included."""
    keras.utils.set_random_seed(seed)
    reg = keras.regularizers.L2(2.5e-4)  # = weight decay 5e-4 in the paper's update rule
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 1))
    x = inputs
    for i, filters in enumerate(FILTERS[:2]):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", kernel_regularizer=reg)(x)
        x = norm_layer(arm, f"norm{i + 1}")(x)
        x = keras.layers.MaxPooling2D(3, 2, padding="same")(x)
    x = keras.layers.Conv2D(FILTERS[2], 3, padding="same", activation="relu", kernel_regularizer=reg)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(128, activation="relu", kernel_regularizer=reg)(x)
    x = keras.layers.Dropout(0.5)(x)
    outputs = keras.layers.Dense(10, activation="softmax", kernel_regularizer=reg)(x)
    return keras.Model(inputs, outputs, name=f"small_alexnet_{arm}")


small_alexnet("lrn_across", 0).summary()

# %% [markdown]
# ## One run, pinned down by its seed
#
# `train_run(arm, inputs, lr, seed)` is one run: it resets every variable of
# the arm's compiled model (see the protocol), trains for the set number of
# epochs and scores the validation and test splits. A reviewer can call it
# directly, e.g. `train_run("none", "raw", 3e-4, 0)`, and compare with the
# records. `evaluate(arm, inputs)` then tests the trained model at every
# input gain, in inference mode and (BatchNorm) with batch statistics.

# %%
_models = {}


def compiled_model(arm, inputs):
    """The arm's compiled model for this input convention (built once, so
    tracing is paid once), with a probe returning the norm layers' inputs
    and outputs."""
    if (arm, inputs) not in _models:
        model = small_alexnet(arm, 0)
        model.compile(keras.optimizers.SGD(1e-3, momentum=0.9), "sparse_categorical_crossentropy")
        probe = keras.Model(model.input, [model.output] + [
            t for n in ("norm1", "norm2") for t in (model.get_layer(n).input, model.get_layer(n).output)])
        _models[(arm, inputs)] = model, probe
    return _models[(arm, inputs)]


def reset(model, arm, seed):
    """Every variable of `model` as a freshly built model of this seed has
    it (weights, BatchNorm statistics, learned LRN parameters, Dropout's
    seed-generator state), and the optimizer's variables zeroed."""
    fresh = small_alexnet(arm, seed)
    assert len(model.variables) == len(fresh.variables)
    for mine, new in zip(model.variables, fresh.variables):
        mine.assign(new)
    for v in model.optimizer.variables:
        v.assign(keras.ops.zeros_like(v))


def predict(arm, inputs, x):
    return compiled_model(arm, inputs)[1].predict(x, batch_size=512, verbose=0)


def accuracy(arm, inputs, split):
    x, y = {"val": (data[inputs]["val"], y_val), "test": (data[inputs]["test"], y_test)}[split]
    return float(np.mean(predict(arm, inputs, x)[0].argmax(-1) == y))


def finite_or_none(v):
    return float(v) if v is not None and np.isfinite(v) else None


def train_run(arm, inputs, lr, seed):
    """One run; returns its record (validation and test accuracy, final
    training loss: the mean over the last epoch's steps, weight decay included)."""
    model, _ = compiled_model(arm, inputs)
    reset(model, arm, seed)
    model.optimizer.learning_rate.assign(lr)
    x, y = data[inputs]["train"], y_train
    order = np.random.default_rng(seed)
    t = time.perf_counter()
    for _ in range(EPOCHS):
        perm, losses = order.permutation(len(x)), []
        for s in range(0, len(x), BATCH_SIZE):
            i = perm[s:s + BATCH_SIZE]
            losses.append(float(model.train_on_batch(x[i], y[i])))
    seconds = time.perf_counter() - t
    loss = finite_or_none(np.mean(losses))
    val, test = accuracy(arm, inputs, "val"), accuracy(arm, inputs, "test")
    return dict(arm=arm, inputs=inputs, lr=lr, seed=seed, val_accuracy=val, test_accuracy=test,
                final_loss=loss, failed=loss is None, fit_seconds=seconds)


rng = np.random.default_rng(0)
RANDOM_GAINS = 10.0 ** rng.uniform(-1, 1, size=len(x_test))  # per image, log-uniform 0.1x..10x
GAIN_KEYS = TEST_GAINS + ["random"]


def gained(inputs, g):
    gain = RANDOM_GAINS[:, None, None, None] if g == "random" else g
    return (data[inputs]["test"] * gain).astype("float32")


def lrn_beta_bias(layer):
    """The (beta, k) a LocalResponseNormalization layer computes with now
    (a learned parameter's weight holds its logarithm)."""
    value = {"beta": layer.beta, "bias": layer.bias}
    for name, weight in getattr(layer, "learned_weights", {}).items():
        value[name] = float(np.exp(keras.ops.convert_to_numpy(weight)))
    return value["beta"], value["bias"]


def alpha_sum_over_k(layer, a, b):
    """Median alpha * sum / k of an LRN layer over the positions where its
    input is clearly positive, recovered from its input a and output b:
    (a / b) ** (1 / beta) = k + alpha * sum."""
    beta, k = lrn_beta_bias(layer)
    mask = (a > 1e-3 * a.max()) & (b > 0)
    return finite_or_none(np.median(((a[mask] / b[mask]) ** (1.0 / beta)) / k - 1.0)) if mask.any() else None


def batch_statistics_outputs(model, x):
    """The model's outputs with BatchNorm normalizing each batch of 64 by
    that batch's own statistics (Dropout off); the moving statistics are
    neither used nor changed. Returns (probabilities, norm1 output)."""
    saved = [v.numpy() for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)
             for v in (layer.moving_mean, layer.moving_variance)]
    probs, norm1 = [], []
    for s in range(0, len(x), BATCH_SIZE):
        h = x[s:s + BATCH_SIZE]
        for layer in model.layers[1:]:
            h = layer(h, training=isinstance(layer, keras.layers.BatchNormalization))
            if layer.name == "norm1":
                norm1.append(keras.ops.convert_to_numpy(h))
        probs.append(keras.ops.convert_to_numpy(h))
    bns = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer, (mean, var) in zip(bns, zip(saved[::2], saved[1::2])):
        layer.moving_mean.assign(mean)
        layer.moving_variance.assign(var)
    return np.concatenate(probs), np.concatenate(norm1)


def evaluate(arm, inputs, seed):
    """Gain records of the arm's current model: test accuracy, norm1's output
    rms and (LRN) alpha*sum/k at each gain, in inference mode and, for
    BatchNorm, with batch statistics."""
    model, probe = compiled_model(arm, inputs)
    out = []
    for g in GAIN_KEYS:
        x = gained(inputs, g)
        o = probe.predict(x, batch_size=512, verbose=0)
        r = dict(arm=arm, inputs=inputs, seed=seed, mode="inference", test_gain=g,
                 test_accuracy=float(np.mean(o[0].argmax(-1) == y_test)),
                 norm1_rms=finite_or_none(np.sqrt(np.mean(o[2].astype("float64") ** 2))),
                 alpha_sum_over_k=None)
        if arm.startswith("lrn"):
            r["alpha_sum_over_k"] = {n: alpha_sum_over_k(model.get_layer(n), o[1 + 2 * i], o[2 + 2 * i])
                                     for i, n in enumerate(("norm1", "norm2"))}
        out.append(r)
        if arm == "batchnorm":
            probs, norm1 = batch_statistics_outputs(model, x)
            out.append(dict(arm=arm, inputs=inputs, seed=seed, mode="batch_statistics", test_gain=g,
                            test_accuracy=float(np.mean(probs.argmax(-1) == y_test)),
                            norm1_rms=finite_or_none(np.sqrt(np.mean(norm1.astype("float64") ** 2))),
                            alpha_sum_over_k=None))
    return out


def batchnorm_statistics_check(inputs):
    """BatchNorm's moving statistics against the true statistics of its
    input on the training set (median over channels, per layer)."""
    model, probe = compiled_model("batchnorm", inputs)
    o = probe.predict(data[inputs]["train"], batch_size=512, verbose=0)
    check = {}
    for i, n in enumerate(("norm1", "norm2")):
        a = o[1 + 2 * i].reshape(-1, o[1 + 2 * i].shape[-1]).astype("float64")
        layer = model.get_layer(n)
        mean, var = a.mean(0), a.var(0)
        mm, mv = layer.moving_mean.numpy(), layer.moving_variance.numpy()
        live = var > 1e-8
        check[n] = dict(moving_over_true_variance=float(np.median(mv[live] / var[live])),
                        mean_offset_in_std=float(np.median(np.abs(mm[live] - mean[live]) / np.sqrt(var[live]))))
    return check

# %% [markdown]
# ## Training: the sweep on validation, then the seeds on test
#
# Per arm and input convention: the learning-rate sweep (widened until the
# chosen rate is interior), then the test seeds at the chosen rate, each
# tested at every input gain of the gain-control experiment below (the test
# images multiplied by the gain, and with a random per-image gain), which
# needs no retraining; for BatchNorm also the check of its moving
# statistics. One line per arm and input.

# %%
def score(runs_at_rate):
    """A rate's validation score over its sweep seeds: (median, mean)."""
    acc = [r["val_accuracy"] for r in runs_at_rate]
    return float(np.median(acc)), float(np.mean(acc))


def choose(sweep):
    """The best swept rate (ties: the smaller rate), whether it is interior,
    and the per-rate scores."""
    rates = sorted({r["lr"] for r in sweep})
    scores = {lr: score([r for r in sweep if r["lr"] == lr]) for lr in rates}
    best = max(rates, key=lambda lr: (scores[lr], -lr))
    i = rates.index(best)
    interior = 0 < i < len(rates) - 1 and scores[rates[i - 1]] < scores[best] > scores[rates[i + 1]]
    return best, interior, scores


def sweep_learning_rate(arm, inputs):
    sweep = [train_run(arm, inputs, lr, s) for lr in START_GRID[inputs] for s in SWEEP_SEEDS]
    widenings = 0
    while True:
        best, interior, scores = choose(sweep)
        rates = sorted(scores)
        if interior or widenings == MAX_WIDENINGS:
            break
        edge = rates[0] if best == rates[0] else rates[-1]
        step = -1 if best == rates[0] else 1
        if not 0 <= LADDER.index(edge) + step < len(LADDER):
            break
        new = LADDER[LADDER.index(edge) + step]
        sweep += [train_run(arm, inputs, new, s) for s in SWEEP_SEEDS]
        widenings += 1
    i = rates.index(best)
    neighbours = [lr for lr in (rates[i - 1] if i > 0 else None, rates[i + 1] if i < len(rates) - 1 else None)
                  if lr is not None]
    runner_up = max(neighbours, key=lambda lr: (scores[lr], -lr)) if neighbours else None
    # the chosen rate's lead over its better neighbour, in validation images (median over the sweep seeds)
    lead = None if runner_up is None else round((scores[best][0] - scores[runner_up][0]) * len(x_val), 6)
    choice = dict(arm=arm, inputs=inputs, chosen_lr=best, interior=bool(interior), widenings=widenings,
                  sweep_seeds=SWEEP_SEEDS, rates=rates,
                  median_val_accuracy=[scores[lr][0] for lr in rates],
                  mean_val_accuracy=[scores[lr][1] for lr in rates],
                  lower_neighbour_lr=rates[i - 1] if i > 0 else None,
                  upper_neighbour_lr=rates[i + 1] if i < len(rates) - 1 else None,
                  runner_up_lr=runner_up, lead_in_val_images=lead,
                  close=lead is not None and lead <= CLOSE_IMAGES,
                  chosen_by_mean=max(rates, key=lambda lr: (scores[lr][1], -lr)))
    return sweep, choice


TRAINED_KEYS = ["sweeps", "choices", "seed_runs", "runner_up_runs", "gain", "batchnorm_statistics", "reruns"]
if TRAINING == "records":
    with open(RESULTS_PATH) as f:
        trained = json.loads(f.read(), parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
    assert trained["settings"] == SETTINGS, ("the records were made with other settings", trained["settings"])
    differ = sorted(arm for arm in FINGERPRINT if FINGERPRINT[arm] != trained["fingerprint"].get(arm))
    assert not differ, (f"the package executing this notebook computes other bits than the one that trained "
                        f"(commit {trained['provenance']['commit']}) for {differ}: set KERAS_LRN_TRAINING=run")
    sweeps, choices, seed_runs, runner_up_runs, gain_records, bn_checks, reruns = (
        trained[key] for key in TRAINED_KEYS)
    PROVENANCE, TRAINING_SECONDS = trained["provenance"], trained["run_time_s"]["training"]
    p = PROVENANCE
    print(f"runs read from {RESULTS_PATH}: trained at commit {p['commit'][:12]} on {p['cpu']} "
          f"({p['cpu_cores']} cores, intra/inter-op threads {p['intra_op_threads']}/{p['inter_op_threads']}), "
          f"training {TRAINING_SECONDS:.0f} s; this package computes the same bits for every LRN arm's layer "
          "(eager and XLA)")
else:
    sweeps, choices, seed_runs, gain_records, bn_checks, reruns, runner_up_runs = [], [], [], [], [], [], []
    t_all = time.time()
    for inputs in INPUTS:
        for arm in ARMS:
            t0 = time.time()
            sweep, choice = sweep_learning_rate(arm, inputs)
            for r in sweep:
                r["stage"] = "sweep"
                r["failed"] = bool(r["failed"] or r["val_accuracy"] < FAILED_BELOW)
                del r["test_accuracy"]  # the sweep selects on validation; test is scored only for the seeds
            sweeps += sweep
            choices.append(choice)
            lr = choice["chosen_lr"]
            for seed in TEST_SEEDS:
                r = train_run(arm, inputs, lr, seed)
                r["stage"] = "seeds"
                r["failed"] = bool(r["failed"] or r["test_accuracy"] < FAILED_BELOW)
                gains = evaluate(arm, inputs, seed)
                r["random_contrast_accuracy"] = next(g["test_accuracy"] for g in gains
                                                     if g["mode"] == "inference" and g["test_gain"] == "random")
                if arm == "batchnorm":
                    r["batch_statistics_test_accuracy"] = next(
                        g["test_accuracy"] for g in gains if g["mode"] == "batch_statistics" and g["test_gain"] == 1.0)
                    bn_checks.append(dict(inputs=inputs, seed=seed, **batchnorm_statistics_check(inputs)))
                seed_runs.append(r)
                gain_records += gains
            if choice["close"]:  # a tie: the test seeds at the runner-up rate too, for the close-call table
                for seed in TEST_SEEDS:
                    r = train_run(arm, inputs, choice["runner_up_lr"], seed)
                    r["stage"] = "runner_up"
                    r["failed"] = bool(r["failed"] or r["test_accuracy"] < FAILED_BELOW)
                    runner_up_runs.append(r)
            mine = [r for r in seed_runs if r["arm"] == arm and r["inputs"] == inputs]
            print(f"{inputs:12} {arm:18} rates {choice['rates']} median val "
                  + " ".join(f"{a:.3f}" for a in choice["median_val_accuracy"])
                  + f" -> lr {lr:g} ({'interior' if choice['interior'] else 'ON AN EDGE'}, "
                  f"{choice['widenings']} widening(s)); test per seed "
                  + " ".join(f"{r['test_accuracy']:.3f}" for r in mine)
                  + f"  ({time.time() - t0:.0f} s)", flush=True)
    # seed 0 of every arm and input once more, after all the other runs of its model
    for inputs in INPUTS:
        for arm in ARMS:
            first = next(r for r in seed_runs if r["arm"] == arm and r["inputs"] == inputs
                         and r["seed"] == TEST_SEEDS[0])
            again = train_run(arm, inputs, first["lr"], first["seed"])
            keys = ["val_accuracy", "test_accuracy", "final_loss"]
            reruns.append(dict(arm=arm, inputs=inputs, lr=first["lr"], seed=first["seed"],
                               first={k: first[k] for k in keys}, second={k: again[k] for k in keys},
                               identical=all(first[k] == again[k] for k in keys)))
    print(f"reruns of seed {TEST_SEEDS[0]}: {sum(r['identical'] for r in reruns)} of {len(reruns)} identical "
          f"(validation accuracy, test accuracy, final loss)")
    TRAINING_SECONDS = time.time() - t_all
    print(f"{len(sweeps)} sweep runs + {len(seed_runs)} seed runs + {len(reruns)} reruns: "
          f"{TRAINING_SECONDS:.0f} s")

# %% [markdown]
# ## Cost per training step, on the path users run
#
# Each arm's compiled model (the last input convention's; the cost does not
# depend on the pixel values) runs `train_on_batch` on one batch of 64:
# Keras's own training step, with `jit_compile` as Keras picks it ("auto")
# and the LRN layers at their default `implementation="auto"`. The rounds
# are interleaved (every arm once per round, in a rotated order) so that a
# change in the shared machine's load hits all arms alike; the ratio to
# `none` is taken within each round, then the median over rounds. The text
# draws no conclusion from these numbers: on a small network on a shared CPU
# they describe this machine.

# %%
if TRAINING == "records":
    cost = trained["cost"]
else:
    timed = INPUTS[-1]
    batch = data[timed]["train"][:BATCH_SIZE], y_train[:BATCH_SIZE]
    for arm in ARMS:
        for _ in range(3):
            compiled_model(arm, timed)[0].train_on_batch(*batch)  # warm-up
    ms = {arm: [] for arm in ARMS}
    for i in range(TIMING_ROUNDS):
        for arm in ARMS[i % len(ARMS):] + ARMS[:i % len(ARMS)]:
            model = compiled_model(arm, timed)[0]
            t = time.perf_counter()
            for _ in range(TIMING_STEPS):
                model.train_on_batch(*batch)
            ms[arm].append(1000 * (time.perf_counter() - t) / TIMING_STEPS)
    ratio = {arm: np.array(ms[arm]) / np.array(ms["none"]) for arm in ARMS}
    cost = {arm: dict(ms_per_step=float(np.median(ms[arm])), ratio_to_none=float(np.median(ratio[arm])),
                      ratio_range=[float(ratio[arm].min()), float(ratio[arm].max())]) for arm in ARMS}
    print(f"path: model.jit_compile={compiled_model('lrn_across', timed)[0].jit_compile} (Keras's 'auto' "
          f"here), LRN implementation='auto', TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, "
          f"GPUs: {n_gpus}; load average {os.getloadavg()[0]:.1f}")
    for arm in ARMS:
        c = cost[arm]
        print(f"{arm:18} {c['ms_per_step']:6.1f} ms/step   x none: median {c['ratio_to_none']:.2f} "
              f"(rounds: {c['ratio_range'][0]:.2f}..{c['ratio_range'][1]:.2f})")

# %% [markdown]
# ## Statistics
#
# `mann_whitney_exact(x, y)` enumerates every way of splitting the pooled
# runs into groups of the two sizes (184,756 for 10 and 10) and counts the
# splits whose U statistic (on mid-ranks, so ties are handled exactly) is at
# least as far from its mean as the observed one (two-sided), or at least as
# large (one-sided): the exact conditional test. Without ties it equals
# SciPy's `method="exact"`, which the cell checks. `holm(p)` is Holm's
# step-down correction.
#
# **Equivalence.** The margin is fixed in the settings before the run,
# `EQUIVALENCE_MARGIN` = 3 points of test accuracy (11 of the 360 test
# images): a difference a user would not act on for a network of this size,
# and the most the design was asked to call "no difference". A pair is
# *equivalent* only if two one-sided tests (TOST: the exact one-sided
# Mann-Whitney test of "a - b <= -3 points" and of "a - b >= +3 points", each
# on the runs shifted by the margin; the larger p counts) reject after
# Holm's correction over the family's 21 pairs, the same correction as the
# differences, **and** the bootstrap 90% interval of the median difference
# lies inside +-3 points. Otherwise the data *cannot tell*.
#
# **Failed runs** (final loss not finite or accuracy below 50%) stay in the
# tests (failing is part of an arm's result), but not in the spreads: the
# seed-to-seed standard deviation of each arm is computed without them, and
# they are counted apart.
#
# **Detectable difference.** `detectable_shift()` simulates the exact test
# itself: 10 + 10 runs drawn from two normal distributions with the same
# spread, one shifted, tested at Holm's strictest level 0.05/21; the shift
# detected with 80% power, in standard deviations, times the pooled
# seed-to-seed SD of the input convention (failed runs excluded), in points.

# %%
_splits = {}


def _u_statistics(x, y):
    """(U of every split of the pooled runs, observed U), on mid-ranks."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    n, m = len(x), len(y)
    if (n, m) not in _splits:
        _splits[(n, m)] = np.array(list(itertools.combinations(range(n + m), n)), dtype=np.int32)
    ranks = scipy.stats.rankdata(np.concatenate([x, y]))
    return ranks[_splits[(n, m)]].sum(1) - n * (n + 1) / 2, ranks[:n].sum() - n * (n + 1) / 2


def mann_whitney_exact(x, y, alternative="two-sided"):
    """Exact (permutation) Mann-Whitney U p-value, with ties: "two-sided", or
    "greater" (x tends to be larger than y)."""
    u, u_obs = _u_statistics(x, y)
    if alternative == "greater":
        return float(np.mean(u >= u_obs - 1e-9))
    centre = len(x) * len(y) / 2
    return float(np.mean(np.abs(u - centre) >= abs(u_obs - centre) - 1e-9))


def tost_exact(x, y, margin):
    """Two one-sided exact Mann-Whitney tests of |shift(x - y)| >= margin:
    the larger of p("x - y <= -margin") and p("x - y >= +margin")."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    return max(mann_whitney_exact(x + margin, y, "greater"), mann_whitney_exact(y, x - margin, "greater"))


def holm(pvalues):
    """Holm-adjusted p-values, in the input order."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p, kind="stable")
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted.tolist()


def bootstrap_median_difference(x, y, levels=(95, 90)):
    boot = np.random.default_rng(0)
    x, y = np.asarray(x), np.asarray(y)
    diffs = (np.median(boot.choice(x, (BOOTSTRAP, len(x))), axis=1)
             - np.median(boot.choice(y, (BOOTSTRAP, len(y))), axis=1))
    return {level: np.percentile(diffs, [50 - level / 2, 50 + level / 2]).tolist() for level in levels}


n_pairs = len(ARMS) * (len(ARMS) - 1) // 2
FAMILY_LEVEL = ALPHA / n_pairs


def detectable_shift(n=len(TEST_SEEDS), level=FAMILY_LEVEL, power=0.8, draws=4000):
    """The shift between two normal samples of n runs each (in standard
    deviations) that the exact two-sided Mann-Whitney test at `level`
    detects with probability `power`, by simulation (no ties; the exact
    null distribution of U by enumeration). Returns (shift, [(shift, power)]);
    the shift is None where no shift up to 4 SD reaches `power` (the ci
    scale's 3 seeds)."""
    cdf = _exact_u_cdf(n)
    # two-sided exact p of each U = u: twice the smaller tail, P(U <= u) or P(U >= u)
    upper = 1 - np.concatenate([[0.0], cdf[:-1]])
    p_two = np.minimum(1.0, 2 * np.minimum(cdf, upper))
    reject = p_two <= level + 1e-12
    sim = np.random.default_rng(27)
    curve = []
    for shift in np.arange(1.0, 4.001, 0.05):
        a = sim.standard_normal((draws, n)) + shift
        b = sim.standard_normal((draws, n))
        ranks = scipy.stats.rankdata(np.concatenate([a, b], axis=1), axis=1)
        u = (ranks[:, :n].sum(1) - n * (n + 1) / 2).astype(int)
        curve.append((float(shift), float(np.mean(reject[u]))))
    shifts, powers = np.array(curve).T
    if powers[-1] < power:
        return None, curve
    above = np.nonzero(powers >= power)[0][0]
    s0, s1, q0, q1 = shifts[above - 1], shifts[above], powers[above - 1], powers[above]
    return float(s0 + (power - q0) * (s1 - s0) / (q1 - q0)), curve


def _exact_u_cdf(n):
    """P(U <= u) under the null for two samples of n (no ties), u = 0..n*n,
    by enumerating the splits (the same enumeration as the test)."""
    u, _ = _u_statistics(np.arange(n), np.arange(n, 2 * n))
    counts = np.bincount(u.astype(int), minlength=n * n + 1)
    return np.cumsum(counts) / counts.sum()


# the exact test on tie-free data equals SciPy's exact Mann-Whitney
check = np.random.default_rng(1)
for _ in range(3):
    a, b = check.normal(size=len(TEST_SEEDS)), check.normal(0.5, size=len(TEST_SEEDS))
    for alternative in ("two-sided", "greater"):
        assert abs(mann_whitney_exact(a, b, alternative) - scipy.stats.mannwhitneyu(
            a, b, alternative=alternative, method="exact").pvalue) < 1e-9
assert np.allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
min_p = 2 / math.comb(2 * len(TEST_SEEDS), len(TEST_SEEDS))
print(f"{n_pairs} pairs per input convention; the smallest exact two-sided p with {len(TEST_SEEDS)} seeds "
      f"a side is {min_p:.1e}, x {n_pairs} (Holm's first step) = {n_pairs * min_p:.1e}")
SHIFT_SD, POWER_CURVE = detectable_shift()
print(f"the exact test at {FAMILY_LEVEL:.4f} detects a shift of "
      + (f"{SHIFT_SD:.2f} SD" if SHIFT_SD else "no size up to 4 SD") + " with 80% power "
      f"({len(TEST_SEEDS)} + {len(TEST_SEEDS)} runs; simulated)")


def runs_of(arm, inputs, runs=None):
    return [r for r in (seed_runs if runs is None else runs) if r["arm"] == arm and r["inputs"] == inputs]


def pooled_sd(inputs, runs=None):
    """sqrt(mean over arms of the seed-to-seed variance), failed runs excluded (None where no arm has two
    runs that trained: the ci scale)."""
    kept = [[r["test_accuracy"] for r in runs_of(arm, inputs, runs) if not r["failed"]] for arm in ARMS]
    variances = [np.var(k, ddof=1) for k in kept if len(k) >= 2]
    return float(np.sqrt(np.mean(variances))) if variances else None


def compare_family(inputs, runs=None):
    """The 21 comparisons of one input convention: medians, difference, bootstrap intervals, exact p,
    Holm p, TOST p and its Holm p, verdict."""
    family = []
    for a, b in itertools.combinations(ARMS, 2):
        x = [r["test_accuracy"] for r in runs_of(a, inputs, runs)]
        y = [r["test_accuracy"] for r in runs_of(b, inputs, runs)]
        ci = bootstrap_median_difference(x, y)
        family.append(dict(inputs=inputs, family=f"all {n_pairs} pairs of arms, {inputs} inputs",
                           arm_a=a, arm_b=b, n_a=len(x), n_b=len(y),
                           median_a=float(np.median(x)), median_b=float(np.median(y)),
                           median_difference=float(np.median(x) - np.median(y)),
                           ci95=ci[95], ci90=ci[90], ties=bool(len(set(x + y)) < len(x + y)),
                           p_exact=mann_whitney_exact(x, y), p_tost=tost_exact(x, y, EQUIVALENCE_MARGIN),
                           test="Mann-Whitney U, exact permutation; TOST: two one-sided exact tests"))
    for c, p, q in zip(family, holm([c["p_exact"] for c in family]), holm([c["p_tost"] for c in family])):
        c["p_holm"], c["p_tost_holm"] = p, q
        c["ci90_within_margin"] = bool(-EQUIVALENCE_MARGIN < c["ci90"][0] and c["ci90"][1] < EQUIVALENCE_MARGIN)
        c["verdict"] = ("a beats b" if p < ALPHA and c["median_difference"] > 0 else
                        "b beats a" if p < ALPHA and c["median_difference"] < 0 else
                        "equivalent" if q < ALPHA and c["ci90_within_margin"] else "cannot tell")
    return family


comparisons, detectable = [], {}
for inputs in INPUTS:
    sigma = pooled_sd(inputs)
    failed = [dict(arm=r["arm"], seed=r["seed"], test_accuracy=r["test_accuracy"])
              for r in seed_runs if r["inputs"] == inputs and r["failed"]]
    delta = None if SHIFT_SD is None or sigma is None else SHIFT_SD * sigma
    detectable[inputs] = dict(delta=delta, shift_in_sd=SHIFT_SD, pooled_seed_sd=sigma,
                              power=0.8, level=FAMILY_LEVEL, seeds_per_arm=len(TEST_SEEDS),
                              failed_runs_excluded_from_sd=failed, method="simulation of the exact test")
    comparisons += compare_family(inputs)
    print(f"{inputs}: pooled seed-to-seed sd "
          + (f"{100 * sigma:.2f} points" if sigma is not None else "undefined (no arm has two runs that trained)")
          + f" ({len(failed)} failed run(s) left out); "
          + (f"detectable median difference {100 * delta:.1f} points ({SHIFT_SD:.2f} SD); " if delta else "")
          + f"equivalence margin +-{100 * EQUIVALENCE_MARGIN:.0f} points")

# %% [markdown]
# ## The records
#
# Everything above goes into `examples/results/03_does_lrn_matter.json`
# (strict JSON: no NaN or Infinity, a missing value is `null`), and
# everything below reads it back from the file, so the tables, the plots and
# the assertions at the end use the same numbers. Its keys:
#
# * `settings`, `batchnorm` (the configuration and why), `run_time_s`;
# * `sweeps` (one record per sweep run: validation accuracy only),
#   `choices` (per arm and input: the swept rates, their median and mean
#   validation accuracy, the chosen rate, its neighbours, `interior`);
# * `seed_runs` (per test seed: validation and test accuracy, final loss,
#   `random_contrast_accuracy`; BatchNorm also
#   `batch_statistics_test_accuracy`), `batchnorm_statistics` (moving vs
#   true statistics per BatchNorm seed);
# * `gain` (per seed, mode `inference` or `batch_statistics`, and test gain
#   or `"random"`: test accuracy, norm1's output rms, and for LRN arms the
#   median alpha * sum / k at `norm1` and `norm2`);
# * `comparisons` (per input, the 21 pairs: medians, difference, 95% and
#   90% bootstrap intervals, exact p, Holm p, verdict), `detectable`;
# * `reruns` (seed 0 of every arm and input run twice), `cost`.

# %%
records = dict(
    settings=SETTINGS,
    batchnorm=dict(momentum=BN_MOMENTUM, recomputed_statistics=False,
                   why=f"a run is {STEPS} steps; with momentum {BN_MOMENTUM} the initial moving statistics "
                       f"weigh {BN_MOMENTUM ** STEPS:.1e} at the end (Keras's default 0.99: "
                       f"{0.99 ** STEPS:.2f}), and the average covers about the last 10 steps",
                   batch_statistics_evaluation=f"test images in batches of {BATCH_SIZE}, BatchNorm in "
                                               "training mode, Dropout off, moving statistics untouched"),
    provenance=PROVENANCE, fingerprint=FINGERPRINT,
    sweeps=sweeps, choices=choices, seed_runs=seed_runs, runner_up_runs=runner_up_runs,
    batchnorm_statistics=bn_checks, gain=gain_records,
    comparisons=comparisons, detectable=detectable, reruns=reruns, cost=cost,
    run_time_s=(trained["run_time_s"] if TRAINING == "records"
                else dict(training=TRAINING_SECONDS, until_records=time.time() - T_START)))
os.makedirs(os.path.dirname(RESULTS_PATH), exist_ok=True)
with open(RESULTS_PATH, "w") as f:
    f.write(json.dumps(records, indent=1, allow_nan=False))
print(f"wrote {RESULTS_PATH}: {len(sweeps)} sweep runs, {len(seed_runs)} seed runs, {len(gain_records)} "
      f"gain records, {len(comparisons)} comparisons, {len(reruns)} reruns; "
      f"{records['run_time_s']['until_records']:.0f} s since the first cell")

# %% [markdown]
# ## Results: the learning rates and the seeds

# %%
with open(RESULTS_PATH) as f:
    R = json.loads(f.read(), parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
CHOICE = {(c["arm"], c["inputs"]): c for c in R["choices"]}
COMPARE = {(c["arm_a"], c["arm_b"], c["inputs"]): c for c in R["comparisons"]}


def accuracies(arm, inputs, key="test_accuracy"):
    return np.array([r[key] for r in R["seed_runs"] if r["arm"] == arm and r["inputs"] == inputs])


def compared(a, b, inputs):
    """The comparison record of a vs b (difference a - b), whichever order it was stored in."""
    if (a, b, inputs) in COMPARE:
        return COMPARE[(a, b, inputs)]
    c = COMPARE[(b, a, inputs)]
    flip = {"a beats b": "b beats a", "b beats a": "a beats b"}
    return dict(c, arm_a=a, arm_b=b, median_a=c["median_b"], median_b=c["median_a"],
                median_difference=-c["median_difference"], ci95=[-c["ci95"][1], -c["ci95"][0]],
                ci90=[-c["ci90"][1], -c["ci90"][0]], verdict=flip.get(c["verdict"], c["verdict"]))


print(f"{'inputs':12} {'arm':18} {'lr':>6} {'neighbours':>15} {'median':>7} {'min':>6} {'max':>6} failed")
for inputs in INPUTS:
    for arm in ARMS:
        c, acc = CHOICE[(arm, inputs)], accuracies(arm, inputs)
        failed = sum(r["failed"] for r in R["seed_runs"] if r["arm"] == arm and r["inputs"] == inputs)
        print(f"{inputs:12} {arm:18} {c['chosen_lr']:6g} {str(c['lower_neighbour_lr']):>7}/"
              f"{str(c['upper_neighbour_lr']):<7} {np.median(acc):7.3f} {acc.min():6.3f} {acc.max():6.3f} "
              f"{failed}/{len(acc)}")

fig, axes = plt.subplots(2, len(INPUTS), figsize=(7.5 * len(INPUTS), 8.5), sharey="row", squeeze=False)
colors = dict(zip(ARMS, plt.cm.tab10(np.arange(len(ARMS)))))
for j, inputs in enumerate(INPUTS):
    ax = axes[0, j]
    for arm in ARMS:
        c = CHOICE[(arm, inputs)]
        ax.plot(c["rates"], c["median_val_accuracy"], "o-", color=colors[arm], label=arm)
        for r in R["sweeps"]:
            if r["arm"] == arm and r["inputs"] == inputs:
                ax.plot(r["lr"], r["val_accuracy"], ".", color=colors[arm], alpha=0.4)
        ax.plot([c["chosen_lr"]], [c["median_val_accuracy"][c["rates"].index(c["chosen_lr"])]],
                "*", ms=16, color=colors[arm], mec="k")
    ax.set_xscale("log")
    ax.set_xlabel("learning rate (SGD, momentum 0.9)")
    ax.set_title(f"{inputs} inputs: sweep, median of {len(SWEEP_SEEDS)} seeds (dots: each seed; star: chosen)")
    ax = axes[1, j]
    jitter = np.random.default_rng(1)
    for i, arm in enumerate(ARMS):
        acc = accuracies(arm, inputs)
        ax.plot(i + jitter.uniform(-0.15, 0.15, len(acc)), acc, "o", color=colors[arm], alpha=0.8)
        ax.hlines(np.median(acc), i - 0.3, i + 0.3, color="k")
        if arm == "batchnorm":
            bs = accuracies(arm, inputs, "batch_statistics_test_accuracy")
            ax.plot(i + 0.35 + jitter.uniform(-0.05, 0.05, len(bs)), bs, "x", color=colors[arm])
    ax.set_xticks(range(len(ARMS)), ARMS, rotation=25, ha="right")
    ax.set_title(f"{inputs} inputs: test accuracy per seed at the chosen rate (bar: median; "
                 f"x: BatchNorm with batch statistics)", fontsize=9)
axes[0, 0].set_ylabel("validation accuracy")
axes[1, 0].set_ylabel(f"test accuracy ({len(TEST_SEEDS)} seeds)")
axes[0, 0].legend(fontsize=8)
fig.tight_layout()
plt.show()

print("BatchNorm, per input: test accuracy in inference mode (moving statistics) vs with batch statistics, "
      "and the moving statistics against the training set's (median over seeds):")
for inputs in INPUTS:
    inf, bs = accuracies("batchnorm", inputs), accuracies("batchnorm", inputs, "batch_statistics_test_accuracy")
    ch = [c for c in R["batchnorm_statistics"] if c["inputs"] == inputs]
    print(f"  {inputs:12} inference median {np.median(inf):.3f}, batch statistics median {np.median(bs):.3f}, "
          f"largest |difference| per seed {100 * np.max(np.abs(inf - bs)):.1f} points; moving/true variance "
          + ", ".join(f"{n} {np.median([c[n]['moving_over_true_variance'] for c in ch]):.2f}"
                      for n in ("norm1", "norm2"))
          + "; mean offset " + ", ".join(f"{n} {np.median([c[n]['mean_offset_in_std'] for c in ch]):.2f} sd"
                                         for n in ("norm1", "norm2")))
print(f"reruns: {sum(r['identical'] for r in R['reruns'])} of {len(R['reruns'])} identical, e.g. "
      f"{R['reruns'][0]['arm']} {R['reruns'][0]['inputs']}: {R['reruns'][0]['first']} / {R['reruns'][0]['second']}")

# %% [markdown]
# ### Comparisons and the summary per input
#
# Per input convention, for every pair of arms: the medians, the median
# difference (row minus column arm) with its bootstrap 95% interval, the
# exact Mann-Whitney p and Holm's corrected p over the family of 21 pairs.
# Then, per input, the arm with the highest median against every other arm:
# "beats" (Holm p < 0.05), "equivalent" (90% interval within +-delta) or
# "cannot tell".

# %%
for inputs in INPUTS:
    print(f"--- {inputs} inputs (delta = {100 * R['detectable'][inputs]['delta']:.1f} points) ---")
    for c in R["comparisons"]:
        if c["inputs"] == inputs:
            print(f"{c['arm_a']:18} - {c['arm_b']:18} {100 * c['median_difference']:+5.1f} points "
                  f"[{100 * c['ci95'][0]:+5.1f}, {100 * c['ci95'][1]:+5.1f}]  p {c['p_exact']:.5f}  "
                  f"Holm p {c['p_holm']:.4f}  {c['verdict']}")


def summary(inputs):
    meds = {arm: float(np.median(accuracies(arm, inputs))) for arm in ARMS}
    best = max(ARMS, key=lambda arm: meds[arm])
    return best, meds, {arm: compared(best, arm, inputs) for arm in ARMS if arm != best}


for inputs in INPUTS:
    best, meds, vs = summary(inputs)
    print(f"\n{inputs} inputs: highest median {best} ({100 * meds[best]:.1f}%)")
    for arm, c in vs.items():
        word = {"a beats b": "beats", "equivalent": "is equivalent to", "cannot tell": "cannot tell from",
                "b beats a": "is beaten by"}[c["verdict"]]
        print(f"  {best} {word} {arm} ({100 * meds[arm]:.1f}%): {100 * c['median_difference']:+.1f} points "
              f"[{100 * c['ci95'][0]:+.1f}, {100 * c['ci95'][1]:+.1f}], Holm p {c['p_holm']:.4f}")

# %% [markdown]
# ## Gain control: what LRN was designed for
#
# Divisive normalization was proposed as gain control: a unit's response
# divided by its neighbours' energy does not grow with the input's contrast.
# Each seed model above, trained at one contrast (gain 1), is tested on the
# test images multiplied by a gain from 0.1x to 10x, and with a random gain per
# image (log-uniform in 0.1x..10x). BatchNorm is tested twice: in inference
# mode (its moving statistics: a fixed affine map, through which the input's
# scale passes) and with batch statistics (`batchnorm [batch stats]`: each
# batch of 64 normalized by its own statistics, which a uniform gain does
# not change), so that BatchNorm itself and its inference-mode statistics
# are told apart. LRN is computed per sample, at test time as in training.
#
# How much of the gain an LRN layer removes depends on alpha * S / k (S the
# window's sum of squares): where it is << 1 the layer is a constant
# rescaling by k^-beta and its output follows the gain; where it is >> 1 the
# output scales as gain^(1 - 2 beta): gain-invariant for beta = 0.5
# (`lrn_gain_invariant`: g*a / (k + g^2 * alpha * S)^0.5 tends to
# a / sqrt(alpha * S) only where g^2 * alpha * S >> k), inverted for
# beta = 0.75. The exponent of norm1's output rms against the gain is fitted
# over the **whole** 0.1x-10x range, and also from 0.1x to 1x and from 1x to
# 10x, since it need not be the same on both sides.

# %%
ROWS = [(arm, "inference") for arm in ARMS] + [("batchnorm", "batch_statistics")]


def row_name(arm, mode):
    return arm if mode == "inference" else f"{arm} [batch stats]"


def gain_values(arm, inputs, mode, g, key="test_accuracy"):
    return [r[key] for r in R["gain"] if r["arm"] == arm and r["inputs"] == inputs and r["mode"] == mode
            and r["test_gain"] == g]


def exponent(arm, inputs, mode, lo=min(TEST_GAINS), hi=max(TEST_GAINS)):
    """Least-squares slope of log(median norm1 rms) against log(gain), over the gains in [lo, hi]."""
    gs = [g for g in TEST_GAINS if lo <= g <= hi]
    rms = [np.median([v for v in gain_values(arm, inputs, mode, g, "norm1_rms") if v is not None]) for g in gs]
    return float(np.polyfit(np.log(gs), np.log(rms), 1)[0])


def alpha_s_over_k(arm, inputs, g, layer="norm1"):
    return float(np.median([v[layer] for v in gain_values(arm, inputs, "inference", g, "alpha_sum_over_k")
                            if v[layer] is not None]))


fig, axes = plt.subplots(1, len(INPUTS), figsize=(7.5 * len(INPUTS), 4.8), sharey=True, squeeze=False)
row_colors = {**colors, "batchnorm [batch stats]": "k"}
for ax, inputs in zip(axes[0], INPUTS):
    for i, (arm, mode) in enumerate(ROWS):
        name, med = row_name(arm, mode), []
        for g in GAIN_KEYS:
            acc = gain_values(arm, inputs, mode, g)
            xpos = np.log10(g) if g != "random" else 1.6
            ax.plot(xpos + (i - len(ROWS) / 2) * 0.02 + np.zeros(len(acc)), acc, "o", ms=2.5,
                    color=row_colors[name], alpha=0.6)
            med.append(np.median(acc))
        ax.plot(np.log10(TEST_GAINS), med[:-1], "--" if mode != "inference" else "-", color=row_colors[name],
                label=name)
        ax.plot([1.6], [med[-1]], "D", color=row_colors[name], mec="k")
    ax.set_xticks(list(np.log10(TEST_GAINS)) + [1.6], [f"{g:g}x" for g in TEST_GAINS] + ["random\nper image"])
    ax.set_xlabel("test input gain (trained at 1x)")
    ax.set_title(f"{inputs} inputs: test accuracy per seed (line: median)")
axes[0, 0].set_ylabel("test accuracy")
axes[0, 0].legend(fontsize=8)
fig.tight_layout()
plt.show()

print("median test accuracy at each gain; exponent of norm1's output rms vs gain (1: follows the gain, "
      "0: removes it), fitted over 0.1x-10x, 0.1x-1x and 1x-10x")
print(f"{'':12} {'':26} " + " ".join(f"{str(g):>6}" for g in GAIN_KEYS) + "   exp all   low  high")
GAIN_TABLE = {}
for inputs in INPUTS:
    for arm, mode in ROWS:
        accs = [float(np.median(gain_values(arm, inputs, mode, g))) for g in GAIN_KEYS]
        e = [exponent(arm, inputs, mode), exponent(arm, inputs, mode, hi=1.0), exponent(arm, inputs, mode, lo=1.0)]
        GAIN_TABLE[(row_name(arm, mode), inputs)] = dict(zip(GAIN_KEYS, accs), exponent=e[0], exponent_low=e[1],
                                                         exponent_high=e[2])
        print(f"{inputs:12} {row_name(arm, mode):26} " + " ".join(f"{a:6.3f}" for a in accs)
              + "   " + " ".join(f"{x:+5.2f}" for x in e))
print("\nmedian alpha*S/k of the LRN layers per test gain (norm1 / norm2; << 1: linear, >> 1: divisive):")
for inputs in INPUTS:
    for arm in [a for a in ARMS if a.startswith("lrn")]:
        print(f"{inputs:12} {arm:18} " + "  ".join(
            f"{g:g}x {alpha_s_over_k(arm, inputs, g):.3g}/{alpha_s_over_k(arm, inputs, g, 'norm2'):.3g}"
            for g in TEST_GAINS))

# %% [markdown]
# ## Why LRN fell out of use
#
# * **AlexNet** (Krizhevsky, Sutskever & Hinton, "ImageNet Classification
#   with Deep Convolutional Neural Networks", NIPS 2012, Sec. 3.3) reports
#   that response normalization lowered its ImageNet top-1 and top-5 error
#   rates by 1.4 and 1.2 points: a modest gain, measured at 2012 scale
#   without batch normalization.
# * **VGG** (Simonyan & Zisserman, "Very Deep Convolutional Networks for
#   Large-Scale Image Recognition", arXiv:1409.1556, 2014; ICLR 2015,
#   Sec. 4.1 and Table 3): their configuration A with one LRN layer added
#   (A-LRN) was no better than A without it (top-1 validation error 29.7% vs
#   29.6%), and the deeper configurations B to E leave normalization out.
# * **Batch normalization** (Ioffe & Szegedy, "Batch Normalization:
#   Accelerating Deep Network Training by Reducing Internal Covariate Shift",
#   ICML 2015) normalizes each channel with mini-batch statistics and a
#   learned scale and shift, and lets networks train with much higher
#   learning rates; the BN-Inception network of that paper drops LRN
#   (Sec. 4.2.1), and later architectures (ResNet and on) use batch
#   normalization where AlexNet had LRN.
# * **Per-sample relatives**: layer normalization (Ba, Kiros & Hinton,
#   "Layer Normalization", arXiv:1607.06450, 2016) and group normalization
#   (Wu & He, "Group Normalization", ECCV 2018) compute their statistics
#   within each sample, as LRN does and batch normalization does not: layer
#   normalization over all the units of a layer, group normalization over
#   groups of channels (and the pixels). Both subtract the mean, divide by
#   the standard deviation and apply a learned scale and shift, so they do
#   not depend on the batch.
# * **Counterpoint**: Miller, Chung & Miller, "Divisive Feature Normalization
#   Improves Image Recognition Performance in AlexNet" (ICLR 2022), learn the
#   parameters of a divisive normalization across features with an
#   exponential window, after the ReLU of all five convolutional layers. From
#   their abstract: "Divisive normalization always improved performance for
#   models with batch or group or no normalization, generally by 1-2
#   percentage points, on both the CIFAR-100 and ImageNet databases." This
#   notebook's `lrn_learned` arm is the layer of that kind that ships here
#   (README, "Learned LRN"), at the two LRN positions of AlexNet.
#
# ## What this run shows
#
# Written from the committed offline run (the numbers are those printed
# above; the run took 2,647 s until the records were written, on 2 CPU
# cores at a load average of 8.0 when it started; the conclusions below
# were written from those outputs while the same kernel waited before its
# last cell, so the time that cell prints includes that wait). Each statement is
# also a `claim` in the next cell, checked against the records (p-values
# re-derived from the seeds with SciPy's exact permutation test, Holm's
# correction recomputed), so a rerun whose numbers no longer support it
# fails there. At `ci` scale the cell checks nothing (the tests check the
# records' structure). This execution ran on keras-lrn as it was before
# the refactor that merged the fixed and learned LRN computations into one;
# on later code the LRN arms can differ from these records in
# floating-point detail, and so seed by seed.
#
# **Robustness to that.** A referee reran every LRN arm's ten test seeds at
# their recorded rates with this notebook's `train_run` on the refactored
# code (commit aef85f0), and `examples/rerun_lrn_arms.py` recomputed this
# notebook's statistics on those runs beside the recorded `none` and
# `batchnorm` runs, which reproduce bit for bit
# (`results/03_rerun_current_code.json`). 40 of the 100 LRN reruns gave the
# recorded test accuracy; the others moved by 0.56 points (median) and at
# most 6.1. Two conclusions below did **not** survive, and are marked
# *fragile*: `lrn_across` over `lrn_gain_invariant` on raw inputs (+1.2,
# Holm p 1.000 on the rerun) and `lrn_across` equivalent to `none` on
# standardized inputs (the rerun's 90% interval of `none - lrn_across`,
# -0.6 to +5.7 points, is not within its +-4.1: "cannot tell"). Everything
# else held: BatchNorm beats every arm on both inputs (Holm p <= 0.027),
# four LRN arms beat `none` on raw inputs (Holm p <= 0.019, +8.8 to +10.0),
# `lrn_learned` against `none` stays not significant (Holm p 0.105), and no
# LRN arm beats `none` on standardized inputs.
#
# **The protocol held.** Every chosen learning rate is interior (both
# neighbours swept and scored lower; up to 2 widening steps were needed;
# for `lrn_across` on standardized inputs only through the tie-break on the
# mean: its median validation accuracy ties at 0.03 and 0.1),
# chosen by the median of 3 sweep seeds; the rerun of seed 0 of each of the
# 14 arm-input pairs gave identical validation accuracy, test accuracy and
# final loss. One of the 140 test runs failed to train (`lrn_within_term`,
# raw inputs, 10.3%). BatchNorm with momentum 0.9 is configured for these
# 102-step runs: its moving statistics match the training set's (variance
# ratio 0.99 to 1.01, mean offset 0.02 to 0.04 sd, medians over seeds; per
# seed 0.91 to 1.06 and at most 0.074 sd) and every seed's
# inference-mode accuracy is within 2 points of its accuracy with batch
# statistics.
#
# **Raw inputs** (AlexNet's convention):
#
# * **BatchNorm wins**: highest median (96.8%), and it beats every other
#   arm after Holm's correction: +2.4 points over `lrn_across` (Holm
#   p = 0.028), +2.6 over `lrn_within_caffe` (0.030), +3.2 over
#   `lrn_learned` (0.0071), +4.6 over `lrn_within_term` (0.0015), +4.9 over
#   `lrn_gain_invariant` (0.0002), +12.5 over `none` (0.0002).
# * **LRN beats no normalization after 6 epochs** (it trains faster; the
#   median final training loss is 1.23 for `none`, 0.41 to 0.62 for the LRN
#   arms): `lrn_across` +10.1 points (Holm
#   p = 0.0002), `lrn_within_caffe` +9.9 (0.0019), `lrn_within_term` +7.9
#   (0.019), `lrn_gain_invariant` +7.6 (0.0004) over `none` (84.3%, at its
#   own interior rate 3e-4). `lrn_learned`'s +9.3 does not survive the
#   correction (Holm p = 0.085).
# * **Where the data cannot tell:** among the LRN arms, no pair differs
#   after correction except `lrn_across` over `lrn_gain_invariant` (+2.5,
#   Holm p = 0.028; *fragile*: gone on the rerun above). Holm's correction runs over the 21 pairs of each
#   input; over both inputs' 42 tests three raw-input wins would not survive
#   (BatchNorm over `lrn_across` and over `lrn_within_caffe`, and this one:
#   Holm p 0.061, 0.070 and 0.061), so treat them as borderline. The records' verdict "equivalent" on raw inputs means
#   only "within +-18.7 points", the smallest difference this design can
#   detect there (wide because the one failed seed inflates the pooled
#   spread): it rules out nothing of the size that matters here.
#
# **Standardized inputs:**
#
# * **BatchNorm wins**: highest median (97.2%), +2.1 points over `none`
#   (Holm p = 0.025) and +3.6 to +6.1 over the LRN arms (Holm p <= 0.0004).
# * **LRN adds nothing measurable**: no LRN arm beats `none`; `none`'s
#   median is 1.5 to 4.0 points *above* every LRN arm's, but no difference
#   survives Holm's correction. `lrn_across` is equivalent to `none` within
#   +-3.6 points (the design's smallest detectable difference here;
#   *fragile*: "cannot tell" on the rerun above); for the
#   other four LRN arms the data cannot tell.
#
# **Gain control.**
#
# * **No normalization is as flat as gain-invariant LRN on raw inputs**:
#   both medians stay within 1 point over every test gain and random per-image
#   contrast (`none` 84-85%, `lrn_gain_invariant` 92%). Without its biases
#   a ReLU network is positively homogeneous (scaling the input scales every
#   activation and logit and keeps the argmax); its biases break this where
#   activations are small (on standardized inputs at 0.1x `none` drops to
#   75%), which raw pixels at these gains do not reach. So flat accuracy under contrast
#   needs no LRN here; what divisive normalization changes is the scale of
#   what each layer passes on (`none`'s norm1 output follows the gain,
#   exponent 1.00).
# * **The beta-0.5 arm's invariance holds only where g^2 * alpha * S >> k.**
#   On raw inputs its alpha * S / k at `norm1` is above 1,000 at every gain
#   (4.7e3 at 0.1x, 4.7e5 at 1x), and its output does not follow the gain
#   (exponent 0.00 over 0.1x-10x). On standardized inputs alpha * S / k is
#   90 at 1x but 0.92 at 0.1x, where k = 0.01 matters again: the exponent
#   over the whole range is 0.12, 0.24 from 0.1x to 1x against 0.02 from 1x
#   to 10x, and accuracy drops to 43% at 0.1x (91% at 1x), *below* `none`'s
#   75% there.
# * **BatchNorm itself is not the problem at test gains; its frozen
#   statistics are.** In inference mode it is at chance at 0.1x on both
#   inputs; normalizing each test batch by its own statistics, it keeps 94%
#   or more at every uniform gain. Under random per-image contrast neither
#   mode helps (72% or less on both inputs): one batch mixes gains.
# * **The paper-constant LRN arms** (`lrn_across`, `lrn_within_term`,
#   `lrn_within_caffe`, and `lrn_learned`, which starts from the paper's
#   constants) **on raw inputs** reach their divisive
#   regime only at large gains (alpha * S / k at `norm1` of 2 to 84 at 10x,
#   0.02 to 0.84 at 1x), where their output grows more slowly than the
#   input (or falls: norm1 exponents from 1x to 10x of -0.13 to +0.45);
#   each loses 8 to 33 points from 1x to 10x, where `none`
#   loses nothing. On standardized inputs they are close to linear
#   (alpha * S / k below 0.04 at every gain, exponent 0.89 to 1.00 over the
#   whole range), yet `lrn_across` and `lrn_within_term` fall to chance at
#   0.1x, where `none` keeps 75%: since the layer is nearly a fixed rescaling
#   there, this comes from the rest of the trained network (they trained at
#   lr 0.1, `none` at 0.03), not from the division; not tested further.
#
# **So, does LRN still matter?** Per input convention, on this problem: with
# raw pixels, the LRN arms beat no normalization by 7.6 to 10.1 points
# (the learned variant's +9.3 is not significant after
# correction), and BatchNorm configured for the run's length beats every LRN
# arm by 2.4 to 4.9 points; with standardized inputs LRN adds nothing
# measurable over no normalization (for `lrn_across` within +-3.6 points
# on this run but not on the rerun; the others cannot be told apart from it) and BatchNorm beats everything.
# Where the data cannot tell: the LRN variants against each other, and
# `lrn_learned` against `none` on raw inputs. Gain invariance needs the
# divisive regime (beta = 0.5, g^2 * alpha * S >> k), which the paper's
# constants do not reach at unit gain; and on raw inputs an unnormalized
# network's decisions were just as stable under contrast. Digits at 16x16
# and 6 epochs are not ImageNet: before relying on any of this, rerun at
# scale with the full AlexNet (notebook 2, `examples/train_alexnet.py`),
# several seeds per arm, each with its own learning rate.
#
# A reviewer can rerun one arm and seed with the notebook's own functions,
# e.g. `train_run("none", "raw", 3e-4, 0)` (compare with the `seed_runs`
# record; seconds per run), then `evaluate("none", "raw", 0)` for its gain
# records, and `mann_whitney_exact`, `holm`, `compared(a, b, inputs)` for
# the statistics.

# %%
def claim(text, holds):
    """One statement of the text above, checked against the records."""
    print(f"{'ok' if holds else 'FAILS'}: {text}")
    return bool(holds)


def u_statistic(x, y, axis=-1):
    """Mann-Whitney U of x (mid-ranks), vectorized for scipy.stats.permutation_test."""
    ranks = scipy.stats.rankdata(np.concatenate([x, y], axis=axis), axis=axis)
    n = x.shape[axis]
    return np.take(ranks, np.arange(n), axis=axis).sum(axis=axis) - n * (n + 1) / 2


def holm_p(a, b, inputs):
    """a vs b's Holm p, re-derived from the seeds: SciPy's exact permutation
    test (independent of the notebook's enumeration) must reproduce the
    recorded exact p, and Holm's correction is recomputed over the family."""
    x, y = accuracies(a, inputs), accuracies(b, inputs)
    p = scipy.stats.permutation_test((x, y), u_statistic, permutation_type="independent", vectorized=True,
                                     n_resamples=np.inf, alternative="two-sided").pvalue
    c = compared(a, b, inputs)
    assert abs(p - c["p_exact"]) <= 1e-9 + 1e-6 * p, (a, b, inputs, p, c["p_exact"])
    family = [q for q in R["comparisons"] if q["inputs"] == inputs]
    again = dict(zip([frozenset((q["arm_a"], q["arm_b"])) for q in family], holm([q["p_exact"] for q in family])))
    assert abs(again[frozenset((a, b))] - c["p_holm"]) < 1e-12
    return again[frozenset((a, b))]


def beats(a, b, inputs):
    """a beats b: a higher median and a Holm p below 0.05."""
    return np.median(accuracies(a, inputs)) > np.median(accuracies(b, inputs)) and holm_p(a, b, inputs) < ALPHA


def cannot_tell(a, b, inputs):
    return holm_p(a, b, inputs) >= ALPHA


def diff(a, b, inputs):
    return np.median(accuracies(a, inputs)) - np.median(accuracies(b, inputs))


def gain_acc(row, inputs, g):
    return GAIN_TABLE[(row, inputs)][g]


def flat(row, inputs, points):
    values = [gain_acc(row, inputs, g) for g in GAIN_KEYS]
    return max(values) - min(values) <= points / 100


if CI:
    print("ci scale: a smoke run; the conclusions above describe the offline run and are not checked here")
else:
    LRN = [a for a in ARMS if a.startswith("lrn")]
    others = [a for a in ARMS if a != "batchnorm"]
    bn = {i: (accuracies("batchnorm", i), accuracies("batchnorm", i, "batch_statistics_test_accuracy"))
          for i in INPUTS}
    bn_stats = R["batchnorm_statistics"]
    checks = [
        claim("every seed rerun gave identical validation accuracy, test accuracy and final loss",
              all(r["identical"] and r["first"] == r["second"] for r in R["reruns"]) and len(R["reruns"]) == 14),
        claim("one seed run of 140 failed to train (lrn_within_term, raw inputs)",
              [(r["arm"], r["inputs"]) for r in R["seed_runs"] if r["failed"]] == [("lrn_within_term", "raw")]),
        claim("BatchNorm (momentum 0.9): moving statistics match the training set's (variance ratio 0.9-1.1, mean "
              "offset below 0.1 sd, median over seeds, both layers and inputs) and every seed's inference-mode "
              "accuracy is within 2 points of its batch-statistics accuracy",
              all(0.9 < np.median([c[n]["moving_over_true_variance"] for c in bn_stats if c["inputs"] == i]) < 1.1
                  and np.median([c[n]["mean_offset_in_std"] for c in bn_stats if c["inputs"] == i]) < 0.1
                  for i in INPUTS for n in ("norm1", "norm2"))
              and all(np.max(np.abs(bn[i][0] - bn[i][1])) <= 0.02 for i in INPUTS)),
        claim("raw: BatchNorm has the highest median and beats every other arm (Holm p < 0.05), by 2.4 to 4.9 "
              "points over the LRN arms and 12.5 over none",
              all(beats("batchnorm", a, "raw") for a in others)
              and all(0.02 < diff("batchnorm", a, "raw") < 0.05 for a in LRN)
              and 0.12 < diff("batchnorm", "none", "raw") < 0.13),
        claim("raw: lrn_across, lrn_within_caffe, lrn_within_term and lrn_gain_invariant beat none (Holm p < 0.05) "
              "by 7.6 to 10.1 points; lrn_learned's +9.3 does not survive Holm's correction (p 0.085)",
              all(beats(a, "none", "raw") and 0.075 < diff(a, "none", "raw") < 0.102
                  for a in ["lrn_across", "lrn_within_caffe", "lrn_within_term", "lrn_gain_invariant"])
              and cannot_tell("lrn_learned", "none", "raw") and 0.09 < diff("lrn_learned", "none", "raw") < 0.095),
        claim("raw: the data cannot tell the LRN arms apart (Holm p >= 0.05) except lrn_across over "
              "lrn_gain_invariant (+2.5 points)",
              all(cannot_tell(a, b, "raw") for a, b in itertools.combinations(LRN, 2)
                  if {a, b} != {"lrn_across", "lrn_gain_invariant"})
              and beats("lrn_across", "lrn_gain_invariant", "raw")),
        claim("raw: the smallest detectable difference is 18.7 points, wide because one failed seed inflates the "
              "pooled spread; standardized: 3.6 points",
              round(100 * R["detectable"]["raw"]["delta"], 1) == 18.7
              and round(100 * R["detectable"]["standardized"]["delta"], 1) == 3.6),
        claim("standardized: BatchNorm has the highest median and beats every other arm (Holm p < 0.05): "
              "+2.1 points over none, 3.6 to 6.1 over the LRN arms",
              all(beats("batchnorm", a, "standardized") for a in others)
              and 0.02 < diff("batchnorm", "none", "standardized") < 0.022
              and all(0.035 < diff("batchnorm", a, "standardized") < 0.062 for a in LRN)),
        claim("standardized: no LRN arm beats none; none's median is 1.5 to 4.0 points above every LRN arm's, "
              "but no difference survives Holm's correction; lrn_across is equivalent to none within the "
              "design's +-3.6 points, and for the other LRN arms the data cannot tell",
              all(cannot_tell(a, "none", "standardized") and 0.014 < diff("none", a, "standardized") < 0.041
                  for a in LRN)
              and compared("none", "lrn_across", "standardized")["verdict"] == "equivalent"
              and all(compared("none", a, "standardized")["verdict"] == "cannot tell" for a in LRN[1:])),
        # gain control
        claim("gain, raw: none is as flat as the gain-invariant LRN: each within 1 point over every test gain "
              "and random contrast",
              flat("none", "raw", 1) and flat("lrn_gain_invariant", "raw", 1)),
        claim("gain, raw: the gain-invariant LRN's alpha*S/k at norm1 is above 1000 at every gain and its "
              "norm1 exponent over 0.1x-10x is 0.00 (|e| < 0.005)",
              min(alpha_s_over_k("lrn_gain_invariant", "raw", g) for g in TEST_GAINS) > 1000
              and abs(GAIN_TABLE[("lrn_gain_invariant", "raw")]["exponent"]) < 0.005),
        claim("gain, standardized: the gain-invariant LRN's alpha*S/k at norm1 falls below 1 at 0.1x (above 50 at "
              "1x); there it drops to 43% (91% at 1x), below none's 75%; its exponent is 0.12 over the whole range, "
              "0.24 from 0.1x to 1x and 0.02 from 1x to 10x",
              alpha_s_over_k("lrn_gain_invariant", "standardized", 0.1) < 1
              < 50 < alpha_s_over_k("lrn_gain_invariant", "standardized", 1.0)
              and gain_acc("lrn_gain_invariant", "standardized", 0.1) < 0.45
              and gain_acc("lrn_gain_invariant", "standardized", 1.0) > 0.9
              and gain_acc("none", "standardized", 0.1) > 0.74
              and [round(GAIN_TABLE[("lrn_gain_invariant", "standardized")][k], 2)
                   for k in ("exponent", "exponent_low", "exponent_high")] == [0.12, 0.24, 0.02]),
        claim("gain: BatchNorm in inference mode is at chance (below 11%) at 0.1x on both inputs; with batch "
              "statistics it keeps 94% or more at every uniform gain on both",
              all(gain_acc("batchnorm", i, 0.1) < 0.11 for i in INPUTS)
              and all(gain_acc("batchnorm [batch stats]", i, g) >= 0.94 for i in INPUTS for g in TEST_GAINS)),
        claim("gain: under random per-image contrast BatchNorm scores 72% or less in either mode on both inputs "
              "(batch statistics do not help: one batch mixes gains)",
              all(gain_acc(row, i, "random") <= 0.725 for i in INPUTS
                  for row in ("batchnorm", "batchnorm [batch stats]"))),
        claim("gain, raw: the paper-constant LRN arms reach alpha*S/k of 2 to 84 at norm1 at 10x and each loses "
              "8 to 33 points from 1x to 10x, where none loses nothing",
              all(2 < alpha_s_over_k(a, "raw", 10.0) < 85 for a in LRN_PAPER)
              and all(0.075 < gain_acc(a, "raw", 1.0) - gain_acc(a, "raw", 10.0) < 0.34 for a in LRN_PAPER)
              and gain_acc("none", "raw", 10.0) >= gain_acc("none", "raw", 1.0)),
        claim("gain, standardized: the paper-constant LRN arms are close to linear (alpha*S/k below 0.04 at every "
              "gain; norm1 exponent 0.89 to 1.00 over the whole range), yet lrn_across and lrn_within_term fall to "
              "chance (below 10%) at 0.1x, where none keeps 75%",
              all(alpha_s_over_k(a, "standardized", g) < 0.04 for a in LRN_PAPER for g in TEST_GAINS)
              and all(0.885 <= GAIN_TABLE[(a, "standardized")]["exponent"] <= 1.005 for a in LRN_PAPER)
              and all(gain_acc(a, "standardized", 0.1) < 0.1 for a in ["lrn_across", "lrn_within_term"])),
    ]
    print(f"notebook run time until this cell: {time.time() - T_START:.0f} s")
    assert all(checks), "a conclusion in the text no longer holds for these numbers: rewrite the text"
