import math

import numpy as np
import pytest
import torch
from torch import nn

from scalarize.launch import train_run
from scalarize.probes.gradients import conflict_measures, gram_matrices, parameter_groups
from scalarize.runs import RunDir
from scalarize.training import Trainer
from tests.conftest import tiny_config


def test_known_gradients_by_hand():
    # L1 = a·θ and L2 = b·θ have gradients a and b
    theta = nn.Parameter(torch.zeros(3))
    a, b = torch.tensor([1.0, 0.0, 0.0]), torch.tensor([-1.0, 1.0, 0.0])
    losses = torch.stack([a @ theta, b @ theta])
    gram = gram_matrices(losses, {"theta": [theta]})["theta"]
    assert gram.tolist() == [[1.0, -1.0], [-1.0, 2.0]]
    out = conflict_measures(gram, torch.tensor([0.5, 0.5]))
    cos = -1 / math.sqrt(2)
    assert out["cos"][0][1] == pytest.approx(cos)
    assert out["cos_mean"] == pytest.approx(cos)
    assert out["conflict_share"] == 1.0
    assert out["gms_mean"] == pytest.approx(2 * 1 * math.sqrt(2) / (1 + 2))
    assert out["norms"] == pytest.approx([1.0, math.sqrt(2)])
    # update u = (a + b)/2 = (0, 0.5, 0): orthogonal to a, aligned with b's second axis
    assert out["cos_to_update"] == pytest.approx([0.0, 1 / math.sqrt(2)])


def test_conflict_share_counts_negative_pairs():
    gram = torch.tensor([[1.0, 0.5, -0.5], [0.5, 1.0, 0.2], [-0.5, 0.2, 1.0]])
    out = conflict_measures(gram, torch.ones(3) / 3)
    assert out["conflict_share"] == pytest.approx(1 / 3)
    assert out["cos_min"] == pytest.approx(-0.5)


def test_per_layer_grams_add_up_to_the_whole():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3))
    x = torch.randn(8, 4)
    out = net(x)
    losses = torch.stack([out[:, i].pow(2).mean() for i in range(3)])
    groups = parameter_groups(net)
    assert set(groups) == {"0", "2"}
    per_layer = gram_matrices(losses, groups)
    whole = gram_matrices(losses, {"all": list(net.parameters())})["all"]
    assert torch.allclose(sum(per_layer.values()), whole)
    batched = gram_matrices(losses, {"all": list(net.parameters())}, batched=True)["all"]
    assert torch.allclose(batched, whole, atol=1e-9)
    # and the batched gradients match one backward per loss
    rows = [torch.cat([g.flatten() for g in torch.autograd.grad(losses[i], list(
        net.parameters()), retain_graph=True)]) for i in range(3)]
    manual = torch.stack(rows).double()
    assert torch.allclose(whole, manual @ manual.T, atol=1e-9)


def test_probe_does_not_change_the_trajectory(tmp_path):
    plain = Trainer(tiny_config("model.spec=resnet8-x0.25"), progress=False)
    plain.fit()
    summary = train_run(tiny_config("model.spec=resnet8-x0.25",
                                    "probes={conflicts: {every: 1}}"), tmp_path, progress=False)
    run = RunDir(tmp_path / summary.run)
    probed = run.read_metrics()
    assert [r.train_loss for r in probed] == [r["train_loss"] for r in plain.history]
    assert summary.test == plain._summary().test
    records = [r.dump() for r in run.read_conflicts()]
    assert [r["step"] for r in records] == list(range(6))  # 3 steps × 2 epochs
    assert all(0 <= r["conflict_share"] <= 1 for r in records)
    assert probed[0].conflict_share is not None
    # whole-encoder norms² are the sum of the layers' norms²
    for r in records:
        for t in range(len(r["norms"])):
            layers = sum(layer["norms"][t] ** 2 for layer in r["layers"].values())
            assert r["norms"][t] ** 2 == pytest.approx(layers, rel=1e-9)


def test_probe_resumes_without_duplicates(tmp_path):
    from scalarize.training import Callback

    class Kill(Callback):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 2:
                raise KeyboardInterrupt

    cfg = tiny_config("train.epochs=3", "probes={conflicts: {every: 2}}")
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path, callbacks=[Kill()], progress=False)
    summary = train_run(cfg, tmp_path, resume=True, progress=False)
    steps = [r.step for r in RunDir(tmp_path / str(summary.run)).read_conflicts()]
    assert steps == [0, 2, 4, 6, 8]


def test_mdl_probe_weights_are_the_batch_shares(tmp_path):
    cfg = tiny_config("benchmark.view=mdl", "probes={conflicts: {every: 1}}",
                      "benchmark.options={n_train: [32, 32, 16, 16], n_val: 8, n_test: 8, "
                      "image_size: 16}")
    summary = train_run(cfg, tmp_path, progress=False)
    records = RunDir(tmp_path / str(summary.run)).read_conflicts()
    assert records and len(records[0].norms) == 4


def test_a_task_without_labels_in_the_batch_is_skipped(tmp_path):
    """Partial labels: the probe measures the objectives the batch has labels for, and names
    them; the measures of the others are not zero-gradient artefacts."""
    data, _ = _partial_data()
    config = tiny_config("model.spec=vit-d1-w16-p4", "train.epochs=1", "train.batch_size=8",
                         "probes={conflicts: {every: 1}}")
    train_run(config, tmp_path, data=data, progress=False)
    (run,) = [RunDir(p) for p in tmp_path.iterdir() if p.is_dir()]
    records = run.read_conflicts()
    names = {tuple(r.objectives) for r in records}
    assert ("b", "c") in names  # the batches without an 'a' label
    for r in records:
        assert len(r.norms) == len(r.objectives) == len(r.cos) == len(r.cos_to_update)
        assert all(norm > 0 for norm in r.norms)
        if r.objectives == ["b", "c"]:
            assert r.conflict_share in (0.0, 1.0)  # one pair


# -- the probe's own batch: equal examples per objective and a same-objective control --------


def test_probe_with_its_own_batch_does_not_change_the_trajectory(tmp_path):
    """BatchNorm (resnet) runs a forward on the probe batch: its running statistics, the RNG,
    ``.grad`` and the mode must come out as they went in."""
    import torch

    plain = Trainer(tiny_config("model.spec=resnet8-x0.25"), progress=False)
    plain.fit()
    summary = train_run(tiny_config("model.spec=resnet8-x0.25",
                                    "probes={conflicts: {every: 1, examples: 8}}"), tmp_path,
                        progress=False)
    run = RunDir(tmp_path / summary.run)
    assert [r.train_loss for r in run.read_metrics()] == [r["train_loss"] for r in plain.history]
    assert summary.test == plain._summary().test
    saved = run.load_checkpoint()["model"]
    for name, value in plain.model.state_dict().items():  # BatchNorm buffers included
        assert torch.equal(saved[name], value), name
    records = run.read_conflicts()
    assert [r.step for r in records] == list(range(6))
    for r in records:
        assert r.examples == [8] * len(r.objectives)
        assert len(r.control_cos) == len(r.objectives)
        assert r.control_share == pytest.approx(sum(c < 0 for c in r.control_cos) / len(
            r.control_cos))
        assert all(0 <= layer["control_share"] <= 1 for layer in r.layers.values())
    epochs = run.read_metrics()
    assert epochs[0].control_share == pytest.approx(
        np.mean([r.control_share for r in records if r.epoch == 1]))


def test_probe_batch_draws_equal_examples_per_domain(tmp_path, monkeypatch):
    """MDL with very unequal weights: every domain gets ``examples`` examples of its own."""
    import scalarize.probes.conflicts as probe_module

    seen = []
    real = probe_module.draw_probe

    def spy(pools, examples, seed, step):
        draw = real(pools, examples, seed, step)
        seen.append((pools, draw))
        return draw

    monkeypatch.setattr(probe_module, "draw_probe", spy)
    cfg = tiny_config("benchmark.view=mdl", "probes={conflicts: {every: 2, examples: 4}}",
                      "scalarization.weights=[0.85, 0.05, 0.05, 0.05]",
                      "benchmark.options={n_train: [32, 32, 16, 16], n_val: 8, n_test: 8, "
                      "image_size: 16}")
    summary = train_run(cfg, tmp_path, progress=False)
    run = RunDir(tmp_path / str(summary.run))
    assert all(r.examples == [4, 4, 4, 4] for r in run.read_conflicts())
    domain = Trainer(cfg, progress=False).data.splits["train"].domain
    assert np.bincount(domain).tolist() == [32, 32, 16, 16]
    assert seen
    for _, draw in seen:
        for d, (a, b) in enumerate(zip(draw.a, draw.b, strict=True)):
            assert len(a) == len(b) == 4
            assert set(domain[a]) == set(domain[b]) == {d}  # the domain's own examples
            assert not set(a) & set(b)  # disjoint halves


def test_probe_batch_draws_labelled_examples_per_task(tmp_path):
    """MTL with partial labels: a task's halves hold only examples labelled for it; a task
    with 4 labels gets 2 per half, the others ``examples``."""
    from scalarize.probes.draw import draw_probe, objective_pools

    data, labels = _partial_data()
    config = tiny_config("model.spec=vit-d1-w16-p4", "train.epochs=1", "train.batch_size=8",
                         "probes={conflicts: {every: 1, examples: 3}}")
    train_run(config, tmp_path, data=data, progress=False)
    (run,) = [RunDir(p) for p in tmp_path.iterdir() if p.is_dir()]
    records = run.read_conflicts()
    assert len(records) == 4  # every step: the probe draws its own, labelled examples
    assert all(r.objectives == ["a", "b", "c"] and r.examples == [2, 3, 3] for r in records)
    trainer = Trainer(config, data=data, progress=False)
    pools = objective_pools(trainer.objectives, trainer.splits["train"])
    assert pools[0].tolist() == [0, 1, 2, 3]
    draw = draw_probe(pools, 3, seed=0, step=5)
    assert (labels["a"][np.concatenate([draw.a[0], draw.b[0]])] >= 0).all()
    again = draw_probe(pools, 3, seed=0, step=5)  # a pure function of (seed, step)
    assert all((x == y).all() for x, y in zip(draw.a + draw.b, again.a + again.b, strict=True))


def test_probe_with_its_own_batch_resumes_exactly(tmp_path):
    from scalarize.training import Callback

    class Kill(Callback):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 2:
                raise KeyboardInterrupt

    cfg = tiny_config("train.epochs=3", "probes={conflicts: {every: 2, examples: 4}}")
    whole = train_run(cfg, tmp_path / "whole", progress=False)
    with pytest.raises(KeyboardInterrupt):
        train_run(cfg, tmp_path / "cut", callbacks=[Kill()], progress=False)
    resumed = train_run(cfg, tmp_path / "cut", resume=True, progress=False)
    assert resumed.test == whole.test
    first = RunDir(tmp_path / "whole" / str(whole.run)).read_conflicts()
    second = RunDir(tmp_path / "cut" / str(resumed.run)).read_conflicts()
    assert [r.step for r in second] == [0, 2, 4, 6, 8]
    assert [r.dump() for r in second] == [r.dump() for r in first]


def test_old_records_without_the_control_still_read():
    from scalarize.runs.records import ConflictRecord

    old = {"step": 0, "epoch": 1, "objectives": ["a", "b"], "cos": [[1, 0], [0, 1]],
           "cos_mean": 0.0, "cos_min": 0.0, "conflict_share": 0.0, "gms_mean": 1.0,
           "norms": [1, 1], "cos_to_update": [1, 1]}
    record = ConflictRecord.model_validate(old)
    assert record.control_share is None and record.examples is None
    assert "control_share" not in record.dump()


def test_bad_examples_option_is_one_line():
    from scalarize.errors import ScalarizeError
    from scalarize.probes import build_probes

    with pytest.raises(ScalarizeError, match="examples must be >= 1"):
        build_probes({"conflicts": {"examples": 0}})


def _partial_data():
    import scalarize.api as sz

    rng = np.random.default_rng(0)
    n = 32
    x = rng.integers(0, 256, (n, 3, 8, 8), dtype=np.uint8)
    labels = {"a": np.where(np.arange(n) < 4, np.arange(n) % 2, -1),  # 4 labels in 32
              "b": rng.integers(0, 2, n), "c": rng.random(n).astype(np.float32)}
    tasks = [sz.task("a", classes=2), sz.task("b", classes=2),
             sz.task("c", kind="regression", dense=False)]
    data = sz.from_arrays(tasks, train=(x, labels), test=(x[:8], {k: v[:8] for k, v in
                                                               labels.items()}))
    return data, labels
