"""keras_lrn/_torch_kernels.py: the PyTorch kernels of a fixed box window
(`in_place` for eager calls, `fused` under `torch.compile`, `formula` and
`onnx_node` in TorchScript's ONNX export), called directly.

Checked against the float64 formula (tests/reference.py), against
`torch.nn.LocalResponseNorm` on its own arguments, with `torch.autograd`'s
finite-difference checks for first and second derivatives, and, for the
ONNX node, with onnxruntime. PyTorch only (the module imports torch).
"""

import io
import warnings

import numpy as np
import pytest

from keras_lrn import _windows
from tests import reference

pytestmark = pytest.mark.torch

KERNELS = ("in_place", "fused", "formula")
# (layer arguments, input shape): odd and even windows on both sides, both
# layouts, within-channel boxes, and windows longer than IN_PLACE_MAX_SIZE
# (summed in doubling widths) and than the axis (clamped)
CASES = [
    (dict(size=5, alpha=1e-2, beta=0.75, bias=2.0), (2, 4, 5, 9)),
    (dict(size=4, alpha=3e-2, beta=0.5, bias=1.0, even_window_side="before",
          data_format="channels_first"), (2, 9, 4, 5)),
    (dict(size=4, alpha=3e-2, beta=1.0, bias=1.0), (2, 3, 4, 9)),
    (dict(size=11, alpha=1e-2, beta=0.6, bias=1.5), (1, 3, 3, 20)),
    (dict(size=40, alpha=1e-3, beta=1.5, bias=1.0,
          data_format="channels_first"), (1, 9, 3, 3)),
    (dict(size=3, alpha=1e-2, beta=0.75, bias=2.0, mode="within_channel"),
     (2, 6, 7, 3)),
    (dict(size=10, alpha=1e-3, beta=0.75, bias=1.0, mode="within_channel",
          data_format="channels_first"), (1, 2, 12, 11)),
    (dict(size=5, alpha=0.0, beta=0.75, bias=2.0), (1, 3, 3, 7)),
    (dict(size=5, alpha=1e-2, beta=0.0, bias=2.0), (1, 3, 3, 7)),
]


@pytest.fixture(scope="module")
def torch():
    import torch

    return torch


@pytest.fixture(scope="module")
def kernels():
    from keras_lrn import _torch_kernels

    return _torch_kernels


def _window(case, shape):
    return _windows.BoxWindow.of(
        shape, case["size"], case.get("mode", "across_channels"),
        case.get("data_format", "channels_last"),
        case.get("even_window_side", "after"))


def _call(kernels, name, x, case, shape):
    return getattr(kernels, name)(x, _window(case, shape), case["alpha"],
                                  case["beta"], case["bias"])


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("case, shape", CASES, ids=str)
def test_float64_equals_the_formula(torch, kernels, name, case, shape):
    x = np.random.default_rng(len(shape) + sum(shape)).uniform(-5, 5, shape)
    y = _call(kernels, name, torch.from_numpy(x), case, shape)
    assert y.dtype == torch.float64
    np.testing.assert_allclose(y.numpy(), reference.lrn(x, **case),
                               rtol=1e-12)


@pytest.mark.parametrize("name", KERNELS)
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32"])
def test_each_dtype_within_its_rounding(torch, kernels, name, dtype):
    case, shape = CASES[0]
    x = np.random.default_rng(3).uniform(-20, 20, shape).astype(
        reference.NUMPY_DTYPES[dtype])
    y = _call(kernels, name, torch.from_numpy(x.astype(np.float32)).to(
        getattr(torch, dtype)), case, shape)
    assert y.dtype == getattr(torch, dtype)
    reference.assert_matches_in_dtype(y.float().numpy(),
                                      reference.lrn(x, **case), dtype)


@pytest.mark.parametrize("size", [5, 4, 1])
def test_in_place_equals_torch_local_response_norm(torch, kernels, size):
    """PyTorch divides alpha by the window and puts an even window's extra
    element before the centre."""
    shape = (2, 8, 3, 4)
    x = torch.from_numpy(np.random.default_rng(size).uniform(0, 10, shape))
    peer = torch.nn.LocalResponseNorm(size, alpha=4e-3 * size, beta=0.75,
                                      k=1.5)(x)
    case = dict(size=size, alpha=4e-3, beta=0.75, bias=1.5,
                data_format="channels_first", even_window_side="before")
    np.testing.assert_allclose(
        _call(kernels, "in_place", x, case, shape).numpy(), peer.numpy(),
        rtol=1e-12)


@pytest.mark.parametrize("name", ["in_place", "fused"])
@pytest.mark.parametrize("case, shape", [CASES[1], CASES[3], CASES[5]],
                         ids=str)
def test_first_and_second_derivatives(torch, kernels, name, case, shape):
    """The hand-written backward, and the autodiff of the formula behind a
    differentiated backward, against finite differences."""
    small = tuple(min(n, 4) if i != 0 else 1 for i, n in enumerate(shape))
    x = torch.from_numpy(np.random.default_rng(5).uniform(-3, 3, small))
    x.requires_grad_(True)

    def function(t):
        return _call(kernels, name, t, dict(case, alpha=0.2), small)

    assert torch.autograd.gradcheck(function, (x,), eps=1e-6, atol=1e-8)
    assert torch.autograd.gradgradcheck(function, (x,), eps=1e-6, atol=1e-7)


def test_window_sum_of_any_reach_equals_a_padded_sum(torch, kernels):
    """out[i] = sum(values[i - before : i + after + 1]) along the axis, zeros
    outside: short reaches add shifted slices, long ones doubling widths,
    reaches beyond the axis (23) change nothing."""
    values = np.random.default_rng(9).normal(size=(2, 23, 3))
    for before in (0, 1, 3, 6, 9, 30):
        for after in (0, 2, 4, 8, 11, 25):
            padded = np.pad(values, [(0, 0), (before, after), (0, 0)])
            expected = sum(padded[:, i:i + 23]
                           for i in range(before + after + 1))
            got = kernels.window_sum(torch.from_numpy(values), (1,), before,
                                     after)
            np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12,
                                       atol=1e-12,
                                       err_msg=f"{before}, {after}")


@pytest.mark.parametrize("data_format, shape", [
    ("channels_first", (2, 8, 4, 5)), ("channels_last", (2, 4, 5, 8))])
def test_onnx_node_is_one_lrn_node_that_onnxruntime_runs(torch, kernels,
                                                         data_format, shape):
    onnx = pytest.importorskip("onnx")
    onnxruntime = pytest.importorskip("onnxruntime")
    case = dict(size=5, alpha=1e-2, beta=0.75, bias=2.0,
                data_format=data_format)
    window = _window(case, shape)

    class Module(torch.nn.Module):
        def forward(self, t):
            return kernels.onnx_node(t, window, 1e-2, 0.75, 2.0)

    buffer = io.BytesIO()
    x = np.random.default_rng(2).uniform(0, 20, shape).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript's
        torch.onnx.export(Module(), (torch.from_numpy(x),), buffer,
                          dynamo=False)
    model = onnx.load_from_string(buffer.getvalue())
    nodes = [node.op_type for node in model.graph.node]
    assert nodes == (["LRN"] if data_format == "channels_first"
                     else ["Transpose", "LRN", "Transpose"])
    (lrn,) = [node for node in model.graph.node if node.op_type == "LRN"]
    attributes = {a.name: onnx.helper.get_attribute_value(a)
                  for a in lrn.attribute}
    # ONNX divides alpha by the window: 5 * 1e-2
    assert attributes == pytest.approx(dict(size=5, alpha=5e-2, beta=0.75,
                                            bias=2.0))
    session = onnxruntime.InferenceSession(buffer.getvalue())
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(output, reference.lrn(x, **case), rtol=1e-5)


def _full_size_writes(torch, numel, run):
    """The ops `run` dispatches that write a new tensor of `numel`
    elements (not views, not in-place or `out=` writes): the eager
    kernel's passes that allocate, each a fresh buffer the size of the
    input."""
    from torch.utils._python_dispatch import TorchDispatchMode

    class Writes(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.ops = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            if (isinstance(out, torch.Tensor) and out.numel() == numel
                    and not func.is_view and not func._schema.is_mutable):
                self.ops.append(func.overloadpacket.__name__)
            return out

    with Writes() as writes:
        run()
    return writes.ops


def test_in_place_kernel_allocates_as_few_full_size_tensors_as_the_formula_needs(
        torch, kernels):
    """AlexNet's beta 0.75 in the eager kernel: the forward allocates the
    squares and `t`, and writes the power and `y` into `t`; where a
    gradient is wanted `t` is kept, its power goes into the squares'
    memory and `y` is new. The backward allocates `upstream * x` and the
    window sum. A table form that needs a copy (the two roots of 0.75 in
    place) or a stored `q` adds a pass over memory and fails here."""
    case, shape = CASES[0]
    x = torch.rand(shape, dtype=torch.float64)
    window = _window(case, shape)

    def call(t):
        return kernels.in_place(t, window, case["alpha"], case["beta"],
                                case["bias"])

    assert _full_size_writes(torch, x.numel(), lambda: call(x)) == ["mul", "add"]
    leaf = x.clone().requires_grad_()
    kept = []
    assert _full_size_writes(torch, x.numel(), lambda: kept.append(call(leaf))) == [
        "mul", "add", "div"]
    upstream = torch.rand_like(x)
    assert _full_size_writes(torch, x.numel(), lambda: torch.autograd.grad(
        kept[0], leaf, upstream)) == ["mul", "clone"]
