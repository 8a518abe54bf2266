"""The ``--track BACKEND=TARGET`` flag of ``train``, ``sweep``, ``compare``, ``search`` and
``replay``, as ``tracking.*`` config overrides.

Example:
    >>> track_overrides(["mlflow=http://localhost:5000", "wandb=myproject"])
    ['tracking.mlflow="http://localhost:5000"', 'tracking.wandb={"project": "myproject"}']
    >>> track_overrides(["neptune=x"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    scalarize.errors.ScalarizeError: --track neptune=x: unknown tracker 'neptune'; known: ml...
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from scalarize.config import apply_overrides, validation_message
from scalarize.errors import ScalarizeError

KNOWN = ("mlflow", "tensorboard", "wandb")
HELP = ("also log to a tracker, repeatable: tensorboard=DIR, mlflow=URI (e.g. "
        "sqlite:///mlflow.db), wandb=PROJECT (offline; needs wandb installed)")

C = TypeVar("C", bound=BaseModel)


def track_overrides(values: Sequence[str] | None) -> list[str]:
    """``--track`` values (``tensorboard=DIR``, ``mlflow=URI``, ``wandb=PROJECT``) as config
    overrides (values JSON-quoted, so a URI or folder is never read as a number or a list)."""
    overrides = []
    for value in values or ():
        backend, sep, target = value.partition("=")
        backend, target = backend.strip(), target.strip()
        if not sep or not target:
            raise ScalarizeError(f"--track {value!r}: write BACKEND=TARGET, e.g. "
                                 "tensorboard=tb-logs or mlflow=sqlite:///mlflow.db")
        if backend not in KNOWN:
            raise ScalarizeError(f"--track {value}: unknown tracker {backend!r}; known: "
                                 f"{', '.join(KNOWN)}")
        tree: Any = {"project": target} if backend == "wandb" else target
        overrides.append(f"tracking.{backend}={json.dumps(tree)}")
    return overrides


def with_tracking(config: C, values: Sequence[str] | None) -> C:
    """``config`` with the ``--track`` values applied (for commands that take no overrides,
    such as ``replay``)."""
    if not values:
        return config
    tree = apply_overrides(config.model_dump(mode="json"), track_overrides(values))
    try:
        return type(config).model_validate(tree)
    except ValidationError as exc:
        raise ScalarizeError(validation_message(exc, "--track")) from None
