#!/usr/bin/env python
"""Builds the example notebooks from their percent-format sources.

Each ``NN_name.py`` file in this folder (``# %%`` code cells,
``# %% [markdown]`` text cells) is the source of ``NN_name.ipynb``; the
``.py`` files also run as plain scripts. ``--execute`` runs the notebooks
with nbclient (kernel cwd = this folder) so that the committed outputs come
from an honest run; the scale is taken from ``KERAS_LRN_SCALE``
(``ci`` | ``offline`` (default) | ``full``).

    python examples/build_notebooks.py --execute            # all notebooks
    python examples/build_notebooks.py --execute 02_train_alexnet
"""

import argparse
import glob
import os
import re
import time

import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.py")))


def to_notebook(path):
    text = open(path, encoding="utf-8").read()
    chunks = re.split(r"^# %%(.*)$", text, flags=re.M)
    cells = []
    for header, body in zip(chunks[1::2], chunks[2::2]):
        body = body.strip("\n")
        if "[markdown]" in header:
            lines = [re.sub(r"^# ?", "", line) for line in body.splitlines()]
            cells.append(nbformat.v4.new_markdown_cell("\n".join(lines)))
        else:
            cells.append(nbformat.v4.new_code_cell(body))
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def execute(nb, cwd=HERE, timeout=1800):
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": cwd}}).execute()
    return nb


def main():
    p = argparse.ArgumentParser()
    p.add_argument("names", nargs="*", help="notebook stems, default: all")
    p.add_argument("--execute", action="store_true")
    args = p.parse_args()
    for src in SOURCES:
        stem = os.path.splitext(os.path.basename(src))[0]
        if args.names and stem not in args.names:
            continue
        nb = to_notebook(src)
        if args.execute:
            t = time.time()
            execute(nb)
            print(f"{stem}: executed in {time.time() - t:.0f} s")
        nbformat.write(nb, os.path.join(HERE, stem + ".ipynb"))


if __name__ == "__main__":
    main()
