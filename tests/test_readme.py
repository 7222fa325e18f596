"""The README's examples run as written."""

import os
import pathlib
import re
import subprocess
import sys

import keras
import pytest

import keras_lrn

README = pathlib.Path(__file__).parents[1] / "README.md"


def python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


# the quick start is run once, under the TensorFlow backend the README installs
@pytest.mark.tensorflow
def test_quick_start_runs_when_pasted(tmp_path):
    (quick_start,) = [block for block in python_blocks()
                      if "lrn_model.keras" in block]
    work, temp = tmp_path / "work", tmp_path / "temp"
    work.mkdir()
    temp.mkdir()
    result = subprocess.run([sys.executable, "-c", quick_start],
                            cwd=work, env=dict(os.environ, TMPDIR=str(temp)),
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    # the model goes to a temporary folder, not the working folder
    assert list(temp.glob("*/lrn_model.keras"))
    assert not list(work.iterdir())


def test_converter_examples_print_what_the_readme_says():
    (examples,) = [block for block in python_blocks() if ">>>" in block]
    for call, shown in re.findall(r">>> (.*?)\n(.*?)\n", examples):
        call = call.split("#")[0]
        assert repr(eval(call, {"keras_lrn": keras_lrn})) == shown.strip()


def test_conventions_table_names_every_converter():
    text = README.read_text()
    for name in ("from_tensorflow", "from_caffe", "from_torch", "from_onnx",
                 "to_tensorflow", "to_caffe", "to_torch", "to_onnx"):
        assert name in text
        assert hasattr(keras_lrn.LRN, name)


ROOT = README.parent
# Every page whose commands a reader copies: the README and the site's pages.
COMMAND_PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]


def shell_commands():
    """(page, command) for every command of every ```bash block, split at
    `&&`, comments dropped."""
    for page in COMMAND_PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
            for line in block.splitlines():
                line = line.split(" #")[0].strip()
                if line and not line.startswith("#"):
                    for command in line.split("&&"):
                        yield page.relative_to(ROOT).as_posix(), command.strip()


def _extras():
    import configparser

    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    return set(config["options.extras_require"])


def test_every_command_names_what_exists():
    """Parsed, not run (no downloads in tests): each pip install names a
    local path or built wheel with extras setup.cfg defines, or a package
    pinned as CI pins it (never keras-lrn from the index, where it is not
    yet); each script or module run exists."""
    import importlib.util
    import shlex

    ci = (ROOT / ".ci" / "run").read_text()
    extras, seen, wrong = _extras(), 0, []
    for page, command in shell_commands():
        words = shlex.split(command)
        while words and re.match(r"[A-Z_]+=", words[0]):  # VAR=value before the command
            words = words[1:]
        seen += 1
        if words[:2] == ["pip", "install"]:
            for word in words[2:]:
                if word.startswith("-") or word.startswith("https://"):
                    continue
                target, _, rest = word.partition("[")
                for extra in filter(None, rest.rstrip("]").split(",")):
                    if extra not in extras:
                        wrong.append(f"{page}: {command!r}: no extra {extra!r} in setup.cfg")
                if target in (".", "") or target.startswith("dist/keras_lrn-"):
                    continue
                if target.startswith("keras-lrn") or target.startswith("keras_lrn"):
                    wrong.append(f"{page}: {command!r}: keras-lrn is not on PyPI yet")
                elif "==" in target and target not in ci:
                    wrong.append(f"{page}: {command!r}: {target} is not what CI installs")
        elif words[0] == "python" and words[1] == "-m":
            if (importlib.util.find_spec(words[2].split(".")[0]) is None
                    and words[2] not in ("build", "mkdocs")):
                wrong.append(f"{page}: {command!r}: no module {words[2]}")
        elif words[0] in ("python", "bash"):
            if not (ROOT / words[1]).is_file():
                wrong.append(f"{page}: {command!r}: no file {words[1]}")
        elif words[0] not in ("mkdocs", "jupyter", "git"):
            wrong.append(f"{page}: {command!r}: a command this test does not know")
    assert seen >= 10
    assert not wrong, "\n".join(wrong)


def test_readme_sections_are_what_the_site_includes():
    """The intro, conventions table, install, quick start, set-up and costs
    exist once, in the README, and the site's pages include them."""
    text = README.read_text()
    pages = "".join(p.read_text() for p in (ROOT / "docs").rglob("*.md"))
    for name in ("intro", "conventions", "install", "quick-start", "setup", "costs"):
        assert text.count(f"<!-- {name} -->") == 1 and f"<!-- /{name} -->" in text, name
        assert f"<!-- readme: {name} -->" in pages, name


def test_porting_guide_examples_print_what_it_says():
    import doctest

    import numpy as np

    page = (ROOT / "docs" / "guides" / "conventions.md").read_text()
    for block in re.findall(r"```python\n(.*?)```", page, re.S):
        if ">>>" not in block:
            continue
        test = doctest.DocTestParser().get_doctest(
            block, {"keras_lrn": keras_lrn, "np": np, "keras": keras}, "conventions.md",
            None, 0)
        runner = doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
        runner.run(test)
        assert runner.failures == 0
