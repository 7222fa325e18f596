"""Cuts a release of keras-lrn in one command.

    python tools/release.py 0.2.0            # from a clean main: commit, tag, build, check
    python tools/release.py 0.2.0 --dry-run  # the same in a temporary clone; nothing here changes

The version lives in one place, `__version__` in `keras_lrn/__init__.py`
(setup.cfg reads it with `version = attr: keras_lrn.__version__`; the wheel,
the sdist and `keras_lrn.__version__` therefore agree). The command:

1. checks that the working tree is clean, that VERSION is a release version
   (`X.Y.Z`) above the current one and not tagged yet, and that CHANGELOG.md's
   `## Unreleased` section has entries;
2. turns `## Unreleased` into `## VERSION (YYYY-MM-DD)` above a new, empty
   `## Unreleased`, sets `__version__ = "VERSION"`, commits ("Release
   VERSION") and tags `vVERSION` with the release notes (that section) as the
   tag's message;
3. builds the sdist and the wheel into `dist/` (`python -m build`), runs
   `twine check --strict dist/*` and writes the notes to
   `dist/RELEASE_NOTES.md`.

It uploads nothing: `git push origin main vVERSION` starts
`.github/workflows/publish.yml`, which builds again from the tag, checks that
the tag names `keras_lrn.__version__`, and uploads to PyPI by trusted
publishing (no token). After the release, set `__version__` to the next
`.dev0` version in a commit of its own.
"""

import argparse
import datetime
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parents[1]
VERSION_FILE = pathlib.Path("keras_lrn") / "__init__.py"
CHANGELOG = pathlib.Path("CHANGELOG.md")
_VERSION_LINE = re.compile(r'^__version__ = "([^"]+)"$', re.M)
_RELEASE = re.compile(r"^\d+\.\d+\.\d+$")


def current_version(root):
    """`keras_lrn.__version__`, read from its one source."""
    match = _VERSION_LINE.search((root / VERSION_FILE).read_text())
    if not match:
        raise SystemExit(f"release: no `__version__ = \"...\"` line in {VERSION_FILE}")
    return match.group(1)


def _key(version):
    """A sortable key: `0.2.0.dev0` sorts before `0.2.0`."""
    release, _, dev = version.partition(".dev")
    return tuple(int(part) for part in release.split(".")), (0, int(dev)) if dev else (1, 0)


def release_notes(changelog):
    """The entries of the changelog's `## Unreleased` section."""
    match = re.search(r"^## Unreleased\n(.*?)(?=^## |\Z)", changelog, re.S | re.M)
    if not match:
        raise SystemExit("release: CHANGELOG.md has no `## Unreleased` section")
    notes = match.group(1).strip()
    if not re.search(r"^- ", notes, re.M):
        raise SystemExit("release: CHANGELOG.md's `## Unreleased` section has no entries")
    return notes


def changelog_for_release(changelog, version, date):
    """The changelog with `## Unreleased` renamed to the release and a new,
    empty `## Unreleased` above it."""
    return changelog.replace("## Unreleased\n", f"## Unreleased\n\n## {version} ({date})\n", 1)


def check(root, version):
    """Everything that must hold before the release commit."""
    if not _RELEASE.match(version):
        raise SystemExit(f"release: the version must be X.Y.Z. Received: version={version}")
    current = current_version(root)
    if _key(version) <= _key(current):
        raise SystemExit(f"release: {version} is not above the current version {current}")
    status = _git(root, "status", "--porcelain", capture=True)
    if status.strip():
        raise SystemExit(f"release: the working tree has uncommitted changes:\n{status}")
    if _git(root, "tag", "--list", f"v{version}", capture=True).strip():
        raise SystemExit(f"release: the tag v{version} exists already")
    return release_notes((root / CHANGELOG).read_text())


def cut(root, version, date):
    """Checks, commits, tags, builds and twine-checks; returns the notes."""
    notes = check(root, version)
    changelog = root / CHANGELOG
    changelog.write_text(changelog_for_release(changelog.read_text(), version, date))
    init = root / VERSION_FILE
    init.write_text(_VERSION_LINE.sub(f'__version__ = "{version}"', init.read_text(), count=1))
    _git(root, "commit", "-q", "-m", f"Release {version}", "--", str(CHANGELOG), str(VERSION_FILE))
    _git(root, "tag", "-a", f"v{version}", "-m", f"keras-lrn {version}\n\n{notes}\n")
    dist = root / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    _run(root, sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", "dist", ".",
         quiet=True)
    built = sorted(str(path) for path in dist.iterdir())
    _run(root, sys.executable, "-m", "twine", "check", "--strict", *built)
    (dist / "RELEASE_NOTES.md").write_text(f"# keras-lrn {version}\n\n{notes}\n")
    return notes


def _git(root, *args, capture=False):
    result = subprocess.run(["git", *args], cwd=root, check=True, text=True,
                            capture_output=capture)
    return result.stdout if capture else ""


def _run(root, *command, quiet=False):
    print("release: $", " ".join(command), flush=True)
    subprocess.run(command, cwd=root, check=True, stdout=subprocess.DEVNULL if quiet else None)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version", help="the release's version, X.Y.Z")
    parser.add_argument("--dry-run", action="store_true",
                        help="release a temporary clone of HEAD instead (its dist/ is copied "
                             "to ./dist-dry-run/); this repository is left unchanged")
    args = parser.parse_args(argv)
    date = datetime.date.today().isoformat()
    if not args.dry_run:
        cut(ROOT, args.version, date)
        print(f"release: tagged v{args.version}; dist/ holds the checked sdist and wheel.\n"
              f"Publish with: git push origin HEAD v{args.version}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        clone = pathlib.Path(scratch) / "keras-lrn"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        if _git(ROOT, "status", "--porcelain", capture=True).strip():
            print("release: (dry run) uncommitted changes are not part of the release",
                  file=sys.stderr)
        cut(clone, args.version, date)
        out = ROOT / "dist-dry-run"
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(clone / "dist", out)
    print(f"release: (dry run) v{args.version} built and checked in a temporary clone: "
          f"{out.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
