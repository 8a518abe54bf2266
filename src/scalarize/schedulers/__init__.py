"""Ray Tune's schedulers and searcher, deciding with the shared decisions of
:mod:`scalarize.search` for the Ray engines of :mod:`scalarize.engines`."""
