"""Data pipeline of the real benchmarks: images/s decoding JPEGs on the fly vs from the decoded
cache, and the share of a training step spent on data.

Usage: python benchmarks/data_pipeline.py [--images 2000] [--size 64] [--steps 30] [--views 100]
       [--pngs 5000] [--workers 2] [--only-stream]

Writes ``--images`` random CelebA-shaped JPEGs (178×218, quality 95) in the official layout to a
temporary folder, then measures (1) decoding them (centre crop + area resize to ``--size``, what
the readers do once), (2) loading the decoded cache (memory-mapped ``.npy``) and gathering random
batches from it, and (3) on ``vit-d3-w48-p4`` at batch 128, the time of the trainer's batch
preparation (gather, copy, normalise) against the whole training step. Then the same for
dense targets: a Taskonomy fixture (``--views`` views of 256×320 in each of four buildings; rgb
and four target PNGs per view) read by the ``taskonomy`` reader, decoded vs cached, and the
data share of the trainer's dense step (``vit-d3-w48-p4`` with four dense decoder heads, batch
32). Last, the streamed path: ``--pngs`` 32×32 RGB PNGs in the ``image_files`` layout, read
lazily by ``--workers`` loader processes while ``vit-d3-w48-p4`` trains at batch 128 through the
trainer; the share of each step spent blocked waiting for the next batch (the loader's
``next()``, which includes the copy and normalisation), next to the same images in memory.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def write_jpegs(folder: Path, n: int) -> list[Path]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
    paths = []
    for i in range(n):
        image = np.roll(base, i, axis=1)
        path = folder / f"{i + 1:06d}.jpg"
        Image.fromarray(image).save(path, quality=95)
        paths.append(path)
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--views", type=int, default=100, help="Taskonomy views per building")
    parser.add_argument("--pngs", type=int, default=5000, help="PNGs of the streamed dataset")
    parser.add_argument("--workers", type=int, default=2, help="loader processes (streamed)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the training "
                        "step (streamed measurement; fewer leaves cores to the loaders)")
    parser.add_argument("--only-stream", action="store_true", help="measure the streamed "
                        "path only")
    args = parser.parse_args()
    if args.only_stream:
        stream(args)
        return

    import torch

    from scalarize.benchmarks.base import Split
    from scalarize.benchmarks.images import decoded_images, file_checksum
    from scalarize.models import build_model
    from scalarize.training.data import TensorSplit, channel_stats

    torch.set_num_threads(2)
    root = Path(tempfile.mkdtemp(prefix="bench-data-"))
    paths = write_jpegs(root, args.images)
    (root / "list.txt").write_text("\n".join(p.name for p in paths))

    start = time.perf_counter()
    checksum = file_checksum([root / "list.txt"])
    decoded = decoded_images(root, paths, args.size, "bench", checksum)
    decode_rate = args.images / (time.perf_counter() - start)

    start = time.perf_counter()
    cached = decoded_images(root, paths, args.size, "bench", checksum)
    array = np.array(cached)  # read every byte: a memory map alone reads nothing yet
    cache_rate = args.images / (time.perf_counter() - start)
    assert np.array_equal(array, decoded)

    split = Split(x=array, labels={"a": np.zeros(len(array), np.int64)})
    mean, std = channel_stats(array)
    tensors = TensorSplit(split, torch.device("cpu"), mean, std)
    rng = np.random.default_rng(0)
    batches = [torch.from_numpy(rng.integers(0, len(array), 128)) for _ in range(args.steps)]

    model = build_model("vit-d3-w48-p4", (3, args.size, args.size), {"a": 2})
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    data_times, step_times = [], []
    for index in batches:
        t0 = time.perf_counter()
        batch = tensors.batch(index)
        t1 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(model.heads["a"](model(batch.x)),
                                                 batch.labels["a"])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        t2 = time.perf_counter()
        data_times.append(t1 - t0)
        step_times.append(t2 - t0)
    data_ms = statistics.median(data_times[3:]) * 1e3
    step_ms = statistics.median(step_times[3:]) * 1e3
    gather_rate = 128 / (data_ms / 1e3)

    print(f"{args.images} JPEGs 178x218 -> {args.size}x{args.size}")
    print(f"decode on the fly (crop + area resize): {decode_rate:10,.0f} images/s")
    print(f"decoded cache (.npy read into memory):  {cache_rate:10,.0f} images/s")
    print(f"cache / decode:                         {cache_rate / decode_rate:10,.0f}x")
    print(f"batch of 128 from the cache (gather, normalise): {data_ms:.2f} ms "
          f"({gather_rate:,.0f} images/s)")
    print(f"training step of vit-d3-w48-p4 at batch 128 incl. data: {step_ms:.1f} ms")
    print(f"share of the step spent on data: {100 * data_ms / step_ms:.1f}%  (target < 5%)")
    decode_share = 128 / decode_rate * 1e3 / (step_ms - data_ms + 128 / decode_rate * 1e3)
    print(f"share if each batch were decoded from JPEG instead: {100 * decode_share:.0f}%")
    dense(args)
    stream(args)


def dense(args: argparse.Namespace) -> None:
    """Taskonomy: decode vs cache, and the data share of a dense training step."""
    import torch

    from scalarize.benchmarks import load_benchmark
    from scalarize.benchmarks.fixtures import write_taskonomy
    from scalarize.config import load_config
    from scalarize.training import Trainer

    root = Path(tempfile.mkdtemp(prefix="bench-taskonomy-"))
    options = write_taskonomy(root, views=args.views, height=256, width=320)
    options["image_size"] = args.size
    config = load_config(None, ["benchmark.name=taskonomy", f"benchmark.options={options}",
                                "model.spec=vit-d3-w48-p4", "train.batch_size=32",
                                "train.device=cpu", "train.epochs=1"])
    views = 4 * args.views
    start = time.perf_counter()
    load_benchmark("taskonomy", **options)  # decodes and caches every building and task
    decode_rate = views / (time.perf_counter() - start)
    start = time.perf_counter()
    data = load_benchmark("taskonomy", **options)  # memory-maps the caches
    for split in data.splits.values():  # read every byte: a memory map alone reads nothing
        np.array(split.x), [np.array(v) for v in split.labels.values()]
    cache_rate = views / (time.perf_counter() - start)
    trainer = Trainer(config, data=data, progress=False)
    train = trainer.splits["train"]
    rng = np.random.default_rng(0)
    data_times, step_times = [], []
    for _ in range(args.steps):
        index = torch.from_numpy(rng.integers(0, len(train), 32))
        t0 = time.perf_counter()
        train.batch(index)
        t1 = time.perf_counter()
        trainer.train_step(index)  # gathers the batch again, as training does
        t2 = time.perf_counter()
        data_times.append(t1 - t0)
        step_times.append(t2 - t1)
    data_ms = statistics.median(data_times[3:]) * 1e3
    step_ms = statistics.median(step_times[3:]) * 1e3
    print(f"\nTaskonomy fixture: {views} views 256x320 (rgb + 4 target PNGs) -> "
          f"{args.size}x{args.size}")
    print(f"reader, decoding the PNGs:  {decode_rate:8,.0f} views/s")
    print(f"reader, from the cache:     {cache_rate:8,.0f} views/s "
          f"({cache_rate / decode_rate:,.0f}x)")
    print(f"dense batch of 32 (rgb + 4 targets) from the cache: {data_ms:.2f} ms")
    print(f"dense training step of vit-d3-w48-p4 + 4 decoders at batch 32: {step_ms:.1f} ms")
    print(f"share of the dense step spent on data: {100 * data_ms / step_ms:.1f}%  "
          "(target < 5%)")


def _timed_steps(trainer: Any, batches: Iterator[Any], steps: int
                 ) -> tuple[list[float], list[float]]:
    """Seconds blocked in ``next(batches)`` and seconds of each whole step (wait + train)."""
    waits, totals = [], []
    for _ in range(steps):
        t0 = time.perf_counter()
        batch = next(batches)
        t1 = time.perf_counter()
        trainer.train_batch(batch)
        t2 = time.perf_counter()
        waits.append(t1 - t0)
        totals.append(t2 - t0)
    return waits, totals


def _endless(split: Any, sampler: Any) -> Iterator[Any]:
    """The training batches of ``split``, epoch after epoch."""
    for epoch in range(1_000_000):
        yield from split.batches(sampler.iter_epoch(epoch))


def stream(args: argparse.Namespace) -> None:
    """PNGs read lazily by loader workers vs the same images in memory: data wait per step."""
    import torch

    from scalarize.benchmarks import Dataset, Split
    from scalarize.benchmarks.image_files import write_image_files
    from scalarize.config import load_config
    from scalarize.training import Trainer, load_data

    torch.set_num_threads(args.threads)
    root = Path(tempfile.mkdtemp(prefix="bench-pngs-"))
    start = time.perf_counter()
    options = write_image_files(root, n_train=args.pngs, n_test=64, size=32)
    write_s = time.perf_counter() - start
    config = load_config(None, ["benchmark.name=image_files", f"benchmark.options={options}",
                                "benchmark.tasks=[label]", "model.spec=vit-d3-w48-p4",
                                "train.batch_size=128", "train.device=cpu",
                                f"train.threads={args.threads}", f"train.workers={args.workers}",
                                "train.epochs=1"])
    streamed = load_data(config)
    train = streamed.splits["train"]
    in_memory = {}
    for name, split in streamed.splits.items():
        items = [split[i] for i in range(len(split))]
        in_memory[name] = Split(x=np.stack([x for x, _ in items]),
                                labels={"label": np.array([t["label"] for _, t in items])})
    memory = Dataset(streamed.name, streamed.view, streamed.tasks, in_memory)
    steps, rounds = args.steps, 3
    runs = {}
    for label, data in (("in memory", memory), ("streamed", streamed)):
        trainer = Trainer(config, data=data, progress=False)
        trainer.model.train()
        split = trainer.splits["train"]
        batches = _endless(split, trainer.sampler)
        _timed_steps(trainer, batches, 5)  # warm-up: workers start, caches fill
        runs[label] = (trainer, batches, [], [])
    for _ in range(rounds):  # alternate blocks, so both paths see the same machine load
        for trainer, batches, waits, totals in runs.values():
            wait, total = _timed_steps(trainer, batches, -(-steps // rounds))
            waits += wait
            totals += total
    results = {label: (statistics.median(w) * 1e3, statistics.median(t) * 1e3, sum(w) / sum(t))
               for label, (_, _, w, t) in runs.items()}
    shutil.rmtree(root)
    print(f"\nStreamed PNGs: {len(train)} training images 32x32 RGB written in {write_s:.1f} s "
          f"to {root} (removed)")
    print(f"vit-d3-w48-p4, batch 128, {args.workers} loader workers, {args.threads} torch "
          "threads, "
          f"{steps} steps each after 5 warm-up steps, in {rounds} alternating blocks")
    for label, (wait, total, share) in results.items():
        print(f"{label:>10}: waiting for data {wait:6.2f} ms (median) of a {total:6.1f} ms "
              f"step; total wait / total time = {100 * share:4.1f}%  (target < 5%)")

if __name__ == "__main__":
    main()
