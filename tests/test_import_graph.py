"""The package's import rules: import-linter contracts, and what they cannot say.

The rules themselves are the `[importlinter]` contracts in setup.cfg, checked
by `lint-imports` (import-linter; function-local imports count). This module
runs them, checks that they name every module of the package, plants
violations in a copy of the package to show that each contract can fail, and
checks at run time what a static import graph cannot: that `import
keras_lrn` imports no framework or optional dependency that Keras itself did
not, and that no module uses another module's private names (that `ops` exposes
only its public names is tests/test_ops.py's).
"""

import ast
import configparser
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

import keras_lrn

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "keras_lrn"
PACKAGE_ROOT = pathlib.Path(keras_lrn.__file__).parent


def lint_imports(cwd):
    """Runs import-linter on the package and setup.cfg in folder `cwd`:
    (exit status, output)."""
    code = ("import sys; from importlinter.cli import lint_imports_command; "
            "sys.exit(lint_imports_command())")
    result = subprocess.run(
        [sys.executable, "-c", code, "--no-cache", "setup.cfg"],
        cwd=cwd, capture_output=True, text=True, timeout=300,
        env=dict(os.environ, PYTHONPATH=str(cwd)))
    return result.returncode, result.stdout + result.stderr


def broken_contracts(output):
    """The part of lint-imports' report that lists the broken contracts."""
    return output.partition("Broken contracts")[2]


def contracts(config=ROOT / "setup.cfg"):
    """{contract id: its options} from the `[importlinter:contract:*]`
    sections."""
    parser = configparser.ConfigParser()
    parser.read(config, encoding="utf-8")
    return {section.rpartition(":")[2]: dict(parser[section])
            for section in parser.sections()
            if section.startswith("importlinter:contract:")}


def lines(value):
    """The entries of a multi-line option (one per line, comments dropped)."""
    return [line.strip() for line in value.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def package_modules(root=PACKAGE_ROOT, package=PACKAGE):
    """Every module of the package whose `__init__.py` is in `root`."""
    modules = set()
    for path in pathlib.Path(root).rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules.add(".".join([package] + parts))
    return modules


# --------------------------------------------------------------------------
# The contracts
# --------------------------------------------------------------------------

def test_the_contracts_hold():
    status, output = lint_imports(ROOT)
    assert status == 0, output
    assert "0 broken" in output, output


def test_every_module_has_a_floor():
    """Each module is a floor of the exhaustive layers contract of its parent
    package, so that a newcomer's module cannot slip past the rules (and
    `lint-imports` fails until it is given one)."""
    floors = {}
    for options in contracts().values():
        if options["type"] != "layers":
            continue
        assert options.get("exhaustive") == "true", options["name"]
        (container,) = lines(options["containers"])
        for layer in lines(options["layers"]):
            for tail in layer.replace(":", "|").split("|"):
                floors[f"{container}.{tail.strip().strip('()')}"] = container
    modules = package_modules()
    packages = {module.rpartition(".")[0] for module in modules} - {""}
    assert packages <= set(floors.values()), "a package without a contract"
    assert modules - {PACKAGE} == set(floors), "a module on no floor"


def test_the_applications_forbid_every_private_module():
    private = {module for module in package_modules()
               if module.count(".") == 1
               and module.rpartition(".")[2].startswith("_")}
    forbidden = lines(contracts()["public-api"]["forbidden_modules"])
    assert set(forbidden) == private


def _package_copy(tmp_path):
    shutil.copytree(PACKAGE_ROOT, tmp_path / PACKAGE,
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", tmp_path / "setup.cfg")
    return tmp_path


@pytest.mark.parametrize("module, text, contract", [
    # a kernel climbs back up to the layer, hidden in a function
    ("_formula.py", "def f():\n    from keras_lrn import layer\n",
     "data flows one way"),
    # a lower floor reaches a higher one through another module
    ("conventions.py", "from keras_lrn import ops\n", "data flows one way"),
    ("_arguments.py", "from keras_lrn import _formula\n", "data flows one way"),
    ("_value_gate.py", "def f():\n    from keras_lrn import _dispatch\n",
     "the value gate never import the dispatch"),
    ("legacy.py", "def f():\n    from keras_lrn import _learned_weights\n",
     "only the layer handles its learned weights"),
    ("applications/zoo.py", "from keras_lrn import _learned_weights\n",
     "only the layer handles its learned weights"),
    ("_dispatch.py", "import keras_lrn\n", "no module imports the package root"),
    ("_newcomer.py", "", "every module on one floor"),
    ("applications/alexnet.py", "from keras_lrn.applications import zoo\n",
     "builders and the ONNX reader are leaves"),
    ("applications/zoo.py",
     "def f():\n    from keras_lrn.applications import googlenet\n",
     "builders and the ONNX reader are leaves"),
    ("applications/_common.py", "def f():\n    from . import zoo\n",
     "builders and the ONNX reader are leaves"),
    ("applications/zfnet.py", "from keras_lrn import _operation\n",
     "applications build from the public layer"),
    ("layer.py", "def f():\n    import torch\n", "import no framework"),
])
def test_a_planted_violation_breaks_its_contract(tmp_path, module, text,
                                                 contract):
    copy = _package_copy(tmp_path)
    path = copy / PACKAGE / module
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(old + text, encoding="utf-8")
    status, output = lint_imports(copy)
    assert status != 0, output
    assert contract in broken_contracts(output), output


def test_a_planted_cycle_breaks_the_acyclic_contract(tmp_path):
    copy = _package_copy(tmp_path)
    (copy / PACKAGE / "_ring_a.py").write_text("from keras_lrn import _ring_b\n")
    (copy / PACKAGE / "_ring_b.py").write_text(
        "def f():\n    from keras_lrn import _ring_a\n")
    status, output = lint_imports(copy)
    assert status != 0, output
    assert "no import cycle among sibling modules" in broken_contracts(output)


# --------------------------------------------------------------------------
# What a static graph cannot say
# --------------------------------------------------------------------------

def test_importing_the_package_imports_nothing_keras_did_not():
    """No framework (a backend Keras does not run on), ONNX tool or other
    optional dependency is imported by `import keras_lrn`: they are imported
    inside the functions that need them."""
    code = (
        "import sys\n"
        "import keras\n"
        "before = {name.partition('.')[0] for name in sys.modules}\n"
        "import keras_lrn\n"
        "after = {name.partition('.')[0] for name in sys.modules}\n"
        "print(sorted(after - before - set(sys.stdlib_module_names)))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True,
                            text=True, timeout=300, cwd=ROOT,
                            env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "['keras_lrn']"


def private_cross_module_uses(root, package):
    """(file, "module._name") for every use of another package module's
    private name (`_name`, not `__dunder__`), through `from package import
    module` / `import package.module as alias` or `from package.module
    import _name`. (Private modules themselves may be imported.)"""
    modules = package_modules(root, package)
    found = []
    for path in sorted(pathlib.Path(root).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (
                    node.module or "").startswith(package):
                for alias in node.names:
                    name = f"{node.module}.{alias.name}"
                    if alias.name.startswith("_") and not (
                            alias.name.startswith("__")) and name not in modules:
                        found.append((path.name, name))
                    else:
                        aliases[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.Import):
                aliases.update((alias.asname, alias.name) for alias in node.names
                               if alias.name.startswith(package) and alias.asname)
        found.extend(
            (path.name, f"{aliases[node.value.id]}.{node.attr}")
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name) and node.value.id in aliases
            and node.attr.startswith("_") and not node.attr.startswith("__"))
    return found


def test_no_module_uses_another_modules_private_names():
    assert private_cross_module_uses(PACKAGE_ROOT, PACKAGE) == []


def test_private_use_checker_catches_a_planted_use(tmp_path):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def _hidden():\n    pass\n")
    (pkg / "b.py").write_text("from pkg import a\n\na._hidden()\n")
    (pkg / "c.py").write_text("from pkg.a import _hidden\n")
    (pkg / "_private_module.py").write_text("")
    (pkg / "d.py").write_text("from pkg import _private_module\n")
    assert private_cross_module_uses(pkg, "pkg") == [
        ("b.py", "a._hidden"), ("c.py", "pkg.a._hidden")]
