"""The demo's report shows what the demo prints: its accuracy tables with the single-domain
baselines and chance, the PBT replay beside uniform and the fixed weights, its reading; and
its figures follow the report's rules at the demo's size (two weightings, one seed)."""

from __future__ import annotations

import re

import pytest

PAGE = "report/report.md"


@pytest.fixture(scope="module")
def report(demo_folder) -> str:
    return (demo_folder.folder / PAGE).read_text()


def _rows(printed: str, label: str) -> list[list[str]]:
    """The numbers of every printed table row that starts with ``label``."""
    return [line.split()[1:] for line in printed.splitlines()
            if line.split() and line.split()[0] == label]


def test_the_report_has_the_printed_accuracies_baselines_and_chance(demo_folder, report):
    section = report.split("## Test score per domain")[1].split("\n## ")[0]
    rows = [line for line in section.splitlines() if line.startswith("| resnet8")]
    for label in ("uniform", "w0.75-0.25", "single-domain", "chance"):
        printed = _rows(demo_folder.printed, label)
        assert len(printed) == 2  # one per capacity
        shown = [r for r in rows if f"| {label} |" in r]
        assert len(shown) == 2
        for numbers, row in zip(printed, shown, strict=True):
            flat, photo, avg = numbers[:3]
            assert f"| {flat} | {photo} | {avg} |" in row
            assert not row.endswith("| 1.000 |")  # the seeds column counts seeds


def test_the_report_has_the_replay_against_uniform_and_the_fixed_weights(demo_folder, report):
    said = re.search(r"selected member m(\d+) \(test avg_acc ([\d.]+),.*test avg_acc ([\d.]+);"
                     r" uniform weights, same capacity and budget: ([\d.]+)",
                     demo_folder.printed.replace("\n", " "))
    assert said is not None
    member, searched, replayed, uniform = said.groups()
    assert "## Searched weights against fixed weights" in report
    table = report.split("## Searched weights against fixed weights")[1]
    replay_row = next(r for r in table.splitlines() if "retrained on the whole" in r)
    assert f"m{int(member):02d}" in replay_row and f"| {replayed} |" in replay_row
    assert f"member m{member} (as searched)" in table and f"| {searched} |" in table
    uniform_row = next(r for r in table.splitlines() if r.startswith("| uniform |"))
    assert f"| {uniform} |" in uniform_row and uniform_row.endswith("| 0.000 |")
    assert "| w0.75-0.25 |" in table and "| single-domain |" in table


def test_the_report_has_the_reading_and_the_pbt_members(demo_folder, report):
    reading = demo_folder.printed.split("What the numbers say")[1].split("\nΔ = ")[0]
    lines = [line for line in reading.splitlines() if line.startswith("- ")]
    assert len(lines) >= 4
    for line in lines:
        assert line in report  # the same bullet, word for word
    assert report.index("## What the numbers say") < report.index("## Test score per domain")
    assert "## Population search of the weights" in report
    assert "weight schedules (selected member bold)" in report


def test_the_report_draws_its_figures(demo_folder):
    figures = demo_folder.folder / "report" / "figures"
    for name in ("accuracy_per_objective", "pareto_weightings", "training_curves",
                 "gain_over_capacity", "conflict_curves", "conflict_vs_acc",
                 "pbt-schedules"):
        assert (figures / f"{name}.png").read_bytes()[:4] == b"\x89PNG", name
    assert list(figures.glob("replay-pbt-replay-m*.png"))


def test_two_weightings_give_a_sentence_not_a_rank_table(demo_folder, report):
    assert "needs ≥ 3 weightings; this sweep has 2 (uniform, w0.75-0.25)" in report
    assert "Rank stability of weightings between capacities**" not in report
    assert not (demo_folder.folder / "report" / "figures" / "rank_tau.png").exists()
