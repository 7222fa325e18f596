"""The benchmark scripts import without side effects and run end to end at
a tiny shape. No timing is compared with a bound: only that every candidate
ran and the report holds what it promises (every row's times and ratios
present, finite and positive, the agreement with the peers at float32
rounding, a verdict and a ratio for every target)."""

import importlib
import importlib.util
import math
import pathlib
import re
import sys

import keras
import pytest

MODULES = ["benchmarks.timing", "benchmarks.report", "benchmarks.tf_cases",
           "benchmarks.peer_cases", "benchmarks.lrn_bench",
           "benchmarks.backends_bench", "benchmarks.gpu_train_step",
           "benchmarks.compare_commits"]


SCRIPTS = ["benchmarks.lrn_bench", "benchmarks.backends_bench",
           "benchmarks.gpu_train_step", "benchmarks.compare_commits"]


def test_modules_import_without_side_effects(monkeypatch, tmp_path):
    # arguments a script would reject: importing must not parse them (an
    # argparse error would exit), and nothing is written where it runs
    monkeypatch.setattr(sys, "argv", ["pytest", "--no-such-flag"])
    monkeypatch.chdir(tmp_path)
    root = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"
    before = {p: p.stat().st_mtime_ns for p in root.iterdir()}
    for name in MODULES:
        module = importlib.reload(importlib.import_module(name))
        assert module.__doc__, name
    assert sys.argv == ["pytest", "--no-such-flag"]
    assert list(tmp_path.iterdir()) == []
    assert {p: p.stat().st_mtime_ns for p in root.iterdir()
            if p.name != "__pycache__"} == {
        p: t for p, t in before.items() if p.name != "__pycache__"}
    # the scripts run only when asked: their entry points are there, unrun
    for name in SCRIPTS:
        assert callable(sys.modules[name].main), name


def _table(text, heading):
    """The rows of the Markdown table under `heading`, as dicts by column."""
    lines = text[text.index(heading):].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| "))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append(dict(zip(header, (c.strip() for c in
                                      line.strip("|").split("|")))))
    return rows


def test_fmt_never_prints_a_measured_value_as_zero():
    # a 1-repetition quick run once timed x*2 at 7 ms against a 0.03 ms numpy
    # copy: their ratio, 0.004, printed as "0.00" and read back as zero
    from benchmarks.timing import fmt

    assert fmt(0.004237) == "0.0042"
    assert fmt(3e-7) == "3e-07" and float(fmt(3e-7)) > 0
    assert fmt(0.3, 0) == "0.3"
    assert fmt(1.234) == "1.23" and fmt(12.0) == "12.00"
    assert fmt(0.0) == "0.00"
    assert fmt(None) == "" and fmt(float("nan")) == ""


def _positive(value):
    number = float(value)
    return math.isfinite(number) and number > 0


# lrn_bench measures the TensorFlow and JAX backends (torch is timed as a
# peer there)
@pytest.mark.tensorflow
@pytest.mark.jax
def test_lrn_bench_quick_runs_every_candidate(tmp_path):
    from benchmarks import lrn_bench

    out = tmp_path / "results.md"
    text = lrn_bench.main(["--quick", "--reps", "1", "--warmup", "0",
                           "--output", str(out)])
    assert out.read_text() == text
    assert "failed:" not in text
    assert "## Targets" in text and "## Agreement" in text
    # every candidate has a finite, positive time and its ratios
    rows = _table(text, "## quick:")
    impls = {row["impl"] for row in rows}
    # PyTorch's rows where it is installed (README's test command has none)
    torch_rows = {"torch"} if importlib.util.find_spec("torch") else set()
    assert {"numpy copy", "x*2", "ours"} | torch_rows <= impls, impls
    for row in rows:
        assert _positive(row["median ms"]) and _positive(row["min ms"]), row
        assert float(row["min ms"]) <= float(row["median ms"]), row
        for column in ("x floor", "x XLA x*2", "x native (same ctx)"):
            if row[column]:
                assert _positive(row[column]), (column, row)
    ours = [row for row in rows if row["impl"] == "ours"]
    assert {row["pass"] for row in ours} == {"fwd", "fwd+bwd"}
    assert {row["mode"] for row in ours} == {"across", "within"}
    assert all(row["x floor"] and row["x XLA x*2"] for row in ours)
    # the agreement of ours with its peers, at float32 rounding
    agreement = re.findall(r"^- (.+ vs .+): ([0-9.e+-]+)$",
                           text[text.index("## Agreement"):
                                text.index("## Targets")], re.M)
    assert agreement, text
    for name, value in agreement:
        if "ulps" in name:  # half precision: rounded once
            assert float(value) <= 1.0, (name, value)
        elif "float16" in name:  # bfloat16 / float16 relative error
            assert float(value) < 2.0**-7, (name, value)
        else:
            assert float(value) < 1e-5, (name, value)
    # every target evaluated to a verdict and a finite ratio
    section = text[text.index("## Targets"):].split("\n## ")[0]
    listed = [line for line in section.splitlines() if line.startswith("- ")]
    # without PyTorch its targets say so, and only they
    unmeasured = [line for line in listed
                  if line.endswith("n/a (not measured in this run)")]
    assert all("torch" in line for line in unmeasured), unmeasured
    assert bool(unmeasured) != bool(torch_rows), unmeasured
    listed = [line for line in listed if line not in unmeasured]
    targets = re.findall(r"^- (\d[a-z]?\. .+?): (\*\*NOT met\*\*|met) "
                         r"\(.* = ([0-9.]+) \(", section, re.M)
    assert len(listed) >= 5 and len(targets) == len(listed), listed
    assert all(math.isfinite(float(ratio)) for _, _, ratio in targets)
    if keras.backend.backend() == "tensorflow":
        assert 'plain tf.function, LRN() (implementation="auto")' in text
        assert 'plain tf.function, LRN(implementation="portable")' in text
        assert "tf.nn (native)" in impls
        assert "| numpy copy |" in text


def test_backends_bench_runs_every_candidate():
    from benchmarks import backends_bench

    result = backends_bench.run_backend(shape=(1, 4, 4, 8), repetitions=1,
                                        warmup=0, torch_compile=False)
    bench = result["bench"]
    assert len(bench.candidates) >= 2
    for candidate in bench.candidates:
        assert candidate.error is None, (candidate.impl, candidate.error)
        assert candidate.times, candidate.impl
        assert all(math.isfinite(t) and t > 0 for t in candidate.times)
        assert 0 < candidate.min <= candidate.median
    table = backends_bench.backend_table(result)
    assert "keras_lrn.LRN()" in table and "floor: x * 2.0" in table
    assert backends_bench.targets(result)


def test_backends_bench_writes_its_section_only(tmp_path):
    from benchmarks import backends_bench

    path = tmp_path / "RESULTS.md"
    path.write_text("# other report\n\nkept\n")
    section = (f"{backends_bench.BEGIN}\nfirst\n{backends_bench.END}\n")
    backends_bench.write_section(path, section)
    backends_bench.write_section(path, section.replace("first", "second"))
    text = path.read_text()
    assert text.startswith("# other report\n\nkept\n")
    assert "second" in text and "first" not in text
    assert text.count(backends_bench.BEGIN) == 1


def test_compare_commits_reports_every_candidate_at_both_commits(tmp_path):
    """HEAD against itself at a tiny shape: every candidate of the backend
    runs with both packages and gets a finite, positive after/before."""
    from benchmarks import compare_commits

    output = tmp_path / "compare.md"
    compare_commits.main(["--before", "HEAD", "--backend", keras.backend.backend(),
                          "--rounds", "1", "--reps", "1", "--calls-per-rep", "1",
                          "--shape", "1x4x4x8", "--no-torch-compile",
                          "--output", str(output)])
    rows = _table(output.read_text(), f"## {keras.backend.backend()}")
    assert any(row["candidate"].startswith("keras_lrn.LRN(") for row in rows)
    for row in rows:
        for column in ("after/before", "after/before, over the floor"):
            ratio = float(row[column])
            assert math.isfinite(ratio) and ratio > 0, row
