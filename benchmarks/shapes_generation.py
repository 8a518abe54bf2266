"""Images per second of the shapes generator, per drawing style, and of a cached load.

Usage: python benchmarks/shapes_generation.py [--n 20000] [--size 32]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from scalarize.benchmarks.shapes import DOMAINS, load_shapes, render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--size", type=int, default=32)
    args = parser.parse_args()
    render(1000, 0, args.size)  # warm-up
    for style in DOMAINS:
        start = time.perf_counter()
        render(args.n, [0, 0, 0], args.size, style)
        rate = args.n / (time.perf_counter() - start)
        print(f"render {style:9s} {args.size}x{args.size}: {rate:10,.0f} images/s")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["SCALARIZE_CACHE"] = cache
        options = {"n_train": args.n, "n_val": 1, "n_test": 1, "image_size": args.size}
        start = time.perf_counter()
        load_shapes(**options)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        load_shapes(**options)
        warm = time.perf_counter() - start
    print(f"load_shapes mtl, {args.n} train images: first use {args.n / cold:,.0f} images/s "
          f"(render + write cache), cached {args.n / warm:,.0f} images/s")


if __name__ == "__main__":
    main()
