"""tools/mutation_score.py: its table applies to the code, and one planted
bug is caught in a copy of the repository (the working tree untouched)."""

import importlib.util
import os
import subprocess
import sys

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
@pytest.mark.tensorflow  # runs once (the entry's tests run under TensorFlow)
def test_one_mutation_is_planted_in_a_copy_and_caught():
    target = os.path.join(ROOT, "keras_lrn", "applications",
                          "_onnx_tensors.py")
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


def test_copy_goes_first_on_pythonpath_and_the_rest_stays(tmp_path,
                                                         monkeypatch):
    """Packages supplied on PYTHONPATH (test peers, keras_lrn itself where
    it is not installed) still import in the planted run, and the copy's
    modules win over theirs."""
    script = _script()
    extra = tmp_path / "extra"
    (extra / "peer_on_pythonpath").mkdir(parents=True)
    (extra / "peer_on_pythonpath" / "__init__.py").write_text("PEER = 1\n")
    (extra / "planted_module.py").write_text("VALUE = 'outside'\n")
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "planted_module.py").write_text("VALUE = 'right'\n")
    (copy / "test_planted.py").write_text(
        "import peer_on_pythonpath\n"
        "import planted_module\n\n\n"
        "def test_value():\n"
        "    assert peer_on_pythonpath.PEER == 1\n"
        "    assert planted_module.VALUE == 'right'\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(extra), ROOT]))
    assert script.python_path(str(copy)).split(os.pathsep) == [
        str(copy), str(extra), ROOT]
    mutation = script.Mutation(
        "planted", "planted_module.py", "VALUE = 'right'",
        "VALUE = 'wrong'", ("test_planted.py",), ("tensorflow", "jax"))
    status, _, detail = script.run(mutation, str(copy))
    assert status == "caught", detail  # not "error": the peer imported
    assert detail.count("1 failed") == 2, detail  # once per backend
    unplanted = script.Mutation(
        "unplanted", "planted_module.py", "VALUE = 'right'",
        "VALUE = 'right' ", ("test_planted.py",))
    status, _, detail = script.run(unplanted, str(copy))
    assert status == "MISSED", detail
    assert (copy / "planted_module.py").read_text() == "VALUE = 'right'\n"


def test_entries_name_their_backends_and_reach_the_issue_30_count():
    script = _script()
    assert len(script.MUTATIONS) >= 35
    for m in script.MUTATIONS:
        assert m.backends and set(m.backends) <= {"tensorflow", "jax",
                                                  "torch"}, m.name
    # each backend's own paths are planted under it
    assert {b for m in script.MUTATIONS for b in m.backends} == {
        "tensorflow", "jax", "torch"}
    listed = subprocess.run(
        [sys.executable, os.path.join(ROOT, "tools", "mutation_score.py"),
         "--list", "--backend", "torch"], capture_output=True, text=True)
    rows = [line for line in listed.stdout.splitlines()
            if line.startswith("| ") and "| mutation |" not in line]
    assert rows and all("| torch |" in row for row in rows), listed.stdout


def test_the_table_plants_bugs_in_every_module_of_the_computation():
    """After code moves (issue 25's split of the kernels, of the value gate
    and of the ONNX reader; issue 26's reader), each module that holds the
    computation, its one table, its one gate or the importer's checks still
    has entries planted in it."""
    script = _script()
    planted_in = {os.path.relpath(script.locate(m)[0], ROOT)
                  for m in script.MUTATIONS}
    for module in ("_operation.py", "_dispatch.py", "_arguments.py",
                   "_value_gate.py", "_formula.py", "_windows.py",
                   "_compilation.py", "_torch_kernels.py", "_jax_export.py",
                   "conventions.py", "applications/_onnx_reader.py",
                   "applications/_onnx_tensors.py",
                   "applications/_onnx_wire.py", "applications/zoo.py"):
        assert f"keras_lrn/{module}" in planted_in, module
