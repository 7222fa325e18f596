"""Every skip has a reason in the code, and the count cannot grow unseen.

A skip is accepted when it is

- a backend marker's (`@pytest.mark.tensorflow`, `jax`, `torch`) on another
  backend: "needs KERAS_BACKEND=...", which CI's run of that backend runs;
- the `gpu` marker's without a GPU: "needs a GPU ...";
- an optional peer that is not installed here: `pytest.importorskip`'s
  "could not import 'name'" (or a reason starting "needs the package
  'name'"), checked against this environment;
- otherwise, one of at most `EXPECTED[backend][file]` skips of that test
  file (counted on CI's full run of that backend, each with its reason in
  the test's code).

`conftest.py` prints the count per reason after every run and fails the
session (exit status 1) when a skip is none of these: a new skip needs
its reason here, where a reviewer sees it.
"""

import collections
import importlib.util
import re

# (file, reason) of every skip this process saw (pytest-xdist's controller
# sees all the workers' reports)
RECORDED = []

BACKEND_PREFIX = "needs KERAS_BACKEND="
GPU_PREFIX = "needs a GPU"
_MISSING_PEER = re.compile(
    r"^(?:could not import '([\w.]+)'|needs the package '([\w.]+)')")

# Skips other than the three kinds above, per backend and test file, on
# CI's full run (`bash .ci/run`). Raise a number only beside the test whose
# reason says why.
EXPECTED = {
    "tensorflow": {},
    "jax": {},
    "torch": {},
}


def backend_reason(backends):
    return (BACKEND_PREFIX + " or ".join(backends)
            + " (CI runs the suite once per backend)")


def reason_of(report):
    """(test file, reason) of a skipped test report."""
    reason = (report.longrepr[2] if isinstance(report.longrepr, tuple)
              else str(report.longrepr))
    reason = reason.removeprefix("Skipped: ")
    return report.nodeid.split("::")[0], reason


def kind(reason):
    """'backend', 'gpu', 'peer' (a package missing here) or None."""
    if reason.startswith(BACKEND_PREFIX):
        return "backend"
    if reason.startswith(GPU_PREFIX):
        return "gpu"
    match = _MISSING_PEER.match(reason)
    if match:
        name = (match.group(1) or match.group(2)).split(".")[0]
        if importlib.util.find_spec(name) is None:
            return "peer"
    return None


def unexplained(backend, recorded=None):
    """Messages for the skips beyond what this module accounts for."""
    recorded = RECORDED if recorded is None else recorded
    counts = collections.Counter(
        path for path, reason in recorded if kind(reason) is None)
    expected = EXPECTED.get(backend, {})
    problems = []
    for path, count in sorted(counts.items()):
        if count > expected.get(path, 0):
            reasons = sorted({r for p, r in recorded
                              if p == path and kind(r) is None})
            problems.append(
                f"{path}: {count} skips under KERAS_BACKEND={backend}, "
                f"{expected.get(path, 0)} expected (tests/skips.py); "
                f"reasons: {reasons}")
    return problems


def summary(backend, recorded=None):
    """Lines for the end of a run: the skips per reason, then any beyond
    the table."""
    recorded = RECORDED if recorded is None else recorded
    by_reason = collections.Counter(reason for _, reason in recorded)
    lines = [f"skips under KERAS_BACKEND={backend}: {len(recorded)}"]
    lines += [f"  {count:4d}  {reason}"
              for reason, count in by_reason.most_common()]
    problems = unexplained(backend, recorded)
    if problems:
        lines.append("skips without a reason in tests/skips.py (the session "
                     "fails):")
        lines += ["  " + p for p in problems]
    return lines
