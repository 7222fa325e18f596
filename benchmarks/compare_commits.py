"""The fixed layer's every path at two commits: is any slower than before?

For each Keras backend, `benchmarks/backends_bench.py`'s candidates (the
backend's floor `x * 2.0`, `keras_lrn.LRN()`, the backend's own LRN; eager
and compiled; forward and forward+backward) are timed with the `keras_lrn`
package of a commit (`--before`, taken from git history with `git archive`)
and with the package of the working tree, each in a fresh process. Two
packages of one name cannot share a process, so the processes alternate
before, after, after, before, ... (`--rounds` pairs), and the report gives,
for every candidate, the median over the rounds of after/before. The floor
and the backends' own LRN do not depend on keras-lrn: their ratios show how
much the machine moved between processes, the noise a keras-lrn ratio must
be read against. A second ratio divides each candidate's time by its own
process's floor in the same context and pass before comparing, which
removes what moved a whole process (on JAX on the CPU, for one, every
process gets its own share of page faults on buffers above glibc's mmap
threshold: docs/guides/performance.md, "JAX on CPU").

    python benchmarks/compare_commits.py --before 0752156 --output benchmarks/compare_results.md
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BACKENDS = ("tensorflow", "jax", "torch")
# backends_bench's floor candidate, in every context and pass
FLOOR = "floor: x * 2.0"

# Run in a fresh process: backends_bench's candidates for one backend with
# the `keras_lrn` package in argv[1], as JSON rows.
CHILD = """
import json, os, sys
package, root, out = sys.argv[1:4]
sys.path[:0] = [package, root]
import keras_lrn
assert os.path.dirname(os.path.realpath(keras_lrn.__file__)) == os.path.realpath(
    os.path.join(package, "keras_lrn")), keras_lrn.__file__
from benchmarks import backends_bench, timing
result = backends_bench.run_backend(
    shape=timing.parse_shape(sys.argv[7]),
    repetitions=int(sys.argv[4]), calls_per_rep=int(sys.argv[5]),
    torch_compile=sys.argv[6] == "1")
with open(out, "w") as f:
    json.dump([dict(name=r["name"], context=r["context"], pas=r["pas"],
                    role=r["role"], median=r["median"], error=r["error"])
               for r in result["rows"]], f)
"""


def _extract(commit, directory):
    """The `keras_lrn` package of `commit`, under `directory`."""
    archive = subprocess.run(["git", "archive", "--format=tar", commit,
                              "keras_lrn"], cwd=ROOT, capture_output=True)
    if archive.returncode:
        raise SystemExit(f"git archive {commit}: "
                         f"{archive.stderr.decode().strip()}")
    path = os.path.join(directory, "package.tar")
    with open(path, "wb") as file:
        file.write(archive.stdout)
    with tarfile.open(path) as tar:  # git's own archive of this repository
        tar.extractall(directory, **({"filter": "data"}
                                     if hasattr(tarfile, "data_filter")
                                     else {}))
    os.remove(path)


def _run(backend, package, args, scratch):
    out = os.path.join(scratch, f"{backend}.json")
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    child = subprocess.run([sys.executable, "-c", CHILD, package, ROOT, out,
                            str(args.reps), str(args.calls_per_rep),
                            "1" if args.torch_compile else "0", args.shape],
                           env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True)
    if child.returncode:
        raise SystemExit(f"{backend} with the package in {package} failed:\n"
                         f"{child.stderr[-3000:]}")
    with open(out) as file:
        return {(r["name"], r["context"], r["pas"]): r
                for r in json.load(file)}


def _commit(reference):
    return subprocess.run(["git", "rev-parse", "--short", reference],
                          cwd=ROOT, capture_output=True, text=True,
                          check=True).stdout.strip()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True,
                        help="the commit whose package is the baseline")
    parser.add_argument("--backend", choices=BACKENDS, action="append",
                        help="only this backend (repeatable; default: all)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="pairs of processes per backend, alternated "
                             "before/after then after/before")
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--calls-per-rep", type=int, default=3)
    parser.add_argument("--shape", default="32x55x55x96",
                        help="NHWC input shape")
    parser.add_argument("--no-torch-compile", dest="torch_compile",
                        action="store_false")
    parser.add_argument("--output", help="also write the report here")
    args = parser.parse_args(argv)
    before, after = _commit(args.before), _commit("HEAD")
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "keras_lrn"],
                                cwd=ROOT, capture_output=True, text=True,
                                check=True).stdout.strip())
    lines = [
        "# The fixed layer at two commits",
        "",
        "Generated by `benchmarks/compare_commits.py`; do not edit by hand.",
        "",
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        "- command: `python benchmarks/compare_commits.py "
        + " ".join(argv if argv is not None else sys.argv[1:]) + "`",
        f"- before: `keras_lrn` of {before}; after: the working tree's, "
        f"at {after}{' with uncommitted changes' if dirty else ''}",
        f"- machine: {platform.platform()}, {os.cpu_count()} CPU cores",
        "- load average at the start: "
        + ", ".join(f"{v:.2f}" for v in os.getloadavg()),
        f"- per process: `backends_bench.run_backend`, {args.reps} "
        f"repetitions of {args.calls_per_rep} back-to-back calls, "
        f"{args.shape} float32, across channels, size 5; "
        f"{args.rounds} rounds of before/after processes (alternating order)",
        "",
        "after/before is the median over the rounds of each round's ratio of",
        "medians; rows that do not run keras-lrn show the machine's drift.",
        "The last column divides each time by its process's floor (same",
        "context and pass) first, removing what moved a whole process.",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        old = os.path.join(scratch, "before")
        os.makedirs(old)
        _extract(args.before, old)
        for backend in args.backend or BACKENDS:
            rounds = []
            for index in range(args.rounds):
                order = ((old, ROOT) if index % 2 == 0 else (ROOT, old))
                times = {package: _run(backend, package, args, scratch)
                         for package in order}
                rounds.append((times[old], times[ROOT]))
            lines += ["", f"## {backend}", "",
                      "| candidate | context | pass | before ms | after ms "
                      "| after/before | after/before, over the floor |",
                      "|---|---|---|---|---|---|---|"]
            for key, row in rounds[0][1].items():
                floor = (FLOOR, key[1], key[2])
                pairs = [(b.get(key, {}).get("median"), a[key]["median"],
                          b.get(floor, {}).get("median"),
                          a.get(floor, {}).get("median"))
                         for b, a in rounds]
                if any(None in pair for pair in pairs):
                    lines.append(f"| {key[0]} | {key[1]} | {key[2]} | | | "
                                 f"error: {row['error']} | |")
                    continue
                ratio = statistics.median(a / b for b, a, _, _ in pairs)
                relative = statistics.median(
                    (a / a_floor) / (b / b_floor)
                    for b, a, b_floor, a_floor in pairs)
                lines.append(
                    f"| {key[0]} | {key[1]} | {key[2]} "
                    f"| {statistics.median(p[0] for p in pairs):.2f} "
                    f"| {statistics.median(p[1] for p in pairs):.2f} "
                    f"| {ratio:.2f} | {relative:.2f} |")
    lines += ["", "- load average at the end: "
              + ", ".join(f"{v:.2f}" for v in os.getloadavg())]
    report = "\n".join(lines) + "\n"
    print(report)
    if args.output:
        with open(args.output, "w") as file:
            file.write(report)


if __name__ == "__main__":
    main()
