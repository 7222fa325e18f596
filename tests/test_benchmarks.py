"""The benchmark scripts import without side effects and run end to end at
a tiny shape. No timing is asserted: only that every candidate ran and the
report holds its comparisons."""

import importlib
import sys

import keras
import pytest

MODULES = ["benchmarks.timing", "benchmarks.report", "benchmarks.tf_cases",
           "benchmarks.peer_cases", "benchmarks.lrn_bench",
           "benchmarks.backends_bench", "benchmarks.gpu_train_step"]


def test_modules_import_without_side_effects(monkeypatch):
    # arguments a script would reject: importing must not parse them
    monkeypatch.setattr(sys, "argv", ["pytest", "--no-such-flag"])
    for name in MODULES:
        importlib.reload(importlib.import_module(name))


@pytest.mark.skipif(keras.backend.backend() not in ("tensorflow", "jax"),
                    reason="lrn_bench measures the TensorFlow and JAX "
                           "backends (torch is timed as a peer there)")
def test_lrn_bench_quick_runs_every_candidate(tmp_path):
    from benchmarks import lrn_bench

    out = tmp_path / "results.md"
    text = lrn_bench.main(["--quick", "--reps", "1", "--warmup", "0",
                           "--output", str(out)])
    assert out.read_text() == text
    assert "failed:" not in text
    assert "## Targets" in text and "## Agreement" in text
    assert "| x*2 |" in text  # the framework's compiled elementwise floor
    if keras.backend.backend() == "tensorflow":
        assert 'plain tf.function, LRN() (implementation="auto")' in text
        assert 'plain tf.function, LRN(implementation="portable")' in text
        assert "| numpy copy |" in text


def test_backends_bench_runs_every_candidate():
    from benchmarks import backends_bench

    result = backends_bench.run_backend(shape=(1, 4, 4, 8), repetitions=1,
                                        warmup=0, torch_compile=False)
    bench = result["bench"]
    assert bench.candidates
    assert all(c.error is None and c.times for c in bench.candidates)
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
