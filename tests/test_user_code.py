"""The user's own modules that a config names by import target: found on the working directory
or ``PYTHONPATH``, installed ones and the standard library left out, a package too large to
ship refused in one line."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scalarize.config import RunConfig
from scalarize.errors import ScalarizeError
from scalarize.registry import resolve_target
from scalarize.user_code import import_targets, module_location, user_modules


@pytest.fixture()
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A user's project folder on ``sys.path``: a module file and a package."""
    folder = tmp_path / "project"
    (folder / "mypkg").mkdir(parents=True)
    (folder / "mydata.py").write_text("def load(**options):\n    return None\n")
    (folder / "mypkg" / "__init__.py").write_text("")
    (folder / "mypkg" / "models.py").write_text("def build(image_shape):\n    return None\n")
    monkeypatch.syspath_prepend(str(folder))
    yield folder
    for name in ("mydata", "mypkg", "mypkg.models"):
        sys.modules.pop(name, None)


def test_user_modules_are_found_and_installed_ones_left_out(project: Path) -> None:
    config = RunConfig.model_validate({
        "benchmark": {"name": "mydata:load",
                      "options": {"kinds": {"a": "yaml:safe_load", "b": "json:loads"}}},
        "model": {"spec": "mypkg.models:build"},
        "method": {"name": "scalarize.methods:METHODS"},
        "scalarization": {"weights": "onehot:shape"},
    })
    assert import_targets(config) == {"mydata:load", "mypkg.models:build", "yaml:safe_load",
                                      "json:loads", "scalarize.methods:METHODS"}
    # yaml is in site-packages, json in the standard library, scalarize an (editable) install
    assert user_modules([config, config]) == [(project / "mydata.py").resolve(),
                                              (project / "mypkg").resolve()]
    assert module_location("yaml") is None and module_location("json") is None
    assert module_location("scalarize") is None and module_location("sys") is None


def test_a_missing_module_is_left_to_the_usual_one_line_error(project: Path) -> None:
    config = RunConfig.model_validate({"model": {"spec": "nosuchmodule_xyz:build"}})
    assert user_modules([config]) == []
    with pytest.raises(ScalarizeError, match="no module named 'nosuchmodule_xyz'") as info:
        resolve_target("nosuchmodule_xyz:build")
    assert "\n" not in str(info.value)


def test_a_package_too_large_to_upload_is_refused_in_one_line(project: Path) -> None:
    (project / "mypkg" / "data.bin").write_bytes(bytes(4096))
    config = RunConfig.model_validate({"model": {"spec": "mypkg.models:build"}})
    with pytest.raises(ScalarizeError, match="keep data outside the package folder") as info:
        user_modules([config], limit=1024)
    assert "\n" not in str(info.value) and "mypkg" in str(info.value)
    assert user_modules([config]) == [(project / "mypkg").resolve()]
