"""The search tests' tiny config and its fixtures (``tests/search/conftest.py``), shared with
the study tests, and a count of the strategy resolutions a command makes."""

import sys
from collections import Counter

import pytest

from scalarize.search import resolve, strategies
from tests.search.conftest import local_ray, ray_search_file, search_file


@pytest.fixture()
def resolutions(monkeypatch) -> Counter[str]:
    """How many times, from now on, a search's strategy is resolved (``resolve``:
    :func:`~scalarize.search.resolve.resolve_strategy`) and built (``build``:
    :func:`~scalarize.search.strategies.build_strategy`, which any resolution goes through),
    counted wherever a loaded module of the package holds either."""
    counts: Counter[str] = Counter()
    real = {"resolve_strategy": resolve.resolve_strategy,
            "build_strategy": strategies.build_strategy}

    def counting(name: str, key: str):
        def wrapper(*args, **kwargs):
            counts[key] += 1
            return real[name](*args, **kwargs)
        return wrapper

    wrappers = {"resolve_strategy": counting("resolve_strategy", "resolve"),
                "build_strategy": counting("build_strategy", "build")}
    for module in [m for n, m in sys.modules.items() if n.startswith("scalarize")]:
        for name, wrapper in wrappers.items():
            if getattr(module, name, None) is real[name]:
                monkeypatch.setattr(module, name, wrapper)
    return counts


__all__ = ["local_ray", "ray_search_file", "resolutions", "search_file"]
