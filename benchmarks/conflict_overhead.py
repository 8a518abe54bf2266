"""Cost of the gradient-conflict probe.

Usage: python benchmarks/conflict_overhead.py [--spec vit-d3-w48-p4] [--batch 128]
       [--examples 32] [--own-steps 40] [--skip-legacy]

1. Training with the probe at its default interval against training without it: two trainers on
   the same config and batches, alternating step by step in one process; ratio of total times.
2. One probe step (T per-objective backward passes and their Gram matrices) against one
   training step, for T ∈ {2, 4, 8, 16} objectives on the same encoder.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from scalarize.config import load_config
from scalarize.models import build_model
from scalarize.probes import ConflictProbe
from scalarize.probes.gradients import gram_matrices, parameter_groups
from scalarize.training import Trainer


def training_ratio(spec: str, batch: int, steps: int) -> tuple[float, int]:
    cfg = load_config(None, [
        f"model.spec={spec}", f"train.batch_size={batch}", "train.device=cpu",
        "benchmark.tasks=[shape, colour, size, count]",
        f"benchmark.options={{n_train: {batch * 25}, n_val: 16, n_test: 16}}",
    ])
    probe = ConflictProbe()
    plain, probed = Trainer(cfg, progress=False), Trainer(cfg, callbacks=[probe], progress=False)
    probe.on_fit_start(probed)
    batches = [b for e in range(steps // 25 + 2) for b in plain.sampler.iter_epoch(e)]
    t_plain = t_probed = 0.0
    for index in batches[:steps]:
        start = time.perf_counter()
        plain.train_step(index)
        middle = time.perf_counter()
        probed.train_step(index)
        t_plain += middle - start
        t_probed += time.perf_counter() - middle
    return t_probed / t_plain, probe.every


def probe_step_ratio(spec: str, batch: int, n_tasks: int, repeats: int = 5) -> float:
    torch.manual_seed(0)
    model = build_model(spec, (3, 32, 32), {f"t{i}": 4 for i in range(n_tasks)})
    optimizer = torch.optim.AdamW(model.parameters())
    groups = parameter_groups(model.encoder)
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 4, (batch,))

    def losses() -> torch.Tensor:
        features = model(x)
        return torch.stack([F.cross_entropy(h(features), y) for h in model.heads.values()])

    step_times, probe_times = [], []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        loss = losses().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step_times.append(time.perf_counter() - start)
        values = losses()
        start = time.perf_counter()
        gram_matrices(values, groups)
        probe_times.append(time.perf_counter() - start)
    return statistics.median(probe_times[1:]) / statistics.median(step_times[1:])


def own_batch_cost(spec: str, batch: int, examples: int, steps: int
                   ) -> dict[str, float]:
    """Median seconds per step without a probe, with the step-batch probe and with the
    own-batch probe, each probing every step (side by side, alternating)."""
    cfg = load_config(None, [
        f"model.spec={spec}", f"train.batch_size={batch}", "train.device=cpu",
        "benchmark.tasks=[shape, colour, size, count]",
        f"benchmark.options={{n_train: {batch * 25}, n_val: 16, n_test: 16}}",
    ])
    trainers = {"none": Trainer(cfg, progress=False),
                "step batch": Trainer(cfg, callbacks=[ConflictProbe(every=1)], progress=False),
                "own batch": Trainer(cfg, callbacks=[ConflictProbe(every=1, examples=examples)],
                                     progress=False)}
    for trainer in trainers.values():
        for callback in trainer.callbacks:
            callback.on_fit_start(trainer)
    batches = [b for e in range(steps // 25 + 2) for b in trainers["none"].sampler.iter_epoch(e)]
    times: dict[str, list[float]] = {name: [] for name in trainers}
    for index in batches[:steps + 1]:
        for name, trainer in trainers.items():
            start = time.perf_counter()
            trainer.train_step(index)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values[1:]) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spec", default="vit-d3-w48-p4")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--examples", type=int, default=32)
    parser.add_argument("--own-steps", type=int, default=40)
    parser.add_argument("--every", type=int, default=21)
    parser.add_argument("--skip-legacy", action="store_true",
                        help="measure only the own-batch probe (part 3)")
    args = parser.parse_args()
    print(f"command: python benchmarks/conflict_overhead.py --spec {args.spec} "
          f"--batch {args.batch} --examples {args.examples} --own-steps {args.own_steps} "
          f"--every {args.every}{' --skip-legacy' if args.skip_legacy else ''}")
    cost = own_batch_cost(args.spec, args.batch, args.examples, args.own_steps)
    plain = cost["none"]
    print(f"model {args.spec}, batch {args.batch}, 4 tasks, {torch.get_num_threads()} threads, "
          f"{args.own_steps} alternating steps; median seconds per step:")
    for name, seconds in cost.items():
        extra = (seconds - plain) / plain
        print(f"  probe on {name:10s}: {seconds:.4f} s/step; extra per probed step "
              f"{extra:.2f}× a plain step; a run probing every {args.every} steps: "
              f"{1 + extra / args.every:.3f}× (examples {args.examples}/objective/half)"
              if name != "none" else f"  no probe          : {seconds:.4f} s/step")
    if args.skip_legacy:
        return
    ratio, every = training_ratio(args.spec, args.batch, args.steps)
    print(f"model {args.spec}, batch {args.batch}, {torch.get_num_threads()} threads")
    print(f"training with the probe every {every} steps / without, {args.steps} alternating "
          f"steps, 4 tasks: {ratio:.3f}")
    for n_tasks in (2, 4, 8, 16):
        print(f"one probe step / one training step, T={n_tasks:2d}: "
              f"{probe_step_ratio(args.spec, args.batch, n_tasks):.2f}")


if __name__ == "__main__":
    main()
