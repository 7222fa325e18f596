"""The main job, ``examples/train_alexnet.py``, as a command-line tool.

It runs as a user runs it, in a subprocess at its smallest scale: with stdout
redirected to a file (a log: a banner, one plain line per epoch, no control
characters, a summary naming the output folder and each file with its size)
and on a pseudo-terminal (Keras's live progress bar).
"""

import json
import os
import re
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(ROOT, "examples", "train_alexnet.py")

# The job is a TensorFlow one (tf.data pipelines, TensorFlow's device set-up)
# whatever backend a test session selects, and it prints the same lines; the
# TensorFlow session runs it (`@pytest.mark.tensorflow`), the JAX and PyTorch
# sessions would repeat it.

# The smallest real run: 2 epochs (to count the per-epoch lines) on 64 images.
SMALL = ["--scale", "ci", "--epochs", "2", "--train-limit", "64", "--val-limit", "32",
         "--test-limit", "24"]
# the smoke run writes the model only when asked
SAVED = [*SMALL, "--save-model"]
UNITS = {"bytes": 1, "kB": 1e3, "MB": 1e6, "GB": 1e9}


def _env():
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in [ROOT, env.get("PYTHONPATH")] if p)
    env.pop("KERAS_LRN_SCALE", None)
    env.pop("KERAS_LRN_DATASET", None)
    return env


def _import_script():
    sys.path.insert(0, os.path.dirname(SCRIPT))
    try:
        import train_alexnet
    finally:
        sys.path.remove(os.path.dirname(SCRIPT))
    return train_alexnet


def _check_summary(log, out_dir):
    """The summary names the folder and lists each file it holds with its
    size; returns the listed names."""
    lines = log.rstrip("\n").splitlines()
    assert lines[-1].startswith(f"output folder: {out_dir} ("), lines[-1]
    header = [i for i, line in enumerate(lines) if line.startswith("wrote ")]
    assert header and lines[header[-1]].endswith(f" files to {out_dir}:")
    listed = {}
    for line in lines[header[-1] + 1:-1]:
        name, number, unit = re.match(r"  (\S+)\s+([\d.]+) (bytes|kB|MB|GB)  \S", line).groups()
        listed[name] = float(number) * UNITS[unit]
    assert len(listed) == int(lines[header[-1]].split()[1])
    # every file in the folder is listed (no leftover checkpoint or resume
    # state), with the size it has to the printed precision
    assert set(os.listdir(out_dir)) == set(listed)
    for name, printed in listed.items():
        size = os.path.getsize(os.path.join(out_dir, name))
        unit = 1 if size < 1e3 else 1e3 if size < 1e6 else 1e6 if size < 1e9 else 1e9
        assert abs(size - printed) <= 0.05 * unit + 0.5, (name, size, printed)
    return set(listed)


@pytest.mark.tensorflow
def test_log_redirected_to_a_file_is_plain_and_names_what_it_wrote(tmp_path):
    log_path = tmp_path / "job.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.run([sys.executable, SCRIPT, *SAVED], cwd=tmp_path, env=_env(),
                              stdout=log_file, stderr=subprocess.STDOUT, timeout=900)
    raw = log_path.read_bytes()
    log = raw.decode("utf-8")
    assert proc.returncode == 0, log[-3000:]
    for control in (b"\r", b"\x08", b"\x1b"):
        assert control not in raw, f"{control!r} in the log"
    # nothing but the job's own lines: no warnings, no TensorFlow start-up lines
    assert not re.search(r"warn|absl|oneDNN|cpu_feature_guard", log, re.I), log[:3000]

    # the default --out-dir, in the working folder: one folder per scale
    out_dir = str(tmp_path / "alexnet_run" / "ci")
    lines = log.splitlines()
    assert lines[0].startswith("keras-lrn main job")
    banner = lines[:lines.index(next(line for line in lines if line.startswith("data:")))]
    for field, value in [("dataset", "digits"), ("backend", "tensorflow"), ("device", "CPU"),
                         ("versions", f"Keras {keras.__version__}"),
                         ("output folder", out_dir), ("progress", "one line per epoch")]:
        assert any(line.startswith(f"  {field} ") and value in line for line in banner), field

    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"], epochs
    for line in epochs:
        assert re.search(r"  loss [\d.]+ .* val_accuracy [\d.]+ .*  lr [\d.e-]+  [\d.]+ s", line)

    assert _check_summary(log, out_dir) == {
        "alexnet_final.keras", "history.csv", "learning_curves.png", "results.json"}
    results = json.loads((tmp_path / "alexnet_run" / "ci" / "results.json").read_text())
    assert results["output_dir"] == out_dir and results["epochs_run"] == 2
    assert results["reloaded_predictions_match"]
    # digits trains without flips, so the paper's 10 crops are 5 here
    assert results["multi_crop_count"] == 5 and not any("ten_crop" in k for k in results)
    # At this scale accuracy is near chance, so no bound on it is robust.
    # What must hold is the bookkeeping: the reported accuracies are counts
    # out of the 24 test images (not the 32 validation images that drive the
    # schedule), top-1 within top-5; the validation metrics are counts out of 32.
    assert results["evaluated_on"] == "test"
    assert results["images"] == {"train": 64, "validation": 32, "test": 24}
    for crop in ("centre_crop", "multi_crop"):
        top1, top5 = results[f"{crop}_top1"], results[f"{crop}_top5"]
        assert 0.0 <= top1 <= top5 <= 1.0
        for value in (top1, top5):
            assert value * 24 == pytest.approx(round(value * 24))
    history = results["history"]
    for value in history["val_accuracy"] + history["val_top5"]:
        assert value * 32 == pytest.approx(round(value * 32))
    # `loss` is the cross-entropy plus the weight-decay term (LOSS_NOTE): the
    # difference on validation is (5e-4 / 2) * ||w||^2 of the final weights
    import numpy as np

    import keras_lrn  # noqa: F401  (registers the layer for load_model)

    final = keras.models.load_model(tmp_path / "alexnet_run" / "ci" / "alexnet_final.keras")
    squares = sum(float(np.sum(np.square(np.asarray(w, dtype="float64"))))
                  for w in final.weights if w.path.endswith("kernel"))
    decay = history["val_loss"][-1] - history["val_crossentropy"][-1]
    assert decay == pytest.approx(5e-4 / 2 * squares, rel=1e-4)

    # the same command again stops before training, and keeps the results
    before = {name: os.path.getmtime(os.path.join(out_dir, name)) for name in os.listdir(out_dir)}
    again = subprocess.run([sys.executable, SCRIPT, *SMALL], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "--overwrite" in again.stderr, again.stderr
    assert before == {name: os.path.getmtime(os.path.join(out_dir, name))
                      for name in os.listdir(out_dir)}


@pytest.mark.tensorflow
@pytest.mark.skipif(sys.platform == "win32", reason="pseudo-terminals are POSIX")
def test_live_progress_bar_on_a_terminal_for_the_tfds_path(tmp_path):
    import pty

    out_dir = tmp_path / "out"
    args = [sys.executable, SCRIPT, "--dataset", "imagenette", "--mock", "--scale", "ci",
            "--train-limit", "32", "--val-limit", "16", "--out-dir", str(out_dir)]
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stdin=subprocess.DEVNULL,
                            stdout=terminal, stderr=terminal)
    os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # EIO: the job closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert proc.wait(timeout=900) == 0, b"".join(chunks)[-3000:]
    output = b"".join(chunks).decode("utf-8", "replace")
    assert "progress       a live bar (stdout is a terminal)" in output
    assert "\x08" in output or "\r\x1b" in output  # Keras redraws its bar in place
    assert not re.search(r"^epoch \d+/\d+  loss", output, re.M)
    summary = output.replace("\r\n", "\n")
    # a --scale ci smoke run without --save-model writes no model (nor any
    # resume state): the save/load round trip ran in a temporary folder
    assert _check_summary(summary, str(out_dir)) == {
        "history.csv", "learning_curves.png", "results.json"}
    results = json.loads((out_dir / "results.json").read_text())
    assert results["num_classes"] == 10 and results["reloaded_predictions_match"]
    assert results["model_file"] is None
    assert results["multi_crop_count"] == 10  # imagenette trains with flips


def test_only_the_smoke_run_leaves_the_model_out_unless_asked(tmp_path,
                                                             monkeypatch):
    # an empty folder: the README's first command leaves a finished run in
    # the checkout's alexnet_run/, which the job refuses to overwrite
    monkeypatch.chdir(tmp_path)
    train_alexnet = _import_script()
    assert not train_alexnet.parse_config(["--scale", "ci"]).save_model
    assert train_alexnet.parse_config(["--scale", "ci", "--save-model"]).save_model
    assert train_alexnet.parse_config([]).save_model
    assert train_alexnet.parse_config(["--scale", "full"]).save_model


def test_help_lists_every_option_with_its_default():
    train_alexnet = _import_script()
    parser = train_alexnet.build_parser()
    text = parser.format_help()
    options = [a for a in parser._actions if a.option_strings and a.dest != "help"]
    assert len(options) >= 19
    for action in options:
        assert action.option_strings[0] in text
        assert "default:" in (action.help or ""), action.option_strings


def test_fc_biases_follow_the_number_of_classes_at_every_scale():
    """FC_BIAS_NOTE: the paper's bias 1 stalls 10-class training; 1000-class
    ImageNet keeps it (None: the builder's, i.e. the paper's, init)."""
    train_alexnet = _import_script()
    for scale in train_alexnet.SCALES:
        for dataset in ("digits", "imagenette"):
            assert train_alexnet.make_config(dataset, scale).fc_bias == 0.0, (dataset, scale)
        assert train_alexnet.make_config("imagenet2012", scale).fc_bias is None
        assert not train_alexnet.make_config("digits", scale).flip  # mirrored digits change meaning
        assert train_alexnet.make_config("digits", scale, fc_bias=1.0).fc_bias == 1.0


def test_seed_changes_the_initialization_not_the_data_split():
    import numpy as np

    train_alexnet = _import_script()

    def validation_images(**overrides):
        cfg = train_alexnet.make_config("digits", "ci", val_limit=0, **overrides)
        _, val, _, _ = train_alexnet.load_raw(cfg)
        return np.stack([image.numpy() for image, _ in val])

    reference = validation_images(seed=0)
    np.testing.assert_array_equal(validation_images(seed=1), reference)
    assert validation_images(split_seed=1).tobytes() != reference.tobytes()

    # SPLITS_NOTE: training / validation / test partition the 1,797 digits
    # 60/20/20, stratified, and --seed moves none of them
    def splits(**overrides):
        cfg = train_alexnet.make_config("digits", "offline", **overrides)
        *parts, _ = train_alexnet.load_raw(cfg)
        return [(np.stack([x.numpy() for x, _ in part]), np.array([y.numpy() for _, y in part]))
                for part in parts]

    parts = splits()
    assert [len(y) for _, y in parts] == [1077, 360, 360]
    keys = [{image.tobytes() for image in x} for x, _ in parts]
    assert sum(map(len, keys)) == len(set().union(*keys)) == 1797  # disjoint; digits has no duplicates
    for _, y in parts[1:]:
        assert np.bincount(y, minlength=10).min() >= 35  # every class, ~36 each
    for (x, _), (x1, _) in zip(parts, splits(seed=1)):
        np.testing.assert_array_equal(x, x1)

    def conv1_kernel(seed):
        cfg = train_alexnet.make_config("digits", "ci", seed=seed)
        model = train_alexnet.build_model(cfg, num_classes=10)
        return np.asarray(model.get_layer("conv1").kernel)

    assert not np.array_equal(conv1_kernel(0), conv1_kernel(1))


def test_normalization_option_sets_the_layers_after_conv1_and_conv2():
    """--normalization (the notebook's ablation): each choice reaches the
    model, and the default is the paper's LRN."""
    from keras_lrn import LocalResponseNormalization

    train_alexnet = _import_script()
    parser = train_alexnet.build_parser()
    assert parser.parse_args([]).normalization is None
    assert train_alexnet.make_config("digits", "ci").normalization == "lrn"
    with pytest.raises(SystemExit):
        parser.parse_args(["--normalization", "layernorm"])

    def norm_layers(choice):
        args = vars(parser.parse_args(["--scale", "ci", "--normalization", choice]))
        args.pop("overwrite")  # what to do with a previous run's folder: not a Config field
        cfg = train_alexnet.make_config(**args)
        model = train_alexnet.build_model(cfg, num_classes=10)
        return [layer for layer in model.layers
                if isinstance(layer, (LocalResponseNormalization, keras.layers.BatchNormalization))]

    lrn = norm_layers("lrn")
    assert [type(layer) for layer in lrn] == [LocalResponseNormalization] * 2
    assert all(not layer.trainable_weights for layer in lrn)
    assert norm_layers("none") == []
    bn = norm_layers("batchnorm")
    assert [type(layer) for layer in bn] == [keras.layers.BatchNormalization] * 2
    assert [layer.momentum for layer in bn] == [0.9, 0.9]  # set for short runs (batchnorm_note)
    learned = norm_layers("learned")
    assert [type(layer) for layer in learned] == [LocalResponseNormalization] * 2
    assert all(len(layer.trainable_weights) == 4 for layer in learned)



@pytest.mark.parametrize("steps", [102, 238, 510, 5100])
def test_batchnorm_note_quotes_the_runs_steps_and_what_momentum_keeps(steps):
    """The note printed with a BatchNorm run quotes that run's step count and
    the share of the initial moving statistics that Keras's default momentum
    0.99 would still hold after it, 0.99^steps (computed here as
    exp(steps * ln 0.99)), to the 0.1 percent it prints."""
    import math

    import numpy as np

    train_alexnet = _import_script()
    note = train_alexnet.batchnorm_note(steps)
    left = 100 * math.exp(steps * math.log(0.99))
    quoted = f"{left:.1f}%" if left >= 0.05 else "less than 0.1%"
    assert f"after {steps:,} steps, still hold 0.99^{steps} = {quoted} of the initial values" in note
    assert f"(this run: {steps:,} steps)" in note
    # the spans 1/(1-m): ~100 steps for 0.99, ~10 for the 0.9 the layers use
    assert "span the last ~100 steps" in note and "spans the last ~10 steps" in note
    counts = {int(n.replace(",", "")) for n in re.findall(r"([\d,]+) steps", note)}
    assert counts == {steps, 100, 10}, note  # no step count but the run's and the two spans
    assert train_alexnet.batchnorm_note(np.int64(steps)) == note  # a count from NumPy
    for bad in (0, -5, 2.5, None, True):
        with pytest.raises(ValueError, match=f"steps={bad!r}"):
            train_alexnet.batchnorm_note(bad)


# Runs the script as `python examples/train_alexnet.py ARGS` does (its folder
# first on sys.path), then prints its exit status, its output and which of
# the frameworks it imported.
_RUN_AS_SCRIPT = """
import contextlib, io, json, os, runpy, sys
script, args = sys.argv[1], json.loads(sys.argv[2])
sys.argv = [script] + args
sys.path.insert(0, os.path.dirname(script))
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        runpy.run_path(script, run_name="__main__")
        status = 0
    except SystemExit as stop:
        status = stop.code
imported = sorted(name for name in ("tensorflow", "keras", "jax", "torch") if name in sys.modules)
print(json.dumps({"status": status, "stdout": out.getvalue(), "stderr": err.getvalue(),
                  "imported": imported}))
"""


def _as_script(args, cwd):
    proc = subprocess.run([sys.executable, "-c", _RUN_AS_SCRIPT, SCRIPT, json.dumps(args)],
                          cwd=cwd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.splitlines()[-1])


def test_help_answers_before_tensorflow_is_imported(tmp_path):
    result = _as_script(["--help"], tmp_path)
    assert result["status"] == 0
    assert result["stdout"].startswith("usage: train_alexnet.py")
    assert "--overwrite" in result["stdout"]
    assert result["imported"] == []
    # a mistyped option is answered the same way
    result = _as_script(["--scale", "huge"], tmp_path)
    assert result["status"] == 2 and "invalid choice: 'huge'" in result["stderr"]
    assert result["imported"] == []


def test_refuses_to_replace_a_finished_run_before_importing_tensorflow(tmp_path):
    finished = tmp_path / "alexnet_run" / "offline"
    finished.mkdir(parents=True)
    (finished / "results.json").write_text("{}")
    result = _as_script([], tmp_path)  # the default: offline scale
    assert result["status"] == 2
    # the refusal first and alone: one line, no usage block, no flag the
    # user did not pass presented as received
    assert result["stderr"].splitlines() == [
        "train_alexnet.py: alexnet_run/offline (the default output folder of --scale offline) "
        "holds a finished run's results (results.json); pass --overwrite to replace them, "
        "or --out-dir DIR to write to another folder."]
    assert "usage:" not in result["stderr"] and "Received" not in result["stderr"]
    assert result["imported"] == []
    assert (finished / "results.json").read_text() == "{}"
    assert sorted(os.listdir(tmp_path / "alexnet_run")) == ["offline"]


def test_each_scale_and_dataset_has_its_own_output_folder(tmp_path, monkeypatch):
    train_alexnet = _import_script()
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KERAS_LRN_SCALE", raising=False)
    monkeypatch.delenv("KERAS_LRN_DATASET", raising=False)
    folders = {scale: train_alexnet.parse_config(["--scale", scale]).out_dir
               for scale in train_alexnet.SCALES}
    assert folders == {scale: os.path.join("alexnet_run", scale)
                       for scale in train_alexnet.SCALES}
    assert (train_alexnet.parse_config(["--dataset", "imagenette"]).out_dir
            == os.path.join("alexnet_run", "imagenette_offline"))
    assert train_alexnet.parse_config(["--out-dir", "mine"]).out_dir == "mine"

    # a finished ci run leaves the offline folder free, and the other way round
    ci = tmp_path / "alexnet_run" / "ci"
    ci.mkdir(parents=True)
    (ci / "alexnet_final.keras").write_bytes(b"")
    assert train_alexnet.parse_config([]).out_dir == os.path.join("alexnet_run", "offline")
    with pytest.raises(SystemExit) as stop:
        train_alexnet.parse_config(["--scale", "ci"])
    assert stop.value.code == 2
    # --overwrite replaces it; an interrupted run (resume/ present) continues
    assert train_alexnet.parse_config(["--scale", "ci", "--overwrite"]).out_dir == str(
        os.path.join("alexnet_run", "ci"))
    (ci / "resume").mkdir()
    assert train_alexnet.parse_config(["--scale", "ci"]).out_dir == os.path.join("alexnet_run", "ci")
