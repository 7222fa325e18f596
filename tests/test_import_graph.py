"""The package's import graph: acyclic, and data flows one way.

Every `keras_lrn` module's imports are read with `ast` (function-local
imports included, so a cycle cannot hide in a function), giving a graph of
module -> imported package modules. The rules:

- the graph has no cycle;
- the layers `applications -> layer -> ops` are only ever imported
  downward: no module of a lower layer imports a higher one, directly or
  through other modules; and no module imports the package root
  `keras_lrn` (the facade that imports everything);
- inside `applications`, the builder modules are leaves: a builder imports
  only `_common` and `keras_lrn.layer` (never the ONNX reader `zoo` or
  another builder), the reader imports only `_common` (no builder), and
  only the applications `__init__` (the wiring) imports a builder or the
  reader;
- `onnx`, an optional dependency, is imported only inside functions, so
  `import keras_lrn` does not import it.

The checkers themselves are tested on synthetic graphs and on packages
written to disk, so that they would catch a planted cycle or violation.
"""

import ast
import pathlib
import shutil

import pytest

import keras_lrn

PACKAGE = "keras_lrn"
# high to low: a module may import only its own layer's modules or lower ones
LAYERS = ("keras_lrn.applications", "keras_lrn.legacy", "keras_lrn.layer",
          "keras_lrn.ops", "keras_lrn._operation", "keras_lrn._dispatch",
          "keras_lrn._jax_export", "keras_lrn._torch_kernels",
          "keras_lrn._compilation", "keras_lrn._formula", "keras_lrn._windows",
          "keras_lrn.conventions", "keras_lrn._exporters", "keras_lrn._foreign",
          "keras_lrn._arguments")


def module_graph(root, package):
    """{module: set of the package's modules it imports} for the package
    whose `__init__.py` is in folder `root`."""
    root = pathlib.Path(root)
    files = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        files[".".join([package] + parts)] = (path, is_package)
    graph = {}
    for module, (path, is_package) in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        here = module if is_package else module.rpartition(".")[0]
        imported = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")
                    anchor = anchor[:len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:
                    candidate = f"{base}.{alias.name}"
                    imported.add(candidate if candidate in files else base)
        graph[module] = {name for name in imported if name in files}
    return graph


def find_cycle(graph):
    """A list of modules forming a cycle (first == last), or None."""
    state = {}  # 1: on the current path, 2: done

    def visit(module, path):
        state[module] = 1
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state:
                cycle = visit(target, path + [target])
                if cycle:
                    return cycle
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state:
            cycle = visit(module, [module])
            if cycle:
                return cycle
    return None


def _layer_of(module, layers):
    for rank, layer in enumerate(layers):
        if module == layer or module.startswith(layer + "."):
            return rank
    return None


def upward_imports(graph, layers, root):
    """(importer, path to the higher module) for every way a module reaches
    a higher layer or the package root."""
    found = []
    for module in sorted(graph):
        rank = _layer_of(module, layers)
        seen, stack = {module}, [[module]]
        while stack:
            path = stack.pop()
            for target in sorted(graph.get(path[-1], ())):
                if target in seen:
                    continue
                seen.add(target)
                target_rank = _layer_of(target, layers)
                if target == root or (rank is not None and target_rank is not None
                                      and target_rank < rank):
                    found.append((module, path + [target]))
                stack.append(path + [target])
    return found


def applications_violations(graph, applications, layer):
    """(importer, imported) for every import that breaks the layering
    inside the package `applications`: its builders (every module but
    `__init__`, the reader `zoo`, `_common` and `imagenet_utils`) import
    only `_common` and the layer module `layer`; the reader imports only
    `_common`; nothing but `applications` itself imports a builder or the
    reader."""
    reader, common = f"{applications}.zoo", f"{applications}._common"
    shared = {common, f"{applications}.imagenet_utils"}
    builders = {module for module in graph
                if module.startswith(applications + ".")
                and module != reader and module not in shared}
    allowed = {reader: {common}}
    allowed.update((builder, {common, layer}) for builder in builders)
    found = []
    for module in sorted(graph):
        for target in sorted(graph[module]):
            if module in allowed:
                wrong = target not in allowed[module]
            else:
                wrong = module != applications and (
                    target in builders or target == reader)
            if wrong:
                found.append((module, target))
    return found


def private_cross_module_uses(root, package):
    """(file, "module._name") for every use of another package module's
    private name (`_name`, not `__dunder__`), through `from package import
    module` / `import package.module` aliases or `from package.module
    import _name`."""
    modules = set(module_graph(root, package))
    found = []
    for path in sorted(pathlib.Path(root).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (
                    node.module or "").startswith(package):
                for alias in node.names:
                    if alias.name.startswith("_") and not (
                            alias.name.startswith("__")):
                        # `from pkg import _module` is a private module:
                        # allowed; `from pkg.module import _name` is not
                        if f"{node.module}.{alias.name}" not in modules:
                            found.append((path.name,
                                          f"{node.module}.{alias.name}"))
                        continue
                    aliases[alias.asname or alias.name] = alias.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith(package) and alias.asname:
                        aliases[alias.asname] = alias.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Name)
                    and node.value.id in aliases
                    and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                found.append((path.name, f"{aliases[node.value.id]}."
                              f"{node.attr}"))
    return found


def module_level_imports(root, name):
    """The files under `root` that import the top-level package `name`
    outside any function."""
    found = []
    for path in sorted(pathlib.Path(root).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        functions = [node for node in ast.walk(tree) if isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
        local = {id(inner) for f in functions for inner in ast.walk(f)}
        for node in ast.walk(tree):
            if id(node) in local:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level:
                names = [node.module or ""]
            else:
                continue
            if any(n == name or n.startswith(name + ".") for n in names):
                found.append(path.name)
    return found


PACKAGE_ROOT = pathlib.Path(keras_lrn.__file__).parent


@pytest.fixture(scope="module")
def graph():
    return module_graph(PACKAGE_ROOT, PACKAGE)


# --------------------------------------------------------------------------
# The package
# --------------------------------------------------------------------------

def test_the_graph_holds_the_package(graph):
    assert {"keras_lrn", "keras_lrn.ops", "keras_lrn.layer",
            "keras_lrn.applications", "keras_lrn.applications.zoo",
            "keras_lrn.applications.alexnet"} <= set(graph)
    assert "keras_lrn.layer" in graph["keras_lrn.applications.alexnet"]


def test_the_package_has_no_import_cycle(graph):
    assert find_cycle(graph) is None


def test_data_flows_one_way(graph):
    assert upward_imports(graph, LAYERS, PACKAGE) == []


def test_builders_are_leaves_below_the_zoo_reader(graph):
    from keras_lrn import applications
    assert applications_violations(
        graph, "keras_lrn.applications", "keras_lrn.layer") == []
    builders = {"keras_lrn.applications.alexnet",
                "keras_lrn.applications.zfnet",
                "keras_lrn.applications.googlenet"}
    for builder in builders:  # what the rule above lets a builder import
        assert graph[builder] == {"keras_lrn.applications._common",
                                  "keras_lrn.layer"}, builder
    assert graph["keras_lrn.applications.zoo"] == {
        "keras_lrn.applications._common"}
    # the public builders are the leaves, wrapped by the package __init__
    wrapped = {getattr(applications, name).__wrapped__.__module__
               for name in ("AlexNet", "ZFNet", "GoogLeNet")}
    assert wrapped == builders
    assert {"keras_lrn.applications.zoo"} | builders <= graph[
        "keras_lrn.applications"]


def test_no_module_calls_another_modules_private_names():
    assert private_cross_module_uses(PACKAGE_ROOT, PACKAGE) == []


def test_private_use_checker_catches_a_planted_call(tmp_path):
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


def test_ops_exposes_only_its_public_names():
    names = {name for name in dir(keras_lrn.ops) if not name.startswith("__")}
    assert names == {"local_response_normalization", "native_for_export"}
    assert sorted(keras_lrn.ops.__all__) == sorted(names)


def test_onnx_is_imported_only_inside_functions():
    assert module_level_imports(PACKAGE_ROOT, "onnx") == []


# --------------------------------------------------------------------------
# The checker catches what it is meant to catch
# --------------------------------------------------------------------------

def test_find_cycle_on_synthetic_graphs():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    assert find_cycle({"x": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]


def test_upward_imports_on_synthetic_graphs():
    layers = ("p.apps", "p.layer", "p.ops")
    clean = {"p": {"p.apps", "p.layer"}, "p.apps": {"p.apps.net"},
             "p.apps.net": {"p.layer"}, "p.layer": {"p.ops", "p.util"},
             "p.ops": set(), "p.util": set()}
    assert upward_imports(clean, layers, "p") == []
    direct = dict(clean, **{"p.ops": {"p.layer"}})
    assert upward_imports(direct, layers, "p") == [("p.ops", ["p.ops", "p.layer"])]
    # through a module outside the layers
    indirect = dict(clean, **{"p.util": {"p.apps.net"}})
    assert ("p.layer", ["p.layer", "p.util", "p.apps.net"]) in upward_imports(
        indirect, layers, "p")
    root = dict(clean, **{"p.apps.net": {"p"}})
    assert ("p.apps.net", ["p.apps.net", "p"]) in upward_imports(root, layers, "p")


def test_module_graph_reads_every_kind_of_import(tmp_path):
    """A planted cycle hidden in a function-local relative import is found."""
    pkg = tmp_path / "pkg"
    (pkg / "apps").mkdir(parents=True)
    files = {
        "__init__.py": "from pkg import apps\n",
        "ops.py": "import numpy\n",
        "layer.py": "from pkg import ops as lrn_ops\n",
        "apps/__init__.py": "from pkg.apps.net import Net\n",
        "apps/common.py": "import pkg.layer\n",
        "apps/net.py": ("from . import common\n"
                        "def Net():\n"
                        "    from ..layer import thing\n"),
    }
    for name, text in files.items():
        (pkg / name).write_text(text)
    graph = module_graph(pkg, "pkg")
    assert graph == {
        "pkg": {"pkg.apps"}, "pkg.ops": set(), "pkg.layer": {"pkg.ops"},
        "pkg.apps": {"pkg.apps.net"}, "pkg.apps.common": {"pkg.layer"},
        "pkg.apps.net": {"pkg.apps.common", "pkg.layer"},
    }
    assert find_cycle(graph) is None
    # plant the circle the issue found: common -> net -> common, with the
    # import to common hidden in a function
    (pkg / "apps" / "common.py").write_text(
        "import pkg.layer\n"
        "def load():\n"
        "    from pkg.apps import net\n")
    cycle = find_cycle(module_graph(pkg, "pkg"))
    assert cycle is not None and set(cycle) == {"pkg.apps.common", "pkg.apps.net"}
    # and an upward import from the bottom layer
    (pkg / "ops.py").write_text("def f():\n    from pkg.layer import LRN\n")
    assert upward_imports(module_graph(pkg, "pkg"),
                          ("pkg.apps", "pkg.layer", "pkg.ops"), "pkg")


def test_applications_violations_on_synthetic_graphs():
    clean = {"p.apps": {"p.apps.zoo", "p.apps.net", "p.apps.imagenet_utils"},
             "p.apps._common": {"p.layer"}, "p.apps.imagenet_utils": set(),
             "p.apps.zoo": {"p.apps._common"},
             "p.apps.net": {"p.apps._common", "p.layer"},
             "p.apps.net2": {"p.apps._common"}, "p.layer": set()}
    assert applications_violations(clean, "p.apps", "p.layer") == []
    planted = {
        # a builder reads ONNX itself
        "p.apps.net": ("p.apps.zoo", [("p.apps.net", "p.apps.zoo")]),
        # the reader knows a network
        "p.apps.zoo": ("p.apps.net", [("p.apps.zoo", "p.apps.net")]),
        # _common hides the reader (the circle)
        "p.apps._common": ("p.apps.zoo", [("p.apps._common", "p.apps.zoo")]),
        # a lower layer reaches a builder
        "p.layer": ("p.apps.net2", [("p.layer", "p.apps.net2")]),
    }
    for importer, (target, expected) in planted.items():
        graph = dict(clean, **{importer: clean[importer] | {target}})
        assert applications_violations(graph, "p.apps", "p.layer") == expected
    # one builder importing another
    graph = dict(clean, **{"p.apps.net": clean["p.apps.net"] | {"p.apps.net2"}})
    assert applications_violations(graph, "p.apps", "p.layer") == [
        ("p.apps.net", "p.apps.net2")]


def _package_copy(tmp_path):
    copy = tmp_path / PACKAGE
    shutil.copytree(PACKAGE_ROOT, copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return copy


@pytest.mark.parametrize("module, text, violation", [
    ("alexnet", "from keras_lrn.applications import zoo\n",
     ("keras_lrn.applications.alexnet", "keras_lrn.applications.zoo")),
    ("zoo", "def f():\n    from keras_lrn.applications import googlenet\n",
     ("keras_lrn.applications.zoo", "keras_lrn.applications.googlenet")),
    ("_common", "def f():\n    from . import zoo\n",
     ("keras_lrn.applications._common", "keras_lrn.applications.zoo")),
])
def test_a_violation_planted_in_the_package_is_found(tmp_path, module, text,
                                                     violation):
    copy = _package_copy(tmp_path)
    path = copy / "applications" / f"{module}.py"
    path.write_text(path.read_text(encoding="utf-8") + text, encoding="utf-8")
    found = applications_violations(module_graph(copy, PACKAGE),
                                    "keras_lrn.applications", "keras_lrn.layer")
    assert found == [violation]


def test_a_module_level_onnx_import_is_found(tmp_path):
    copy = _package_copy(tmp_path)
    path = copy / "applications" / "zoo.py"
    path.write_text("import onnx.helper\n" + path.read_text(encoding="utf-8"),
                    encoding="utf-8")
    assert module_level_imports(copy, "onnx") == ["zoo.py"]
