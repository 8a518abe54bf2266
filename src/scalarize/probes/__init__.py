"""Probes: trainer callbacks turned on from the config's ``probes`` section.

``probes: {conflicts: {every: 50}}`` turns on :class:`ConflictProbe`. Adding a probe means one
module and one registry line.
"""

from __future__ import annotations

from typing import Any

from scalarize.errors import ScalarizeError
from scalarize.probes.conflicts import ConflictProbe
from scalarize.registry import Registry, unknown_option
from scalarize.training.callbacks import Callback

PROBES: Registry[Callback] = Registry("probe")
PROBES.register("conflicts")(ConflictProbe)


def build_probes(config: dict[str, dict[str, Any] | None]) -> list[Callback]:
    """The callbacks named in a config's ``probes`` section."""
    probes = []
    for name, options in config.items():
        factory = PROBES.get(name)
        try:
            probes.append(factory(**(options or {})))
        except (TypeError, ValueError) as exc:
            unexpected = unknown_option(exc) if isinstance(exc, TypeError) else None
            if unexpected:
                raise ScalarizeError(f"probe {name!r} has no option {unexpected!r}; remove "
                                     f"it from probes.{name}") from None
            raise ScalarizeError(f"probe {name!r}: bad options {options}: {exc}") from None
    return probes


__all__ = ["PROBES", "ConflictProbe", "build_probes"]
