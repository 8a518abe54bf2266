"""Methods: a registry of ``name -> factory(**options) -> Method``.

Adding a method means one module and one registry line; the trainer does not change.
"""

from __future__ import annotations

from typing import Any

from scalarize.errors import ScalarizeError
from scalarize.methods.base import Method, StepContext
from scalarize.methods.static import StaticScalarization
from scalarize.registry import Registry

METHODS: Registry[Method] = Registry("method")
METHODS.register("static")(StaticScalarization)


def build_method(name: str, options: dict[str, Any] | None = None) -> Method:
    """Instantiate method ``name`` with its ``options``; unknown options are a clear error."""
    factory = METHODS.get(name)
    try:
        return factory(**(options or {}))
    except TypeError as exc:
        raise ScalarizeError(f"method {name!r}: bad options {options}: {exc}") from None


__all__ = ["METHODS", "Method", "StaticScalarization", "StepContext", "build_method"]
