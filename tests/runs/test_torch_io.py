"""``load_torch`` reads with ``weights_only=True``: every state scalarize saves (each method's
trainer checkpoint, a search's policy state) loads back exactly, and a file that names any other
global, a torn file and a missing one are each one line naming the file and the remedy."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pytest
import torch

from scalarize.config import load_config
from scalarize.errors import ScalarizeError
from scalarize.methods import METHODS
from scalarize.runs.torch_io import load_torch, save_torch
from scalarize.search.decide import PopulationPolicy
from scalarize.search.explore import SimplexExplore
from scalarize.search.strategies import build_strategy
from scalarize.training import Trainer, load_data
from scalarize.weights import SimplexWeights

TINY = ["model.spec=vit-d1-w16-p8",
        "benchmark.options={n_train: 32, n_val: 16, n_test: 16, image_size: 16, cache: false}",
        "train.batch_size=16", "train.warmup_epochs=0", "train.device=cpu", "train.epochs=2"]
REMEDY = "delete it to restart the run or pass --overwrite"


def _equal(a: Any, b: Any, where: str = "") -> None:
    """Exact, recursive equality; fails naming the first difference."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _equal(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _equal(x, y, f"{where}[{i}]")
    else:
        assert a == b or (a != a and b != b), f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def data():
    return load_data(load_config(None, TINY))


@pytest.mark.parametrize("method", METHODS.names())
def test_every_methods_checkpoint_loads_weights_only(tmp_path, data, method):
    """Two epochs, so every method's extra state (inner optimisers, loss histories, previous
    solutions) exists, all of plain types."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Stateful torchjd objects announce themselves
            trainer = Trainer(load_config(None, [*TINY, f"method.name={method}"]), data=data,
                              progress=False)
            trainer.train_epochs(2)
    finally:
        torch.set_num_threads(threads)
    state = trainer.state_dict()
    save_torch(tmp_path / "checkpoint.pt", state)
    loaded = load_torch(tmp_path / "checkpoint.pt", "checkpoint", REMEDY)
    _equal(loaded, torch.load(tmp_path / "checkpoint.pt", weights_only=False))
    _equal(loaded["method"], state["method"], "method")


def test_a_policy_state_with_history_loads_weights_only(tmp_path):
    policy = PopulationPolicy(build_strategy("pb2", SimplexExplore(), 1.0, 0.25), 0.5,
                              ("a", "b"), seed=0)
    w = SimplexWeights(("a", "b"), (0.5, 0.5))
    for epoch in (1, 2):
        policy.decide(epoch, [[0.9, 0.8], [0.5, 0.4 + epoch / 10], None], [w] * 3)
    save_torch(tmp_path / "state.pt", {"generation": 2, **policy.state_dict()})
    loaded = load_torch(tmp_path / "state.pt", "search state", "delete the folder to restart")
    _equal(loaded, {"generation": 2, **policy.state_dict()})
    other = PopulationPolicy(build_strategy("pb2", SimplexExplore(), 1.0, 0.25), 0.5,
                             ("a", "b"), seed=1)
    other.load_state_dict(loaded)
    assert other.rng.integers(1 << 30) == policy.rng.integers(1 << 30)


class _Payload:
    def __init__(self, marker: os.PathLike[str]) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


def test_a_file_naming_another_global_is_refused_unrun(tmp_path):
    marker, path = tmp_path / "ran", tmp_path / "checkpoint.pt"
    torch.save({"epoch": 1, "model": _Payload(marker)}, path)
    with pytest.raises(ScalarizeError) as refused:
        load_torch(path, "checkpoint", REMEDY)
    message = str(refused.value)
    assert message.startswith(f"checkpoint {path} is unreadable: it asks for posix.system")
    assert "unsafe" in message and message.endswith(REMEDY) and "\n" not in message
    assert not marker.exists()


def test_numpy_arrays_are_not_a_format_scalarize_writes(tmp_path):
    """No extra global is allowed: a file holding a numpy array (which no scalarize state
    does) is refused, and the refusal does not widen torch's allowed set for later loads."""
    path = tmp_path / "state.pt"
    torch.save({"rng": np.arange(3)}, path)
    before = list(torch.serialization.get_safe_globals())
    with pytest.raises(ScalarizeError, match="unsafe"):
        load_torch(path, "search state", "delete the folder to restart")
    assert list(torch.serialization.get_safe_globals()) == before


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04torn"])
def test_torn_or_foreign_files_are_one_line(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(ScalarizeError, match="unreadable") as refused:
        load_torch(path, "checkpoint", REMEDY)
    message = str(refused.value)
    assert str(path) in message and message.endswith(REMEDY) and "\n" not in message


def test_legacy_format_files_load_or_are_refused_without_a_warning(tmp_path, recwarn):
    """torch's pre-zip format: read as ever; at a pickle protocol torch's weights-only reader
    does not take, refused in one line with no protocol warning beside it on stderr."""
    path = tmp_path / "checkpoint.pt"
    torch.save({"epoch": 3}, path, _use_new_zipfile_serialization=False)
    assert load_torch(path, "checkpoint", REMEDY) == {"epoch": 3}
    torch.save({"epoch": 3}, path, pickle_protocol=4, _use_new_zipfile_serialization=False)
    with pytest.raises(ScalarizeError, match="unreadable"):
        load_torch(path, "checkpoint", REMEDY)
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]
