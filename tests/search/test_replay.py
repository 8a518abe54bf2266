import numpy as np
import pytest

from scalarize.errors import ScalarizeError
from scalarize.runs import RunDir
from scalarize.search.executors import run_search
from scalarize.search.replay import replay, replay_config
from scalarize.search.spec import load_search_config
from tests.search.conftest import SEARCH


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    folder = tmp_path_factory.mktemp("search")
    (folder / "search.yaml.in").write_text(SEARCH)
    summary = run_search(load_search_config(folder / "search.yaml.in"), folder / "pbt",
                         progress=False)
    return folder / "pbt", summary


def test_replay_retrains_with_the_schedule_on_the_full_training_split(finished):
    folder, summary = finished
    changed = [m for m in summary.members if len(m.schedule) > 1]
    assert changed, "no member changed weights during the search"
    member = changed[0]
    result = replay(folder, member.member, progress=False)
    run = RunDir(folder / f"replay-m{member.member:02d}")
    used = [list(r.weights.values) for r in run.read_metrics()]
    expected = [[ws for e, ws in member.schedule if e <= epoch][-1] for epoch in range(4)]
    assert np.allclose(used, expected)
    assert result.steps == 4 * 5  # 160 training images, batch 32: the whole split
    assert 0.0 <= result.test.avg_acc <= 1.0


def test_replay_best_is_the_selected_member_and_is_not_retrained(finished):
    folder, summary = finished
    config = replay_config(folder, "best")
    assert config.name == f"replay-m{summary.best_member:02d}"
    assert config.scalarization.schedule[0][1] == summary.best_schedule[0][1]
    assert config.scalarization.weights == summary.best_schedule[0][1]
    assert config.seed == 0 and config.model.spec == "vit-d1-w16-p8"
    first = replay(folder, "best", resume=True, progress=False)
    again = replay(folder, "best", resume=True, progress=False)
    assert again == first
    with pytest.raises(ScalarizeError, match="already exists"):
        replay(folder, "best", progress=False)


def test_replay_errors(finished, tmp_path):
    folder, _ = finished
    with pytest.raises(ScalarizeError, match="member"):
        replay_config(folder, "7")
    with pytest.raises(ScalarizeError, match="best"):
        replay_config(folder, "worst")
    with pytest.raises(ScalarizeError, match="not a search folder"):
        replay_config(tmp_path)
