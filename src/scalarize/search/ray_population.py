"""The Ray Tune engine of population search (``scalarize search --engine ray``).

The same search as :class:`~scalarize.search.population.LocalPopulation`, as Ray Tune trials
(one per member, ``cpus_per_member`` / ``gpus_per_member`` each) on a local Ray or the cluster at
``address``: ``pbt`` and ``mopbt`` run Ray's :class:`PopulationBasedTraining` (``mopbt`` ranks
trials by Pareto front and crowding distance through its ``_quantiles`` hook), ``pb2`` runs Ray's
:class:`PB2`; all explore with the same simplex handling (log-space perturbation; PB2's proposals
normalised onto the simplex), synchronously at every ``interval`` epochs, with
``reuse_actors``, and a checkpoint every interval. ``grid`` and ``random`` run their trials
without a scheduler. When Tune is done, the engine writes the same ``population.jsonl`` and
``summary.json`` as the local engine; a killed search resumes through ``Tuner.restore``.

Ray needs ``out`` on storage every node can reach (a shared file system), as for sweeps.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from scalarize.errors import ScalarizeError
from scalarize.runs.store import RunDir, append_jsonl, write_jsonl
from scalarize.search.executors import ray_session
from scalarize.search.explore import SimplexExplore
from scalarize.search.policy import pareto_keys, quantile_split
from scalarize.search.population import (
    SearchConfig,
    holdout_split,
    member_config,
    plan,
    prepare_folder,
)
from scalarize.search.results import CONFIG_FILE, POPULATION, read_population, search_summary
from scalarize.training import Trainer, TrainingDiverged, load_data
from scalarize.weights import SimplexWeights

EXPERIMENT = "ray"  # Tune's experiment folder inside the search folder
_DATA: dict[str, Any] = {}  # per worker process: the loaded data of the search it runs


def _weights(config: dict[str, Any], n: int, floor: float) -> list[float]:
    raw = np.maximum([float(config[f"w{i}"]) for i in range(n)], floor)
    return (raw / raw.sum()).tolist()


def _train_member(config: dict[str, Any], search_yaml: str) -> None:
    """The Tune trainable: one member, reporting held-out accuracy after every epoch."""
    import ray
    from ray import tune

    search = SearchConfig.model_validate(yaml.safe_load(search_yaml))
    if search_yaml not in _DATA:
        _DATA.clear()
        _DATA[search_yaml] = holdout_split(load_data(search.base()), search.search.holdout,
                                           search.benchmark.seed)
    data = _DATA[search_yaml]
    objectives = data.objectives
    context = tune.get_context()
    member = _member_of(context.get_trial_id())
    weights = _weights(config, len(objectives), search.search.explore.floor)
    trainer = Trainer(member_config(search.base(), search.seed, member, np.array(weights)),
                      data=data, progress=False)
    schedule: list[list[Any]] = [[0, weights]]
    lineage: list[list[int]] = []
    parent = None
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / "member.pt", map_location="cpu",
                               weights_only=False)
        trainer.load_state_dict(state["trainer"])
        schedule, lineage = state["schedule"], state["lineage"]
        if state["member"] != member:
            parent = state["member"]
            lineage = [*lineage, [trainer.epoch, parent]]
        if schedule[-1][1] != weights:
            schedule = [*schedule, [trainer.epoch, weights]]
        trainer.set_weights(SimplexWeights(objectives, tuple(weights)))
    node = ray.get_runtime_context().get_node_id()
    epochs, interval = search.train.epochs, search.search.interval
    diverged = False
    while trainer.epoch < epochs:
        metrics: dict[str, Any] = {"member": member, "parent": parent, "node": node,
                                   **{f"w_{o}": w for o, w in zip(objectives, weights,
                                                                   strict=True)}}
        try:
            record = trainer.train_epochs(1)[0]
            metrics.update(epoch=record["epoch"], score=record["val_avg_acc"],
                           seconds=record["epoch_seconds"],
                           **{f"val_{o}": record["val_acc"][o] for o in objectives})
        except TrainingDiverged:
            diverged = True
            trainer.epoch += 1  # keep the member in step with the population until replaced
            metrics.update(epoch=trainer.epoch, score=-1.0, diverged=True, seconds=0.0,
                           **{f"val_{o}": math.nan for o in objectives})
        parent = None
        done = trainer.epoch == epochs
        if done:
            metrics.update(_final(trainer, schedule, lineage, diverged, objectives))
        if done or trainer.epoch % interval == 0:
            with tempfile.TemporaryDirectory() as folder:
                torch.save({"trainer": trainer.state_dict(), "schedule": schedule,
                            "lineage": lineage, "member": member}, Path(folder) / "member.pt")
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
        else:
            tune.report(metrics)


def _final(trainer: Trainer, schedule: list[list[Any]], lineage: list[list[int]],
           diverged: bool, objectives: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {"final_schedule": yaml.safe_dump(schedule),
                           "final_lineage": yaml.safe_dump(lineage),
                           "train_seconds": trainer.train_seconds, "diverged": diverged}
    if not diverged:
        test = trainer.evaluate("test")
        out.update({f"test_{o}": test["acc"][o] for o in objectives},
                   test_avg_acc=test["avg_acc"])
    return out


def simplex_explore_fn(explorer: SimplexExplore, n: int):
    """A ``custom_explore_fn`` for Ray's PBT: perturb ``w0..w{n-1}`` on the simplex."""
    rng = np.random.default_rng()

    def explore(config: dict[str, Any]) -> dict[str, Any]:
        new = explorer.perturb(np.array(_weights(config, n, explorer.floor)), rng)
        config.update({f"w{i}": float(v) for i, v in enumerate(new)})
        return config

    return explore


def pb2_explore_fn(explorer: SimplexExplore, n: int):
    """A ``custom_explore_fn`` for Ray's PB2: put its proposal back onto the simplex, then
    jitter it in log space at a quarter of the PBT scale. Early on, with too little data for
    its GP, PB2 returns the copied point unchanged; the jitter makes explore move it anyway."""
    return simplex_explore_fn(explorer.model_copy(update={"scale": explorer.scale / 4,
                                                          "resample_probability": 0.0}), n)


def _pareto_pbt(objectives: tuple[str, ...], **kwargs: Any):
    """Ray's PBT ranked by Pareto front and crowding distance (multi-objective PBT)."""
    from ray.tune.schedulers import PopulationBasedTraining

    class ParetoPBT(PopulationBasedTraining):
        def _quantiles(self):  # the hook Ray's PBT ranks trials with: the shared policy's
            trials = [t for t, s in self._trial_state.items()
                      if s.last_result is not None and not t.is_finished()]
            acc = np.array([[self._trial_state[t].last_result.get(f"val_{o}", math.nan)
                             for o in objectives] for t in trials], dtype=float)
            lower, upper = quantile_split(pareto_keys(acc), self._quantile_fraction)
            return [trials[i] for i in lower], [trials[i] for i in upper]

    return ParetoPBT(**kwargs)


def _lines(result: dict[str, Any], objectives: tuple[str, ...]) -> list[dict[str, Any]]:
    """``population.jsonl`` lines (the local engine's schema) from one Tune result."""
    member, epoch = int(result["member"]), int(result["epoch"])
    weights = {o: result[f"w_{o}"] for o in objectives}
    lines = []
    parent = result.get("parent")
    if parent is not None and not _isnan(parent):
        lines.append({"event": "exploit", "member": member, "epoch": epoch - 1,
                      "parent": int(parent), "weights_before": None, "weights": weights})
    if result.get("diverged") is True:
        lines.append({"event": "diverged", "member": member, "epoch": epoch})
    else:
        lines.append({"event": "epoch", "member": member, "epoch": epoch, "weights": weights,
                      "val_acc": {o: result[f"val_{o}"] for o in objectives},
                      "val_avg_acc": result["score"], "seconds": result["seconds"],
                      "node": result["node"]})
    return lines


def _recorder(out: Path, objectives: tuple[str, ...], total: int, disable: bool | None):
    """A Tune callback in the driver: appends every result to ``population.jsonl`` as it
    comes (Tune's own per-trial logs can lag behind paused and restored PBT trials) and moves
    a tqdm bar over member-epochs."""
    from ray.tune import Callback

    class Recorder(Callback):
        def __init__(self) -> None:
            self.bar = tqdm(total=total, unit="member-epoch", desc="search (ray)",
                            dynamic_ncols=True, disable=disable)

        def on_trial_result(self, iteration, trials, trial, result, **info):
            for line in _lines(result, objectives):
                append_jsonl(out / POPULATION, line)
            self.bar.update(1)

        def on_experiment_end(self, trials, **info):
            self.bar.close()

    return Recorder()


class RayPopulation:
    """Runs the search as Ray Tune trials; see the module docstring."""

    def __init__(self, config: SearchConfig, out: Path, progress: bool | None = None,
                 address: str | None = None, cpus_per_member: float = 1.0,
                 gpus_per_member: float = 0.0) -> None:
        try:
            import ray  # noqa: F401
            from ray import tune  # noqa: F401
        except ImportError:
            raise ScalarizeError("the ray engine needs Ray Tune: "
                                 "pip install -c constraints.txt 'scalarize[ray]'") from None
        self.config, self.out, self.progress = config, Path(out).resolve(), progress
        self.address, self.cpus, self.gpus = address, cpus_per_member, gpus_per_member
        self.spec = config.search

    def _scheduler(self, objectives: tuple[str, ...]):
        from ray.tune.schedulers import PopulationBasedTraining
        from ray.tune.schedulers.pb2 import PB2

        n, spec = len(objectives), self.spec
        common = {"time_attr": "training_iteration", "perturbation_interval": spec.interval,
                  "quantile_fraction": spec.quantile, "synch": True, "metric": "score",
                  "mode": "max"}
        if spec.strategy == "pbt":
            return PopulationBasedTraining(
                custom_explore_fn=simplex_explore_fn(spec.explore, n),
                resample_probability=0.0, **common)
        if spec.strategy == "mopbt":
            return _pareto_pbt(objectives, custom_explore_fn=simplex_explore_fn(spec.explore, n),
                               resample_probability=0.0, **common)
        if spec.strategy == "pb2":
            return PB2(hyperparam_bounds={f"w{i}": [spec.explore.floor, 1.0] for i in range(n)},
                       custom_explore_fn=pb2_explore_fn(spec.explore, n), **common)
        return None  # grid, random: fixed weights

    def _tuner(self, points: list[np.ndarray], objectives: tuple[str, ...], epochs: int):
        """A new Tuner over the members, or the restored one of a killed search."""
        from ray import tune

        search_yaml = (self.out / CONFIG_FILE).read_text()
        trainable = tune.with_resources(
            tune.with_parameters(_train_member, search_yaml=search_yaml),
            {"cpu": self.cpus, "gpu": self.gpus})
        path = str(self.out / EXPERIMENT)
        if tune.Tuner.can_restore(path):
            return tune.Tuner.restore(path, trainable, resume_errored=True)
        space: dict[str, Any] = {"member": tune.grid_search(list(range(len(points))))}
        for i in range(len(objectives)):
            space[f"w{i}"] = tune.sample_from(
                lambda config, i=i: float(points[config["member"]][i]))
        recorder = _recorder(self.out, objectives, len(points) * epochs,
                             None if self.progress is None else not self.progress)
        return tune.Tuner(
            trainable, param_space=space,
            tune_config=tune.TuneConfig(
                scheduler=self._scheduler(objectives), reuse_actors=True,
                trial_name_creator=_trial_name, trial_dirname_creator=_trial_name),
            run_config=tune.RunConfig(
                name=EXPERIMENT, storage_path=str(self.out), verbose=0,
                stop={"training_iteration": epochs}, callbacks=[recorder],
                failure_config=tune.FailureConfig(max_failures=2)))

    def run(self) -> dict[str, Any]:
        data = load_data(self.config.base())
        objectives = data.objectives
        _, points = plan(self.config, objectives)
        epochs = self.config.train.epochs
        manifest = {"strategy": self.spec.strategy, "engine": "ray",
                    "objectives": list(objectives), "view": data.view,
                    "population": len(points), "epochs": epochs,
                    "interval": self.spec.interval,
                    "initial_weights": [[float(w) for w in p] for p in points]}
        prepare_folder(self.out, self.config, manifest)
        start = time.perf_counter()
        with ray_session(self.address):
            results = self._tuner(points, objectives, epochs).fit()
        errors = [r.error for r in results if r.error is not None]
        if errors:
            raise ScalarizeError(f"{len(errors)} member(s) of the Ray search failed: "
                                 f"{errors[0]}") from None
        return self._write(results, objectives, epochs, time.perf_counter() - start)

    def _write(self, results, objectives: tuple[str, ...], epochs: int, seconds: float
               ) -> dict[str, Any]:
        members = []
        for result in results:
            last = result.metrics
            schedule = yaml.safe_load(last["final_schedule"])
            entry = {"member": int(last["member"]), "schedule": schedule,
                     "lineage": yaml.safe_load(last["final_lineage"]),
                     "diverged": bool(last["diverged"]), "weights": schedule[-1][1],
                     "train_seconds": last["train_seconds"]}
            if not entry["diverged"]:
                entry.update(val_acc={o: last[f"val_{o}"] for o in objectives},
                             val_avg_acc=last["score"],
                             test_acc={o: last[f"test_{o}"] for o in objectives},
                             test_avg_acc=last["test_avg_acc"])
            members.append(entry)
        members.sort(key=lambda m: m["member"])
        # one line per (event, member, epoch): a restored trial may report an epoch again
        unique = {(r["event"], r["member"], r["epoch"]): r for r in read_population(self.out)}
        lines = sorted(unique.values(),
                       key=lambda r: (r["epoch"], r["event"] != "epoch", r["member"]))
        write_jsonl(self.out / POPULATION, lines)
        summary = search_summary(self.spec.strategy, "ray", list(objectives), epochs, members,
                                 seconds)
        RunDir(self.out).write_summary(summary)
        return summary


def _member_of(trial_id: str) -> int:
    """A trial's member number. Exploit copies the whole config (``member`` included) from
    another trial, so identity comes from the trial id, ``<experiment>_<creation index>``, and
    trials are created in the order of the ``member`` grid."""
    return int(trial_id.rsplit("_", 1)[-1])


def _trial_name(trial: Any) -> str:
    return f"m{_member_of(trial.trial_id):02d}"


def _isnan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)
