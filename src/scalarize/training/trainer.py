"""The training loop: data → model → objectives → method → optimiser, with evaluation, metrics,
checkpoints and callbacks. It knows nothing about specific methods or benchmarks.

Example:
    >>> from scalarize.config import load_config
    >>> cfg = load_config(None, ["train.epochs=1", "model.spec=vit-d1-w16-p8",
    ...     "benchmark.options={n_train: 64, n_val: 16, n_test: 16, cache: false}"])
    >>> summary = Trainer(cfg, progress=False).fit()
    >>> 0.0 <= summary.test.avg_acc <= 1.0
    True
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import nullcontext
from functools import partial
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from scalarize.benchmarks import Dataset
from scalarize.config import RunConfig
from scalarize.errors import ScalarizeError
from scalarize.methods import StepContext, build_method
from scalarize.methods.base import needs_shared_features
from scalarize.methods.shard import Shard
from scalarize.models import (
    MultiHeadModel,
    build_model,
    check_encoder_forward,
    check_encoder_output,
    describe,
    is_dense,
)
from scalarize.models.per_task import Features
from scalarize.runs.records import (
    EpochRecord,
    EvalResult,
    LastValidation,
    ModelInfo,
    RunSummary,
)
from scalarize.training.augment import Augment
from scalarize.training.batch_check import BatchCheck, check_first_batch
from scalarize.training.callbacks import Callback
from scalarize.training.compiling import CompiledEncoder, decide_compile
from scalarize.training.data import (
    Batch,
    ServedSplit,
    input_stats,
    refuse_augment,
    serve,
    stats_show_finite,
)
from scalarize.training.mixing import MIXING
from scalarize.training.model_record import ModelRecord
from scalarize.training.objectives import PerExample
from scalarize.training.parallel import (
    batchnorm_across,
    broadcast,
    check_distributes,
    gather,
    global_losses,
    global_recompute,
    shard_batches,
    sum_gradients,
)
from scalarize.training.plan import RunPlan, seed_torch
from scalarize.training.run_folder import RunFolder
from scalarize.training.schedule import warmup_cosine
from scalarize.weights import SimplexWeights


def _on(model: MultiHeadModel, device: torch.device) -> MultiHeadModel:
    """``model`` moved to ``device``; one already there as it is (``Module.to`` walks every
    module even to change nothing: about three times this look at its tensors)."""
    tensors = itertools.chain(model.parameters(), model.buffers())
    return model if all(t.device == device for t in tensors) else model.to(device)


class TrainingDiverged(ScalarizeError):
    """The training loss became NaN or infinite."""


class Trainer:
    """Trains one model on one config, or on a :class:`RunPlan` (the config resolved once, as
    :func:`~scalarize.launch.check_run` returns it); optionally writes its records into
    ``run_dir`` (a :class:`~scalarize.training.run_folder.RunFolder`: a run store's
    :class:`~scalarize.runs.store.RunDir`).

    ``data`` may be passed in with a config to share one loaded benchmark across many runs
    (a plan holds its own). A plan's callbacks run before ``callbacks``.

    ``shard``: this process's place among several that train the run data-parallel
    (:mod:`scalarize.training.parallel`; the process group is set up); ``None``: one process.
    """

    def __init__(self, config: RunConfig | RunPlan, run_dir: RunFolder | None = None,
                 callbacks: Sequence[Callback] = (), data: Dataset | None = None,
                 progress: bool | None = None, shard: Shard | None = None) -> None:
        train_cfg = config.config.train if isinstance(config, RunPlan) else config.train
        if train_cfg.threads:
            torch.set_num_threads(train_cfg.threads)
        plan = config if isinstance(config, RunPlan) else RunPlan.resolve(config, data)
        self.plan = plan
        self.config = config = plan.config
        self.run_dir = run_dir
        self.callbacks = [*plan.callbacks, *callbacks]
        self.progress = progress
        self.device = plan.device
        self.data = plan.data
        self.objectives = plan.objectives
        self.weights = plan.weights
        mode = config.scalarization.mdl_mode if self.data.view == "mdl" else "loss"
        self.mixing = MIXING.get(mode)()

        train = self.data.splits["train"]
        self.inputs = inputs = self.data.input
        mean, std = input_stats(train, inputs.kind, inputs.standardize)
        # what a checkpoint needs besides the weights to serve the model without its data
        # (the input and its statistics: new inputs go through the same transform)
        self.record = ModelRecord.of(self.data, (mean, std))
        # every split's values are checked: in memory once here, streamed at each batch
        tasks = [(label, kind) for _, label, kind in self.objectives.tasks()]
        summed = stats_show_finite(train, inputs.kind, mean)  # the statistics read every value
        self.splits: dict[str, ServedSplit] = {
            name: serve(split, self.device, mean, std, train_cfg.workers,
                        BatchCheck(name, tasks, inputs.vocab_size, summed and split is train),
                        inputs.kind)
            for name, split in self.data.splits.items()}
        # the sampler reads only len() and .domain, which a streamed split has too
        self.sampler = self.mixing.sampler(train, np.array(self.weights.values),
                                           train_cfg.batch_size, config.seed)
        seed_torch(config.seed, self.device)
        heads = self.objectives.head_specs()
        # a model without dense heads forwards through its encoder: its contract is checked
        # on the first real batch, in the forward the first-batch check runs anyway
        fused = not any(is_dense(head) for head in heads.values())
        self.model = _on(build_model(config.model.spec, inputs, heads, config.model.options,
                                     check_forward=not fused), self.device)
        # the user's data, model and losses meet here first: one clear line if they don't fit
        self._check_model(self.splits["train"].batch(torch.arange(min(2, len(train)))), fused)
        self.shared_params = self.model.shared_parameters()
        method = plan.method or build_method(config.method.name, config.method.options,
                                             len(self.objectives.names))
        self.method = method.to(self.device)  # the plan's, built without drawing from the RNG
        if self.model.per_task and self.method.needs_shared_features:
            raise needs_shared_features(config.method.name)
        self.shard = shard if shard is not None and shard.world > 1 else None
        if self.shard is not None:
            check_distributes(config, self.method, self.shard.world)
            self.model = batchnorm_across(self.model, self.device, self.shard)
        self.optimizer = torch.optim.AdamW(self._param_groups(), lr=train_cfg.lr)
        decision = decide_compile(
            train_cfg.compile, self.device.type,
            method_compiles=getattr(self.method, "compiles", False), method=config.method.name)
        if decision.warning:
            warnings.warn(decision.warning, stacklevel=2)
        self._use_compiled(decision.enabled)
        self.steps_per_epoch = len(self.sampler)
        total = train_cfg.epochs * self.steps_per_epoch
        warmup = round(train_cfg.warmup_epochs * self.steps_per_epoch)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: warmup_cosine(s, warmup, total, train_cfg.min_lr_ratio)
        )
        self.autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16)
            if train_cfg.precision == "bf16" else nullcontext()
        )
        self.weight_tensor = torch.tensor(self.weights.values, device=self.device)
        aug = train_cfg.augment
        refuse_augment(aug is not None, inputs)
        self.target_flips = self.objectives.target_flips()
        if aug is not None and aug.padding and self.target_flips:
            raise ScalarizeError("train.augment.padding crops images, which dense targets do "
                                 "not follow; use train.augment={padding: 0, flip: true}")
        self.augment = Augment(aug.padding, aug.flip) if aug is not None else None
        self.epoch = 0
        self.step = 0
        self.history: list[dict[str, Any]] = []
        self.train_seconds = 0.0
        self._bar: tqdm | None = None
        self._last_counts = torch.zeros(len(self.objectives.names), device=self.device)

    def _check_model(self, first: Batch, fused: bool) -> None:
        """The first training batch through the model and the losses
        (:func:`check_first_batch`); when ``fused``, the encoder contract is checked on that
        forward's features instead of a dummy batch's. A refusal is the one the dummy batch
        gave first before the two checks shared a forward, whenever that batch is refused."""
        spec, encoder = self.config.model.spec, self.model.encoder
        contract = partial(check_encoder_output, encoder, spec, self.inputs) if fused else None
        try:
            check_first_batch(self.objectives, self.model, first, contract)
        except ScalarizeError:
            if fused:
                check_encoder_forward(encoder, spec, self.inputs)
            raise

    def _use_compiled(self, enabled: bool) -> None:
        """Train the encoder compiled (``enabled``) or eagerly from the next step on;
        ``compiled`` is recorded in the summary and the checkpoint."""
        self.compiled = enabled
        # the batch each process steps on: its slice of the global batch on several processes
        local = self.config.train.batch_size // (self.shard.world if self.shard else 1)
        self._compiled = CompiledEncoder(self.model, local) if enabled else None

    def _param_groups(self) -> list[dict[str, Any]]:
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
        for name, param in self.model.named_parameters():
            (no_decay if param.ndim <= 1 or name.endswith("pos_embed") else decay).append(param)
        groups = [{"params": decay, "weight_decay": self.config.train.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        extra = list(self.method.parameters())
        if extra:
            groups.append({"params": extra, "weight_decay": 0.0})
        return groups

    def set_weights(self, weights: SimplexWeights) -> None:
        """Use new scalarization weights from the next step on (population search does)."""
        if weights.names != self.objectives.names:
            raise ScalarizeError(f"weights name {weights.names}, expected {self.objectives.names}")
        self.weights = weights
        self.weight_tensor = torch.tensor(weights.values, device=self.device)
        self.sampler.set_weights(np.array(weights.values))

    # -- the loop -----------------------------------------------------------------------------
    def train_step(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on the training examples ``index``; returns the detached
        per-objective losses and the optimised scalar (no host synchronisation)."""
        return self.train_batch(self.splits["train"].batch(index))

    def train_batch(self, batch: Batch, shard: Shard | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimisation step on ``batch`` (from the training split, on the device); returns
        what :meth:`train_step` does. On several processes ``batch`` is this process's slice of
        the step's global batch, which ``shard`` places."""
        if self.augment is not None:
            targets = {n: (batch.labels[n], f) for n, f in self.target_flips.items()}
            batch.x, moved = self.augment(batch.x, targets,
                                          None if shard is None else (*shard.span(), shard.size))
            batch.labels.update(moved)
        # a callback that takes its own gradients on this step's graph needs it eager
        eager = any(callback.takes_gradients(self.step) for callback in self.callbacks)
        features, per_example = self._forward(batch, eager)
        losses, counts = per_example.mean_losses()
        if shard is not None:  # the global batch's losses, this slice's share of the gradient
            losses, counts = global_losses(losses, counts, shard)
        self._last_counts = counts
        ctx = StepContext(self.model, self.shared_params, features, self.step, counts,
                          per_example.mask, lambda: self._forward(batch, eager=True)[1].loss,
                          float(self.scheduler.get_last_lr()[0]), shard)
        for callback in self.callbacks:
            callback.on_losses(self, losses, per_example, ctx)
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.method.backward(losses, self.mixing.step_weights(self.weight_tensor, counts),
                                    ctx)
        if shard is not None:
            sum_gradients(self.model.parameters(), shard)
        if self.config.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.train.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.method.after_step(
            (lambda: self._batch_losses(batch)) if shard is None else
            global_recompute(lambda: self._batch_means(batch), shard))
        self.step += 1
        for callback in self.callbacks:
            callback.on_step_end(self, self.step, loss)
        return losses.detach(), loss

    def _forward(self, batch: Batch, eager: bool = False) -> tuple[Features, PerExample]:
        """The features (shared, or per objective) and the per-example losses of every
        objective (through the compiled encoder where the run compiles and ``eager`` is not
        asked)."""
        with self.autocast:
            features = (self._compiled(batch.x, eager) if self._compiled is not None
                        else self.model(batch.x))
            return features, self.objectives.per_example(self.model.heads, features, batch)

    @torch.no_grad()
    def _batch_losses(self, batch: Batch) -> torch.Tensor:
        return self._forward(batch)[1].mean_losses()[0]

    @torch.no_grad()
    def _batch_means(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self._forward(batch)[1].mean_losses()

    def train_epoch(self) -> dict[str, Any]:
        """One epoch over the sampler's batches; returns mean training losses per objective."""
        self.model.train()
        loss_sum = torch.zeros(len(self.objectives.names), device=self.device)
        # per objective, the batches that had examples of it (partial labels: not every one)
        batches = torch.zeros(len(self.objectives.names), device=self.device)
        total_sum = torch.zeros((), device=self.device)
        train = self.splits["train"]
        for batch, shard in self._batches(train):
            losses, loss = self.train_batch(batch, shard)
            loss_sum += losses
            batches += self._last_counts > 0
            total_sum += loss
            if self._bar is not None:
                self._bar.update(1)
        self.method.on_epoch_end()
        n = self.steps_per_epoch
        means = (loss_sum / batches.clamp(min=1)).tolist()
        total = total_sum.item() / n
        if not np.isfinite(total):
            raise TrainingDiverged(
                f"training diverged at epoch {self.epoch + 1} (loss {total}); lower train.lr or "
                "set train.grad_clip"
            )
        return {"train_loss": dict(zip(self.objectives.names, means, strict=True)),
                "train_objective": total}

    def _batches(self, train: ServedSplit) -> Iterator[tuple[Batch, Shard | None]]:
        """This epoch's batches (on several processes, this process's slices of them)."""
        indices = self.sampler.iter_epoch(self.epoch)
        if self.shard is None:
            return ((batch, None) for batch in train.batches(indices))
        pairs = list(shard_batches(indices, self.shard))
        return zip(train.batches(index for index, _ in pairs), (s for _, s in pairs),
                   strict=True)

    @torch.no_grad()
    def evaluate(self, split: str = "val") -> EvalResult:
        """Score (``acc``: accuracy, or a dense task's score) and mean loss per objective on
        ``split``, their average score, and every objective's named ``metrics``."""
        self.model.eval()
        meter = self.objectives.meter(self.device)
        for batch in self.splits[split].sequential(self.config.train.eval_batch_size):
            meter.update(self._forward(batch)[1], batch)
        return EvalResult.model_validate(meter.result())

    def fit(self, resume: bool = False) -> RunSummary:
        """Train for ``train.epochs`` epochs (continuing from the checkpoint when ``resume``),
        evaluate on test, and return the summary."""
        if resume and (self.run_dir is not None or self.shard is not None):
            self._restore()
        epochs = self.config.train.epochs
        self._bar = tqdm(total=epochs * self.steps_per_epoch, initial=self.step,
                         desc=self.run_dir.path.name if self.run_dir else "train", unit="step",
                         leave=False, dynamic_ncols=True,
                         disable=None if self.progress is None else not self.progress)
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        for callback in self.callbacks:
            callback.on_fit_start(self)
        try:
            self.train_epochs(epochs - self.epoch)
        finally:
            self._bar.close()
            self._bar = None
        summary = self._summary()
        for callback in self.callbacks:
            callback.on_fit_end(self, summary)
        if self.run_dir is not None:
            self.run_dir.write_summary(summary)
        return summary

    def train_epochs(self, n: int) -> list[dict[str, Any]]:
        """Train ``n`` more epochs (each followed by validation, callbacks and, with a run
        folder, metrics and a checkpoint); returns their records. No test evaluation: population
        search trains members an interval at a time with this."""
        for _ in range(n):
            self._run_epoch()
        return self.history[len(self.history) - n:] if n > 0 else []

    def _run_epoch(self) -> None:
        start = time.perf_counter()
        lr = self.scheduler.get_last_lr()[0]
        record: dict[str, Any] = {"epoch": self.epoch + 1, "step": None, "lr": lr}
        record.update(self.train_epoch())
        seconds = time.perf_counter() - start
        self.train_seconds += seconds
        self.epoch += 1
        record["step"] = self.step
        val = self.evaluate("val")
        record.update({"val_acc": val.acc, "val_loss": val.loss, "val_metrics": val.metrics,
                       "val_avg_acc": val.avg_acc, "weights": self.weights.as_dict(),
                       "epoch_seconds": seconds, "step_seconds": seconds / self.steps_per_epoch})
        for callback in self.callbacks:
            callback.on_epoch_end(self, record)
        self.history.append(record)
        if self.run_dir is not None or self.shard is not None:
            state = self.state_dict()  # on several processes, every one gives its RNG state
            if self.run_dir is not None:
                self.run_dir.append_metrics(EpochRecord.model_validate(record))
                self.run_dir.save_checkpoint(state)
        if self._bar is not None:
            self._bar.set_postfix(val_avg_acc=f"{val.avg_acc:.3f}", refresh=False)

    def _summary(self) -> RunSummary:
        test = self.evaluate("test")
        val = self.history[-1] if self.history else {}
        best = max(self.history, key=lambda r: r["val_avg_acc"]) if self.history else {}
        return RunSummary(
            run=self.run_dir.path.name if self.run_dir else None,
            objectives=list(self.objectives.names),
            weights=self.weights,
            weights_label=self.weights.label(),
            model=ModelInfo(spec=self.config.model.spec,
                            **describe(self.model, self.inputs)),
            epochs=self.epoch,
            steps=self.step,
            val=LastValidation(acc=val.get("val_acc"), loss=val.get("val_loss"),
                               avg_acc=val.get("val_avg_acc")),
            test=test,
            best_epoch=best.get("epoch"),
            best_val_avg_acc=best.get("val_avg_acc"),
            train_seconds=self.train_seconds,
            step_seconds=self.train_seconds / max(1, self.step),
            # GPU memory is measured per run; on CPU, see benchmarks/method_cost.py
            peak_memory_mb=(torch.cuda.max_memory_allocated(self.device) / 2**20
                            if self.device.type == "cuda" else None),
            device=str(self.device),
            compiled=self.compiled,
            world_size=None if self.shard is None else self.shard.world,
        )

    # -- checkpoints --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue training exactly where it stopped. On several
        processes (a collective: every process calls it) it holds every process's RNG state
        and their number."""
        state: dict[str, Any] = {
            "epoch": self.epoch, "step": self.step, "train_seconds": self.train_seconds,
            "model": self.model.state_dict(), "method": self.method.state_dict(),
            "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
            "weights": list(self.weights.values), "history": self.history,
            "compiled": self.compiled, "record": self.record.state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": (torch.cuda.get_rng_state(self.device)
                         if self.device.type == "cuda" else None),
        }
        if self.shard is not None:
            state["world_size"] = self.shard.world
            state["rank_rng"] = gather(state["torch_rng"], self.shard)
            state["rank_cuda_rng"] = gather(state["cuda_rng"], self.shard)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`. Under ``train.compile=auto`` the run continues in the
        mode its checkpoint was written in (compiled and eager kernels round differently); an
        explicit ``true``/``false`` that contradicts it is refused in one line."""
        started = bool(state.get("compiled", False))  # a checkpoint from before: eager
        if started != self.compiled:
            if self.config.train.compile != "auto":
                def mode(compiled: bool) -> str:
                    return "compiled" if compiled else "eager"

                raise ScalarizeError(
                    f"this run started {mode(started)} and would resume {mode(self.compiled)} "
                    f"with train.compile={self.config.train.compile}, which does not continue "
                    "it exactly; resume it where it can train as it started, or pass "
                    "--overwrite to restart it")
            self._use_compiled(started)  # auto continues in the mode the run started in
        world = 1 if self.shard is None else self.shard.world
        started_on = state.get("world_size", 1)
        if started_on != world:
            raise ScalarizeError(
                f"this run started on {started_on} process(es) and would resume on {world}, "
                "which changes the batches each one sees; resume it with --nproc "
                f"{started_on}, or pass --overwrite to restart it")
        self.model.load_state_dict(state["model"])
        self.method.load_state_dict(state["method"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        saved = dict(zip(self.objectives.names, state["weights"], strict=True))
        self.set_weights(SimplexWeights.restore(saved))  # bit for bit: not normalised again
        self.epoch, self.step = state["epoch"], state["step"]
        self.train_seconds = state["train_seconds"]
        self.history = list(state["history"])
        rank = 0 if self.shard is None else self.shard.rank
        torch_rng = state["torch_rng"] if self.shard is None else state["rank_rng"][rank]
        cuda_rng = state.get("cuda_rng") if self.shard is None else state["rank_cuda_rng"][rank]
        torch.set_rng_state(torch_rng)
        if cuda_rng is not None and self.device.type == "cuda":
            torch.cuda.set_rng_state(cuda_rng, self.device)

    def _restore(self) -> None:
        # on several processes rank 0 (which holds the run folder) reads it for all
        state = self.run_dir.load_checkpoint() if self.run_dir is not None else None
        if self.shard is not None:
            state = broadcast(state, self.shard)
        if state is not None:
            try:
                self.load_state_dict(state)
            except (RuntimeError, KeyError, ValueError, TypeError) as exc:
                # PyTorch's first line only says "Error(s) in loading state_dict for ...": the
                # names and shapes that differ follow it, so keep them, on one line
                reason = " ".join(str(exc).split())
                reason = reason if len(reason) <= 400 else reason[:399] + "…"
                where = (self.run_dir.checkpoint_path if self.run_dir is not None
                         else "(rank 0's)")
                raise ScalarizeError(
                    f"checkpoint {where} does not fit this run "
                    f"({type(exc).__name__}: {reason}); delete it to restart the run or pass "
                    "--overwrite") from None
        if self.run_dir is not None:
            self.run_dir.truncate_metrics(self.epoch)
