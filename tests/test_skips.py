"""tests/skips.py and the conftest hooks behind it: a backend marker
deselects, every skip is a GPU's, a missing optional peer's or a reason the
table lists; any other fails the session, and the counts are printed."""

import os
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
