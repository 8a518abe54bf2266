from scalarize.analysis.search import find_searches
from scalarize.report import build_report
from scalarize.search.executors import run_search
from scalarize.search.spec import load_search_config

SEARCH = """
seed: 0
benchmark:
  name: shapes
  tasks: [shape, count, size]
  options: {n_train: 96, n_val: 16, n_test: 32, image_size: 16}
model: {spec: vit-d1-w16-p8}
train: {epochs: 3, batch_size: 32, device: cpu}
search: {strategy: mopbt, population: 4, interval: 1}
"""


def test_report_of_one_search_has_schedules_population_and_pareto(tmp_path):
    (tmp_path / "s.yaml").write_text(SEARCH)
    run_search(load_search_config(tmp_path / "s.yaml"), tmp_path / "mo", progress=False)
    _, md = build_report(tmp_path / "mo")
    text = md.read_text()
    assert "Population search of the weights" in text and "Pareto front" in text
    for name in ["search-schedules.png", "search-population.png", "search-pareto.png"]:
        assert (tmp_path / "mo" / "report" / "figures" / name).stat().st_size > 1000


def test_a_folder_of_searches_gets_a_comparison_table(tmp_path):
    (tmp_path / "s.yaml").write_text(SEARCH)
    for strategy in ["pbt", "random"]:
        config = load_search_config(tmp_path / "s.yaml", [f"search.strategy={strategy}",
                                                          "train.epochs=1"])
        run_search(config, tmp_path / "study" / strategy, progress=False)
    assert [p.name for p in find_searches(tmp_path / "study")] == ["pbt", "random"]
    _, md = build_report(tmp_path / "study")
    text = md.read_text()
    assert "By strategy" in text and "| random |" in text
