"""Dependencies flow one way (the contracts themselves are checked by lint-imports in
`make test`); here, what that buys at run time."""

import subprocess
import sys


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
