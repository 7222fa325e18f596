#!/usr/bin/env python
"""Does a seed pin a run down across TensorFlow's settings? Notebook 03's
runs, trained under each setting TensorFlow offers for determinism.

Each setting runs in its own process (thread counts and oneDNN are fixed
when TensorFlow starts): notebook 03's own set-up cells (settings, data,
network, `train_run`), then 10 runs (five arms, seeds 0 and 1, raw inputs,
learning rate 1e-3). Two runs are *identical* when their final training
losses are equal bit for bit. Writes `results/determinism_probe.json`
(strict JSON): each setting's runs, the number of identical runs for every
pair of settings, and the provenance.

    python examples/determinism_probe.py    # a few minutes on 2 cores
"""

import contextlib
import io
import itertools
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
OUTPUT = os.path.join(HERE, "results", "determinism_probe.json")
# name -> (TensorFlow threads, 0: its default; oneDNN on; enable_op_determinism)
SETTINGS = {
    "default": (0, True, False),
    "default, a second process": (0, True, False),
    "1 thread": (1, True, False),
    "oneDNN off": (0, False, False),
    "op determinism, oneDNN off": (0, False, True),
    "op determinism, oneDNN off, 1 thread": (1, False, True),
}
RUNS = [(arm, seed) for arm in ("none", "batchnorm", "lrn_across", "lrn_within_term", "lrn_learned")
        for seed in (0, 1)]


def runs_in_this_process(threads, determinism):
    """The runs, in this process (its environment set by `main`)."""
    os.environ["KERAS_LRN_SCALE"] = "offline"
    os.environ["KERAS_LRN_THREADS"] = str(threads)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.chdir(HERE)
    sys.path.insert(0, HERE)
    from rerun_study_seeds import notebook_cells

    cells = notebook_cells()
    namespace = {"__name__": "__main__"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(cells[0], "notebook 03", "exec"), namespace)
        if determinism:
            namespace["tf"].config.experimental.enable_op_determinism()
        for cell in cells[1:3]:
            exec(compile(cell, "notebook 03", "exec"), namespace)
    out = []
    for arm, seed in RUNS:
        run = namespace["train_run"](arm, "raw", 1e-3, seed)
        out.append(dict(arm=arm, seed=seed, final_loss_bits=float(run["final_loss"]).hex(),
                        test_accuracy=run["test_accuracy"]))
    return dict(runs=out, provenance=namespace["provenance"](op_determinism=determinism))


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        threads, onednn, determinism = SETTINGS[sys.argv[2]]
        print(json.dumps(runs_in_this_process(threads, determinism)))
        return
    results = {}
    for name, (threads, onednn, determinism) in SETTINGS.items():
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        if not onednn:
            env["TF_ENABLE_ONEDNN_OPTS"] = "0"
        else:
            env.pop("TF_ENABLE_ONEDNN_OPTS", None)
        child = subprocess.run([sys.executable, __file__, "--child", name], env=env, capture_output=True,
                               text=True, check=True)
        results[name] = json.loads(child.stdout.strip().splitlines()[-1])
        results[name]["setting"] = dict(threads=threads, onednn=onednn, op_determinism=determinism)
        print(f"{name}: done", flush=True)
    identical = {f"{a} | {b}": sum(x["final_loss_bits"] == y["final_loss_bits"]
                                   for x, y in zip(results[a]["runs"], results[b]["runs"]))
                 for a, b in itertools.combinations(SETTINGS, 2)}
    with open(OUTPUT, "w") as file:
        json.dump(dict(about=__doc__.split("\n\n")[0], runs_per_setting=len(RUNS), settings=results,
                       identical_runs=identical), file, indent=1, allow_nan=False)
    for pair, count in identical.items():
        print(f"{count:2d} of {len(RUNS)} identical: {pair}")
    print("wrote", OUTPUT)


if __name__ == "__main__":
    main()
