"""Every skip has a reason in the code, and the count cannot grow unseen.

A test that runs under one backend only carries its marker
(`@pytest.mark.tensorflow`, `jax`, `torch`): under another backend
`conftest.py` deselects it (nothing is missing there; CI's run of its
backend runs it) and counts it apart. A skip is accepted when it is

- the `gpu` marker's without a GPU: "needs a GPU ...";
- an optional peer that is not installed here: `pytest.importorskip`'s
  "could not import 'name'" (or a reason starting "needs the package
  'name'"), checked against this environment;
- otherwise, a reason listed for its test file in `ALLOWED`: a requirement
  that is neither a backend nor a package (a git checkout, a POSIX system).

`conftest.py` prints the count per reason after every run (CI's output
shows it for each backend) and fails the session (exit status 1) when a
skip is none of these: a new kind of skip needs its reason here, where a
reviewer sees it.
"""

import collections
import importlib.util
import re
import shutil

# (file, reason) of every skip this process saw (pytest-xdist's controller
# sees all the workers' reports)
RECORDED = []

# node ids of the tests deselected because they run under another backend
OTHER_BACKEND = []

GPU_PREFIX = "needs a GPU"
_MISSING_PEER = re.compile(
    r"^(?:could not import '([\w.]+)'|needs the package '([\w.]+)')")

# Skips other than the two kinds above: per test file, the reasons (their
# beginnings) its own skip conditions give. A backend is never one: mark
# the test with the backend's marker instead.
ALLOWED = {
    # on Windows: the job's progress lines are read through a pseudo-terminal
    "tests/test_main_job.py": ["pseudo-terminals are POSIX"],
    # from an sdist (no .git): the tool copies files through git
    "tests/test_mutation_score.py": ["copies the repository's files through "
                                     "git"],
    # from an sdist (no .git, no examples/): the records' commit is read from
    # git; and the stored fingerprint is comparable only on the records'
    # machine and setting (the commit's recomputed one is checked everywhere)
    "tests/test_study_fingerprint.py": [
        "needs a git checkout with its history and examples/",
        "the records were made on another CPU or setting"],
}
# optional tools outside Python, and how the tests name them
_MISSING_TOOL = {
    "no headless browser": ("chromium", "chromium-browser", "google-chrome"),
}
_MISSING_PACKAGES = re.compile(
    r"^(?:the docs tools are not installed \(([^)]*)\)"
    r"|(\w+) is not installed)")


def reason_of(report):
    """(test file, reason) of a skipped test report."""
    reason = (report.longrepr[2] if isinstance(report.longrepr, tuple)
              else str(report.longrepr))
    reason = reason.removeprefix("Skipped: ")
    return report.nodeid.split("::")[0], reason


def kind(reason):
    """'gpu', 'peer' (a package or tool missing here) or None."""
    if reason.startswith(GPU_PREFIX):
        return "gpu"
    names = []
    match = _MISSING_PEER.match(reason)
    if match:
        names = [match.group(1) or match.group(2)]
    match = _MISSING_PACKAGES.match(reason)
    if match:
        names = [n.strip() for n in (match.group(1) or match.group(2)
                                     ).split(",")]
    if names and all(_missing(name) for name in names):
        return "peer"
    for beginning, tools in _MISSING_TOOL.items():
        if reason.startswith(beginning) and not any(
                shutil.which(tool) for tool in tools):
            return "peer"
    return None


def _missing(name):
    try:
        return importlib.util.find_spec(name) is None
    except ModuleNotFoundError:  # a dotted name whose parent is missing
        return True


def unexplained(backend, recorded=None):
    """Messages for the skips this module does not account for."""
    recorded = RECORDED if recorded is None else recorded
    problems = collections.Counter(
        (path, reason) for path, reason in recorded
        if kind(reason) is None and not any(
            reason.startswith(allowed) for allowed in ALLOWED.get(path, ())))
    return [f"{path}: {count} skipped under KERAS_BACKEND={backend}: "
            f"{reason!r} (a reason tests/skips.py does not list)"
            for (path, reason), count in sorted(problems.items())]


def summary(backend, recorded=None):
    """Lines for the end of a run: the skips per reason, then any beyond
    the table."""
    recorded = RECORDED if recorded is None else recorded
    by_reason = collections.Counter(reason for _, reason in recorded)
    lines = [f"skips under KERAS_BACKEND={backend}: {len(recorded)}"]
    lines += [f"  {count:4d}  {reason}"
              for reason, count in by_reason.most_common()]
    if OTHER_BACKEND:
        lines.append(f"deselected under KERAS_BACKEND={backend}: "
                     f"{len(OTHER_BACKEND)} tests marked for another "
                     "backend (CI runs each backend)")
    problems = unexplained(backend, recorded)
    if problems:
        lines.append("skips without a reason in tests/skips.py (the session "
                     "fails):")
        lines += ["  " + p for p in problems]
    return lines
