"""The package's import graph: acyclic, and data flows one way.

Every `keras_lrn` module's imports are read with `ast` (function-local
imports included, so a cycle cannot hide in a function), giving a graph of
module -> imported package modules. Two rules hold:

- the graph has no cycle;
- the layers `applications -> layer -> ops` are only ever imported
  downward: no module of a lower layer imports a higher one, directly or
  through other modules; and no module imports the package root
  `keras_lrn` (the facade that imports everything).

The checker itself is tested on synthetic graphs and on a synthetic
package written to disk, so that it would catch a planted cycle.
"""

import ast
import pathlib

import pytest

import keras_lrn

PACKAGE = "keras_lrn"
# high to low: a module may import only its own layer's modules or lower ones
LAYERS = ("keras_lrn.applications", "keras_lrn.layer", "keras_lrn.ops")


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


@pytest.fixture(scope="module")
def graph():
    return module_graph(pathlib.Path(keras_lrn.__file__).parent, PACKAGE)


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


def test_the_zoo_reader_and_common_blocks_import_no_network(graph):
    from keras_lrn.applications import ZOO_NETWORKS
    networks = {n.builder.__module__ for n in ZOO_NETWORKS}
    assert networks == {"keras_lrn.applications.alexnet",
                        "keras_lrn.applications.zfnet",
                        "keras_lrn.applications.googlenet"}
    for module in ("keras_lrn.applications.zoo",
                   "keras_lrn.applications._common"):
        assert not graph[module] & networks, module
    for network in networks:  # builders are leaves: none imports another
        assert not graph[network] & (networks - {network}), network


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
