"""examples/rerun_study_seeds.py's pure parts: the failed-run rule, a rerun
beside its record, the summary, resuming, and the notebook cells it runs
(the training itself is the notebook's `train_run`)."""

import json
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "examples"))
import rerun_study_seeds as rerun  # noqa: E402


def _record(arm="none", seed=0, test=0.9, val=0.8, loss=0.25):
    return dict(arm=arm, inputs="raw", seed=seed, lr=1e-3, test_accuracy=test,
                val_accuracy=val, final_loss=loss)


def test_a_run_fails_as_in_the_notebook():
    assert rerun.failed(_record(loss=None), 0.5)
    assert rerun.failed(_record(loss=float("nan")), 0.5)
    assert rerun.failed(_record(test=0.4999), 0.5)
    assert not rerun.failed(_record(test=0.5), 0.5)


def test_identical_means_every_value_equal():
    record = _record()
    assert rerun.beside(dict(record), record, 0.5)["identical"]
    for key in ("test_accuracy", "val_accuracy", "final_loss"):
        run = dict(record, **{key: record[key] + 1e-9})
        row = rerun.beside(run, record, 0.5)
        assert not row["identical"]
        assert row[f"recorded_{key}"] == record[key] and row[key] == record[key] + 1e-9


def test_the_summary_counts_changes_in_points():
    pairs = [  # (rerun, recorded) test accuracies; 360 test images
        (0.9, 0.9), (0.9, 0.9), (0.9, 0.9 + 1 / 360), (0.8, 0.9), (0.3, 0.9)]
    runs = [rerun.beside(_record(seed=i, test=a), _record(seed=i, test=b), 0.5)
            for i, (a, b) in enumerate(pairs)]
    s = rerun.summarize(runs)
    assert (s["runs"], s["identical"], s["test_accuracy_moved"]) == (5, 2, 3)
    # |changes| 0, 0, 0.2778, 10, 60 points
    assert s["median_abs_change_points"] == pytest.approx(100 / 360)
    assert s["median_abs_change_of_moved_points"] == pytest.approx(10)
    assert s["max_abs_change_points"] == pytest.approx(60)
    assert s["max_change_run"] == dict(arm="none", inputs="raw", seed=4)
    assert (s["failed"], s["recorded_failed"], s["failed_status_changed"]) == (1, 0, 1)
    text = "\n".join(rerun.summary_lines(s))
    assert "5 reruns, 2 identical" in text and "median 0.28 points" in text
    assert "10.00 over those that moved" in text and "max 60.00 (none raw seed 4)" in text
    same = rerun.summary_lines(rerun.summarize(runs[:2]))
    assert "2 reruns, 2 identical" in same[0] and "moved in 0" in same[0]
    assert same[1].endswith("median 0.00 points over all runs; max 0.00")


def test_the_setting_names_the_output():
    assert rerun.setting_name(1, "default") == "threads1"
    assert rerun.setting_name(0, "off") == "threads_default_onednn_off"


def test_resuming_refuses_runs_of_another_setting(tmp_path):
    path = tmp_path / "runs.jsonl"
    setting = dict(threads=1, onednn="default", commit="abc")
    run = _record()
    path.write_text(json.dumps(dict(setting=setting)) + "\n" + json.dumps(run) + "\n")
    assert rerun.load_runs(str(path), setting) == {("none", "raw", 0, 1e-3): run}
    with pytest.raises(SystemExit, match="another setting"):
        rerun.load_runs(str(path), dict(setting, threads=2))


def test_the_notebook_set_up_cells_define_what_the_rerun_uses():
    cells = rerun.notebook_cells()[:rerun.SETUP_CELLS]
    text = "\n".join(cells)
    for name in ("SETTINGS", "PROVENANCE", "FINGERPRINT", "KERAS_LRN_THREADS"):
        assert name in text, name
    assert "def train_run(arm, inputs, lr, seed)" in cells[-1]
    # no training in the set-up: the sweep and the seeds come after it
    assert "def sweep_learning_rate" not in text


def test_the_median_shift_per_arm_is_in_points():
    pairs = {"none": [(0.90, 0.80), (0.70, 0.70), (0.50, 0.60)],  # medians 0.70 vs 0.70
             "lrn_across": [(0.95, 0.90), (0.85, 0.80)]}  # medians 0.90 vs 0.85
    runs = [rerun.beside(_record(arm=arm, seed=i, test=a), _record(arm=arm, seed=i, test=b), 0.5)
            for arm, values in pairs.items() for i, (a, b) in enumerate(values)]
    shifts = rerun.arm_median_shifts(runs)
    assert shifts["raw"]["none"] == pytest.approx(0.0, abs=1e-9)
    assert shifts["raw"]["lrn_across"] == pytest.approx(5.0)


def test_the_code_digest_is_stable():
    assert rerun.code_digest() == rerun.code_digest()
    assert len(rerun.code_digest()) == 64
