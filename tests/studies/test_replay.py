import numpy as np
import pytest
from torch import nn

from scalarize.cli import main
from scalarize.errors import ScalarizeError
from scalarize.launch import train_run
from scalarize.runs import RunDir
from scalarize.search.spec import load_search_config
from scalarize.studies.replay import replay, replay_config
from scalarize.studies.runner import run_search
from scalarize.training import Callback
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


class _Conv(nn.Module):
    """A one-layer encoder whose capacity is its ``width`` (a model option)."""

    def __init__(self, channels: int, width: int) -> None:
        super().__init__()
        self.out_features, self.conv = width, nn.Conv2d(channels, width, 3, padding=1)

    def forward(self, x):
        return self.conv(x).relu().mean(dim=(2, 3))


def conv(image_shape, width=8):
    """A user's model factory (``tests.studies.test_replay:conv``) with a width option."""
    return _Conv(image_shape[0], width)


def _runs(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("replay-"))


def test_replay_on_a_larger_spec_trains_that_spec_and_resumes(finished):
    folder, summary = finished
    small = replay(folder, "best", resume=True, progress=False)
    big = replay(folder, "best", spec="vit-d2-w32-p8", progress=False)
    name = f"replay-m{summary.best_member:02d}-vit-d2-w32-p8"
    assert big.run == name and big.model.spec == "vit-d2-w32-p8"
    assert small.model.spec == "vit-d1-w16-p8"  # the searched model's replay is untouched
    assert big.model.params > 2 * small.model.params
    run = RunDir(folder / name)
    used = [list(r.weights.values) for r in run.read_metrics()]
    expected = [[ws for e, ws in summary.best_schedule if e <= epoch][-1] for epoch in range(4)]
    assert np.allclose(used, expected)  # the same schedule, on the larger model
    assert replay(folder, "best", spec="vit-d2-w32-p8", resume=True, progress=False) == big
    with pytest.raises(ScalarizeError, match="already exists"):
        replay(folder, "best", spec="vit-d2-w32-p8", progress=False)


class _KillInEpochThree(Callback):
    def on_step_end(self, trainer, step, loss):
        if step == 2 * trainer.steps_per_epoch + 1:
            raise KeyboardInterrupt


def test_a_larger_replay_cut_short_resumes_to_the_uninterrupted_result(finished, tmp_path):
    folder, _ = finished
    config = replay_config(folder, "best", spec="vit-d1-w24-p8")
    with pytest.raises(KeyboardInterrupt):
        train_run(config, folder, callbacks=[_KillInEpochThree()], progress=False)
    assert len(RunDir(folder / config.name).read_metrics()) == 2
    resumed = replay(folder, "best", spec="vit-d1-w24-p8", resume=True, progress=False)
    whole = train_run(config, tmp_path, progress=False)  # the same replay, uninterrupted
    assert resumed.model.spec == "vit-d1-w24-p8" and resumed.test == whole.test


def test_replay_with_model_options(finished):
    folder, _ = finished
    spec = "tests.studies.test_replay:conv"
    narrow = replay_config(folder, 1, spec=spec, options={"width": 8})
    wide = replay(folder, 1, spec=spec, options={"width": 32}, progress=False)
    assert narrow.name == "replay-m01-conv-width8" and wide.run == "replay-m01-conv-width32"
    assert wide.model.params > replay(folder, 1, spec=spec, options={"width": 8},
                                      progress=False).model.params


@pytest.mark.parametrize(("spec", "options", "message"), [
    ("vit-d1-w16-p5", None, "vit-d1-w16-p5"),          # patch does not divide the image
    ("nosuchfamily-x2", None, "nosuchfamily"),
    ("vit-d2-w32-p8", {"width": 64}, "takes no option 'width'"),
    ("tests.studies.test_replay:conv", {"width": "wide"}, "conv"),
])
def test_replay_refuses_a_model_that_does_not_build_and_writes_nothing(finished, spec, options,
                                                                       message):
    folder, _ = finished
    before = _runs(folder)
    with pytest.raises(ScalarizeError, match=message) as error:
        replay(folder, "best", spec=spec, options=options, progress=False)
    assert "\n" not in str(error.value)
    assert _runs(folder) == before


def test_replay_command_with_spec_and_options(finished, capsys):
    folder, _ = finished
    spec = "tests.studies.test_replay:conv"
    assert main(["replay", str(folder), "--member", "2", "--spec", spec,
                 "--options", "{width: 12}", "--quiet"]) == 0
    assert "replay-m02-conv-width12" in capsys.readouterr().out
    before = _runs(folder)
    assert main(["replay", str(folder), "--spec", "vit-d1-w16-p5", "--quiet"]) == 2
    assert main(["replay", str(folder), "--spec", spec, "--options", "[1, 2]"]) == 2
    assert main(["replay", str(folder), "--spec", spec, "--options", "{width: 1"]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("scalarize: error: ") for e in errors)
    assert "mapping" in errors[1] and "YAML" in errors[2]
    assert _runs(folder) == before
