"""Optuna's samplers and pruners over the weight simplex: the parameterisation, the samplers of
the trial strategies (``tpe``, ``gp``, ``cmaes``, ``nsga2``, ``asha``, ``hyperband``) and the
early-stopping rules. Nothing here trains; :mod:`scalarize.search.trials` runs the trials.

**Parameterisation.** A weight vector of ``K`` objectives (tasks, or the domains of an MDL view:
their weights are the objectives' weights either way) is proposed as ``K − 1`` coordinates
``z_i ∈ [0, 1]`` (``z0``, ``z1``, …) mapped by *stick-breaking*: ``v_i = 1 − (1 − z_i)^(1/(K−1−i))``
(the inverse CDF of Beta(1, K−1−i)), ``w_i = v_i · ∏_{j<i} (1 − v_j)`` and ``w_{K−1}`` the rest.
Why this one, and its price: ``docs/search-strategies.md`` ("The simplex").

**Determinism.** A sampler is built again for every trial with a seed drawn from the search
seed and the trial's number (:func:`trial_seed`), so a proposal depends only on the trials
already in the study's storage: a search resumed from its journal makes the proposals of an
uninterrupted one. Samplers that carry state between trials (CMA-ES, NSGA-II) keep it in the
storage, as Optuna does anyway.

Example:
    >>> point = to_weights({"z0": 0.5, "z1": 0.5}, 3)
    >>> [round(w, 4) for w in point]
    [0.2929, 0.3536, 0.3536]
    >>> [round(v, 6) for v in to_params(point).values()]
    [0.5, 0.5]
    >>> to_weights({"z0": 1.0}, 2)
    (1.0, 0.0)
    >>> rungs(1, 3, 10)
    [1, 3, 9]
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from scalarize.errors import ScalarizeError

if TYPE_CHECKING:
    import optuna

#: The samplers a trial strategy may use (``search.sampler`` of ``asha`` / ``hyperband`` takes
#: the first four).
SAMPLERS = ("random", "tpe", "gp", "cmaes", "nsga2")
#: Samplers that propose for one objective (the average held-out score): those ASHA can prune.
SINGLE_OBJECTIVE = ("random", "tpe", "gp", "cmaes")
INSTALL = "pip install -c constraints.txt 'scalarize[optuna]'"


def import_optuna(what: str) -> Any:
    """The ``optuna`` module, or a one-line error saying how to install it for ``what``."""
    try:
        import optuna
    except ImportError:
        raise ScalarizeError(f"{what} needs Optuna: {INSTALL}") from None
    return optuna


# -- the simplex ------------------------------------------------------------------------------
def param_names(n_objectives: int) -> list[str]:
    """The coordinates of a weight vector of ``n_objectives``: ``z0 … z{K−2}``."""
    if n_objectives < 2:
        raise ScalarizeError(f"a weight search needs at least two objectives, got "
                             f"{n_objectives}")
    return [f"z{i}" for i in range(n_objectives - 1)]


def distributions(n_objectives: int) -> dict[str, Any]:
    """Optuna's search space: each coordinate uniform on [0, 1]."""
    from optuna.distributions import FloatDistribution

    return {name: FloatDistribution(0.0, 1.0) for name in param_names(n_objectives)}


def to_weights(params: Mapping[str, float], n_objectives: int) -> tuple[float, ...]:
    """The weight vector of the coordinates ``params`` (stick-breaking, module docstring)."""
    weights, rest = [], 1.0
    names = param_names(n_objectives)
    for i, name in enumerate(names):
        z = min(1.0, max(0.0, float(params[name])))
        v = 1.0 - (1.0 - z) ** (1.0 / (n_objectives - 1 - i))
        weights.append(rest * v)
        rest *= 1.0 - v
    weights.append(rest)
    out = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    return tuple(float(w) for w in out / out.sum())


def to_params(weights: Sequence[float]) -> dict[str, float]:
    """The coordinates of ``weights`` (a point of the simplex): the inverse of
    :func:`to_weights`, up to rounding. Coordinates past a face (nothing left to break) are 0."""
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum()
    params, rest = {}, 1.0
    for i, name in enumerate(param_names(len(w))):
        v = 0.0 if rest <= 1e-15 else min(1.0, max(0.0, float(w[i]) / rest))
        params[name] = float(min(1.0, max(0.0, 1.0 - (1.0 - v) ** (len(w) - 1 - i))))
        rest -= float(w[i])
    return params


# -- samplers ---------------------------------------------------------------------------------
def trial_seed(seed: int, number: int) -> int:
    """The seed of the sampler that proposes trial ``number`` of a search seeded ``seed``."""
    return int(np.random.SeedSequence([seed, 2654435761, number]).generate_state(1)[0])


def build_sampler(name: str, seed: int, n_objectives: int, population: int,
                  startup: int) -> optuna.samplers.BaseSampler:
    """Optuna's sampler ``name`` seeded ``seed``. ``population`` trials run at a time: it is
    NSGA-II's generation; CMA-ES keeps its own (4 + 3 ln(K − 1) trials, the size its step
    sizes are tuned for, smaller ones make them degenerate) and starts at the centre of the
    coordinates (close to the uniform weights). TPE and GP propose at random until ``startup``
    trials have finished. TPE is multivariate (the coordinates act together) with the constant
    liar, and GP sees the running trials, so trials asked together are not all alike."""
    optuna = import_optuna(f"the {name} sampler")
    samplers = optuna.samplers
    if name == "random":
        return samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return samplers.TPESampler(seed=seed, multivariate=True, n_startup_trials=startup,
                                   constant_liar=True)
    if name == "gp":
        return samplers.GPSampler(seed=seed, n_startup_trials=startup,
                                  independent_sampler=samplers.RandomSampler(seed=seed))
    if name == "cmaes":
        if n_objectives < 3:
            raise ScalarizeError("the cmaes strategy needs at least 3 objectives (CMA-ES in "
                                 "Optuna samples one coordinate at random); use tpe or gp")
        return samplers.CmaEsSampler(seed=seed,
                                     independent_sampler=samplers.RandomSampler(seed=seed))
    if name == "nsga2":
        return samplers.NSGAIISampler(population_size=population, seed=seed)
    raise ScalarizeError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


# -- multi-fidelity ---------------------------------------------------------------------------
def rungs(min_epochs: int, reduction: int, epochs: int) -> list[int]:
    """The epochs at which successive halving ranks the trials: ``min_epochs · reduction^k``
    below ``epochs`` (a trial that reaches ``epochs`` has finished, it is never stopped)."""
    out, rung = [], min_epochs
    while rung < epochs:
        out.append(rung)
        rung *= reduction
    return out


def hyperband_brackets(min_epochs: int, reduction: int, epochs: int) -> int:
    """Hyperband's number of brackets: ``⌊log_reduction(epochs / min_epochs)⌋ + 1``."""
    return len(rungs(min_epochs, reduction, epochs)) + 1


#: The early-stopping rules of the pruning strategies (``asha``, ``hyperband``).
PRUNERS = ("asha", "hyperband")


def build_pruner(min_epochs: int, reduction: int, kind: str = "asha", epochs: int | None = None
                 ) -> optuna.pruners.BasePruner:
    """The early-stopping rule ``kind``: ``asha``, asynchronous successive halving (Li et al.
    2020), Optuna's :class:`~optuna.pruners.SuccessiveHalvingPruner` at the rungs of
    :func:`rungs`; ``hyperband`` (Li et al. 2018), Optuna's
    :class:`~optuna.pruners.HyperbandPruner` with ``max_resource = epochs``, ASHA in brackets
    of later and later first rungs. The rules, ties and brackets are in
    ``docs/search-strategies.md`` ("Successive halving", "Hyperband")."""
    optuna = import_optuna(f"the {kind} strategy")
    if kind == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=min_epochs,
                                                      reduction_factor=reduction,
                                                      min_early_stopping_rate=0,
                                                      bootstrap_count=0)
    if kind == "hyperband":
        if epochs is None:
            raise ValueError("hyperband needs the epochs of a whole trial")
        return optuna.pruners.HyperbandPruner(min_resource=min_epochs, max_resource=epochs,
                                              reduction_factor=reduction)
    raise ScalarizeError(f"unknown early-stopping rule {kind!r}; choose one of "
                         f"{', '.join(PRUNERS)}")


# -- storage ----------------------------------------------------------------------------------
def journal_storage(path: Path) -> optuna.storages.BaseStorage:
    """Optuna's journal storage in the file ``path``. Optuna's own file lock is replaced by
    none: the search folder is locked for the whole search already
    (:meth:`~scalarize.runs.StudyDir.lock`), and a lock file a kill leaves behind would stall
    the resumed search."""
    optuna = import_optuna("a trial strategy")
    from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

    class _Held(JournalFileOpenLock):  # Optuna's lock type, taking no lock file
        def __init__(self) -> None:
            pass

        def acquire(self) -> bool:
            return True

        def release(self) -> None:
            return None

    return optuna.storages.JournalStorage(JournalFileBackend(str(path), lock_obj=_Held()))


@contextlib.contextmanager
def quiet_optuna() -> Iterator[None]:
    """Optuna's log lowered to errors for a ``with`` block (a trial finished per line, and the
    GP sampler's note about an optional package, would bury the progress bar)."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


__all__ = ["PRUNERS", "SAMPLERS", "SINGLE_OBJECTIVE", "build_pruner", "build_sampler",
           "distributions", "hyperband_brackets", "import_optuna", "journal_storage",
           "param_names", "quiet_optuna", "rungs", "to_params", "to_weights", "trial_seed"]
