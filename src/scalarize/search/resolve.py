"""A search's strategy resolved once into an object that says what it needs, and the checks
of the ``search`` section that follow from it (before any folder is written).

A population strategy (``pbt``, ``pb2``, ``mopbt``, ``grid``, ``random``) runs on a population
engine; a *trial* strategy (:class:`~scalarize.search.strategies.TrialStrategy`: ``tpe``,
``gp``, ``cmaes``, ``nsga2``, ``asha``, ``hyperband``) on an engine that runs trials. Each command
resolves it once, at its top (:func:`~scalarize.studies.runner.run_search`, a study's cell), and
hands the :class:`ResolvedStrategy` down: the checks, the engines (:mod:`scalarize.engines`)
and the decisions ask it, never the registry or the config's string again.

Example:
    >>> from scalarize.search.spec import SearchSpec
    >>> resolved = resolve_strategy(SearchSpec(strategy="asha"))
    >>> resolved.trial_based, resolved.adaptive, resolved.sampler(None)
    (True, False, 'random')
    >>> resolve_strategy(SearchSpec(strategy="pbt")).trial_based
    False
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from scalarize.errors import ScalarizeError
from scalarize.search.decide import initial_points
from scalarize.search.optuna_sampling import SINGLE_OBJECTIVE, import_optuna, rungs
from scalarize.search.spec import SearchConfig, SearchSpec
from scalarize.search.strategies import Strategy, TrialStrategy, build_strategy
from scalarize.weights import parse_weights


@dataclass(frozen=True)
class ResolvedStrategy:
    """The strategy ``name`` built with the search section's settings, and what it needs."""

    name: str
    strategy: Strategy

    @property
    def trials(self) -> TrialStrategy | None:
        """The strategy when it proposes trials one at a time, else ``None``."""
        return self.strategy if isinstance(self.strategy, TrialStrategy) else None

    @property
    def trial_based(self) -> bool:
        """Whether it needs an engine that runs trials (no population lives through it)."""
        return self.trials is not None

    @property
    def adaptive(self) -> bool:
        """Whether members' weights move during the search (exploit and explore)."""
        return bool(self.strategy.adaptive)

    def sampler(self, configured: str | None) -> str:
        """The Optuna sampler of a trial strategy: ``search.sampler`` (``configured``) for a
        pruning strategy (``asha``, ``hyperband``; random by default), its own otherwise."""
        trials = self.trials
        if trials is None:
            raise ScalarizeError(f"{self.name} is not a trial strategy")
        if trials.prunes:
            return configured or "random"
        return trials.sampler


def resolve_strategy(spec: SearchSpec) -> ResolvedStrategy:
    """The strategy named by the ``search`` section ``spec``, with its settings."""
    return ResolvedStrategy(spec.strategy, build_strategy(spec.strategy, spec.explore,
                                                          spec.alpha, spec.grid_step))


def budget_of(config: SearchConfig, members: int | None = None) -> int:
    """The member-epochs of the search ``config``: ``search.budget``, by default ``members``
    (``search.population``) × ``train.epochs``."""
    spec = config.search
    return spec.budget or (members or spec.population) * config.train.epochs


def check_search(config: SearchConfig, objectives: Sequence[str],
                 resolved: ResolvedStrategy) -> None:
    """Refuse, in one line, a search section the ``resolved`` strategy cannot run (before any
    folder is written): a sampler or fidelity a strategy does not use, a budget a population
    search would not spend, a budget smaller than one member, a trial strategy without Optuna."""
    spec, epochs = config.search, config.train.epochs
    strategy = resolved.trials
    if strategy is None:
        if spec.sampler is not None:
            raise ScalarizeError(f"search.sampler is for the asha and hyperband strategies, not "
                                 f"{spec.strategy}; remove it")
        if spec.budget is not None:
            members = len(initial_points(config, objectives, resolved.strategy))
            if spec.budget != members * epochs:
                raise ScalarizeError(
                    f"search.budget={spec.budget} member-epochs, but the {spec.strategy} "
                    f"search trains {members} members × train.epochs={epochs} = "
                    f"{members * epochs}; set train.epochs={max(1, spec.budget // members)} or "
                    "remove search.budget")
        return
    import_optuna(f"the {spec.strategy} strategy")
    if not strategy.prunes and spec.sampler is not None:
        raise ScalarizeError(f"search.sampler is for asha and hyperband; {spec.strategy} "
                             f"proposes with its own sampler (remove search.sampler)")
    sampler = resolved.sampler(spec.sampler)
    if strategy.prunes and sampler not in SINGLE_OBJECTIVE:
        raise ScalarizeError(f"search.sampler={sampler!r}: {spec.strategy} takes one of "
                             f"{', '.join(SINGLE_OBJECTIVE)}")
    if sampler == "cmaes" and len(objectives) < 3:
        raise ScalarizeError(f"the cmaes sampler needs at least 3 objectives, got "
                             f"{len(objectives)} (CMA-ES in Optuna samples one coordinate at "
                             "random); use tpe or gp")
    if len(objectives) < 2:
        raise ScalarizeError("a weight search needs at least two objectives")
    if budget_of(config) < epochs:
        raise ScalarizeError(f"search.budget={spec.budget} member-epochs is less than one "
                             f"member (train.epochs={epochs}); raise it")
    if strategy.prunes and not rungs(spec.fidelity.min_epochs, spec.fidelity.reduction, epochs):
        raise ScalarizeError(f"search.fidelity.min_epochs={spec.fidelity.min_epochs} leaves no "
                             f"rung below train.epochs={epochs}: nothing would stop early; "
                             "lower it or raise train.epochs")
    if spec.points is not None:
        for point in spec.points:
            parse_weights(point, objectives)


__all__ = ["ResolvedStrategy", "budget_of", "check_search", "resolve_strategy"]
