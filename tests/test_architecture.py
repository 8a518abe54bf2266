"""Dependencies flow one way (the contracts themselves are checked by lint-imports in
`make test`); here, what that buys at run time."""

import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent


def _loaded_after(statement: str, modules: list[str]) -> dict[str, bool]:
    code = f"{statement}; import sys; print(*[m in sys.modules for m in {modules!r}])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    return dict(zip(modules, [flag == "True" for flag in out], strict=True))


def test_reading_the_run_store_never_loads_the_training_stack():
    loaded = _loaded_after("import scalarize.report, scalarize.analysis, scalarize.runs",
                           ["torch", "scalarize.training", "scalarize.search",
                            "scalarize.engines", "scalarize.studies", "ray"])
    assert not any(loaded.values()), loaded


def test_the_package_root_is_lazy():
    assert _loaded_after("import scalarize", ["torch", "pandas"]) == {"torch": False,
                                                                       "pandas": False}
    assert _loaded_after("from scalarize import Trainer", ["torch"]) == {"torch": True}


def test_the_report_command_never_loads_the_training_stack(tmp_path):
    """The whole command, parser included (its --engine/--strategy names are not listed
    eagerly), on a sweep folder of the previous release."""
    sweep = "tests/runs/release_0_1/sweep"
    loaded = _loaded_after(
        "import io, sys, scalarize.cli; sys.stdout = io.StringIO(); "
        f"rc = scalarize.cli.main(['report', {sweep!r}, '--out', {str(tmp_path)!r}]); "
        "sys.stdout = sys.__stdout__; assert rc == 0",
        ["torch", "scalarize.training", "scalarize.search", "scalarize.engines",
         "scalarize.studies", "scalarize.methods"])
    assert not any(loaded.values()), loaded
    assert (tmp_path / "report.html").is_file()


# -- the import graph, read statically (every import, inside a function too) -------------------

def _graph(*, type_checking: bool) -> grimp.ImportGraph:
    return grimp.build_graph("scalarize", exclude_type_checking_imports=not type_checking)


def _top(module: str) -> str:
    """``scalarize.search.sweep`` -> ``scalarize.search``."""
    return ".".join(module.split(".")[:2])


def _package_cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """The loops (strongly connected groups of two or more) of a package -> packages map."""
    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in imports.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reached = {package: reach(package) for package in imports}
    loops = {frozenset(p for p in reached[a] if a in reached.get(p, ()))
             for a in imports if a in reached[a]}
    return sorted(sorted(loop) for loop in loops)


def test_the_package_cycle_finder_finds_a_loop():
    assert _package_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _package_cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_top_level_packages():
    """Outside ``if TYPE_CHECKING:``, no package of scalarize imports one that imports it back,
    directly or through others (the package root's lazy exports aside)."""
    graph = _graph(type_checking=False)
    imports: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], str] = {}
    for importer in graph.modules:
        if importer == "scalarize":
            continue
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported.startswith("scalarize.") and _top(importer) != _top(imported):
                imports.setdefault(_top(importer), set()).add(_top(imported))
                lines.setdefault((_top(importer), _top(imported)), f"{importer} -> {imported}")
    loops = _package_cycles(imports)
    assert not loops, "import cycles between packages: " + "; ".join(
        " <-> ".join(loop) + " (" + ", ".join(
            lines[a, b] for a in loop for b in loop if (a, b) in lines) + ")"
        for loop in loops)


def _pyproject_layers() -> list[grimp.Layer]:
    """The layers contract of pyproject.toml as grimp layers, highest first (``a | b``:
    independent siblings; ``a : b``: siblings that may import each other)."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = [c for c in config["tool"]["importlinter"]["contracts"] if c["type"] == "layers"]
    assert len(contracts) == 1, "expected one layers contract in pyproject.toml"
    layers = []
    for line in contracts[0]["layers"]:
        independent = ":" not in line
        names = [name.strip() for name in line.replace(":", "|").split("|")]
        layers.append(grimp.Layer(*names, independent=independent))
    return layers


def test_no_layer_imports_a_layer_above_it():
    """Every import counts here, one inside a function or under TYPE_CHECKING too."""
    layers = _pyproject_layers()
    assert any("scalarize.launch" in layer.module_tails for layer in layers)
    illegal = _graph(type_checking=True).find_illegal_dependencies_for_layers(layers=layers)
    found = sorted(f"{route_head} -> {route_tail} (so {dep.importer} imports {dep.imported})"
                   for dep in illegal for route in dep.routes
                   for route_head in route.heads for route_tail in route.tails)
    assert not found, "imports against the layers of pyproject.toml:\n" + "\n".join(found)


@pytest.mark.parametrize("room", ["search", "engines", "studies", "schedulers"])
def test_the_search_rooms_stay_small(room):
    """Issue 31's bound: each of the rooms a search spans holds at most 1,500 lines (a room
    that outgrows it is split by what it owns, as ``schedulers`` left ``engines``)."""
    lines = sum(len(path.read_text().splitlines())
                for path in (ROOT / "src" / "scalarize" / room).rglob("*.py"))
    assert lines <= 1500, f"src/scalarize/{room}/ has {lines} lines"
