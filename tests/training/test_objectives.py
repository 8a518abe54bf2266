import torch
import torch.nn.functional as F
from torch import nn

from scalarize.benchmarks import load_benchmark
from scalarize.training.data import Batch
from scalarize.training.objectives import build_objectives


def test_domain_losses_average_only_their_own_examples():
    data = load_benchmark("shapes", view="mdl", n_train=[4, 4, 4, 4], n_val=2, n_test=2)
    objectives = build_objectives(data)
    heads = nn.ModuleDict({k: nn.Linear(5, v) for k, v in objectives.head_specs().items()})
    features = torch.randn(6, 5)
    domain = torch.tensor([0, 0, 1, 3, 3, 3])
    target = torch.tensor([1, 2, 3, 4, 5, 6])
    out = objectives.per_example(heads, features, Batch(features, {"label": target}, domain))
    losses, counts = out.mean_losses()
    assert counts.tolist() == [2, 1, 0, 3]
    expected_sketch = 0.0
    expected_photo = F.cross_entropy(heads["photo"](features[3:]), target[3:])
    assert torch.allclose(losses[2], torch.tensor(expected_sketch))
    assert torch.allclose(losses[3], expected_photo)


def test_shared_head_in_the_domain_view():
    data = load_benchmark("shapes", view="mdl", n_train=[4, 4, 4, 4], n_val=2, n_test=2)
    objectives = build_objectives(data, shared_head=True)
    assert list(objectives.head_specs()) == ["shared"]


def test_task_losses_are_plain_cross_entropies():
    data = load_benchmark("shapes", tasks=["shape", "count"], n_train=8, n_val=2, n_test=2)
    objectives = build_objectives(data)
    heads = nn.ModuleDict({k: nn.Linear(5, v) for k, v in objectives.head_specs().items()})
    features = torch.randn(4, 5)
    labels = {"shape": torch.tensor([0, 1, 2, 3]), "count": torch.tensor([0, 1, 2, 0])}
    losses, counts = objectives.per_example(heads, features,
                                            Batch(features, labels, None)).mean_losses()
    assert counts.tolist() == [4, 4]
    assert torch.allclose(losses[1], F.cross_entropy(heads["count"](features), labels["count"]))
