"""tests/skips.py and the conftest hooks behind it: a backend marker
deselects, every skip is a GPU's, a missing optional peer's or a reason the
table lists; any other fails the session, and the counts are printed.

And the map of the suite that those hooks select from: every module of the
package has its test module, named after it, and every other test module is
a listed cross-cutting suite or the tests of a file outside the package."""

import os
import pathlib
import subprocess
import sys
import textwrap

from tests import skips

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_each_kind_of_skip_is_told_apart():
    assert skips.kind("needs a GPU: no gpu device visible to JAX") == "gpu"
    assert skips.kind("could not import 'no_such_peer_pkg': No module "
                      "named 'no_such_peer_pkg'") == "peer"
    assert skips.kind("needs the package 'no_such_peer_pkg' (the [x] "
                      "extra)") == "peer"
    # a backend is a marker, never a skip reason
    assert skips.kind("needs KERAS_BACKEND=torch") is None
    # a peer that is installed is no reason to skip
    assert skips.kind("could not import 'numpy': broken") is None
    assert skips.kind("needs the package 'numpy'") is None
    assert skips.kind("flaky on Tuesdays") is None


def test_an_unlisted_reason_is_reported_and_a_listed_one_is_not():
    recorded = [
        ("tests/test_new.py", "flaky on Tuesdays"),
        ("tests/test_new.py", "flaky on Tuesdays"),
        ("tests/test_new.py", "could not import 'no_such_peer_pkg'"),
        ("tests/test_main_job.py", "pseudo-terminals are POSIX"),
    ]
    (problem,) = skips.unexplained("jax", recorded)
    assert "tests/test_new.py: 2 skipped" in problem
    assert "flaky on Tuesdays" in problem
    lines = skips.summary("jax", recorded)
    assert lines[0] == "skips under KERAS_BACKEND=jax: 4"
    assert any("flaky on Tuesdays" in line for line in lines[1:])


def test_every_core_module_exists():
    """`-m core` (CI's lowest-Keras step) and `-m wheel` (its run against
    the installed wheel) select modules by name: a module
    renamed or split must not silently leave it."""
    from tests import conftest

    for selection in ("CORE_MODULES", "WHEEL_MODULES"):
        missing = sorted(
            name for name in getattr(conftest, selection) if not
            os.path.exists(os.path.join(ROOT, "tests", name + ".py")))
        assert not missing, f"tests/conftest.py's {selection} names {missing}"


def _run_pytest(tmp_path, body):
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(body))
    # JAX: the quickest backend to import; the hooks do not depend on it
    env = dict(os.environ, KERAS_BACKEND="jax", PYTHONPATH=os.pathsep.join(
        [ROOT, os.environ.get("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path),
         str(tmp_path / "test_sample.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


def test_a_session_with_an_unexplained_skip_fails(tmp_path):
    result = _run_pytest(tmp_path, """
        import pytest

        def test_passes():
            assert True

        @pytest.mark.skip(reason="not today")
        def test_skipped():
            assert False
    """)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert "skips under KERAS_BACKEND=" in result.stdout
    assert "'not today' (a reason tests/skips.py does not list)" in (
        result.stdout)


def test_a_session_whose_skips_have_reasons_passes(tmp_path):
    result = _run_pytest(tmp_path, """
        import keras
        import pytest

        OTHER = "jax" if keras.backend.backend() != "jax" else "torch"

        def test_passes():
            assert True

        @getattr(pytest.mark, OTHER)
        def test_for_another_backend():
            assert False

        def test_missing_peer():
            pytest.importorskip("no_such_peer_pkg")
    """)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped, 1 deselected" in result.stdout
    assert "skips under KERAS_BACKEND=" in result.stdout
    assert "1 tests marked for another backend" in result.stdout


# --- the map: one test module per package module ------------------------------

# A module `keras_lrn/.../name.py` (or `_name.py`) is tested in
# `tests/test_name.py`; a package's `__init__.py` in `tests/test_<package>.py`
# (`keras_lrn/applications/__init__.py`: tests/test_applications.py).
# Modules without one, each with its reason (none today):
MODULES_WITHOUT_A_TEST_MODULE = {}

# The cross-cutting suites: behaviour that crosses modules, each against
# independent references.
CROSS_CUTTING_SUITES = {
    "test_numerics": "peers: the layer against PyTorch, onnxruntime, "
                     "TensorFlow's op and Caffe's formulas",
    "test_hostile_inputs": "hostile inputs: files, configs and values at "
                           "every way in",
    "test_properties": "properties: Hypothesis over sizes, shapes, dtypes "
                       "and contexts",
    "test_backends": "the JAX and PyTorch backends end to end",
    "test_contexts": "every configuration in every context a user runs",
    "test_dtypes": "every float dtype on every path",
    "test_gradients": "gradients of every order on every path",
    "test_groups": "grouped LRN through the layer, the op, files and export",
    "test_learned": "learned LRN and the exponential window end to end",
    "test_saving": "the layer's files: .keras, weights, SavedModel, TFLite",
    "test_export": "Keras's ONNX export on the backend under test",
    "test_interop": "ONNX export of models holding the layer",
    "test_gpu": "the numerics on a GPU",
    "test_distribution": "training on two devices",
    "test_model_parallel": "AlexNet's towers on separate devices",
    "test_multiprocess": "training across processes",
    "test_import_graph": "the package's import rules (import-linter)",
}

# Test modules named after a file outside the package.
TESTS_OF_OTHER_FILES = {
    "test_skips": "tests/skips.py",
    "test_release": "tools/release.py",
    "test_mutation_score": "tools/mutation_score.py",
    "test_main_job": "examples/train_alexnet.py",
    "test_rerun_study_seeds": "examples/rerun_study_seeds.py",
    "test_study_fingerprint": "examples/study_fingerprint.py",
    "test_notebooks": "examples/build_notebooks.py",
    "test_benchmarks": "benchmarks/report.py",
    "test_readme": "README.md",
    "test_docs": "mkdocs.yml",
}


def expected_test_module(module):
    """The test module's name for `module`, a path relative to the
    package's parent."""
    path = pathlib.PurePath(module)
    name = path.parent.name if path.name == "__init__.py" else path.stem
    return "test_" + name.lstrip("_")


def missing_test_modules(root, package, without):
    """(module, expected test module) for each module of `package` under
    `root` whose test module is missing from `root/tests`, except those in
    `without`; and the test modules two package modules would share."""
    missing, owners = [], {}
    for path in sorted((root / package).rglob("*.py")):
        module = path.relative_to(root).as_posix()
        test = expected_test_module(module)
        owners.setdefault(test, []).append(module)
        if module not in without and not (root / "tests" / (
                test + ".py")).exists():
            missing.append((module, test))
    shared = {test: modules for test, modules in owners.items()
              if len(modules) > 1}
    return missing, shared


def test_every_package_module_has_its_test_module():
    missing, shared = missing_test_modules(
        pathlib.Path(ROOT), "keras_lrn", MODULES_WITHOUT_A_TEST_MODULE)
    assert not missing, (
        "each module of keras_lrn/ has tests/test_<module>.py (or a reason "
        f"in MODULES_WITHOUT_A_TEST_MODULE): missing {missing}")
    assert not shared, f"modules that would share a test module: {shared}"
    for module in MODULES_WITHOUT_A_TEST_MODULE:  # no stale exception
        assert os.path.exists(os.path.join(ROOT, module)), module


def test_every_test_module_is_a_modules_or_a_listed_suite():
    package = pathlib.Path(ROOT) / "keras_lrn"
    of_modules = {expected_test_module(path.relative_to(ROOT).as_posix())
                  for path in package.rglob("*.py")}
    listed = set(CROSS_CUTTING_SUITES) | set(TESTS_OF_OTHER_FILES)
    assert not of_modules & listed, "a suite listed under two kinds"
    unlisted = sorted(
        path.stem for path in (pathlib.Path(ROOT) / "tests").glob("test_*.py")
        if path.stem not in of_modules | listed)
    assert not unlisted, (
        f"{unlisted}: name a test module after the module it tests, or list "
        "it in CROSS_CUTTING_SUITES or TESTS_OF_OTHER_FILES")
    for suite in listed:
        assert os.path.exists(os.path.join(ROOT, "tests", suite + ".py")), (
            suite)
    for other in TESTS_OF_OTHER_FILES.values():
        assert os.path.exists(os.path.join(ROOT, other)), other


def test_the_map_finds_a_planted_module_without_tests(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "tests").mkdir()
    for module in ("__init__.py", "_kept.py", "new.py", "sub/__init__.py",
                   "sub/_kept.py", "_excused.py"):
        (tmp_path / "pkg" / module).write_text("")
    for test in ("test_pkg", "test_kept", "test_sub"):
        (tmp_path / "tests" / (test + ".py")).write_text("")
    missing, shared = missing_test_modules(
        tmp_path, "pkg", {"pkg/_excused.py": "a reason"})
    assert missing == [("pkg/new.py", "test_new")]
    assert shared == {"test_kept": ["pkg/_kept.py", "pkg/sub/_kept.py"]}
