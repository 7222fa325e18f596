"""Imports TensorFlow without its start-up lines, for the example scripts
and notebooks.

TensorFlow 2.21 writes lines to stderr while it is imported, whatever
TF_CPP_MIN_LOG_LEVEL says: they are logged through absl before
absl::InitializeLog() runs, which ignores TF's level, and a "failed call to
cuInit" line comes when a CPU-only machine is asked for GPUs. The only switch
that stops the oneDNN line, TF_ENABLE_ONEDNN_OPTS=0, also turns off oneDNN's
faster CPU kernels. So `import_tensorflow` (and `quietly`, around any call)
drops exactly these lines, by their text, and passes on anything else.
"""

import importlib
import os
import re
import sys
import tempfile

TF_IMPORT_NOISE = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|^To enable the following instructions:.*rebuild TensorFlow"
    r"|Could not find cuda drivers|failed call to cuInit"
)


def quietly(function):
    """Runs `function()` and returns its result, with the TF_IMPORT_NOISE
    lines removed from what it writes to stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            return function()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            for line in captured.read().decode("utf-8", "replace").splitlines(True):
                if not TF_IMPORT_NOISE.search(line):
                    sys.stderr.write(line)
            sys.stderr.flush()


def import_tensorflow():
    """Imports and returns `tensorflow` without its start-up lines."""
    return quietly(lambda: importlib.import_module("tensorflow"))
