"""Where and on what a study's runs were made: the provenance its records
carry (notebook 03 and `rerun_study_seeds.py`).

The same seeds give the same bits only on the same code, the same CPU and
the same thread counts (notebook 03, "How far a run depends on the
machine"), so the records name all of them.
"""

import os
import platform
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def _git(*arguments):
    result = subprocess.run(["git", *arguments], capture_output=True,
                            text=True, cwd=HERE)
    return result.stdout.strip() if result.returncode == 0 else None


def cpu_model():
    """The CPU's model name (Linux's /proc/cpuinfo, else `platform`)."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(op_determinism=False):
    """The commit, the machine and the numerical settings of this process
    (TensorFlow must be imported and its threads set; `op_determinism`:
    whether the process called `tf.config.experimental.enable_op_determinism`,
    which TensorFlow 2.21 cannot be asked)."""
    import keras
    import numpy as np
    import tensorflow as tf

    import keras_lrn

    changed = _git("status", "--porcelain", "--", "../keras_lrn", ".")
    return dict(
        commit=_git("rev-parse", "HEAD"),
        uncommitted_changes=bool(changed) if changed is not None else None,
        cpu=cpu_model(),
        cpu_cores=os.cpu_count(),
        platform=platform.platform(),
        intra_op_threads=tf.config.threading.get_intra_op_parallelism_threads(),
        inter_op_threads=tf.config.threading.get_inter_op_parallelism_threads(),
        threads_note="0 is TensorFlow's default: one per core",
        onednn=os.environ.get("TF_ENABLE_ONEDNN_OPTS", "default (on, on x86)"),
        op_determinism=op_determinism,
        xla_cpu_flags=os.environ.get("XLA_FLAGS", ""),
        python=platform.python_version(),
        versions=dict(tensorflow=tf.__version__, keras=keras.__version__,
                      numpy=np.__version__, keras_lrn=keras_lrn.__version__),
        load_average_at_start=os.getloadavg()[0],
    )
