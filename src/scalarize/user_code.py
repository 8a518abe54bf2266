"""The user's own code that a config names: the modules that its import targets
(``package.module:attr``, resolved by :mod:`scalarize.registry`) name and that are neither
installed nor in the standard library, i.e. code found through the working directory or
``PYTHONPATH``, and where their files are. A process started elsewhere needs them: the Ray
engine ships their files (a module's ``.py`` file, a package's folder) to Ray as
``runtime_env={"py_modules": [...]}`` (:mod:`scalarize.engines.ray_session`), so that Ray
uploads them to the cluster and workers on other nodes import them.

Example:
    >>> from scalarize.config import RunConfig
    >>> sorted(import_targets(RunConfig.model_validate(
    ...     {"model": {"spec": "mymodels:build"}, "method": {"name": "static"}})))
    ['mymodels:build']
    >>> user_modules([RunConfig()])
    []
"""

from __future__ import annotations

import functools
import importlib.metadata
import importlib.util
import os
import re
import site
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from scalarize.errors import ScalarizeError

MAX_UPLOAD = 100 * 2**20  # bytes: a user package folder larger than this is refused
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_TARGET = re.compile(rf"^({_IDENTIFIER})(?:\.{_IDENTIFIER})*:{_IDENTIFIER}(?:\.{_IDENTIFIER})*$",
                     re.ASCII)
# config sections whose strings are never import targets (``onehot:shape`` is a weights preset)
_NOT_TARGETS = {"scalarization", "name", "smoke", "tracking"}


def _strings(tree: Any) -> Iterator[str]:
    """Every string of a config tree, dictionary keys included."""
    if isinstance(tree, str):
        yield tree
    elif isinstance(tree, dict):
        for key, value in tree.items():
            yield from _strings(key)
            yield from _strings(value)
    elif isinstance(tree, list | tuple):
        for value in tree:
            yield from _strings(value)


def import_targets(config: BaseModel) -> set[str]:
    """The strings of ``config`` written as import targets (``benchmark.name``, ``model.spec``,
    ``method.name``, task kinds and probes in options, ...), weights presets aside."""
    tree = config.model_dump(exclude=_NOT_TARGETS & set(type(config).model_fields))
    return {s.strip() for s in _strings(tree) if _TARGET.match(s.strip())}


@functools.cache
def _installed_names() -> frozenset[str]:
    """Top-level names that an installed distribution provides (editable installs included)."""
    try:
        return frozenset(importlib.metadata.packages_distributions())
    except Exception:  # a damaged installation: fall back on the paths alone
        return frozenset()


def _installed_roots() -> list[Path]:
    """Folders of the standard library and of installed packages."""
    roots = {sysconfig.get_paths().get(key) for key in ("stdlib", "platstdlib", "purelib",
                                                        "platlib")}
    roots.update(getattr(site, "getsitepackages", list)())
    roots.add(getattr(site, "getusersitepackages", lambda: None)())
    return [Path(r).resolve() for r in roots if r]


def module_location(name: str) -> Path | None:
    """Where the top-level module ``name`` of the user's code is: its ``.py`` file or its
    package folder; ``None`` when it is built in, installed, in the standard library, not a
    plain Python file, or not found (importing it later gives the usual one-line error)."""
    if name in sys.builtin_module_names or name in _installed_names():
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):  # e.g. ``__main__``, which has no spec
        return None
    if spec is None:
        return None
    locations = list(spec.submodule_search_locations or [])
    if locations:
        if len(locations) != 1:  # a namespace package spread over folders: Ray takes one
            return None
        found = Path(locations[0])
    elif spec.origin and spec.origin.endswith(".py"):
        found = Path(spec.origin)
    else:
        return None
    found = found.resolve()
    if any(found.is_relative_to(root) for root in _installed_roots()):
        return None
    return found


def folder_size(folder: Path, limit: int = MAX_UPLOAD) -> int:
    """Bytes of the files under ``folder`` (``__pycache__`` aside), counting stops past
    ``limit``."""
    total = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for file in files:
            try:
                total += (Path(root) / file).stat().st_size
            except OSError:
                continue
            if total > limit:
                return total
    return total


def user_modules(configs: Iterable[BaseModel], limit: int = MAX_UPLOAD) -> list[Path]:
    """The files and package folders of the user's modules that ``configs`` name by import
    target, each once (see the module docstring); a package folder over ``limit`` bytes is
    refused with one line, since Ray uploads the whole folder."""
    names = sorted({target.partition(":")[0].partition(".")[0]
                    for config in configs for target in import_targets(config)})
    found: list[Path] = []
    for name in names:
        where = module_location(name)
        if where is None or where in found:
            continue
        if where.is_dir() and folder_size(where, limit) > limit:
            raise ScalarizeError(
                f"the package {name!r} ({where}) holds over {limit / 2**20:g} MiB, more than "
                "Ray should upload to its workers; keep data outside the package folder (give "
                "its path in benchmark.options)")
        found.append(where)
    return found


__all__ = ["MAX_UPLOAD", "import_targets", "module_location", "user_modules"]
