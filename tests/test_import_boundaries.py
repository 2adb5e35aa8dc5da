"""Import boundaries of the package, read from the source (ast), never by importing it.

Every module's imports are collected, module-level and function-level alike (those under
`if TYPE_CHECKING:` are left out: they never run). Two rules are checked:

1. Heavy or dangerous third-party libraries have one home each (`LIBRARY_HOMES`): mpi4py only
   in `parallel`; h5py only in the store modules (`STORE_MODULES`); python-binance only in
   the transport and the brokers; matplotlib only in the `report` package; aiohttp only in
   the emulator.
2. No import circle between project modules. A module importing `a.b.c` is taken to import
   exactly `a.b.c` (the package `__init__` files it runs on the way are not edges, so a
   package's lazy `__getattr__` re-export of its own submodule is not a circle).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = "binance_cluster"
SRC = Path(__file__).resolve().parents[1] / "src" / PACKAGE

# The modules allowed to open HDF5 files, each for the files it owns.
STORE_MODULES = (
    "binance_cluster.candles.store",     # the candle store (STORE/SYMBOL.h5)
    "binance_cluster.backtest.results",  # results.h5 (equity curves)
    "binance_cluster.ml.model_store",    # fitted models (the models issue; may not exist yet)
)

# library (top-level import name) -> module prefixes allowed to import it. A prefix allows
# the module itself and, when it is a package, everything under it.
LIBRARY_HOMES: dict[str, tuple[str, ...]] = {
    "mpi4py": ("binance_cluster.parallel",),
    "h5py": STORE_MODULES,
    "binance": ("binance_cluster.exchange.transport", "binance_cluster.exchange.broker"),
    "matplotlib": ("binance_cluster.report",),
    "aiohttp": ("binance_cluster.exchange.emulator",),
}


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement's target: a dotted module name, where it is, and how deep."""

    target: str
    line: int
    function_level: bool


def module_name(root: Path, path: Path, package: str) -> str:
    """The dotted module name of `path` inside the package directory `root`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join([package, *parts])


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(module: str, is_package: bool, level: int, name: str | None) -> str:
    """The absolute module a relative `from ... import` names."""
    if level == 0:
        return name or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([name] if name else []))


def read_imports(source: str, module: str, is_package: bool,
                 known: set[str]) -> list[Import]:
    """Every import of one module's source. `from X import Y` counts as importing X.Y when
    X.Y is one of the `known` project modules, else as importing X."""
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit_one(other, in_function)
                continue
            visit_one(child, in_function)

    def visit_one(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(alias.name, node.lineno, in_function))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, is_package, node.level, node.module)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(sub if sub in known else base, node.lineno, in_function))
        else:
            inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                     ast.Lambda))
            visit(node, inner)

    visit(ast.parse(source), False)
    return found


def import_map(root: Path, package: str = PACKAGE) -> dict[str, list[Import]]:
    """module name -> its imports, for every .py file under the package directory `root`."""
    paths = sorted(root.rglob("*.py"))
    names = {module_name(root, p, package): p for p in paths}
    known = set(names)
    return {name: read_imports(path.read_text(encoding="utf-8"), name,
                               path.name == "__init__.py", known)
            for name, path in names.items()}


def _inside(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def library_violations(imports: dict[str, list[Import]],
                       homes: dict[str, tuple[str, ...]] = LIBRARY_HOMES) -> list[str]:
    """One line per import of a homed library outside its home."""
    out = []
    for module, items in sorted(imports.items()):
        for item in items:
            library = item.target.split(".")[0]
            allowed = homes.get(library)
            if allowed is not None and not any(_inside(module, p) for p in allowed):
                out.append(f"{module}:{item.line} imports {library} (allowed only in "
                           f"{', '.join(allowed)})")
    return out


def import_cycles(imports: dict[str, list[Import]]) -> list[list[str]]:
    """The import circles between the modules of the map (each as a closed path), one per
    strongly connected group of modules."""
    graph = {m: sorted({i.target for i in items if i.target in imports and i.target != m})
             for m, items in imports.items()}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return [_circle(graph, set(g)) for g in groups]


def _circle(graph: dict[str, list[str]], group: set[str]) -> list[str]:
    """A shortest closed path through the group's first module (breadth first)."""
    start = min(group)
    came: dict[str, str | None] = {start: None}
    frontier = [start]
    while frontier:
        following = []
        for v in frontier:
            for w in graph[v]:
                if w == start:
                    path = [v]
                    while came[path[-1]] is not None:
                        path.append(came[path[-1]])
                    return list(reversed(path)) + [start]
                if w in group and w not in came:
                    came[w] = v
                    following.append(w)
        frontier = following
    return sorted(group)


def describe(cycles: list[list[str]]) -> list[str]:
    """Each circle as one line `a -> b -> a`."""
    return [" -> ".join(c) for c in cycles]


# -- the real tree ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def project_imports() -> dict[str, list[Import]]:
    imports = import_map(SRC)
    assert len(imports) > 50 and "binance_cluster.parallel" in imports
    return imports


def test_libraries_are_imported_only_in_their_homes(project_imports):
    assert library_violations(project_imports) == []


def test_every_library_home_that_exists_does_import_it(project_imports):
    # the rule is about where a library is used: a home that exists and no longer uses it
    # would make the allow-list lie (future homes such as ml.model_store may not exist yet)
    for library in ("mpi4py", "h5py", "binance", "aiohttp"):
        users = [m for m, items in project_imports.items()
                 if any(i.target.split(".")[0] == library for i in items)]
        assert users, library
    assert "binance_cluster.exchange.transport" in [
        m for m, items in project_imports.items()
        if any(i.target.split(".")[0] == "binance" for i in items)]


def test_there_is_no_import_circle(project_imports):
    assert describe(import_cycles(project_imports)) == []


def test_no_broker_module_imports_a_driver(project_imports):
    drivers = ("binance_cluster.candles.fetch", "binance_cluster.backtest.driver",
               "binance_cluster.commands")
    bad = [f"{m} imports {i.target}" for m, items in project_imports.items()
           if _inside(m, "binance_cluster.exchange")
           for i in items if any(_inside(i.target, d) for d in drivers)]
    assert bad == []


# -- the checks themselves, on synthetic trees ------------------------------------------------
def write_tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_the_checks_catch_library_imports_out_of_place(tmp_path):
    root = write_tree(tmp_path / "pkg", {
        "__init__.py": "",
        "parallel.py": "import mpi4py.MPI\n",
        "candles/__init__.py": "",
        "candles/store.py": "import h5py\n",
        "candles/fetch.py": "def f():\n    from binance import Client\n    return Client\n",
        "exchange/__init__.py": "",
        "exchange/transport.py": "from binance.exceptions import BinanceAPIException\n",
        "exchange/broker/__init__.py": "",
        "exchange/broker/binance.py": "import binance\n",
        "exchange/emulator/__init__.py": "",
        "exchange/emulator/app.py": "from aiohttp import web\n",
        "engine/__init__.py": "",
        "engine/sim.py": ("from typing import TYPE_CHECKING\n"
                          "if TYPE_CHECKING:\n    import h5py\nelse:\n    import aiohttp\n"
                          "class A:\n    def m(self):\n        import mpi4py\n"),
        "report/__init__.py": "",
        "report/plots.py": "import matplotlib.pyplot as plt\n",
        "backtest/__init__.py": "",
        "backtest/driver.py": "import matplotlib\n",
    })
    found = library_violations(import_map(root, "binance_cluster"))
    assert found == [
        "binance_cluster.backtest.driver:1 imports matplotlib (allowed only in "
        "binance_cluster.report)",
        "binance_cluster.candles.fetch:2 imports binance (allowed only in "
        "binance_cluster.exchange.transport, binance_cluster.exchange.broker)",
        "binance_cluster.engine.sim:5 imports aiohttp (allowed only in "
        "binance_cluster.exchange.emulator)",
        "binance_cluster.engine.sim:8 imports mpi4py (allowed only in binance_cluster.parallel)",
    ]


def test_the_checks_catch_circles_at_module_and_function_level(tmp_path):
    root = write_tree(tmp_path / "pkg", {
        "__init__.py": "",
        "a.py": "from binance_cluster import b\n",
        "b.py": "def late():\n    from binance_cluster.c import thing\n",
        "c.py": "import binance_cluster.a\nthing = 1\n",
        "d.py": ("from typing import TYPE_CHECKING\n"
                 "if TYPE_CHECKING:\n    from binance_cluster import e\n"),
        "e.py": "from binance_cluster import d\n",
        "sub/__init__.py": ("def __getattr__(name):\n"
                            "    from binance_cluster.sub import impl\n    return impl\n"),
        "sub/impl.py": "from binance_cluster.sub.base import X\n",
        "sub/base.py": "X = 1\n",
        "f.py": "from . import g\n",
        "g.py": "from .f import something\n",
    })
    imports = import_map(root, "binance_cluster")
    assert imports["binance_cluster.f"][0].target == "binance_cluster.g"  # relative resolved
    assert describe(import_cycles(imports)) == [
        "binance_cluster.a -> binance_cluster.b -> binance_cluster.c -> binance_cluster.a",
        "binance_cluster.f -> binance_cluster.g -> binance_cluster.f",
    ]
    # the same map without the function-level import has one circle fewer
    imports["binance_cluster.b"] = [i for i in imports["binance_cluster.b"]
                                    if not i.function_level]
    assert describe(import_cycles(imports)) == [
        "binance_cluster.f -> binance_cluster.g -> binance_cluster.f"]
