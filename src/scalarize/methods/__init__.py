"""Methods: a registry of ``name -> factory(n_objectives, **options) -> Method``.

=============== ==========================================================================
``static``      the paper's scalarization: Σ p_t L_t with the run's simplex weights
Jacobian-based  ``pcgrad``, ``mgda``, ``mgda_ub``, ``cagrad``, ``imtl_g``, ``nash_mtl``,
                ``graddrop_params``, ``aligned_mtl``, ``upgrad``, ``dualproj``, ``gradvac``,
                ``config``, ``fairgrad``, ``excess_mtl``, ``pcd``, ``cr_mogm`` (:mod:`.gramian`)
Activations     ``graddrop`` (the paper's, on the shared features: :mod:`.graddrop`)
Two batches     ``modo``, ``sdmgrad`` (the batch's halves: :mod:`.two_batch`)
Loss-based      ``uw`` (uncertainty), ``dwa``, ``rlw``, ``famo``, ``imtl_l``, ``gradnorm``,
                ``geometric_mean``
Preference      ``stch``, ``pbi``, ``cosmos`` (:mod:`.preference`)
=============== ==========================================================================

Each method's options go in ``method.options``; defaults follow its paper (CAGrad c = 0.4,
DWA temperature 2, GradNorm α = 1.5, FAMO lr 0.025, FairGrad α = 2, PBI θ = 5; UW's
log-variances start at ``init_log_var`` = 0, LibMTL's −0.5 on request);
docs/methods.md lists each method's convention (where it acts, its scale, what the heads get)
and the reference its oracle test (tests/methods/oracles/) checks it against. The Jacobian
methods with row weights take ``heads: plain | weighted`` (:mod:`.jacobian`). Adding a method
means one factory, one registry line and one oracle test; the trainer does not change.

``static`` and the methods that take a preference vector (``stch``, ``pbi``, ``cosmos``,
``sdmgrad``: the run's weights are the preference) use the run's scalarization weights; every
other method chooses its own (the weights then only scale the logged objective, or, for
multi-domain data resampling, the batch mix). :func:`method_uses_weights` says which, without
building the method; it reads the ``uses_weights`` of the registered class or factory (``True``
when it does not say).

Models with task-specific paths (features per objective, ``StepContext.per_task``): every
method works on their shared parameters (``StepContext.shared_params``; the Jacobian methods
take the Jacobian there, through each objective's own features: :func:`.jacobian.jacobian_backward`)
except those that work on one shared feature tensor (``Method.needs_shared_features``:
``mgda_ub``, ``graddrop``, ``gradnorm``), which refuse them in one line.

Every method keeps all it learns in its ``state_dict()`` (inner optimisers, loss histories,
solver state: :mod:`scalarize.methods.state`), so a resumed run, or a population member that
copies another, continues exactly as an uninterrupted run would.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from scalarize.config import RunConfig
from scalarize.errors import ScalarizeError
from scalarize.methods.base import Method, StepContext
from scalarize.methods.static import StaticScalarization
from scalarize.registry import Registry, unknown_option

METHODS: Registry[Method] = Registry("method")
METHODS.register("static")(StaticScalarization)


def _own_weights(factory: Callable[..., Method]) -> Callable[..., Method]:
    """Mark ``factory``'s method as choosing its own weights (without importing its module)."""
    factory.uses_weights = False  # type: ignore[attr-defined]
    return factory


def _jacobian(build: Callable[..., Any], weighted: bool = True) -> Callable[..., Method]:
    """A factory of :class:`~scalarize.methods.jacobian.JacobianMethod` around ``build``'s
    aggregator; ``weighted``: it takes the ``heads`` option (plain by default)."""

    @_own_weights
    def factory(n_objectives: int, **options: Any) -> Method:
        from scalarize.methods.jacobian import JacobianMethod

        heads = options.pop("heads", "plain") if weighted else "plain"
        return JacobianMethod(build(n_objectives, **options), heads=heads)

    return factory


def _scalarizer(build: Callable[..., Any]) -> Callable[..., Method]:
    @_own_weights
    def factory(n_objectives: int, **options: Any) -> Method:
        from scalarize.methods.loss_based import ScalarizerMethod

        return ScalarizerMethod(build(n_objectives, **options))

    return factory


def _uw(scalarizer: Any, init_log_var: float) -> Any:
    """UW with its log-variances s = log σ² starting at ``init_log_var``: 0 (σ² = 1, uniform
    weights; torchjd's, and every run before the option) or −0.5 (LibMTL's)."""
    scalarizer.log_var.data.fill_(float(init_log_var))
    return scalarizer


def _register_torchjd() -> None:
    """torchjd is imported lazily so that ``static`` runs never pay for it."""
    import importlib

    agg = "torchjd.aggregation"
    sca = "torchjd.scalarization"

    def cls(module: str, name: str) -> Callable[..., Any]:
        return lambda *a, **k: getattr(importlib.import_module(module), name)(*a, **k)

    aggregators: dict[str, Callable[..., Any]] = {
        "pcgrad": lambda n, **o: cls(agg, "PCGrad")(**o),
        "mgda": lambda n, epsilon=0.001, max_iters=100: cls(agg, "MGDA")(
            epsilon=epsilon, max_iters=max_iters),
        "imtl_g": lambda n, **o: cls(agg, "IMTLG")(**o),
        "aligned_mtl": lambda n, **o: cls(agg, "AlignedMTL")(**o),
        "upgrad": lambda n, **o: cls(agg, "UPGrad")(**o),
        "dualproj": lambda n, **o: cls(agg, "DualProj")(**o),
        "gradvac": lambda n, **o: cls(agg, "GradVac")(**o),
    }
    plain_only: dict[str, Callable[..., Any]] = {  # no row weights: heads are plain
        "graddrop_params": lambda n, **o: cls(agg, "GradDrop")(**o),
        "config": lambda n, **o: cls(agg, "ConFIG")(**o),
    }
    scalarizers: dict[str, Callable[..., Any]] = {
        "uw": lambda n, init_log_var=0.0: _uw(cls(sca, "UW")(n), init_log_var),
        "dwa": lambda n, temperature=2.0: cls(sca, "DWA")(temperature=temperature),
        "rlw": lambda n, **o: cls(sca, "Random")(**o),
        "famo": lambda n, **o: cls(sca, "FAMO")(n, **o),
        "imtl_l": lambda n, **o: cls(sca, "IMTLL")(n, **o),
    }
    for name, build in aggregators.items():
        METHODS.register(name)(_jacobian(build))
    for name, build in plain_only.items():
        METHODS.register(name)(_jacobian(build, weighted=False))
    for name, build in scalarizers.items():
        METHODS.register(name)(_scalarizer(build))


def _lazy(module: str, name: str, uses_weights: bool) -> Callable[..., Method]:
    """The factory ``scalarize.methods.<module>.<name>``, imported on first use."""

    def factory(n_objectives: int, **options: Any) -> Method:
        import importlib

        build = getattr(importlib.import_module(f"scalarize.methods.{module}"), name)
        return build(n_objectives, **options)

    factory.uses_weights = uses_weights  # type: ignore[attr-defined]
    return factory


#: torchjd 0.18's newer methods: name -> (module, factory, whether it uses the run's weights)
_NEWER = {
    "cagrad": ("gramian", "cagrad", False),
    "nash_mtl": ("gramian", "nash_mtl", False),
    "graddrop": ("graddrop", "graddrop", False),
    "fairgrad": ("gramian", "fairgrad", False),
    "excess_mtl": ("gramian", "excess_mtl", False),
    "pcd": ("gramian", "pcd", False),
    "cr_mogm": ("gramian", "cr_mogm", False),
    "modo": ("two_batch", "modo", False),
    "sdmgrad": ("two_batch", "sdmgrad", True),
    "stch": ("preference", "stch", True),
    "geometric_mean": ("preference", "geometric_mean", False),
    "pbi": ("preference", "pbi", True),
    "cosmos": ("preference", "cosmos", True),
    "imtl": ("imtl_hybrid", "imtl", False),
    "moco": ("tracked", "moco", False),
    "db_mtl": ("tracked", "db_mtl", False),
    "auto_lambda": ("auto_lambda", "auto_lambda", False),
}


@_own_weights
def _mgda_ub(n_objectives: int, **options: Any) -> Method:
    from scalarize.methods.jacobian import FeatureMGDA

    return FeatureMGDA(**options)


@_own_weights
def _gradnorm(n_objectives: int, **options: Any) -> Method:
    from scalarize.methods.loss_based import GradNorm

    return GradNorm(n_objectives, **options)


_register_torchjd()
METHODS.register("mgda_ub")(_mgda_ub)
METHODS.register("gradnorm")(_gradnorm)
for _name, (_module, _factory, _uses) in _NEWER.items():
    METHODS.register(_name)(_lazy(_module, _factory, _uses))


def _option_names(factory: Callable[..., Any]) -> set[str] | None:
    """The keyword options ``factory`` takes (``None`` when it takes any: ``**options``)."""
    target = getattr(factory, "options_of", factory)
    try:
        parameters = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return None
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    names = {p.name for p in parameters if p.kind in (inspect.Parameter.KEYWORD_ONLY,
                                                       inspect.Parameter.POSITIONAL_OR_KEYWORD)}
    return names - {"n_objectives", "self"}


def build_method(name: str, options: dict[str, Any] | None = None, n_objectives: int = 1
                 ) -> Method:
    """Instantiate method ``name`` for ``n_objectives`` with its ``options``."""
    factory = METHODS.get(name)
    # no options, nothing to check (reading the factory's signature is most of a build)
    accepted = _option_names(factory) if options else None
    unknown = sorted(set(options or {}) - accepted) if accepted is not None else []
    if unknown:
        hint = f"its options are: {', '.join(sorted(accepted))}" if accepted else \
            "it takes no options"
        listed = ", ".join(map(repr, unknown))
        raise ScalarizeError(f"method {name!r} has no option {listed}; {hint}")
    try:
        return factory(n_objectives, **(options or {}))
    except (TypeError, ValueError) as exc:
        unexpected = unknown_option(exc) if isinstance(exc, TypeError) else None
        if unexpected:
            raise ScalarizeError(f"method {name!r} has no option {unexpected!r}; remove it "
                                 "from method.options") from None
        raise ScalarizeError(f"method {name!r}: bad method.options {options} ({exc})") from None
    except ImportError as exc:
        raise ScalarizeError(f"method {name!r} needs {exc.name}: pip install "
                             "'torchjd[full]>=0.18'") from None


def method_uses_weights(name: str) -> bool:
    """Whether method ``name`` uses the run's scalarization weights (``static`` does; methods
    that choose their own do not). Nothing is built or imported."""
    return bool(getattr(METHODS.get(name), "uses_weights", True))


def refuse_ignored_weights(method: str, config: RunConfig, what: str) -> None:
    """Refuse weights that would change nothing: ``what`` (a study's varied or searched
    weights, a comparison entry's weights) given to a method that chooses its own, unless the
    weights set the MDL batch mix (data resampling), which they do for every method.

    Example:
        >>> refuse_ignored_weights("static", RunConfig(), "the search")  # fine
        >>> refuse_ignored_weights("pcgrad", RunConfig(), "the search")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        scalarize.errors.ScalarizeError: the search sets the scalarization weights, but pcgrad ...
    """
    METHODS.get(method)  # an unknown name fails first, with the list of names
    on_loss = config.benchmark.view == "mtl" or config.scalarization.mdl_mode == "loss"
    if on_loss and not method_uses_weights(method):
        raise ScalarizeError(f"{what} sets the scalarization weights, but {method} ignores "
                             "them (it chooses its own); use method.name=static, or remove "
                             "the weights")


__all__ = ["METHODS", "Method", "StaticScalarization", "StepContext", "build_method",
           "method_uses_weights", "refuse_ignored_weights"]
