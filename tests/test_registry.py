"""The registry: registered names, import targets (``package.module:attr``) and entry points of
installed distributions, found by the real ``importlib.metadata`` in a temporary folder."""

from __future__ import annotations

import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from scalarize.errors import ScalarizeError
from scalarize.registry import ENTRY_POINT_GROUPS, PluginWarning, Registry, target_label


def _module(folder: Path, name: str, body: str) -> str:
    """Write module ``name`` (a fresh, unique one) into ``folder``; returns its name."""
    (folder / f"{name}.py").write_text(textwrap.dedent(body))
    return name


@pytest.fixture()
def on_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("regtest_")]:
        del sys.modules[name]


def _unique(prefix: str = "regtest_") -> str:
    return prefix + uuid.uuid4().hex[:8]


def _registry() -> Registry[int]:
    reg: Registry[int] = Registry("thing", plugins=False)
    reg.register("one")(lambda: 1)
    return reg


# --- import targets -------------------------------------------------------------------------

def test_an_import_target_returns_the_attribute_and_is_cached(on_path):
    mod = _module(on_path, _unique(), """
        calls = []
        def load_mine(**options):
            return options
        class Box:
            @staticmethod
            def make():
                return 7
        """)
    reg = _registry()
    factory = reg.get(f"{mod}:load_mine")
    assert factory(a=1) == {"a": 1}
    assert reg.get(f"{mod}:load_mine") is factory
    assert reg.get(f"{mod}:Box.make")() == 7  # a dotted attribute path
    assert reg.names() == ["one"]  # targets are not listed as names
    assert target_label(f"{mod}:load_mine") == "load_mine"


def test_a_missing_module_is_named(on_path):
    with pytest.raises(ScalarizeError, match=r"no module named 'regtest_nowhere' on the "
                                             r"working directory or PYTHONPATH") as info:
        _registry().get("regtest_nowhere.sub:build")
    assert "\n" not in str(info.value)


def test_an_import_error_inside_the_users_module_shows_its_first_line(on_path):
    mod = _module(on_path, _unique(), "import regtest_not_installed_dep\n")
    with pytest.raises(ScalarizeError) as info:
        _registry().get(f"{mod}:build")
    message = str(info.value)
    assert f"importing module {mod!r} failed" in message
    assert "No module named 'regtest_not_installed_dep'" in message
    assert "\n" not in message
    bad = _module(on_path, _unique(), "raise RuntimeError('broken on purpose\\nsecond line')\n")
    with pytest.raises(ScalarizeError, match=r"RuntimeError: broken on purpose$"):
        _registry().get(f"{bad}:build")


def test_a_missing_attribute_names_module_and_attribute(on_path):
    mod = _module(on_path, _unique(), "def build(): pass\n")
    with pytest.raises(ScalarizeError, match=f"module '{mod}' has no attribute 'biuld'"):
        _registry().get(f"{mod}:biuld")


def test_an_attribute_that_is_not_callable_is_refused(on_path):
    mod = _module(on_path, _unique(), "WIDTH = 64\n")
    with pytest.raises(ScalarizeError, match="is a int, not callable"):
        _registry().get(f"{mod}:WIDTH")


@pytest.mark.parametrize("name", ["a b:c", "mod:", ":attr", "mod:1x"])
def test_malformed_targets_are_refused_in_one_line(name):
    with pytest.raises(ScalarizeError, match=r"write package\.module:attribute"):
        _registry().get(name)


def test_unknown_names_list_the_choices_and_mention_targets():
    with pytest.raises(ScalarizeError, match=r"unknown thing 'two'; choose one of: one \(or "
                                             r"name your own as package.module:attribute\)"):
        _registry().get("two")


def test_built_in_registries_accept_targets():
    from scalarize.benchmarks import BENCHMARKS
    from scalarize.benchmarks.shapes import load_shapes

    assert BENCHMARKS.get("scalarize.benchmarks.shapes:load_shapes") is load_shapes
    assert BENCHMARKS.group == ENTRY_POINT_GROUPS["benchmark"] == "scalarize.benchmarks"


# --- entry points ---------------------------------------------------------------------------

def _distribution(folder: Path, dist: str, group: str, entries: dict[str, str],
                  module: str | None = None, body: str = "") -> None:
    """An installed distribution as importlib.metadata sees one: ``<dist>.dist-info`` with
    METADATA and entry_points.txt, and its module, in ``folder`` (on sys.path)."""
    info = folder / f"{dist.replace('-', '_')}-1.0.dist-info"  # the folder's name as pip writes it
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    lines = "\n".join(f"{name} = {value}" for name, value in entries.items())
    (info / "entry_points.txt").write_text(f"[{group}]\n{lines}\n")
    if module is not None:
        (folder / f"{module}.py").write_text(textwrap.dedent(body))


def test_installed_plugins_are_discovered_lazily(on_path):
    group = f"scalarize.test_{uuid.uuid4().hex[:8]}"
    mod = _unique()
    _distribution(on_path, "regtest-plugin", group, {"mine": f"{mod}:make"}, mod, """
        def make():
            return 42
        """)
    reg: Registry[int] = Registry("thing", group)
    reg.register("one")(lambda: 1)
    assert mod not in sys.modules  # nothing imported before the first miss
    assert reg.get("mine")() == 42
    assert reg.names() == ["mine", "one"]
    assert "mine" in reg


def test_a_broken_plugin_is_one_warning_naming_it(on_path):
    group = f"scalarize.test_{uuid.uuid4().hex[:8]}"
    mod = _unique()
    good = _unique()
    _distribution(on_path, "regtest-broken", group, {"bad": f"{mod}:make"}, mod,
                  "raise ImportError('needs a library you lack')\n")
    _distribution(on_path, "regtest-good", group, {"good": f"{good}:make"}, good,
                  "def make():\n    return 3\n")
    reg: Registry[int] = Registry("thing", group)
    with pytest.warns(PluginWarning) as caught:
        names = reg.names()
    assert names == ["good"]  # the good plugin still registers
    messages = [str(w.message) for w in caught]
    assert len(messages) == 1
    assert "thing plugin 'bad'" in messages[0] and "regtest-broken" in messages[0]
    assert "needs a library you lack" in messages[0]
    with pytest.raises(ScalarizeError, match="unknown thing 'bad'"):
        reg.get("bad")


def test_a_plugin_clashing_with_a_built_in_is_refused(on_path):
    group = f"scalarize.test_{uuid.uuid4().hex[:8]}"
    mod = _unique()
    _distribution(on_path, "regtest-clash", group, {"one": f"{mod}:make", "two": f"{mod}:make"},
                  mod, "def make():\n    return 99\n")
    reg: Registry[int] = Registry("thing", group)
    reg.register("one")(lambda: 1)
    with pytest.warns(PluginWarning, match="'one' from regtest-clash clashes"):
        assert reg.get("two")() == 99
    assert reg.get("one")() == 1  # the built-in wins


def test_a_built_in_registered_after_discovery_still_wins(on_path):
    group = f"scalarize.test_{uuid.uuid4().hex[:8]}"
    mod = _unique()
    _distribution(on_path, "regtest-late", group, {"one": f"{mod}:make"}, mod,
                  "def make():\n    return 99\n")
    reg: Registry[int] = Registry("thing", group)
    assert reg.names() == ["one"]
    with pytest.warns(PluginWarning, match="clashes"):
        reg.register("one")(lambda: 1)
    assert reg.get("one")() == 1


def test_registering_a_name_twice_or_with_a_colon_is_a_bug():
    reg = _registry()
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("one")(lambda: 2)
    with pytest.raises(ValueError, match="holds ':'"):
        reg.register("a:b")


def test_a_session_entry_that_cannot_load_elsewhere_stops_only_itself(tmp_path, monkeypatch):
    """Entries travel one by one: an entry whose module the other process cannot import is a
    stand-in that says so when used; the others load."""
    import importlib

    import scalarize.registry as registry_module
    from scalarize.registry import restore_session, session_entries

    monkeypatch.setattr(registry_module, "_KNOWN", dict(registry_module._KNOWN))  # no leftovers

    (tmp_path / "gone_module.py").write_text("def make():\n    return 'gone'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    gone = importlib.import_module("gone_module")
    toys = Registry[str]("toy thing")
    toys.add("gone", gone.make)
    toys.add("kept", len)
    packed = session_entries()["toy thing"]
    monkeypatch.delitem(sys.modules, "gone_module")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(tmp_path)])
    toys._session.clear()
    toys._factories.clear()
    restore_session({"toy thing": packed, "kind no process has": {"x": None}})
    assert toys.get("kept")("abc") == 3
    with pytest.raises(ScalarizeError, match=r"toy thing 'gone' was given to the driver but "
                                             r"cannot be loaded in this process \("
                                             r"ModuleNotFoundError"):
        toys.get("gone")()
