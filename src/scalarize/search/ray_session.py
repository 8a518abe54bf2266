"""A Ray session for the Ray engine (planned runs and population searches alike)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def ray_session(address: str | None) -> Iterator[None]:
    """Ray connected to ``address`` (a new local instance when ``None``: never a stale cluster
    whose address file a ``ray start`` left behind) for the duration; shut down afterwards
    unless it was already running."""
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        yield
    finally:
        if started_here:
            ray.shutdown()


__all__ = ["ray_session"]
