"""The README's "Your own model and data" example runs as printed, in at most 20 lines."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).parents[1] / "README.md"


def _example(title: str = "## Your own model and data") -> str:
    section = README.read_text().split(title, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def test_the_own_model_example_is_short_and_runs(tmp_path, monkeypatch, capsys):
    code = _example()
    assert len(code.splitlines()) <= 20
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    printed = capsys.readouterr().out
    assert "'digit'" in printed and "usernet-width32" in printed
    assert len(list((tmp_path / "sweeps/mine").glob("*/summary.json"))) == 8


def test_the_tabular_example_runs(tmp_path, monkeypatch, capsys):
    section = README.read_text().split("## Your own model and data", 1)[1]
    code = re.findall(r"```python\n(.*?)```", section, re.S)[1]
    assert "load_digits" in code and len(code.splitlines()) <= 15
    monkeypatch.chdir(tmp_path)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest on a shared machine
    try:
        exec(compile(code, "README.md", "exec"), {"__name__": "__main__"})
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "'digit'" in printed and "mlp-d2-w64" in printed
    assert len(list((tmp_path / "sweeps/digits").glob("*/summary.json"))) == 6


def test_the_trained_run_example_runs_and_its_export_gives_the_models_outputs(
        tmp_path, monkeypatch, capsys):
    import numpy as np

    from scalarize.trained import run_exported

    code = _example("## Using a trained run")
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {"__name__": "__main__"}
    exec(compile(code, "README.md", "exec"), scope)
    printed = capsys.readouterr().out.strip()
    assert printed.startswith("[") and len(printed.strip("[]").split()) == 20
    model, x = scope["model"], scope["x"]
    expected = model.outputs(x[100:])  # type: ignore[attr-defined]
    got = run_exported(tmp_path / "model.onnx", "onnx", x[100:])  # type: ignore[index]
    for name, out in zip(expected, got, strict=True):
        np.testing.assert_allclose(out, expected[name].numpy(), rtol=1e-4, atol=1e-5)


def test_the_readme_names_every_registered_method():
    """The method list is the registry's: a method registered but not described fails."""
    from scalarize.methods import METHODS

    text = (Path(__file__).parent.parent / "README.md").read_text()
    missing = [name for name in METHODS.names() if f"`{name}`" not in text]
    assert not missing, f"README.md does not name these registered methods: {missing}"
