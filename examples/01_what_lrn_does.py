# %% [markdown]
# # 1. What Local Response Normalization does
#
# **Needs:** keras-lrn with its `[notebooks]` extra and a backend
# (`pip install tensorflow-cpu -e ".[notebooks]"`); a few seconds on a CPU.
# PyTorch and ONNX Runtime (`onnx`, `onnxruntime`, in the `[test]` extra) are
# optional: the last section compares with them where they are installed,
# and says which comparisons it skipped where they are not.
#
# This notebook shows what `keras_lrn.LocalResponseNormalization` computes,
# on a real photograph (`china.jpg`, which ships inside scikit-learn, so
# nothing is downloaded), passed through a bank of oriented filters as a
# stand-in for a first conv layer.
#
# **Settings.** The first code cell reads `KERAS_LRN_SCALE`:
# `ci` (64-pixel image, used by the test suite), `offline` (default,
# 160 pixels) or `full` (227 pixels, AlexNet's input size). The committed
# outputs come from the run labelled in that cell.
#
# ## The formula
#
# For an activation $a_c(x, y)$ in channel $c$, LRN returns
#
# $$b_c(x,y) = \frac{a_c(x,y)}{\Big(k + \alpha \sum_{j \in W(c,x,y)} a_j^2\Big)^{\beta}}$$
#
# * `mode="across_channels"` (AlexNet, Caffe `ACROSS_CHANNELS`): the window
#   $W$ is the $n$ channels centred on $c$ at the same pixel
#   ($c-\lfloor n/2\rfloor \dots c+\lfloor (n-1)/2 \rfloor$, zero-padded at the ends).
# * `mode="within_channel"` (Caffe `WITHIN_CHANNEL`): the window is an
#   $n \times n$ spatial neighbourhood in channel $c$ alone.
#
# `alpha` multiplies **each term** of the sum, as in the AlexNet paper
# (Krizhevsky et al., 2012, Sec. 3.3: $n=5$, $k=2$, $\alpha=10^{-4}$,
# $\beta=0.75$) and `tf.nn.local_response_normalization`. Caffe, PyTorch and
# ONNX divide their `alpha` by the window size; the `from_*` constructors
# convert (see the table at the end).

# %%
import os
import platform

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
SCALE = os.environ.get("KERAS_LRN_SCALE", "offline")  # "ci" | "offline" | "full"
IMAGE_SIZE = {"ci": 64, "offline": 160, "full": 227}[SCALE]

from quiet_tensorflow import import_tensorflow, quietly  # without TensorFlow's start-up lines on stderr

tf = import_tensorflow()
tf.get_logger().setLevel("ERROR")  # no retracing warnings: the cells below call layers on new shapes on purpose
import keras
import matplotlib.pyplot as plt
import numpy as np

from keras_lrn import LocalResponseNormalization

plt.rcParams["figure.dpi"] = 72  # keeps the notebook's figures (PNG) at about 1 MB in all

n_gpus = len(quietly(lambda: tf.config.list_physical_devices("GPU")))
print(f"settings: KERAS_LRN_SCALE={SCALE!r}, image height {IMAGE_SIZE} px")
print(f"machine: {platform.platform()}, {os.cpu_count()} CPU cores, GPUs: {n_gpus}")
print(f"keras {keras.__version__} (backend {keras.backend.backend()}), "
      f"tensorflow {tf.__version__}")

# %% [markdown]
# ## A real photograph through a bank of oriented filters
#
# 32 zero-mean Gabor filters (11x11, like AlexNet's conv1), ordered by
# orientation so that neighbouring channels respond to similar edges; that
# ordering is what makes "across channels" meaningful. Pixels stay in the
# 0..255 range minus the mean, as in AlexNet: LRN's effect depends on the
# scale of its input (with $k=2$, $\alpha=10^{-4}$ the sum must reach
# $\sim 2\cdot10^4$, i.e. activations of ~60, before the denominator moves).
#
# **Borders.** A convolution with zero ("same") padding surrounds a
# mean-subtracted image with a frame of the mean colour: wherever the image
# is darker or brighter than its mean, the frame is an artificial edge, and
# every edge filter responds to it, along the whole border. The photo is
# therefore padded by reflection (`np.pad(..., mode="reflect")`, then a
# "valid" convolution). The cell prints, for both paddings, the mean
# activation and LRN's gain $b/a$ in the outer 2-pixel frame relative to the
# interior. With zero padding the frame's activations are well above the
# interior's, and LRN, which divides them only slightly more, keeps the
# bright frame: that was the bright border of earlier versions of this
# notebook. With reflection padding the artificial edge is gone. LRN then
# has a border effect of its own, visible in its gain: it sums over a
# zero-padded window, so within a channel a border unit's 5x5 window holds
# only 3x5 (corners 3x3) real neighbours and is divided less. Across
# channels there is no spatial window; its higher gain in the frame only
# reflects the frame's weaker activations (weak units are divided less).

# %%
from sklearn.datasets import load_sample_image

photo = load_sample_image("china.jpg").astype("float32")  # (427, 640, 3)
w = int(round(IMAGE_SIZE * photo.shape[1] / photo.shape[0]))
image = tf.image.resize(photo[None], (IMAGE_SIZE, w)).numpy()
image = image - image.mean(axis=(0, 1, 2))


def gabor_bank(n_filters=32, size=11, wavelength=5.0, sigma=2.5):
    r = np.arange(size) - size // 2
    yy, xx = np.meshgrid(r, r, indexing="ij")
    kernels = []
    for theta in np.linspace(0, np.pi, n_filters, endpoint=False):
        u = xx * np.cos(theta) + yy * np.sin(theta)
        g = np.exp(-(xx**2 + yy**2) / (2 * sigma**2)) * np.cos(2 * np.pi * u / wavelength)
        g -= g.mean()
        kernels.append(g / np.linalg.norm(g))
    k = np.stack(kernels, -1)[:, :, None, :] / 3.0  # luminance: same on R, G, B
    return np.repeat(k, 3, axis=2).astype("float32")


def feature_maps(padding):
    """ReLU(conv) with the Gabor bank; the image padded by 5 pixels with
    `padding` ("constant": zeros, i.e. the mean colour; "reflect")."""
    padded = np.pad(image, ((0, 0), (5, 5), (5, 5), (0, 0)), mode=padding)
    return keras.ops.convert_to_numpy(keras.ops.relu(keras.ops.conv(padded, gabor_bank(), padding="valid")))


across = LocalResponseNormalization()  # paper defaults: n=5, k=2, alpha=1e-4, beta=0.75
within = LocalResponseNormalization(size=5, mode="within_channel")
frame = np.zeros(image.shape[1:3], bool)
frame[:2], frame[-2:], frame[:, :2], frame[:, -2:] = True, True, True, True
border = {}
print("outer 2-pixel frame / interior:   mean activation   gain b/a across   gain b/a within")
for padding in ["constant", "reflect"]:
    maps = feature_maps(padding)
    row = [maps[0][frame].mean() / maps[0][~frame].mean()]
    for layer in [across, within]:
        out = keras.ops.convert_to_numpy(layer(maps))
        row.append((out[0][frame].sum() / maps[0][frame].sum()) / (out[0][~frame].sum() / maps[0][~frame].sum()))
    print(f"conv padding {padding!r:11}        {row[0]:8.2f}          {row[1]:8.2f}          {row[2]:8.2f}")
    border[padding] = row
# what the text above says: zero padding brightens the frame; LRN's own
# zero-padded 5x5 window raises the gain at the frame more within a channel
assert border["constant"][0] > 1 > border["reflect"][0] and border["reflect"][2] > border["reflect"][1]

a = feature_maps("reflect")  # ReLU feature maps, (1, H, W, 32)
b_across = keras.ops.convert_to_numpy(across(a))
b_within = keras.ops.convert_to_numpy(within(a))
print("feature maps:", a.shape, f"activation 99th percentile: {np.percentile(a, 99):.1f}")

fig, ax = plt.subplots(figsize=(6, 4))
ax.imshow(((image[0] - image.min()) / np.ptp(image)))
ax.set_title("input: sklearn's china.jpg")
ax.axis("off")
plt.show()

# %%
channels = [0, 8, 16, 24]
rows = [("ReLU(conv)", a), ("LRN across channels", b_across), ("LRN within channel", b_within)]
# 12 maps of 160x240 units: about 180 pixels wide each at the notebook's 72 dpi
fig, axes = plt.subplots(len(rows), len(channels), figsize=(2.6 * len(channels) + 0.8, 1.95 * len(rows)),
                         layout="constrained")
for i, (title, maps) in enumerate(rows):
    vmax = np.percentile(maps[0][..., channels], 99.9)  # one colour scale per row
    for j, c in enumerate(channels):
        im = axes[i, j].imshow(maps[0, :, :, c], cmap="magma", vmin=0, vmax=vmax)
        axes[i, j].set_title(f"{title}\nchannel {c} ({180 * c / 32:.0f} deg)", fontsize=9)
        axes[i, j].axis("off")
    fig.colorbar(im, ax=axes[i, :], fraction=0.02, label="response (brighter clipped)")
plt.show()

# %% [markdown]
# Each row shares one colour scale (its colour bar on the right), so the
# channels of a row compare directly; the rows have different scales. Both
# modes shrink everything (with $k=2$ even a zero neighbourhood divides by
# $2^{0.75}=1.68$), and shrink strong responses more. Across channels, a
# unit is damped by strong responses of *other orientations* at the same
# pixel; within a channel, by strong responses of the *same* filter nearby,
# so isolated edges survive better than textured regions.
#
# ## Per-channel response profile
#
# At the pixel with the strongest response, the 32 channels before and after
# normalization, and the ratio $b/a$ (the "gain"):

# %%
yx = np.unravel_index(np.argmax(a[0].max(-1)), a.shape[1:3])
prof_a, prof_b = a[0][yx], b_across[0][yx]
fig, axes = plt.subplots(1, 2, figsize=(12, 3.2))
axes[0].bar(np.arange(32) - 0.2, prof_a, 0.4, label="before (ReLU)")
axes[0].bar(np.arange(32) + 0.2, prof_b, 0.4, label="after LRN (across)")
axes[0].set_xlabel("channel (orientation)")
axes[0].set_ylabel("response at this pixel")
axes[0].legend()
axes[0].set_title(f"pixel {tuple(int(v) for v in yx)}")
gain = np.divide(prof_b, prof_a, out=np.full_like(prof_a, np.nan), where=prof_a > 0)
axes[1].plot(gain, "o-")
axes[1].axhline(2 ** -0.75, ls="--", c="gray", label="$k^{-\\beta}$ (empty window)")
axes[1].set_xlabel("channel")
axes[1].set_ylabel("b / a")
axes[1].legend()
fig.tight_layout()
plt.show()
mean_gain = b_across.sum() / a.sum()
print(f"mean gain over the whole map: {mean_gain:.3f} (k^-beta = {2 ** -0.75:.3f})")

# %% [markdown]
# ## The effect of each hyperparameter
#
# Left: output of one unit against its input when its neighbours are silent,
# $b = a / (k + \alpha a^2)^\beta$. Right: the gain over the whole feature
# map above. $k$ sets the gain for small inputs ($k^{-\beta}$), $\alpha$
# sets where suppression starts ($a \sim \sqrt{k/\alpha}$), $\beta$ how hard
# it bites (for $\beta = 1/2$ the output saturates at $1/\sqrt{\alpha}$; for
# $\beta > 1/2$ large inputs are pushed *down*), and $n$ how many channels
# compete (so the isolated-unit curves for $n$ coincide; only the gain on
# real maps, where neighbours are active, moves).

# %%
sweeps = {
    "bias k": ("bias", [0.5, 1.0, 2.0, 5.0]),
    "alpha": ("alpha", [1e-5, 1e-4, 1e-3]),
    "beta": ("beta", [0.5, 0.75, 1.0]),
    "size n": ("size", [1, 3, 5, 9]),
}
base = dict(size=5, alpha=1e-4, beta=0.75, bias=2.0)
t = np.linspace(0, 400, 200).astype("float32")
fig, axes = plt.subplots(2, 4, figsize=(16, 6.5))
for j, (label, (key, values)) in enumerate(sweeps.items()):
    gains = []
    for v in values:
        p = dict(base, **{key: v})
        unit = np.zeros((1, 1, len(t), 5), "float32")
        unit[0, 0, :, 2] = t  # one active channel, silent neighbours
        out = keras.ops.convert_to_numpy(LocalResponseNormalization(**p)(unit))[0, 0, :, 2]
        axes[0, j].plot(t, out, label=f"{key}={v}")
        gains.append(keras.ops.convert_to_numpy(LocalResponseNormalization(**p)(a)).sum() / a.sum())
    axes[0, j].set_title(label)
    axes[0, j].set_xlabel("input a")
    axes[0, j].set_ylabel("output b (isolated unit)")
    axes[0, j].legend(fontsize=8)
    axes[1, j].plot([str(v) for v in values], gains, "o-")
    axes[1, j].set_xlabel(key)
    axes[1, j].set_ylabel("gain on the photo's maps")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The output is not monotonic in the input
#
# Write a unit's window sum as its own square plus its neighbours' energy,
# $\sum_{j \in W} a_j^2 = a^2 + E$. Then
#
# $$b(a, E) = \frac{a}{(k + \alpha E + \alpha a^2)^{\beta}}, \qquad
# \frac{\partial b}{\partial a} = \frac{k + \alpha E + (1 - 2\beta)\,\alpha a^2}
# {(k + \alpha E + \alpha a^2)^{\beta + 1}}.$$
#
# For $\beta > 1/2$ the derivative changes sign at
# $a_{peak} = \sqrt{(k + \alpha E) / ((2\beta - 1)\alpha)}$: beyond it, a
# *stronger* input gives a *weaker* output, and the gradient that reaches the
# unit's input has the opposite sign from the one it gets below the peak.
# With the paper's $k=2$, $\alpha=10^{-4}$, $\beta=0.75$, $a_{peak} = 200$
# for silent neighbours, and more when the neighbours are active. (For
# $\beta = 1/2$ the output only saturates; for $\beta < 1/2$ it keeps
# growing.) Left: $b$ over the plane of a unit's own activation and its
# neighbours' energy, with the peak line and, as dots, the units of the
# photo's across-channel feature maps (red: beyond their peak); right: $b$
# against $a$ at the neighbours' energies those units actually see. The cell
# then counts the photo's units beyond their peak, at the photo's contrast
# and at 2x, 4x and 8x that contrast: where the numbers are zero, the
# photo's units all sit on the rising side and LRN is monotonic for them.
# Raising the contrast by $g$ multiplies $a$ by $g$ and $E$ by $g^2$, so the
# peak recedes too: as $g$ grows, a unit ends beyond its peak only if
# $(2\beta - 1) a^2 > E$, i.e. (for $\beta = 0.75$) if its own square is more
# than twice its neighbours' energy. Neighbouring orientation channels
# respond to the same edges, so few units here are such lone winners (the
# last line gives the fraction).

# %%
k_, alpha_, beta_ = 2.0, 1e-4, 0.75
sq = np.pad(a[0].astype("float64") ** 2, ((0, 0), (0, 0), (2, 2)))
energy = sum(sq[..., i:i + a.shape[-1]] for i in range(5)) - a[0].astype("float64") ** 2  # neighbours' E
active = a[0] > 0
own, nbr = a[0][active], energy[active]


def lrn_b(own, nbr):
    return own / (k_ + alpha_ * (nbr + own ** 2)) ** beta_


def a_peak(nbr):
    return np.sqrt((k_ + alpha_ * nbr) / ((2 * beta_ - 1) * alpha_))


beyond = own > a_peak(nbr)
# the layer itself agrees with the formula at these units
assert np.allclose(b_across[0][active], lrn_b(own, nbr), rtol=1e-4, atol=1e-5)
a_max, e_max = 1.3 * max(own.max(), a_peak(0)), np.percentile(nbr, 99.9) * 1.2
A, E = np.meshgrid(np.linspace(0, a_max, 300), np.linspace(0, e_max, 300))
fig, axes = plt.subplots(1, 2, figsize=(14, 5))
im = axes[0].pcolormesh(A, E, lrn_b(A, E), cmap="viridis", shading="auto")
fig.colorbar(im, ax=axes[0], label="output b")
e_line = np.linspace(0, e_max, 100)
axes[0].plot(a_peak(e_line), e_line, "w--", label="peak: $\\partial b/\\partial a = 0$")
axes[0].fill_betweenx(e_line, a_peak(e_line), a_max, color="w", alpha=0.15, hatch="//",
                      label="output falls as a grows")
pick = np.random.default_rng(0).choice(len(own), min(3000, len(own)), replace=False)
axes[0].scatter(own[pick], nbr[pick], s=2, c=np.where(beyond[pick], "red", "k"), label="photo units (sample)")
axes[0].set_xlim(0, a_max)
axes[0].set_ylim(0, e_max)
axes[0].set_xlabel("own activation a")
axes[0].set_ylabel("neighbours' energy E (sum of their a^2)")
axes[0].legend(fontsize=8, loc="upper right")
t_a = np.linspace(0, a_max, 400)
for q in [0, 50, 99]:
    e_q = np.percentile(nbr, q) if q else 0.0
    line, = axes[1].plot(t_a, lrn_b(t_a, e_q), label=f"E = {e_q:.0f} ({q}th pct of the photo's units)")
    axes[1].plot(a_peak(e_q), lrn_b(a_peak(e_q), e_q), "o", color=line.get_color())
axes[1].set_xlabel("own activation a")
axes[1].set_ylabel("output b")
axes[1].set_title("dots: the peak; to its right the output falls")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()
top = own >= np.percentile(own, 99)
print(f"photo units (active, across channels): {beyond.mean():.2%} beyond their peak; "
      f"of the strongest 1% (a >= {np.percentile(own, 99):.0f}): {beyond[top].mean():.1%}")
# the convolution has no bias and ReLU is homogeneous: the photo at contrast g
# gives activations g * a and energies g^2 * E
for g in [2, 4, 8]:
    print(f"at input contrast {g}x: {np.mean(g * own > a_peak(g ** 2 * nbr)):.2%} of the active units "
          f"beyond their peak, {np.mean(g * own[top] > a_peak(g ** 2 * nbr[top])):.1%} of the strongest 1%")
print(f"as the contrast grows without bound, the units with (2 beta - 1) a^2 > E: "
      f"{np.mean((2 * beta_ - 1) * own ** 2 > nbr):.2%}")

# %% [markdown]
# ## Conventions, and converters that produce identical outputs
#
# | Source | Parameters | Window | `alpha` enters as | $k$ |
# |---|---|---|---|---|
# | AlexNet paper (Krizhevsky et al. 2012, Sec. 3.3) | $n=5,\ \alpha=10^{-4},\ \beta=0.75,\ k=2$ | $n$ channels | $\alpha$ per term | 2 |
# | `keras_lrn` (this package) | `size, alpha, beta, bias` | `size` channels (or `size`x`size` pixels) | per term | `bias` (default 2) |
# | TensorFlow `tf.nn.local_response_normalization` | `depth_radius, bias, alpha, beta` | $2r+1$ | per term | `bias` (default 1) |
# | Caffe `LRN` (`bvlc_alexnet`, `bvlc_reference_caffenet`: `local_size=5, alpha=1e-4, beta=0.75`) | `local_size, alpha, beta, k` | `local_size` (or `local_size`²) | `alpha / n` | `k` (default 1) |
# | PyTorch `nn.LocalResponseNorm` | `size, alpha, beta, k` | `size` | `alpha / size` | `k` (default 1) |
# | ONNX `LRN` | `size, alpha, beta, bias` | `size` | `alpha / size` | `bias` (default 1) |
# | cuda-convnet2 layer configs | `size=5, scale=1e-4, pow=0.75, minDiv=2` | `size` | scale divided by size | `minDiv` |
#
# So the published AlexNet numbers disagree: the paper's $k=2$ and
# $\alpha=10^{-4}$ per term, versus Caffe's $k=1$ and
# $10^{-4}/5 = 2\cdot10^{-5}$ per term. `AlexNet(variant="caffenet")`
# uses Caffe's; `LocalResponseNormalization.from_caffe(...)` converts any
# Caffe layer.
#
# Below, one setting (Caffe-style `local_size=5, alpha=1e-4, beta=0.75`,
# with $k=2$) is written five ways with the `from_*` converters, and each is
# compared with the *real* implementation of that framework: PyTorch,
# TensorFlow, ONNX Runtime and Caffe's formula in NumPy (PyTorch and ONNX
# Runtime where they are installed).

# %%
import importlib.util

# PyTorch and ONNX Runtime are optional peers: compared where installed.
HAVE_TORCH = importlib.util.find_spec("torch") is not None
HAVE_ONNXRUNTIME = all(importlib.util.find_spec(m) is not None for m in ("onnx", "onnxruntime"))

x = a[:, ::4, ::4, :].astype("float32")  # (1, h, w, 32) real activations, NHWC
x_nchw = np.transpose(x, (0, 3, 1, 2))

ours = {
    "from_caffe(local_size=5, alpha=1e-4, beta=0.75, k=2)":
        LocalResponseNormalization.from_caffe(local_size=5, alpha=1e-4, beta=0.75, k=2.0),
    "from_torch(5, alpha=1e-4, beta=0.75, k=2)":
        LocalResponseNormalization.from_torch(5, alpha=1e-4, beta=0.75, k=2.0),
    "from_onnx(5, alpha=1e-4, beta=0.75, bias=2)":
        LocalResponseNormalization.from_onnx(5, alpha=1e-4, beta=0.75, bias=2.0),
    "from_tensorflow(depth_radius=2, bias=2, alpha=2e-5, beta=0.75)":
        LocalResponseNormalization.from_tensorflow(depth_radius=2, bias=2.0, alpha=2e-5, beta=0.75),
    "LocalResponseNormalization(5, alpha=2e-5, beta=0.75, bias=2)":
        LocalResponseNormalization(size=5, alpha=2e-5, beta=0.75, bias=2.0),
}
outs = {name: keras.ops.convert_to_numpy(layer(x)) for name, layer in ours.items()}

# Independent references (PyTorch and ONNX Runtime where installed)
refs, skipped = {}, []
if HAVE_TORCH:
    import torch

    ref_torch = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0)(torch.from_numpy(x_nchw)).numpy()
    refs["PyTorch nn.LocalResponseNorm"] = np.transpose(ref_torch, (0, 2, 3, 1))
else:
    skipped.append("PyTorch nn.LocalResponseNorm (torch is not installed)")
refs["tf.nn.local_response_normalization"] = tf.nn.local_response_normalization(
    x, depth_radius=2, bias=2.0, alpha=2e-5, beta=0.75).numpy()
if HAVE_ONNXRUNTIME:
    import onnxruntime as ort
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("LRN", ["x"], ["y"], size=5, alpha=1e-4, beta=0.75, bias=2.0)], "lrn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_nchw.shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(x_nchw.shape))])
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    sess = ort.InferenceSession(onnx_model.SerializeToString(), providers=["CPUExecutionProvider"])
    refs["ONNX Runtime LRN"] = np.transpose(sess.run(None, {"x": x_nchw})[0], (0, 2, 3, 1))
else:
    skipped.append("ONNX Runtime LRN (onnx or onnxruntime is not installed)")
sq = np.pad(x.astype("float64") ** 2, ((0, 0), (0, 0), (0, 0), (2, 2)))
ref_caffe = x / (2.0 + 1e-4 / 5 * sum(sq[..., i:i + x.shape[-1]] for i in range(5))) ** 0.75
refs["Caffe formula (NumPy, float64)"] = ref_caffe

scale = np.abs(ref_caffe).max()
print(f"max |difference| / max |output| (output max {scale:.2f}):")
print(" " * 66 + "".join(f"{r[:14]:>16}" for r in refs))
worst = 0.0
for name, out in outs.items():
    diffs = [np.abs(out - r).max() / scale for r in refs.values()]
    worst = max(worst, max(diffs))
    print(f"{name:66}" + "".join(f"{d:16.1e}" for d in diffs))
assert worst < 1e-5, worst  # the notebook fails (and so does its test) if a converter is off
print(f"\nall five spellings agree with all {len(refs)} references to {worst:.1e} (float32 round-off)")
for reference in skipped:
    print(f"skipped: {reference}")
