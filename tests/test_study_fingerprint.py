"""Notebook 03's records are the study the shipped code runs: staleness fails.

Notebook 03 (`examples/03_does_lrn_matter.ipynb`) trains one network per
normalization arm, and training amplifies any change in the bits an LRN
layer computes. Its records (`examples/results/03_does_lrn_matter.json`)
name the commit that trained (`provenance.commit`) and hold the fingerprint
of what every LRN arm's layer computed there
(`examples/study_fingerprint.py`: SHA-256 of the layer's output and
gradient bits on fixed inputs, eager and under XLA).

Which comparison proves what. Bits depend on the code *and* on the machine:
the same code gives the same bits from one process to the next on one
machine and setting, but a CPU model, a core count (TensorFlow's default
thread count is one per core, and XLA's CPU backend partitions loops by
thread count), a thread setting, oneDNN or a TensorFlow/Keras/NumPy version
may change them. (Measured on the records' 2-core machine: these layer bits
stay the same with 1 thread or oneDNN off, while every training run's bits
change; on another CPU nobody has measured them.) So a fingerprint stored on
one machine cannot be compared with one computed on another: that difference
would say "another machine", not "stale records". Instead,

- `test_records_commit_computes_the_shipped_bits` recomputes the
  fingerprint twice *on the machine running the test*, in two fresh
  processes with the records' thread and oneDNN settings: with the package
  (and the arm table, `study_fingerprint.py`) of the records' commit,
  extracted from git history, and with the shipped package. Any difference
  is a difference of code, whatever the machine; the test fails naming the
  arms and the notebook to re-execute. This is the staleness check, and it
  runs everywhere (CI clones the full history; a shallow clone fails with
  the command that fixes it).
- `test_records_fingerprint_is_their_commits` checks that the stored
  fingerprint is what the named commit computes (records made by
  uncommitted code, or a wrong commit, fail here). It can only do so on the
  machine that made the records (same CPU model, core count and
  TensorFlow, Keras and NumPy versions; the records' thread, oneDNN and
  XLA settings are applied to both processes); elsewhere it skips, saying so
  (a reason tests/skips.py lists), rather than pass without comparing.

The study is TensorFlow-only: both tests run in the TensorFlow session.
"""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
RECORDS_NAME = "examples/results/03_does_lrn_matter.json"
RECORDS = os.path.join(ROOT, *RECORDS_NAME.split("/"))
NOTEBOOK = "examples/03_does_lrn_matter.ipynb"
RE_EXECUTE = ("python examples/build_notebooks.py --execute 03_does_lrn_matter "
              "(rewrites examples/03_does_lrn_matter.ipynb and "
              "examples/results/03_does_lrn_matter.json; commit both)")
NO_CHECKOUT = ("needs a git checkout with its history and examples/ (the "
               "records' commit is read from git; not an sdist)")

pytestmark = [
    pytest.mark.tensorflow, pytest.mark.slow,
    pytest.mark.skipif(not (os.path.exists(os.path.join(ROOT, ".git"))
                            and os.path.exists(RECORDS)), reason=NO_CHECKOUT),
]

# Run in a fresh process: the fingerprint of the `keras_lrn` and
# `study_fingerprint` first on sys.path, under the given thread count
# (0: TensorFlow's default), with what it ran on.
DRIVER = textwrap.dedent("""
    import json, os, sys
    threads, expected = int(sys.argv[1]), os.path.realpath(sys.argv[2])
    import tensorflow as tf
    if threads:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
    import keras, numpy
    import keras_lrn, study_fingerprint
    for module in (keras_lrn, study_fingerprint):
        assert os.path.realpath(module.__file__).startswith(expected), (
            module.__name__, module.__file__, expected)
    print(json.dumps(dict(
        fingerprint=study_fingerprint.fingerprint(),
        norm_layers=study_fingerprint.NORM_LAYERS,
        versions=dict(tensorflow=tf.__version__, keras=keras.__version__,
                      numpy=numpy.__version__))))
""")


def _strict_json(path, name):
    """The file's JSON; NaN, Infinity and repeated keys are errors."""
    def no_constants(constant):
        raise ValueError(f"{name}: {constant} is not JSON")

    def no_repeats(pairs):
        keys = [k for k, _ in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"{name}: repeated keys {repeated}")
        return dict(pairs)

    with open(path, encoding="utf-8") as file:
        return json.loads(file.read(), parse_constant=no_constants,
                          object_pairs_hook=no_repeats)


def _git(*arguments, check=True):
    result = subprocess.run(["git", *arguments], cwd=ROOT, capture_output=True,
                            text=True)
    if check and result.returncode:
        raise AssertionError(f"git {' '.join(arguments)}: {result.stderr.strip()}")
    return result


def _cpu_model():
    sys.path.insert(0, EXAMPLES)
    try:
        import study_provenance
    finally:
        sys.path.remove(EXAMPLES)
    return study_provenance.cpu_model()


@pytest.fixture(scope="module")
def records():
    """The committed records, checked: strict JSON, a provenance naming a
    commit of this repository's history made without uncommitted changes,
    and a stored fingerprint for every LRN arm."""
    records = _strict_json(RECORDS, RECORDS_NAME)
    provenance = records.get("provenance")
    assert isinstance(provenance, dict) and provenance.get("commit"), (
        f"{RECORDS_NAME} names no commit (provenance.commit): re-execute notebook "
        f"03 ({NOTEBOOK}): {RE_EXECUTE}")
    commit = provenance["commit"]
    assert provenance.get("uncommitted_changes") is False, (
        f"the records were trained with uncommitted_changes="
        f"{provenance.get('uncommitted_changes')!r} at commit {commit}: their "
        f"code is in no commit. Re-execute notebook 03 ({NOTEBOOK}) from a "
        f"clean checkout: {RE_EXECUTE}")
    if _git("cat-file", "-e", f"{commit}^{{commit}}", check=False).returncode:
        shallow = _git("rev-parse", "--is-shallow-repository").stdout.strip()
        raise AssertionError(
            f"the records' commit {commit} is not in this clone"
            + (" (a shallow clone: run `git fetch --unshallow`; CI needs the "
               "full history)" if shallow == "true" else
               ": the records name a commit this repository does not hold"))
    assert _git("merge-base", "--is-ancestor", commit, "HEAD",
                check=False).returncode == 0, (
        f"the records' commit {commit} is not in the history of HEAD")
    stored = records.get("fingerprint")
    lrn_arms = [arm for arm in records["settings"]["arms"]
                if arm not in ("none", "batchnorm")]
    assert isinstance(stored, dict) and lrn_arms and all(
        set(stored.get(arm, {})) == {"eager", "xla"} for arm in lrn_arms), (
        f"{RECORDS_NAME}: no eager and XLA fingerprint for every LRN arm "
        f"{lrn_arms}: re-execute notebook 03 ({NOTEBOOK}): {RE_EXECUTE}")
    return records


def _setting_env(provenance):
    """This environment with the records' oneDNN and XLA settings."""
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    onednn = provenance.get("onednn", "")
    if onednn in ("0", "1"):
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn
    else:  # the default, as the records say
        env.pop("TF_ENABLE_ONEDNN_OPTS", None)
    env["XLA_FLAGS"] = provenance.get("xla_cpu_flags", "")
    return env


def _start(directory, provenance):
    """Starts the fingerprint of the `keras_lrn` package and
    `study_fingerprint.py` in `directory` (a fresh process, under the
    records' thread setting)."""
    env = _setting_env(provenance)
    env["PYTHONPATH"] = os.pathsep.join([directory, os.path.join(directory, "examples")])
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(provenance.get("intra_op_threads", 0)),
         directory], cwd=directory, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)


def _result(process, what):
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, f"the fingerprint of {what} failed:\n{stderr[-3000:]}"
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fingerprints(records, tmp_path_factory):
    """{"commit": ..., "shipped": ...}: the driver's output for the package
    and arm table of the records' commit and for the shipped ones, computed
    side by side on this machine."""
    commit = records["provenance"]["commit"]
    old = str(tmp_path_factory.mktemp("records_commit"))
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "keras_lrn",
         "examples/study_fingerprint.py"], cwd=ROOT, capture_output=True)
    assert archive.returncode == 0, (
        f"git archive {commit} keras_lrn examples/study_fingerprint.py: "
        f"{archive.stderr.decode().strip()} (records from before the "
        f"fingerprint existed: re-execute notebook 03 ({NOTEBOOK}): {RE_EXECUTE})")
    archive_path = os.path.join(old, "commit.tar")
    with open(archive_path, "wb") as file:
        file.write(archive.stdout)
    with tarfile.open(archive_path) as tar:  # (git's own archive)
        tar.extractall(old, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
    os.remove(archive_path)
    # the shipped package and script, copied: a process started in the
    # checkout would also see its other folders
    new = str(tmp_path_factory.mktemp("shipped"))
    shutil.copytree(os.path.join(ROOT, "keras_lrn"), os.path.join(new, "keras_lrn"),
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.makedirs(os.path.join(new, "examples"))
    shutil.copy(os.path.join(EXAMPLES, "study_fingerprint.py"),
                os.path.join(new, "examples"))
    provenance = records["provenance"]
    started = {"commit": _start(old, provenance), "shipped": _start(new, provenance)}
    return {key: _result(process, f"the {key} package")
            for key, process in started.items()}


def _differing(a, b):
    """'arm (contexts)' for every arm whose fingerprints differ."""
    out = []
    for arm in sorted(set(a) | set(b)):
        if arm not in a or arm not in b:
            out.append(f"{arm} (only at {'the records' if arm in a else 'shipped'})")
            continue
        contexts = [c for c in ("eager", "xla") if a[arm].get(c) != b[arm].get(c)]
        if contexts:
            out.append(f"{arm} ({', '.join(contexts)})")
    return out


def test_records_commit_computes_the_shipped_bits(records, fingerprints):
    commit = records["provenance"]["commit"]
    old, new = fingerprints["commit"], fingerprints["shipped"]
    differ = _differing(old["fingerprint"], new["fingerprint"])
    table = ("" if old["norm_layers"] == new["norm_layers"] else
             " The arm table (study_fingerprint.NORM_LAYERS) changed.")
    assert not differ, (
        f"notebook 03's records are stale: the package and arm table of their commit "
        f"{commit[:12]} computes other bits than the shipped one for "
        f"{'; '.join(differ)}.{table} Re-execute notebook 03 ({NOTEBOOK}) "
        f"on the shipped code: {RE_EXECUTE}")


def test_records_fingerprint_is_their_commits(records, fingerprints):
    provenance = records["provenance"]
    here = dict(cpu=_cpu_model(), cpu_cores=os.cpu_count(),
                **fingerprints["commit"]["versions"])
    there = dict(cpu=provenance.get("cpu"), cpu_cores=provenance.get("cpu_cores"),
                 **{k: provenance.get("versions", {}).get(k)
                    for k in fingerprints["commit"]["versions"]})
    other = {k: f"{there[k]} there, {here[k]} here" for k in here if here[k] != there[k]}
    if other:
        pytest.skip("the records were made on another CPU or setting, where "
                    f"bits may differ for the same code: {other}")
    differ = _differing(records["fingerprint"], fingerprints["commit"]["fingerprint"])
    assert not differ, (
        f"on this machine and setting (those of the records), the package of "
        f"the records' commit {provenance['commit'][:12]} computes other bits "
        f"than the records hold for {'; '.join(differ)}: the records were not "
        f"made by that commit's code (or the bits depend on something the "
        f"provenance does not name). Re-execute notebook 03 ({NOTEBOOK}): "
        f"{RE_EXECUTE}")
