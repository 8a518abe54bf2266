"""Ray's synchronous PBT deciding with the shared :class:`~scalarize.search.decide.PopulationPolicy`
(:class:`PolicyPBT`), and its stop condition (:func:`failure_stopper`), for the Ray engine of
population search (:mod:`scalarize.engines.ray_population`).

The same scores and seed give the same exploits and weights as the in-process engine. A member
whose worker dies is restarted by Tune from its last checkpoint while :class:`PolicyPBT`, in
the driver, keeps the policy's state and ignores the results it reports again; what a killed
worker costs is in ``docs/search-strategies.md`` ("A killed worker").
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, cast

from ray.tune.execution.tune_controller import TuneController
from ray.tune.experiment import Trial
from ray.tune.schedulers import PopulationBasedTraining, TrialScheduler
from ray.tune.schedulers.pbt import _FutureTrainingResult

from scalarize.runs.records import ExploitEvent
from scalarize.search.decide import Decision, PopulationPolicy
from scalarize.weights import SimplexWeights

RESTORE_TIMEOUT = 600.0  # seconds a search may stall waiting for a killed member to report
SAVE_TIMEOUT = 600.0  # seconds the driver waits for a source's checkpoint before a copy


# -- the decisions: Ray's PBT, ranked, exploited and explored by the shared policy ---------------
def member_of(trial_id: str) -> int:
    """A trial's member number. Exploit copies a config from another trial, so identity comes
    from the trial id, ``<experiment>_<creation index>``, and trials are created in the order
    of the ``member`` grid."""
    return int(trial_id.rsplit("_", 1)[-1])


def result_scores(result: dict[str, Any], objectives: Sequence[str]) -> list[float] | None:
    """A member's held-out scores from its reported result (``None``: it diverged)."""
    if result.get("diverged"):
        return None
    return [float(result[f"val_{o}"]) for o in objectives]


def result_weights(result: dict[str, Any], objectives: Sequence[str]) -> SimplexWeights:
    """A member's weights from its reported result, exactly as its trainer holds them."""
    return SimplexWeights.restore({o: float(result[f"w_{o}"]) for o in objectives})


def _keep(config: dict[str, Any]) -> dict[str, Any]:
    return config  # Ray's explore is never used: :meth:`PolicyPBT._get_new_config` decides


class PolicyPBT(PopulationBasedTraining):
    """Ray's synchronous PBT deciding with a :class:`PopulationPolicy`.

    Decision hooks: ``_quantiles`` (called once per interval boundary, when every member has
    reached it) hands the policy every member's reported scores and weights and returns the
    targets as the lower quantile and their sources as the upper one (so the sources
    checkpoint); ``_checkpoint_or_exploit`` makes each target copy the source the policy drew
    (not Ray's random choice); ``_get_new_config`` returns the explored weights. ``record``
    receives the decision's exploit events.

    Scheduling hooks, so that Ray pauses only what it must: a member that reaches the boundary
    before the others waits holding its slot (no pause) unless another member needs the slot to
    catch up; after the decision every member but the targets checkpoints (the restore point of
    a killed member), the waiting members go on (each once Tune has its checkpoint), and only
    the targets restart (from their sources' checkpoints). ``choose_trial_to_run`` queues
    paused members as slots free up (Ray's picks one at a time, which left all but one slot
    idle).

    Failure hooks, so that a member whose worker died continues exactly: Tune restarts its trial
    from its last checkpoint (``FailureConfig``); ``on_trial_error`` takes it back to that
    boundary (it is behind again, so the next decision waits for it) and ``on_trial_add`` keeps
    its state (Ray's would start it afresh) or makes a target that died before its copy copy
    now. The results it reports again up to the last decision are ignored (they fall before
    its last perturbation), so no decision is taken twice. A restore put on a reused idle actor
    that was dead is one death Tune reports twice (requeueing the trial, then stopping it):
    counted once, the member requeued and the actor's reset, which Tune never ends, ended (else
    Tune gives the trial no actor again). A member that fails for good
    (:attr:`failed`), or a wait for one that runs out (:attr:`failure`, one line), ends the
    search through the stopper of :func:`failure_stopper` (:meth:`overdue`)."""

    def __init__(self, policy: PopulationPolicy, population: int, epochs: int, interval: int,
                 record: Callable[[list[ExploitEvent]], None] | None = None) -> None:
        super().__init__(time_attr="training_iteration", metric="score", mode="max",
                         perturbation_interval=interval, quantile_fraction=policy.quantile,
                         custom_explore_fn=_keep, log_config=False, synch=True)
        self.policy, self.population, self.epochs = policy, population, epochs
        self.record = record
        self.decision: Decision | None = None
        self._by_member: dict[int, Trial] = {}
        self._waiting: list[Trial] = []  # at the boundary, holding their slot
        self._pending: dict[Trial, Trial] = {}  # running targets -> their sources
        # members the search waits for (killed, or copying a killed source) -> why
        self._deadlines: dict[Trial, str] = {}
        self._stalled: float | None = None  # since when no member trains while it waits
        self.failure: str | None = None  # why a wait ran out (one line)
        self.failed: list[int] = []  # members that failed for good (their errors say why)
        self._requeue: list[Trial] = []  # stopped by Tune although they may restart
        self._controller: TuneController | None = None  # Tune's, once it stopped one
        self._requeued: dict[Trial, int] = {}  # requeued members, not yet back -> failures
        self._saved: dict[Trial, tuple[Any, dict[str, Any]]] = {}  # checkpoint, its result

    def on_trial_add(self, tune_controller: TuneController, trial: Trial) -> None:
        kept = self._trial_state.get(trial)
        super().on_trial_add(tune_controller, trial)
        if kept is None:
            return
        self._trial_state[trial] = kept  # a killed member requeued: its state goes on
        if trial in self._pending:  # a target that died before copying its source
            self._exploit(tune_controller, trial, self._pending.pop(trial))

    def on_trial_error(self, tune_controller: TuneController, trial: Trial) -> None:
        """A member's worker died (or its step raised): requeued from its last checkpoint
        while it has restarts left (Tune requeues a running trial, this a trial that failed
        while pending), or failed for good (the search stops, see :meth:`overdue`)."""
        member = member_of(trial.trial_id)
        # a restore on a reused idle actor that was dead: Tune never ends the actor's reset
        # (it stays "resetting", and Tune would never give the trial an actor again)
        tune_controller._resetting_trials.discard(trial)
        if (trial.status == Trial.PENDING and trial not in tune_controller._trial_to_actor
                and self._requeued.get(trial) == trial.num_failures - 1):
            # the same death reported twice (that dead actor's failure, which requeued the
            # trial, then its reset's, which makes Tune stop it): counted once
            trial.run_metadata.num_failures -= 1
        if not trial.should_recover():
            self.failed.append(member)
            return
        if trial.status != Trial.ERROR:
            # failed while not running (an idle actor that died, reused for it): Tune stops
            # it for good, unlike a running trial; choose_trial_to_run requeues it
            self._requeue.append(trial)
            self._controller = tune_controller  # requeued at the end of this step (stopper)
            self._deadlines.setdefault(trial, f"member {member}'s worker died and the member "
                                       "was not restored")
            return
        self._requeued[trial] = trial.num_failures  # requeued by Tune (status ERROR)
        if trial in self._waiting:
            self._waiting.remove(trial)
        state = self._trial_state[trial]
        self._resolve(trial)  # a save for a copy: done, or died with the worker
        restored = trial.latest_checkpoint_result
        point = int(restored.metrics.get(self._time_attr, 0)) if restored else 0
        state.last_train_time = min(state.last_train_time, point)  # behind again
        self._deadlines.setdefault(trial, f"member {member}'s worker died and the member was "
                                   "not restored")

    def overdue(self) -> bool:
        """Whether the search must stop: a member failed for good (:attr:`failed`), or the
        search has waited for a killed member (or a copy of one) ``RESTORE_TIMEOUT`` seconds
        with no other member training meanwhile (:attr:`failure` says which). Other members
        training is progress: a member restored only once a slot frees up is not late."""
        if self.failed or self.failure is not None or not self._deadlines:
            self._stalled = None
            return bool(self.failed) or self.failure is not None
        training = any(t.status == Trial.RUNNING and t not in self._waiting
                       and t not in self._deadlines for t in self._trial_state)
        now = time.monotonic()
        if training:
            self._stalled = None
        elif self._stalled is None:
            self._stalled = now
        if self._stalled is not None and now - self._stalled > RESTORE_TIMEOUT:
            what = next(iter(self._deadlines.values()))  # the first the search waits for
            self.failure = (f"{what} within {RESTORE_TIMEOUT:g} s (no free worker? a node "
                            "lost?)")
        return self.failure is not None

    def on_trial_result(self, tune_controller: TuneController, trial: Trial,
                        result: dict[str, Any]) -> str:
        if self._time_attr not in result or self._metric not in result:
            return super().on_trial_result(tune_controller, trial, result)  # Ray's errors
        time = result[self._time_attr]
        state = self._trial_state[trial]
        self._deadlines.pop(trial, None)
        self._requeued.pop(trial, None)
        if time - state.last_perturbation_time < self._perturbation_interval:
            if (time == state.last_perturbation_time and not state.last_checkpoint
                    and trial in self._pending.values()):
                # a source restored after it died saving for a copy: its replay of the
                # boundary is the state the target waits for (see _exploit)
                state.last_train_time, state.last_result = time, result
                state.last_checkpoint = tune_controller._schedule_trial_save(trial, result)
            return TrialScheduler.CONTINUE  # within an interval, or replayed after a restore
        self._save_trial_state(state, time, result, trial)
        behind = [t for t in [*tune_controller.get_live_trials(), *self._requeue]
                  if t is not trial and (t in self._requeue or self._trial_state[t].last_train_time
                                         < self._next_perturbation_sync)]
        if behind:
            if any(t.status in (Trial.PENDING, Trial.PAUSED) or t in self._requeue
                   for t in behind):
                return TrialScheduler.PAUSE  # a member behind needs the slot
            self._waiting.append(trial)
            return TrialScheduler.NOOP  # wait for the others, keeping the slot and the state
        lower, upper = self._quantiles()
        rest = [t for t in tune_controller.get_trials() if t not in lower and t not in upper]
        # after a decision every member but the targets checkpoints: the sources for the
        # targets to copy, every one as the point a killed member is restored to
        keep = upper + rest if self.decision is not None else []
        for t in upper + rest + lower:  # sources checkpoint before targets copy them
            self._trial_state[t].last_perturbation_time = time
            self._checkpoint_or_exploit(t, tune_controller, keep, lower)
        self._next_perturbation_sync = max(
            self._next_perturbation_sync + self._perturbation_interval,
            max(self._trial_state[t].last_train_time for t in tune_controller.get_trials()))
        waiting, self._waiting = self._waiting, []
        for t in waiting:
            if t in self._pending:  # a target: pause it (its actor then serves another)
                tune_controller.pause_trial(t, should_checkpoint=True)
            elif t.status == Trial.RUNNING and t.is_saving:
                # its checkpoint of this decision: it goes on once Tune has processed that
                # save. Trained at once, a PAUSE of its next result, handled before that save,
                # would be taken by Tune for the pause's own save and pause it without one: it
                # would restart from this boundary's state and copies of it would be an epoch
                # behind the time Tune gives them (seen on a loaded machine). A PAUSE or STOP
                # Tune cached is kept, as Tune keeps it over a CONTINUE
                cached = tune_controller._cached_trial_decisions
                if cached.get(t.trial_id) in (None, TrialScheduler.NOOP):
                    cached[t.trial_id] = TrialScheduler.CONTINUE
            elif t.status == Trial.RUNNING:
                tune_controller._schedule_trial_train(t)  # Tune has no public "go on"
        if trial in self._pending:
            return TrialScheduler.PAUSE
        return TrialScheduler.NOOP if trial.status == Trial.PAUSED else TrialScheduler.CONTINUE

    def requeue_stopped(self) -> None:
        """Requeue the members Tune stopped for good although they may restart, as Tune
        requeues a running trial that failed. Called by the stopper at the end of the step
        that stopped them, before Tune asks whether every trial has finished (the member may
        be the last one left: the search would end with it failed), and when Tune picks a
        trial to run."""
        controller = self._controller
        for trial in [t for t in self._requeue if t.status == Trial.ERROR]:
            assert controller is not None  # set with the member's failure
            self._requeue.remove(trial)
            if trial in controller._staged_trials:  # unstaged (Tune stopped it staged, and
                controller._unstage_trial_with_resources(trial)  # would not start it)
            controller._requeue_trial(trial)

    def choose_trial_to_run(self, tune_controller: TuneController) -> Trial | None:
        self.requeue_stopped()
        for target in [t for t in self._pending if t.status == Trial.PAUSED]:
            self._exploit(tune_controller, target, self._pending.pop(target))
        trials = tune_controller.get_trials()
        paused = [t for t in trials if t.status == Trial.PAUSED and t not in self._pending and
                  self._trial_state[t].last_train_time < self._next_perturbation_sync]
        return min(paused, key=lambda t: self._trial_state[t].last_train_time, default=None)

    def _quantiles(self) -> tuple[list[Trial], list[Trial]]:
        states = {member_of(t.trial_id): (t, s) for t, s in self._trial_state.items()
                  if s.last_result is not None and not t.is_finished()}
        self.decision = None
        if sorted(states) != list(range(self.population)):
            return [], []  # not the whole population at one boundary: nothing to decide
        results = [cast(dict[str, Any], states[m][1].last_result)
                   for m in range(self.population)]
        epoch = int(results[0]["epoch"])
        if not self.policy.decides_at(epoch, self.epochs):
            return [], []
        objectives = self.policy.objectives
        self.decision = self.policy.decide(epoch, [result_scores(r, objectives) for r in results],
                                           [result_weights(r, objectives) for r in results])
        self._by_member = {m: states[m][0] for m in states}
        if self.record is not None:
            self.record(self.decision.events())
        pairs = self.decision.pairs
        return ([self._by_member[t] for t in pairs],
                [self._by_member[s] for s in sorted(set(pairs.values()))])

    def _checkpoint_or_exploit(self, trial: Trial, tune_controller: TuneController,
                               upper_quantile: list[Trial], lower_quantile: list[Trial]) -> None:
        if trial.is_finished():
            return  # stopped for good (the search is ending)
        super()._checkpoint_or_exploit(trial, tune_controller, upper_quantile, [])
        member = member_of(trial.trial_id)
        if self.decision is None or member not in self.decision.pairs:
            return
        source = self._by_member[self.decision.pairs[member]]
        if trial.status == Trial.PAUSED:
            self._exploit(tune_controller, trial, source)
        else:  # copied once paused (see on_trial_result): Ray's immediate stop of a running
            self._pending[trial] = source  # trial would drop its actor, to start a new one

    def _resolve(self, trial: Trial) -> None:
        """The member's checkpoint scheduled at a decision, waited for (``SAVE_TIMEOUT``) if
        still a future; the result it was saved at is kept with it (:attr:`_saved`). ``None``
        if its worker died saving."""
        state = self._trial_state[trial]
        if isinstance(state.last_checkpoint, _FutureTrainingResult):
            saved = _resolved(state.last_checkpoint, SAVE_TIMEOUT)
            state.last_checkpoint = saved.checkpoint if saved else None
            if saved:
                self._saved[trial] = (saved.checkpoint, saved.metrics)

    def _exploit(self, tune_controller: TuneController, trial: Trial, trial_to_clone: Trial
                 ) -> None:
        state = self._trial_state[trial_to_clone]
        self._resolve(trial_to_clone)
        if not state.last_checkpoint:
            # the source's worker died while saving (or took over SAVE_TIMEOUT): once restored
            # it replays the boundary and saves it again (on_trial_result); the target waits,
            # paused, until then (a deadline: RESTORE_TIMEOUT)
            self._pending[trial] = trial_to_clone
            if trial.status == Trial.PENDING:  # requeued after its own worker died
                tune_controller._set_trial_status(trial, Trial.PAUSED)
            self._deadlines.setdefault(trial, (
                f"member {member_of(trial.trial_id)} could not copy member "
                f"{member_of(trial_to_clone.trial_id)}, whose worker died while saving it"))
            return
        # the target takes the checkpoint with the result it was saved at (Ray's hands it the
        # source's last result and time): a source that has reported the next boundary since
        # (a copy late after a kill, or after the target's pause) keeps that newer result for
        # the next decision, and the target is behind, at the checkpoint's boundary
        newer = state.last_result, state.last_train_time
        checkpoint, metrics = self._saved.get(trial_to_clone, (None, None))
        if checkpoint is state.last_checkpoint and metrics is not None:
            state.last_result, state.last_train_time = metrics, int(metrics[self._time_attr])
        try:
            super()._exploit(tune_controller, trial, trial_to_clone)
        finally:
            state.last_result, state.last_train_time = newer

    def _get_new_config(self, trial: Trial, trial_to_clone: Trial
                        ) -> tuple[dict[str, Any], dict[str, Any]]:
        assert self.decision is not None
        member = member_of(trial.trial_id)
        weights = self.decision.weights[member].values
        return {**trial_to_clone.config, "member": member,
                **{f"w{i}": w for i, w in enumerate(weights)}}, {}


def _resolved(future: _FutureTrainingResult, timeout: float) -> Any:
    """The checkpoint a save scheduled by PBT produced, waited for at most ``timeout`` seconds;
    ``None`` if its worker died or it took longer (Ray's ``resolve`` waits for ever)."""
    import ray

    try:
        return ray.get(future.future, timeout=timeout)
    except (ray.exceptions.GetTimeoutError, ray.exceptions.RayError):
        return None


def failure_stopper(scheduler: PolicyPBT, epochs: int) -> Any:
    """Tune's stop condition of a population search: each trial at ``epochs``, every trial once
    ``scheduler`` is :meth:`~PolicyPBT.overdue` (a member failed for good, or a killed one was
    not restored in time). Tune asks ``stop_all`` at every step of its loop, so this is the
    deadline of every wait for a killed member; it first requeues the members Tune stopped
    although they may restart (:meth:`PolicyPBT.requeue_stopped`)."""
    from ray.tune.stopper import Stopper

    class FailureStopper(Stopper):
        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            return bool(result.get("training_iteration", 0) >= epochs)

        def stop_all(self) -> bool:
            scheduler.requeue_stopped()
            return scheduler.overdue()

    return FailureStopper()



__all__ = ["RESTORE_TIMEOUT", "SAVE_TIMEOUT", "PolicyPBT", "failure_stopper", "member_of",
           "result_scores", "result_weights"]
