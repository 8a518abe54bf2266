"""The tracking section and the --track flag: identity kept, paths made absolute, bad values
refused in one line."""

from __future__ import annotations

import importlib.util
import os

import pytest

from scalarize.config import RunConfig, TrackingConfig, load_config, same_config
from scalarize.errors import ScalarizeError
from scalarize.search.spec import SearchConfig
from scalarize.tracking import track_overrides, with_tracking
from tests.conftest import TINY


def test_tracking_is_not_part_of_a_runs_identity():
    plain = load_config(None, TINY)
    tracked = load_config(None, [*TINY, *track_overrides(["tensorboard=tb", "mlflow=x.db"])])
    assert tracked.tracking.enabled and not plain.tracking.enabled
    assert tracked == plain
    assert same_config(plain.model_dump(mode="json"), tracked)  # resume: either way
    assert same_config(tracked.model_dump(mode="json"), plain)
    assert tracked != load_config(None, [*TINY, "train.lr=0.5"])


def test_flags_become_overrides_with_absolute_locations(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    overrides = track_overrides(["tensorboard=tb logs", "mlflow=sqlite:///runs/mlflow.db",
                                 "mlflow=http://localhost:5000", "wandb=proj"])
    config = load_config(None, overrides)  # the last mlflow= wins, as overrides do
    assert config.tracking.tensorboard == str(tmp_path / "tb logs")
    assert config.tracking.mlflow == "http://localhost:5000"
    assert config.tracking.wandb is not None and config.tracking.wandb.mode == "offline"
    sqlite = load_config(None, track_overrides(["mlflow=sqlite:///runs/mlflow.db"]))
    assert sqlite.tracking.mlflow == f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    number = load_config(None, track_overrides(["tensorboard=123"]))  # a folder, not a number
    assert number.tracking.tensorboard == str(tmp_path / "123")
    assert os.path.isabs(TrackingConfig(tensorboard="x").tensorboard or "")


@pytest.mark.parametrize(("value", "message"), [
    ("neptune=x", "unknown tracker 'neptune'; known: mlflow, tensorboard, wandb"),
    ("tensorboard", "write BACKEND=TARGET"),
    ("mlflow=", "write BACKEND=TARGET"),
])
def test_bad_flags_are_one_line_errors(value, message):
    with pytest.raises(ScalarizeError, match=message) as info:
        track_overrides([value])
    assert "\n" not in str(info.value)


def test_a_misspelt_tracking_key_is_a_config_error():
    with pytest.raises(ScalarizeError, match=r"tracking\.tensorbord"):
        load_config(None, ["tracking.tensorbord=tb"])


def test_with_tracking_keeps_the_config_type():
    search = SearchConfig.model_validate({"search": {"strategy": "pbt"}})
    tracked = with_tracking(search, ["tensorboard=tb"])
    assert isinstance(tracked, SearchConfig) and tracked.tracking.tensorboard
    assert with_tracking(RunConfig(), None) == RunConfig()


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None,
                    reason="wandb is installed: nothing to refuse")
def test_wandb_without_wandb_installed_is_refused_before_training(tmp_path):
    from scalarize.launch import train_run
    from tests.conftest import tiny_config

    with pytest.raises(ScalarizeError, match=r"tracking\.wandb needs wandb"):
        train_run(tiny_config("tracking.wandb={project: p}"), tmp_path, progress=False)
    assert not any(tmp_path.iterdir())  # refused before the run folder was made


def test_the_track_flag_of_train_and_replay(tmp_path, monkeypatch, capsys):
    """``--track`` from the command line: a run and a replay each log their own folder."""
    pytest.importorskip("tensorboard", reason="the tracking extra is not installed")
    from scalarize.cli import main
    from tests.conftest import TINY
    from tests.tracking.conftest import SEARCH

    monkeypatch.chdir(tmp_path)
    assert main(["train", _config(tmp_path), "--out", "runs",
                 "--track", "tensorboard=tb", "--quiet", *TINY]) == 0
    assert [p.name for p in (tmp_path / "tb").iterdir()]
    (tmp_path / "search.yaml").write_text(SEARCH)
    assert main(["search", "search.yaml", "--out", "pbt", "--quiet", "--track",
                 "tensorboard=tb"]) == 0
    assert main(["replay", "pbt", "--quiet", "--track", "tensorboard=tb"]) == 0
    assert any(p.name.startswith("replay-m") for p in (tmp_path / "tb" / "pbt").iterdir())
    assert main(["train", _config(tmp_path), "--track", "neptune=x", "--quiet"]) == 2
    assert "unknown tracker 'neptune'" in capsys.readouterr().err


def _config(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("benchmark: {name: shapes, tasks: [shape, count]}\n")
    return str(path)
