"""The ``scalarize`` command: parses arguments and dispatches; the work lives in the library.

A mistake the user can fix prints one line and exits with status 2 (``--debug`` shows the
traceback); nothing already written is overwritten.
"""

from __future__ import annotations

import argparse
import errno
import json
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from scalarize.errors import ScalarizeError

if TYPE_CHECKING:
    from scalarize.runs.records import RunSummary

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    """argparse with one-line errors: what is wrong and where the usage is, no usage block."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def _os_error_message(exc: OSError) -> str:
    """One line for a file-system fault: the path, what the system said, what would fix it."""
    path = exc.filename or "a file"
    reason = exc.strerror or str(exc)
    fixes = {errno.EACCES: "check its permissions or choose another --out",
             errno.EPERM: "check its permissions or choose another --out",
             errno.EROFS: "choose a writable --out",
             errno.ENOSPC: "free some space or choose another --out",
             errno.EDQUOT: "free some space or choose another --out",
             errno.ENOTDIR: "a part of the path is a file; choose another path",
             errno.EISDIR: "it is a folder; give a file",
             errno.ENAMETOOLONG: "choose a shorter name"}
    fix = fixes.get(exc.errno or 0, "check the path")
    return f"{path}: {reason}; {fix}"


@contextmanager
def _one_line_warnings() -> Iterator[None]:
    """Warnings raised by the library print as ``scalarize: warning: ...``, one line each, and
    each distinct message once per command (a corrupt run read by several report sections is
    named once)."""
    previous = warnings.showwarning
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = str(message)
        if text not in shown:
            shown.add(text)
            print(f"scalarize: warning: {text}", file=sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def _overrides(args: argparse.Namespace) -> list[str]:
    """The command line's overrides, after the smoke run's when ``--smoke`` is given, and the
    ``--track`` flags last."""
    from scalarize.tracking.cli import track_overrides

    tracking = track_overrides(getattr(args, "track", None))
    if not args.smoke:
        return [*args.overrides, *tracking]
    from scalarize.smoke import smoke_overrides

    return [*smoke_overrides(args.config), *args.overrides, *tracking]


def _track_flag(parser: argparse.ArgumentParser) -> None:
    # the help is spelled here: importing scalarize.tracking while building the parser would
    # import torch for every command
    parser.add_argument("--track", action="append", default=[], metavar="BACKEND=TARGET",
                        help="also log to a tracker, repeatable: tensorboard=DIR, mlflow=URI "
                        "(e.g. sqlite:///mlflow.db), wandb=PROJECT (offline; needs wandb)")


def _number(low: float, exclusive: bool = False) -> Callable[[str], float]:
    """An argparse type: a finite number at least (or above) ``low``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value < low or (exclusive and value == low):
            raise argparse.ArgumentTypeError(
                f"{text} is out of range; give a number {'>' if exclusive else '>='} {low:g}")
        return value

    return parse


def _count(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is out of range; give 1 or more")
    return value


def _one_run_flags(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--resume", action="store_true", help=f"continue an interrupted {what}")
    parser.add_argument("--overwrite", action="store_true", help=f"replace an existing {what}")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _smoke_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--smoke", action="store_true",
                        help="run on a tiny fixture of the data set, on the CPU, in seconds "
                        "(what the preset's smoke: list says)")


def _cmd_train(args: argparse.Namespace) -> None:
    from scalarize.config import load_config, with_nproc
    from scalarize.launch.train import train_run

    if args.resume and args.overwrite:
        raise ScalarizeError("--resume and --overwrite exclude each other; pick one")
    config = load_config(Path(args.config), _overrides(args))
    if args.nproc is not None:  # recorded: train.nproc in the run's config.yaml
        config = with_nproc(config, args.nproc)
    if args.address and args.engine != "ray":
        raise ScalarizeError("--address needs --engine ray")
    if args.engine == "ray":
        from scalarize.engines.ray_train import ray_train_run

        summary = ray_train_run(config, args.out, config.train.nproc, resume=args.resume,
                                overwrite=args.overwrite, address=args.address)
        _print_run(summary, Path(args.out))
        return
    summary = train_run(config, args.out, resume=args.resume, overwrite=args.overwrite,
                        progress=False if args.quiet else None)
    if summary.world_size is None or int(os.environ.get("RANK", "0")) == 0:
        _print_run(summary, Path(args.out))


def _cmd_runs(args: argparse.Namespace) -> None:
    from scalarize.runs import load_runs

    frame = load_runs(args.dir)
    if frame.empty:
        print(f"no runs under {args.dir}")
        return
    if args.format == "table":
        frame = frame[[c for c in ["run", "model", "weights", "seed", "status", "epochs",
                                   "test_avg_acc", "val_avg_acc", "train_seconds"] if c in frame]]
    _print_frame(frame, args.format)


def _load_benchmark(name: str, view: str, options: dict[str, object], seed: int = 0):
    """The benchmark ``name`` with ``options``, through the same path as training."""
    from scalarize.config import load_config
    from scalarize.training import load_data

    config = load_config(None, [f"benchmark.name={name}", f"benchmark.view={view}",
                                f"benchmark.seed={seed}"])
    config.benchmark.options = options
    return load_data(config)


def _cmd_data_info(args: argparse.Namespace) -> None:
    from scalarize.config import apply_overrides

    data = _load_benchmark(args.name, args.view, apply_overrides({}, args.options), args.seed)
    print(json.dumps(data.summary(), indent=2))


def _cmd_data_prepare(args: argparse.Namespace) -> None:
    from scalarize.benchmarks.images import CACHE_DIR
    from scalarize.config import apply_overrides

    if not args.download and not Path(args.root).is_dir():
        raise ScalarizeError(f"--root {args.root} is not a folder; give the folder holding "
                             f"the official {args.name} files (see the README)")
    options = apply_overrides({}, args.options)
    options["root"] = args.root
    if args.download:
        options["download"] = True
    data = _load_benchmark(args.name, args.view, options)
    caches = sorted((Path(args.root) / CACHE_DIR).glob("*.npy"))
    sizes = {split: len(s) for split, s in data.splits.items()}
    print(f"{args.name}: {sizes}, objectives {list(data.objectives)}")
    if caches:
        print("decoded caches (memory-mapped by later loads):")
        for path in caches:
            print(f"  {path}  {path.stat().st_size / 2**20:,.1f} MB")
    else:
        print("this benchmark reads its files directly; nothing to cache")


def _cmd_model_info(args: argparse.Namespace) -> None:
    import torch

    from scalarize.benchmarks.inputs import InputSpec
    from scalarize.launch import memory_budget
    from scalarize.models import build_model, check_model, describe

    shape: InputSpec | tuple[int, int, int] = (args.channels, args.image_size, args.image_size)
    per = f"{args.image_size}x{args.image_size} image"
    if args.length is not None or args.features is not None:  # inputs that are not images
        if args.length is None:
            shape = InputSpec("tabular", (args.features,))
        elif args.vocab is not None:
            shape = InputSpec("tokens", (args.length,), args.vocab)
        else:
            shape = InputSpec("sequence", (args.length, args.features or 1))
        per = f"example ({shape.describe()})"
    elif args.vocab is not None:
        raise ScalarizeError("--vocab is for token inputs; give --length L with it")
    check_model(args.spec, shape, {"head": args.classes}, memory_budget(torch.device("cpu")))
    model = build_model(args.spec, shape, {"head": args.classes})
    info = describe(model, shape)
    print(f"{args.spec}: {info['encoder_params']:,} encoder parameters, "
          f"{info['flops'] / 1e6:,.2f} MFLOPs per {per}")


def _cmd_sweep(args: argparse.Namespace) -> None:
    from scalarize.studies.sweep import load_sweep_config, run_sweep

    config = load_sweep_config(args.config, _overrides(args))
    plan = run_sweep(config, args.out, engine=args.engine, engine_options=_engine_options(args),
                     progress=False if args.quiet else None)
    print(f"{len(plan)} runs in {args.out}; analyse with: scalarize analyze capacity {args.out}")


def _engine_options(args: argparse.Namespace) -> dict[str, object]:
    """Engine keyword arguments; the Ray resources are per run (a search: per member)."""
    jobs = getattr(args, "jobs", None)
    if jobs is not None and args.engine != "local":
        raise ScalarizeError("--jobs is for --engine local; on Ray, --cpus-per-run sets how "
                             "many runs share a machine")
    if args.engine == "ray":
        return {"address": args.address, "cpus_per_run": args.cpus_per_run,
                "gpus_per_run": args.gpus_per_run, "connect_timeout": args.connect_timeout}
    if args.address:
        raise ScalarizeError("--address needs --engine ray")
    return {"jobs": jobs} if jobs is not None else {}


def _cmd_compare(args: argparse.Namespace) -> None:
    from scalarize.analysis.tables import compare_tables
    from scalarize.studies.compare import load_compare_config, run_compare

    config = load_compare_config(args.config, _overrides(args))
    run_compare(config, args.out, engine=args.engine, engine_options=_engine_options(args),
                progress=False if args.quiet else None)
    table = compare_tables(args.out).methods
    _print_frame(table, args.format)
    if args.format == "table" and table.attrs.get("legend"):
        print(table.attrs["legend"])
    print(f"\nreport: scalarize report {args.out}")


def _cmd_search(args: argparse.Namespace) -> None:
    from scalarize.analysis.tables import search_tables
    from scalarize.search.spec import load_search_config
    from scalarize.studies.runner import run_search

    overrides = _overrides(args)
    if args.strategy:
        overrides.append(f"search.strategy={args.strategy}")
    config = load_search_config(args.config, overrides)
    summary = run_search(config, args.out, engine=args.engine,
                         engine_options=_engine_options(args),
                         progress=False if args.quiet else None)
    search = search_tables(args.out)  # csv and json: every weight; a table: readable
    _print_frame(search.members_display if args.format == "table" else search.members,
                 args.format)
    weights = search.weights()
    best = (f"\nbest member {summary.best_member} (held-out avg_acc "
            f"{summary.val_avg_acc:.3f}, test avg_acc {summary.test_avg_acc:.3f})")
    spent = f"{summary.member_epochs} member-epochs in {summary.seconds:.0f} s"
    if not search.many:
        print(f"{best}; final weights {weights}; {spent}")
    else:  # the largest weights on a line of their own
        print(f"{best}; {spent}\nfinal weights, largest first: {weights}")
    print(f"retrain it: scalarize replay {args.out} --member best; report: scalarize report "
          f"{args.out}")


def _cmd_replay(args: argparse.Namespace) -> None:
    from scalarize.launch.train import train_run
    from scalarize.studies.replay import replay_config
    from scalarize.tracking.cli import with_tracking

    if args.resume and args.overwrite:
        raise ScalarizeError("--resume and --overwrite exclude each other; pick one")
    config = with_tracking(replay_config(args.dir, args.member, spec=args.spec,
                                         options=_model_options(args.options)), args.track)
    summary = train_run(config, args.dir, resume=args.resume, overwrite=args.overwrite,
                        progress=False if args.quiet else None)
    _print_run(summary, Path(args.dir))


def _cmd_predict(args: argparse.Namespace) -> None:
    from scalarize.trained import load_run, predict_to_file

    if args.data is None and args.split is None:
        raise ScalarizeError("give --data FILE.npz (or package.module:load), or --split "
                             "train|val|test for the run's own data")
    model = load_run(args.run, args.member)
    arrays = predict_to_file(model, args.out, args.data, args.split, args.domain, args.raw,
                             args.overwrite)
    shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in arrays.items())
    print(f"{args.out}: {shapes}\nfrom {model.source.description}")


def _cmd_export(args: argparse.Namespace) -> None:
    from scalarize.trained import export_model, load_run

    model = load_run(args.run, args.member)
    if args.domain is not None:
        model = model.restricted([args.domain])
    path = export_model(model, args.out, args.format, overwrite=args.overwrite)
    print(f"{path}: {args.format}, input x {model.input_dtype} "
          f"N×{'×'.join(map(str, model.input_shape))}, outputs {list(model.head_names)}\n"
          f"from {model.source.description}")


def _cmd_study_search(args: argparse.Namespace) -> None:
    from scalarize.report.search_study import ANYTIME_PNG, write_study_outputs
    from scalarize.search.spec import load_search_config
    from scalarize.studies.study import DEFAULT_STRATEGIES, SearchStudy

    names = [n for text in (args.strategies or DEFAULT_STRATEGIES) for n in text.split(",")
             if n.strip()]
    config = load_search_config(args.config, args.overrides)
    out = SearchStudy(config, args.out, args.budget, args.seeds, names,
                      reference_grid=args.reference_grid, transfer_specs=args.transfer_spec,
                      progress=False if args.quiet else None, seed_offset=args.seed_offset,
                      vary_data=args.vary_data).run()
    _print_tables(write_study_outputs(out), args.format)
    print(f"\ntables: {out}/table.csv, table.json; anytime plot: {out}/{ANYTIME_PNG}")


def _model_options(text: str | None) -> dict[str, object] | None:
    """``--options '{width: 64}'``: a YAML mapping of model options (``None`` when not given)."""
    if text is None:
        return None
    import yaml

    try:
        tree = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ScalarizeError(f"--options {text!r} is not valid YAML; give a mapping such as "
                             "'{width: 64}'") from None
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ScalarizeError(f"--options {text!r} is not a mapping; give one such as "
                             "'{width: 64}'")
    return tree


def _print_run(summary: RunSummary, out: Path) -> None:
    accs = "  ".join(f"{k}={v:.3f}" for k, v in summary.test.acc.items())
    print(f"{summary.run}: test avg_acc={summary.test.avg_acc:.3f}  {accs}")
    print(f"run folder: {out / str(summary.run)}")


def _print_frame(frame, fmt: str) -> None:
    if fmt == "csv":
        print(frame.to_csv(index=False), end="")
    elif fmt == "json":
        print(frame.to_json(orient="records", indent=2))
    else:
        print(frame.to_string(index=False, float_format=_three_places, na_rep="-"))


def _three_places(value: float) -> str:
    """Three decimals, or two significant digits for a small non-zero value (a p-value of
    3e-08 would read 0.000)."""
    return f"{value:.1e}" if 0 < abs(value) < 0.0005 else f"{value:.3f}"


def _print_tables(tables: dict, fmt: str) -> None:
    for title, frame in tables.items():
        if fmt == "table":
            head, *notes = title.split("\n")
            print("\n".join([f"\n== {head} ==", *notes]))
        _print_frame(frame, fmt)


def _cmd_analyze_capacity(args: argparse.Namespace) -> None:
    from scalarize.analysis.search import members_display
    from scalarize.analysis.tables import capacity_tables

    tables = capacity_tables(args.dir)
    if tables.runs.empty:
        raise ScalarizeError(f"no finished run in {args.dir} yet")
    cells = tables.per_capacity
    pretty = args.format == "table"
    planes = tables.planes if pretty else {}
    plane = {f"{key.removesuffix('_gain')} Δ% (data × capacity)": frame
             for key, frame in planes.items()}
    capacity_planes = {f"{key} test Δ% (capacity plane; bootstrap 95% over seeds)": frame
                       for key, frame in (tables.capacity_planes if pretty else {}).items()}
    readable = members_display if pretty else (lambda frame: frame)
    selected = f"selected on {cells.attrs.get('selected_on', 'val')}, test Δ reported"
    _print_tables({**plane, **capacity_planes,
                   f"per_capacity (best weights {selected})": readable(cells),
                   _titled("capacity_trend (Spearman ρ of capacity means of test Δ; exact "
                           "permutation p over capacities; interval: seeds resampled within "
                           "capacity)", tables.trend): tables.trend,
                   _titled("selected_vs_uniform (test Δ difference per capacity)",
                           tables.vs_uniform): tables.vs_uniform,
                   _titled("rank_stability (Kendall τ of weightings by mean test Δ; interval: "
                           "seeds resampled within capacity)", tables.rank_stability):
                   tables.rank_stability,
                   f"transfer_regret ({selected})": tables.transfer_regret,
                   "weightings": readable(tables.weightings)},
                  args.format)


def _titled(title: str, frame) -> str:
    """``title`` with the correction and the notes a table carries (``attrs``)."""
    notes = [frame.attrs[key] for key in ("correction", "note") if frame.attrs.get(key)]
    return "\n".join([title, *(f"   {note}" for note in notes)])


def _cmd_analyze_conflicts(args: argparse.Namespace) -> None:
    from scalarize.analysis.tables import conflict_tables

    conflicts = conflict_tables(args.dir)
    tables = {"correlations": conflicts.correlations,
              "per_capacity": conflicts.per_capacity,
              "floor (cross-objective vs same-objective control, per capacity)":
                  conflicts.floor,
              "per_layer (conflict and control share per encoder block)": conflicts.per_layer,
              "partial (against final val accuracy, capacity held fixed)": conflicts.partial,
              "per_weighting": conflicts.per_weighting,
              "trends (Spearman ρ of capacity / weighting means, exact p, Holm)":
                  conflicts.trends,
              "conflict share (weights × capacity)": conflicts.plane}
    if args.curves:
        tables["curves"] = conflicts.curves
    _print_tables(tables, args.format)


def _cmd_analyze_search(args: argparse.Namespace) -> None:
    import pandas as pd

    from scalarize.analysis.search import curve_changes
    from scalarize.analysis.tables import search_tables

    curves, tables = [], []
    for folder in map(Path, args.dirs):  # each folder's tables, labelled by their path
        found = search_tables(folder)
        where = folder.as_posix()
        curve = found.anytime
        curves.append(curve.assign(search=(
            where if found.is_search else [(folder / s).as_posix() for s in curve.search])))
        table = found.table
        if not table.empty:
            tables.append(table.drop(columns="search").assign(search=(
                where if found.is_search else [(folder / s).as_posix() for s in table.search])))
    curve = pd.concat(curves, ignore_index=True)
    curve = curve[["search", "strategy", "member_epochs", "best_val_avg_acc", "hypervolume"]]
    printed = {"anytime (best held-out score and hypervolume so far, per member-epochs spent)":
               curve if args.all_rows else curve_changes(curve)}
    if tables:
        frame = pd.concat(tables, ignore_index=True)
        printed = {"searches": frame[["search", *frame.columns[:-1]]], **printed}
    _print_tables(printed, args.format)


def _cmd_report(args: argparse.Namespace) -> None:
    from scalarize.report import build_report

    html_path, md_path = build_report(args.dir, args.out)
    print(f"report: {html_path}\nmarkdown: {md_path}")


def _cmd_demo(args: argparse.Namespace) -> None:
    from scalarize.demo import main as demo_main

    demo_main(Path(args.out), progress=False if args.quiet else None)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="scalarize",
        description="Multi-task and multi-domain learning by scalarization, at scale.",
    )
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks on errors (before or after the subcommand)")
    sub = parser.add_subparsers(dest="command", required=True)

    train = sub.add_parser("train", help="train one model from a YAML config")
    train.add_argument("config", help="YAML config file (see configs/)")
    train.add_argument("overrides", nargs="*", help="section.field=value, e.g. train.epochs=5")
    train.add_argument("--out", default="runs", help="folder of run folders (default: runs)")
    _one_run_flags(train, "run")
    _smoke_flag(train)
    _track_flag(train)
    train.add_argument("--nproc", type=_count, default=None,
                       help="train data-parallel on N processes here (gloo on the CPU, NCCL "
                       "on N GPUs); the config's batch_size stays the global batch (sets "
                       "train.nproc, default: the config's, 1)")
    train.add_argument("--engine", choices=["local", "ray"], default="local",
                       help="ray: place the --nproc processes as Ray Train workers")
    train.add_argument("--address", help="Ray cluster address (--engine ray)")
    train.set_defaults(func=_cmd_train)

    runs = sub.add_parser("runs", help="table of the runs under a folder")
    runs.add_argument("dir", help="folder holding run folders")
    runs.add_argument("--format", choices=["table", "csv", "json"], default="table")
    runs.set_defaults(func=_cmd_runs)

    data = sub.add_parser("data", help="data set commands")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    info = data_sub.add_parser("info", help="sizes, tasks and domains of a benchmark")
    info.add_argument("name", help="benchmark name, e.g. shapes or npz")
    info.add_argument("options", nargs="*", help="benchmark options, e.g. path=mine.npz")
    info.add_argument("--view", choices=["mtl", "mdl"], default="mtl")
    info.add_argument("--seed", type=int, default=0)
    info.set_defaults(func=_cmd_data_info)

    prepare = data_sub.add_parser("prepare", help="decode a real benchmark once into its "
                                  "cache (root/.scalarize/)")
    prepare.add_argument("name", help="benchmark name, e.g. celeba or domainnet")
    prepare.add_argument("options", nargs="*", help="benchmark options, e.g. image_size=64")
    prepare.add_argument("--root", required=True, help="folder holding the official files")
    prepare.add_argument("--view", choices=["mtl", "mdl"], default="mtl")
    prepare.add_argument("--download", action="store_true",
                         help="fetch missing files from the official URLs (cifar10_stl10)")
    prepare.set_defaults(func=_cmd_data_prepare)

    model = sub.add_parser("model", help="model commands")
    model_sub = model.add_subparsers(dest="model_command", required=True)
    minfo = model_sub.add_parser("info", help="parameters and FLOPs of a model spec")
    minfo.add_argument("spec", help="e.g. vit-d3-w48-p4 or resnet26-x0.5")
    minfo.add_argument("--image-size", type=int, default=32)
    minfo.add_argument("--channels", type=int, default=3)
    minfo.add_argument("--classes", type=int, default=10)
    minfo.add_argument("--features", type=_count, default=None,
                       help="inputs that are not images: F float features per example (with "
                       "--length: per position of a sequence)")
    minfo.add_argument("--length", type=_count, default=None,
                       help="sequence length L (token ids with --vocab, else L×features floats)")
    minfo.add_argument("--vocab", type=_count, default=None, help="token vocabulary size")
    minfo.set_defaults(func=_cmd_model_info)

    def many_runs(parser: argparse.ArgumentParser, what: str) -> None:
        parser.add_argument("config", help=f"{what} config (a run config plus a '{what}' section)")
        parser.add_argument("overrides", nargs="*", help="section.field=value")
        parser.add_argument("--out", required=True, help="output folder (re-run to continue it)")
        # names checked by the registries when used: listing them here would import them
        parser.add_argument("--engine", default="local", metavar="ENGINE",
                            help="local (default), ray, or another registered engine")
        parser.add_argument("--address", help="Ray cluster address (ray engine)")
        if what != "search":
            parser.add_argument("--jobs", type=_count, default=None,
                                metavar="N", help="runs side by side (local engine; default: "
                                "one per CPU core, or $SCALARIZE_JOBS)")
        parser.add_argument("--cpus-per-run", type=_number(0, exclusive=True), default=1.0,
                            help="CPUs per run or member (ray engine; > 0)")
        parser.add_argument("--gpus-per-run", type=_number(0), default=0.0,
                            help="GPUs per run or member (ray engine; may be fractional)")
        parser.add_argument("--connect-timeout", type=_number(0, exclusive=True), default=30.0,
                            metavar="SECONDS", help="give up on --address after this long "
                            "(ray engine; default 30)")
        parser.add_argument("--quiet", action="store_true", help="no progress bars")
        _smoke_flag(parser)
        _track_flag(parser)

    sweep = sub.add_parser("sweep", help="capacity × weights sweep from a YAML config")
    many_runs(sweep, "sweep")
    sweep.set_defaults(func=_cmd_sweep)

    compare = sub.add_parser("compare", help="methods side by side at equal budget")
    many_runs(compare, "compare")
    compare.add_argument("--format", choices=["table", "csv", "json"], default="table")
    compare.set_defaults(func=_cmd_compare)

    search = sub.add_parser("search", help="population-based search of the weights")
    many_runs(search, "search")
    search.add_argument("--strategy", metavar="STRATEGY",
                        help="overrides search.strategy of the config: pbt, pb2, mopbt, grid, "
                        "random, tpe, gp, cmaes, nsga2, asha, hyperband, or another registered "
                        "strategy")
    search.add_argument("--format", choices=["table", "csv", "json"], default="table")
    search.set_defaults(func=_cmd_search)

    replay = sub.add_parser("replay", help="retrain a search member with its weight schedule")
    replay.add_argument("dir", help="finished search folder")
    replay.add_argument("--member", default="best", help="'best' (default) or a member number")
    replay.add_argument("--spec", help="retrain on this model instead of the searched one "
                        "(search small, train big), e.g. vit-d3-w48-p4")
    replay.add_argument("--options", metavar="YAML", help="the model's options, replacing the "
                        "searched model's, e.g. '{width: 64}'")
    _one_run_flags(replay, "replay")
    _track_flag(replay)
    replay.set_defaults(func=_cmd_replay)

    def trained_run(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("run", help="run folder (a run, a replay), or a finished search "
                            "folder with --member")
        parser.add_argument("--member", help="in a search folder: 'best' (default) or a "
                            "member number")
        parser.add_argument("--overwrite", action="store_true", help="replace --out")

    predict = sub.add_parser("predict", help="predictions of a trained run, one array per "
                             "task, into an .npz")
    trained_run(predict)
    predict.add_argument("--data", metavar="FILE_OR_TARGET", help="an .npz holding x (and "
                         "optionally domain), or a loader package.module:load (its --split)")
    predict.add_argument("--split", choices=["train", "val", "test"], help="a split of the "
                         "run's own data (or of --data's loader; default test)")
    predict.add_argument("--out", required=True, help="the .npz to write, e.g. preds.npz")
    predict.add_argument("--domain", help="multi-domain runs: the domain of every input "
                         "(name or index), when the inputs do not say")
    predict.add_argument("--raw", action="store_true", help="also each head's raw output "
                         "(output_<head>: logits, values, maps)")
    predict.set_defaults(func=_cmd_predict)

    export = sub.add_parser("export", help="export a trained run's model (input transform "
                            "folded in)")
    trained_run(export)
    export.add_argument("--format", required=True,
                        choices=["onnx", "torchscript", "exported-program"])
    export.add_argument("--out", required=True, help="the file to write, e.g. model.onnx")
    export.add_argument("--domain", metavar="HEAD", help="multi-domain runs: export this "
                        "domain's path only (default: every head)")
    export.set_defaults(func=_cmd_export)

    analyze = sub.add_parser("analyze", help="analyses over a run store")
    analyze_sub = analyze.add_subparsers(dest="analysis", required=True)
    capacity = analyze_sub.add_parser("capacity", help="gain per capacity, rank stability")
    capacity.add_argument("dir", help="sweep folder")
    capacity.add_argument("--format", choices=["table", "csv", "json"], default="table")
    capacity.set_defaults(func=_cmd_analyze_capacity)

    conflicts = analyze_sub.add_parser("conflicts", help="gradient conflicts vs performance")
    conflicts.add_argument("dir", help="folder of runs trained with probes.conflicts")
    conflicts.add_argument("--format", choices=["table", "csv", "json"], default="table")
    conflicts.add_argument("--curves", action="store_true", help="also print per-epoch values")
    conflicts.set_defaults(func=_cmd_analyze_conflicts)

    searches = analyze_sub.add_parser(
        "search", help="anytime curves of searches: best held-out score and hypervolume so far "
        "against member-epochs spent")
    searches.add_argument("dirs", nargs="+", metavar="DIR",
                          help="search folders, or folders of searches")
    searches.add_argument("--format", choices=["table", "csv", "json"], default="table")
    searches.add_argument("--all-rows", action="store_true", help="one row per member-epoch "
                          "(default: the rows where a curve changes, and its last)")
    searches.set_defaults(func=_cmd_analyze_search)

    study = sub.add_parser("study", help="studies of many searches")
    study_sub = study.add_subparsers(dest="study", required=True)
    ssearch = study_sub.add_parser("search", help="every weight search at the same budget "
                                   "and seeds, retrained and scored on test")
    ssearch.add_argument("config", help="search config (a run config plus a 'search' section)")
    ssearch.add_argument("overrides", nargs="*", help="section.field=value")
    ssearch.add_argument("--out", required=True, help="study folder (re-run to continue it)")
    ssearch.add_argument("--budget", type=int, required=True, metavar="MEMBER_EPOCHS",
                         help="member-epochs every strategy's search may spend")
    ssearch.add_argument("--seeds", type=int, default=5, help="seeds per strategy (default 5)")
    ssearch.add_argument("--strategies", nargs="+", metavar="NAME",
                         help="uniform, grid, random, tpe, gp, cmaes, nsga2, pbt, pb2, mopbt, "
                         "asha+SAMPLER, hyperband+SAMPLER (default: all but cmaes and "
                         "hyperband), or a method trained with uniform weights (famo, uw...)")
    ssearch.add_argument("--seed-offset", type=int, default=0, metavar="K",
                         help="seeds start at the config's seed + K (default 0)")
    ssearch.add_argument("--vary-data", action="store_true",
                         help="each seed draws the data too (benchmark.seed = the seed)")
    ssearch.add_argument("--reference-grid", type=int, default=0, metavar="K",
                         help="also train a simplex grid of at most K points per seed: the "
                         "reference for regret")
    ssearch.add_argument("--transfer-spec", nargs="+", default=[], metavar="SPEC",
                         help="also retrain each strategy's weights on these model specs")
    ssearch.add_argument("--format", choices=["table", "csv", "json"], default="table")
    ssearch.add_argument("--quiet", action="store_true", help="no progress bars")
    ssearch.set_defaults(func=_cmd_study_search)

    report = sub.add_parser("report", help="HTML + Markdown report of a sweep or search")
    report.add_argument("dir", help="sweep or search folder")
    report.add_argument("--out", help="report folder (default: DIR/report)")
    report.set_defaults(func=_cmd_report)

    demo = sub.add_parser("demo", help="the main job: a small study on the shapes benchmark")
    demo.add_argument("--out", default="demo-runs", help="folder of run folders")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_cmd_demo)
    return parser


def _is_out_of_memory(exc: BaseException) -> bool:
    """A failed allocation: Python's, torch's CPU allocator's or CUDA's."""
    text = str(exc)
    return isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError" or any(
        marker in text for marker in ("can't allocate memory", "DefaultCPUAllocator",
                                      "CUDA out of memory"))


def _one_line(message: str) -> str:
    """A message on one line (a path or value quoted in it may hold a line break)."""
    return " ".join(message.split("\n"))


def _working_directory_importable() -> None:
    """Put the working directory first on ``sys.path``, as ``python -m`` does, so import
    targets in configs (``mymodels:build``) find the user's modules; not under
    ``PYTHONSAFEPATH`` (``-P``), which asks for the opposite."""
    cwd = os.getcwd()
    if not sys.flags.safe_path and "" not in sys.path and cwd not in sys.path:
        sys.path.insert(0, cwd)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``scalarize`` command; returns the exit status."""
    _working_directory_importable()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if "--debug" in extra:  # after the subcommand too: `scalarize train c.yaml --debug`
        extra = [word for word in extra if word != "--debug"]
        args.debug = True
    # key=value words after an option (``--view mdl n_val=2``) are still overrides
    target = "overrides" if hasattr(args, "overrides") else "options"
    if extra and hasattr(args, target) and all("=" in word for word in extra):
        getattr(args, target).extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    func: Callable[[argparse.Namespace], None] = args.func
    try:
        with _one_line_warnings():
            func(args)
    except ScalarizeError as exc:
        if args.debug:
            raise
        print(f"scalarize: error: {_one_line(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # the environment: permissions, a full disk, a file in the way
        if args.debug:
            raise
        print(f"scalarize: error: {_one_line(_os_error_message(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except (MemoryError, RuntimeError) as exc:
        if args.debug or not _is_out_of_memory(exc):
            raise
        print("scalarize: error: out of memory; choose a smaller model, image size, batch "
              "(train.batch_size, train.eval_batch_size) or data set", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("scalarize: interrupted; run the same command with --resume to continue",
              file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
