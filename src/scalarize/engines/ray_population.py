"""The Ray Tune engine of population search (``scalarize search --engine ray``): a transport.

Each member is a Ray Tune trial (:class:`MemberTrainable`, ``cpus_per_member`` /
``gpus_per_member`` each) on a local Ray or the cluster at ``address``, running the shared
:class:`~scalarize.search.member.Member` one epoch per Tune step. Decisions are not Ray's:
:class:`~scalarize.schedulers.population.PolicyPBT` is Ray's synchronous PBT whose hooks call
the shared :class:`~scalarize.search.decide.PopulationPolicy`, so the same scores and seed give
the same exploits and weights as in-process. The driver appends every event and decision to
``population.jsonl`` as they come and, at the end, rewrites it in the in-process engine's order
and writes the same summary. A member whose worker dies is restarted from its last checkpoint
(every member but the targets checkpoints at each decision) while ``PolicyPBT``, in the
driver, keeps the policy's state and ignores the results it reports again. How members
checkpoint, pause and stay in a worker, what a killed worker costs and which killed searches
resume is in ``docs/search-strategies.md`` ("Population strategies on Ray").
"""

from __future__ import annotations

import math
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import yaml
from ray.tune.experiment import Trial
from ray.tune.trainable import Trainable

from scalarize.benchmarks import Dataset
from scalarize.engines.ray_tune import ENGINE, MEMBER_FILE, RaySearch, failures, step_metrics
from scalarize.errors import ScalarizeError
from scalarize.registry import restore_session
from scalarize.runs.records import MemberResult, SearchSummary
from scalarize.runs.torch_io import load_torch, save_torch
from scalarize.schedulers.population import PolicyPBT, failure_stopper, member_of
from scalarize.search.decide import PopulationPolicy, initial_points, search_plan
from scalarize.search.member import Member, search_data
from scalarize.search.results import local_order, search_summary
from scalarize.search.spec import SearchConfig
from scalarize.training import load_data
from scalarize.weights import SimplexWeights

MAX_FAILURES = 2  # times a member's trial restarts from its checkpoint after its worker died

# -- the trainable: one member, run by the shared member runner ---------------------------------
class _Worker:
    """What a worker process keeps between the trials it runs: the search, its data and the
    members it has built (their trainers are reused when a trial of the member comes back):
    every member on a CPU, the last one only on a GPU, whose memory is scarcer."""

    current: _Worker | None = None

    def __init__(self, search_yaml: str, points: Sequence[SimplexWeights]) -> None:
        self.search_yaml = search_yaml
        self.config = SearchConfig.model_validate(yaml.safe_load(search_yaml))
        self.data: Dataset = search_data(self.config)
        self.points = list(points)  # the driver's (its strategy resolved there, once)
        self.members: OrderedDict[int, tuple[Member, str]] = OrderedDict()  # -> (it, state id)

    @classmethod
    def of(cls, search_yaml: str, points: Sequence[SimplexWeights]) -> _Worker:
        if cls.current is None or cls.current.search_yaml != search_yaml:
            cls.current = None  # one search's data in memory at a time
            cls.current = cls(search_yaml, points)
        return cls.current

    def fresh(self, member: int) -> Member:
        built = Member.build(self.config, self.data, member, self.points[member])
        self._keep(member, built, "")
        return built

    def _keep(self, member: int, kept: Member, state_id: str) -> None:
        self.members[member] = (kept, state_id)
        self.members.move_to_end(member)
        room = len(self.points) if kept.trainer.device.type == "cpu" else 1
        while len(self.members) > room:
            self.members.popitem(last=False)

    def restored(self, member: int, saved: dict[str, Any], config: dict[str, Any]) -> Member:
        """Member ``member`` from a checkpoint: its own (kept in memory when this worker wrote
        it and has not trained it since) or another member's, which it copies with the
        weights the policy decided (in the trial's ``config``)."""
        cached, state_id = self.members.get(member, (None, ""))
        own = saved["member"] == member
        if own and cached is not None and state_id == saved["id"]:
            return cached
        target = cached if cached is not None else self.fresh(member)
        if own:
            target.load_state_dict(saved["state"])
        else:
            objectives = self.data.objectives
            weights = SimplexWeights.restore({o: float(config[f"w{i}"])
                                              for i, o in enumerate(objectives)})
            target.copy_from(saved["state"], saved["member"], saved["epoch"], weights)
        self._keep(member, target, saved["id"] if own else "")
        return target

    def advancing(self, member: int) -> None:
        """``member`` is about to train: its in-memory state no longer matches a checkpoint."""
        self.members[member] = (self.members[member][0], "")

    def saved(self, member: int) -> str:
        """Note that ``member``'s current state is the one being checkpointed; its id."""
        state_id = uuid.uuid4().hex
        self.members[member] = (self.members[member][0], state_id)
        return state_id


class MemberTrainable(Trainable):
    """The Tune trainable: one member, one epoch per ``step``, a checkpoint only when Tune asks
    for one (a source of an exploit, or a member paused to free its slot)."""

    def setup(self, config: dict[str, Any], search_yaml: str = "", threads: int = 1,
              entries: dict[str, dict[str, bytes | None]] | None = None,
              points: Sequence[SimplexWeights] = ()) -> None:
        """``entries``: the driver's registry session entries, put back in this worker before
        it loads the data and builds members; ``points``: every member's initial weights, as
        the driver drew them."""
        if entries:
            restore_session(entries)
        self.worker = _Worker.of(search_yaml, points)
        if self.worker.config.train.threads is None:
            torch.set_num_threads(threads)
        self._start()

    def _start(self) -> None:
        self.member_id = member_of(self.trial_id)
        self.member: Member | None = None  # built on the first step unless restored before
        self.position = 0  # epochs the population has trained (a frozen member trains none)

    def reset_config(self, new_config: dict[str, Any]) -> bool:
        self._start()  # a reused actor: another trial (its config is already ``new_config``)
        return True

    def step(self) -> dict[str, Any]:
        worker, objectives = self.worker, self.worker.data.objectives
        if self.member is None:
            self.member = worker.fresh(self.member_id)
        member = self.member
        worker.advancing(self.member_id)
        events = list(member.advance(self.position + 1))
        self.position += 1
        metrics = step_metrics(member, self.member_id, self.position, events, objectives,
                               missing=math.nan)
        metrics.update({f"w_{o}": w for o, w in zip(objectives, member.weights.values,
                                                    strict=True)})
        if self.position == worker.config.train.epochs:
            metrics["result"] = member.result().to_json()
        return metrics

    def save_checkpoint(self, checkpoint_dir: str) -> None:
        if self.member is None:
            self.member = self.worker.fresh(self.member_id)
        save_torch(Path(checkpoint_dir) / MEMBER_FILE,
                   {"member": self.member_id, "epoch": self.position,
                    "id": self.worker.saved(self.member_id), "state": self.member.state_dict()})

    def load_checkpoint(self, checkpoint: Any) -> None:
        """Restore from the directory :meth:`save_checkpoint` wrote (Tune passes its path)."""
        saved = load_torch(Path(checkpoint) / MEMBER_FILE, "member checkpoint",
                           "delete the search folder to start again")
        self.member = self.worker.restored(self.member_id, saved, self.config)
        self.position = saved["epoch"]


# -- the driver -------------------------------------------------------------------------------
class RayPopulation(RaySearch):
    """Runs the search as Ray Tune trials; see the module docstring."""

    scheduler: PolicyPBT | None = None  # the adaptive search's, once built

    def _tuner(self, points: Sequence[SimplexWeights], policy: PopulationPolicy) -> Any:
        """A new Tuner over the members starting at ``points``, or the restored one of a
        killed search."""
        from ray import tune

        n = len(points)
        trainable = self.trainable(MemberTrainable, points=list(points))
        refuse = (f"the Ray search in {self.folder.path} was interrupted, and an interrupted "
                  f"{self.spec.strategy} search cannot continue on Ray; delete the folder to "
                  "start again (the local engine's searches resume exactly)"
                  if policy.adaptive else None)  # its policy's state was in the dead driver

        def build() -> Any:
            scheduler = (PolicyPBT(policy, n, self.epochs, self.spec.interval,
                                   self.folder.append_events) if policy.adaptive else None)
            self.scheduler = scheduler
            return tune.Tuner(
                trainable, param_space={"member": tune.grid_search(list(range(n)))},
                tune_config=tune.TuneConfig(
                    scheduler=scheduler, reuse_actors=True,
                    trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
                run_config=self.run_config(
                    n * self.epochs,
                    tune.CheckpointConfig(  # fixed weights: every interval; adaptive: at each
                        num_to_keep=3,      # decision (PolicyPBT asks)
                        checkpoint_frequency=0 if scheduler else self.spec.interval),
                    # a trial whose worker died restarts from its member's last checkpoint
                    # (an adaptive one at the last decision, see PolicyPBT)
                    tune.FailureConfig(max_failures=MAX_FAILURES),
                    None if scheduler is None else failure_stopper(scheduler, self.epochs)))

        return self.restored_or(trainable, build, refuse)

    def run(self) -> SearchSummary:
        data = load_data(self.config.base())
        objectives = data.objectives
        strategy = self.strategy.strategy
        points = initial_points(self.config, objectives, strategy)
        self.folder.record(self.config, search_plan(self.config, ENGINE, data.view, points))
        policy = PopulationPolicy.for_search(self.config, objectives, strategy)
        start = time.perf_counter()
        results = self.fit(lambda: self._tuner(points, policy))
        errors, last = failures(results)
        failure = self.scheduler.failure if self.scheduler is not None else None
        if failure is not None:
            raise ScalarizeError(f"the Ray {self.spec.strategy} search stopped: {failure}; run "
                                 "it again in an empty folder (the local engine's searches "
                                 "resume exactly)")
        if errors:
            from ray.exceptions import RayActorError, WorkerCrashedError

            if isinstance(errors[0], RayActorError | WorkerCrashedError):
                last = "the worker process died (killed, out of memory, or its node lost)"
            failed = sorted(int(Path(r.path).name[1:]) for r in results if r.error is not None)
            who = (f"member {failed[0]}" if len(failed) == 1 else
                   "members " + ", ".join(str(m) for m in failed))
            again = ("run the search again in an empty folder" if policy.adaptive else
                     "run the search again to continue it")
            raise ScalarizeError(f"{who} of the Ray {self.spec.strategy} search failed after "
                                 f"{MAX_FAILURES} restart(s) from a checkpoint: {last}; {again}"
                                 ) from None
        members = sorted((MemberResult.model_validate_json(r.metrics["result"])
                          for r in results), key=lambda m: m.member)
        self.folder.write_events(local_order(self.folder.read_events(), self.spec.interval))
        summary = search_summary(self.spec.strategy, ENGINE, list(objectives), self.epochs,
                                 members, time.perf_counter() - start)
        self.folder.write_summary(summary)
        return summary


def _trial_name(trial: Trial) -> str:
    return f"m{member_of(trial.trial_id):02d}"


__all__ = ["MAX_FAILURES", "MemberTrainable", "RayPopulation"]
