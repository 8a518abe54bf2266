"""The equal-compute search study: how each strategy spends the budget, and the command end to
end on a tiny config (2 strategies × 2 seeds): the table, the intervals, a re-run that skips
finished cells, a killed cell redone alone, refusals in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from scalarize.cli import main
from scalarize.errors import ScalarizeError
from scalarize.search.spec import SearchConfig, load_search_config
from scalarize.studies import study as study_module
from scalarize.studies.study import (
    DEFAULT_STRATEGIES,
    SearchStudy,
    StudyStrategy,
    cell_search,
    grid_steps,
    parse_strategies,
)

pytest.importorskip("optuna")

TINY = ["model.spec=vit-d1-w16-p8", "train.epochs=2", "train.threads=1",
        "benchmark.options={n_train: 96, n_val: 16, n_test: 32, image_size: 16}",
        "train.batch_size=32", "train.device=cpu", "search.population=2"]


def base() -> SearchConfig:
    return SearchConfig.model_validate({"seed": 3, "benchmark": {"tasks": ["a", "b", "c"]},
                                        "train": {"epochs": 4},
                                        "search": {"population": 3, "points": ["uniform"]}})


def test_the_default_strategies_are_the_issues_list_and_all_parse():
    labels = [s.label for s in parse_strategies(DEFAULT_STRATEGIES)]
    assert labels == ["uniform", "grid", "random", "tpe", "gp", "asha+random", "asha+tpe",
                      "pbt", "pb2", "mopbt", "nsga2"]
    assert parse_strategies(["hyperband"]) == [StudyStrategy("hyperband+random", "hyperband",
                                                             "random")]


@pytest.mark.parametrize(("names", "message"), [
    (["bogus"], "unknown strategy 'bogus'"), (["asha+nsga2"], "asha takes a sampler of"),
    (["tpe", "tpe"], "names tpe twice"), (["tpe+gp"], "unknown strategy 'tpe\\+gp'"),
    ([], "is empty")])
def test_bad_strategy_names_are_refused(names, message):
    with pytest.raises(ScalarizeError, match=message):
        parse_strategies(names)


def test_every_strategy_spends_the_same_budget_its_own_way():
    config = base()

    def of(name: str, budget: int = 40) -> SearchConfig:
        return cell_search(config, parse_strategies([name])[0], budget, 3).at(5)

    assert of("tpe").search.budget == 40 and of("tpe").search.population == 3  # 3 at a time
    assert of("asha+tpe").search.sampler == "tpe" and of("asha+tpe").search.strategy == "asha"
    assert of("pbt").search.population == 10 and of("pbt").search.budget is None  # 40 / 4
    assert of("random").search.population == 10 and of("random").search.points is None
    assert grid_steps(3, 10) == 3 and of("grid").search.grid_step == pytest.approx(1 / 3)
    assert grid_steps(2, 21) == 20 and grid_steps(3, 2) == 0
    assert of("tpe").seed == 5 and of("tpe").train == config.train
    with pytest.raises(ScalarizeError, match="a population needs 2"):
        of("pbt", 7)
    with pytest.raises(ScalarizeError, match="the grid needs at least 3 members"):
        of("grid", 8)


@pytest.fixture()
def search_file(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("seed: 0\nbenchmark: {name: shapes, tasks: [shape, count]}\n"
                    "search: {strategy: pbt}\n")
    return path


def test_the_study_command_end_to_end_resumes_and_refuses(search_file, tmp_path, capsys,
                                                          monkeypatch):
    out = tmp_path / "study"
    args = ["study", "search", str(search_file), *TINY, "--out", str(out), "--budget", "4",
            "--seeds", "2", "--strategies", "random,tpe", "--reference-grid", "3", "--quiet",
            "--transfer-spec", "vit-d1-w32-p8", "--format", "json"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    rows = json.loads((out / "table.json").read_text())
    assert {r["strategy"] for r in rows} == {"random", "tpe"}
    assert all(r["seeds"] == 2 and r["member_epochs"] <= 4 for r in rows)
    for r in rows:  # a 95% interval around the mean, and a regret against the grid's best
        assert r["test_low"] <= r["test_avg_acc"] <= r["test_high"]
        assert r["regret_low"] <= r["regret"] <= r["regret_high"]
    assert '"strategy":"random"' in printed.replace(" ", "") and (out / "anytime.png").is_file()
    cells = sorted(p.name for p in (out / "cells").iterdir())
    assert cells == ["random-s0.json", "random-s1.json", *[f"reference-p{p}-s{s}.json"
                     for p in range(3) for s in (0, 1)], "tpe-s0.json", "tpe-s1.json"]
    table = (out / "table.csv").read_text()
    # search small, train big: each cell's selected weights retrained on the larger model
    transfer = (out / "transfer.csv").read_text().splitlines()
    assert transfer[0] == "strategy,spec,seeds,test_avg_acc,test_low,test_high"
    assert sorted(line.split(",")[:3] == [s, "vit-d1-w32-p8", "2"] for line in transfer[1:]
                  for s in ("random", "tpe")).count(True) == 2
    assert (out / "tpe" / "seed0").is_dir() and any(
        p.name.endswith("vit-d1-w32-p8") for p in (out / "tpe" / "seed0").iterdir())

    # a re-run trains nothing: every cell is finished
    calls = {"search": 0, "train": 0}
    real_search, real_train = study_module.run_search, study_module.train_run

    def counting(name, real):
        def wrapped(*a, **k):
            calls[name] += 1
            return real(*a, **k)
        return wrapped

    monkeypatch.setattr(study_module, "run_search", counting("search", real_search))
    monkeypatch.setattr(study_module, "train_run", counting("train", real_train))
    assert main(args) == 0
    assert calls == {"search": 0, "train": 0} and (out / "table.csv").read_text() == table

    # a cell lost (a kill before its record was written) is redone alone, to the same numbers
    before = (out / "cells" / "tpe-s1.json").read_text()
    (out / "cells" / "tpe-s1.json").unlink()
    assert main(args) == 0
    assert calls["search"] == 1 and (out / "cells" / "tpe-s1.json").read_text() == before
    capsys.readouterr()

    # refusals: one line, exit 2, nothing written or changed
    assert main(["study", "search", str(search_file), *TINY, "--out", str(out), "--budget",
                 "4", "--strategies", "random", "bogus", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown strategy 'bogus'" in err and len(err.strip().splitlines()) == 1
    changed = [a if a != "4" else "6" for a in args]  # another --budget in the same folder
    assert main(changed) == 2
    assert "holds another study" in capsys.readouterr().err
    assert (out / "table.csv").read_text() == table
    fresh = tmp_path / "fresh"
    assert main(["study", "search", str(search_file), *TINY, "--out", str(fresh), "--budget",
                 "4", "--seeds", "2", "--strategies", "nope", "--quiet"]) == 2
    assert not fresh.exists()


def test_the_reference_grid_is_recorded_and_another_refused(tmp_path):
    """Reference cells are numbered by grid point: another grid's points would be mixed in."""
    study = object.__new__(study_module.SearchStudy)  # _record needs no data
    study.config, study.out, study.budget, study.reference_grid = base(), tmp_path, 8, 0
    study.seed_offset, study.vary_data, study.pure_noise = 0, False, []
    study._record()
    assert "reference_grid" not in json.loads((tmp_path / "study.json").read_text())
    study.reference_grid = 6  # a reference added later is recorded
    study._record()
    assert json.loads((tmp_path / "study.json").read_text())["reference_grid"] == 6
    study.reference_grid = 0  # a re-run without the reference is this study
    study._record()
    study.reference_grid = 10
    with pytest.raises(ScalarizeError, match=r"reference grid of 6 points; give "
                                             r"--reference-grid 6 or choose another --out$"):
        study._record()


def test_methods_are_rows_trained_with_uniform_weights():
    famo, uw = parse_strategies(["famo", "uw"])
    assert famo == StudyStrategy("famo", None, method="famo") and uw.method == "uw"
    with pytest.raises(ScalarizeError, match=r"or a method: .*famo"):
        parse_strategies(["static"])  # static with uniform weights is 'uniform'


def test_a_study_resolves_each_strategy_once_for_all_its_cells(search_file, tmp_path,
                                                               resolutions):
    """Each strategy is resolved once, with the settings its cells share (the grid's step),
    and that object goes to every cell's search, which does not resolve it again."""
    config = load_search_config(search_file, TINY)
    study = SearchStudy(config, tmp_path / "study", budget=4, seeds=2,
                        strategies=["uniform", "grid", "tpe"], progress=False)
    assert resolutions == {"resolve": 2, "build": 2}  # uniform is no search
    study.run()
    assert resolutions == {"resolve": 2, "build": 2}
    cells = sorted(p.name for p in (tmp_path / "study" / "cells").iterdir())
    assert cells == [f"{s}-s{seed}.json" for s in ("grid", "tpe", "uniform") for seed in (0, 1)]
    grid = study.searches["grid"].strategy.strategy
    assert grid.grid_step == 1.0  # 2 members of 2 epochs: the corners


def test_the_data_seed_follows_the_cell_seed_only_when_asked():
    config = base()
    entry = parse_strategies(["pbt"])[0]
    assert cell_search(config, entry, 40, 3).at(7).benchmark.seed == config.benchmark.seed
    varied = cell_search(config, entry, 40, 3).at(7, vary_data=True)
    assert varied.benchmark.seed == 7 and varied.seed == 7


def test_a_many_objective_study_records_recovery_and_compares_with_uniform(tmp_path, capsys):
    """MTL-10 with its two pure-noise attributes, shrunk: seeds from the offset, data drawn
    per seed, a method row, the noise share of every cell, the table against uniform with
    its equivalence test, and the recovery curves."""
    out = tmp_path / "study"
    config = str(Path(__file__).parents[2] / "configs" / "many" / "mtl10.yaml")
    assert main(["study", "search", config, "--out", str(out), "--budget", "4", "--seeds", "2",
                 "--seed-offset", "100", "--vary-data", "--strategies", "uniform", "uw",
                 "random", "--quiet", "benchmark.options.n_train=96",
                 "benchmark.options.n_val=32", "benchmark.options.n_test=32",
                 "train.epochs=2", "train.warmup_epochs=0"]) in (0, None)
    printed = capsys.readouterr().out
    assert "== vs_uniform ==" in printed and "reference" in printed
    record = json.loads((out / "study.json").read_text())
    assert record["seed_offset"] == 100 and record["vary_data"] is True
    assert record["pure_noise"] == ["noise3", "noise5"]
    cells = {p.stem: json.loads(p.read_text()) for p in (out / "cells").glob("*.json")}
    assert sorted(cells) == ["random-s100", "random-s101", "uniform-s100", "uniform-s101",
                             "uw-s100", "uw-s101"]
    assert cells["uniform-s100"]["noise_share"] == pytest.approx(0.2)
    share = cells["random-s101"]["noise_share"]
    weights = cells["random-s101"]["weights"]
    assert share == pytest.approx((weights[8] + weights[9]) / sum(weights))
    uw_run = yaml.safe_load(next((out / "uw" / "seed100").rglob("config.yaml")).read_text())
    assert uw_run["method"]["name"] == "uw" and uw_run["benchmark"]["seed"] == 100
    versus = (out / "vs_uniform.csv").read_text().splitlines()
    assert versus[0].startswith("strategy,seeds,diff_vs_uniform") and len(versus) == 4
    recovery = (out / "recovery.csv").read_text().splitlines()
    assert recovery[0] == "member_epochs,best_val_avg_acc,noise_share,search,label"
    assert (out / "recovery.png").stat().st_size > 1000


def test_a_users_method_is_a_row_under_its_short_name(tmp_path, monkeypatch):
    (tmp_path / "mymethods.py").write_text(
        "from scalarize.methods import build_method\n\n"
        "def mine(n_objectives, **options):\n"
        "    return build_method('uw', {}, n_objectives=n_objectives)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    (entry,) = parse_strategies(["mymethods:mine"])
    assert entry == StudyStrategy("mine", None, method="mymethods:mine")
    with pytest.raises(ScalarizeError, match="no module named 'nosuch'"):
        parse_strategies(["nosuch:thing"])
