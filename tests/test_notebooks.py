"""Executes the example notebooks and the training script at CI scale.

Everything runs offline: scikit-learn's bundled data and
``tensorflow_datasets.testing.mock_data``. ``KERAS_LRN_SCALE=ci`` shrinks
sizes and steps (each notebook documents the setting in its first cell).
The notebooks contain their own checks (``assert`` cells comparing the
converters with PyTorch / TensorFlow / ONNX Runtime, and the ``.keras``
round trip), so a wrong result fails the test, not just an exception.
"""

import itertools
import json
import os
import re
import sys

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("jupytext")  # examples/build_notebooks.py converts with it

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
NOTEBOOKS = ["01_what_lrn_does", "02_train_alexnet", "03_does_lrn_matter"]

sys.path.insert(0, EXAMPLES)
import build_notebooks  # noqa: E402

# the examples use tf.data (TensorFlow backend)
pytestmark = [pytest.mark.tensorflow, pytest.mark.slow]


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
    if stem == "03_does_lrn_matter":
        _check_lrn_matter_records(kernel_env / "out" / "03_does_lrn_matter.json", committed=False)


def _strict_json(path):
    """The file parsed by a strict JSON parser: NaN, Infinity and -Infinity
    (Python's json extension) are errors."""
    def refuse(token):
        raise ValueError(f"{path}: {token} is not JSON")

    with open(path) as f:
        return json.loads(f.read(), parse_constant=refuse)


def _exact_mann_whitney(x, y):
    """Two-sided exact Mann-Whitney p over every split of the pooled runs
    (mid-ranks for ties), written here independently of the notebook."""
    pooled = list(x) + list(y)
    order = sorted(pooled)
    rank = {v: (order.index(v) + 1 + len(order) - order[::-1].index(v)) / 2 for v in pooled}
    n, m = len(x), len(y)
    centre = n * m / 2
    observed = abs(sum(rank[v] for v in x) - n * (n + 1) / 2 - centre)
    hits = total = 0
    for group in itertools.combinations(range(n + m), n):
        u = sum(rank[pooled[i]] for i in group) - n * (n + 1) / 2
        hits += abs(u - centre) >= observed - 1e-9
        total += 1
    return hits / total


def _holm(p):
    order = sorted(range(len(p)), key=lambda i: p[i])
    out, running = [0.0] * len(p), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        out[i] = running
    return out


def _check_lrn_matter_records(path, committed):
    """Notebook 03's records: strict JSON; every learning rate chosen by the
    median over the sweep seeds and, where the sweep could widen, interior;
    the test seeds; exact and Holm-corrected p-values; the reruns; the
    BatchNorm configuration and its batch-statistics gain rows; alpha*S/k."""
    import numpy as np

    r = _strict_json(path)
    s = r["settings"]
    arms, inputs = s["arms"], s["inputs"]
    assert r["batchnorm"]["momentum"] < 0.99 or r["batchnorm"]["recomputed_statistics"]
    assert len(s["sweep_seeds"]) >= (3 if committed else 2)
    assert len(s["test_seeds"]) >= (10 if committed else 2)
    choices = {(c["arm"], c["inputs"]): c for c in r["choices"]}
    assert set(choices) == {(a, i) for a in arms for i in inputs}
    for (arm, inp), c in choices.items():
        sweep = [q for q in r["sweeps"] if q["arm"] == arm and q["inputs"] == inp]
        rates = sorted({q["lr"] for q in sweep})
        assert rates == c["rates"]
        score = {}
        for lr in rates:
            acc = [q["val_accuracy"] for q in sweep if q["lr"] == lr]
            assert sorted(q["seed"] for q in sweep if q["lr"] == lr) == sorted(s["sweep_seeds"])
            score[lr] = (float(np.median(acc)), float(np.mean(acc)))
        best = max(rates, key=lambda lr: (score[lr], -lr))
        assert c["chosen_lr"] == best
        i = rates.index(best)
        interior = 0 < i < len(rates) - 1 and score[rates[i - 1]] < score[best] > score[rates[i + 1]]
        assert c["interior"] == interior
        if committed:
            assert interior, (arm, inp, rates, score)
        elif not interior:  # the ci sweep may stop at its widening cap, never earlier
            assert c["widenings"] == s["max_widenings"]
        runs = [q for q in r["seed_runs"] if q["arm"] == arm and q["inputs"] == inp]
        assert sorted(q["seed"] for q in runs) == sorted(s["test_seeds"])
        assert all(q["lr"] == best for q in runs)
        for q in r["gain"]:
            if q["arm"] == arm and q["inputs"] == inp and q["mode"] == "inference" and arm.startswith("lrn"):
                # recovered from float32 outputs: values below ~1e-6 can round to 0
                assert all(q["alpha_sum_over_k"][n] >= 0 for n in ("norm1", "norm2"))
    bn_rows = [q for q in r["gain"] if q["mode"] == "batch_statistics"]
    assert {q["arm"] for q in bn_rows} == {"batchnorm"}
    assert {(q["inputs"], q["test_gain"]) for q in bn_rows} == {
        (i, g) for i in inputs for g in s["test_gains"] + ["random"]}
    for inp in inputs:
        family = [c for c in r["comparisons"] if c["inputs"] == inp]
        assert len(family) == len(arms) * (len(arms) - 1) // 2
        for c in family:
            x = [q["test_accuracy"] for q in r["seed_runs"] if q["arm"] == c["arm_a"] and q["inputs"] == inp]
            y = [q["test_accuracy"] for q in r["seed_runs"] if q["arm"] == c["arm_b"] and q["inputs"] == inp]
            assert c["median_difference"] == pytest.approx(np.median(x) - np.median(y))
            if len(x) + len(y) <= 12:  # brute force here; the committed 10 + 10 is checked by the notebook
                assert c["p_exact"] == pytest.approx(_exact_mann_whitney(x, y))
        holm = _holm([c["p_exact"] for c in family])
        assert [c["p_holm"] for c in family] == pytest.approx(holm)
        margin = s["equivalence_margin"]
        for c in family:  # "equivalent" only inside the margin fixed in the settings, by TOST under Holm
            assert c["p_tost_holm"] >= c["p_tost"] - 1e-12
            if c["verdict"] == "equivalent":
                assert c["p_tost_holm"] < 0.05 and -margin < c["ci90"][0] and c["ci90"][1] < margin
        assert [c["p_tost_holm"] for c in family] == pytest.approx(_holm([c["p_tost"] for c in family]))
    assert s["equivalence_margin"] <= 0.03
    for c in r["choices"]:  # a tie's runner-up rate has its test seeds too
        runner = [q for q in r["runner_up_runs"] if q["arm"] == c["arm"] and q["inputs"] == c["inputs"]]
        assert c["close"] == (c["lead_in_val_images"] is not None
                              and c["lead_in_val_images"] <= s["close_images"])
        assert sorted(q["seed"] for q in runner) == (sorted(s["test_seeds"]) if c["close"] else [])
        assert all(q["lr"] == c["runner_up_lr"] for q in runner)
    for key in ("commit", "cpu", "cpu_cores", "intra_op_threads", "inter_op_threads", "versions"):
        assert r["provenance"][key] is not None, key
    assert set(r["fingerprint"]) >= {a for a in arms if a.startswith("lrn")}  # every LRN arm's, at any scale
    assert len(r["reruns"]) >= 1
    for q in r["reruns"]:
        first = next(p for p in r["seed_runs"] if p["arm"] == q["arm"] and p["inputs"] == q["inputs"]
                     and p["seed"] == q["seed"])
        assert q["identical"] and q["first"] == q["second"]
        assert q["first"]["test_accuracy"] == first["test_accuracy"]


def test_committed_lrn_matter_records_meet_the_protocol():
    _check_lrn_matter_records(os.path.join(EXAMPLES, "results", "03_does_lrn_matter.json"), committed=True)


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_committed_notebook_matches_source_and_has_honest_outputs(stem):
    committed = _load(stem)
    source = build_notebooks.to_notebook(os.path.join(EXAMPLES, stem + ".py"))
    cells = lambda nb: [(c.cell_type, c.source) for c in nb.cells]  # noqa: E731
    assert cells(committed) == cells(source), f"{stem}.ipynb is out of date: run build_notebooks.py"
    assert committed.metadata.kernelspec == source.metadata.kernelspec
    cells = [c for c in committed.cells if c.cell_type == "code"]
    counts = [c.execution_count for c in cells]
    assert counts == list(range(1, len(cells) + 1)), "not executed top to bottom in one run"
    assert not any(o.get("output_type") == "error" for c in cells for o in c.outputs)
    text = _text(committed)
    assert "settings: KERAS_LRN_SCALE=" in text and "machine:" in text


NOTEBOOK_MAX_BYTES = 1_500_000


def test_committed_notebooks_are_at_most_1_5_mb():
    """Every committed notebook (outputs and figures included) stays at most
    1.5 MB: figures at a sensible dpi, not megabytes of PNG."""
    import glob

    paths = sorted(glob.glob(os.path.join(EXAMPLES, "*.ipynb")))
    assert {os.path.basename(p)[:-len(".ipynb")] for p in paths} >= set(NOTEBOOKS)
    sizes = {os.path.basename(p): os.path.getsize(p) for p in paths}
    assert {n: s for n, s in sizes.items() if s > NOTEBOOK_MAX_BYTES} == {}, sizes

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


def _markdown(nb):
    """The notebook's prose, whitespace collapsed to single spaces."""
    return " ".join(" ".join(cell.source for cell in nb.cells
                             if cell.cell_type == "markdown").split())


def test_train_alexnet_prose_quotes_its_committed_run():
    """Every number notebook 02's prose quotes from its committed run is
    recomputed from that run's printed outputs (per-epoch validation
    metrics, test accuracies, training time): a re-execution that changes
    them and leaves the prose fails here."""
    committed = _load("02_train_alexnet")
    outputs, prose = _text(committed), _markdown(committed)
    epochs = {int(e): dict(top1=float(a), ce=float(c), val_loss=float(v), lr=float(r))
              for e, a, c, v, r in re.findall(
                  r"epoch +(\d+): top-1 ([\d.]+) +cross-entropy ([\d.]+) +"
                  r"val_loss ([\d.]+) +lr ([\d.e-]+)", outputs)}
    last = max(epochs)
    assert sorted(epochs) == list(range(1, last + 1)) and last == 15

    def pct(epoch):
        return f"{100 * epochs[epoch]['top1']:.1f}%"

    def first_above(level):
        return min(e for e in epochs if epochs[e]["top1"] > level)

    def four(epoch, key):
        return f"{epochs[epoch][key]:.4f}"

    centre, crops = (float(x) for x in re.search(
        r"centre crop: top-1 ([\d.]+).*\n *5 crops.*?: top-1 ([\d.]+)", outputs).groups())
    test_images = int(re.search(r"test split \((\d+) images\)", outputs).group(1))
    seconds = re.search(r"training: \d+ steps, (\d+) s", outputs).group(1)
    decay = [f"{epochs[e]['val_loss'] - epochs[e]['ce']:.4f}" for e in (1, last)]
    printed_decay = re.search(r"weight-decay term .*: epoch 1 ([\d.]+), last epoch ([\d.]+)",
                              outputs).groups()
    cut = [e for e in epochs if e > 1 and epochs[e]["lr"] < epochs[e - 1]["lr"]]
    assert len(cut) == 1 and all(epochs[e]["val_loss"] >= epochs[cut[0] - 3]["val_loss"]
                                 for e in (cut[0] - 2, cut[0] - 1))
    assert epochs[12]["top1"] < epochs[11]["top1"]  # "not monotonic"
    assert epochs[3]["ce"] > epochs[2]["ce"] and epochs[3]["val_loss"] < epochs[2]["val_loss"]
    # the printed decay term is val_loss - cross-entropy (to one unit in the 4th place)
    assert all(abs(float(a) - float(b)) <= 1.5e-4 for a, b in zip(decay, printed_decay))
    quotes = [
        f"chance ({pct(1)}, {pct(2)}, {pct(3)}) for 3 epochs",
        f"first exceeded 20% in epoch {first_above(0.2)}, 50% in epoch {first_above(0.5)} "
        f"and 90% in epoch {first_above(0.9)}",
        f"({pct(11)} in epoch 11, {pct(12)} in epoch 12)",
        f"this run was at {pct(7)} validation top-1 after epoch 7 and {pct(last)} after epoch {last}",
        f"training {seconds} s",
        f"scored {100 * centre:.1f}% top-1 on the {test_images} test images with the centre crop "
        f"and {100 * crops:.1f}% averaging 5 crops",
        f"was at {pct(last)} in the last epoch",
        f"one image is {100 / test_images:.2f} points",
        f"(validation top-1 {pct(1)[:-1]}%, {pct(2)}, {pct(3)})",
        f"divided by 10 once, after epoch {cut[0] - 1} (epochs {cut[0] - 2} and {cut[0] - 1} had no "
        f"lower validation loss than epoch {cut[0] - 3}'s {four(cut[0] - 3, 'val_loss')})",
        f"epochs 1-{cut[0] - 1} trained at {epochs[1]['lr']:g} and epochs {cut[0]}-{last} at "
        f"{epochs[last]['lr']:g}",
        f"({printed_decay[0]} after epoch 1, {printed_decay[1]} after epoch {last})",
        f"final `val_loss` ({four(last, 'val_loss')})",
        f"cross-entropy ended at {four(last, 'ce')}",
        f"in epoch 3 the validation cross-entropy rose ({four(2, 'ce')} to {four(3, 'ce')}) while "
        f"`val_loss` fell ({four(2, 'val_loss')} to {four(3, 'val_loss')})",
    ]
    missing = [quote for quote in quotes if quote not in prose]
    assert not missing, ("notebook 02's prose does not quote its committed run: expected "
                         + "; ".join(repr(q) for q in missing))
