"""A tiny ``name -> factory`` registry used by every extensible box of the pipeline.

A name is looked up in three places, the same for this package's built-ins and users' code:

1. names registered with :meth:`Registry.register` (the built-ins do this at import time);
2. entry points of installed packages, in the registry's group (``scalarize.benchmarks``,
   ``scalarize.models``, ...; see :data:`ENTRY_POINT_GROUPS`), discovered on the first lookup
   miss or :meth:`Registry.names` call, so ``pip install their-plugin`` is enough;
3. import targets ``package.module:attr``, imported from the working directory or
   ``PYTHONPATH`` on first use (and cached).

Example:
    >>> models = Registry[int]("model family", plugins=False)
    >>> @models.register("one")
    ... def _one() -> int:
    ...     return 1
    >>> models.get("one")()
    1
    >>> models.get("operator:truth")(1)
    True
"""

from __future__ import annotations

import importlib
import importlib.metadata
import re
import sys
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Generic, TypeVar

from scalarize.errors import ScalarizeError

T = TypeVar("T")

#: The entry-point group of each registry kind: an installed package registers a factory
#: with ``[project.entry-points."scalarize.benchmarks"] mine = "mypkg.data:load_mine"``.
ENTRY_POINT_GROUPS: dict[str, str] = {
    "benchmark": "scalarize.benchmarks",
    "model family": "scalarize.models",
    "task kind": "scalarize.task_kinds",
    "method": "scalarize.methods",
    "probe": "scalarize.probes",
    "search strategy": "scalarize.strategies",
    "engine": "scalarize.engines",
}

_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_TARGET = re.compile(rf"^({_IDENTIFIER}(?:\.{_IDENTIFIER})*):({_IDENTIFIER}(?:\.{_IDENTIFIER})*)$",
                     re.ASCII)
_DEFAULT = object()

#: Where each registry kind is defined, so a fresh process (a Ray worker) can import it before
#: :func:`restore_session` puts the calling process's session entries back.
_HOME: dict[str, str] = {
    "benchmark": "scalarize.benchmarks",
    "model family": "scalarize.models",
    "task kind": "scalarize.training.task_kinds",
    "method": "scalarize.methods",
    "probe": "scalarize.probes",
    "search strategy": "scalarize.search.strategies",
    "engine": "scalarize.engines.executors",
}
_KNOWN: dict[str, Registry[Any]] = {}


class PluginWarning(UserWarning):
    """An installed plugin that could not be registered (broken, or a clashing name)."""


def is_import_target(name: str) -> bool:
    """Whether ``name`` is written as an import target (``package.module:attr``)."""
    return ":" in name


def target_label(name: str) -> str:
    """A short readable label for a registry name: the attribute of an import target
    (``mypkg.data:load_mine`` -> ``load_mine``), else the name itself; never holds ``:``."""
    return name.rpartition(":")[2].rpartition(".")[2] if is_import_target(name) else name


def unknown_option(exc: TypeError) -> str | None:
    """The keyword a factory refused (``f() got an unexpected keyword argument 'x'`` -> ``x``),
    so callers can name the option instead of showing Python's signature message.

    Example:
        >>> unknown_option(TypeError("f() got an unexpected keyword argument 'gamma'"))
        'gamma'
    """
    found = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
    return found[1] if found else None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def resolve_target(target: str, kind: str = "factory") -> Callable[..., Any]:
    """Import ``package.module:attr`` and return the attribute, which must be callable.

    Every failure is one :class:`ScalarizeError` line: a malformed target, a module that is
    not found (on the working directory or ``PYTHONPATH``), an error raised while importing
    the module (its first line), a missing attribute, an attribute that is not callable.
    """
    match = _TARGET.match(target.strip())
    if not match:
        raise ScalarizeError(f"cannot read {kind} {target!r} as an import target; write "
                             "package.module:attribute, e.g. mypkg.models:build")
    module_name, attr_path = match.groups()
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise ScalarizeError(
                f"{kind} {target!r}: no module named {missing!r} on the working directory or "
                "PYTHONPATH; run from the folder that holds it or add that folder to "
                "PYTHONPATH") from None
        raise ScalarizeError(f"{kind} {target!r}: importing module {module_name!r} failed: "
                             f"{_first_line(exc)}") from exc
    except Exception as exc:  # anything the user's module raises while it is imported
        raise ScalarizeError(f"{kind} {target!r}: importing module {module_name!r} failed: "
                             f"{_first_line(exc)}") from exc
    found: Any = module
    for part in attr_path.split("."):
        found = getattr(found, part, _DEFAULT)
        if found is _DEFAULT:
            raise ScalarizeError(f"{kind} {target!r}: module {module_name!r} has no attribute "
                                 f"{attr_path!r}")
    if not callable(found):
        raise ScalarizeError(f"{kind} {target!r} is a {type(found).__name__}, not callable; "
                             "point it at a function or a class")
    return found


class Registry(Generic[T]):
    """Maps names to factories; unknown names raise a :class:`ScalarizeError` listing valid
    ones. ``group`` is the entry-point group plugins register in (by default the one
    :data:`ENTRY_POINT_GROUPS` lists for ``kind``); ``plugins=False`` reads none."""

    def __init__(self, kind: str, group: str | None = None, *, plugins: bool = True) -> None:
        self.kind = kind
        self.group = (group or ENTRY_POINT_GROUPS.get(kind)) if plugins else None
        self._factories: dict[str, Callable[..., T]] = {}
        self._plugins: dict[str, str] = {}  # name -> the distribution that registered it
        self._targets: dict[str, tuple[ModuleType, Callable[..., T]]] = {}
        self._discovered = False
        self._session: dict[str, Callable[..., T]] = {}
        if plugins:
            _KNOWN.setdefault(kind, self)

    def add(self, name: str, factory: Callable[..., T]) -> str:
        """Register ``factory`` under ``name`` for this process only (a *session entry*: what the
        Python API does with the user's objects). Adding the same name again replaces the
        earlier session entry; a built-in or plugin of that name is never replaced. Session
        entries travel to Ray workers with :func:`session_entries` / :func:`restore_session`.
        Returns ``name``.

        Example:
            >>> kinds = Registry[int]("toy", plugins=False)
            >>> kinds.add("mine", lambda: 3)
            'mine'
            >>> kinds.get("mine")()
            3
        """
        if is_import_target(name) or not name.strip():
            raise ScalarizeError(f"{self.kind} name {name!r} is empty or holds ':'; pick "
                                 "another name")
        if not callable(factory):
            raise ScalarizeError(f"{self.kind} {name!r} is a {type(factory).__name__}, not "
                                 "callable")
        if name in self._factories and name not in self._session:
            raise ScalarizeError(f"{self.kind} {name!r} is already built in (or installed); "
                                 "pick another name")
        self._factories[name] = factory
        self._session[name] = factory
        return name

    def session(self) -> dict[str, Callable[..., T]]:
        """This process's session entries (see :meth:`add`)."""
        return dict(self._session)

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator that registers ``factory`` under ``name`` (built-ins and plugins alike).
        A built-in registered after a plugin took its name replaces the plugin (with a
        warning): built-ins win."""
        if is_import_target(name) or not name.strip():
            raise ValueError(f"{self.kind} name {name!r} is empty or holds ':' (kept for "
                             "import targets)")

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._plugins:
                self._clash(name, self._plugins.pop(name))
            elif name in self._factories and self._factories[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return decorate

    def get(self, name: str) -> Callable[..., T]:
        """The factory registered under ``name``, or the one an import target names."""
        if name in self._factories:
            return self._factories[name]
        if is_import_target(name):
            return self._target(name)
        self.load_plugins()
        try:
            return self._factories[name]
        except KeyError:
            raise ScalarizeError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())} (or "
                "name your own as package.module:attribute)"
            ) from None

    def _target(self, name: str) -> Callable[..., T]:
        """An import target, resolved once for as long as its module stays imported (a module
        removed from ``sys.modules`` and imported again is resolved again)."""
        module = sys.modules.get(name.strip().partition(":")[0])
        cached = self._targets.get(name)
        if cached is not None and module is not None and cached[0] is module:
            return cached[1]
        factory = resolve_target(name, self.kind)
        self._targets[name] = (sys.modules[name.strip().partition(":")[0]], factory)
        return factory

    def names(self) -> list[str]:
        """Registered names (built-ins and installed plugins), sorted."""
        self.load_plugins()
        return sorted(self._factories)

    def load_plugins(self) -> None:
        """Register the entry points of installed packages in :attr:`group` (once). A plugin
        that fails to load, is not callable, or clashes with a registered name is skipped
        with a :class:`PluginWarning` naming it."""
        if self._discovered or self.group is None:
            return
        self._discovered = True
        try:
            points = importlib.metadata.entry_points(group=self.group)
        except Exception as exc:  # a damaged installation must not stop the built-ins
            warnings.warn(f"cannot list {self.kind} plugins ({self.group}): "
                          f"{_first_line(exc)}", PluginWarning, stacklevel=3)
            return
        for point in points:
            dist = point.dist.name if point.dist is not None else "an unknown distribution"
            where = f"{self.kind} plugin {point.name!r} ({point.value}, from {dist})"
            if is_import_target(point.name) or not point.name.strip():
                warnings.warn(f"{where} has an invalid name; skipped", PluginWarning,
                              stacklevel=3)
                continue
            if point.name in self._factories:
                self._clash(point.name, dist)
                continue
            try:
                factory = point.load()
            except Exception as exc:
                warnings.warn(f"{where} could not be loaded: {_first_line(exc)}; skipped",
                              PluginWarning, stacklevel=3)
                continue
            if point.name in self._factories:  # it registered itself while being imported
                if self._factories[point.name] is not factory:
                    self._clash(point.name, dist)
                continue
            if not callable(factory):
                warnings.warn(f"{where} is a {type(factory).__name__}, not callable; skipped",
                              PluginWarning, stacklevel=3)
                continue
            self._factories[point.name] = factory
            self._plugins[point.name] = dist

    def _clash(self, name: str, dist: str) -> None:
        warnings.warn(f"{self.kind} plugin {name!r} from {dist} clashes with a registered "
                      f"{self.kind} of that name; the plugin's is ignored", PluginWarning,
                      stacklevel=4)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        if name not in self._factories:
            self.load_plugins()
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def session_entries() -> dict[str, dict[str, bytes | None]]:
    """Every registry's session entries (``kind -> name -> payload``), to ship to another
    process: each entry pickled on its own with cloudpickle (objects defined in ``__main__``
    travel by value, the rest by reference, so their modules must be importable there), or
    ``None`` when it cannot be pickled. One entry that cannot travel never stops the others:
    :func:`restore_session` puts a stand-in for it that says why when (and only when) used."""
    import cloudpickle  # entries travel to Ray workers and to the local engine's run workers

    packed: dict[str, dict[str, bytes | None]] = {}
    for kind, registry in _KNOWN.items():
        for name, factory in registry.session().items():
            try:
                payload: bytes | None = cloudpickle.dumps(factory)
            except Exception:
                payload = None
            packed.setdefault(kind, {})[name] = payload
    return packed


def _unavailable(kind: str, name: str, reason: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise ScalarizeError(f"{kind} {name!r} was given to the driver but cannot be loaded "
                             f"in this process ({reason}); make its module importable here "
                             "(docs/extending.md, On a Ray cluster)")

    return refuse


def restore_session(entries: dict[str, dict[str, bytes | None]]) -> None:
    """Put :func:`session_entries` of another process back into this one's registries."""
    import pickle

    for kind, named in entries.items():
        if kind not in _KNOWN and kind in _HOME:
            importlib.import_module(_HOME[kind])
        registry = _KNOWN.get(kind)
        if registry is None:  # a registry this process never made: nothing here can ask
            continue
        for name, payload in named.items():
            if payload is None:
                factory = _unavailable(kind, name, "it could not be pickled")
            else:
                try:
                    factory = pickle.loads(payload)
                except Exception as exc:
                    factory = _unavailable(kind, name, _first_line(exc))
            registry.add(name, factory)


__all__ = ["ENTRY_POINT_GROUPS", "PluginWarning", "Registry", "is_import_target",
           "resolve_target", "restore_session", "session_entries", "target_label"]
