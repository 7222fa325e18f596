"""tools/mutation_score.py: its table applies to the code, and one planted
bug is caught in a copy of the repository (the working tree untouched)."""

import importlib.util
import os
import subprocess
import sys

import keras
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script():
    spec = importlib.util.spec_from_file_location(
        "mutation_score", os.path.join(ROOT, "tools", "mutation_score.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_entry_applies_exactly_once():
    script = _script()
    names = [m.name for m in script.MUTATIONS]
    assert len(names) == len(set(names))
    stale = {m.name: script.locate(m)[1] for m in script.MUTATIONS
             if script.locate(m)[0] is None}
    assert not stale, f"update these entries' snippets: {stale}"
    for m in script.MUTATIONS:
        assert m.original != m.mutated and m.tests, m.name


def test_stale_entry_is_reported_not_skipped(tmp_path):
    script = _script()
    gone = script.Mutation("gone", "keras_lrn/*.py", "no such code", "x",
                           ("tests",))
    assert script.run(gone, ROOT)[0] == "stale"
    assert script.table([(gone, gone.files, "stale", 0.0, "moved")]).count(
        "| stale |") == 1


@pytest.mark.skipif(not os.path.exists(os.path.join(ROOT, ".git")),
                    reason="copies the repository's files through git "
                           "(a git checkout, not an sdist)")
def test_one_mutation_is_planted_in_a_copy_and_caught():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("runs once, in the tensorflow backend's run of the suite "
                    "(the entry runs its tests under TensorFlow)")
    target = os.path.join(ROOT, "keras_lrn", "applications",
                          "_onnx_reader.py")
    with open(target, "rb") as f:
        before = f.read()
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "mutation_score.py"),
         "--only", "zoo-nan-only"],
        capture_output=True, text=True, timeout=600)
    assert "| zoo-nan-only |" in result.stdout, result.stdout + result.stderr
    assert "| caught |" in result.stdout, result.stdout
    assert "caught/planted: 1/1" in result.stdout
    assert result.returncode == 0
    with open(target, "rb") as f:
        assert f.read() == before  # the working tree is never mutated
