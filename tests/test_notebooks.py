"""Executes the example notebooks and the training script at CI scale.

Everything runs offline: scikit-learn's bundled data and
``tensorflow_datasets.testing.mock_data``. ``KERAS_LRN_SCALE=ci`` shrinks
sizes and steps (each notebook documents the setting in its first cell).
The notebooks contain their own checks (``assert`` cells comparing the
converters with PyTorch / TensorFlow / ONNX Runtime, and the ``.keras``
round trip), so a wrong result fails the test, not just an exception.
"""

import os
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
NOTEBOOKS = ["01_what_lrn_does", "02_train_alexnet", "03_does_lrn_matter"]

sys.path.insert(0, EXAMPLES)
import build_notebooks  # noqa: E402

pytestmark = pytest.mark.skipif(
    os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow",
    reason="the examples use tf.data (TensorFlow backend)",
)


@pytest.fixture
def kernel_env(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_LRN_SCALE", "ci")
    monkeypatch.setenv("KERAS_LRN_OUT_DIR", str(tmp_path / "out"))
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in [path, EXAMPLES, ROOT] if p))
    monkeypatch.delenv("KERAS_LRN_DATASET", raising=False)
    return tmp_path


def _load(stem):
    return nbformat.read(os.path.join(EXAMPLES, stem + ".ipynb"), as_version=4)


def _text(nb):
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            if o.get("output_type") == "stream":
                out.append(o["text"])
            elif "data" in o and "text/plain" in o["data"]:
                out.append(o["data"]["text/plain"])
    return "".join(out)


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_notebook_runs_top_to_bottom_at_ci_scale(stem, kernel_env):
    nb = _load(stem)
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(kernel_env)}})
    client.execute()  # raises CellExecutionError on any failing cell / assert
    text = _text(nb)
    assert "settings: KERAS_LRN_SCALE='ci'" in text
    assert "Traceback" not in text


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_committed_notebook_matches_source_and_has_honest_outputs(stem):
    committed = _load(stem)
    source = build_notebooks.to_notebook(os.path.join(EXAMPLES, stem + ".py"))
    code = lambda nb: [c.source for c in nb.cells if c.cell_type == "code"]  # noqa: E731
    assert code(committed) == code(source), f"{stem}.ipynb is out of date: run build_notebooks.py"
    cells = [c for c in committed.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), "not executed top to bottom in one run"
    assert not any(o.get("output_type") == "error" for c in cells for o in c.outputs)
    text = _text(committed)
    assert "settings: KERAS_LRN_SCALE=" in text and "machine:" in text


def test_ten_crops_are_the_papers_crops():
    import numpy as np
    import tensorflow as tf
    import train_alexnet

    img = np.arange(6 * 7 * 3, dtype="float32").reshape(6, 7, 3)
    crops = train_alexnet.ten_crops(tf.constant(img), 4).numpy()
    expected = [img[:4, :4], img[:4, 3:], img[2:, :4], img[2:, 3:], img[1:5, 1:5]]
    expected = expected + [e[:, ::-1] for e in expected]
    np.testing.assert_array_equal(crops, np.stack(expected))


def test_pca_colour_shift_is_small_and_along_eigenvectors():
    import numpy as np
    import tensorflow as tf
    import train_alexnet

    rng = np.random.default_rng(0)
    pixels = rng.normal(size=(5000, 3)) @ np.array([[1.0, 0.5, 0.2], [0, 0.3, 0.1], [0, 0, 0.05]]) * 40 + 120
    pixels = pixels.clip(0, 255).astype("uint8")
    ds = tf.data.Dataset.from_tensor_slices((pixels.reshape(50, 10, 10, 3), np.zeros(50)))
    mean, eigval, eigvec = train_alexnet.colour_statistics(ds, 10)
    cov = np.cov((pixels / 255.0).T)  # independent estimate
    np.testing.assert_allclose(mean, pixels.mean(0), rtol=1e-4)
    np.testing.assert_allclose(np.sort(eigval), np.sort(np.linalg.eigvalsh(cov)), rtol=0.05, atol=1e-5)
    image = tf.zeros((4, 4, 3))
    shifts = np.stack([train_alexnet.pca_colour(image, eigval, eigvec, 0.1).numpy()[0, 0]
                       for _ in range(200)])
    # one colour shift per image, in the span of the top eigenvector mostly,
    # with std ~ 255 * 0.1 * lambda (a few grey levels, not thousands)
    top = eigvec[:, np.argmax(eigval)]
    expected_sd = 255 * 0.1 * eigval.max()
    assert 0.7 * expected_sd < np.std(shifts @ top) < 1.3 * expected_sd
    assert np.abs(shifts).max() < 255


def test_bad_dataset_or_scale():
    import train_alexnet

    with pytest.raises(ValueError, match="dataset='cifar10'"):
        train_alexnet.make_config(dataset="cifar10")
    with pytest.raises(ValueError, match="scale='huge'"):
        train_alexnet.make_config(scale="huge")


def test_output_dir_writes_a_copy_and_leaves_the_committed_notebook(tmp_path):
    """`build_notebooks.py --output-dir DIR NAME` (the user's command, here
    without --execute) writes DIR/NAME.ipynb from the source and does not
    touch examples/NAME.ipynb."""
    committed = os.path.join(EXAMPLES, "01_what_lrn_does.ipynb")
    before = open(committed, "rb").read()
    build_notebooks.main(["--output-dir", str(tmp_path / "nb"), "01_what_lrn_does"])
    assert os.listdir(tmp_path / "nb") == ["01_what_lrn_does.ipynb"]
    copy = nbformat.read(str(tmp_path / "nb" / "01_what_lrn_does.ipynb"), as_version=4)
    source = build_notebooks.to_notebook(os.path.join(EXAMPLES, "01_what_lrn_does.py"))
    assert [c.source for c in copy.cells] == [c.source for c in source.cells]
    assert open(committed, "rb").read() == before
    with pytest.raises(SystemExit):
        build_notebooks.main(["--output-dir", str(tmp_path / "nb"), "04_no_such_notebook"])


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_each_notebook_says_what_it_needs_at_its_top(stem):
    source = build_notebooks.to_notebook(os.path.join(EXAMPLES, stem + ".py"))
    first = source.cells[0]
    assert first.cell_type == "markdown" and "**Needs:**" in first.source, stem
    assert '".[notebooks]"' in first.source
