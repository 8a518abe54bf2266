"""A search tracked from its folder: one parent run, one nested run per member, exploits.

A search's members are not run folders (an engine trains them an interval at a time), so
:func:`track_search` logs a search from what its folder holds (``population.jsonl``, the plan,
the summary), on any engine: the parent run (the search's config as parameters, its summary,
every PBT exploit as a tag, a text entry and ``exploits.json``) and, nested under it, one run
per member (``m00``, ``m01``, ...: held-out scores, training objective and weights per epoch,
``exploit/parent`` at the epochs it copied another member, its schedule and lineage, its test
scores). It is idempotent: called again (on a longer search, or a finished one) it logs only
what a backend lacks. Replays of the search (``SEARCH/replay-m03``) are ordinary runs, nested
under the same parent by their folder.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from scalarize.config import TrackingConfig
from scalarize.runs import layout
from scalarize.runs.records import (
    DivergedEvent,
    EpochEvent,
    ExploitEvent,
    MemberResult,
    SearchPlan,
)
from scalarize.runs.store import SearchDir
from scalarize.tracking._base import RunRef, StudyRef, flat_metrics, flat_params, metric_key
from scalarize.tracking._run import RunTracker, backends, check


def _weights(weights: Any) -> dict[str, float]:
    return dict(weights.as_dict()) if weights is not None else {}


def _exploit_text(event: ExploitEvent) -> str:
    before = _weights(event.weights_before)
    after = _weights(event.weights)
    show = ", ".join(f"{o} {before.get(o, float('nan')):.3f}→{w:.3f}" for o, w in after.items())
    return f"epoch {event.epoch}: m{event.member:02d} copied m{event.parent:02d}; weights {show}"


def track_search(folder: Path | str, tracking: TrackingConfig | None = None) -> None:
    """Log the search in ``folder`` (see the module doc) with ``tracking``, by default the
    tracking section of the search's own config. Tracking failures warn once and are skipped;
    a missing library is refused in one line."""
    search = SearchDir(folder)
    config = search.read_config()
    if tracking is None:
        tracking = TrackingConfig.model_validate(config.get("tracking") or {})
    if not tracking.enabled:
        return
    check(tracking)
    plan = search.read_plan(SearchPlan)
    events = search.read_events()
    summary = search.read_summary() if search.is_finished else None
    path = search.path.resolve()
    study = StudyRef(layout.SEARCH.kind, path, search.read_config)
    exploits = [e for e in events if isinstance(e, ExploitEvent)]

    parent = RunTracker(backends(tracking), RunRef(path.name, str(path), study, "study"))
    parent.start(flat_params({k: v for k, v in config.items() if k != "tracking"}),
                 {"scalarize.study": str(path), "scalarize.kind": layout.SEARCH.kind,
                  "scalarize.strategy": plan.strategy, "scalarize.engine": plan.engine})
    parent.tags({f"exploit.e{e.epoch:03d}.m{e.member:02d}": _exploit_text(e) for e in exploits})
    by_epoch: dict[int, list[str]] = defaultdict(list)
    for event in exploits:
        by_epoch[event.epoch].append(_exploit_text(event))
    for epoch, lines in sorted(by_epoch.items()):
        parent.text("exploits", "\n\n".join(lines), epoch)
    if exploits:
        parent.text("exploits.json", json.dumps([e.dump() for e in exploits], indent=1))

    results = {m.member: m for m in summary.members} if summary is not None else {}
    for member in range(plan.population):
        _track_member(tracking, study, member, [e for e in events if e.member == member],
                      results.get(member), summary is not None)
    if summary is not None:
        parent.summary(flat_metrics({
            "test": {"avg_acc": summary.test_avg_acc, "acc": summary.test_acc},
            **{k: getattr(summary, k) for k in ("val_avg_acc", "hypervolume_val",
                                                 "hypervolume_test", "member_epochs",
                                                 "seconds", "train_seconds", "best_member")}}),
            plan.epochs, summary.to_json(indent=1))
    parent.close("FINISHED" if summary is not None else "RUNNING")


def _track_member(tracking: TrackingConfig, study: StudyRef, member: int, events: list[Any],
                  result: MemberResult | None, finished: bool) -> None:
    name = f"m{member:02d}"
    run = RunTracker(backends(tracking), RunRef(name, str(study.path / name), study))
    run.start({"member": str(member)}, {"scalarize.member": str(member)})
    for event in events:
        if isinstance(event, EpochEvent):
            record: dict[str, Any] = {"epoch": event.epoch, "val_acc": event.val_acc,
                                      "val_avg_acc": event.val_avg_acc,
                                      "weights": _weights(event.weights),
                                      "epoch_seconds": event.seconds}
            if event.train_objective is not None:
                record["train_objective"] = event.train_objective
            run.epoch(record)
        elif isinstance(event, ExploitEvent):
            run.at_epoch({metric_key("exploit", "parent"): float(event.parent)}, event.epoch)
            run.text("exploit", _exploit_text(event), event.epoch)
        elif isinstance(event, DivergedEvent):
            run.tags({"scalarize.diverged_at": str(event.epoch)})
    if result is not None:
        run.tags({"scalarize.schedule": json.dumps(result.schedule),
                  "scalarize.lineage": json.dumps(result.lineage),
                  "scalarize.diverged": str(result.diverged).lower()})
        run.text("schedule.json", json.dumps(result.schedule))
        if result.test_avg_acc is not None:
            run.summary(flat_metrics({"test": {"avg_acc": result.test_avg_acc,
                                               "acc": result.test_acc or {}}}),
                        max([e.epoch for e in events] or [0]))
    run.close("FINISHED" if finished else "RUNNING")
