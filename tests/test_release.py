"""tools/release.py: what it checks and how it rewrites the changelog (the
build and twine check run in CI, and in `release.py --dry-run`)."""

import importlib.util
import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("release", ROOT / "tools" / "release.py")
release = importlib.util.module_from_spec(spec)
spec.loader.exec_module(release)


def test_the_version_has_one_source():
    import keras_lrn

    assert release.current_version(ROOT) == keras_lrn.__version__
    assert "version = attr: keras_lrn.__version__" in (ROOT / "setup.cfg").read_text()


def test_unreleased_becomes_the_release_notes():
    changelog = "# Changelog\n\n## Unreleased\n\n### Added\n- a thing\n\n## 0.1.0 (2026-11-26)\n- old\n"
    assert release.release_notes(changelog) == "### Added\n- a thing"
    assert release.changelog_for_release(changelog, "0.2.0", "2026-12-06") == (
        "# Changelog\n\n## Unreleased\n\n## 0.2.0 (2026-12-06)\n\n### Added\n- a thing\n\n"
        "## 0.1.0 (2026-11-26)\n- old\n")
    with pytest.raises(SystemExit, match="has no entries"):
        release.release_notes("## Unreleased\n\n## 0.1.0\n- old\n")
    assert release.release_notes((ROOT / "CHANGELOG.md").read_text())


def _repo(tmp_path, version, changelog):
    (tmp_path / "keras_lrn").mkdir()
    (tmp_path / "keras_lrn" / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (tmp_path / "CHANGELOG.md").write_text(changelog)
    for command in (["init", "-q"], ["add", "."],
                    ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x"]):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    return tmp_path


def test_checks_before_anything_changes(tmp_path):
    root = _repo(tmp_path, "0.2.0.dev0", "## Unreleased\n- a thing\n")
    assert release.check(root, "0.2.0") == "- a thing"
    for version, message in (("0.1.9", "not above"), ("0.2.0.dev1", "must be X.Y.Z"),
                             ("0.2", "must be X.Y.Z")):
        with pytest.raises(SystemExit, match=message):
            release.check(root, version)
    (root / "CHANGELOG.md").write_text("changed")
    with pytest.raises(SystemExit, match="uncommitted changes"):
        release.check(root, "0.2.0")
