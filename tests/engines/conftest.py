"""The search tests' tiny config and its fixtures (``tests/search/conftest.py``), shared with
the engine tests."""

from tests.search.conftest import local_ray, ray_search_file, search_file

__all__ = ["local_ray", "ray_search_file", "search_file"]
