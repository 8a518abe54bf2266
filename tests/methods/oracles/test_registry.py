"""Every registered method has an oracle: its name is in the ``COVERED`` set of a module here."""

from __future__ import annotations

import importlib
import pkgutil

import tests.methods.oracles as oracles
from scalarize.methods import METHODS


def _covered() -> set[str]:
    names: set[str] = set()
    for info in pkgutil.iter_modules(oracles.__path__):
        if info.name.startswith("test_"):
            module = importlib.import_module(f"{oracles.__name__}.{info.name}")
            names |= set(getattr(module, "COVERED", ()))
    return names


#: methods whose oracle is not written yet: empty since issue 34 (every registered method has
#: one); a new method may not be added here
PENDING: set[str] = set()


def test_every_registered_method_has_an_oracle():
    missing = sorted(set(METHODS.names()) - _covered() - PENDING)
    assert not missing, f"methods without an oracle test in tests/methods/oracles/: {missing}"


def test_oracles_cover_only_registered_methods():
    assert not _covered() - set(METHODS.names())
