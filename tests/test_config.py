import pytest

from scalarize.config import load_config
from scalarize.errors import ScalarizeError


def test_overrides_parse_yaml_values(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("train: {epochs: 3}\nmodel: {spec: resnet20}\n")
    cfg = load_config(path, ["train.epochs=5", "scalarization.weights=[1, 2]",
                             "benchmark.options.n_train=10"])
    assert cfg.train.epochs == 5
    assert cfg.model.spec == "resnet20"
    assert cfg.scalarization.weights == [1.0, 2.0]
    assert cfg.benchmark.options == {"n_train": 10}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.epochs=0"], "train.epochs"),
        (["train.epochz=3"], "train.epochz"),
        (["train.device=tpu"], "train.device"),
        (["epochs"], "cannot read override"),
    ],
)
def test_bad_config_values(overrides, message):
    with pytest.raises(ScalarizeError, match=message):
        load_config(None, overrides)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ScalarizeError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [epochs: 3\n")
    with pytest.raises(ScalarizeError, match="not valid YAML"):
        load_config(bad)


def test_yaml_round_trip():
    cfg = load_config(None, ["seed=3", "scalarization.weights=onehot:shape"])
    import yaml

    assert load_config(None, []).model_validate(yaml.safe_load(cfg.to_yaml())) == cfg
