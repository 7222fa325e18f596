#!/usr/bin/env python
"""Notebook 03's test seeds rerun under another setting, beside its records.

On one machine and setting a seed pins a run down bit for bit (notebook 03's
reruns), but the bits depend on the setting: TensorFlow's thread counts
(XLA's CPU backend partitions its loops by thread count), oneDNN, the CPU.
This script measures how far that moves the study's results, for the spread
notebook 03 states beside its between-arm effects: it executes notebook 03's
own set-up cells (settings, data, network, `train_run`) under the setting
given here, reruns every test seed of every arm and input convention at its
recorded learning rate (the records' `seed_runs`), and writes
`results/03_rerun_<setting>.json` (strict JSON): this rerun's provenance and
layer fingerprint, the records' commit, and each run beside its record.

    python examples/rerun_study_seeds.py --threads 1                  # about 10 minutes on 2 cores
    python examples/rerun_study_seeds.py --threads 1 --onednn off     # TF_ENABLE_ONEDNN_OPTS=0
    python examples/rerun_study_seeds.py --threads 1 --runs runs.jsonl   # resume (or reuse) runs

`--threads N` sets TensorFlow's intra- and inter-op threads (the notebook's
`KERAS_LRN_THREADS`; 0: TensorFlow's default, one per core), `--onednn`
TF_ENABLE_ONEDNN_OPTS before TensorFlow is imported. Run it on the records'
commit: otherwise the spread mixes the setting with the code (the summary
says which).
"""

import argparse
import contextlib
import hashlib
import io
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDS = os.path.join(HERE, "results", "03_does_lrn_matter.json")
KEYS = ("test_accuracy", "val_accuracy", "final_loss")
# what a run computes with, besides the machine and setting (paths from the repository root)
# (and the notebook's set-up cells, `SETUP_CELLS`: its text may change after its run)
CODE = ("keras_lrn", "examples/study_fingerprint.py", "examples/quiet_tensorflow.py")
NOTEBOOK = "examples/03_does_lrn_matter.py"
SETUP_CELLS = 3  # settings, data and network, run helpers


def notebook_cells(source=None):
    """The code cells of notebook 03's source (this checkout's, or the text
    `source`), in order."""
    if source is None:
        with open(os.path.join(HERE, "03_does_lrn_matter.py"), encoding="utf-8") as file:
            source = file.read()
    chunks = re.split(r"(?m)^(# %%[^\n]*)\n", source)
    return [chunks[i + 1] for i in range(1, len(chunks), 2) if "[markdown]" not in chunks[i]]


def same_code_as(commit):
    """Whether this checkout's `CODE` (working tree included) and notebook
    03's set-up cells are `commit`'s."""
    if not commit:
        return False
    root = os.path.dirname(HERE)
    diff = subprocess.run(["git", "diff", "--quiet", commit, "--", *CODE], cwd=root,
                          capture_output=True)
    then = subprocess.run(["git", "show", f"{commit}:{NOTEBOOK}"], cwd=root,
                          capture_output=True, text=True)
    return (diff.returncode == 0 and then.returncode == 0
            and notebook_cells(then.stdout)[:SETUP_CELLS] == notebook_cells()[:SETUP_CELLS])


def code_digest():
    """SHA-256 of this checkout's `CODE` files and notebook 03's set-up
    cells: what a --runs file's runs were computed with."""
    root = os.path.dirname(HERE)
    paths = []
    for path in CODE:
        full = os.path.join(root, *path.split("/"))
        if os.path.isdir(full):
            paths += sorted(os.path.join(folder, name) for folder, _, names in os.walk(full)
                            for name in names if name.endswith(".py"))
        else:
            paths.append(full)
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(os.path.relpath(path, root).replace(os.sep, "/").encode())
        with open(path, "rb") as file:
            digest.update(file.read())
    for cell in notebook_cells()[:SETUP_CELLS]:
        digest.update(cell.encode())
    return digest.hexdigest()


def arm_median_shifts(runs):
    """{inputs: {arm: rerun median - recorded median}} of the test accuracy,
    in points: how far the setting moves what the comparisons compare."""
    out = {}
    for inputs, arm in sorted({(r["inputs"], r["arm"]) for r in runs}):
        mine = [r for r in runs if (r["inputs"], r["arm"]) == (inputs, arm)]
        out.setdefault(inputs, {})[arm] = 100 * (
            statistics.median(r["test_accuracy"] for r in mine)
            - statistics.median(r["recorded_test_accuracy"] for r in mine))
    return out


def setting_name(threads, onednn):
    """The setting in a file name: `threads1`, `threads_default_onednn_off`."""
    name = f"threads{threads}" if threads else "threads_default"
    return name + (f"_onednn_{onednn}" if onednn != "default" else "")


def strict_json(text):
    """JSON without NaN or Infinity."""
    def refuse(name):
        raise ValueError(f"{name} is not JSON")
    return json.loads(text, parse_constant=refuse)


def failed(run, failed_below):
    """Notebook 03's rule for a test seed: a final training loss that is not
    finite (null) or a test accuracy below `failed_below`."""
    loss = run["final_loss"]
    return bool(loss is None or not math.isfinite(loss) or run["test_accuracy"] < failed_below)


def beside(run, record, failed_below):
    """A rerun's record with the recorded values beside it."""
    out = dict(arm=record["arm"], inputs=record["inputs"], seed=record["seed"], lr=record["lr"],
               **{key: run[key] for key in KEYS}, failed=failed(run, failed_below))
    out.update({f"recorded_{key}": record[key] for key in KEYS})
    out["recorded_failed"] = failed(record, failed_below)
    out["identical"] = all(run[key] == record[key] for key in KEYS)
    return out


def summarize(runs):
    """Counts and test-accuracy changes (in points) of reruns beside their
    records: identical runs, the median |change| over all runs and over the
    runs whose test accuracy moved, the largest, and failed runs."""
    changes = [100 * abs(r["test_accuracy"] - r["recorded_test_accuracy"]) for r in runs]
    moved = [c for c in changes if c > 0]
    largest = max(range(len(runs)), key=lambda i: changes[i]) if runs else None
    return dict(
        runs=len(runs),
        identical=sum(r["identical"] for r in runs),
        identical_means="test accuracy, validation accuracy and final loss all equal to the record's",
        test_accuracy_unchanged=len(runs) - len(moved),
        test_accuracy_moved=len(moved),
        median_abs_change_points=statistics.median(changes) if changes else None,
        median_abs_change_of_moved_points=statistics.median(moved) if moved else None,
        max_abs_change_points=changes[largest] if runs else None,
        max_change_run=(None if largest is None else
                        {k: runs[largest][k] for k in ("arm", "inputs", "seed")}),
        failed=sum(r["failed"] for r in runs),
        recorded_failed=sum(r["recorded_failed"] for r in runs),
        failed_status_changed=sum(r["failed"] != r["recorded_failed"] for r in runs),
    )


def summary_lines(summary):
    s = summary
    lines = [f"{s['runs']} reruns, {s['identical']} identical to their records (test and "
             f"validation accuracy, final loss); test accuracy moved in {s['test_accuracy_moved']}"]
    if s["runs"]:
        lines.append(f"|change| of test accuracy: median {s['median_abs_change_points']:.2f} points "
                     "over all runs"
                     + (f", {s['median_abs_change_of_moved_points']:.2f} over those that moved"
                        if s["test_accuracy_moved"] else "")
                     + f"; max {s['max_abs_change_points']:.2f}"
                     + (f" ({s['max_change_run']['arm']} {s['max_change_run']['inputs']} seed "
                        f"{s['max_change_run']['seed']})" if s["test_accuracy_moved"] else ""))
        lines.append(f"failed runs: {s['failed']} rerun, {s['recorded_failed']} recorded; "
                     f"{s['failed_status_changed']} changed status")
    return lines


def load_runs(path, setting):
    """The runs a --runs file holds, keyed by (arm, inputs, seed, lr); its
    first line names the setting and commit that made them."""
    done = {}
    if not (path and os.path.exists(path)):
        return done
    with open(path) as file:
        lines = [strict_json(line) for line in file if line.strip()]
    if lines and lines[0].get("setting") != setting:
        raise SystemExit(f"{path} holds runs of another setting or commit: "
                         f"{lines[0].get('setting')} (this run: {setting})")
    for run in lines[1:]:
        done[(run["arm"], run["inputs"], run["seed"], run["lr"])] = run
    return done


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=0,
                        help="TensorFlow's intra- and inter-op threads (0: its default)")
    parser.add_argument("--onednn", choices=("on", "off", "default"), default="default",
                        help="TF_ENABLE_ONEDNN_OPTS=1 or 0 (default: unset)")
    parser.add_argument("--records", default=RECORDS, help="notebook 03's records")
    parser.add_argument("--runs", default=None,
                        help="a JSON-lines file of reruns to reuse and extend (resume)")
    parser.add_argument("--output", default=None,
                        help="default: results/03_rerun_<setting>.json beside the records")
    args = parser.parse_args()
    name = setting_name(args.threads, args.onednn)
    # (paths as given, before the notebook's cells run in examples/)
    args.records = os.path.abspath(args.records)
    args.runs = args.runs and os.path.abspath(args.runs)
    output = os.path.abspath(args.output or os.path.join(os.path.dirname(args.records),
                                                         f"03_rerun_{name}.json"))
    with open(args.records) as file:
        records = strict_json(file.read())
    settings = records["settings"]

    # before TensorFlow is imported (the notebook's first cell imports it and sets its threads)
    os.environ["KERAS_LRN_THREADS"] = str(args.threads)
    if args.onednn != "default":
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1" if args.onednn == "on" else "0"
    os.environ["KERAS_LRN_SCALE"] = settings["scale"]
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.chdir(HERE)
    sys.path.insert(0, HERE)
    namespace = {"__name__": "__main__"}
    t_start = time.time()
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in notebook_cells()[:SETUP_CELLS]:
            exec(compile(cell, "notebook 03", "exec"), namespace)
    if json.loads(json.dumps(namespace["SETTINGS"])) != settings:
        raise SystemExit(f"notebook 03's settings are not the records': {namespace['SETTINGS']} "
                         f"vs {settings}")
    # the first cell's study_provenance.provenance() and study_fingerprint.fingerprint(), of this
    # process (its threads and oneDNN set)
    provenance, fingerprint = namespace["PROVENANCE"], namespace["FINGERPRINT"]
    records_commit = records.get("provenance", {}).get("commit")
    setting = dict(threads=args.threads, onednn=args.onednn, cpu=provenance["cpu"],
                   code_sha256=code_digest())

    done = load_runs(args.runs, setting)
    log = None
    if args.runs:
        new_file = not os.path.exists(args.runs) or os.path.getsize(args.runs) == 0
        log = open(args.runs, "a")
        if new_file:
            log.write(json.dumps(dict(setting=setting)) + "\n")
    runs = []
    seed_runs = sorted(records["seed_runs"], key=lambda r: (r["inputs"], r["arm"], r["seed"]))
    for i, record in enumerate(seed_runs):
        key = (record["arm"], record["inputs"], record["seed"], record["lr"])
        run = done.get(key)
        if run is None:
            result = namespace["train_run"](record["arm"], record["inputs"], record["lr"], record["seed"])
            run = dict(zip(("arm", "inputs", "seed", "lr"), key), **{k: result[k] for k in KEYS})
            if log:
                log.write(json.dumps(run, allow_nan=False) + "\n")
                log.flush()
        runs.append(beside(run, record, settings["failed_below"]))
        r = runs[-1]
        print(f"{i + 1:3d}/{len(seed_runs)} {r['inputs']:12} {r['arm']:18} seed {r['seed']} lr {r['lr']:g}: "
              f"test {r['test_accuracy']:.4f} (recorded {r['recorded_test_accuracy']:.4f})"
              + (" identical" if r["identical"] else ""), flush=True)
    summary = summarize(runs)
    shifts = arm_median_shifts(runs)
    same_code = same_code_as(records_commit)
    result = dict(
        about=("Notebook 03's test seeds (the records' `seed_runs`: every arm, both input "
               "conventions, each at its recorded learning rate and seed) rerun with the notebook's "
               "own `train_run` under the setting `setting` (TensorFlow's intra- and inter-op "
               "threads, 0 its default; oneDNN), beside their records. `provenance` and "
               "`fingerprint` are this rerun's; `records_commit` and `records_provenance` the "
               "records'; `same_code_as_records`: whether the code in `code_compared` is the "
               "records' commit's (otherwise the changes mix code and setting); "
               "`median_shift_points`: per input and arm, the rerun's median test accuracy minus "
               "the recorded median, in points; `runs_reused`: runs read from a --runs file made "
               "by the same code and setting (`run_time_s` counts only this process). "
               "`failed`: the "
               "notebook's rule (final loss not finite or test accuracy below "
               "settings.failed_below); `identical`: test and validation accuracy and final loss "
               "equal to the record's. Written by examples/rerun_study_seeds.py."),
        setting=dict(name=name, threads=args.threads, onednn=args.onednn),
        records_commit=records_commit,
        same_code_as_records=same_code,
        code_compared=[*CODE, f"{NOTEBOOK}'s first {SETUP_CELLS} code cells"],
        records_provenance=records.get("provenance"),
        provenance=provenance, fingerprint=fingerprint,
        fingerprint_same_as_records={arm: fingerprint[arm] == records.get("fingerprint", {}).get(arm)
                                     for arm in fingerprint},
        failed_below=settings["failed_below"],
        summary=summary, median_shift_points=shifts, runs=runs,
        runs_reused=sum(key in done for key in
                        {(r["arm"], r["inputs"], r["seed"], r["lr"]) for r in runs}),
        run_time_s=time.time() - t_start)
    with open(output, "w") as file:
        file.write(json.dumps(result, indent=1, allow_nan=False))
    print(f"setting {name}; code {provenance['commit']}: "
          + ("the records' code" if same_code else
             f"NOT the records' ({records_commit}): the spread mixes code and setting"))
    for line in summary_lines(summary):
        print(line)
    for inputs, by_arm in shifts.items():
        print(f"median test accuracy, rerun - recorded ({inputs}): "
              + ", ".join(f"{arm} {shift:+.2f}" for arm, shift in by_arm.items()) + " points")
    print("wrote", output)


if __name__ == "__main__":
    main()
