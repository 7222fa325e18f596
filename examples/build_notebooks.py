#!/usr/bin/env python
"""Builds the example notebooks from their percent-format sources.

Each ``NN_name.py`` file in this folder is the source of ``NN_name.ipynb``,
in jupytext's percent format (``# %%`` code cells, ``# %% [markdown]`` text
cells), which jupytext converts; the ``.py`` files also run as plain
scripts. ``--execute`` runs the notebooks
with nbclient (kernel cwd = this folder) so that the committed outputs come
from an honest run; the scale is taken from ``KERAS_LRN_SCALE``
(``ci`` | ``offline`` (default) | ``full``). What each notebook needs is the
first line of its first cell.

To run a notebook yourself without touching the committed one, write it to
another folder (needs the ``[notebooks]`` extra):

    python examples/build_notebooks.py --execute --output-dir /tmp/nb 01_what_lrn_does

Maintainers rebuild the committed notebooks in place (this folder):

    python examples/build_notebooks.py --execute            # all notebooks
    python examples/build_notebooks.py --execute 02_train_alexnet
"""

import argparse
import glob
import os
import time

import jupytext
import nbformat

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = sorted(glob.glob(os.path.join(HERE, "[0-9][0-9]_*.py")))


# jupytext's notes for writing a notebook back to text, not the notebook's
ROUND_TRIP_METADATA = ("cell_marker", "lines_to_next_cell",
                       "lines_to_end_of_cell_marker")


def to_notebook(path):
    """The notebook of the percent-format source `path`, read by jupytext,
    for a Python 3 kernel (no jupytext metadata: the ``.py`` file is the
    source, the notebook is built from it, never synced back)."""
    nb = jupytext.read(path, fmt="py:percent")
    for cell in nb.cells:
        for key in ROUND_TRIP_METADATA:
            cell.metadata.pop(key, None)
    nb.metadata = nbformat.from_dict({
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"},
    })
    return nb


def execute(nb, cwd=HERE, timeout=1800):
    from nbclient import NotebookClient

    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": cwd}}).execute()
    return nb


def main(argv=None):
    stems = [os.path.splitext(os.path.basename(src))[0] for src in SOURCES]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("names", nargs="*", metavar="name",
                   help=f"notebook stems ({', '.join(stems)}); default: all")
    p.add_argument("--execute", action="store_true",
                   help="run each notebook (kernel in examples/) so that it holds its outputs")
    p.add_argument("--output-dir",
                   help="write the notebooks here (created if needed) instead of over the "
                        "committed examples/*.ipynb; default: examples/")
    args = p.parse_args(argv)
    unknown = sorted(set(args.names) - set(stems))
    if unknown:
        p.error(f"unknown notebook(s) {', '.join(unknown)}; expected some of {', '.join(stems)}")
    out_dir = os.path.abspath(args.output_dir) if args.output_dir else HERE
    os.makedirs(out_dir, exist_ok=True)
    for src, stem in zip(SOURCES, stems):
        if args.names and stem not in args.names:
            continue
        nb = to_notebook(src)
        if args.execute:
            t = time.time()
            execute(nb)
            print(f"{stem}: executed in {time.time() - t:.0f} s")
        path = os.path.join(out_dir, stem + ".ipynb")
        nbformat.write(nb, path)
        print(f"{stem}: wrote {path}")


if __name__ == "__main__":
    main()
