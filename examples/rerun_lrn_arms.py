#!/usr/bin/env python
"""Notebook 03's LRN arms rerun on the current code, beside its records.

Notebook 03 (`03_does_lrn_matter`) was executed before keras-lrn's internals
were rewritten (one computation for every LRN, and faster per-backend
paths): the arms without LRN reproduce bit for bit, the LRN arms differ in
floating-point detail, which training amplifies. This script reruns every
LRN arm's test seeds at their recorded learning rates with the notebook's
own `train_run`, keeps the recorded runs of the other arms, and recomputes
the notebook's comparisons with its own statistics cell. It writes
`results/03_rerun_current_code.json`: each rerun beside its record, and
the comparisons (median differences, bootstrap intervals, exact and Holm p,
verdicts, the smallest detectable difference) on the rerun data.

    python examples/rerun_lrn_arms.py                  # about 10 minutes on 2 cores
    python examples/rerun_lrn_arms.py --runs runs.jsonl   # reuse (or resume) runs
    python examples/rerun_lrn_arms.py --runs runs.jsonl --runs-commit REV  # made elsewhere

Runs at `KERAS_LRN_SCALE=offline`, the scale of the committed records.
"""

import argparse
import contextlib
import io
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
RECORDS = os.path.join(HERE, "results", "03_does_lrn_matter.json")
OUTPUT = os.path.join(HERE, "results", "03_rerun_current_code.json")


def notebook_cells():
    """The code cells of notebook 03's source, in order."""
    source = open(os.path.join(HERE, "03_does_lrn_matter.py"), encoding="utf-8").read()
    chunks = re.split(r"(?m)^(# %%[^\n]*)\n", source)
    return [chunks[i + 1] for i in range(1, len(chunks), 2) if "[markdown]" not in chunks[i]]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=None,
                        help="a JSON-lines file of reruns to reuse and extend")
    parser.add_argument("--runs-commit", default=None,
                        help="the commit whose code made the runs in --runs "
                             "(default: this checkout's HEAD)")
    args = parser.parse_args()
    os.environ["KERAS_LRN_SCALE"] = "offline"
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.chdir(HERE)
    sys.path.insert(0, HERE)
    cells = notebook_cells()
    # settings, data and model, run helpers; the statistics cell defines the
    # tests and computes `comparisons` and `detectable` from `seed_runs`
    statistics_cell = next(i for i, cell in enumerate(cells) if "def mann_whitney_exact" in cell)
    namespace = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        for cell in cells[:3]:
            exec(compile(cell, "notebook 03", "exec"), namespace)
    records = json.load(open(RECORDS))
    recorded = {(r["arm"], r["inputs"], r["seed"]): r for r in records["seed_runs"]}
    done = {}
    if args.runs and os.path.exists(args.runs):
        for line in open(args.runs):
            run = json.loads(line)
            done[(run["arm"], run["inputs"], run["seed"])] = run
    log = open(args.runs, "a") if args.runs else None
    reruns = []
    for (arm, inputs, seed), record in sorted(recorded.items()):
        if not arm.startswith("lrn"):
            continue
        run = done.get((arm, inputs, seed))
        if run is None:
            result = namespace["train_run"](arm, inputs, record["lr"], seed)
            run = dict(arm=arm, inputs=inputs, seed=seed, lr=record["lr"],
                       test_accuracy=result["test_accuracy"],
                       val_accuracy=result["val_accuracy"],
                       final_loss=result["final_loss"])
            if log:
                log.write(json.dumps(run) + "\n")
                log.flush()
        reruns.append(dict(run, recorded_test_accuracy=record["test_accuracy"],
                           recorded_val_accuracy=record["val_accuracy"],
                           recorded_final_loss=record["final_loss"],
                           identical=run["test_accuracy"] == record["test_accuracy"]))
    rerun_of = {(r["arm"], r["inputs"], r["seed"]): r for r in reruns}
    namespace["seed_runs"] = [
        dict(record, test_accuracy=rerun_of[key]["test_accuracy"]) if key in rerun_of else record
        for key, record in sorted(recorded.items())]
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(cells[statistics_cell], "notebook 03", "exec"), namespace)
    commit = subprocess.run(["git", "rev-parse", args.runs_commit or "HEAD"],
                            capture_output=True, text=True, cwd=HERE).stdout.strip() or None
    output = dict(
        about=("Notebook 03's LRN arms rerun at their recorded rates and seeds on the code of "
               "commit `code_commit`; the other arms' runs are the records'. `comparisons` and "
               "`detectable` are notebook 03's statistics cell run on that data."),
        code_commit=commit, reruns=reruns,
        comparisons=namespace["comparisons"], detectable=namespace["detectable"])
    with open(OUTPUT, "w") as file:
        json.dump(output, file, indent=1, allow_nan=False)
    changed = [c for c in namespace["comparisons"]
               if c["verdict"] != next(o["verdict"] for o in records["comparisons"]
                                       if (o["inputs"], o["arm_a"], o["arm_b"])
                                       == (c["inputs"], c["arm_a"], c["arm_b"]))]
    identical = sum(r["identical"] for r in reruns)
    print(f"{len(reruns)} LRN reruns, {identical} with the recorded test accuracy; "
          f"{len(changed)} verdicts changed:")
    for c in changed:
        print(f"  {c['inputs']}: {c['arm_a']} vs {c['arm_b']}: {c['verdict']} "
              f"(median difference {100 * c['median_difference']:+.1f}, Holm p {c['p_holm']:.3f})")
    print("wrote", OUTPUT)


if __name__ == "__main__":
    main()
