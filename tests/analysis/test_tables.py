"""Each analysis is assembled once (:mod:`scalarize.analysis.tables`): the command line, the
report and the API show the same numbers as its tables object."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from scalarize import api
from scalarize.analysis.tables import (
    CompareTables,
    capacity_tables,
    compare_tables,
    conflict_tables,
    search_tables,
)
from scalarize.cli import main
from scalarize.errors import ScalarizeError
from scalarize.report.capacity import capacity_section
from scalarize.report.conflicts import conflicts_section
from scalarize.report.search import search_section
from tests.faults.test_corrupt_store import _sweep

SEARCH = Path(__file__).parent.parent / "runs" / "release_0_1" / "search"


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A finished fake sweep of two capacities, two seeds, probed for conflicts."""
    folder = tmp_path_factory.mktemp("sweep")
    _sweep(folder, probed=True)
    return folder


def _printed_json(text: str) -> list[pd.DataFrame]:
    """The frames ``--format json`` printed one after another."""
    decoder, frames, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        records, end = decoder.raw_decode(text, at)
        frames.append(pd.DataFrame(records))
        at = end + 1
    return frames


def _same(shown: pd.DataFrame, table: pd.DataFrame) -> None:
    """``shown`` holds ``table``'s numbers (after a JSON round trip where it was printed)."""
    assert not shown.empty
    expected = _printed_json(table.to_json(orient="records"))[0]
    pd.testing.assert_frame_equal(shown, expected)


def test_capacity_cli_report_and_api_show_the_tables_numbers(sweep, capsys, tmp_path):
    tables = capacity_tables(sweep)
    assert not tables.runs.empty and not tables.gains.empty
    assert main(["analyze", "capacity", str(sweep), "--format", "json"]) == 0
    printed = _printed_json(capsys.readouterr().out)
    wanted = [tables.per_capacity, tables.trend, tables.vs_uniform, tables.rank_stability,
              tables.transfer_regret, tables.weightings]
    assert len(printed) == len(wanted)
    for shown, table in zip(printed, wanted, strict=True):
        _same(shown, table)

    section = capacity_section(sweep, tmp_path)
    assert section is not None
    shown = dict(section.tables)
    per_capacity = shown["Gain per capacity"]
    pd.testing.assert_frame_equal(per_capacity, tables.per_capacity[per_capacity.columns])
    weightings = shown["All weightings"]
    pd.testing.assert_frame_equal(weightings, tables.weightings[weightings.columns])

    frames = api.capacity(sweep)
    pd.testing.assert_frame_equal(frames["per_capacity"], tables.per_capacity)
    pd.testing.assert_frame_equal(frames["capacity_trend"], tables.trend)
    pd.testing.assert_frame_equal(frames["weightings"], tables.weightings)


def test_conflicts_cli_report_and_api_show_the_tables_numbers(sweep, capsys, tmp_path):
    tables = conflict_tables(sweep)
    assert main(["analyze", "conflicts", str(sweep), "--format", "json", "--curves"]) == 0
    printed = _printed_json(capsys.readouterr().out)
    wanted = [tables.correlations, tables.per_capacity, tables.floor, tables.per_layer,
              tables.partial, tables.per_weighting, tables.trends, tables.plane, tables.curves]
    assert len(printed) == len(wanted)
    for shown, table in zip(printed[:-1], wanted[:-1], strict=True):
        if table.empty:  # the floor, without a control
            assert shown.empty
        else:
            _same(shown, table)
    assert len(printed[-1]) == len(tables.curves)

    section = conflicts_section(sweep, tmp_path)
    assert section is not None
    shown = [frame for _, frame in section.tables]
    assert tables.floor.empty  # probed on the step's batch: no control, no floor table
    in_page_order = [t for t in (tables.correlations, tables.per_capacity, tables.per_layer,
                                 tables.partial, tables.per_weighting, tables.plane,
                                 tables.trends) if not t.empty]  # the page skips an empty one
    assert len(shown) == len(in_page_order)
    for frame, table in zip(shown, in_page_order, strict=True):
        pd.testing.assert_frame_equal(frame, table)

    frames = api.conflicts(sweep)  # with the trends and the plane its docstring promises
    assert list(frames) == ["correlations", "per_capacity", "floor", "per_layer", "partial",
                            "per_weighting", "trends", "plane", "curves"]
    for frame, table in zip(frames.values(), wanted, strict=True):
        pd.testing.assert_frame_equal(frame, table)


def test_a_table_is_assembled_once_per_tables_object(sweep):
    tables = capacity_tables(sweep)
    assert tables.per_capacity is tables.per_capacity
    assert tables.weightings is tables.weightings


def test_no_finished_run_is_one_clear_error(tmp_path):
    (tmp_path / "sweep.json").write_text(json.dumps(
        {"objectives": ["a", "b"], "view": "mtl", "runs": []}))
    (tmp_path / "sweep.yaml").write_text("seed: 0\n")
    assert capacity_tables(tmp_path).runs.empty
    with pytest.raises(ScalarizeError, match="no finished run"):
        api.capacity(tmp_path)


def test_a_comparison_without_finished_runs_has_no_table():
    tables = CompareTables(pd.DataFrame())
    assert not tables.finished
    with pytest.raises(ScalarizeError, match="no run of the comparison has finished"):
        _ = tables.methods
    assert callable(compare_tables)


def test_search_cli_report_and_api_show_the_tables_numbers(capsys, tmp_path):
    tables = search_tables(SEARCH)
    assert tables.finished[0] is tables  # a search folder's own tables, read once
    assert main(["analyze", "search", str(SEARCH), "--format", "json", "--all-rows"]) == 0
    searches, curve = _printed_json(capsys.readouterr().out)
    assert searches.search.tolist() == [SEARCH.as_posix()]
    _same(searches.drop(columns="search"), tables.table.drop(columns="search"))
    assert set(curve.search) == {SEARCH.as_posix()}
    _same(curve[list(tables.anytime.columns)], tables.anytime)

    section = search_section(SEARCH, tmp_path)
    assert section is not None
    shown = dict(section.tables)
    pd.testing.assert_frame_equal(shown["members (final weights and accuracy)"],
                                  tables.members)
    selected = tables.best.iloc[0]
    assert int(selected.member) == tables.summary.best_member
    assert any(f"Selected member m{selected.member} " in text and tables.weights(joiner=" ")
               in text for text in section.text)

    frames = api.searches(SEARCH)
    assert list(frames) == ["searches", "anytime", "members", "front", "population",
                            "exploits"]
    for name, table in [("searches", tables.table), ("anytime", tables.anytime),
                        ("members", tables.members), ("front", tables.front),
                        ("population", tables.population), ("exploits", tables.exploits)]:
        pd.testing.assert_frame_equal(frames[name], table)
    assert frames["front"].member.tolist() == tables.summary.pareto_front


def test_a_folder_of_searches_shows_the_same_searches_everywhere(capsys, tmp_path):
    study = tmp_path / "study"
    for name in ["pbt-s0", "pbt-s1"]:
        shutil.copytree(SEARCH, study / name)
    tables = search_tables(study)
    assert [tables.relative(one) for one in tables.finished] == ["pbt-s0", "pbt-s1"]
    assert main(["analyze", "search", str(study), "--format", "json"]) == 0
    searches, _ = _printed_json(capsys.readouterr().out)
    assert searches.search.tolist() == [(study / n).as_posix() for n in ["pbt-s0", "pbt-s1"]]
    _same(searches.drop(columns="search"), tables.table.drop(columns="search"))

    section = search_section(study, tmp_path / "figures")
    assert section is not None
    shown = dict(section.tables)
    pd.testing.assert_frame_equal(shown["Searches"], tables.finished_table)
    pd.testing.assert_frame_equal(shown["By strategy (mean, std over seeds)"],
                                  tables.by_strategy)
    assert tables.by_strategy.seeds.tolist() == [1]  # both copies have the same seed
    assert tables.curves.search.unique().tolist() == ["pbt-s0", "pbt-s1"]

    frames = api.searches(study)
    assert list(frames) == ["searches", "anytime"]  # no one search's members here
    pd.testing.assert_frame_equal(frames["searches"], tables.table)
    pd.testing.assert_frame_equal(frames["anytime"], tables.anytime)
